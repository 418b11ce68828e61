"""Eviction policies of the gateway's model pools (``serving/gateway/pools.py``): which hot model (a sleeping-mode
engine, or a LoRA adapter) makes room when a replica's hot slots are full.

A policy sees one :class:`ModelUse` per candidate (last use, decayed use count, in-flight requests, as the pool's
shared state in Valkey holds them) and names the victim, or None when every candidate is serving requests: a model
with in-flight requests is never evicted (the caller waits and asks again). Policies are pure (no I/O, no clock, no
state between calls), so every gateway replica given the same candidates picks the same victim; ties are broken by
fixed rules ending with the candidate's name.

- ``lru``: the idle candidate whose last request is oldest.
- ``lfu``: the idle candidate with the fewest recent requests: an exponentially decayed count (each request adds 1,
  and the count halves every ``HALF_LIFE_SECONDS``), so yesterday's favourite does not stay hot forever.
- ``cost-aware``: the idle candidate whose eviction is expected to cost the least waiting: its decayed request count
  (a request rate) times the seconds it would take to bring it back (``ModelUse.reload_seconds``: a sleeping
  engine's wake time, an adapter's load time; the controller may fill in what it measured, the default 1 s makes
  the policy rank like ``lfu``). A GreedyDual-Size-Frequency-like rule in a pool whose slots are equal in size:
  keep the 14B model that takes 60 s to reload before the 1B one that takes 40 s, at equal traffic.

``DEFAULT_POLICY`` is the one ``bench/pools/replay.py`` shows better (docs/pools.md, "Eviction policies: the
bench"): ``lru``. Sized for the latency SLO (p99 added wait <= 5 s) it needs the fewest GPUs: 24 for 100 models vs
30 (``lfu``) and 33 (``cost-aware``) on the stationary trace, 24 vs 30 and 25 on the drifting one (and 26-29 vs
37-51 for ``lfu`` over three other seeds with drift). The frequency policies keep more requests hot in an
undersized pool (at 10 GPUs ``lfu`` serves 25% hot vs 21% and waits 20% less on average), but they evict a model
whose traffic just rose before its count catches up, and every such miss is a full load of a minute or more, which
is what the p99 and the GPU count are made of. Choose ``lfu`` for a pool deliberately smaller than its SLO size
with steady popularity.

:func:`record_use` is how the controller updates a model's :class:`ModelUse` on each request, with the same decay the
policies read, so the stored count and the policies agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

HALF_LIFE_SECONDS = 1800.0
"""Half-life of the decayed use count: a request 30 minutes ago weighs half of one now. Of the 2, 10, 30 and 120
minutes the bench tried, 30 gave ``lfu`` its best hot share on the drifting trace and within 1% of its best on the
stationary one."""


@dataclass
class ModelUse:
    """What the pool knows of one candidate's traffic, as stored in the shared state."""

    last_used: float
    """Unix time of the model's last request (0: never)."""
    uses: float
    """Decayed request count as of ``last_used`` (see :func:`record_use`); policies decay it on to ``now``."""
    in_flight: int
    """Requests being served now (or waiting for this model); a candidate with any is never the victim."""
    reload_seconds: float = 1.0
    """Seconds to bring the model back if evicted (wake or load time); only ``cost-aware`` reads it."""


def decayed(use: ModelUse, now: float, half_life_seconds: float = HALF_LIFE_SECONDS) -> float:
    """``use.uses`` decayed from ``use.last_used`` to ``now`` (no growth for a ``now`` in the past)."""
    age = max(0.0, now - use.last_used)
    return use.uses * math.exp2(-age / half_life_seconds)


def record_use(use: ModelUse | None, now: float, half_life_seconds: float = HALF_LIFE_SECONDS) -> ModelUse:
    """The model's use after one more request at ``now``: the count decayed to ``now`` plus one, ``last_used = now``.

    ``use`` None is a model never used before. ``in_flight`` and ``reload_seconds`` are kept as they are: the caller
    counts in-flight requests itself.
    """
    if use is None:
        return ModelUse(last_used=now, uses=1.0, in_flight=0)
    return replace(use, last_used=max(now, use.last_used), uses=decayed(use, now, half_life_seconds) + 1.0)


class EvictionPolicy(Protocol):
    """Picks the candidate to evict; never one with in-flight requests; None when every candidate is busy."""

    name: str

    def victim(self, candidates: Mapping[str, ModelUse], now: float) -> str | None:
        """The candidate to evict, or None when every candidate has in-flight requests."""
        ...


def _idle(candidates: Mapping[str, ModelUse]) -> list[tuple[str, ModelUse]]:
    return [(name, use) for name, use in candidates.items() if use.in_flight <= 0]


class Lru:
    """Least recently used: the idle candidate whose last request is oldest (ties: fewer uses, then the name)."""

    name = "lru"

    def victim(self, candidates: Mapping[str, ModelUse], now: float) -> str | None:
        idle = [(u.last_used, u.uses, k) for k, u in _idle(candidates)]
        return min(idle)[2] if idle else None


class Lfu:
    """Least frequently used, with decay: the idle candidate with the smallest decayed count at ``now``.

    Ties: the older last use, then the name.
    """

    name = "lfu"

    def __init__(self, half_life_seconds: float = HALF_LIFE_SECONDS) -> None:
        if not half_life_seconds > 0:
            raise ValueError(f"half_life_seconds ({half_life_seconds}) must be > 0")
        self.half_life_seconds = half_life_seconds

    def victim(self, candidates: Mapping[str, ModelUse], now: float) -> str | None:
        idle = [(decayed(u, now, self.half_life_seconds), u.last_used, k) for k, u in _idle(candidates)]
        return min(idle)[2] if idle else None


class CostAware:
    """Least expected loss: the idle candidate with the smallest decayed count x ``reload_seconds`` at ``now``.

    The decayed count stands for the model's request rate, so the product is the waiting its eviction is expected
    to cause. Ties: the smaller count, the older last use, then the name.
    """

    name = "cost-aware"

    def __init__(self, half_life_seconds: float = HALF_LIFE_SECONDS) -> None:
        if not half_life_seconds > 0:
            raise ValueError(f"half_life_seconds ({half_life_seconds}) must be > 0")
        self.half_life_seconds = half_life_seconds

    def victim(self, candidates: Mapping[str, ModelUse], now: float) -> str | None:
        idle = []
        for k, u in _idle(candidates):
            rate = decayed(u, now, self.half_life_seconds)
            idle.append((rate * max(0.0, u.reload_seconds), rate, u.last_used, k))
        return min(idle)[3] if idle else None


POLICIES: dict[str, EvictionPolicy] = {p.name: p for p in (Lru(), Lfu(), CostAware())}
"""Every policy by name (the gateway config's ``eviction`` and the stack's ``serving.pools.<pool>.eviction``)."""

DEFAULT_POLICY: str = "lru"
"""The bench's winner (module docstring)."""
