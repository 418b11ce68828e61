"""Pre-scaling before the peak: a weekly traffic profile -> replicas per hour -> KEDA ``cron`` floors and Karpenter
peak windows. Pure: no Pulumi.

A reactive autoscaler adds a replica only after the queue has grown, and a new replica then waits for a node, the image
pull and the model load (minutes: :mod:`components.catalog.coldstart`). A service whose traffic follows a weekly
pattern can raise its floor ahead of the rise instead:

- :class:`TrafficProfile`: requests/s per hour of the week (168 values, Monday 00:00 first) in an IANA time zone, from
  a daily shape (:meth:`TrafficProfile.from_daily`) or from observed history (:meth:`TrafficProfile.from_history_csv`,
  a high percentile per hour of the week);
- :func:`replicas_per_hour`: ``ceil(rps / replica rps)`` per hour, clamped to the service's bounds;
- :func:`cron_floors`: the hours whose need exceeds ``min_replicas`` as KEDA ``cron`` trigger windows
  (:class:`CronFloor`), each opened :func:`lead_minutes` before the hour the need rises;
- :func:`peak_windows`: the union of those windows as Karpenter disruption-budget ``schedule``/``duration`` pairs
  (UTC), which freeze ``Underutilized`` consolidation while the floors hold.

KEDA semantics (keda-docs 2.21 scalers/cron.md; anchors-next §7): a cron trigger is a floor of ``desiredReplicas``
while the clock is inside [start, end) of its schedule, in its ``timezone``; start and end are five-field cron
expressions (minute hour day-of-month month day-of-week) and must differ. KEDA and the HPA take the maximum over every
trigger, so a cron floor combines with the queue and latency triggers: the floor never lowers what they ask for, and
overlapping windows are harmless. After ``end`` the HPA's scale-down behaviour (a 15 min window, one pod per period)
brings the replicas down; KEDA's ``cooldownPeriod`` only applies to the last replica when scaling to zero.

Windows are kept few: hours with equal floors merge, days of the week with the same window merge into one trigger
(``1-5``), and when more than :data:`MAX_CRON_TRIGGERS` triggers remain the floors are coarsened until they fit: first
every weekday takes the highest floor of the five weekdays hour by hour (and the weekend days the higher of the two),
then adjacent runs of hours merge at the higher floor, cheapest extra replica-hours first. Coarsening only ever raises
a floor.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.catalog import coldstart
from problems import Problem, ProblemsError

HOURS_PER_WEEK = 168
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

MAX_CRON_TRIGGERS = 12
"""Most cron triggers :func:`cron_floors` returns by default. KEDA sets no limit, but every trigger is one more
external metric the HPA polls and one more line to read in the ScaledObject; twelve cover a weekday and a weekend shape
with several steps each. Above it the floors are coarsened (only ever raised)."""

HISTORY_PERCENTILE = 95.0
"""Percentile of the observed requests/s taken per hour of the week by :meth:`TrafficProfile.from_history_csv`
(nearest-rank: the smallest sample with at least this share of the bucket's samples at or below it). A high
percentile sizes the floor for a busy week, not the average one."""

LEAD_MARGIN_SECONDS = 60.0
"""Added by :func:`lead_minutes` to the cold-start phases: KEDA's polling interval (15 s by default), the HPA's sync
period (15 s) and scheduling, rounded up to a minute."""

_CRON_FIELDS = re.compile(r"^\S+ \S+ \S+ \S+ \S+$")
_OWN_CRON = re.compile(r"^(?P<m>[0-9]{1,2}) (?P<h>[0-9]{1,2}) \* \* (?P<d>\*|[0-6](-[0-6])?(,[0-6](-[0-6])?)*)$")


def zone_problem(path: str, timezone: str) -> Problem | None:
    """A problem when ``timezone`` is not an IANA time zone this Python knows (zoneinfo), else None."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return Problem(path, timezone, "an IANA time zone such as UTC, Europe/Berlin or America/New_York")
    return None


def _check_zone(v: str) -> str:
    p = zone_problem("timezone", v)
    if p is not None:
        raise ValueError(f"{v!r} is not {p.expected}")
    return v


class TrafficProfile(BaseModel):
    """Requests per second for each hour of a week, in one time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    timezone: str = "UTC"
    """IANA time zone the hours are in (KEDA's cron ``timezone``), e.g. ``Europe/Berlin``. Default: UTC."""
    hours: tuple[float, ...] = Field(min_length=HOURS_PER_WEEK, max_length=HOURS_PER_WEEK)
    """168 requests/s values, one per hour of the week, Monday 00:00-01:00 first, Sunday 23:00-24:00 last."""
    source: str = ""
    """Where the values come from (a file, a percentile, a shape). Default: empty."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)

    @field_validator("hours")
    @classmethod
    def _non_negative(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        bad = [f"{hour_label(i)} = {x!r}" for i, x in enumerate(v) if not (math.isfinite(x) and x >= 0)]
        if bad:
            raise ValueError("every hour a finite requests/s >= 0; got " + ", ".join(bad))
        return v

    @property
    def peak_requests_per_second(self) -> float:
        return max(self.hours)

    @classmethod
    def from_daily(cls, weekday: Sequence[float], weekend: Sequence[float], *, peak_requests_per_second: float,
                   timezone: str = "UTC") -> "TrafficProfile":
        """Monday to Friday follow ``weekday``, Saturday and Sunday ``weekend``: 24 values each (00:00 first), as
        fractions (0-1) of ``peak_requests_per_second``. Raises :class:`problems.ProblemsError` listing every bad
        value."""
        out: list[Problem] = []
        for name, shape in (("weekday", weekday), ("weekend", weekend)):
            if len(shape) != 24:
                out.append(Problem(name, len(shape), "24 values (one per hour, 00:00 first)"))
            out += [Problem(f"{name}[{i}]", x, "a fraction of the peak between 0 and 1")
                    for i, x in enumerate(shape) if not (isinstance(x, (int, float)) and 0 <= x <= 1)]
        if not (isinstance(peak_requests_per_second, (int, float)) and peak_requests_per_second > 0
                and math.isfinite(peak_requests_per_second)):
            out.append(Problem("peak_requests_per_second", peak_requests_per_second, "requests/s > 0"))
        zp = zone_problem("timezone", timezone)
        out += [zp] if zp else []
        if out:
            raise ProblemsError(out, title="invalid traffic profile")
        hours = [float(x) * peak_requests_per_second for _ in range(5) for x in weekday]
        hours += [float(x) * peak_requests_per_second for _ in range(2) for x in weekend]
        return cls(timezone=timezone, hours=tuple(round(h, 6) for h in hours),
                   source=f"daily shape x {peak_requests_per_second:g} req/s peak")

    @classmethod
    def from_history_csv(cls, source: str | os.PathLike[str], *, timezone: str = "UTC",
                         percentile: float = HISTORY_PERCENTILE) -> "TrafficProfile":
        """A profile from observed history: rows ``timestamp,requests_per_second`` (a header row is allowed), ISO 8601
        timestamps (with an offset, converted to ``timezone``; without one, read in ``timezone``), bucketed by hour
        of the week, the ``percentile`` of each bucket taken (nearest rank, :data:`HISTORY_PERCENTILE` by default).

        ``source`` is a path (``Path``, or a string naming an existing file) or the CSV text itself. Raises
        :class:`problems.ProblemsError` listing every bad row by line number and every hour of the week without a
        sample."""
        text, label = _read_source(source)
        out: list[Problem] = []
        zp = zone_problem("timezone", timezone)
        if zp:
            raise ProblemsError([zp], title="invalid traffic history")
        if not 0 < percentile <= 100:
            raise ProblemsError([Problem("percentile", percentile, "a percentile in (0, 100]")],
                                title="invalid traffic history")
        tz = ZoneInfo(timezone)
        buckets: list[list[float]] = [[] for _ in range(HOURS_PER_WEEK)]
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if line == 1 and row[0].strip().lower() == "timestamp":
                continue
            problem = _history_row(row, tz, buckets)
            if problem:
                out.append(Problem(f"{label}:{line}", ",".join(row), problem))
        empty = [i for i, b in enumerate(buckets) if not b]
        if empty and len(empty) < HOURS_PER_WEEK:
            out.append(Problem(label, f"{len(empty)} hours without a sample",
                               "at least one sample in every hour of the week; none in " + _hour_ranges(empty)))
        elif empty:
            out.append(Problem(label, "no samples", "rows of timestamp,requests_per_second"))
        if out:
            raise ProblemsError(out, title="invalid traffic history")
        hours = tuple(nearest_rank(b, percentile) for b in buckets)
        n = sum(len(b) for b in buckets)
        return cls(timezone=timezone, hours=hours,
                   source=f"p{percentile:g} (nearest rank) of {n} samples per hour of the week from {label}")


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    """(CSV text, label for messages): a path is read, any other string is the text."""
    if isinstance(source, os.PathLike):
        return Path(source).read_text(), Path(source).name
    if "\n" not in source and "," not in source and Path(source).is_file():
        return Path(source).read_text(), Path(source).name
    return source, "history"


def _history_row(row: list[str], tz: ZoneInfo, buckets: list[list[float]]) -> str | None:
    """File one row into its hour-of-week bucket; the expectation it misses, if any."""
    if len(row) != 2:
        return f"two columns, timestamp,requests_per_second (got {len(row)})"
    stamp, value = row[0].strip(), row[1].strip()
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return "an ISO 8601 timestamp in the first column, e.g. 2026-11-02T08:00:00Z"
    try:
        rps = float(value)
    except ValueError:
        return "a number of requests/s in the second column"
    if not math.isfinite(rps) or rps < 0:
        return "requests/s >= 0 in the second column"
    local = when.astimezone(tz) if when.tzinfo else when
    buckets[local.weekday() * 24 + local.hour].append(rps)
    return None


def nearest_rank(samples: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile: the ``ceil(p/100 x n)``-th smallest sample."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(percentile / 100 * len(ordered))) - 1]


def hour_label(i: int) -> str:
    """Hour of the week -> ``Mon 07:00``."""
    return f"{DAY_NAMES[i // 24]} {i % 24:02d}:00"


def _consecutive(nums: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted integers -> runs of consecutive ones as (first, last): ``[1, 2, 3, 5]`` -> ``[(1, 3), (5, 5)]``."""
    runs: list[list[int]] = []
    for n in nums:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return [(a, b) for a, b in runs]


def _hour_ranges(hours: list[int]) -> str:
    runs = _consecutive(hours)

    def end(b: int) -> str:  # the end of hour b: the same day's hh:00, or the next day's when the run crosses days
        return hour_label((b + 1) % HOURS_PER_WEEK)

    return ", ".join(hour_label(a) if a == b else f"{hour_label(a)}-{end(b)} ({b - a + 1} hours)" for a, b in runs)


class CronFloor(BaseModel):
    """One KEDA ``cron`` trigger: at least ``desired_replicas`` while inside [start, end) in ``timezone``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    timezone: str = "UTC"
    """IANA time zone of ``start`` and ``end``. Default: UTC."""
    start: str
    """Five-field cron (minute hour day-of-month month day-of-week) opening the window, e.g. ``45 6 * * 1-5``."""
    end: str
    """Five-field cron closing the window (must differ from ``start``), e.g. ``0 19 * * 1-5``."""
    desired_replicas: int = Field(ge=1, le=1000)
    """The floor inside the window (KEDA ``desiredReplicas``)."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)

    @field_validator("start", "end")
    @classmethod
    def _five_fields(cls, v: str) -> str:
        if not _CRON_FIELDS.match(v):
            raise ValueError(f"{v!r} is not a five-field cron (minute hour day-of-month month day-of-week)")
        return v

    @model_validator(mode="after")
    def _start_is_not_end(self) -> "CronFloor":
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start!r}: KEDA rejects a window that opens and closes at "
                             "the same time")
        return self

    @property
    def name(self) -> str:
        """Trigger name from the window: ``cron-<hhmm>-<days>-r<replicas>`` (``cron-0645-1-5-r4``) for the
        ``m h * * days`` schedules :func:`cron_floors` writes, else from the start expression's characters."""
        m = _OWN_CRON.match(self.start)
        if m:
            days = m["d"].replace("*", "all").replace(",", "-")
            return f"cron-{int(m['h']):02d}{int(m['m']):02d}-{days}-r{self.desired_replicas}"
        slug = re.sub(r"[^0-9a-z]+", "-", self.start.lower().replace("*", "x")).strip("-")
        return f"cron-{slug}-r{self.desired_replicas}"


def cron_trigger(floor: CronFloor, name: str | None = None) -> dict[str, Any]:
    """The KEDA trigger of one floor: ``{"type": "cron", "name", "metadata": {timezone, start, end,
    desiredReplicas}}`` (every metadata value a string, as the ScaledObject CRD has them)."""
    return {"type": "cron", "name": name or floor.name,
            "metadata": {"timezone": floor.timezone, "start": floor.start, "end": floor.end,
                         "desiredReplicas": str(floor.desired_replicas)}}


def cron_triggers(floors: Sequence[CronFloor]) -> list[dict[str, Any]]:
    """Triggers of several floors, names made unique with a ``-<n>`` suffix where two windows share one."""
    seen: dict[str, int] = {}
    out = []
    for f in floors:
        seen[f.name] = seen.get(f.name, 0) + 1
        out.append(cron_trigger(f, f.name if seen[f.name] == 1 else f"{f.name}-{seen[f.name]}"))
    return out


# --- replicas and windows ---

def _bounds_problems(replica_requests_per_second: float, min_replicas: int, max_replicas: int) -> list[Problem]:
    out = []
    if not (replica_requests_per_second > 0 and math.isfinite(replica_requests_per_second)):
        out.append(Problem("replica_requests_per_second", replica_requests_per_second, "requests/s > 0"))
    if min_replicas < 0:
        out.append(Problem("min_replicas", min_replicas, ">= 0"))
    if max_replicas < max(min_replicas, 1):
        out.append(Problem("max_replicas", max_replicas, f">= 1 and >= min_replicas ({min_replicas})",
                           ("min_replicas",)))
    return out


def replicas_per_hour(traffic: TrafficProfile, replica_requests_per_second: float, *, min_replicas: int,
                      max_replicas: int) -> list[int]:
    """Replicas needed in each hour of the week: ``ceil(rps / replica_requests_per_second)`` clamped to
    [``min_replicas``, ``max_replicas``] (168 values, Monday 00:00 first)."""
    out = _bounds_problems(replica_requests_per_second, min_replicas, max_replicas)
    if out:
        raise ProblemsError(out, title="invalid pre-scaling input")
    # a hair of tolerance so 40 / 2.5 -> 16, not 17, through float rounding
    return [min(max_replicas, max(min_replicas, math.ceil(rps / replica_requests_per_second - 1e-9)))
            for rps in traffic.hours]


def lead_minutes(node_provisioning_s: float, image_pull_s: float, model_load_s: float,
                 margin_s: float = LEAD_MARGIN_SECONDS) -> int:
    """Minutes a floor must open before the hour its replicas are needed: a new node, the image pull and the model load
    (weights + compile), plus ``margin_s`` for KEDA's polling and the HPA's sync (:data:`LEAD_MARGIN_SECONDS`),
    rounded up to a whole minute. Use the figures of :mod:`components.catalog.coldstart` (or
    :func:`lead_minutes_for`); e.g. managed node groups, standard pull, download + load of an 8B model and a cold
    compile: 240 + 300 + (109.0 + 200) + 60 s -> 16 min."""
    out = [Problem(n, v, "seconds >= 0") for n, v in (("node_provisioning_s", node_provisioning_s),
                                                     ("image_pull_s", image_pull_s), ("model_load_s", model_load_s),
                                                     ("margin_s", margin_s)) if not (v >= 0 and math.isfinite(v))]
    if out:
        raise ProblemsError(out, title="invalid lead time")
    return math.ceil((node_provisioning_s + image_pull_s + model_load_s + margin_s) / 60 - 1e-9)


def lead_minutes_for(params_billion: float, *, nodes: int = 1,
                     provisioner: coldstart.Provisioner = "managed-node-groups", streamer: bool = False) -> int:
    """:func:`lead_minutes` for a replica on a new node from the cold-start catalogue: the provisioner's node time, a
    standard image pull, the weights (streamed, or downloaded then loaded) and a cold compile. Pessimistic on
    purpose: the nodes pull in parallel by default and the compile cache may be warm, but both savings are uncertain
    figures, and a floor that opens a few minutes early costs less than a peak that meets cold replicas."""
    p = coldstart.phase_seconds(params_billion, nodes=nodes, provisioner=provisioner, streamer=streamer)
    return lead_minutes(p["node"], p["image"], p["weights"] + p["compile"])


def _runs(floors: Sequence[int]) -> list[tuple[int, int, int]]:
    """Runs of equal floors on the circular week: (first hour, hours, floor); the first run starts where the floor
    changes (hour 0 when the week starts a new run, or all 168 hours as one run when the floor never changes)."""
    n = len(floors)
    start = next((h for h in range(n) if floors[h] != floors[h - 1]), None)
    if start is None:
        return [(0, n, floors[0])]
    out: list[tuple[int, int, int]] = []
    for k in range(n):
        h = (start + k) % n
        if out and floors[h] == out[-1][2]:
            out[-1] = (out[-1][0], out[-1][1] + 1, out[-1][2])
        else:
            out.append((h, 1, floors[h]))
    return out


def _windows(floors: Sequence[int], min_replicas: int, lead: int) -> list[tuple[int, int, int]]:
    """(start minute of the week, minutes, floor) of every run above ``min_replicas``; a run that follows a lower
    floor opens ``lead`` minutes early. A floor that never changes is split in two half-weeks (KEDA rejects a window
    whose start and end are the same)."""
    runs = _runs(floors)
    if len(runs) == 1:
        f = runs[0][2]
        half = MINUTES_PER_WEEK // 2
        return [(0, half, f), (half, half, f)] if f > min_replicas else []
    out = []
    for i, (h, length, f) in enumerate(runs):
        if f <= min_replicas:
            continue
        early = lead if runs[i - 1][2] < f else 0
        out.append(((h * 60 - early) % MINUTES_PER_WEEK, length * 60 + early, f))
    return out


def _cron_days(days: Sequence[int]) -> str:
    """Profile days (0 = Monday) -> cron day-of-week field (0 = Sunday): ``1-5``, ``0,6``, ``*``."""
    nums = sorted({(d + 1) % 7 for d in days})
    if len(nums) == 7:
        return "*"
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in _consecutive(nums))


def _overlaps(starts: list[int], minutes: int) -> bool:
    """Whether windows of ``minutes`` opening at these minutes of the week overlap or touch (circularly): KEDA's
    cron scaler compares the next start with the next end, which only works for disjoint windows of one trigger."""
    s = sorted(starts)
    gaps = [(s[(i + 1) % len(s)] - s[i]) % MINUTES_PER_WEEK or MINUTES_PER_WEEK for i in range(len(s))]
    return any(g <= minutes for g in gaps) if len(s) > 1 else minutes >= MINUTES_PER_WEEK


def _group(windows: list[tuple[int, int, int]], timezone: str) -> list[CronFloor]:
    """One trigger per (time of day, length, floor), over every day it occurs on, unless those windows would
    overlap (then one trigger per day)."""
    groups: dict[tuple[int, int, int], list[int]] = {}
    for start, minutes, f in windows:
        groups.setdefault((start % MINUTES_PER_DAY, minutes, f), []).append(start)
    out = []
    for (tod, minutes, f), starts in groups.items():
        sets = [starts] if not _overlaps(starts, minutes) else [[s] for s in starts]
        for ss in sets:
            days = [s // MINUTES_PER_DAY for s in ss]
            end = tod + minutes
            end_days = [(d + end // MINUTES_PER_DAY) % 7 for d in days]
            end_tod = end % MINUTES_PER_DAY
            out.append(CronFloor(timezone=timezone, desired_replicas=f,
                                 start=f"{tod % 60} {tod // 60} * * {_cron_days(days)}",
                                 end=f"{end_tod % 60} {end_tod // 60} * * {_cron_days(end_days)}"))
    return sorted(out, key=lambda c: (_first_start(c), -c.desired_replicas))


def _first_start(c: CronFloor) -> int:
    m, h, _, _, days = c.start.split()
    first = min(_days_of(days))
    return ((first - 1) % 7) * MINUTES_PER_DAY + int(h) * 60 + int(m)


def _coarsen_once(floors: list[int], min_replicas: int) -> list[int] | None:
    """Merge the two adjacent runs (at least one above ``min_replicas``) that cost the fewest extra replica-hours
    when both take the higher floor; None when nothing is left to merge."""
    runs = _runs(floors)
    if len(runs) < 2:
        return None
    best: tuple[int, int] | None = None
    for i in range(len(runs)):
        a, b = runs[i], runs[(i + 1) % len(runs)]
        if len(runs) == 2 and i == 1:
            break
        if max(a[2], b[2]) <= min_replicas:
            continue
        top = max(a[2], b[2])
        cost = a[1] * (top - a[2]) + b[1] * (top - b[2])
        if best is None or cost < best[0]:
            best = (cost, i)
    if best is None:
        return None
    a, b = runs[best[1]], runs[(best[1] + 1) % len(runs)]
    top = max(a[2], b[2])
    out = list(floors)
    for h0, length, _ in (a, b):
        for k in range(length):
            out[(h0 + k) % len(out)] = top
    return out


def cron_floors(traffic: TrafficProfile, replica_requests_per_second: float, *, lead_minutes: int, min_replicas: int,
                max_replicas: int, max_triggers: int = MAX_CRON_TRIGGERS) -> tuple[CronFloor, ...]:
    """KEDA cron floors that hold the replicas :func:`replicas_per_hour` asks for, opened ``lead_minutes`` before each
    rise.

    Hours with equal floors merge into one window; a window opens ``lead_minutes`` early when the floor before it is
    lower and closes at the end of the last hour it is needed; windows at or below ``min_replicas`` are left out (the
    ScaledObject's minimum holds them). Days with the same window share one trigger (``1-5``); a window may cross
    midnight or the weekend (its end is on a later day). With more than ``max_triggers`` triggers the floors are
    coarsened (only raised) until they fit: first the weekdays take their hour-by-hour maximum (:func:`merge_days`),
    then adjacent runs of hours merge at the higher floor, fewest extra replica-hours first.
    """
    out = _bounds_problems(replica_requests_per_second, min_replicas, max_replicas)
    if not 0 <= lead_minutes < MINUTES_PER_DAY:
        out.append(Problem("lead_minutes", lead_minutes, f"minutes in [0, {MINUTES_PER_DAY})"))
    if max_triggers < 2:
        out.append(Problem("max_triggers", max_triggers, ">= 2"))
    if out:
        raise ProblemsError(out, title="invalid pre-scaling input")
    floors = replicas_per_hour(traffic, replica_requests_per_second, min_replicas=min_replicas,
                               max_replicas=max_replicas)
    days_merged = False
    while True:
        found = _group(_windows(floors, min_replicas, lead_minutes), traffic.timezone)
        if len(found) <= max_triggers:
            return tuple(found)
        if not days_merged:
            days_merged, floors = True, merge_days(floors)
            continue
        coarser = _coarsen_once(floors, min_replicas)
        if coarser is None:
            return tuple(found)
        floors = coarser


def merge_days(floors: Sequence[int]) -> list[int]:
    """Every weekday (Monday-Friday) takes, hour by hour, the highest floor of the five; Saturday and Sunday the
    higher of the two. The first coarsening step of :func:`cron_floors`: days of one kind then share their triggers
    (``1-5``, ``0,6``), and a floor covers the earliest and largest peak any of those days showed."""
    out = list(floors)
    for days in (range(5), range(5, 7)):
        for h in range(24):
            top = max(floors[d * 24 + h] for d in days)
            for d in days:
                out[d * 24 + h] = top
    return out


# --- reading our own floors back: Karpenter peak windows ---

def _days_of(field: str) -> list[int]:
    """Cron day-of-week field (``*``, ``1-5``, ``0,6``) -> cron day numbers (0 = Sunday)."""
    if field == "*":
        return list(range(7))
    out: list[int] = []
    for part in field.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def floor_intervals(floor: CronFloor) -> list[tuple[int, int]]:
    """[start, end) minutes of the week (Monday 00:00 = 0, local time) of a floor written as ``cron_floors`` writes
    them (``m h * * days``); ValueError for other cron shapes."""
    parsed = [_OWN_CRON.match(s) for s in (floor.start, floor.end)]
    if not all(parsed):
        raise ValueError(f"start {floor.start!r} / end {floor.end!r}: peak windows read 'minute hour * * days' "
                         "schedules (as cron_floors writes them)")
    (s, e) = parsed
    assert s is not None and e is not None
    s_tod, e_tod = int(s["h"]) * 60 + int(s["m"]), int(e["h"]) * 60 + int(e["m"])
    ends = sorted(((d - 1) % 7) * MINUTES_PER_DAY + e_tod for d in _days_of(e["d"]))
    out = []
    for d in _days_of(s["d"]):
        start = ((d - 1) % 7) * MINUTES_PER_DAY + s_tod
        end = min(ends, key=lambda x: (x - start) % MINUTES_PER_WEEK or MINUTES_PER_WEEK)
        out.append((start, start + ((end - start) % MINUTES_PER_WEEK or MINUTES_PER_WEEK)))
    return out


def _utc_offsets(timezone: str) -> tuple[int, int]:
    """(smallest, largest) UTC offset of the zone over a year, in minutes (they differ under daylight saving)."""
    tz = ZoneInfo(timezone)
    base = datetime(2026, 1, 1, 12, tzinfo=tz)
    offs = {int(((base + timedelta(days=d)).utcoffset() or timedelta()).total_seconds() // 60)
            for d in range(0, 366, 7)}
    return min(offs), max(offs)


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of [start, end) intervals on the circular week (may return end > MINUTES_PER_WEEK)."""
    if not intervals:
        return []
    ivs = sorted(intervals)
    out = [list(ivs[0])]
    for a, b in ivs[1:]:
        if a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    if len(out) > 1 and out[-1][1] >= out[0][0] + MINUTES_PER_WEEK:   # wraps into the first
        first = out.pop(0)
        out[-1][1] = max(out[-1][1], first[1] + MINUTES_PER_WEEK)
    return [(a, b) for a, b in out]


def _duration(minutes: int) -> str:
    """Karpenter budget duration (h and m only): ``10h``, ``45m``, ``9h45m``."""
    h, m = divmod(minutes, 60)
    return f"{h}h{m}m" if h and m else (f"{h}h" if h else f"{m}m")


def peak_windows(floors: Sequence[CronFloor]) -> list[tuple[str, str]]:
    """(cron ``schedule`` in UTC, ``duration``) pairs covering every window of ``floors``: a Karpenter disruption
    budget per pair (``nodes: "0"``, ``reasons: [Empty, Underutilized]``) keeps consolidation from taking nodes while a
    floor holds. Karpenter's budget schedules are UTC: a zone with daylight saving gets each window widened to cover
    both offsets (it opens at the earlier UTC time and closes at the later one). Overlapping windows merge; windows of
    the same time and length on several days share one pair (``1-5``)."""
    by_zone: dict[str, list[tuple[int, int]]] = {}
    for f in floors:
        by_zone.setdefault(f.timezone, []).extend(floor_intervals(f))
    utc: list[tuple[int, int]] = []
    for zone, ivs in by_zone.items():
        lo, hi = _utc_offsets(zone)
        utc += [(a - hi, b - lo) for a, b in _merge(ivs)]
    utc = [(a % MINUTES_PER_WEEK, a % MINUTES_PER_WEEK + (b - a)) for a, b in utc]
    groups: dict[tuple[int, int], list[int]] = {}
    for a, b in _merge(utc):
        a %= MINUTES_PER_WEEK
        if b - a >= MINUTES_PER_WEEK:
            return [("0 0 * * *", "168h")]
        groups.setdefault((a % MINUTES_PER_DAY, b - a), []).append(a // MINUTES_PER_DAY)
    return [(f"{tod % 60} {tod // 60} * * {_cron_days(days)}", _duration(length))
            for (tod, length), days in sorted(groups.items(), key=lambda kv: (min(kv[1]), kv[0]))]
