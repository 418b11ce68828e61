"""Where to run a model: every feasible option with its cost at the tier's volume and whether the SLO holds.

Pure. :func:`compare` returns one :class:`Option` per way of serving ``model`` for a :class:`Demand`:

- **vLLM** on each accelerator instance type of the catalogue (``candidates``, default: every catalogued type with
  an on-demand price in the Region) where the model fits one node: from the fewest devices that fit
  (:func:`components.serving.vllm.fit.check_fit` with the model's catalogue facts, one sequence of prompt + output
  tokens; without facts, weights plus runtime overhead against memory x 0.9) up to the whole node in powers of two,
  the size with the cheapest month where the SLO holds; TP = devices (NeuronCores on Inferentia/Trainium, whose
  profile counts devices: cores / cores per device), replicas per node = devices per node / TP; planned with
  :func:`components.capacity.planner.plan_target` on on-demand prices. A model that fits no single node of a type is
  left out for that type (multi-node layouts are planned per target, not compared here).
- **SageMaker** on the ``ml.*`` twin of each feasible type where that is priced: one model copy per instance.
- **Bedrock on-demand** when the model is (or ``bedrock_model`` maps it to) a Bedrock model with a token price;
  ``slo_holds`` is None (Bedrock publishes no latency figure) and the note names the quota to check.
- **Bedrock provisioned** for each contextual variant and commitment with a model-unit price; units from
  ``bedrock_tokens_per_minute_per_unit`` when given, else the cost is unknown.
- **Batch on spot** for ``batch_share`` of the volume (0 to 1; default 0: no batch row): the daily volume
  ``batch_share`` x the average rps x 86,400 within 24 hours on the feasible type with the lowest typical spot $/1M
  output tokens (its low/high spot cost in the note); its month is the work (replica-hours at the plateau), since
  the nodes go when the day's volume is done. The online options then carry the other ``1 - batch_share``.

Each option gives USD/h at peak, USD/month at the **arithmetic mean of peak and off-peak requests/s** over
:data:`MONTH_HOURS` hours (replicas and nodes recomputed for that mean), $/1M output tokens at peak and ``slo_holds``.
Order: options whose SLO holds, cheapest per month first; then those where it is unknown (Bedrock, batch), cheapest
first; then those where it fails; unpriced options last within each group.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.capacity.model import Demand, Option, TargetReport, TargetSpec
from components.capacity.planner import (
    DEFAULT_HEADROOM,
    ESTIMATE_OPTIMISTIC_ON,
    SECONDS_PER_HOUR,
    _ceil,
    _n,
    _usd,
    nodes_for,
    plan_target,
)
from components.catalog import accelerators, bedrock_models, models, prices
from components.catalog.throughput import Precision, ThroughputProfile
from components.serving.vllm import fit

MONTH_HOURS = 730
"""Hours in an average month (365 x 24 / 12)."""

BATCH_DEADLINE_HOURS = 24.0
"""The batch share is planned to finish within the day it arrives."""

_DTYPE: dict[str, tuple[str, str | None]] = {
    "bf16": ("bfloat16", None), "fp16": ("float16", None), "fp8": ("auto", "fp8"),
    "int8": ("auto", "int8_per_channel_weight_only"), "int4": ("auto", "awq"),
}
"""Precision -> (vLLM dtype, quantization) for the fit check's bytes per weight."""

_UTILIZATION = 0.9
"""Share of device memory vLLM takes (its ``gpu_memory_utilization`` default)."""


def _units(spec: accelerators.AcceleratorSpec) -> tuple[int, float]:
    """Units one node has (GPUs, or NeuronCores) and GiB per unit."""
    if spec.shards_over_cores:
        return spec.neuron_cores, spec.memory_gib / max(spec.cores_per_device, 1)
    return spec.count, spec.memory_gib


def fewest_devices(model: str, params_billion: float, instance_type: str, precision: Precision,
                   context_tokens: int) -> int | None:
    """The fewest units (1, 2, 4, ... up to the node's) of one node of ``instance_type`` the model fits on, or None.
    With catalogue facts, :func:`~components.serving.vllm.fit.check_fit` (one sequence of ``context_tokens``, TP
    dividing the heads); without, weights + runtime overhead <= memory x 0.9 per unit."""
    spec = accelerators.lookup(instance_type)
    if spec is None:
        return None
    units, unit_gib = _units(spec)
    dtype, quant = _DTYPE[precision]
    facts = models.lookup(model)
    sizes = sorted({2 ** i for i in range(units.bit_length()) if 2 ** i <= units} | {units})
    for tp in sizes:
        if facts is not None:
            report = fit.check_fit(fit.FitInput(
                model=model, facts=facts.facts, dtype=dtype, quantization=quant, max_model_len=context_tokens,
                max_num_seqs=1, tensor_parallel_size=tp, gpu_memory_utilization=_UTILIZATION,
                unit_memory_gib=unit_gib, units_per_node=units, instance_type=instance_type))
            if not report.errors:
                return tp
        else:
            weights = params_billion * 1e9 * fit.bytes_per_parameter(dtype, quant) / fit.GIB
            if weights + fit.RUNTIME_OVERHEAD_GIB * tp <= unit_gib * _UTILIZATION * tp:
                return tp
    return None


def _scaled(demand: Demand, share: float) -> Demand | None:
    if share <= 0:
        return None
    return demand.model_copy(update={"peak_requests_per_second": demand.peak_requests_per_second * share,
                                     "off_peak_requests_per_second": demand.off_peak_requests_per_second * share})


def _mean(demand: Demand) -> float:
    return (demand.peak_requests_per_second + demand.off_peak_requests_per_second) / 2


def _monthly(spec: TargetSpec, report: TargetReport, demand: Demand, node_usd: float | None) -> float | None:
    rr = report.replica_requests_per_second
    if node_usd is None or not rr:
        return None
    replicas = max(1, _ceil(_mean(demand) / rr))
    return node_usd * nodes_for(spec, replicas) * MONTH_HOURS


def _instance_option(where: str, spec: TargetSpec, demand: Demand, profiles: Sequence[ThroughputProfile],
                     headroom: float, node_usd: float | None, tp: int) -> Option:
    report = plan_target(spec, demand, profiles=profiles, headroom=headroom)
    point = report.operating_point
    if report.profile is None:
        slo, note = None, "no throughput profile"
    elif point is None:
        slo = False
        note = next(f.number for f in report.findings if f.rule == "slo-unreachable").split(": ", 1)[1]
    else:
        slo = True
        note = (f"{_n(point.output_tokens_per_second)} tok/s per replica at concurrency {point.concurrency} "
                f"({report.profile.basis}); {spec.replicas_per_node} replica(s) per node")
        if report.profile.basis == "estimated" and report.profile.accelerator in ESTIMATE_OPTIMISTIC_ON:
            note += f"; the estimate is optimistic on {report.profile.accelerator} (held-out check: docs/capacity.md)"
    if node_usd is None:
        note += "; no price"
    return Option(where=where, instance_type=spec.instance_type, devices=tp, replicas=report.replicas_at_peak,
                  usd_per_hour=report.usd_per_hour_at_peak, usd_per_month=_monthly(spec, report, demand, node_usd),
                  usd_per_million_output_tokens=report.usd_per_million_output_tokens, slo_holds=slo, note=note)


def _price(fn, *args) -> float | None:
    try:
        return fn(*args).on_demand_usd_per_hour
    except prices.PriceNotFound:
        return None


def _bedrock_options(model: str, demand: Demand, region: str, tpm_per_unit: float | None) -> list[Option]:
    row = bedrock_models.lookup(model)
    base = row.base_id if row is not None else model
    out: list[Option] = []
    try:
        tp = prices.bedrock_tokens(base, region)
    except prices.PriceNotFound:
        tp = None
    peak, out_tokens = demand.peak_requests_per_second, demand.output_tokens
    if tp is not None:
        per_request = (demand.prompt_tokens * tp.on_demand_input_per_mtok
                       + out_tokens * tp.on_demand_output_per_mtok) / 1e6
        usd_h = per_request * peak * SECONDS_PER_HOUR
        out.append(Option(
            where="bedrock-on-demand", model_id=base, usd_per_hour=usd_h,
            usd_per_month=per_request * _mean(demand) * SECONDS_PER_HOUR * MONTH_HOURS,
            usd_per_million_output_tokens=usd_h / (peak * out_tokens * SECONDS_PER_HOUR) * 1e6, slo_holds=None,
            note=(f"pay per token; no published latency; the account's quota must allow "
                  f"{_n(peak * (demand.prompt_tokens + out_tokens) * 60)} tokens/min")))
    for variant in bedrock_models.variants_of(base):
        for commitment in ("none", "1month", "6month"):
            row_p = prices.bedrock_provisioned(variant, region, commitment)
            if row_p is None:
                continue
            unit_usd = row_p.usd_per_model_unit_per_hour
            if tpm_per_unit is None:
                out.append(Option(where="bedrock-provisioned", model_id=variant, usd_per_hour=None, usd_per_month=None,
                                  usd_per_million_output_tokens=None, slo_holds=None,
                                  note=f"{_usd(unit_usd)}/unit-hour ({commitment}); units needed unknown: per-unit "
                                       "throughput not given"))
                continue
            units = max(1, _ceil(peak * (demand.prompt_tokens + out_tokens) * 60 / tpm_per_unit))
            usd_h = unit_usd * units
            out.append(Option(where="bedrock-provisioned", model_id=variant, replicas=units, usd_per_hour=usd_h,
                              usd_per_month=usd_h * MONTH_HOURS,
                              usd_per_million_output_tokens=usd_h / (peak * out_tokens * SECONDS_PER_HOUR) * 1e6,
                              slo_holds=None, note=f"{units} model unit(s), {commitment} commitment, held all month"))
    return out


def _batch_option(model: str, params_billion: float, demand: Demand, region: str, precision: Precision,
                  feasible: list[tuple[str, int]], profiles: Sequence[ThroughputProfile],
                  headroom: float, share: float) -> Option | None:
    daily = share * _mean(demand) * 86400
    if daily <= 0:
        return None
    rate = daily / (BATCH_DEADLINE_HOURS * SECONDS_PER_HOUR)
    batch_demand = demand.model_copy(update={"peak_requests_per_second": rate, "off_peak_requests_per_second": 0.0,
                                             "batch_requests_per_day": daily,
                                             "batch_deadline_hours": BATCH_DEADLINE_HOURS})
    best: tuple[float, TargetReport, int] | None = None
    for it, tp in feasible:
        acc = accelerators.lookup(it)
        assert acc is not None
        spec = TargetSpec(name=f"batch-{it}", kind="batch", model=model, params_billion=params_billion,
                          accelerator=acc.accelerator, instance_type=it, precision=precision, tensor_parallel=tp,
                          devices_per_replica=tp, replicas_per_node=_units(acc)[0] // tp, min_replicas=0,
                          max_replicas=10 ** 6, region=region)
        report = plan_target(spec, batch_demand, profiles=profiles, headroom=headroom)
        cost = report.usd_per_million_output_tokens
        if cost is not None and (best is None or cost < best[0]):
            best = (cost, report, tp)
    if best is None:
        return None
    _, report, tp = best
    assert report.usd_per_hour_at_peak is not None and report.usd_per_hour_at_peak_range is not None
    low, high = report.usd_per_hour_at_peak_range
    return Option(where="batch", instance_type=report.target.instance_type, devices=tp,
                  replicas=report.replicas_at_peak, usd_per_hour=report.usd_per_hour_at_peak,
                  usd_per_month=(report.usd_per_million_output_tokens / 1e6 * daily * demand.output_tokens
                                 * MONTH_HOURS / 24),  # the work: nodes go when the day's volume is done
                  usd_per_million_output_tokens=report.usd_per_million_output_tokens, slo_holds=None,
                  note=(f"{share:.0%} of the volume ({_n(daily)} requests/day) on spot within "
                        f"{_n(BATCH_DEADLINE_HOURS)} h; spot {_usd(low)}-{_usd(high)}/h (typical "
                        f"{_usd(report.usd_per_hour_at_peak)}/h); no real-time SLO"))


def _cheaper(best: Option | None, o: Option) -> Option:
    """The better of two sizes of one option: SLO holding first, then the lower monthly cost."""
    return o if best is None or _order(o) < _order(best) else best


def _order(o: Option) -> tuple[int, int, float]:
    group = 0 if o.slo_holds is True else 1 if o.slo_holds is None else 2
    return group, o.usd_per_month is None, o.usd_per_month or 0.0


def compare(model: str, params_billion: float, demand: Demand, *, region: str, batch_share: float = 0.0,
            profiles: Sequence[ThroughputProfile] = (), candidates: Sequence[str] | None = None,
            precision: Precision = "bf16", bedrock_model: str | None = None,
            bedrock_tokens_per_minute_per_unit: float | None = None,
            headroom: float = DEFAULT_HEADROOM) -> list[Option]:
    """The where-to-run table for ``model`` (module docstring: the options and their order). ``candidates``: EC2
    instance types to try (default: every catalogued accelerator type priced in ``region``); ``bedrock_model``: the
    Bedrock model to compare with (default: ``model`` itself when it is a Bedrock id)."""
    if not 0 <= batch_share <= 1:
        raise ValueError(f"batch_share ({batch_share}) must be between 0 and 1")
    if candidates is None:
        candidates = sorted(t for t in accelerators.CATALOG if (t, region) in prices.INSTANCE_PRICES)
    context = demand.prompt_tokens + demand.output_tokens
    online = _scaled(demand, 1 - batch_share)
    feasible: list[tuple[str, int]] = []
    options: list[Option] = []
    for it in candidates:
        tp = fewest_devices(model, params_billion, it, precision, context)
        if tp is None:
            continue
        feasible.append((it, tp))
        if online is None:
            continue
        acc = accelerators.lookup(it)
        assert acc is not None
        units = _units(acc)[0]
        vllm_best: Option | None = None
        sm_best: Option | None = None
        for size in (t for t in sorted({2 ** i for i in range(units.bit_length())} | {units}) if tp <= t <= units):
            # more units than the fewest that fit: more KV cache and bandwidth per replica (the cheapest wins)
            devices = max(1, size // acc.cores_per_device) if acc.shards_over_cores else size
            common = {"model": model, "params_billion": params_billion, "accelerator": acc.accelerator,
                      "precision": precision, "tensor_parallel": devices, "devices_per_replica": devices,
                      "min_replicas": 1, "max_replicas": 10 ** 6, "region": region}
            vllm = TargetSpec(name=f"vllm-{it}", kind="vllm", instance_type=it, replicas_per_node=units // size,
                              **common)
            vllm_best = _cheaper(vllm_best, _instance_option("vllm", vllm, online, profiles, headroom,
                                                             _price(prices.on_demand, it, region), size))
            ml = f"ml.{it}"
            ml_usd = _price(prices.sagemaker, ml, region)
            if ml_usd is not None:
                sm = TargetSpec(name=f"sagemaker-{it}", kind="sagemaker", instance_type=ml, replicas_per_node=1,
                                **common)
                sm_best = _cheaper(sm_best, _instance_option("sagemaker", sm, online, profiles, headroom, ml_usd,
                                                             size))
        options += [o for o in (vllm_best, sm_best) if o is not None]
    if online is not None:
        options += _bedrock_options(bedrock_model or model, online, region, bedrock_tokens_per_minute_per_unit)
    if batch_share > 0:
        batch = _batch_option(model, params_billion, demand, region, precision, feasible, profiles, headroom,
                              batch_share)
        if batch is not None:
            options.append(batch)
    return sorted(options, key=_order)


__all__ = ["BATCH_DEADLINE_HOURS", "MONTH_HOURS", "compare", "fewest_devices"]
