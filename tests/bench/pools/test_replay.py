"""bench/pools: the simulation's semantics on hand-made traces (one load per cold model, in-flight engines never
evicted, a wake cheaper than a load), its seeded trace, the bisection, and a tiny run of the CLI."""

import pytest

from bench.pools import _sim as sim
from bench.pools import replay
from serving.gateway.pool_policy import Lfu, Lru

P = 4.2  # Phi-3-vision's size: wake 0.82 s, full load 58.1 s (anchors)
WAKE, LOAD = 0.82, 58.1


def tiny(models: int = 2, gpus: int = 1, **kw) -> sim.Scenario:
    return sim.Scenario(models=models, gpus=gpus, warmup_seconds=0.0, duration_seconds=1000.0, **kw)


def test_times_interpolate_between_the_cited_anchors_and_stay_flat_outside():
    assert sim.interpolate(sim.WAKE_L1, 4.2) == WAKE and sim.interpolate(sim.COLD_LOAD, 4.2) == LOAD
    assert sim.interpolate(sim.WAKE_L1, 0.1) == 0.26 and sim.interpolate(sim.COLD_LOAD, 100) == 85.3
    assert sim.interpolate(sim.WAKE_L1, 2.4) == pytest.approx((0.26 + 0.82) / 2)
    assert all(a.source.startswith("https://") for a in sim.WAKE_L1 + sim.COLD_LOAD)
    # service time: 200 tokens at 4,679 tokens/s over 25 streams (NIM figure)
    assert sim.Scenario().service_seconds() == pytest.approx(200 / (4679 / 25))


def test_a_herd_on_one_cold_model_triggers_one_load_and_all_wait_on_it():
    trace = sim.Trace((P, P), ((0.0, 0), (0.1, 0), (0.2, 0), (5.0, 0)))
    r = sim.simulate(tiny(), Lru(), trace)
    assert (r.loads, r.wakes, r.evictions, r.requests, r.hot) == (1, 0, 0, 4, 0)
    assert r.waits == pytest.approx([LOAD, LOAD - 0.1, LOAD - 0.2, LOAD - 5.0])


def test_a_busy_engine_is_not_evicted_the_request_waits_for_it_then_swaps():
    service = tiny().service_seconds()
    # m0 loads (58.1 s) and serves until 58.1 + service; m1 arrives while m0 is busy on the only slot
    trace = sim.Trace((P, P), ((0.0, 0), (LOAD + 0.01, 1), (LOAD + service + 200, 0)))
    r = sim.simulate(tiny(), Lru(), trace)
    start = LOAD + service  # m0 idle: now it may be put to sleep
    assert r.waits[1] == pytest.approx(start - (LOAD + 0.01) + WAKE + LOAD)  # sleep m0, then load m1
    # m0 was put to sleep at level 1 (host RAM): coming back is a swap of seconds, not a load
    assert r.waits[2] == pytest.approx(WAKE + WAKE)
    assert (r.loads, r.wakes, r.evictions, r.discards) == (2, 1, 2, 0)


def test_without_host_ram_for_sleep_an_evicted_model_goes_cold():
    service = tiny().service_seconds()
    trace = sim.Trace((P, P), ((0.0, 0), (LOAD + service + 1, 1), (3 * LOAD, 0)))
    r = sim.simulate(tiny(host_ram_fraction=0.0), Lru(), trace)
    assert r.waits[2] == pytest.approx(WAKE + LOAD) and (r.loads, r.wakes, r.discards) == (3, 0, 2)


def test_the_policy_chooses_the_pool_wide_victim():
    # 2 GPUs, 3 models: m0 used three times, m1 once more recently; m2 cold needs a slot
    t = LOAD + 10
    arrivals = ((0.0, 0), (0.0, 1), (t, 0), (t + 1, 0), (t + 2, 0), (t + 3, 1), (t + 50, 2))
    trace = sim.Trace((P, P, P), arrivals)
    lru, lfu = (sim.simulate(tiny(models=3, gpus=2), p, trace) for p in (Lru(), Lfu()))
    # lru evicts m0 (older last use), lfu evicts m1 (fewer uses); either way m2 waits sleep + load
    assert lru.waits[-1] == lfu.waits[-1] == pytest.approx(WAKE + LOAD)
    after = ((t + 200, 0), (t + 300, 1))  # far apart: served in arrival order
    lru2 = sim.simulate(tiny(models=3, gpus=2), Lru(), sim.Trace((P, P, P), arrivals + after))
    lfu2 = sim.simulate(tiny(models=3, gpus=2), Lfu(), sim.Trace((P, P, P), arrivals + after))
    assert lru2.waits[-2:] == pytest.approx([2 * WAKE, 0.0]), "lru had put m0 to sleep, m1 still hot"
    assert lfu2.waits[-2:] == pytest.approx([0.0, 2 * WAKE]), "lfu had put m1 to sleep, m0 still hot"


def test_the_trace_is_seeded_zipf_and_shared_by_every_policy():
    sc = sim.Scenario(models=20, duration_seconds=600, warmup_seconds=0)
    a, b = sim.make_trace(sc), sim.make_trace(sc)
    assert a == b and a != sim.make_trace(sim.Scenario(models=20, duration_seconds=600, warmup_seconds=0, seed=3))
    counts = [0] * 20
    for _, m in a.arrivals:
        counts[m] += 1
    assert max(counts) > 3 * sorted(counts)[10], "the most popular model gets several times the median's traffic"
    assert len(a.arrivals) == pytest.approx(600 * sc.rate_per_second, rel=0.15)
    assert set(a.params_b) <= {sim.models.CATALOG[m].parameters_billion for m in sim.BASES}
    r1, r2 = (sim.simulate(sc, Lru(), a) for _ in range(2))
    assert r1.waits == r2.waits, "deterministic"


def test_one_gpu_per_model_serves_everything_hot_after_the_warm_up():
    sc = sim.Scenario(models=10, gpus=10, rate_per_second=2.0, duration_seconds=900, warmup_seconds=600)
    full = sim.simulate(sc, Lru())
    assert full.hot_share == 1.0 and full.loads == 0
    assert sim.simulate(sim.Scenario(models=10, gpus=2, rate_per_second=2.0, duration_seconds=900,
                                     warmup_seconds=600), Lru()).hot_share < 1.0


def test_gpus_needed_bisects_to_the_first_size_that_meets_the_target():
    seen = []

    def run_at(g: int) -> sim.Result:
        seen.append(g)
        r = sim.Result("x", g, requests=1, hot=int(g >= 37))
        return r

    assert sim.gpus_needed(run_at, lambda r: r.hot_share >= 1, 100) == 37
    assert len(seen) <= 9
    assert sim.gpus_needed(run_at, lambda r: False, 100) is None


def test_cli_tiny_run_prints_every_policy_both_runs_and_the_winner(capsys):
    assert replay.main(["--models", "12", "--gpus", "3", "--duration", "600", "--warmup", "120", "--rate", "0.5"]) == 0
    out = capsys.readouterr().out
    for name in ("lru", "lfu", "cost-aware", "dedicated"):
        assert out.count(f"\n{name} ") == 2, name
    assert "== stationary Zipf s=1" in out and "== drifting popularity" in out
    assert "lfu vs lru: hot share x" in out and "GPUs p99<=5s" in out
    assert "\nwinner: " in out and "DEFAULT_POLICY = 'lru'" in out
    assert replay.main(["--models", "8", "--gpus", "2", "--duration", "300", "--warmup", "60", "--no-sweep"]) == 0
    quick = capsys.readouterr().out
    assert "(mean wait over both runs (no GPU sweep))" in quick and "none <= models" not in quick


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        replay.main(["--gpus", "0", "--rate", "-1"])
    err = capsys.readouterr().err
    assert "--gpus (0) must be > 0" in err and "--rate (-1.0) must be > 0" in err
