"""Stack section: capacity. What each serving target must carry, the throughput you measured, the weekly traffic, and
the pre-scaling floors that follow from them. Creates no resource of its own: ``build`` plans capacity (pure,
``components.capacity``) and hands the serving section each model's cron floors and capacity facts.

Config key ``capacity`` (camelCase in YAML):

- ``targets``: demand per serving target, keyed by its name: a model of ``serving.models``, a pool of
  ``serving.pools``, an endpoint of ``sagemaker.endpoints``, ``bedrock`` (the provisioned or on-demand model) or
  ``batch``. Each gives ``share`` (of the stack's ``targets.requestsPerSecond``) or ``peakRequestsPerSecond``, and may
  override ``offPeakRequestsPerSecond``, ``promptTokens``, ``outputTokens`` and the SLO (``ttftP95Ms``,
  ``itlP95Ms``, ``p95LatencyMs``); ``batch`` gives ``requestsPerDay`` and ``deadlineHours``. A serving target with
  neither share nor rate gets an equal part of what the listed shares leave (the report says so).
- ``traffic``: the weekly shape of demand, as fractions of the peak per hour (``weekday`` and ``weekend``, 24 values
  each, in ``timezone``) or a CSV of observed history (``historyFile``: ``timestamp,requests_per_second`` rows). It
  sets off-peak demand and, with ``preScale`` on, the KEDA ``cron`` floors that raise each vLLM service's replicas
  ahead of the daily rise (docs/capacity.md).
- ``profiles``: throughput you measured (``vllm bench serve``, serving/loadtest): per model, accelerator, precision
  and tensor parallel size, the output tokens/s, TTFT and ITL at a few concurrencies. They win over the catalogue's.
- ``headroom``, ``overProvisionedRatio``, ``offPeakShare``: how the verdicts are judged.

``genai-scale capacity --stack NAME`` prints the report; the plan prints its one-screen cost summary.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.capacity.planner import nodes_for
from infra.sections.base import BuildContext, SettingsModel
from problems import Problem, ProblemsError, did_you_mean

ROOT = Path(__file__).resolve().parents[2]


class _Finite(SettingsModel):
    """Capacity settings: no NaN or infinity (YAML's ``.inf`` is a mistake, never a rate or a latency)."""

    model_config = ConfigDict(allow_inf_nan=False)


class SloSettings(_Finite):
    """Latency objectives of one target (each optional; the stack's ``targets`` fill what is not given)."""

    ttft_p95_ms: float | None = Field(strict=True, default=None, gt=0)
    """Time to first token, p95, in milliseconds. Default: the stack's ``targets.ttftP95Ms``."""
    itl_p95_ms: float | None = Field(strict=True, default=None, gt=0)
    """Inter-token latency, p95, in milliseconds. Default: the stack's ``targets.itlP95Ms``."""
    p95_latency_ms: float | None = Field(strict=True, default=None, gt=0)
    """End-to-end latency, p95, in milliseconds. Default: the stack's ``targets.p95LatencyMs``."""


class TargetDemandSettings(SloSettings):
    """The demand one serving target must carry."""

    share: float | None = Field(strict=True, default=None, gt=0, le=1)
    """Its share of the stack's peak ``targets.requestsPerSecond``. Default: an equal part of what is left."""
    peak_requests_per_second: float | None = Field(strict=True, default=None, gt=0)
    """Its peak request rate, instead of ``share``. Default: none."""
    off_peak_requests_per_second: float | None = Field(strict=True, default=None, ge=0)
    """Its off-peak request rate. Default: from ``capacity.traffic``, else ``offPeakShare`` x peak."""
    prompt_tokens: int | None = Field(strict=True, default=None, ge=1)
    """Mean prompt tokens per request. Default: the stack's ``targets.promptTokens``."""
    output_tokens: int | None = Field(strict=True, default=None, ge=1)
    """Mean output tokens per request. Default: ``targets.tokensPerSecond / targets.requestsPerSecond``."""
    requests_per_day: float | None = Field(strict=True, default=None, gt=0)
    """``batch`` only: requests per day. Default: none (the batch target is then reported without a volume)."""
    deadline_hours: float | None = Field(strict=True, default=None, gt=0, le=168)
    """``batch`` only: hours a day's requests may take. Default: 24."""
    pre_scale: bool = Field(default=True, strict=True)
    """vLLM models: render the KEDA cron floors from ``capacity.traffic`` (needs a traffic profile). Default: on."""


NOT_ZONES = frozenset({"localtime", "posixrules", "Factory", "leap-seconds.list", "leapseconds", "tzdata.zi",
                       "zone.tab", "zone1970.tab", "iso3166.tab", "SECURITY"})
"""Names zoneinfo may open on some hosts that are not time zones."""


class TrafficSettings(_Finite):
    """The weekly shape of demand: fractions of the peak per hour, or observed history."""

    timezone: str = "UTC"
    """IANA time zone of the hours (and of the KEDA cron triggers). Default: UTC."""
    weekday: list[Annotated[float, Field(strict=True)]] | None = Field(default=None, min_length=24, max_length=24)
    """Monday to Friday: 24 fractions of the peak (0-1), hour 0 first. Default: none."""
    weekend: list[Annotated[float, Field(strict=True)]] | None = Field(default=None, min_length=24, max_length=24)
    """Saturday and Sunday: 24 fractions of the peak. Default: the weekday shape."""
    history_file: str | None = None
    """A CSV of observed demand (``timestamp,requests_per_second``), relative to the repository root or absolute,
    instead of ``weekday``/``weekend``. Default: none."""

    @field_validator("weekday", "weekend")
    @classmethod
    def _fractions(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            bad = [(i, x) for i, x in enumerate(v) if not 0 <= x <= 1]
            if bad:
                raise ValueError("fractions of the peak between 0 and 1; out of range: "
                                 + ", ".join(f"hour {i}: {x}" for i, x in bad))
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"an IANA time zone such as UTC or America/New_York (not {v!r})") from None
        if v in NOT_ZONES or v.startswith(("right/", "posix/")):  # files of the host's zoneinfo, not zone names
            raise ValueError(f"an IANA time zone such as UTC or America/New_York (not {v!r}, a file of the host's "
                             "zoneinfo database that KEDA's cron scaler would not know)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> TrafficSettings:
        if self.history_file is None and self.weekday is None:
            raise ValueError("weekday (24 fractions of the peak, optionally weekend) or historyFile")
        if self.history_file is not None and (self.weekday is not None or self.weekend is not None):
            raise ValueError("either historyFile or weekday/weekend, not both (a tier preset's shape is removed in "
                             "the stack file with weekday: null and weekend: null)")
        if self.weekday is not None:
            top = max([*self.weekday, *(self.weekend or [])])
            if top == 0:
                raise ValueError("at least one hour of the week above 0 (weekday or weekend)")
            if top != 1:
                raise ValueError(f"fractions of the peak hour, so the peak hour is 1.0 (the largest here is {top:g}: "
                                 "the demand at 1.0 is the target's peak requests/s)")
        return self


class ProfilePointSettings(_Finite):
    """One measured point: one replica at one concurrency."""

    concurrency: int = Field(strict=True, ge=1)
    """Requests in flight on the replica."""
    output_tokens_per_second: float = Field(strict=True, gt=0, le=10_000_000)
    """Output tokens per second of the whole replica."""
    ttft_ms: float = Field(strict=True, gt=0)
    """Time to first token (the statistic in ``latencyStat``)."""
    itl_ms: float = Field(strict=True, gt=0)
    """Inter-token latency (the statistic in ``latencyStat``)."""


class MeasuredProfileSettings(_Finite):
    """A throughput profile you measured; it wins over the catalogue for its model, accelerator, precision and TP."""

    model: str = Field(min_length=1)
    """The model id as in ``serving.models.<name>.modelId`` (or a size class such as ``8b``)."""
    params_billion: float = Field(strict=True, gt=0, le=5000)
    """Parameters in billions (matches other models of the same size class too)."""
    accelerator: str = Field(min_length=1)
    """Accelerator model as the catalogue names it: A10G, L4, L40S, A100, H100, H200, Inferentia2."""
    precision: Literal["bf16", "fp16", "fp8", "int8", "int4"] = "bf16"
    """Weights precision of the run. Default: bf16."""
    tensor_parallel: int = Field(strict=True, default=1, ge=1)
    """Tensor parallel size of the run. Default: 1."""
    pipeline_parallel: int = Field(strict=True, default=1, ge=1)
    """Pipeline parallel size (nodes) of the run. Default: 1."""
    input_tokens: int = Field(strict=True, ge=1)
    """Prompt tokens per request in the run."""
    output_tokens: int = Field(strict=True, ge=1)
    """Output tokens per request in the run."""
    latency_stat: Literal["p95", "p50", "mean"] = "p95"
    """Which statistic ``ttftMs``/``itlMs`` are. Default: p95."""
    points: list[ProfilePointSettings] = Field(min_length=1)
    """The measured points, concurrency increasing."""
    source: str = Field(min_length=3)
    """What run this is (tool, version, date, where its output is kept)."""
    as_of: _dt.date
    """When it was measured."""

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, v: str) -> str:
        from components.catalog.accelerators import CATALOG
        known = sorted({s.accelerator for s in CATALOG.values()})
        if v not in known:
            raise ValueError(f"an accelerator of the catalogue: {', '.join(known)}")
        return v

    @field_validator("as_of")
    @classmethod
    def _not_in_the_future(cls, v: _dt.date) -> _dt.date:
        if v > _dt.date.today():
            raise ValueError(f"the date the profile was measured, not in the future (today is {_dt.date.today()})")
        return v

    @field_validator("points")
    @classmethod
    def _increasing(cls, v: list[ProfilePointSettings]) -> list[ProfilePointSettings]:
        cs = [p.concurrency for p in v]
        if any(b <= a for a, b in zip(cs, cs[1:])):
            raise ValueError(f"points with strictly increasing concurrency (got {cs})")
        return v


class CapacitySettings(_Finite):
    """Capacity and cost planning: demand per target, measured throughput, traffic shape, pre-scaling."""

    @field_validator("profiles")
    @classmethod
    def _one_per_setup(cls, v: list[MeasuredProfileSettings]) -> list[MeasuredProfileSettings]:
        seen: dict[tuple, int] = {}
        for i, p in enumerate(v):
            key = (p.model, p.accelerator, p.precision, p.tensor_parallel, p.pipeline_parallel)
            if key in seen:
                raise ValueError(f"one profile per model, accelerator, precision and parallelism: profiles[{i}] "
                                 f"repeats profiles[{seen[key]}] ({', '.join(map(str, key))}); merge their points")
            seen[key] = i
        return v

    targets: dict[str, TargetDemandSettings] = Field(default_factory=dict)
    """Demand per serving target (a model, pool, SageMaker endpoint, ``bedrock`` or ``batch``). Default: the stack's
    targets split equally over the online serving targets."""
    traffic: TrafficSettings | None = None
    """The weekly shape of demand (off-peak demand and the pre-scaling floors). Default: none."""
    profiles: list[MeasuredProfileSettings] = Field(default_factory=list)
    """Throughput you measured; wins over the catalogue. Default: none."""
    off_peak_share: float = Field(strict=True, default=0.25, ge=0, le=1)
    """Off-peak demand as a share of the peak, without a traffic profile. Default: 0.25."""
    headroom: float | None = Field(strict=True, default=None, gt=0, le=1)
    """Share of a replica's SLO-bounded throughput to plan on. Default: the planner's (components.capacity)."""
    over_provisioned_ratio: float | None = Field(strict=True, default=None, gt=1)
    """Minimum capacity above this multiple of off-peak demand is over-provisioned. Default: the planner's."""


KEYS = {"capacity": CapacitySettings}
"""Top-level `genai-scale:<key>` config keys this section owns."""




# --- the targets of a stack, as the planner sees them ----------------------------------------------------------------

BATCH, BEDROCK = "batch", "bedrock"
"""The names of the stack's batch target and its Bedrock target (``capacity.targets.batch``, ``.bedrock``)."""

_COMMITMENT = {"none": "none", "OneMonth": "1month", "SixMonths": "6month"}
_CAPACITY_TYPE = {"ON_DEMAND": "on-demand", "SPOT": "spot", "CAPACITY_BLOCK": "capacity-block"}


def target_kinds(cfg) -> dict[str, str]:
    """Every serving target of the stack, name -> kind (``components.capacity.Kind``), in config order."""
    out: dict[str, str] = {}
    s = cfg.serving
    if s.enabled:
        out.update({n: "vllm" for n in s.models})
        out.update({n: "pool" for n in s.pools})
    out.update({n: "sagemaker" for n, e in cfg.sagemaker.endpoints.items() if e.mode != "async"})
    if cfg.bedrock.enabled:
        out[BEDROCK] = "bedrock-provisioned" if cfg.bedrock.purchase else "bedrock-on-demand"
    if cfg.batch.enabled:
        out[BATCH] = "batch"
    return out


def _precision(model) -> str:
    """The profile precision of a model's vLLM settings: FP8 and 4-bit quantizations, else the dtype (bf16)."""
    q = getattr(model, "quantization", None)
    if q == "fp8":
        return "fp8"
    if q in ("awq", "gptq", "awq_marlin", "gptq_marlin", "bitsandbytes"):
        return "int4"
    return "fp16" if getattr(model, "dtype", "auto") in ("float16", "half") else "bf16"


def _params(model_id: str, facts=None) -> float | None:
    from components.catalog import models
    if facts is not None:
        return facts.parameters_billion
    row = models.lookup(model_id)
    return row.parameters_billion if row is not None else None


def _group(cfg, name: str | None) -> dict[str, object]:
    ng = cfg.node_groups.get(name) if name else None
    if ng is None:
        return {}
    return {"node_group": name, "node_min": ng.min_size, "node_max": ng.max_size, "instance_type": ng.instance_type,
            "capacity_type": _CAPACITY_TYPE.get(ng.capacity_type, "on-demand")}


def _vllm_spec(cfg, name: str, m):
    """The planner's view of a served model: what one replica holds, how many fit a node, the bounds. None when the
    model's own settings are invalid (the serving section reports them)."""
    from components.capacity import TargetSpec
    from components.errors import ArgsError
    from components.serving.vllm.multinode import MultiNodeVllmServiceArgs
    from components.serving.vllm.manifests import node_share
    from infra.sections.serving import _PLACEHOLDER_WIRING, _accelerators_per_replica, placement_from_settings, \
        service_args

    ng = cfg.node_groups.get(m.node_group)
    placement = placement_from_settings(m.node_group, ng) if ng is not None else None
    if placement is None:
        return None
    try:
        args = service_args(name, m, cfg=cfg, placement=placement, bucket="bucket", **_PLACEHOLDER_WIRING)
    except (ArgsError, ValueError):
        return None
    acc = placement.accelerator
    tp, pp, nodes = args.model.tensor_parallel_size, 1, 1
    if isinstance(args, MultiNodeVllmServiceArgs):
        lay = args.layout()
        tp, pp, nodes = lay.tensor_parallel_size, lay.pipeline_parallel_size, lay.nodes
        devices, per_node = tp * pp, 1
    else:
        devices = max(1, _accelerators_per_replica(args))
        per_node = max(1, math.floor(1 / node_share(args) + 1e-9))  # the share of a node one replica takes
    if acc.shards_over_cores:  # TP counts NeuronCores; the profiles count Neuron devices (2 cores each on inf2)
        cores = max(1, acc.neuron_cores // max(1, acc.count))
        devices = tp = max(1, tp // cores)
    return TargetSpec(
        name=name, kind="vllm", model=m.model_id, params_billion=_params(m.model_id, args.model.facts()),
        accelerator=acc.accelerator, precision=_precision(args.model), tensor_parallel=tp, pipeline_parallel=pp,
        devices_per_replica=devices, replicas_per_node=per_node, nodes_per_replica=nodes,
        min_replicas=m.min_replicas, max_replicas=m.max_replicas, warm_placeholders=m.warm_pool_placeholders,
        max_concurrency=args.model.max_num_seqs, region=cfg.region, **_group(cfg, m.node_group))


def _pool_spec(cfg, name: str, p):
    from components.capacity import PoolMember, TargetSpec
    from components.catalog import accelerators

    g = _group(cfg, p.node_group)
    acc = accelerators.lookup(str(g.get("instance_type", "")))
    members = tuple(PoolMember(model=pm.model_id, params_billion=params)
                    for pm in p.models.values() if (params := _params(pm.model_id, pm.model_facts)) is not None)
    largest = max(members, key=lambda x: x.params_billion) if members else None
    per_node = 1 if p.policy == "dynamic" or acc is None else acc.count
    return TargetSpec(
        name=name, kind="pool", model=largest.model if largest else next(iter(p.models.values())).model_id,
        params_billion=largest.params_billion if largest else None, accelerator=acc.accelerator if acc else None,
        replicas_per_node=per_node, min_replicas=p.min_replicas, max_replicas=p.max_replicas, pool_members=members,
        max_concurrency=max(pm.max_num_seqs for pm in p.models.values()), region=cfg.region, **g)


def _sagemaker_spec(cfg, name: str, e):
    from components.capacity import TargetSpec
    from components.catalog import accelerators

    acc = accelerators.lookup(e.instance_type.removeprefix("ml."))
    tp = e.tensor_parallel_degree or 1
    if acc is not None and acc.shards_over_cores:
        tp = max(1, tp // max(1, acc.neuron_cores // max(1, acc.count)))
    return TargetSpec(name=name, kind="sagemaker", model=e.model, params_billion=_params(e.model),
                      accelerator=acc.accelerator if acc else None, instance_type=e.instance_type,
                      tensor_parallel=tp, devices_per_replica=tp, min_replicas=e.min_instances,
                      max_replicas=e.max_instances, max_concurrency=e.max_batch_size, region=cfg.region)


def _bedrock_spec(cfg):
    from components.capacity import TargetSpec
    from components.catalog import bedrock_models

    b = cfg.bedrock
    row = bedrock_models.lookup(b.model_id or "")
    base = row.base_id if row is not None else (b.model_id or "unknown")
    if not b.purchase:
        return TargetSpec(name=BEDROCK, kind="bedrock-on-demand", model=base, region=cfg.region, min_replicas=0)
    # provisioned throughput is bought (and priced) per context-length variant: the id as configured
    return TargetSpec(name=BEDROCK, kind="bedrock-provisioned", model=b.model_id or base, region=cfg.region,
                      min_replicas=b.model_units, max_replicas=b.model_units, model_units=b.model_units,
                      commitment=_COMMITMENT.get(b.commitment, "none"))


def _batch_spec(cfg):
    s = cfg.batch
    m = cfg.serving.models.get(s.model or "")
    if m is None or not s.node_groups:
        return None
    base = _vllm_spec(cfg, BATCH, m.model_copy(update={"node_group": s.node_groups[0], "min_replicas": 0,
                                                       "max_replicas": s.max_parallelism,
                                                       "warm_pool_placeholders": 0}))
    if base is None:
        return None
    groups = [cfg.node_groups[g] for g in s.node_groups if g in cfg.node_groups]
    # the workers may land on any of the spot batch groups (one replica per node each): their sizes add up
    return base.model_copy(update={"kind": "batch", "capacity_type": "spot", "node_group": ", ".join(s.node_groups),
                                   "node_min": sum(g.min_size for g in groups),
                                   "node_max": sum(g.max_size for g in groups)})


def target_specs(cfg) -> dict[str, object]:
    """The planner's TargetSpec of every target whose settings are valid, by name."""
    out: dict[str, object] = {}
    for name, kind in target_kinds(cfg).items():
        if kind == "vllm":
            spec = _vllm_spec(cfg, name, cfg.serving.models[name])
        elif kind == "pool":
            spec = _pool_spec(cfg, name, cfg.serving.pools[name])
        elif kind == "sagemaker":
            spec = _sagemaker_spec(cfg, name, cfg.sagemaker.endpoints[name])
        elif kind == BATCH:
            spec = _batch_spec(cfg)
        else:
            spec = _bedrock_spec(cfg)
        if spec is not None:
            out[name] = spec
    return out


# --- the demand each target must carry ---------------------------------------------------------------------------------

def history_path(cfg) -> Path | None:
    """``capacity.traffic.historyFile`` as a path (relative paths from the repository root)."""
    t = cfg.capacity.traffic
    if t is None or t.history_file is None:
        return None
    p = Path(t.history_file)
    return p if p.is_absolute() else ROOT / p


def traffic_shape(cfg) -> list[float] | None:
    """The stack's weekly demand as 168 fractions of its peak hour (Monday 00:00 first, in the traffic time zone),
    from ``weekday``/``weekend`` or from the observed history; None without ``capacity.traffic``."""
    t = cfg.capacity.traffic
    if t is None:
        return None
    if t.history_file is None:
        weekend = t.weekend if t.weekend is not None else t.weekday
        hours = [*(t.weekday * 5), *(weekend * 2)]
    else:
        from components.capacity.schedule import TrafficProfile
        hours = list(TrafficProfile.from_history_csv(history_path(cfg), timezone=t.timezone).hours)
    top = max(hours)
    return [h / top for h in hours] if top > 0 else None


def _default_request(cfg) -> dict[str, object]:
    t = cfg.targets
    return {"prompt_tokens": t.prompt_tokens,
            "output_tokens": max(1, round(t.tokens_per_second / t.requests_per_second))}


def demands(cfg) -> tuple[dict[str, object], list[str]]:
    """The Demand of every target (None: the stack states none for it), and notes saying where defaults applied."""
    from components.capacity import Demand, Slo

    kinds = target_kinds(cfg)
    c, t = cfg.capacity, cfg.targets
    shape = traffic_shape(cfg)
    off_share = min(shape) if shape is not None else c.off_peak_share
    given = {n: d for n, d in c.targets.items() if n in kinds}
    taken = sum(d.share for d in given.values() if d.share is not None)
    rest = [n for n, k in kinds.items() if k != "batch" and (n not in given or (given[n].share is None and
                                                                                given[n].peak_requests_per_second is None))]
    each = max(0.0, 1.0 - taken) / len(rest) if rest else 0.0
    notes: list[str] = []
    if rest and each > 0:
        notes.append(f"demand split equally: {', '.join(rest)} each carry {each:.0%} of targets.requestsPerSecond "
                     f"({each * t.requests_per_second:g} req/s at peak); set capacity.targets.<name>.share or "
                     "peakRequestsPerSecond to say otherwise")
    elif rest:
        notes.append(f"the shares in capacity.targets take all of targets.requestsPerSecond: {', '.join(rest)} "
                     "carry none (no demand to plan); give them a share or a peakRequestsPerSecond")
    base = _default_request(cfg)
    out: dict[str, object] = {}
    for name, kind in kinds.items():
        d = given.get(name)
        get = (lambda key, default: default if d is None or getattr(d, key) is None else getattr(d, key))
        slo = Slo(ttft_p95_ms=get("ttft_p95_ms", t.ttft_p95_ms), itl_p95_ms=get("itl_p95_ms", t.itl_p95_ms),
                  e2e_p95_ms=get("p95_latency_ms", t.p95_latency_ms))
        request = {"prompt_tokens": get("prompt_tokens", base["prompt_tokens"]),
                   "output_tokens": get("output_tokens", base["output_tokens"])}
        if kind == "batch":
            per_day = get("requests_per_day", None)
            out[name] = None if per_day is None else Demand(
                peak_requests_per_second=per_day / 86_400, off_peak_requests_per_second=0, slo=Slo(),
                batch_requests_per_day=per_day, batch_deadline_hours=get("deadline_hours", 24.0), **request)
            continue
        peak = get("peak_requests_per_second", None)
        if peak is None:
            share = get("share", each)
            peak = share * t.requests_per_second
        if peak <= 0:
            out[name] = None
            continue
        off = get("off_peak_requests_per_second", off_share * peak)
        out[name] = Demand(peak_requests_per_second=peak, off_peak_requests_per_second=min(off, peak), slo=slo,
                           **request)
    return out, notes


def config_problems(cfg) -> list[Problem]:
    """``capacity`` names real targets, gives a share or a rate (not both), shares add up to at most 1, batch keys
    only on ``batch``, off-peak at most peak; the traffic history file is readable and valid."""
    c = cfg.capacity
    kinds = target_kinds(cfg)
    out: list[Problem] = []
    for name, d in c.targets.items():
        base = f"capacity.targets.{name}"
        if name not in kinds:
            out.append(Problem(base, name, "a serving target of this stack: " + (", ".join(kinds) or
                               "none (no serving model, pool, SageMaker endpoint, Bedrock model or batch)")
                               + did_you_mean(name, list(kinds)),
                               (f"serving.models.{name}", f"serving.pools.{name}", f"sagemaker.endpoints.{name}"),
                               code="entry"))
            continue
        if d.share is not None and d.peak_requests_per_second is not None:
            out.append(Problem(f"{base}.share", d.share, "either share or peakRequestsPerSecond, not both",
                               (f"{base}.peakRequestsPerSecond",)))
        batch_keys = {"requests_per_day": d.requests_per_day, "deadline_hours": d.deadline_hours}
        online_keys = {"share": d.share, "peak_requests_per_second": d.peak_requests_per_second,
                       "off_peak_requests_per_second": d.off_peak_requests_per_second}
        wrong = batch_keys if kinds[name] != "batch" else online_keys
        for key, value in wrong.items():
            if value is not None:
                what = "batch only (the daily volume of the batch target)" if kinds[name] != "batch" else (
                    "unset on batch: give its requestsPerDay and deadlineHours")
                out.append(Problem(f"{base}.{to_camel(key)}", value, what))
        if (d.peak_requests_per_second is not None and d.off_peak_requests_per_second is not None
                and d.off_peak_requests_per_second > d.peak_requests_per_second):
            out.append(Problem(f"{base}.offPeakRequestsPerSecond", d.off_peak_requests_per_second,
                               f"<= peakRequestsPerSecond ({d.peak_requests_per_second:g})",
                               (f"{base}.peakRequestsPerSecond",)))
        if not d.pre_scale and kinds[name] != "vllm":
            out.append(Problem(f"{base}.preScale", False, "vLLM models only (the cron floors go on their "
                               "ScaledObjects)"))
    shares = {n: d.share for n, d in c.targets.items() if d.share is not None and n in kinds}
    if sum(shares.values()) > 1 + 1e-9:
        out.append(Problem("capacity.targets", shares, f"shares adding up to at most 1 (they add up to "
                           f"{sum(shares.values()):g})"))
    elif not out and (c.traffic is None or c.traffic.history_file is None):  # a history file is read later
        wanted, _ = demands(cfg)
        for name, d in c.targets.items():
            got = wanted.get(name)
            if (d.off_peak_requests_per_second is not None and d.peak_requests_per_second is None and got is not None
                    and d.off_peak_requests_per_second > got.peak_requests_per_second):
                out.append(Problem(f"capacity.targets.{name}.offPeakRequestsPerSecond", d.off_peak_requests_per_second,
                                   f"<= the target's peak ({got.peak_requests_per_second:g} req/s from its share of "
                                   "targets.requestsPerSecond)", ("targets.requestsPerSecond",)))
    path = history_path(cfg)
    if path is not None:
        if not path.is_file():
            out.append(Problem("capacity.traffic.historyFile", c.traffic.history_file, "a readable CSV file "
                               "(timestamp,requests_per_second rows), relative to the repository root or absolute"))
        else:
            from components.capacity.schedule import TrafficProfile
            try:
                profile = TrafficProfile.from_history_csv(path, timezone=c.traffic.timezone)
            except ProblemsError as err:
                out.extend(Problem("capacity.traffic.historyFile", c.traffic.history_file,
                                   f"{p.path}: {p.expected} (got {p.value!r})") for p in err.problems)
            except (OSError, UnicodeDecodeError) as exc:
                out.append(Problem("capacity.traffic.historyFile", c.traffic.history_file,
                                   f"a readable UTF-8 CSV file ({exc.__class__.__name__}: {exc})"))
            else:
                if max(profile.hours) <= 0:
                    out.append(Problem("capacity.traffic.historyFile", c.traffic.history_file,
                                       "some demand in the history (every sample is 0)"))
    return out


# --- the plan ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CapacityPlan:
    """A stack's capacity plan: one report per target, the pre-scaling floors and capacity facts the serving section
    renders per vLLM model, and notes on the defaults that applied."""

    stack_tier: str
    reports: tuple = ()
    """``components.capacity.TargetReport`` per target, in config order."""
    floors: dict = field(default_factory=dict)
    """vLLM model name -> its KEDA cron floors (``components.capacity.schedule.CronFloor``)."""
    facts: dict = field(default_factory=dict)
    """vLLM model name -> the capacity facts its ScaledObject carries for the policy pack."""
    notes: tuple[str, ...] = ()
    lead_minutes: dict = field(default_factory=dict)
    """vLLM model name -> how long before a rise its floor opens (node, image and model load)."""

    group_notes: tuple[str, ...] = ()
    """Findings about node groups several targets share (their nodes at peak against the group's maxSize)."""
    held: dict = field(default_factory=dict)
    """vLLM model name -> the replicas its cron floors hold all week, where that is above ``minReplicas``."""

    @property
    def mandatory(self) -> bool:
        return any(r.mandatory for r in self.reports)

    def totals(self) -> tuple[float, float, list[str]]:
        """USD/h of every target at its minimum and at peak, and the targets whose cost is unknown (a missing price,
        or no replica count because the SLO is unreachable). A node group's ``minSize`` is counted once, however
        many targets share the group."""
        low = high = 0.0
        unknown = []
        shared: dict[str, list] = {}
        for r in self.reports:
            if r.usd_per_hour_at_min is None or r.usd_per_hour_at_peak is None:
                unknown.append(r.target.name)
                continue
            high += r.usd_per_hour_at_peak
            if r.target.node_group and r.target.kind in ("vllm", "pool", "batch") and r.target.node_min:
                shared.setdefault(r.target.node_group, []).append(r)
            else:
                low += r.usd_per_hour_at_min
        for group in shared.values():
            per_node = [r.usd_per_hour_at_min / r.nodes_at_min for r in group if r.nodes_at_min]
            held = sum(nodes_for(r.target, self.held.get(r.target.name, r.target.min_replicas)
                                 + r.target.warm_placeholders) for r in group)
            if per_node:
                low += max(held, group[0].target.node_min or 0) * per_node[0]
        return low, high, unknown


def mandatory_rules(cfg) -> frozenset[str]:
    """The planner's rules the stack's tier makes blocking (tier facts ``policy.capacity.<rule>: mandatory``, the
    same levels the policy pack's capacity rules take)."""
    from infra.tiers import load_tier
    levels = load_tier(cfg.tier).policy.capacity.model_dump(by_alias=False)
    return frozenset(rule.replace("_", "-") for rule, level in levels.items() if level == "mandatory")


def availability_replicas(cfg) -> int:
    """Replicas an always-on target keeps whatever its demand: 2 (one per AZ) in a tier whose facts require the
    cluster to survive an AZ outage (``multiAz.cluster``), else 0."""
    from infra.tiers import load_tier
    return 2 if load_tier(cfg.tier).multi_az.cluster else 0


def measured_profiles(cfg) -> tuple:
    """``capacity.profiles`` as catalogue profiles (basis measured)."""
    from components.catalog.throughput import ProfilePoint, ThroughputProfile
    out = []
    for p in cfg.capacity.profiles:
        data = p.model_dump(by_alias=False)
        points = tuple(ProfilePoint(**pt) for pt in data.pop("points"))
        out.append(ThroughputProfile(**data, points=points, basis="measured"))
    return tuple(out)


def plan(cfg) -> CapacityPlan:
    """Plan every target of the stack (pure: no resource is created)."""
    from components.capacity import plan_target
    from components.capacity.facts import capacity_facts
    specs = target_specs(cfg)
    wanted, notes = demands(cfg)
    profiles = measured_profiles(cfg)
    mandatory = mandatory_rules(cfg)
    tune = {k: v for k, v in {"headroom": cfg.capacity.headroom,
                              "over_ratio": cfg.capacity.over_provisioned_ratio}.items() if v is not None}
    keep = availability_replicas(cfg)
    reports = tuple(plan_target(spec.model_copy(update={"availability_replicas": keep}) if spec.kind in (
        "vllm", "pool", "sagemaker") else spec, wanted.get(name), profiles=profiles, mandatory_rules=mandatory, **tune)
        for name, spec in specs.items())
    floors, facts, leads, held = {}, {}, {}, {}
    shape = traffic_shape(cfg)
    out = []
    for r in reports:
        if r.target.kind == "vllm" and r.demand is not None:
            name = r.target.name
            r = with_trigger_check(r, cfg.serving.models[name])
            facts[name] = capacity_facts(r, over_ratio=tune.get("over_ratio"))
            d = cfg.capacity.targets.get(name)
            if shape is not None and r.replica_requests_per_second and (d is None or d.pre_scale):
                leads[name], floors[name] = pre_scale_floors(cfg, r, shape)
                lowest = lowest_floor(floors[name])
                if lowest > r.target.min_replicas:
                    held[name] = lowest
                    r = held_by_floors(r, lowest)
        out.append(r)
    return CapacityPlan(stack_tier=cfg.tier, reports=tuple(out), floors=floors, facts=facts, notes=tuple(notes),
                        lead_minutes=leads, group_notes=tuple(shared_group_notes(cfg, out)), held=held)


TRIGGER_MISMATCH = 1.5
"""How far the KEDA tokens trigger's per-replica figure may sit from the plan's before the report says so."""


def with_trigger_check(r, m):
    """The report with a note when the model's KEDA tokens trigger (``autoscaling.tokensPerSecondPerReplica``)
    assumes a per-replica throughput far from the plan's operating point: the trigger then adds replicas too late
    (above) or too early (below) for the SLO the plan sizes to."""
    per_replica = m.autoscaling.tokens_per_second_per_replica
    point = r.operating_point
    if per_replica is None or point is None:
        return r
    ratio = per_replica / point.output_tokens_per_second
    if 1 / TRIGGER_MISMATCH <= ratio <= TRIGGER_MISMATCH:
        return r
    note = (f"serving.models.{r.target.name}.autoscaling.tokensPerSecondPerReplica ({per_replica:g}) is {ratio:.2g} x "
            f"what the plan gives one replica at the SLO ({point.output_tokens_per_second:.0f} tokens/s at "
            f"concurrency {point.concurrency}, {r.profile.basis if r.profile else 'no'} profile): the tokens trigger "
            f"adds replicas {'late' if ratio > 1 else 'early'}; measure the replica (a profile in capacity.profiles) "
            "and set the two alike")
    return r.model_copy(update={"notes": (*r.notes, note)})


def lowest_floor(floors: tuple) -> int:
    """The lowest replica floor in effect at any minute of the week (0 when some minute has none)."""
    from components.capacity.schedule import floor_intervals

    week = [0] * (7 * 24 * 60)
    for f in floors:
        for start, end in floor_intervals(f):
            for m in range(start, end):
                week[m % len(week)] = max(week[m % len(week)], f.desired_replicas)
    return min(week)


def held_by_floors(r, lowest: int):
    """The report with its minimum raised to ``lowest``, what the cron floors hold all week: a service whose floors
    never close never scales below them."""
    nodes = max(nodes_for(r.target, lowest + r.target.warm_placeholders), r.target.node_min or 0)
    price = (r.usd_per_hour_at_min / r.nodes_at_min if r.nodes_at_min and r.usd_per_hour_at_min is not None
             else (r.usd_per_hour_at_peak / r.nodes_at_peak if r.nodes_at_peak and r.usd_per_hour_at_peak else None))
    note = (f"the cron floors hold at least {lowest} replica{'s' if lowest != 1 else ''} all week (minReplicas "
            f"{r.target.min_replicas} is never reached): the minimum is what they hold; set "
            f"capacity.targets.{r.target.name}.preScale: false to keep scaling to the minimum")
    return r.model_copy(update={"nodes_at_min": nodes, "usd_per_hour_at_min": None if price is None else price * nodes,
                                "notes": (*r.notes, note)})


def shared_group_notes(cfg, reports) -> list[str]:
    """Node groups that several targets (or a target and the RAG embedding service) share: the nodes the targets
    need at peak together against the group's maxSize."""
    by_group: dict[str, list] = {}
    for r in reports:
        if r.target.kind in ("vllm", "pool") and r.target.node_group:
            by_group.setdefault(r.target.node_group, []).append(r)
    rag = getattr(cfg, "rag", None)
    embedding_group = getattr(getattr(rag, "embedding", None), "node_group", None) if rag is not None and getattr(
        rag, "enabled", False) else None
    out = []
    for group, rs in by_group.items():
        others = ["the RAG embedding service (its GPUs are not counted here)"] if group == embedding_group else []
        if len(rs) < 2 and not others:
            continue
        need = sum(nodes_for(r.target, max(r.replicas_at_peak or 0, r.target.min_replicas + r.target.warm_placeholders))
                   for r in rs)
        cap = rs[0].target.node_max
        users = ", ".join([r.target.name for r in rs] + others)
        verdict = (f"under-provisioned: raise nodeGroups.{group}.maxSize to {need}" if cap is not None and need > cap
                   else "fits")
        out.append(f"node group {group} is shared by {users}: the targets need {need} nodes at peak together "
                   f"(maxSize {cap}): {verdict}")
    return out


def pre_scale_floors(cfg, r, shape: list[float]) -> tuple[int, tuple]:
    """The KEDA cron floors of a vLLM model: the replicas each hour of the week needs at the model's share of the
    traffic shape, opened ahead of each rise by the node, image and model-load time (docs/capacity.md)."""
    from components.capacity.schedule import TrafficProfile, cron_floors, lead_minutes_for

    t = cfg.capacity.traffic
    traffic = TrafficProfile(timezone=t.timezone, hours=tuple(f * r.demand.peak_requests_per_second for f in shape),
                             source="capacity.traffic x the target's peak")
    m = cfg.serving.models[r.target.name]
    lead = lead_minutes_for(r.target.params_billion or 8.0, nodes=r.target.nodes_per_replica,
                            provisioner=str(getattr(cfg, "node_provisioner", "managed-node-groups")),
                            streamer=m.load_format == "runai_streamer")
    floors = cron_floors(traffic, r.replica_requests_per_second, lead_minutes=lead,
                         min_replicas=r.target.min_replicas, max_replicas=r.target.max_replicas)
    return lead, floors


def problems(cfg) -> list[Problem]:
    """Every ``capacity`` rule (:func:`config_problems`)."""
    return config_problems(cfg)


def build(ctx: BuildContext, cfg) -> None:
    """Plan capacity from the config (pure) and keep it for the serving section (cron floors, capacity facts) and the
    plan's cost summary; a target the planner cannot size is reported, never an error."""
    ctx.extras["capacity"] = plan(cfg)
