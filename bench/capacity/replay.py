"""Pre-scaling before the peak: replay a synthetic week of demand against reactive scaling, with and without the cron
floors genai-scale derives from a traffic profile, and print requests over the SLO and GPU hours for both.

Held out: the traffic profile is estimated from a DIFFERENT week than the one replayed (another seed of the same
pattern: a different peak each day, ramps starting up to 10 minutes earlier or later, other per-minute noise). The
profile goes through the same path a stack's history file does: the training week's per-minute rows as CSV into
:meth:`components.capacity.schedule.TrafficProfile.from_history_csv` (the p95 of each hour of the week), then
:func:`~components.capacity.schedule.cron_floors` with :func:`~components.capacity.schedule.lead_minutes` from the
cold-start catalogue. The simulation and its sources are in ``bench/capacity/_sim.py``.

Target (issue 19): at least 80 % fewer SLO misses at the peak ramp for at most 15 % more GPU hours.

Run: .venv/bin/python bench/capacity/replay.py [--train-seed 11] [--replay-seed 29] [--replica-rps 2.5]
[--min-replicas 2] [--max-replicas 24] [--provisioner managed-node-groups|karpenter] [--no-streamer] [--quick]
(``--quick``: two weekdays of the pattern instead of the week, for the tests.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.capacity._sim import MINUTES_PER_WEEK, Config, Result, Shape, simulate, synthetic_week  # noqa: E402
from components.capacity.schedule import (CronFloor, TrafficProfile, cron_floors, floor_intervals,  # noqa: E402
                                          lead_minutes)
from components.catalog.coldstart import phase_seconds  # noqa: E402

PARAMS_B = 8.03
"""The replayed service: Llama 3.1 8B, one GPU per replica (the cold-start figures' reference model)."""
QUICK_MINUTES = 2 * 24 * 60


def history_csv(demand_per_minute: list[float]) -> str:
    """A week of per-minute demand as the history file a stack would give (naive timestamps from Monday
    2026-11-02, in the profile's time zone)."""
    rows = ["timestamp,requests_per_second"]
    for m, rps in enumerate(demand_per_minute):
        day, rest = divmod(m, 24 * 60)
        rows.append(f"2026-11-{2 + day:02d}T{rest // 60:02d}:{rest % 60:02d}:00,{rps:.4f}")
    return "\n".join(rows) + "\n"


def floor_per_minute(floors: tuple[CronFloor, ...], minutes: int) -> list[int]:
    """The cron floor in effect in each minute (KEDA: the highest window containing it; 0 outside every window)."""
    out = [0] * MINUTES_PER_WEEK
    for f in floors:
        for start, end in floor_intervals(f):
            for m in range(start, end):
                out[m % MINUTES_PER_WEEK] = max(out[m % MINUTES_PER_WEEK], f.desired_replicas)
    return out[:minutes]


def run(*, train_seed: int, replay_seed: int, cfg: Config, lead: int, quick: bool = False,
        shape: Shape = Shape()) -> tuple[Result, Result, tuple[CronFloor, ...]]:
    """(reactive, with floors, the floors) for one held-out replay."""
    profile = TrafficProfile.from_history_csv(history_csv(synthetic_week(train_seed, shape)))
    floors = cron_floors(profile, cfg.replica_rps, lead_minutes=lead, min_replicas=cfg.min_replicas,
                         max_replicas=cfg.max_replicas)
    demand = synthetic_week(replay_seed, shape)
    minutes = QUICK_MINUTES if quick else MINUTES_PER_WEEK
    demand = demand[:minutes]
    return (simulate(demand, cfg, None, shape), simulate(demand, cfg, floor_per_minute(floors, minutes), shape),
            floors)


def _fewer(a: float, b: float) -> str:
    return f"{(1 - b / a) * 100:.1f} % fewer" if a else "n/a (none without floors)"


def report(reactive: Result, floored: Result, floors: tuple[CronFloor, ...], *, lead: int, quick: bool) -> str:
    lines = [f"cron floors (lead {lead} min, profile from the training week):"]
    lines += [f"  {f.start:<16} -> {f.end:<16} {f.desired_replicas:>3} replicas ({f.timezone})" for f in floors]
    head = f"{'scaling':<22} {'requests':>10} {'over SLO':>10} {'at ramp':>9} {'GPU hours':>10}"
    lines += ["", head, "-" * len(head)]
    for name, r in (("reactive (KEDA + HPA)", reactive), ("+ cron floors", floored)):
        lines.append(f"{name:<22} {r.requests:>10.0f} {r.missed:>10.0f} {r.missed_ramp:>9.0f} {r.gpu_hours:>10.1f}")
    gpu = floored.gpu_hours / reactive.gpu_hours - 1
    ramp_cut = 1 - floored.missed_ramp / reactive.missed_ramp if reactive.missed_ramp else 0.0
    met = ramp_cut >= 0.8 and gpu <= 0.15
    lines += ["",
              f"SLO misses: {_fewer(reactive.missed, floored.missed)} in total, "
              f"{_fewer(reactive.missed_ramp, floored.missed_ramp)} at the peak ramp",
              f"GPU hours: {gpu * 100:+.1f} % ({floored.gpu_hours:.1f} / {reactive.gpu_hours:.1f})",
              f"target (>= 80 % fewer misses at the ramp for <= 15 % more GPU hours): {'met' if met else 'NOT met'}"
              + (" (quick run: two weekdays)" if quick else "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-seed", type=int, default=11, help="seed of the week the profile is estimated from")
    ap.add_argument("--replay-seed", type=int, default=29, help="seed of the week replayed (held out)")
    ap.add_argument("--replica-rps", type=float, default=Config.replica_rps)
    ap.add_argument("--min-replicas", type=int, default=Config.min_replicas)
    ap.add_argument("--max-replicas", type=int, default=Config.max_replicas)
    ap.add_argument("--provisioner", choices=["managed-node-groups", "karpenter"], default="managed-node-groups")
    ap.add_argument("--no-streamer", action="store_true", help="download then load the weights (no Run:ai streamer)")
    ap.add_argument("--quick", action="store_true", help="two weekdays instead of the week")
    a = ap.parse_args(argv)
    if a.train_seed == a.replay_seed:
        ap.error("--train-seed and --replay-seed must differ (the profile is estimated from a held-out week)")
    cold = phase_seconds(PARAMS_B, provisioner=a.provisioner, streamer=not a.no_streamer)
    warm = phase_seconds(PARAMS_B, provisioner=a.provisioner, streamer=not a.no_streamer, new_node=False,
                         weights_on_disk=False)
    cfg = Config(replica_rps=a.replica_rps, min_replicas=a.min_replicas, max_replicas=a.max_replicas,
                 new_node_s=sum(cold.values()), warm_node_s=sum(warm.values()))
    lead = lead_minutes(cold["node"], cold["image"], cold["weights"] + cold["compile"])
    reactive, floored, floors = run(train_seed=a.train_seed, replay_seed=a.replay_seed, cfg=cfg, lead=lead,
                                    quick=a.quick)
    print(f"Llama 3.1 8B, 1 GPU per replica, {cfg.replica_rps:g} req/s per replica, {cfg.min_replicas}-"
          f"{cfg.max_replicas} replicas; new pod on a new node {cfg.new_node_s:.0f} s, on a kept node "
          f"{cfg.warm_node_s:.0f} s ({a.provisioner}{', streamer' if not a.no_streamer else ''}); "
          f"train seed {a.train_seed}, replay seed {a.replay_seed} (held out)\n")
    print(report(reactive, floored, floors, lead=lead, quick=a.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
