"""Capacity planner: what one serving target needs at peak and at its minimum, what that costs, and the verdict.

Pure functions over the throughput profiles (:mod:`components.catalog.throughput`) and the price catalogue
(:mod:`components.catalog.prices`); no Pulumi, no stack config. :func:`plan_target` takes a :class:`TargetSpec` and the
:class:`Demand` the tier gives it and returns a :class:`TargetReport`. Every number below can be computed by hand.

Rules, in the order they are applied:

- **Operating point.** The profile is :func:`~components.catalog.throughput.profile_for` (the caller's measured
  ``profiles`` first, then a catalogue row, then the roofline estimate at the demand's prompt and output lengths)
  for the target's parameters, accelerator, precision and TP/PP; the operating point is its
  ``best_within(ttft_ms=SLO TTFT p95, itl_ms=SLO ITL p95)``: the highest-throughput concurrency whose latency meets
  the SLO; an end-to-end bound also requires TTFT + (output tokens - 1) x ITL within it (:func:`operating_point`).
  Batch targets have no SLO: the plateau. A profile's latency figures are compared as they are; when its
  ``latency_stat`` is not p95 a note says so.
- **Replica capacity** in requests/s = operating point output tokens/s / demand output tokens x ``headroom`` (the
  share of capacity to run at; :data:`DEFAULT_HEADROOM` 0.8). Decode-bound: when the demand's prompts are more than
  :data:`SHAPE_FAR_RATIO` x the profile's, or its outputs differ by that factor, a note says the figure is off
  (long prompts make it optimistic: prefill takes a larger share of the replica).
- **Replicas** at peak = ceil(peak rps / replica rps); at off-peak likewise. **Nodes** for ``r`` replicas =
  ceil(r / replicas_per_node) x nodes_per_replica. Nodes at min = max(nodes for min_replicas + warm_placeholders,
  the node group's min size) (placeholders hold accelerators like replicas). Nodes at peak = max(nodes for the
  replicas running at peak (the need, never below min_replicas), the node group's min size).
- **Cost** per node-hour by ``capacity_type``: on-demand and reserved at the on-demand price (a reservation's
  discount is account-specific), spot at the typical figure of :func:`~components.catalog.prices.spot_range` (its
  low and high in ``usd_per_hour_at_peak_range``), capacity-block at the Capacity Blocks price; SageMaker at the
  ``ml.*`` instance price. USD/h at min and at peak = price x nodes. $/1M output tokens at peak = USD/h at peak /
  (peak rps x output tokens x 3600) x 1e6. A missing price makes the cost None and adds a ``price-missing`` finding
  (unknown) naming it.
- **Findings** (stable ids in :data:`RULES`; the deciding number; concrete advice). ``max-below-peak``: replicas at
  peak > max_replicas (under). ``node-max-below-need``: nodes for max(replicas at peak, min + placeholders) > the
  node group's max (under). ``slo-unreachable``: no operating point (``best_within`` is None); the number is the
  latency at concurrency 1 against the SLO (under). ``min-above-off-peak``: min_replicas x replica rps > ``over_ratio``
  (:data:`DEFAULT_OVER_RATIO` 2) x off-peak rps and min_replicas > the replicas off-peak needs, or the target's
  ``availability_replicas`` when that is more (over).
  ``idle-warm-pool``: warm placeholders > 0 while min_replicas x replica rps alone carries off-peak (over).
  ``committed-above-demand``: Bedrock model units above what peak needs (over; unknown when the per-unit throughput
  is not given). ``fine`` when capacity was checked and nothing above fired. ``profile-missing`` and ``no-demand``
  (unknown) when the capacity cannot be computed. ``mandatory`` is set for the rules in ``mandatory_rules`` (the tier
  decides; default none). The report's verdict is its worst finding's (under > over > unknown > fine).
- **Kinds.** ``vllm``: as above. ``pool``: several models on one group; the demand is the sum of the members'
  (:func:`sum_demands`) planned on the largest member's profile (a note says so: smaller members decode faster, so
  the figure is conservative). ``sagemaker``: an ``ml.*`` instance is a replica (and a node); priced at the SageMaker
  instance price. ``bedrock-on-demand``: cost = demand x token prices (USD/h at min is the off-peak traffic's, since
  nothing is held when idle); no capacity limit in the plan (fine), with a note naming the tokens per minute the
  account's quota must allow. ``bedrock-provisioned``: model units needed = ceil(peak rps x (prompt + output tokens) x
  60 / tokens per minute per unit) (no headroom: the units are a throttle, not a latency curve), reported as the
  replicas (``replica_requests_per_second`` is one unit's); fewer bought is ``max-below-peak``, more is
  ``committed-above-demand``; cost = units bought x the unit price at min and at peak (an on-demand model id is
  named a price-missing finding listing its contextual variants, which is what is bought). ``batch``: the daily volume over the deadline gives the required rps
  (``batch_requests_per_day / (batch_deadline_hours x 3600)``), planned at the profile's plateau and priced on spot
  unless the target states another capacity type; nothing runs between runs (off-peak replicas 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from components.capacity.model import (
    Demand,
    Finding,
    PoolMember,
    Slo,
    TargetReport,
    TargetSpec,
)
from components.catalog import accelerators, bedrock_models, prices
from components.catalog.throughput import ProfilePoint, ThroughputProfile, profile_for

DEFAULT_HEADROOM = 0.8
"""Share of a replica's SLO-bounded throughput to plan at: 0.8 leaves 20% for bursts within the autoscaler's
reaction time (the reference's KV-cache 0.7-0.8 scale-out point)."""

DEFAULT_OVER_RATIO = 2.0
"""A minimum is over-provisioned when its capacity exceeds this multiple of off-peak demand."""

SHAPE_FAR_RATIO = 2.0
"""A demand's prompt or output length this many times the profile's (or below its inverse) gets a note."""

SECONDS_PER_HOUR = 3600

RULES: dict[str, str] = {
    "max-below-peak": "max capacity (max replicas, or model units) below peak demand",
    "node-max-below-need": "the node group's max size below the nodes peak (or the minimum) needs",
    "slo-unreachable": "the SLO is missed even at concurrency 1 on one replica",
    "min-above-off-peak": "min capacity far above off-peak demand",
    "idle-warm-pool": "warm placeholders held while the minimum alone carries off-peak demand",
    "committed-above-demand": "Bedrock model units above what peak demand needs",
    "price-missing": "no catalogue price for the instance type, capacity type or model",
    "profile-missing": "no throughput profile (parameters, accelerator or instance type unknown)",
    "no-demand": "the tier gives no demand for this target",
    "fine": "capacity carries peak demand within the SLO and the minimum is not oversized",
}
"""Stable rule ids and what each means (the policy pack and the CLI key on the ids)."""

_EPS = 1e-9


def _ceil(x: float) -> int:
    """ceil that ignores float noise (40 / 2.5 is 16, not 17)."""
    return max(0, math.ceil(x - _EPS))


def _n(x: float) -> str:
    """A number for messages: at most two decimals, no trailing zeros (2.5, 20, 1333.33)."""
    return f"{round(x, 2):g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def sum_demands(demands: Sequence[Demand]) -> Demand:
    """The demand of a pool: peak and off-peak rps summed; prompt and output tokens the peak-rps-weighted averages
    (rounded to whole tokens), so the output tokens/s the pool must produce at peak is the members' sum; the SLO the
    strictest bound of each kind; batch volumes summed (deadline: the earliest)."""
    if not demands:
        raise ValueError("demands must not be empty")
    peak = sum(d.peak_requests_per_second for d in demands)
    off = sum(d.off_peak_requests_per_second for d in demands)

    def weighted(attr: str) -> int:
        return max(1, round(sum(getattr(d, attr) * d.peak_requests_per_second for d in demands) / peak))

    def strictest(attr: str) -> float | None:
        values = [getattr(d.slo, attr) for d in demands if getattr(d.slo, attr) is not None]
        return min(values) if values else None

    batch = [d.batch_requests_per_day for d in demands if d.batch_requests_per_day is not None]
    return Demand(peak_requests_per_second=peak, off_peak_requests_per_second=off,
                  prompt_tokens=weighted("prompt_tokens"), output_tokens=weighted("output_tokens"),
                  slo=Slo(ttft_p95_ms=strictest("ttft_p95_ms"), itl_p95_ms=strictest("itl_p95_ms"),
                          e2e_p95_ms=strictest("e2e_p95_ms")),
                  batch_requests_per_day=sum(batch) if batch else None,
                  batch_deadline_hours=min(d.batch_deadline_hours for d in demands))


class _Acc:
    """What plan_target collects before building the report (findings, notes, figures)."""

    def __init__(self, spec: TargetSpec, mandatory_rules: frozenset[str]) -> None:
        self.spec = spec
        self.mandatory_rules = mandatory_rules
        self.findings: list[Finding] = []
        self.notes: list[str] = []

    def find(self, verdict: str, rule: str, number: str, advice: str = "") -> None:
        self.findings.append(Finding(verdict=verdict, rule=rule, mandatory=rule in self.mandatory_rules,
                                     number=number, advice=advice))


def nodes_for(spec: TargetSpec, replicas: int) -> int:
    """Nodes ``replicas`` replicas occupy: ceil(replicas / replicas_per_node) x nodes_per_replica."""
    return _ceil(replicas / spec.replicas_per_node) * spec.nodes_per_replica


def plan_target(spec: TargetSpec, demand: Demand | None, *, profiles: Sequence[ThroughputProfile] = (),
                headroom: float = DEFAULT_HEADROOM, over_ratio: float = DEFAULT_OVER_RATIO,
                mandatory_rules: frozenset[str] = frozenset()) -> TargetReport:
    """Plan one target against its demand (module docstring: the rules). ``profiles``: the user's measured profiles
    (they win over the catalogue); ``headroom`` in (0, 1]; ``over_ratio`` >= 1; ``mandatory_rules``: rule ids the
    tier makes blocking. Never raises for a missing price or profile (they become unknown findings)."""
    bad = []
    if not 0 < headroom <= 1:
        bad.append(f"headroom ({headroom}) must be in (0, 1]")
    if over_ratio < 1:
        bad.append(f"over_ratio ({over_ratio}) must be >= 1")
    unknown_rules = sorted(set(mandatory_rules) - set(RULES))
    if unknown_rules:
        bad.append(f"mandatory_rules ({', '.join(unknown_rules)}) must be rule ids: {', '.join(RULES)}")
    if bad:
        raise ValueError("; ".join(bad))
    acc = _Acc(spec, frozenset(mandatory_rules))
    if spec.kind == "bedrock-on-demand":
        return _bedrock_on_demand(acc, demand)
    if spec.kind == "bedrock-provisioned":
        return _bedrock_provisioned(acc, demand)
    return _instances(acc, demand, profiles, headroom, over_ratio)


# --- instance-backed targets: vllm, pool, sagemaker, batch ---

def _accelerator(spec: TargetSpec) -> str | None:
    if spec.accelerator:
        return spec.accelerator
    if not spec.instance_type:
        return None
    row = accelerators.lookup(spec.instance_type.removeprefix("ml."))
    return row.accelerator if row else None


def _largest(spec: TargetSpec) -> tuple[str, float | None]:
    if spec.kind == "pool" and spec.pool_members:
        top: PoolMember = max(spec.pool_members, key=lambda m: m.params_billion)
        return top.model, top.params_billion
    return spec.model, spec.params_billion


def _profile(acc: _Acc, profiles: Sequence[ThroughputProfile], demand: Demand | None) -> ThroughputProfile | None:
    spec = acc.spec
    model, params = _largest(spec)
    accelerator = _accelerator(spec)
    missing = []
    if params is None:
        missing.append("params_billion is not given")
    if accelerator is None:
        missing.append(f"instance type {spec.instance_type!r} is not in the accelerator catalogue"
                       if spec.instance_type else "neither accelerator nor instance_type is given")
    if missing:
        acc.find("unknown", "profile-missing", f"{spec.name}: no throughput profile: {'; '.join(missing)}",
                 "state params_billion and the accelerator (or a catalogued instance type)")
        return None
    try:
        shape = {"input_tokens": demand.prompt_tokens, "output_tokens": demand.output_tokens} if demand else {}
        return profile_for(params, accelerator, spec.precision, tensor_parallel=spec.tensor_parallel,
                           pipeline_parallel=spec.pipeline_parallel, model=model, user=profiles, **shape)
    except ValueError as exc:
        acc.find("unknown", "profile-missing", f"{spec.name}: {exc}", "use a catalogued accelerator")
        return None


def _shape_notes(acc: _Acc, profile: ThroughputProfile, demand: Demand) -> None:
    p, o = demand.prompt_tokens, demand.output_tokens
    if p > SHAPE_FAR_RATIO * profile.input_tokens:
        acc.notes.append(f"prompts of {p} tokens are over {SHAPE_FAR_RATIO:g}x the profile's {profile.input_tokens}: "
                         "prefill takes a larger share of each replica, so its capacity is optimistic")
    elif p * SHAPE_FAR_RATIO < profile.input_tokens:
        acc.notes.append(f"prompts of {p} tokens are under 1/{SHAPE_FAR_RATIO:g} of the profile's "
                         f"{profile.input_tokens}: the capacity is conservative")
    if o > SHAPE_FAR_RATIO * profile.output_tokens or o * SHAPE_FAR_RATIO < profile.output_tokens:
        acc.notes.append(f"outputs of {o} tokens are far from the profile's {profile.output_tokens}: the KV cache "
                         "per request differs, so the concurrency at the SLO may too")
    if profile.latency_stat != "p95":
        acc.notes.append(f"the profile's latencies are {profile.latency_stat}, compared with the p95 SLO as they are: "
                         "the SLO check is optimistic")
    if profile.basis == "estimated" and profile.accelerator in ESTIMATE_OPTIMISTIC_ON:
        acc.notes.append(ESTIMATE_OPTIMISTIC_ON[profile.accelerator])


ESTIMATE_OPTIMISTIC_ON: dict[str, str] = {
    "Inferentia2": ("the estimate is optimistic on Inferentia2: against the Neuron SDK's published inf2.48xlarge "
                    "tables (held out, tests/components/catalog/test_throughput_heldout.py) it gave 2.4-3.4x the "
                    "throughput of a 7B model and 1.24x that of a 70B model; measure a replica (genai-scale capacity "
                    "profile) before sizing on it"),
}
"""Accelerators where the held-out check found the estimate too high, with what the report says about them."""


def e2e_ms(point: ProfilePoint, output_tokens: int) -> float:
    """Whole-request latency at a point: TTFT + (output tokens - 1) x ITL."""
    return point.ttft_ms + (output_tokens - 1) * point.itl_ms


def _slo_terms(slo: Slo, output_tokens: int) -> list[tuple[str, float, Callable[[ProfilePoint], float]]]:
    """(name, p95 bound in ms, the point's value) of each latency bound the SLO sets: TTFT, ITL, end-to-end."""
    terms: list[tuple[str, float, Callable[[ProfilePoint], float]]] = []
    if slo.ttft_p95_ms is not None:
        terms.append(("TTFT", slo.ttft_p95_ms, lambda p: p.ttft_ms))
    if slo.itl_p95_ms is not None:
        terms.append(("ITL", slo.itl_p95_ms, lambda p: p.itl_ms))
    if slo.e2e_p95_ms is not None:
        terms.append(("end-to-end", slo.e2e_p95_ms, lambda p: e2e_ms(p, output_tokens)))
    return terms


def operating_point(profile: ThroughputProfile, slo: Slo, output_tokens: int,
                    max_concurrency: int | None = None) -> ProfilePoint | None:
    """The SLO-bounded point of one replica: ``profile.best_within`` for the TTFT and ITL bounds; with an end-to-end
    bound or a concurrency cap (the engine's ``--max-num-seqs``: it never runs more sequences at once), the same
    search (integer concurrencies 1..last point or the cap, highest throughput, lowest concurrency on a tie) also
    requiring TTFT + (output tokens - 1) x ITL <= the bound. None when no concurrency meets the SLO."""
    if output_tokens <= 1:  # one token: no inter-token latency to judge
        slo = slo.model_copy(update={"itl_p95_ms": None})
    if slo.e2e_p95_ms is None and max_concurrency is None:
        return profile.best_within(ttft_ms=slo.ttft_p95_ms, itl_ms=slo.itl_p95_ms)
    top = profile.points[-1].concurrency if max_concurrency is None else max_concurrency
    terms = _slo_terms(slo, output_tokens)
    best: ProfilePoint | None = None
    for c in range(1, top + 1):
        p = profile.at(c)
        if any(value(p) > bound for _, bound, value in terms):
            continue
        if best is None or p.output_tokens_per_second > best.output_tokens_per_second:
            best = p
    return best


def _slo_unreachable(acc: _Acc, profile: ThroughputProfile, slo: Slo, output_tokens: int) -> None:
    first = profile.at(1)
    got = [f"{name} {_n(value(first))} ms" + (f" for {output_tokens} output tokens" if name == "end-to-end" else "")
           for name, _, value in _slo_terms(slo, output_tokens)]
    acc.find("under-provisioned", "slo-unreachable",
             f"{acc.spec.name}: at concurrency 1 one replica has {', '.join(got)} ({profile.latency_stat}) vs SLO "
             f"{slo.describe()} ({profile.accelerator} x TP {profile.tensor_parallel}, {profile.precision}, "
             f"{profile.basis})",
             "use a larger accelerator, more tensor parallelism (or a lower precision), or relax the SLO")


def _node_price(acc: _Acc) -> tuple[float | None, tuple[float, float] | None]:
    """USD per node-hour (and the spot low/high) for the target's capacity type; a price-missing finding if none."""
    spec = acc.spec
    it = spec.instance_type
    if not it:
        acc.find("unknown", "price-missing", f"{spec.name}: no instance_type, so no price",
                 "state the node group's instance type")
        return None, None
    try:
        if spec.kind == "sagemaker":
            return prices.sagemaker(it, spec.region).on_demand_usd_per_hour, None
        if spec.capacity_type == "spot":
            r = prices.spot_range(it, spec.region)
            acc.notes.append(f"spot {it}: low {_usd(r.low_usd_per_hour)}/h, typical {_usd(r.typical_usd_per_hour)}/h, "
                             f"high {_usd(r.high_usd_per_hour)}/h ({r.kind})")
            return r.typical_usd_per_hour, (r.low_usd_per_hour, r.high_usd_per_hour)
        if spec.capacity_type == "capacity-block":
            cb = prices.capacity_block(it, spec.region)
            if cb is None:
                acc.find("unknown", "price-missing",
                         f"{spec.name}: no Capacity Block price for {it} in {spec.region}",
                         "add the Capacity Blocks price to the catalogue, or plan with capacityType on-demand")
                return None, None
            return cb.usd_per_instance_hour, None
        if spec.capacity_type == "reserved":
            acc.notes.append("reserved capacity priced at on-demand: the reservation's discount is account-specific")
        return prices.on_demand(it, spec.region).on_demand_usd_per_hour, None
    except prices.PriceNotFound as exc:
        acc.find("unknown", "price-missing", f"{spec.name}: {exc}",
                 f"add a {spec.capacity_type} price for {it} in {spec.region} (genai-scale prices refresh)")
        return None, None


def _instances(acc: _Acc, demand: Demand | None, profiles: Sequence[ThroughputProfile], headroom: float,
               over_ratio: float) -> TargetReport:
    spec = acc.spec
    if spec.kind == "pool":
        model, params = _largest(spec)
        names = ", ".join(m.model for m in spec.pool_members) or spec.model
        acc.notes.append(f"pool ({names}): the members' demands summed, planned on the largest model's profile "
                         f"({model}, {_n(params) if params else '?'}B); smaller members decode faster, so this is "
                         "conservative")
    if spec.kind == "sagemaker":
        acc.notes.append("SageMaker: one instance is one replica (and one node)")
    profile = _profile(acc, profiles, demand)
    point: ProfilePoint | None = None
    replica_rps = None
    if profile is not None and demand is not None:
        slo = Slo() if spec.kind == "batch" else demand.slo
        point = operating_point(profile, slo, demand.output_tokens, spec.max_concurrency)
        _shape_notes(acc, profile, demand)
        if point is None:
            _slo_unreachable(acc, profile, slo, demand.output_tokens)
        else:
            replica_rps = point.output_tokens_per_second / demand.output_tokens * headroom
    if demand is None:
        acc.find("unknown", "no-demand", f"{spec.name}: the tier gives no demand for this target",
                 "set the target's peak and off-peak requests/s and token lengths")

    min_held = spec.min_replicas + spec.warm_placeholders
    nodes_at_min = max(nodes_for(spec, min_held), spec.node_min or 0)
    peak_rps, off_rps = _rates(acc, demand)
    r_peak = _ceil(peak_rps / replica_rps) if replica_rps and peak_rps is not None else None
    r_off = _ceil(off_rps / replica_rps) if replica_rps and off_rps is not None else None
    # warm placeholders keep their headroom at peak too: displaced by replicas, they go pending and bring nodes
    nodes_at_peak = (max(nodes_for(spec, max(r_peak, spec.min_replicas) + spec.warm_placeholders), spec.node_min or 0)
                     if r_peak is not None else None)

    if r_peak is not None and replica_rps is not None and peak_rps is not None:
        _capacity_findings(acc, replica_rps, r_peak, r_off or 0, peak_rps, off_rps or 0.0, over_ratio)

    price, spot = _node_price(acc)
    usd_min = price * nodes_at_min if price is not None else None
    usd_peak = price * nodes_at_peak if price is not None and nodes_at_peak is not None else None
    usd_range = ((spot[0] * nodes_at_peak, spot[1] * nodes_at_peak)
                 if spot is not None and nodes_at_peak is not None else None)
    per_m = (usd_peak / (peak_rps * demand.output_tokens * SECONDS_PER_HOUR) * 1e6
             if usd_peak is not None and demand is not None and peak_rps else None)
    if (spec.kind == "batch" and price is not None and replica_rps and demand is not None
            and demand.batch_requests_per_day):
        # a batch job runs until the volume is done, then its nodes go: priced by the replica-hours the work takes
        per_replica_hour = price * spec.nodes_per_replica / spec.replicas_per_node
        replica_hours = demand.batch_requests_per_day / replica_rps / SECONDS_PER_HOUR
        per_m = per_replica_hour / (replica_rps * demand.output_tokens * SECONDS_PER_HOUR) * 1e6
        acc.notes.append(f"batch: {_n(demand.batch_requests_per_day)} requests/day within "
                         f"{_n(demand.batch_deadline_hours)} h = {_n(peak_rps or 0)} req/s on {r_peak} replica(s); "
                         f"the work takes {_n(replica_hours)} replica-hours a day = "
                         f"{_usd(replica_hours * per_replica_hour)}/day at the typical price")
    return TargetReport(
        target=spec, demand=demand, profile=profile, operating_point=point, replica_requests_per_second=replica_rps,
        replicas_at_peak=r_peak, replicas_at_off_peak=r_off, nodes_at_peak=nodes_at_peak, nodes_at_min=nodes_at_min,
        usd_per_hour_at_min=usd_min, usd_per_hour_at_peak=usd_peak, usd_per_hour_at_peak_range=usd_range,
        usd_per_million_output_tokens=per_m, findings=tuple(acc.findings), notes=tuple(acc.notes))


def _rates(acc: _Acc, demand: Demand | None) -> tuple[float | None, float | None]:
    """Peak and off-peak requests/s the replicas must carry: batch targets run the daily volume within the deadline
    and nothing between runs."""
    if demand is None:
        return None, None
    if acc.spec.kind != "batch":
        return demand.peak_requests_per_second, demand.off_peak_requests_per_second
    if demand.batch_requests_per_day is None:
        acc.find("unknown", "no-demand", f"{acc.spec.name}: a batch target needs batch_requests_per_day",
                 "set the daily volume and the deadline in hours")
        return None, None
    return demand.batch_requests_per_day / (demand.batch_deadline_hours * SECONDS_PER_HOUR), 0.0


def _capacity_findings(acc: _Acc, rr: float, r_peak: int, r_off: int, peak: float, off: float,
                       over_ratio: float) -> None:
    spec = acc.spec
    before = len([f for f in acc.findings if f.verdict in ("under-provisioned", "over-provisioned")])
    if r_peak > spec.max_replicas:
        acc.find("under-provisioned", "max-below-peak",
                 f"{spec.name}: max {spec.max_replicas} replicas x {_n(rr)} req/s = {_n(spec.max_replicas * rr)} "
                 f"req/s < peak {_n(peak)} req/s",
                 f"raise maxReplicas to {r_peak}")
    need_replicas = max(r_peak, spec.min_replicas + spec.warm_placeholders)
    need_nodes = nodes_for(spec, need_replicas)
    if spec.node_max is not None and need_nodes > spec.node_max:
        per = (f"{spec.nodes_per_replica} nodes per replica" if spec.nodes_per_replica > 1
               else f"{spec.replicas_per_node} replica{'s' if spec.replicas_per_node > 1 else ''} per node")
        group = spec.node_group or "the node group"
        acc.find("under-provisioned", "node-max-below-need",
                 f"{spec.name}: {need_replicas} replicas need {need_nodes} nodes ({per}) > {group} max "
                 f"{spec.node_max}",
                 f"raise {group}'s maxSize to {need_nodes}")
    min_cap = spec.min_replicas * rr
    keep = max(r_off, spec.availability_replicas if spec.min_replicas else 0)
    if min_cap > over_ratio * off and spec.min_replicas > keep:
        why = (f"; {spec.availability_replicas} kept for availability" if keep > r_off else "")
        acc.find("over-provisioned", "min-above-off-peak",
                 f"{spec.name}: min {spec.min_replicas} replicas x {_n(rr)} req/s = {_n(min_cap)} req/s > "
                 f"{_n(over_ratio)} x off-peak {_n(off)} req/s = {_n(over_ratio * off)} req/s (off-peak needs "
                 f"{r_off}{why})",
                 f"lower minReplicas to {keep}"
                 + (" (scale to zero; keep 1 if a cold start on the first request is not acceptable)"
                    if keep == 0 else ""))
    if spec.warm_placeholders > 0 and min_cap >= off:
        acc.find("over-provisioned", "idle-warm-pool",
                 f"{spec.name}: {spec.warm_placeholders} warm placeholder(s) held while min {spec.min_replicas} "
                 f"replicas x {_n(rr)} req/s = {_n(min_cap)} req/s already carry off-peak {_n(off)} req/s",
                 "set warmPlaceholders to 0, or lower minReplicas and keep the placeholders for the ramp")
    after = len([f for f in acc.findings if f.verdict in ("under-provisioned", "over-provisioned")])
    if after == before:
        acc.find("fine", "fine",
                 f"{spec.name}: peak {_n(peak)} req/s needs {r_peak} of max {spec.max_replicas} replicas "
                 f"({_n(rr)} req/s each); min {spec.min_replicas} carries {_n(min_cap)} req/s vs off-peak "
                 f"{_n(off)} req/s")


# --- Bedrock ---

def _bedrock_on_demand(acc: _Acc, demand: Demand | None) -> TargetReport:
    spec = acc.spec
    usd_min = usd_peak = per_m = None
    if demand is None:
        acc.find("unknown", "no-demand", f"{spec.name}: the tier gives no demand for this target",
                 "set the target's peak and off-peak requests/s and token lengths")
    else:
        tokens_per_minute = demand.peak_requests_per_second * (demand.prompt_tokens + demand.output_tokens) * 60
        acc.notes.append(f"Bedrock on-demand: peak needs {_n(tokens_per_minute)} tokens/min (input + output) and "
                         f"{_n(demand.peak_requests_per_second * 60)} requests/min; check the account's quotas for "
                         f"{spec.model} in {spec.region}")
        acc.find("fine", "fine", f"{spec.name}: on-demand, no capacity bound in the plan (account quotas apply)")
        try:
            tp = prices.bedrock_tokens(spec.model, spec.region)
        except prices.PriceNotFound as exc:
            acc.find("unknown", "price-missing", f"{spec.name}: {exc}",
                     f"add the Bedrock token price of {spec.model} in {spec.region}")
        else:
            per_request = (demand.prompt_tokens * tp.on_demand_input_per_mtok
                           + demand.output_tokens * tp.on_demand_output_per_mtok) / 1e6
            usd_peak = per_request * demand.peak_requests_per_second * SECONDS_PER_HOUR
            usd_min = per_request * demand.off_peak_requests_per_second * SECONDS_PER_HOUR
            per_m = usd_peak / (demand.peak_requests_per_second * demand.output_tokens * SECONDS_PER_HOUR) * 1e6
            acc.notes.append("pay per token: USD/h at min is the off-peak traffic's (nothing is held when idle)")
    return TargetReport(
        target=spec, demand=demand, profile=None, operating_point=None, replica_requests_per_second=None,
        replicas_at_peak=None, replicas_at_off_peak=None, nodes_at_peak=None, nodes_at_min=0,
        usd_per_hour_at_min=usd_min, usd_per_hour_at_peak=usd_peak, usd_per_million_output_tokens=per_m,
        findings=tuple(acc.findings), notes=tuple(acc.notes))


def _bedrock_provisioned(acc: _Acc, demand: Demand | None) -> TargetReport:
    spec = acc.spec
    units = spec.model_units
    unit_rps = need = need_off = None
    if units is None:
        acc.find("unknown", "committed-above-demand", f"{spec.name}: model_units is not given",
                 "state the model units bought")
    if demand is None:
        acc.find("unknown", "no-demand", f"{spec.name}: the tier gives no demand for this target",
                 "set the target's peak and off-peak requests/s and token lengths")
    elif spec.tokens_per_minute_per_unit is None:
        acc.find("unknown", "committed-above-demand",
                 f"{spec.name}: {units or '?'} model unit(s); the throughput of one unit for {spec.model} is not "
                 "known, so the need cannot be compared",
                 "set tokens_per_minute_per_unit from the model's provisioned-throughput figures")
    else:
        per_request = demand.prompt_tokens + demand.output_tokens
        unit_rps = spec.tokens_per_minute_per_unit / 60 / per_request
        need = max(1, _ceil(demand.peak_requests_per_second / unit_rps))
        need_off = _ceil(demand.off_peak_requests_per_second / unit_rps)
        if units is not None:
            number = (f"{spec.name}: peak {_n(demand.peak_requests_per_second)} req/s x {per_request} tokens x 60 = "
                      f"{_n(demand.peak_requests_per_second * per_request * 60)} tokens/min needs {need} unit(s) of "
                      f"{_n(spec.tokens_per_minute_per_unit)} tokens/min; {units} bought")
            if units < need:
                acc.find("under-provisioned", "max-below-peak", number, f"raise modelUnits to {need}")
            elif units > need:
                acc.find("over-provisioned", "committed-above-demand", number,
                         f"lower modelUnits to {need} at the end of the commitment term")
            else:
                acc.find("fine", "fine", number)
    usd = None
    variants = bedrock_models.variants_of(spec.model) if bedrock_models.lookup(spec.model) is None else []
    try:
        if variants:
            raise prices.PriceNotFound(
                f"{spec.model} is an on-demand model id; Provisioned Throughput is bought and priced per contextual "
                f"variant ({', '.join(variants)})")
        row = prices.bedrock_provisioned(spec.model, spec.region, spec.commitment)
        if row is None:
            acc.find("unknown", "price-missing",
                     f"{spec.name}: {prices.provisioned_unpriced_reason(spec.model, spec.region, spec.commitment)}",
                     f"add the {spec.commitment}-commitment model-unit price of {spec.model} in {spec.region}")
        else:
            usd = row.usd_per_model_unit_per_hour
    except prices.PriceNotFound as exc:
        acc.find("unknown", "price-missing", f"{spec.name}: {exc}",
                 f"name the contextual variant bought ({variants[0]})" if variants
                 else "use a catalogued contextual-variant model id")
    usd_held = usd * units if usd is not None and units is not None else None
    per_m = (usd_held / (demand.peak_requests_per_second * demand.output_tokens * SECONDS_PER_HOUR) * 1e6
             if usd_held is not None and demand is not None else None)
    return TargetReport(
        target=spec, demand=demand, profile=None, operating_point=None, replica_requests_per_second=unit_rps,
        replicas_at_peak=need, replicas_at_off_peak=need_off, nodes_at_peak=None, nodes_at_min=0,
        usd_per_hour_at_min=usd_held, usd_per_hour_at_peak=usd_held, usd_per_million_output_tokens=per_m,
        findings=tuple(acc.findings), notes=tuple(acc.notes))


__all__ = [
    "DEFAULT_HEADROOM",
    "DEFAULT_OVER_RATIO",
    "RULES",
    "SHAPE_FAR_RATIO",
    "e2e_ms",
    "nodes_for",
    "operating_point",
    "plan_target",
    "sum_demands",
]
