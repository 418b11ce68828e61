"""Replay a seeded trace of 100 models with Zipf popularity over a dynamic pool of 10 GPUs, once per eviction policy
(``serving/gateway/pool_policy.py``: lru, lfu, cost-aware), and print what each gives: the share of requests served
hot, the p50/p99 added wait, loads, wakes, evictions, and the GPUs the pool needs to meet a latency SLO (p99 added
wait <= 5 s: the reference's goal for a sleep-mode hot swap, anchors-next §6) and a hot-share target, against one
dedicated GPU per model (the seed's 100-over-10 example, seed 003 §4.4 D).

Two runs: a stationary Zipf (s = 1.0) trace, and a drifting one (every 10 minutes three of the 20 most popular models
trade ranks with random others, and the rate swings +-50% over a compressed two-hour "day"). The simulation, its
states and the sources of its wake, load and service times are in ``bench/pools/_sim.py``. The winner is the policy
needing the fewest GPUs for the SLO over both runs, then for the hot-share target, then with the lower mean wait;
``serving/gateway/pool_policy.DEFAULT_POLICY`` should name it (the last line says whether it does).

Run: .venv/bin/python bench/pools/replay.py [--models 100] [--gpus 10] [--hot-slots 1] [--rate 1.0] [--zipf 1.0]
[--duration 7200] [--warmup 900] [--seed 17] [--instance-type g6e.4xlarge] [--host-ram-fraction 0.7]
[--uniform-params-b 8.03] [--half-life 1800] [--slo-p99 5] [--hot-target 0.8] [--no-sweep]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.pools._sim import (
    COLD_LOAD,
    WAKE_L1,
    Result,
    Scenario,
    Trace,
    gpus_needed,
    interpolate,
    make_trace,
    simulate,
)
from serving.gateway.pool_policy import (
    DEFAULT_POLICY,
    HALF_LIFE_SECONDS,
    CostAware,
    EvictionPolicy,
    Lfu,
    Lru,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/pools/replay.py", description=__doc__.split("\n\n")[0])
    d = Scenario()
    p.add_argument("--models", type=int, default=d.models)
    p.add_argument("--gpus", type=int, default=d.gpus)
    p.add_argument("--hot-slots", type=int, default=d.hot_slots, help="engines awake per GPU (default 1)")
    p.add_argument("--rate", type=float, default=1.0, help="pool arrival rate, requests/s (default 1.0)")
    p.add_argument("--zipf", type=float, default=d.zipf_s, help="Zipf exponent s (default 1.0)")
    p.add_argument("--duration", type=float, default=d.duration_seconds, help="counted seconds (default 7200)")
    p.add_argument("--warmup", type=float, default=d.warmup_seconds, help="uncounted seconds first (default 900)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--instance-type", default=d.instance_type, help="node type: host RAM for level-1 sleep")
    p.add_argument("--host-ram-fraction", type=float, default=d.host_ram_fraction,
                   help="share of host RAM for sleeping weights (default 0.7)")
    p.add_argument("--uniform-params-b", type=float, default=None,
                   help="every model this many billion parameters (default: the mixed 0.5B-14.8B registry)")
    p.add_argument("--half-life", type=float, default=HALF_LIFE_SECONDS,
                   help=f"decay half-life of lfu and cost-aware, seconds (default {HALF_LIFE_SECONDS:g})")
    p.add_argument("--slo-p99", type=float, default=5.0, help="p99 added-wait SLO for the GPU count (default 5 s)")
    p.add_argument("--hot-target", type=float, default=0.8, help="hot-share target for the GPU count (default 0.8)")
    p.add_argument("--no-sweep", action="store_true", help="skip the GPUs-needed search (faster)")
    a = p.parse_args(argv)
    bad = [f"--{k.replace('_', '-')} ({v}) must be > 0" for k, v in
           (("models", a.models), ("gpus", a.gpus), ("hot_slots", a.hot_slots), ("rate", a.rate),
            ("duration", a.duration), ("half_life", a.half_life)) if not v > 0]
    if bad:
        p.error("; ".join(bad))
    return a


def policies(half_life: float) -> dict[str, Callable[[], EvictionPolicy]]:
    return {"lru": Lru, "lfu": lambda: Lfu(half_life), "cost-aware": lambda: CostAware(half_life)}


def runs(a: argparse.Namespace) -> list[tuple[str, Scenario]]:
    base = Scenario(models=a.models, gpus=a.gpus, hot_slots=a.hot_slots, rate_per_second=a.rate, zipf_s=a.zipf,
                    duration_seconds=a.duration, warmup_seconds=a.warmup, seed=a.seed, instance_type=a.instance_type,
                    host_ram_fraction=a.host_ram_fraction, uniform_params_b=a.uniform_params_b)
    drift = replace(base, drift_every_seconds=600.0, drift_swaps=3, diurnal_amplitude=0.5,
                    diurnal_period_seconds=a.duration)
    return [(f"stationary Zipf s={a.zipf:g}", base),
            ("drifting popularity (3 of the top 20 swap ranks every 10 min) and a +-50% diurnal rate", drift)]


def fmt_gpus(g: int | None, swept: bool = True) -> str:
    return "-" if not swept else ("none <= models" if g is None else str(g))


def report_run(title: str, sc: Scenario, a: argparse.Namespace, out: list[str]) -> dict[str, tuple]:
    trace: Trace = make_trace(sc)
    makers = policies(a.half_life)
    counted = sum(t >= sc.warmup_seconds for t, _ in trace.arrivals)
    out.append(f"\n== {title}: {len(trace.arrivals):,} arrivals ({counted:,} counted), {sc.gpus} GPUs")
    out.append(f"{'policy':<11} {'hot':>6} {'p50 wait':>9} {'p99 wait':>9} {'mean':>7} {'>hold':>6} {'loads':>6} "
               f"{'wakes':>6} {'evict':>6} {'drop':>5} {'GPUs p99<=' + format(a.slo_p99, 'g') + 's':>14} "
               f"{'GPUs hot>=' + format(a.hot_target, 'g'):>14}")
    scores: dict[str, tuple] = {}
    for name, make in makers.items():
        memo: dict[int, Result] = {}

        def run_at(g: int, make: Callable[[], EvictionPolicy] = make, memo: dict[int, Result] = memo) -> Result:
            if g not in memo:
                memo[g] = simulate(replace(sc, gpus=g), make(), trace, half_life_seconds=a.half_life)
            return memo[g]

        r = run_at(sc.gpus)
        if a.no_sweep:
            slo = hot = None
        else:
            slo = gpus_needed(run_at, lambda x: x.wait_quantile(0.99) <= a.slo_p99, sc.models)
            hot = gpus_needed(run_at, lambda x: x.hot_share >= a.hot_target, sc.models)
        out.append(f"{name:<11} {r.hot_share:>6.1%} {r.wait_quantile(0.5):>8.2f}s {r.wait_quantile(0.99):>8.1f}s "
                   f"{r.mean_wait:>6.2f}s {r.over_hold / max(r.requests, 1):>6.1%} {r.loads:>6} {r.wakes:>6} "
                   f"{r.evictions:>6} {r.discards:>5} {fmt_gpus(slo, not a.no_sweep):>14} "
                   f"{fmt_gpus(hot, not a.no_sweep):>14}")
        big = 0 if a.no_sweep else 10 * sc.models  # no sweep: the mean wait decides
        scores[name] = (slo if slo is not None else big, hot if hot is not None else big, r.mean_wait, -r.hot_share,
                        r)
    out.append(f"{'dedicated':<11} {1:>6.1%} {0:>8.2f}s {0:>8.1f}s {0:>6.2f}s {0:>6.1%} {'-':>6} {'-':>6} {'-':>6} "
               f"{'-':>5} {sc.models:>14} {sc.models:>14}   (one GPU per model, always hot)")
    lru = scores["lru"][4]
    for name in ("lfu", "cost-aware"):
        r = scores[name][4]
        p99 = _ratio(r.wait_quantile(0.99), lru.wait_quantile(0.99))
        out.append(f"  {name} vs lru: hot share x{_ratio(r.hot_share, lru.hot_share)}, mean wait "
                   f"x{_ratio(r.mean_wait, lru.mean_wait)}, p99 wait x{p99}, loads x{_ratio(r.loads, lru.loads)}")
    if not a.no_sweep:
        for name, s in scores.items():
            if s[0] <= sc.models:
                out.append(f"  {name}: {s[0]} GPUs meet p99 <= {a.slo_p99:g}s = {s[0] / sc.models:.0%} of the "
                           f"{sc.models} dedicated GPUs ({sc.models / s[0]:.1f}x fewer)")
    return scores


def _ratio(x: float, y: float) -> str:
    return "inf" if y == 0 and x > 0 else ("1.00" if y == 0 else f"{x / y:.2f}")


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    started = time.monotonic()
    sc0 = runs(a)[0][1]
    out = [
        (f"bench/pools: {a.models} models over {a.gpus} GPUs ({a.instance_type}, {a.hot_slots} engine(s) awake per "
         f"GPU, level-1 sleep in {sc0.warm_budget_gib():.1f} GiB of host RAM per node), Poisson {a.rate:g} req/s, "
         f"{a.duration:g}s counted after {a.warmup:g}s warm-up, seed {a.seed}"),
        (f"times: service {sc0.service_seconds():.2f}s/request (NIM Llama-3.1-8B, 4,679 tok/s at 25 streams, "
         f"{sc0.output_tokens} tokens); wake from level 1 {interpolate(WAKE_L1, 1.0):.2f}s (1B) / "
         f"{interpolate(WAKE_L1, 8.03):.2f}s (8B) / {interpolate(WAKE_L1, 14.8):.2f}s (14.8B); full load "
         f"{interpolate(COLD_LOAD, 1.0):.1f}s / {interpolate(COLD_LOAD, 8.03):.1f}s / "
         f"{interpolate(COLD_LOAD, 14.8):.1f}s (vLLM sleep-mode blog 2025-10-26, llm-d#2492); sleep = wake time"),
        ("columns: hot = served with no added wait; >hold = waited past the 60 s hold bound (503 in the gateway); "
         "drop = sleeping models dropped to cold for host RAM"),
    ]
    total: dict[str, list[float]] = {}
    for title, sc in runs(a):
        for name, s in report_run(title, sc, a, out).items():
            acc = total.setdefault(name, [0.0, 0.0, 0.0, 0.0])
            for i in range(4):
                acc[i] += s[i]
    winner = min(total, key=lambda n: tuple(total[n]))
    how = ("fewest GPUs for the SLO, then for the hot-share target, then mean wait, over both runs" if not a.no_sweep
           else "mean wait over both runs (no GPU sweep)")
    out.append(f"\nwinner: {winner} ({how}); DEFAULT_POLICY = {DEFAULT_POLICY!r}"
               f"{' (matches)' if winner == DEFAULT_POLICY else ' (differs: see docs/pools.md)'}")
    out.append(f"took {time.monotonic() - started:.1f}s")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
