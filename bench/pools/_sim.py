"""The discrete-event simulation behind ``bench/pools/replay.py``: a dynamic model pool of ``gpus`` single-GPU nodes,
each with ``hot_slots`` awake engines, serving a seeded Poisson trace over ``models`` models with Zipf popularity.

States and moves (the gateway pool controller's semantics, ``serving/gateway/pools.py``):
- **hot**: awake on a GPU; a request is served at once (service time from a throughput figure).
- **warm**: asleep at level 1 on one node: weights in that node's host RAM (a budget: ``host_ram_fraction`` of the
  instance's memory from ``components/catalog/accelerators.py``); waking it needs a hot slot on *that* node.
- **cold**: nowhere; it needs a full load (process start, weights, compile, CUDA graphs) on any node.
A request for a model that is not hot is held while it wakes or loads; every request for that model arriving
meanwhile waits on the same wake/load (one per model at a time). To free a slot the eviction policy
(``serving/gateway/pool_policy.py``) picks a victim among the idle hot engines (never one with in-flight requests:
when all are busy the request waits for one to finish); the victim goes to sleep (level 1) on its node, and when that
node's host RAM budget is full the policy picks which sleeping model is dropped to cold. A cold model is loaded on a
node with a free slot, else on the node of the pool-wide victim. The swap takes sleep(victim) + wake or load(model).

Times (seconds, by model size in billions of bf16 parameters, linear between the anchors, flat outside them):
- wake from level 1: Qwen3-0.6B 0.26 s and Phi-3-vision (4.2B) 0.82 s on A100 (vLLM blog "Zero-Reload Model Switching
  with vLLM Sleep Mode", 2025-10-26, performance summary table, vLLM 0.11.0); Qwen3-32B 4.0 s "hot start" on H100
  (llm-d/llm-d#2492, Fast Model Actuation, as noted in the project's reference, anchors-next §5).
- full load (cold): Qwen3-0.6B 37.6 s and Phi-3-vision 58.1 s average switch time without sleep mode (same blog,
  level-2 table); Qwen3-32B 85.3 s "warm start" (llm-d/llm-d#2492). The blog's range for a reload is 30-100+ s.
- sleep to level 1: taken equal to the wake time (the same weights cross PCIe the other way; an assumption: the
  blog does not time the sleep call).
- service: output tokens / (4,679 tokens/s / 25 streams), the NIM figure for Llama-3.1-8B at concurrency 25
  (``components/catalog/throughput.py``), the same for every model (a simplification).

Pure and deterministic: the same scenario and seed give the same trace and results, whatever the policy.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise

from components.catalog import accelerators, models, throughput
from serving.gateway.pool_policy import (
    HALF_LIFE_SECONDS,
    EvictionPolicy,
    ModelUse,
    record_use,
)

BLOG = "https://blog.vllm.ai/2025/10/26/sleep-mode.html"
LLMD = "https://github.com/llm-d/llm-d/issues/2492"


@dataclass(frozen=True)
class Anchor:
    """One measured time: a model size (billions of parameters) and seconds, with its source."""

    params_b: float
    seconds: float
    source: str


WAKE_L1: tuple[Anchor, ...] = (
    Anchor(0.6, 0.26, BLOG + " (Qwen3-0.6B, level-1 wake, A100)"),
    Anchor(4.2, 0.82, BLOG + " (Phi-3-vision-128k, level-1 wake, A100)"),
    Anchor(32.8, 4.0, LLMD + " (Qwen3-32B, hot start, H100)"),
)
COLD_LOAD: tuple[Anchor, ...] = (
    Anchor(0.6, 37.6, BLOG + " (Qwen3-0.6B, switch without sleep mode, A100)"),
    Anchor(4.2, 58.1, BLOG + " (Phi-3-vision-128k, switch without sleep mode, A100)"),
    Anchor(32.8, 85.3, LLMD + " (Qwen3-32B, warm start, H100)"),
)

BASES: tuple[str, ...] = (
    "Qwen/Qwen2.5-0.5B-Instruct", "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3", "Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct",
)
"""Base models of the simulated registry (fine-tunes of these; parameter counts from ``components/catalog/models``).
Each fits one L40S (48 GB) in bf16 with room for its KV cache."""


def interpolate(anchors: Sequence[Anchor], params_b: float) -> float:
    """Seconds for a model of ``params_b`` billion parameters: linear between anchors, flat beyond the ends."""
    if params_b <= anchors[0].params_b:
        return anchors[0].seconds
    for lo, hi in pairwise(anchors):
        if params_b <= hi.params_b:
            return lo.seconds + (params_b - lo.params_b) / (hi.params_b - lo.params_b) * (hi.seconds - lo.seconds)
    return anchors[-1].seconds


def weights_gib(params_b: float) -> float:
    """bf16 weights: 2 bytes per parameter."""
    return params_b * 1e9 * 2 / 2**30


@dataclass(frozen=True)
class Scenario:
    """One simulated pool and trace. Defaults: the seed's example (100 models over 10 GPUs), Zipf s = 1.0."""

    models: int = 100
    gpus: int = 10
    hot_slots: int = 1
    """Engines awake per GPU (``hotEnginesPerReplica``)."""
    instance_type: str = "g6e.4xlarge"
    """One L40S (48 GB) and 128 GiB of host RAM per node."""
    host_ram_fraction: float = 0.7
    """Share of the node's RAM that may hold sleeping (level-1) weights; the rest is the OS, kubelet, the engines'
    own processes and headroom."""
    zipf_s: float = 1.0
    rate_per_second: float = 2.0
    """Mean arrival rate of the whole pool (Poisson)."""
    duration_seconds: float = 7200.0
    warmup_seconds: float = 900.0
    """Arrivals before this are simulated but not counted (the pool starts empty)."""
    output_tokens: int = 200
    seed: int = 17
    drift_every_seconds: float = 0.0
    """0: stationary popularity. Otherwise, every this many seconds ``drift_swaps`` models of the top 20 ranks trade
    places with random others (a popular model fades, a tail model rises)."""
    drift_swaps: int = 3
    diurnal_amplitude: float = 0.0
    """The rate follows ``rate x (1 + a sin(2 pi t / diurnal_period_seconds))`` (0: flat)."""
    diurnal_period_seconds: float = 7200.0
    uniform_params_b: float | None = None
    """Every model this size (e.g. 8.03, all Llama-3.1-8B fine-tunes) instead of the mixed registry."""
    hold_timeout_seconds: float = 60.0
    """The gateway's default bound on a held request: a wait past it is a 503 in the real pool (counted here)."""

    def service_seconds(self) -> float:
        f = throughput.figure("llama-3.1-8b-instruct", "online")
        per_stream = f.value / (f.concurrency or 1)
        return self.output_tokens / per_stream

    def warm_budget_gib(self) -> float:
        spec = accelerators.lookup(self.instance_type)
        if spec is None:
            raise ValueError(f"instance_type ({self.instance_type!r}) is not in the accelerator catalogue")
        return spec.memory_gib_host * self.host_ram_fraction


@dataclass(frozen=True)
class Trace:
    """The models' sizes and the arrivals (time, model index), the same for every policy."""

    params_b: tuple[float, ...]
    arrivals: tuple[tuple[float, int], ...]


def make_trace(sc: Scenario) -> Trace:
    """Seeded arrivals: Poisson (thinned for the diurnal rate), a model by Zipf rank, ranks drifting if asked."""
    rng = random.Random(sc.seed)
    if sc.uniform_params_b is not None:
        sizes = tuple(sc.uniform_params_b for _ in range(sc.models))
    else:
        base_sizes = [models.CATALOG[b].parameters_billion for b in BASES]
        sizes = tuple(rng.choice(base_sizes) for _ in range(sc.models))
    cum = list(accumulate(1.0 / (r + 1) ** sc.zipf_s for r in range(sc.models)))
    rank_to_model = list(range(sc.models))
    rng.shuffle(rank_to_model)
    peak = sc.rate_per_second * (1 + abs(sc.diurnal_amplitude))
    t, next_drift, out = 0.0, sc.drift_every_seconds or math.inf, []
    end = sc.warmup_seconds + sc.duration_seconds
    while True:
        t += rng.expovariate(peak)
        if t >= end:
            break
        while t >= next_drift:
            for _ in range(sc.drift_swaps):
                a, b = rng.randrange(min(20, sc.models)), rng.randrange(sc.models)
                rank_to_model[a], rank_to_model[b] = rank_to_model[b], rank_to_model[a]
            next_drift += sc.drift_every_seconds
        rate = sc.rate_per_second * (1 + sc.diurnal_amplitude * math.sin(2 * math.pi * t / sc.diurnal_period_seconds))
        if rng.random() * peak > rate:
            continue
        rank = bisect_left(cum, rng.random() * cum[-1])
        out.append((t, rank_to_model[min(rank, sc.models - 1)]))
    return Trace(sizes, tuple(out))


@dataclass
class Result:
    """What one policy did on one trace (counted after the warm-up)."""

    policy: str
    gpus: int
    requests: int = 0
    hot: int = 0
    waits: list[float] = field(default_factory=list)
    """Added wait of every counted request (0 when served hot)."""
    loads: int = 0
    wakes: int = 0
    evictions: int = 0
    """Hot engines put to sleep to free a slot."""
    discards: int = 0
    """Sleeping models dropped to cold to free host RAM."""
    over_hold: int = 0
    """Requests that waited longer than the hold timeout (a 503 in the real pool)."""

    @property
    def hot_share(self) -> float:
        return self.hot / self.requests if self.requests else 1.0

    def wait_quantile(self, q: float) -> float:
        """The q-quantile of the added wait (nearest rank)."""
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def mean_wait(self) -> float:
        return sum(self.waits) / len(self.waits) if self.waits else 0.0


_ARRIVE, _READY, _DONE = 0, 1, 2


def simulate(sc: Scenario, policy: EvictionPolicy, trace: Trace | None = None, *,
             half_life_seconds: float = HALF_LIFE_SECONDS) -> Result:
    """Replay ``trace`` (default: :func:`make_trace`) through a pool evicting with ``policy``."""
    tr = trace if trace is not None else make_trace(sc)
    n, k = sc.models, sc.hot_slots
    wake = [interpolate(WAKE_L1, p) for p in tr.params_b]
    cold = [interpolate(COLD_LOAD, p) for p in tr.params_b]
    size = [weights_gib(p) for p in tr.params_b]
    service, budget, warmup = sc.service_seconds(), sc.warm_budget_gib(), sc.warmup_seconds
    where: list[tuple[str, int]] = [("cold", -1)] * n      # state, node
    slots: list[set[int]] = [set() for _ in range(sc.gpus)]  # hot or waking/loading models per node
    warm: list[dict[int, float]] = [{} for _ in range(sc.gpus)]
    in_flight, waiters = [0] * n, [[] for _ in range(n)]
    uses: list[ModelUse | None] = [None] * n
    blocked: dict[int, None] = {}                            # models held without a slot, in order
    res = Result(policy.name, sc.gpus)
    events: list[tuple[float, int, int, int]] = []
    seq = 0

    def push(t: float, kind: int, m: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, m))

    def use_of(m: int, busy: int, reload: float) -> ModelUse:
        u = uses[m] or ModelUse(last_used=0.0, uses=0.0, in_flight=0)
        return ModelUse(u.last_used, u.uses, busy, reload)

    def free_ram(g: int, need: float, now: float) -> bool:
        while sum(warm[g].values()) + need > budget + 1e-9:
            cands = {str(w): use_of(w, len(waiters[w]), cold[w] - wake[w]) for w in warm[g]}
            v = policy.victim(cands, now)
            if v is None:
                return False
            del warm[g][int(v)]
            where[int(v)] = ("cold", -1)
            res.discards += now >= warmup
        return True

    def start(m: int, now: float) -> bool:
        state, g = where[m]
        victim = None
        if state == "warm":
            if len(slots[g]) >= k:
                cands = {str(h): use_of(h, in_flight[h], wake[h]) for h in slots[g] if where[h][0] == "hot"}
                victim = policy.victim(cands, now)
                if victim is None:
                    return False
        else:
            free = [i for i in range(sc.gpus) if len(slots[i]) < k]
            if free:
                g = free[0]
            else:
                cands = {str(h): use_of(h, in_flight[h], wake[h])
                         for i in range(sc.gpus) for h in slots[i] if where[h][0] == "hot"}
                victim = policy.victim(cands, now)
                if victim is None:
                    return False
                g = where[int(victim)][1]
        counted = now >= warmup
        took = 0.0
        if state == "warm":
            del warm[g][m]
            took += wake[m]
            res.wakes += counted
        else:
            took += cold[m]
            res.loads += counted
        if victim is not None:
            v = int(victim)
            slots[g].discard(v)
            took += wake[v]
            res.evictions += counted
            if size[v] <= budget and free_ram(g, size[v], now):
                warm[g][v] = size[v]
                where[v] = ("warm", g)
            else:
                where[v] = ("cold", -1)
                res.discards += counted
        slots[g].add(m)
        where[m] = ("moving", g)
        push(now + took, _READY, m)
        return True

    def retry(now: float) -> None:
        for m in list(blocked):
            if start(m, now):
                del blocked[m]

    def serve(m: int, arrived: float, now: float) -> None:
        in_flight[m] += 1
        push(now + service, _DONE, m)
        if arrived >= warmup:
            res.requests += 1
            wait = now - arrived
            res.waits.append(wait)
            res.hot += wait == 0.0
            res.over_hold += wait > sc.hold_timeout_seconds

    for t, m in tr.arrivals:
        push(t, _ARRIVE, m)
    while events:
        now, _, kind, m = heapq.heappop(events)
        if kind == _ARRIVE:
            uses[m] = record_use(uses[m], now, half_life_seconds)
            state = where[m][0]
            if state == "hot":
                serve(m, now, now)
            else:
                waiters[m].append(now)
                if state != "moving" and m not in blocked and not start(m, now):
                    blocked[m] = None
        elif kind == _READY:
            where[m] = ("hot", where[m][1])
            held, waiters[m] = waiters[m], []
            for arrived in held:
                serve(m, arrived, now)
            retry(now)
        else:
            in_flight[m] -= 1
            if in_flight[m] == 0 and blocked:
                retry(now)
    return res


def gpus_needed(run_at: Callable[[int], Result], ok: Callable[[Result], bool], most: int) -> int | None:
    """The fewest GPUs (1..``most``) for which ``ok(run_at(gpus))`` holds, by bisection (the metrics improve with
    GPUs, up to noise); None when even ``most`` does not meet it."""
    lo, hi = 1, most
    if not ok(run_at(hi)):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(run_at(mid)):
            hi = mid
        else:
            lo = mid + 1
    return lo
