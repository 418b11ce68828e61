"""bench/capacity: the simulation's invariants on tiny inputs (hand-computed), the held-out profile path, and one
quick run that prints the comparison."""

from __future__ import annotations

import pytest

from bench.capacity import _sim as sim
from bench.capacity import replay
from components.capacity.schedule import CronFloor, TrafficProfile, nearest_rank

TINY = sim.Config(replica_rps=1.0, min_replicas=1, max_replicas=10, target_utilization=1.0, queue_per_replica=1e9,
                  step_s=15, rate_window_s=15, new_node_s=120, warm_node_s=30)


def test_service_takes_the_backlog_first_and_misses_what_waits_past_its_step():
    assert sim.serve(0, 10, 5) == (5, 5)      # 5 served, 5 left waiting: missed
    assert sim.serve(5, 10, 20) == (0, 0)     # backlog 5 then all 10 new
    assert sim.serve(5, 10, 8) == (7, 7)      # backlog 5, then 3 of the 10 new: 7 wait
    assert sim.serve(0, 3, 0) == (3, 3)       # no ready replica: everything waits


def test_hpa_scale_up_limit_is_the_larger_of_doubling_and_four_pods():
    assert sim.scale_up_limit(2, 4) == 6 and sim.scale_up_limit(10, 4) == 20 and sim.scale_up_limit(0, 4) == 4


def test_an_idle_hour_at_the_minimum_costs_min_replicas_gpu_hours_and_misses_nothing():
    r = sim.simulate([0.0] * 60, sim.Config(min_replicas=2))
    assert r.missed == 0 and r.requests == 0 and r.gpu_hours == pytest.approx(2.0)
    assert set(r.replicas) == {2}


def test_a_demand_step_waits_for_the_new_nodes():
    # minute 0 idle, then 4 req/s on one ready replica (1 req/s): at t=60 the rate trigger wants 4, the HPA may add
    # 3 (limit max(2 x 1, 1 + 4) = 5), ready at t=180, after the replay ends. Per 15 s step: 60 arrive, 15 served.
    r = sim.simulate([0.0, 4.0, 4.0], TINY)
    assert r.requests == 480
    assert r.missed == 45 + 7 * 60            # first step: 15 of 60 served; then the backlog eats the capacity
    assert set(r.replicas) == {1}
    assert r.gpu_hours == pytest.approx((4 * 15 + 1 * 15 + 7 * 4 * 15) / 3600)   # the new pods bill while starting


def test_a_floor_starts_replicas_before_the_demand():
    r = sim.simulate([0.0] * 4 + [3.0] * 2, TINY, floor_per_minute=[3] * 6)
    assert r.replicas[:8] == [1] * 8 and r.replicas[8] == 3     # spawned at t=0, ready at t=120
    assert r.missed == 0


def test_scale_down_waits_for_the_window_and_removes_one_pod_per_period():
    cfg = sim.Config(replica_rps=1.0, min_replicas=1, max_replicas=10, step_s=15, new_node_s=0, warm_node_s=0,
                     down_window_s=60, down_period_s=60, node_keep_s=30)
    r = sim.simulate([0.0] * 10, cfg, floor_per_minute=[4] * 2 + [0] * 8)
    drops = [a - b for a, b in zip(r.replicas, r.replicas[1:])]
    assert max(r.replicas) == 4 and r.replicas[-1] == 1
    assert max(drops) <= 1
    first_drop = drops.index(1)
    assert first_drop * 15 == 165    # floor gone at t=120; the recommendation of (105, 165] is 1 at t=165
    assert [i for i, d in enumerate(drops) if d > 0] == [first_drop, first_drop + 4, first_drop + 8]   # 60 s apart


def test_ramp_windows_are_weekday_mornings():
    assert sim.is_ramp(7 * 60) and sim.is_ramp(9 * 60 + 29) and sim.is_ramp(4 * 1440 + 8 * 60)
    assert not sim.is_ramp(6 * 60 + 59) and not sim.is_ramp(9 * 60 + 30) and not sim.is_ramp(5 * 1440 + 8 * 60)


def test_synthetic_weeks_are_seeded_and_shaped():
    a, b = sim.synthetic_week(1), sim.synthetic_week(2)
    assert len(a) == sim.MINUTES_PER_WEEK and a == sim.synthetic_week(1) and a != b
    night, peak, saturday = a[3 * 60], max(a[10 * 60:11 * 60]), max(a[5 * 1440:6 * 1440])
    assert night < 5 and peak > 30 and saturday < peak


def test_the_profile_takes_the_p95_of_each_hour_of_the_training_week():
    week = sim.synthetic_week(5)
    profile = TrafficProfile.from_history_csv(replay.history_csv(week))
    assert profile.hours[8] == pytest.approx(nearest_rank([round(x, 4) for x in week[480:540]], 95))
    assert profile.hours[5 * 24 + 3] == pytest.approx(nearest_rank([round(x, 4) for x in week[7380:7440]], 95))


def test_floor_per_minute_follows_the_windows():
    f = replay.floor_per_minute((CronFloor(start="45 7 * * 1-5", end="0 18 * * 1-5", desired_replicas=4),), 10080)
    assert f[7 * 60 + 44] == 0 and f[7 * 60 + 45] == 4 and f[17 * 60 + 59] == 4 and f[18 * 60] == 0
    assert f[4 * 1440 + 8 * 60] == 4 and f[5 * 1440 + 8 * 60] == 0


def test_quick_run_prints_both_and_the_ratios(capsys):
    assert replay.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "held out" in out and "reactive (KEDA + HPA)" in out and "+ cron floors" in out
    assert "at the peak ramp" in out and "GPU hours:" in out and "(quick run: two weekdays)" in out


def test_the_replayed_week_must_differ_from_the_training_week():
    with pytest.raises(SystemExit):
        replay.main(["--quick", "--train-seed", "3", "--replay-seed", "3"])
