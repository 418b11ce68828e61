"""The pieces of bench/capacity/replay.py: a synthetic week of demand and a step simulation of reactive scaling.

Demand (:func:`synthetic_week`): requests/s per minute for a week, Monday 00:00 first. Weekdays: a night floor, a steep
morning ramp (night to peak in one hour, starting around 07:30), a plateau with a lunch dip, an evening decline;
weekends a lower, flatter day. Seeded noise: each day's peak and ramp start vary, and every minute carries
multiplicative noise. Two seeds give two different weeks of the same pattern.

Scaling (:func:`simulate`), one step every ``Config.step_s`` (15 s, KEDA's default polling interval, and the HPA's
default sync period):

- the triggers, as genai-scale renders them: demand (requests/s over the last 2 minutes, like the tokens-per-second
  trigger's ``rate[2m]``) divided by ``replica_rps x target_utilization``; the queue (``waiting / queue_per_replica``,
  the queue-depth trigger); and, when given, the cron floor in effect (the highest active window). The HPA takes the
  maximum, clamped to [min, max];
- the HPA behaviour genai-scale renders (:func:`components.serving.vllm.autoscaling.hpa_behavior` defaults): scale up
  at once by at most max(100 %, 4 pods) per 60 s; scale down to the highest recommendation of the last 900 s, at most
  one pod per 300 s;
- a new pod waits for a node, the image pull and the model load (``Config.new_node_s``); a node released by a scale
  down stays up, empty, for ``node_keep_s`` (the NodePool's 10 min ``consolidateAfter``) and a new pod placed on it
  waits for the model load only (``Config.warm_node_s``). The phase figures come from
  :mod:`components.catalog.coldstart` (replay.py passes them in);
- service: ready replicas serve ``replica_rps`` each; requests beyond the ready capacity queue, and every request that
  is not served in the step it arrives misses the SLO (served from the backlog first, FIFO);
- GPU hours: every pod (starting or ready) and every empty node still up, one GPU each, for the time it exists.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from components.serving.vllm.args import AutoscalingSettings

MINUTES_PER_WEEK = 7 * 24 * 60


@dataclass(frozen=True)
class Shape:
    """The weekly pattern of :func:`synthetic_week` (requests/s)."""

    night_rps: float = 3.0
    peak_rps: float = 40.0
    weekend_peak_rps: float = 14.0
    ramp_start_min: int = 7 * 60 + 30
    """Minute of the day the weekday ramp starts (before the day's jitter)."""
    ramp_minutes: int = 60
    """Night to peak in this many minutes: the steep morning ramp."""
    lunch_dip: float = 0.15
    """Share of the peak lost 12:00-13:30."""
    decline_start_min: int = 17 * 60
    decline_minutes: int = 4 * 60
    day_jitter: float = 0.08
    """Each day's peak varies by up to this share (uniform)."""
    ramp_jitter_min: int = 10
    """Each day's ramp starts up to this many minutes early or late (uniform)."""
    minute_noise: float = 0.08
    """Standard deviation of the multiplicative per-minute noise."""


def _weekday(minute: int, s: Shape, peak: float, ramp_start: int) -> float:
    if minute < ramp_start:
        return s.night_rps
    if minute < ramp_start + s.ramp_minutes:
        return s.night_rps + (peak - s.night_rps) * (minute - ramp_start) / s.ramp_minutes
    if minute < s.decline_start_min:
        return peak * (1 - s.lunch_dip) if 12 * 60 <= minute < 13 * 60 + 30 else peak
    if minute < s.decline_start_min + s.decline_minutes:
        return peak + (s.night_rps - peak) * (minute - s.decline_start_min) / s.decline_minutes
    return s.night_rps


def _weekend(minute: int, s: Shape, peak: float) -> float:
    # a slow rise 09:00-12:00, flat to 18:00, down by 22:00
    if minute < 9 * 60 or minute >= 22 * 60:
        return s.night_rps
    if minute < 12 * 60:
        return s.night_rps + (peak - s.night_rps) * (minute - 9 * 60) / 180
    if minute < 18 * 60:
        return peak
    return peak + (s.night_rps - peak) * (minute - 18 * 60) / 240


def synthetic_week(seed: int, shape: Shape = Shape()) -> list[float]:
    """Requests/s for each minute of a week (10,080 values, Monday 00:00 first), seeded."""
    rng = random.Random(seed)
    out: list[float] = []
    for day in range(7):
        weekend = day >= 5
        peak = (shape.weekend_peak_rps if weekend else shape.peak_rps) * (1 + rng.uniform(-1, 1) * shape.day_jitter)
        ramp = shape.ramp_start_min + rng.randint(-shape.ramp_jitter_min, shape.ramp_jitter_min)
        for minute in range(24 * 60):
            base = _weekend(minute, shape, peak) if weekend else _weekday(minute, shape, peak, ramp)
            out.append(max(0.0, base * (1 + rng.gauss(0, shape.minute_noise))))
    return out


def is_ramp(minute_of_week: int, shape: Shape = Shape()) -> bool:
    """Whether a minute lies in a weekday's morning ramp window: from 30 min before the ramp's nominal start to 60 min
    after its end (07:00-09:30 with the defaults), where reactive scaling falls behind."""
    day, minute = divmod(minute_of_week % MINUTES_PER_WEEK, 24 * 60)
    lo = shape.ramp_start_min - 30
    return day < 5 and lo <= minute < shape.ramp_start_min + shape.ramp_minutes + 60


_A = AutoscalingSettings.model_fields
"""The rendered autoscaler's defaults (one place: components.serving.vllm.args)."""


@dataclass(frozen=True)
class Config:
    """The service and its autoscaler (defaults: genai-scale's rendered ScaledObject and HPA behaviour)."""

    replica_rps: float = 2.5
    """Requests/s one ready replica serves within the SLO."""
    min_replicas: int = 2
    max_replicas: int = 24
    target_utilization: float = _A["target_utilization"].default
    """The demand trigger scales at this share of ``replica_rps`` (``AutoscalingSettings.target_utilization``)."""
    queue_per_replica: float = float(_A["queue_depth_per_replica"].default)
    """Waiting requests per replica of the queue-depth trigger (``queue_depth_per_replica``)."""
    step_s: int = _A["polling_interval_seconds"].default
    rate_window_s: int = 120
    up_pods: int = _A["scale_up_pods_per_minute"].default
    """HPA scale-up: at most max(100 %, this many pods) per 60 s (``scale_up_pods_per_minute``)."""
    down_window_s: int = _A["scale_down_stabilization_seconds"].default
    """HPA scale-down stabilization window (``scale_down_stabilization_seconds``)."""
    down_period_s: int = _A["scale_down_period_seconds"].default
    """One pod removed per this many seconds (``scale_down_period_seconds``)."""
    new_node_s: float = 754.0
    """A pod on a new node: node + image pull + weights + compile (the scale tier: managed node groups, standard pull,
    streamed 8B weights, cold compile: 240 + 300 + 14.3 + 200 s)."""
    warm_node_s: float = 214.3
    """A pod on a node that is still up (image cached): weights + compile."""
    node_keep_s: int = 600
    """An empty node stays this long before it is removed (the NodePool's ``consolidateAfter``)."""


@dataclass
class Result:
    missed: float = 0.0
    """Requests not served in the step they arrived (over the SLO)."""
    missed_ramp: float = 0.0
    """Of those, the ones that arrived in a ramp window (:func:`is_ramp`)."""
    requests: float = 0.0
    gpu_hours: float = 0.0
    replicas: list[int] = field(default_factory=list)
    """Ready replicas per step."""


def serve(queue: float, arrivals: float, capacity: float) -> tuple[float, float]:
    """One step of service: the backlog first, then the new arrivals. Returns (new queue, arrivals that missed the
    SLO: the ones left waiting at the end of their step)."""
    for_new = max(0.0, capacity - queue)
    missed = max(0.0, arrivals - for_new)
    return max(0.0, queue + arrivals - capacity), missed


def scale_up_limit(replicas_a_minute_ago: int, pods: int) -> int:
    """HPA scale-up policies (Percent 100 / Pods N per 60 s, selectPolicy Max): the most replicas allowed now."""
    return max(2 * replicas_a_minute_ago, replicas_a_minute_ago + pods)


def simulate(demand_per_minute: list[float], cfg: Config, floor_per_minute: list[int] | None = None,
             shape: Shape = Shape()) -> Result:
    """Replay per-minute demand against the autoscaler; ``floor_per_minute`` is the cron floor in effect (None: purely
    reactive)."""
    steps_per_min = 60 // cfg.step_s
    res = Result()
    ready_at: list[float] = [0.0] * cfg.min_replicas      # pods, by the time they become ready
    empty_nodes: list[float] = []                          # removal time of each empty node
    queue = 0.0
    arrivals_window: deque[float] = deque(maxlen=cfg.rate_window_s // cfg.step_s)
    spec_history: deque[tuple[float, int]] = deque()       # (time, replicas) for the scale-up limit
    desired_history: deque[tuple[float, int]] = deque()    # (time, recommendation) for the down window
    last_down = -math.inf
    for minute, rps in enumerate(demand_per_minute):
        for k in range(steps_per_min):
            t = (minute * steps_per_min + k) * cfg.step_s
            empty_nodes = [x for x in empty_nodes if x > t]
            ready = sum(1 for r in ready_at if r <= t)
            arrivals = rps * cfg.step_s
            queue, missed = serve(queue, arrivals, ready * cfg.replica_rps * cfg.step_s)
            res.requests += arrivals
            res.missed += missed
            if is_ramp(minute, shape):
                res.missed_ramp += missed
            arrivals_window.append(arrivals)
            res.gpu_hours += (len(ready_at) + len(empty_nodes)) * cfg.step_s / 3600
            res.replicas.append(ready)
            # KEDA + HPA
            rate = sum(arrivals_window) / (len(arrivals_window) * cfg.step_s)
            want = max(math.ceil(rate / (cfg.replica_rps * cfg.target_utilization) - 1e-9),
                       math.ceil(queue / cfg.queue_per_replica - 1e-9),
                       floor_per_minute[minute] if floor_per_minute else 0)
            want = min(cfg.max_replicas, max(cfg.min_replicas, want))
            desired_history.append((t, want))
            while desired_history[0][0] <= t - cfg.down_window_s:
                desired_history.popleft()
            spec_history.append((t, len(ready_at)))
            while spec_history[0][0] < t - 60:
                spec_history.popleft()
            current = len(ready_at)
            if want > current:
                target = min(want, scale_up_limit(spec_history[0][1], cfg.up_pods))
                for _ in range(max(0, target - current)):
                    if empty_nodes:
                        empty_nodes.pop()
                        ready_at.append(t + cfg.warm_node_s)
                    else:
                        ready_at.append(t + cfg.new_node_s)
            else:
                recommended = max(d for _, d in desired_history)
                if recommended < current and t - last_down >= cfg.down_period_s:
                    # the ReplicaSet removes a pod that is not ready first, else the newest
                    ready_at.sort(key=lambda r: (r <= t, -r))
                    ready_at.pop(0)
                    empty_nodes.append(t + cfg.node_keep_s)
                    last_down = t
    return res
