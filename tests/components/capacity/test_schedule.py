"""Pre-scaling: traffic profiles, replicas per hour, KEDA cron floors (checked minute by minute with KEDA's own
start/end rule), lead times from the cold-start catalogue and Karpenter peak windows; every message."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.capacity import schedule as sc
from components.capacity.schedule import (CronFloor, TrafficProfile, cron_floors, cron_triggers, lead_minutes,
                                          lead_minutes_for, peak_windows, replicas_per_hour)
from problems import ProblemsError

WEEK = sc.MINUTES_PER_WEEK


# --- a KEDA cron evaluator for the "m h * * days" schedules (keda pkg/scalers/cron_scaler.go: a trigger is active
# when its next end comes before its next start, i.e. inside [start, end)) ---

@lru_cache(maxsize=None)
def _occurrences(expr: str) -> tuple[int, ...]:
    m, h, _, _, days = expr.split()
    return tuple(sorted(((d - 1) % 7) * 1440 + int(h) * 60 + int(m) for d in sc._days_of(days)))


def _next_after(occ: tuple[int, ...], t: int) -> int:
    return min((o - t) % WEEK or WEEK for o in occ)


def active(floor: CronFloor, t: int) -> bool:
    return _next_after(_occurrences(floor.end), t) < _next_after(_occurrences(floor.start), t)


def in_effect(floors, t: int, min_replicas: int) -> int:
    """What KEDA/HPA hold at minute ``t`` of the week: the highest active floor, or the minimum."""
    return max([min_replicas, *(f.desired_replicas for f in floors if active(f, t))])


def expected(need: list[int], t: int, lead: int) -> int:
    """A floor opens ``lead`` minutes before its hour: at ``t`` the highest need over [t, t + lead]."""
    return max(need[((t + k) % WEEK) // 60] for k in range(0, lead + 1, 1 if lead < 60 else 5))


def profile(hours, tz="UTC") -> TrafficProfile:
    return TrafficProfile(timezone=tz, hours=tuple(float(h) for h in hours))


def office_hours(high=10.0, low=1.0) -> list[float]:
    """Monday-Friday 08:00-18:00 at ``high`` requests/s, every other hour at ``low``."""
    return [high if d < 5 and 8 <= h < 18 else low for d in range(7) for h in range(24)]


# --- TrafficProfile ---

def test_from_daily_repeats_weekday_and_weekend_shapes_times_the_peak():
    wd = [0.1] * 8 + [1.0] * 10 + [0.1] * 6
    we = [0.05] * 24
    t = TrafficProfile.from_daily(wd, we, peak_requests_per_second=40, timezone="Europe/Berlin")
    assert len(t.hours) == 168 and t.timezone == "Europe/Berlin"
    assert t.hours[8] == 40 and t.hours[4 * 24 + 17] == 40 and t.hours[4 * 24 + 18] == 4  # Fri 17:00, 18:00
    assert t.hours[5 * 24 + 12] == 2 and t.hours[167] == 2                                # Sat noon, Sun 23:00
    assert t.peak_requests_per_second == 40


def test_from_daily_lists_every_bad_value():
    with pytest.raises(ProblemsError) as err:
        TrafficProfile.from_daily([0.5] * 23, [0.5] * 23 + [1.5], peak_requests_per_second=0, timezone="Mars/Base")
    assert [(p.path, p.expected) for p in err.value.problems] == [
        ("weekday", "24 values (one per hour, 00:00 first)"),
        ("weekend[23]", "a fraction of the peak between 0 and 1"),
        ("peak_requests_per_second", "requests/s > 0"),
        ("timezone", "an IANA time zone such as UTC, Europe/Berlin or America/New_York")]


def test_a_bad_time_zone_is_a_clear_message_not_a_traceback():
    with pytest.raises(ValidationError) as err:
        profile([1] * 168, tz="Europe/Berlinn")
    assert "'Europe/Berlinn' is not an IANA time zone such as UTC, Europe/Berlin or America/New_York" in str(err.value)


def test_a_profile_has_168_non_negative_hours():
    with pytest.raises(ValidationError, match="at least 168 items"):
        profile([1] * 24)
    with pytest.raises(ValidationError, match=r"every hour a finite requests/s >= 0; got Mon 01:00 = -1.0"):
        profile([1, -1] + [1] * 166)


def _history(extra: str = "") -> str:
    # one week from Monday 2026-11-02, one sample per hour at 1 req/s (naive: read in the profile's zone)
    rows = [f"2026-11-{2 + h // 24:02d}T{h % 24:02d}:00:00,1" for h in range(168)]
    return "timestamp,requests_per_second\n" + "\n".join(rows) + "\n" + extra


def test_history_takes_the_nearest_rank_percentile_per_hour_of_the_week():
    # Monday 08:00 also sees 2, 5 and 9: samples [1, 2, 5, 9] -> p95 = the ceil(0.95 x 4) = 4th = 9; p50 = 2nd = 2
    extra = "2026-11-02T08:10:00,2\n2026-11-09T08:20:00,5\n2026-11-02T07:30:00Z,9\n"  # 07:30Z = 08:30 in Berlin (CET)
    t = TrafficProfile.from_history_csv(_history(extra), timezone="Europe/Berlin")
    assert t.hours[8] == 9 and t.hours[7] == 1 and t.hours[9] == 1
    assert "p95 (nearest rank) of 171 samples" in t.source
    assert TrafficProfile.from_history_csv(_history(extra), timezone="Europe/Berlin", percentile=50).hours[8] == 2


def test_history_reads_a_file(tmp_path: Path):
    f = tmp_path / "week.csv"
    f.write_text(_history())
    assert TrafficProfile.from_history_csv(f).hours == (1.0,) * 168
    assert TrafficProfile.from_history_csv(str(f)).source.endswith("from week.csv")


def test_history_lists_every_bad_row_by_line_and_every_hour_without_a_sample():
    text = _history().replace("2026-11-02T03:00:00,1", "yesterday,1").replace("2026-11-02T04:00:00,1",
                                                                               "2026-11-02T04:00:00,-3")
    text += "2026-11-02T05:00:00,1,extra\n2026-11-02T06:30:00,many\n"
    with pytest.raises(ProblemsError) as err:
        TrafficProfile.from_history_csv(text)
    assert [(p.path, p.expected) for p in err.value.problems] == [
        ("history:5", "an ISO 8601 timestamp in the first column, e.g. 2026-11-02T08:00:00Z"),
        ("history:6", "requests/s >= 0 in the second column"),
        ("history:170", "two columns, timestamp,requests_per_second (got 3)"),
        ("history:171", "a number of requests/s in the second column"),
        ("history", "at least one sample in every hour of the week; none in Mon 03:00-Mon 05:00 (2 hours)")]
    with pytest.raises(ProblemsError, match="'no samples': rows of timestamp,requests_per_second"):
        TrafficProfile.from_history_csv("timestamp,requests_per_second\n")
    with pytest.raises(ProblemsError, match=r"percentile = 0: a percentile in \(0, 100\]"):
        TrafficProfile.from_history_csv(_history(), percentile=0)


# --- replicas per hour ---

def test_replicas_per_hour_is_ceil_of_demand_over_replica_rate_clamped():
    t = profile([40, 41, 0.1, 100] + [0] * 164)
    r = replicas_per_hour(t, 2.5, min_replicas=1, max_replicas=20)
    assert r[:5] == [16, 17, 1, 20, 1]   # 40/2.5 = 16 exactly; 41/2.5 = 16.4 -> 17; 0.1 -> min 1; 40 -> max 20
    assert len(r) == 168


def test_bad_bounds_are_listed():
    with pytest.raises(ProblemsError) as err:
        replicas_per_hour(profile([1] * 168), 0, min_replicas=3, max_replicas=2)
    assert [(p.path, p.expected) for p in err.value.problems] == [
        ("replica_requests_per_second", "requests/s > 0"), ("max_replicas", ">= 1 and >= min_replicas (3)")]
    with pytest.raises(ProblemsError) as err:
        cron_floors(profile([1] * 168), 1, lead_minutes=-5, min_replicas=1, max_replicas=2, max_triggers=1)
    assert [(p.path, p.expected) for p in err.value.problems] == [
        ("lead_minutes", "minutes in [0, 1440)"), ("max_triggers", ">= 2")]


# --- cron floors ---

def test_office_hours_give_one_weekday_trigger_opened_lead_minutes_early():
    # 10 req/s / 2.5 per replica = 4 replicas Mon-Fri 08:00-18:00; 1 req/s -> 1 = min elsewhere
    floors = cron_floors(profile(office_hours()), 2.5, lead_minutes=15, min_replicas=1, max_replicas=10)
    assert floors == (CronFloor(start="45 7 * * 1-5", end="0 18 * * 1-5", desired_replicas=4),)
    assert cron_triggers(floors) == [{"type": "cron", "name": "cron-0745-1-5-r4", "metadata": {
        "timezone": "UTC", "start": "45 7 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "4"}}]


def test_steps_merge_equal_hours_and_only_rises_open_early():
    day = [1] * 7 + [5, 10, 10, 10, 5, 5] + [1] * 11       # 07:00 5 rps, 08-10 10 rps, 11-12 5 rps
    floors = cron_floors(profile(day * 7, "America/New_York"), 2.5, lead_minutes=20, min_replicas=1,
                         max_replicas=10)
    assert [(f.start, f.end, f.desired_replicas) for f in floors] == [
        ("40 6 * * *", "0 8 * * *", 2),    # rise 1 -> 2 at 07:00: opens 06:40
        ("40 7 * * *", "0 11 * * *", 4),   # rise 2 -> 4 at 08:00: opens 07:40
        ("0 11 * * *", "0 13 * * *", 2)]   # a fall 4 -> 2 needs no lead
    assert {f.timezone for f in floors} == {"America/New_York"}


def test_a_window_crossing_midnight_ends_on_the_next_day():
    # nights Mon-Fri 22:00-02:00 (the last one ends Saturday 02:00)
    hours = [1.0] * 168
    for d in range(5):
        for h in (22, 23, 24, 25):
            hours[d * 24 + h] = 10.0
    floors = cron_floors(profile(hours), 2.5, lead_minutes=15, min_replicas=1, max_replicas=10)
    assert [(f.start, f.end, f.desired_replicas) for f in floors] == [("45 21 * * 1-5", "0 2 * * 2-6", 4)]


def test_a_window_crossing_the_week_boundary():
    hours = [1.0] * 168
    for h in (166, 167, 0, 1):   # Sunday 22:00 - Monday 02:00
        hours[h] = 10.0
    floors = cron_floors(profile(hours), 2.5, lead_minutes=30, min_replicas=1, max_replicas=10)
    assert [(f.start, f.end, f.desired_replicas) for f in floors] == [("30 21 * * 0", "0 2 * * 1", 4)]


def test_a_floor_that_never_changes_is_two_half_weeks():
    floors = cron_floors(profile([10.0] * 168), 2.5, lead_minutes=15, min_replicas=1, max_replicas=10)
    assert [(f.start, f.end) for f in floors] == [("0 0 * * 1", "0 12 * * 4"), ("0 12 * * 4", "0 0 * * 1")]
    assert all(in_effect(floors, t, 1) == 4 for t in range(0, WEEK, 30))
    assert cron_floors(profile([1.0] * 168), 2.5, lead_minutes=15, min_replicas=1, max_replicas=10) == ()


@pytest.mark.parametrize("lead", [0, 15, 90])
@pytest.mark.parametrize("shape", ["office", "steps", "random"])
def test_keda_holds_the_needed_floor_lead_minutes_ahead_at_every_minute(shape, lead):
    rng = random.Random(7)
    hours = {"office": office_hours(),
             "steps": ([1] * 7 + [5, 10, 10, 10, 5, 5] + [1] * 11) * 5 + [2.0] * 48,
             "random": [rng.choice([0.5, 3, 6, 9]) for _ in range(168)]}[shape]
    t = profile(hours)
    need = replicas_per_hour(t, 2.5, min_replicas=1, max_replicas=3)
    floors = cron_floors(t, 2.5, lead_minutes=lead, min_replicas=1, max_replicas=3, max_triggers=1000)
    assert [t for t in range(0, WEEK, 5) if in_effect(floors, t, 1) != expected(need, t, lead)] == []


def test_too_many_triggers_are_coarsened_never_below_the_need():
    rng = random.Random(3)
    t = profile([rng.uniform(0, 20) for _ in range(168)])
    need = replicas_per_hour(t, 2.5, min_replicas=1, max_replicas=8)
    fine = cron_floors(t, 2.5, lead_minutes=15, min_replicas=1, max_replicas=8, max_triggers=1000)
    coarse = cron_floors(t, 2.5, lead_minutes=15, min_replicas=1, max_replicas=8, max_triggers=6)
    assert len(fine) > 6 >= len(coarse)
    assert [m for m in range(0, WEEK, 5) if in_effect(coarse, m, 1) < expected(need, m, 15)] == []
    assert len(cron_floors(t, 2.5, lead_minutes=15, min_replicas=1, max_replicas=8)) <= sc.MAX_CRON_TRIGGERS


def test_cron_floor_validation_messages():
    with pytest.raises(ValidationError) as err:
        CronFloor(timezone="Nowhere/City", start="0 7 * *", end="0 7 * * 1-5", desired_replicas=0)
    text = str(err.value)
    assert "'Nowhere/City' is not an IANA time zone" in text
    assert "'0 7 * *' is not a five-field cron (minute hour day-of-month month day-of-week)" in text
    assert "greater than or equal to 1" in text
    with pytest.raises(ValidationError, match="start and end are both '0 7 \\* \\* \\*': KEDA rejects a window"):
        CronFloor(start="0 7 * * *", end="0 7 * * *", desired_replicas=2)


def test_trigger_names_are_unique_and_readable():
    a = CronFloor(start="0 7 * * 0,6", end="0 9 * * 0,6", desired_replicas=3)
    b = CronFloor(start="0 7 * * 0,6", end="0 11 * * 0,6", desired_replicas=3)
    c = CronFloor(start="*/5 7 * * *", end="0 9 * * *", desired_replicas=2)
    assert [t["name"] for t in cron_triggers([a, b, c])] == ["cron-0700-0-6-r3", "cron-0700-0-6-r3-2",
                                                             "cron-x-5-7-x-x-x-r2"]


# --- lead time ---

def test_lead_minutes_adds_the_phases_and_the_margin_and_rounds_up():
    assert lead_minutes(240, 300, 109 + 200) == 16          # (240 + 300 + 309 + 60) / 60 = 15.15 -> 16
    assert lead_minutes(60, 300, 240, margin_s=0) == 10     # exactly 600 s
    assert lead_minutes_for(8.03) == 16                      # managed node groups, download + load, cold compile
    assert lead_minutes_for(8.03, provisioner="karpenter", streamer=True) == 11   # 60+300+14.3+200+60 = 634.3 s
    with pytest.raises(ProblemsError) as err:
        lead_minutes(-1, 300, float("nan"))
    assert [(p.path, p.expected) for p in err.value.problems] == [("node_provisioning_s", "seconds >= 0"),
                                                                  ("model_load_s", "seconds >= 0")]


# --- Karpenter peak windows ---

def test_peak_windows_in_utc_cover_every_floor():
    floors = cron_floors(profile(office_hours()), 2.5, lead_minutes=15, min_replicas=1, max_replicas=10)
    assert peak_windows(floors) == [("45 7 * * 1-5", "10h15m")]


def test_peak_windows_widen_over_daylight_saving():
    # 07:45-18:00 Berlin is 05:45-16:00 UTC in summer (CEST) and 06:45-17:00 in winter (CET): 05:45 for 11h15m
    floors = cron_floors(profile(office_hours(), "Europe/Berlin"), 2.5, lead_minutes=15, min_replicas=1,
                         max_replicas=10)
    assert peak_windows(floors) == [("45 5 * * 1-5", "11h15m")]


def test_peak_windows_merge_overlapping_floors_and_cross_midnight():
    day = [1] * 7 + [5, 10, 10, 10, 5, 5] + [1] * 11
    floors = cron_floors(profile(day * 7), 2.5, lead_minutes=20, min_replicas=1, max_replicas=10)
    assert peak_windows(floors) == [("40 6 * * *", "6h20m")]
    night = CronFloor(start="45 21 * * 1-5", end="0 2 * * 2-6", desired_replicas=4)
    assert peak_windows([night]) == [("45 21 * * 1-5", "4h15m")]


def test_peak_windows_read_only_their_own_schedule_shape():
    with pytest.raises(ValueError, match="peak windows read 'minute hour \\* \\* days' schedules"):
        peak_windows([CronFloor(start="0 7 1 * *", end="0 9 1 * *", desired_replicas=2)])


def test_coarsening_first_gives_every_weekday_the_highest_weekday_floor():
    # office hours at 4, 5 and 6 replicas on different weekdays: three triggers; capped at two, every weekday takes 6
    hours = office_hours()
    for d, rps in ((1, 12.5), (2, 15.0)):          # Tuesday 5 replicas, Wednesday 6
        for h in range(8, 18):
            hours[d * 24 + h] = rps
    t = profile(hours)
    assert [(f.start, f.desired_replicas) for f in cron_floors(t, 2.5, lead_minutes=15, min_replicas=1,
                                                                max_replicas=10)] == [
        ("45 7 * * 1,4-5", 4), ("45 7 * * 2", 5), ("45 7 * * 3", 6)]
    assert cron_floors(t, 2.5, lead_minutes=15, min_replicas=1, max_replicas=10, max_triggers=2) == (
        CronFloor(start="45 7 * * 1-5", end="0 18 * * 1-5", desired_replicas=6),)
    floors = [1] * 168
    floors[2 * 24 + 9], floors[6 * 24 + 3] = 7, 2
    merged = sc.merge_days(floors)
    assert [merged[d * 24 + 9] for d in range(7)] == [7, 7, 7, 7, 7, 1, 1]
    assert [merged[d * 24 + 3] for d in range(7)] == [1, 1, 1, 1, 1, 2, 2]


def test_a_gap_across_days_names_its_last_day():
    from components.capacity.schedule import _hour_ranges
    # Tue 01:00 (hour 25) to Wed 07:00 (hour 55): 30 hours
    assert _hour_ranges(list(range(25, 55))) == "Tue 01:00-Wed 07:00 (30 hours)"
    assert _hour_ranges([167]) == "Sun 23:00"
    assert _hour_ranges([166, 167]) == "Sun 22:00-Mon 00:00 (2 hours)"
