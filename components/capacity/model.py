"""The capacity planner's types: the demand a serving target must carry, the target as planned, and the report.

Pure data (pydantic, frozen, unknown keys rejected); the rules that fill a :class:`TargetReport` are in
:mod:`components.capacity.planner`, the where-to-run table (:class:`Option`) in :mod:`components.capacity.compare`.
Units are in the names (``_per_second``, ``_ms``, ``_usd_per_hour``). A field without a default is one no sensible
default exists for; every default says what it does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.catalog.throughput import Precision, ProfilePoint, ThroughputProfile

Kind = Literal["vllm", "pool", "sagemaker", "bedrock-on-demand", "bedrock-provisioned", "batch"]
"""What serves the target: a vLLM service on a node group; a model pool (several models on one group); a SageMaker
real-time endpoint (``ml.*`` instances); Bedrock on-demand (pay per token); Bedrock provisioned throughput (model
units); batch inference on spot (a daily volume and a deadline)."""

CapacityType = Literal["on-demand", "spot", "capacity-block", "reserved"]
"""How the target's nodes are bought: on-demand, spot, an EC2 Capacity Block, or reserved (an ODCR or Savings Plan:
priced at on-demand here, since the commitment's discount is account-specific)."""

Commitment = Literal["none", "1month", "6month"]
"""Bedrock provisioned-throughput commitment term."""

Verdict = Literal["under-provisioned", "over-provisioned", "fine", "unknown"]

VERDICT_SEVERITY: dict[str, int] = {"under-provisioned": 3, "over-provisioned": 2, "unknown": 1, "fine": 0}
"""Order of verdicts, worst first: under-provisioned (demand is not carried), over-provisioned (money is spent on
idle capacity), unknown (a price, profile or throughput figure is missing), fine. A report's verdict is its worst
finding's."""

_FROZEN = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)
"""No NaN or infinity anywhere: a rate, a size or a latency of infinity is a mistake, never a value to plan with."""


class Slo(BaseModel):
    """The latency objective one request must meet, as p95 (the profile's ``latency_stat`` says what its figures
    are; the planner compares them as they are and notes when they are not p95)."""

    model_config = _FROZEN

    ttft_p95_ms: float | None = Field(default=None, gt=0)
    """Time to first token, p95, in milliseconds. Default None: no TTFT bound."""
    itl_p95_ms: float | None = Field(default=None, gt=0)
    """Inter-token latency, p95, in milliseconds. Default None: no ITL bound."""
    e2e_p95_ms: float | None = Field(default=None, gt=0)
    """End-to-end latency of a request, p95, in milliseconds, taken as TTFT + ITL x (output tokens - 1) at the
    operating point. Default None: no end-to-end bound."""

    def describe(self) -> str:
        """The objective as text, e.g. ``TTFT p95 <= 1000 ms, ITL p95 <= 50 ms`` (``none`` when unbounded)."""
        parts = []
        if self.ttft_p95_ms is not None:
            parts.append(f"TTFT p95 <= {self.ttft_p95_ms:g} ms")
        if self.itl_p95_ms is not None:
            parts.append(f"ITL p95 <= {self.itl_p95_ms:g} ms")
        if self.e2e_p95_ms is not None:
            parts.append(f"end-to-end p95 <= {self.e2e_p95_ms:g} ms")
        return ", ".join(parts) or "none"


class Demand(BaseModel):
    """The load a target must carry, from the tier's targets."""

    model_config = _FROZEN

    peak_requests_per_second: float = Field(gt=0)
    """Requests per second at the daily peak."""
    off_peak_requests_per_second: float = Field(ge=0)
    """Requests per second in the quietest hours (at most the peak)."""
    prompt_tokens: int = Field(ge=1)
    """Typical prompt length, in tokens."""
    output_tokens: int = Field(ge=1)
    """Typical output length, in tokens."""
    slo: Slo = Slo()
    """The latency objective. Default: none (the throughput plateau is the operating point)."""
    batch_requests_per_day: float | None = Field(default=None, gt=0)
    """Batch targets: requests to finish per day. Default None: a batch target then has nothing to size."""
    batch_deadline_hours: float = Field(default=24.0, gt=0, le=24 * 7)
    """Batch targets: hours the daily volume must finish within. Default 24: spread over the day."""

    @model_validator(mode="after")
    def _off_peak_at_most_peak(self) -> Demand:
        if self.off_peak_requests_per_second > self.peak_requests_per_second:
            raise ValueError(f"off_peak_requests_per_second ({self.off_peak_requests_per_second:g}) must be <= "
                             f"peak_requests_per_second ({self.peak_requests_per_second:g})")
        return self


class PoolMember(BaseModel):
    """One model of a pool target: the pool is planned on its largest member's profile."""

    model_config = _FROZEN

    model: str = Field(min_length=1)
    """Model id (or size-class label)."""
    params_billion: float = Field(gt=0)
    """Parameters, in billions."""


class TargetSpec(BaseModel):
    """One serving target as planned: what serves it, on what, and its configured bounds."""

    model_config = _FROZEN

    name: str = Field(min_length=1)
    """The target's name, as findings name it (the service, pool, endpoint or job)."""
    kind: Kind
    model: str = Field(min_length=1)
    """Model id (Hugging Face id, Bedrock model id for the Bedrock kinds) or a size-class label (``8b``)."""
    params_billion: float | None = Field(default=None, gt=0)
    """Parameters, in billions. Default None: unknown (no profile, so capacity is unknown), except for Bedrock."""
    accelerator: str | None = None
    """Accelerator name as the accelerator catalogue has it (``A10G``, ``H100``). Default None: derived from
    ``instance_type`` through the catalogue."""
    instance_type: str | None = None
    """EC2 instance type of the node group (``g5.xlarge``), or ``ml.*`` for SageMaker. Default None: no price."""
    precision: Precision = "bf16"
    """Weights precision the profile is looked up for. Default bf16."""
    tensor_parallel: int = Field(default=1, ge=1)
    """Tensor-parallel size of one replica. Default 1."""
    pipeline_parallel: int = Field(default=1, ge=1)
    """Pipeline-parallel size of one replica. Default 1."""
    devices_per_replica: int = Field(default=1, ge=1)
    """Accelerator devices one replica holds. Default 1."""
    replicas_per_node: int = Field(default=1, ge=1)
    """Replicas one node holds (devices per node / devices per replica). Default 1."""
    nodes_per_replica: int = Field(default=1, ge=1)
    """Nodes one replica spans (a multi-node replica). Default 1."""
    min_replicas: int = Field(default=1, ge=0)
    """Configured minimum replicas (SageMaker: instances). Default 1."""
    max_replicas: int = Field(default=1, ge=1)
    """Configured maximum replicas (SageMaker: instances). Default 1."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Most requests one replica runs at once (vLLM's ``--max-num-seqs``): the operating point never goes above it.
    Default None: the profile's own range."""
    availability_replicas: int = Field(default=0, ge=0)
    """Replicas kept for availability whatever the demand (e.g. 2, one per AZ, in a tier that must survive an AZ
    outage): a minimum up to this many is never over-provisioned. Default 0: the demand alone decides."""
    warm_placeholders: int = Field(default=0, ge=0)
    """Placeholder pods keeping warm capacity; each holds a replica's accelerators. Default 0: none."""
    node_group: str | None = None
    """The node group the replicas run on. Default None: not planned against a group's bounds."""
    node_min: int | None = Field(default=None, ge=0)
    """The node group's minimum size. Default None: unknown (the nodes at min come from the replicas alone)."""
    node_max: int | None = Field(default=None, ge=0)
    """The node group's maximum size. Default None: unbounded (no node-max finding)."""
    capacity_type: CapacityType = "on-demand"
    """How the nodes are bought (which price applies). Default on-demand; for ``batch`` targets, spot."""
    region: str = Field(min_length=1)
    """AWS Region of the target (prices are per Region)."""
    pool_members: tuple[PoolMember, ...] = ()
    """Pool targets: the models on the group. Default empty: the pool is planned on ``model``/``params_billion``."""
    model_units: int | None = Field(default=None, ge=1)
    """Bedrock provisioned: model units bought. Default None: not a provisioned target."""
    tokens_per_minute_per_unit: float | None = Field(default=None, gt=0)
    """Bedrock provisioned: input plus output tokens per minute one model unit carries, when known. Default None:
    the committed-throughput check is reported as unknown."""
    commitment: Commitment = "none"
    """Bedrock provisioned: the commitment term (which hourly unit price applies). Default none (no commitment)."""

    @model_validator(mode="before")
    @classmethod
    def _batch_on_spot(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "batch" and "capacity_type" not in data:
            return {**data, "capacity_type": "spot"}
        return data

    @model_validator(mode="after")
    def _bounds(self) -> TargetSpec:
        problems = []
        if self.min_replicas > self.max_replicas:
            problems.append(f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})")
        if self.node_min is not None and self.node_max is not None and self.node_min > self.node_max:
            problems.append(f"node_min ({self.node_min}) must be <= node_max ({self.node_max})")
        if self.nodes_per_replica > 1 and self.replicas_per_node > 1:
            problems.append(f"replicas_per_node ({self.replicas_per_node}) must be 1 when nodes_per_replica "
                            f"({self.nodes_per_replica}) > 1: a multi-node replica fills its nodes")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Finding(BaseModel):
    """One verdict about a target, with the number that decides it and what to change."""

    model_config = _FROZEN

    verdict: Verdict
    rule: str = Field(min_length=1)
    """Stable rule id (:data:`components.capacity.planner.RULES`), e.g. ``max-below-peak``."""
    mandatory: bool = False
    """Whether the tier makes this rule blocking (``genai-scale capacity`` exits 1). Default False: advisory."""
    number: str = Field(min_length=1)
    """The deciding number, e.g. ``max 8 replicas x 2.5 req/s = 20 req/s < peak 40 req/s``."""
    advice: str
    """What to change, concretely (``raise max_replicas to 16``); empty for ``fine``."""


class TargetReport(BaseModel):
    """What a target needs and costs at peak and at its minimum, and the verdict."""

    model_config = _FROZEN

    target: TargetSpec
    demand: Demand | None
    """The demand planned for (None: the tier gives none for this target)."""
    profile: ThroughputProfile | None
    """The throughput profile used (None: no profile applies, e.g. Bedrock, or parameters unknown)."""
    operating_point: ProfilePoint | None
    """The SLO-bounded point per replica (None: no profile, or the SLO is unreachable even at concurrency 1)."""
    replica_requests_per_second: float | None
    """Requests per second one replica carries at the operating point, with headroom (None: unknown)."""
    replicas_at_peak: int | None
    replicas_at_off_peak: int | None
    nodes_at_peak: int | None
    nodes_at_min: int
    """Nodes held at the configured minimum (replicas, warm placeholders and the node group's minimum)."""
    usd_per_hour_at_min: float | None
    """Cost per hour at the minimum (None: a price is missing; see the ``price-missing`` finding)."""
    usd_per_hour_at_peak: float | None
    usd_per_hour_at_peak_range: tuple[float, float] | None = None
    """Spot targets: (low, high) USD/h at peak for the spot price range; None otherwise."""
    usd_per_million_output_tokens: float | None
    """USD per million output tokens at peak (None: cost or demand unknown)."""
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    """Caveats about the figures (profile far from the request shape, pool sum, quotas, which price applied)."""

    @property
    def verdict(self) -> Verdict:
        """The worst finding's verdict (:data:`VERDICT_SEVERITY`); fine when there are none."""
        if not self.findings:
            return "fine"
        return max(self.findings, key=lambda f: VERDICT_SEVERITY[f.verdict]).verdict

    @property
    def mandatory(self) -> bool:
        """Whether any finding other than fine is mandatory."""
        return any(f.mandatory and f.verdict != "fine" for f in self.findings)

    @property
    def slo_reachable(self) -> bool | None:
        """Whether one replica meets the SLO at some concurrency (None: no profile to tell)."""
        if self.profile is None:
            return None
        return self.operating_point is not None


class Option(BaseModel):
    """One row of the where-to-run table for a model (:func:`components.capacity.compare.compare`)."""

    model_config = _FROZEN

    where: Literal["vllm", "sagemaker", "bedrock-on-demand", "bedrock-provisioned", "batch"]
    instance_type: str | None = None
    """EC2 or ``ml.*`` instance type (None for Bedrock)."""
    model_id: str | None = None
    """Bedrock model id (None for instance options)."""
    devices: int | None = None
    """Accelerator devices per replica (= tensor parallel size; None for Bedrock)."""
    replicas: int | None = None
    """Replicas (instances, model units) at peak; None for Bedrock on-demand."""
    usd_per_hour: float | None
    """At peak (None: unpriced)."""
    usd_per_month: float | None
    """At the arithmetic mean of peak and off-peak requests/s, over :data:`components.capacity.compare.MONTH_HOURS`
    hours (None: unpriced or the SLO fails)."""
    usd_per_million_output_tokens: float | None
    """At peak."""
    slo_holds: bool | None
    """Whether the SLO holds (None: unknown, e.g. Bedrock publishes no latency figure)."""
    note: str = ""


__all__ = [
    "VERDICT_SEVERITY",
    "CapacityType",
    "Commitment",
    "Demand",
    "Finding",
    "Kind",
    "Option",
    "PoolMember",
    "Slo",
    "TargetReport",
    "TargetSpec",
    "Verdict",
]
