"""VllmService: one served model on the vLLM OpenAI-compatible server, on a GPU or Inferentia2 node group.

Creates (all in the service's namespace, named after the service): a ServiceAccount (with an IRSA role that may only
read the weights' S3 prefix), a Secret holding a random API key (vLLM reads it as ``VLLM_API_KEY``), a Deployment, a
ClusterIP Service, a PodDisruptionBudget, a NetworkPolicy, a Prometheus ServiceMonitor, a KEDA ScaledObject (with
HPA ``behavior``), and, when ``warm_pool_placeholders`` > 0, a PriorityClass below the serving pods plus a placeholder
Deployment of ``pause`` pods that hold accelerator nodes warm (a burst preempts them and is served in seconds, while the
cluster autoscaler brings a node up for the evicted placeholder).

Defaults: one replica (KEDA keeps 1-2), weights fetched from S3 at start, prefix caching on, 60 s drain on SIGTERM
(``--shutdown-timeout``) after a 15 s preStop delay, a 20-minute startup budget for image pull and model load.
The model must fit: :mod:`components._model_fit` runs at construction and a model that does not fit the node
group's accelerators is an error naming the need and the capacity; far too much hardware is a warning.

Security: non-root user, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root
filesystem on the NVIDIA image (writable caches are emptyDirs), no service-account token mounted, API key from a
Secret (never an argument), ingress only from the listed client namespaces and monitoring (vLLM's ``/metrics`` and
``/invocations`` are not behind its API key), IRSA limited to ``s3:GetObject``/``s3:ListBucket`` on the weights prefix.

Cost drivers: accelerator nodes (the replicas x tensor parallel size GPUs/NeuronCores, plus warm placeholders, which
keep a node running while idle), the node's ephemeral storage for the weights. Quotas: EC2 "Running On-Demand G and
VT / P / Inf instances" vCPU quotas for the node group's instance type.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components._base import TYPE_PREFIX, ArgsModel, PulumiInput
from components._errors import Problem
from components._irsa import irsa_role
from components._model_fit import FitInput, FitReport, check_fit, mig_memory_gib
from components._vllm_args import PORT, VllmModelSettings, engine_drains, render_args
from components.catalog.accelerators import NEURON_RESOURCE, NVIDIA_RESOURCE, AcceleratorSpec

GpuSharing = Literal["dedicated", "time-sliced", "mig"]
MigStrategy = Literal["none", "single", "mixed"]

MODEL_DIR = "/models/weights"
CACHE_DIR = "/cache"
RUN_AS_USER = 10001
"""UID of the non-root user the images create (serving/vllm/Dockerfile.*)."""

# vLLM 0.31 metric names (vllm/v1/metrics/loggers.py; labels model_name, engine). Counters get _total on /metrics,
# histograms _bucket/_sum/_count.
QUEUE = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
GENERATION_TOKENS = "vllm:generation_tokens_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
E2E_LATENCY = "vllm:e2e_request_latency_seconds"
TTFT = "vllm:time_to_first_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
# DCGM exporter default counter (NVIDIA/dcgm-exporter etc/default-counters.csv): GPU utilization in percent.
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
# kube-state-metrics (part of kube-prometheus-stack)
DEPLOYMENT_REPLICAS = "kube_deployment_status_replicas"
# gateway (serving/gateway/metrics.py): attempts per upstream, counted even when the upstream has no replicas
GATEWAY_UPSTREAM_REQUESTS = "gateway_upstream_requests_total"

LATENCY_METRICS = {"e2e": E2E_LATENCY, "ttft": TTFT}


def selector(namespace: str, served_model_name: str) -> str:
    return f'namespace="{namespace}",model_name="{served_model_name}"'


def queue_query(namespace: str, served_model_name: str) -> str:
    """Requests waiting for a batch slot, all replicas together."""
    return f"sum({QUEUE}{{{selector(namespace, served_model_name)}}})"


def tokens_query(namespace: str, served_model_name: str, window: str = "2m") -> str:
    """Generated tokens per second, all replicas together."""
    return f"sum(rate({GENERATION_TOKENS}{{{selector(namespace, served_model_name)}}}[{window}]))"


def latency_p95_ms_query(namespace: str, served_model_name: str, signal: str = "e2e", window: str = "5m") -> str:
    """p95 of end-to-end latency (or time to first token) in milliseconds over ``window``; empty without traffic."""
    metric = LATENCY_METRICS[signal]
    return (f"(histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{{{selector(namespace, served_model_name)}}}"
            f"[{window}]))) * 1000) > 0")


def gpu_util_query(namespace: str, deployment: str, window: str = "5m") -> str:
    """Mean GPU utilization (percent) of the deployment's pods over ``window``; empty when no pod runs.

    The DCGM exporter labels series with the workload's pod; behind a ServiceMonitor without honorLabels those labels
    become ``exported_namespace``/``exported_pod``, so both spellings are matched. The pod pattern is the
    Deployment's (``<name>-<replicaset>-<pod>``), which leaves out the warm-pool placeholders (``<name>-warm-...``).
    """
    pods = f"{deployment}-[a-z0-9]+-[a-z0-9]+"
    return (f'avg(avg_over_time({GPU_UTIL}{{exported_namespace="{namespace}",exported_pod=~"{pods}"}}[{window}]) '
            f'or avg_over_time({GPU_UTIL}{{namespace="{namespace}",pod=~"{pods}"}}[{window}])) > 0')


def replicas_query(namespace: str, deployment: str) -> str:
    return f'sum({DEPLOYMENT_REPLICAS}{{namespace="{namespace}",deployment="{deployment}"}})'


def banded_replicas_query(signal: str, *, upper: float, lower: float, replicas: str) -> str:
    """Wanted replicas = replicas x min(max(signal / upper, 1), signal / lower); 0 when the signal is absent."""
    if not 0 < lower < upper:
        raise ValueError(f"need 0 < lower ({lower}) < upper ({upper})")
    return (f"(clamp_max(clamp_min(({signal}) / {upper:g}, 1), scalar({signal}) / {lower:g}) * scalar({replicas}))"
            f" or vector(0)")


def gateway_demand_query(upstream: str, window: str = "2m") -> str:
    """Requests per second the gateway sends (or tries to send) to this upstream; drives scale from zero."""
    return f'sum(rate({GATEWAY_UPSTREAM_REQUESTS}{{upstream="{upstream}"}}[{window}]))'


# --- placement: where the pods go, read from the node group so selectors and tolerations never drift ---

class NodeGroupPlacement(BaseModel):
    """The node group a service runs on: its accelerator facts, node labels and taints."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True)

    name: str
    """Node group name (the ``genai-scale/node-group`` label)."""
    accelerator: AcceleratorSpec
    """Accelerator facts of the node group's instance type."""
    labels: dict[str, str]
    """Kubernetes node labels of the group; the pods select all of them."""
    taints: list[dict[str, str]]
    """Kubernetes taints of the group (``key``, ``value``, ``effect``); the pods tolerate each."""
    mig_config: str | None = None
    """MIG profile set configured on the nodes (``nvidia.com/mig.config``). Default: MIG off."""
    time_slicing_replicas: int | None = None
    """GPU time-slicing replicas on the nodes. Default: no time-slicing."""

    @property
    def instance_type(self) -> str:
        return self.accelerator.instance_type


def placement_from_node_group(node_group: Any, *, mig_config: str | None = None,
                              time_slicing_replicas: int | None = None) -> NodeGroupPlacement:
    """Placement from a :class:`components.gpu_node_group.GpuNodeGroup` (its ``labels``, ``taints``, ``accelerator``)."""
    return NodeGroupPlacement(name=node_group.labels.get("genai-scale/node-group", ""),
                              accelerator=node_group.accelerator, labels=dict(node_group.labels),
                              taints=[dict(t) for t in node_group.taints], mig_config=mig_config,
                              time_slicing_replicas=time_slicing_replicas)


# --- args ---

class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class AutoscalingSettings(_Settings):
    """KEDA triggers and HPA behavior of one service."""

    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Replicas kept ready (the warm minimum). 0 scales to zero when idle (a request then waits for a node and the
    model load). Default: 1."""
    max_replicas: int = Field(default=2, ge=1, le=1000)
    """Upper bound of the replicas. Default: 2."""
    queue_depth_per_replica: int = Field(default=5, ge=1, le=10_000)
    """Waiting requests (``vllm:num_requests_waiting``) per replica before adding one. Default: 5 (production-stack)."""
    p95_latency_ms: float | None = Field(default=None, gt=0)
    """Latency SLO: above it replicas grow in proportion; below half of it they shrink. Default: none (no trigger)."""
    latency_signal: Literal["e2e", "ttft"] = "e2e"
    """Which latency the SLO is about: end-to-end request latency or time to first token. Default: e2e."""
    tokens_per_second_per_replica: float | None = Field(default=None, gt=0)
    """Generated tokens/s one replica sustains (measure with serving/loadtest). Default: none (no trigger)."""
    target_utilization: float = Field(default=0.8, gt=0, le=1)
    """Share of ``tokens_per_second_per_replica`` to run at before adding a replica. Default: 0.8."""
    gpu_utilization_up_percent: float | None = Field(default=70, gt=0, le=100)
    """Mean DCGM GPU utilization over 5 min above which replicas grow (seeds: 70 %). None: no GPU trigger. Default: 70."""
    gpu_utilization_down_percent: float = Field(default=30, gt=0, le=100)
    """Utilization below which replicas shrink, after the scale-down window (seeds: 30 % for 15 min). Default: 30."""
    scale_from_zero_rps: float = Field(default=1000, gt=0)
    """With ``min_replicas`` 0: gateway requests/s per replica while waking up (any traffic wakes one). Default: 1000."""
    polling_interval_seconds: int = Field(default=15, ge=5, le=600)
    """How often KEDA evaluates the triggers. Default: 15."""
    cooldown_seconds: int = Field(default=600, ge=30, le=86_400)
    """With ``min_replicas`` 0: idle time before scaling to zero. Default: 600."""
    scale_up_pods_per_minute: int = Field(default=4, ge=1, le=100)
    """Fast up: at most max(100 %, this many pods) added per minute, no stabilization window. Default: 4."""
    scale_down_stabilization_seconds: int = Field(default=900, ge=0, le=3600)
    """Slow down: the HPA acts on the highest recommendation of this window (seeds: 15 min). Default: 900."""
    scale_down_pods_per_period: int = Field(default=1, ge=1, le=100)
    """Slow down: at most this many pods removed per ``scale_down_period_seconds``. Default: 1."""
    scale_down_period_seconds: int = Field(default=300, ge=15, le=1800)
    """Period of the scale-down rate limit. Default: 300."""


class VllmServiceArgs(ArgsModel):
    """Arguments of :class:`VllmService`."""

    model: VllmModelSettings
    """What to serve and the vLLM settings."""
    placement: NodeGroupPlacement
    """The node group to run on (see :func:`placement_from_node_group`)."""
    image: PulumiInput
    """Container image (the :class:`components.vllm_image.VllmImage` reference for the node group's vendor)."""
    namespace: str = "genai-serving"
    """Kubernetes namespace (must exist). Default: genai-serving."""
    engine_version: str = versions.VLLM.version
    """vLLM version inside ``image``; flags newer than it are not rendered. Default: the pinned NVIDIA engine
    (use ``versions.VLLM_NEURON_ENGINE_VERSION`` for the Neuron image)."""
    gpu_sharing: GpuSharing = "dedicated"
    """dedicated (``tensor_parallel_size`` whole GPUs), time-sliced (one time-slice of a GPU; needs the node group's
    time-slicing) or mig (one MIG slice, ``mig_profile``). Default: dedicated."""
    mig_profile: str | None = Field(default=None, pattern=r"^\d+g\.\d+gb$")
    """MIG profile of the slice, e.g. ``3g.40gb`` (with ``gpu_sharing`` mig). Default: none."""
    mig_strategy: MigStrategy = "none"
    """The GPU operator's MIG strategy: single exposes slices as ``nvidia.com/gpu``, mixed as
    ``nvidia.com/mig-<profile>``. Default: none."""
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings)
    """Replica bounds and KEDA triggers. Default: 1-2 replicas, queue depth 5 and GPU utilization 70/30 %."""
    keda: bool = True
    """Create the KEDA ScaledObject (needs KEDA and ``prometheus_url``). Off: a fixed ``min_replicas``. Default: on."""
    prometheus_url: PulumiInput = None
    """Prometheus the KEDA triggers query. Default: none (required with ``keda``)."""
    warm_pool_placeholders: int = Field(default=0, ge=0, le=100)
    """Placeholder pods, each holding one replica's accelerators on a ready node. Default: 0 (none)."""
    pre_stop_seconds: int = Field(default=15, ge=0, le=300)
    """preStop delay so endpoints drop the pod before vLLM stops taking requests. Default: 15 (KServe)."""
    startup_timeout_seconds: int = Field(default=1200, ge=60, le=7200)
    """Time the startup probe allows for weight download, load, compile and CUDA-graph capture. Default: 1200."""
    shm_size_gib: float | None = Field(default=None, gt=0, le=512)
    """Size of the memory-backed ``/dev/shm``. Default: 2 GiB per tensor-parallel shard (NCCL buffers), at most 16."""
    api_key: bool = True
    """Require an API key (random, in a Secret, read by vLLM as ``VLLM_API_KEY``). Default: on."""
    client_namespaces: list[str] = Field(default_factory=lambda: ["genai-gateway"])
    """Namespaces whose pods may call the server (besides its own and ``monitoring_namespace``). Default: genai-gateway."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (allowed to scrape ``/metrics``). Default: monitoring."""
    gateway_upstream: str | None = None
    """The gateway's upstream name for this service (its ``gateway_upstream_requests_total{upstream=...}`` wakes the
    service from zero). Default: ``vllm-<service name>``, as the gateway section names it."""
    oidc_provider_arn: PulumiInput = None
    """Cluster OIDC provider ARN, for the IRSA role that reads the weights. Required with ``model.weights_uri``."""
    oidc_issuer: PulumiInput = None
    """Cluster OIDC issuer (host/path, no scheme). Required with ``model.weights_uri``."""
    weights_kms_key_arn: str | None = None
    """KMS key of the weights bucket, when it uses SSE-KMS (adds ``kms:Decrypt`` on that key). Default: none."""
    after: list[Any] = Field(default_factory=list)
    """Resources the custom resources wait for (the KEDA and Prometheus operator releases). Default: none."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the AWS resources (the IRSA role and policy)."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        a, spec, tp = self.autoscaling, self.placement.accelerator, self.model.tensor_parallel_size
        if a.min_replicas > a.max_replicas:
            out.append(Problem("autoscaling.min_replicas", a.min_replicas,
                               f"<= autoscaling.max_replicas ({a.max_replicas})"))
        if a.gpu_utilization_up_percent is not None and a.gpu_utilization_down_percent >= a.gpu_utilization_up_percent:
            out.append(Problem("autoscaling.gpu_utilization_down_percent", a.gpu_utilization_down_percent,
                               f"< gpu_utilization_up_percent ({a.gpu_utilization_up_percent:g})"))
        if self.keda and self.prometheus_url is None:
            out.append(Problem("prometheus_url", None, "required with keda (the triggers query Prometheus)"))
        if not self.keda and a.min_replicas == 0:
            out.append(Problem("autoscaling.min_replicas", 0, ">= 1 without keda (nothing would ever start a replica)"))
        if self.model.weights_uri and (self.oidc_provider_arn is None or self.oidc_issuer is None):
            out.append(Problem("oidc_provider_arn", self.oidc_provider_arn,
                               "required with model.weights_uri (with oidc_issuer: the pod reads S3 through IRSA)"))
        if spec.vendor == "neuron":
            per_device = spec.neuron_cores // max(spec.count, 1)
            if self.gpu_sharing != "dedicated":
                out.append(Problem("gpu_sharing", self.gpu_sharing, "dedicated on Neuron node groups"))
            if per_device and tp % per_device:
                out.append(Problem("model.tensor_parallel_size", tp,
                                   f"a multiple of the {per_device} NeuronCores per {spec.accelerator} device "
                                   "(pods get whole devices)"))
        if self.gpu_sharing != "dedicated" and tp != 1:
            out.append(Problem("model.tensor_parallel_size", tp, f"1 with gpu_sharing {self.gpu_sharing}"))
        if self.gpu_sharing == "time-sliced" and not self.placement.time_slicing_replicas:
            out.append(Problem("gpu_sharing", "time-sliced",
                               f"node group {self.placement.name!r} to have GPU time-slicing (timeSlicingReplicas)"))
        if self.gpu_sharing == "mig":
            if self.mig_profile is None:
                out.append(Problem("mig_profile", None, "required with gpu_sharing mig, e.g. 3g.40gb"))
            if self.mig_strategy == "none":
                out.append(Problem("mig_strategy", "none", "single or mixed with gpu_sharing mig (GPU operator)"))
            if not spec.mig_capable:
                out.append(Problem("gpu_sharing", "mig", f"a MIG-capable GPU (A100, H100, H200), not {spec.accelerator}"))
            if not self.placement.mig_config:
                out.append(Problem("gpu_sharing", "mig", f"node group {self.placement.name!r} to have migConfig set"))
        elif self.mig_profile is not None:
            out.append(Problem("mig_profile", self.mig_profile, "only with gpu_sharing mig"))
        if not out:
            for msg in self.fit().errors:
                out.append(Problem("model", self.model.model_id, msg))
        return out

    def fit(self) -> FitReport:
        """The model fit check for these settings on this placement."""
        return check_fit(fit_input(self))


# --- pure rendering ---

def fit_input(args: VllmServiceArgs) -> FitInput:
    m, spec = args.model, args.placement.accelerator
    facts = m.facts()
    assert facts is not None  # VllmModelSettings rejects unknown models without facts
    if spec.vendor == "neuron":
        cores_per_device = max(spec.neuron_cores // max(spec.count, 1), 1)
        unit_gib, units, unit = spec.memory_gib / cores_per_device, spec.neuron_cores, "NeuronCore"
    elif args.gpu_sharing == "mig":
        unit_gib, units, unit = mig_memory_gib(args.mig_profile or "") or 0.0, 1, f"{spec.accelerator} MIG {args.mig_profile} slice"
    elif args.gpu_sharing == "time-sliced":
        unit_gib, units, unit = spec.memory_gib, 1, f"{spec.accelerator} GPU (time-sliced)"
    else:
        unit_gib, units, unit = spec.memory_gib, spec.count, f"{spec.accelerator} GPU"
    return FitInput(
        model=m.model_id, parameters_billion=facts.parameters_billion, layers=facts.layers,
        attention_heads=facts.attention_heads, kv_heads=facts.kv_heads, head_dim=facts.head_dim,
        max_context=facts.max_context, dtype=m.dtype, quantization=m.quantization, kv_cache_dtype=m.kv_cache_dtype,
        max_model_len=m.max_model_len, max_num_seqs=m.max_num_seqs, kv_tokens_per_sequence=m.kv_tokens_per_sequence,
        tensor_parallel_size=m.tensor_parallel_size, gpu_memory_utilization=m.gpu_memory_utilization,
        unit_memory_gib=round(unit_gib, 2), units_per_node=units, unit_name=unit, instance_type=spec.instance_type,
        time_slicing_replicas=args.placement.time_slicing_replicas if args.gpu_sharing == "time-sliced" else None)


def accelerator_request(args: VllmServiceArgs) -> dict[str, str]:
    """Extended resources one replica requests (and limits to)."""
    spec, tp = args.placement.accelerator, args.model.tensor_parallel_size
    if spec.vendor == "neuron":
        per_device = max(spec.neuron_cores // max(spec.count, 1), 1)
        return {NEURON_RESOURCE: str(math.ceil(tp / per_device))}
    if args.gpu_sharing == "mig" and args.mig_strategy == "mixed":
        return {f"nvidia.com/mig-{args.mig_profile}": "1"}
    if args.gpu_sharing in ("mig", "time-sliced"):
        return {NVIDIA_RESOURCE: "1"}
    return {NVIDIA_RESOURCE: str(tp)}


def node_share(args: VllmServiceArgs) -> float:
    """Share of one node's CPU and memory that goes with one replica's accelerators."""
    spec = args.placement.accelerator
    if spec.vendor == "neuron":
        return int(accelerator_request(args)[NEURON_RESOURCE]) / spec.count
    if args.gpu_sharing == "time-sliced":
        return 1 / (spec.count * (args.placement.time_slicing_replicas or 1))
    if args.gpu_sharing == "mig":
        compute_slices = int((args.mig_profile or "1g").split("g", 1)[0])
        return compute_slices / (7 * spec.count)
    return args.model.tensor_parallel_size / spec.count


def shm_gib(args: VllmServiceArgs) -> float:
    return args.shm_size_gib or float(min(2 * args.model.tensor_parallel_size, 16))


def container_resources(args: VllmServiceArgs) -> dict[str, dict[str, str]]:
    """Requests and limits: the accelerators, and 75 % of their share of the node's CPU and memory (the rest is for
    the node's daemons). Memory is limited (plus the memory-backed /dev/shm); CPU is not (no throttling)."""
    spec, share = args.placement.accelerator, node_share(args)
    cpu = max(1, int(spec.vcpus * share * 0.75)) if spec.vcpus else 2
    mem = max(4, int(spec.memory_gib_host * share * 0.75)) if spec.memory_gib_host else 16
    accel = accelerator_request(args)
    return {"requests": {"cpu": str(cpu), "memory": f"{mem}Gi", **accel},
            "limits": {"memory": f"{mem + math.ceil(shm_gib(args))}Gi", **accel}}


def labels(name: str, served_model_name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "serving", "app.kubernetes.io/part-of": "genai-scale",
            "genai-scale/model": _label_value(served_model_name)}


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": name}


def _label_value(v: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in v)[:63]
    return out.strip("-_.") or "model"


def annotations(args: VllmServiceArgs) -> dict[str, str]:
    """Self-describing Deployment: what the fit check (and the policy pack) needs besides the container args."""
    fi = fit_input(args)
    out = {
        "genai-scale/model": args.model.model_id,
        "genai-scale/model-parameters-billion": f"{fi.parameters_billion:g}",
        "genai-scale/model-layers": str(fi.layers),
        "genai-scale/model-attention-heads": str(fi.attention_heads),
        "genai-scale/model-kv-heads": str(fi.kv_heads),
        "genai-scale/model-head-dim": str(fi.head_dim),
        "genai-scale/model-max-context": str(fi.max_context),
        "genai-scale/node-group": args.placement.name,
        "genai-scale/instance-type": args.placement.instance_type,
        "genai-scale/accelerator": args.placement.accelerator.accelerator,
        "genai-scale/accelerator-count": str(fi.units_per_node),
        "genai-scale/accelerator-memory-gib": f"{fi.unit_memory_gib:g}",
        "genai-scale/gpu-sharing": args.gpu_sharing if args.gpu_sharing != "mig" else f"mig-{args.mig_profile}",
    }
    if fi.time_slicing_replicas:
        out["genai-scale/time-slicing-replicas"] = str(fi.time_slicing_replicas)
    if args.model.kv_tokens_per_sequence:
        out["genai-scale/kv-tokens-per-sequence"] = str(args.model.kv_tokens_per_sequence)
    return out


def tolerations(placement: NodeGroupPlacement) -> list[dict[str, str]]:
    return [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
            for t in placement.taints]


def grace_period_seconds(args: VllmServiceArgs) -> int:
    """preStop + drain (``--shutdown-timeout``) + 15 s for the process to exit."""
    return args.pre_stop_seconds + args.model.shutdown_timeout_seconds + 15


def served_name(name: str, args: VllmServiceArgs) -> str:
    return args.model.served_model_name or name


def vllm_args(name: str, args: VllmServiceArgs) -> list[str]:
    model_path = MODEL_DIR if args.model.weights_uri else args.model.model_id
    return render_args(args.model, served_model_name=served_name(name, args), model_path=model_path,
                       engine_version=args.engine_version)


RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod_template(name: str, args: VllmServiceArgs, *, image: Any, service_account: str,
                 api_key_secret: str | None) -> dict[str, Any]:
    """The serving pod: probes on /health, preStop + drain, /dev/shm in memory, caches on emptyDirs."""
    neuron = args.placement.accelerator.vendor == "neuron"
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": CACHE_DIR},
        {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
        {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
        {"name": "VLLM_CACHE_ROOT", "value": f"{CACHE_DIR}/vllm"},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
        {"name": "MODEL_DIR", "value": MODEL_DIR},
    ]
    if args.model.weights_uri:
        env.append({"name": "MODEL_SOURCE", "value": args.model.weights_uri})
    else:
        env.append({"name": "HF_HUB_OFFLINE", "value": "0"})
    if neuron:
        env.append({"name": "NEURON_COMPILED_ARTIFACTS", "value": f"{CACHE_DIR}/neuron-compiled"})
    if not engine_drains(args.engine_version):
        # the engine predates --shutdown-timeout: the entrypoint drains before passing SIGTERM on
        env.append({"name": "GENAI_SCALE_DRAIN_IN_ENTRYPOINT", "value": "1"})
    if api_key_secret:
        env.append({"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": api_key_secret, "key": "api-key"}}})
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    period = 10
    container = {
        "name": "vllm",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/local/bin/genai-scale-vllm"],
        "args": vllm_args(name, args),
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": container_resources(args),
        "startupProbe": {**probe, "periodSeconds": period, "timeoutSeconds": 5,
                         "failureThreshold": math.ceil(args.startup_timeout_seconds / period)},
        "readinessProbe": {**probe, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(args.pre_stop_seconds)]}}},
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": not neuron},
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "weights", "mountPath": "/models"},
            {"name": "cache", "mountPath": CACHE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": grace_period_seconds(args),
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": 0, "fsGroup": 0,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": dict(args.placement.labels),
        "tolerations": tolerations(args.placement),
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(name)}}],
        "containers": [container],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_gib(args):g}Gi"}},
            {"name": "weights", "emptyDir": {"sizeLimit": f"{weights_volume_gib(args)}Gi"}},
            {"name": "cache", "emptyDir": {"sizeLimit": "20Gi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}},
        ],
    }
    return {"metadata": {"labels": labels(name, served_name(name, args)),
                         "annotations": {"kubectl.kubernetes.io/default-container": "vllm"}},
            "spec": pod}


def weights_volume_gib(args: VllmServiceArgs) -> int:
    """Node-local space for the weights: the checkpoint's bf16 size (quantized checkpoints are smaller) + 20 %."""
    facts = args.model.facts()
    size = (facts.parameters_billion if facts else 10) * 2e9 / 1024 ** 3
    return max(10, math.ceil(size * 1.2))


def deployment_manifest(name: str, args: VllmServiceArgs, *, image: Any, service_account: str,
                        api_key_secret: str | None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args)),
                     "annotations": annotations(args)},
        "spec": {
            "replicas": args.autoscaling.min_replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(name)},
            # a new replica must be ready before an old one goes: accelerators are scarce, so surge by one
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod_template(name, args, image=image, service_account=service_account,
                                     api_key_secret=api_key_secret),
        },
    }


def service_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args))},
            "spec": {"type": "ClusterIP", "selector": selector_labels(name),
                     "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}}


def pdb_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args))},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}}}


def service_monitor_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args))},
            "spec": {"selector": {"matchLabels": selector_labels(name)},
                     "namespaceSelector": {"matchNames": [args.namespace]},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}]}}


def network_policy_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """Ingress to the serving port only from the service's namespace, the client namespaces and monitoring."""
    namespaces = sorted({args.namespace, args.monitoring_namespace, *args.client_namespaces})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args))},
            "spec": {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                         {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}],
                         "ports": [{"port": PORT, "protocol": "TCP"}]}]}}


def hpa_behavior(a: AutoscalingSettings) -> dict[str, Any]:
    """Fast up (no window; double or add N pods a minute), slow down (long window; one pod per period)."""
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60},
                                 {"type": "Pods", "value": a.scale_up_pods_per_minute, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": a.scale_down_stabilization_seconds, "selectPolicy": "Min",
                      "policies": [{"type": "Pods", "value": a.scale_down_pods_per_period,
                                    "periodSeconds": a.scale_down_period_seconds}]},
    }


def _trigger(trigger_name: str, server: Any, query: str, threshold: float, metric_type: str = "AverageValue",
             activation: float | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"serverAddress": server, "query": query, "threshold": f"{threshold:g}",
                            "ignoreNullValues": "true"}
    if activation is not None:
        meta["activationThreshold"] = f"{activation:g}"
    return {"type": "prometheus", "name": trigger_name, "metricType": metric_type, "metadata": meta}


def triggers(name: str, args: VllmServiceArgs) -> list[dict[str, Any]]:
    """The KEDA Prometheus triggers; the HPA follows the one that wants the most replicas."""
    a, ns, served, server = args.autoscaling, args.namespace, served_name(name, args), args.prometheus_url
    out = [_trigger("queue-depth", server, queue_query(ns, served), a.queue_depth_per_replica, activation=0)]
    if a.p95_latency_ms:
        signal = latency_p95_ms_query(ns, served, a.latency_signal)
        out.append(_trigger(f"p95-{a.latency_signal}-latency", server, banded_replicas_query(
            signal, upper=a.p95_latency_ms, lower=a.p95_latency_ms / 2, replicas=replicas_query(ns, name)), 1))
    if a.tokens_per_second_per_replica:
        out.append(_trigger("tokens-per-second", server, tokens_query(ns, served),
                            round(a.tokens_per_second_per_replica * a.target_utilization, 2), activation=0))
    if a.gpu_utilization_up_percent and args.placement.accelerator.vendor == "nvidia":
        out.append(_trigger("gpu-utilization", server, banded_replicas_query(
            gpu_util_query(ns, name), upper=a.gpu_utilization_up_percent, lower=a.gpu_utilization_down_percent,
            replicas=replicas_query(ns, name)), 1))
    if a.min_replicas == 0:
        out.append(_trigger("gateway-demand", server, gateway_demand_query(args.gateway_upstream or f"vllm-{name}"),
                            a.scale_from_zero_rps, activation=0))
    return out


def scaled_object_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    a = args.autoscaling
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "pollingInterval": a.polling_interval_seconds,
        "minReplicaCount": a.min_replicas,
        "maxReplicaCount": a.max_replicas,
        "advanced": {"restoreToOriginalReplicaCount": False,
                     "horizontalPodAutoscalerConfig": {"name": f"{name}-hpa", "behavior": hpa_behavior(a)}},
        "triggers": triggers(name, args),
    }
    if a.min_replicas == 0:
        # scale to zero only after this much idle time, and never before the first replica could have loaded
        spec["cooldownPeriod"] = a.cooldown_seconds
        spec["initialCooldownPeriod"] = args.startup_timeout_seconds
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args))},
            "spec": spec}


PLACEHOLDER_PRIORITY = -10
"""Below every serving pod (default priority 0), so the scheduler preempts placeholders first."""


def placeholder_names(name: str) -> tuple[str, str]:
    """(PriorityClass name, placeholder Deployment name)."""
    return f"{name}-warm-pool", f"{name}-warm"


def priority_class_manifest(name: str) -> dict[str, Any]:
    pc, _ = placeholder_names(name)
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": pc, "labels": {"app.kubernetes.io/part-of": "genai-scale",
                                                "app.kubernetes.io/component": "warm-pool"}},
            "value": PLACEHOLDER_PRIORITY, "globalDefault": False, "preemptionPolicy": "Never",
            "description": f"Warm-pool placeholders for {name}: evicted first when a serving pod needs the node."}


def placeholder_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """pause pods that request exactly one replica's resources on the same node group."""
    pc, deploy = placeholder_names(name)
    sel = {"app.kubernetes.io/name": "vllm-warm-pool", "app.kubernetes.io/instance": name}
    res = container_resources(args)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deploy, "namespace": args.namespace,
                     "labels": {**sel, "app.kubernetes.io/component": "warm-pool",
                                "app.kubernetes.io/part-of": "genai-scale"},
                     "annotations": {"genai-scale/warm-pool-for": name}},
        "spec": {
            "replicas": args.warm_pool_placeholders,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": {**sel, "app.kubernetes.io/component": "warm-pool"}},
                "spec": {
                    "priorityClassName": pc,
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65535,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "nodeSelector": dict(args.placement.labels),
                    "tolerations": tolerations(args.placement),
                    "containers": [{
                        "name": "placeholder",
                        "image": f"{versions.PAUSE_IMAGE.repository}:{versions.PAUSE_IMAGE.version}",
                        "resources": {"requests": dict(res["requests"]),
                                      "limits": {k: v for k, v in res["limits"].items() if k != "memory"}},
                        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
                    }],
                },
            },
        },
    }


def weights_policy(weights_uri: str, kms_key_arn: str | None = None) -> dict[str, Any]:
    """Read-only access to the weights prefix (and decrypt with its KMS key, if any)."""
    bucket, _, prefix = weights_uri[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/")
    objects = f"arn:aws:s3:::{bucket}/{prefix}/*" if prefix else f"arn:aws:s3:::{bucket}/*"
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadWeights", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [objects]},
        {"Sid": "ListWeights", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         **({"Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}}} if prefix else {})},
    ]
    if kms_key_arn:
        statements.append({"Sid": "DecryptWeights", "Effect": "Allow", "Action": ["kms:Decrypt"],
                           "Resource": [kms_key_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def render_manifests(name: str, args: VllmServiceArgs, *, image: Any | None = None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the service, by kind (tests and `genai-scale plan` read these)."""
    sa = name
    secret = f"{name}-api-key" if args.api_key else None
    out = {
        "Deployment": deployment_manifest(name, args, image=args.image if image is None else image,
                                          service_account=sa, api_key_secret=secret),
        "Service": service_manifest(name, args),
        "PodDisruptionBudget": pdb_manifest(name, args),
        "NetworkPolicy": network_policy_manifest(name, args),
        "ServiceMonitor": service_monitor_manifest(name, args),
    }
    if args.keda:
        out["ScaledObject"] = scaled_object_manifest(name, args)
    if args.warm_pool_placeholders:
        out["PriorityClass"] = priority_class_manifest(name)
        out["PlaceholderDeployment"] = placeholder_manifest(name, args)
    return out


# --- component ---

class VllmService(pulumi.ComponentResource):
    """One served model on vLLM. See the module docstring for what it creates, defaults, security and cost."""

    deployment: k8s.apps.v1.Deployment
    """The serving Deployment (KEDA owns its replica count)."""
    service: k8s.core.v1.Service
    """ClusterIP Service on port 8000."""
    scaled_object: k8s.apiextensions.CustomResource | None
    """KEDA ScaledObject (None without keda)."""
    placeholders: k8s.apps.v1.Deployment | None
    """Warm-pool placeholder Deployment (None without placeholders)."""
    service_url: str
    """In-cluster base URL, ``http://<name>.<namespace>.svc.cluster.local:8000`` (OpenAI API under ``/v1``)."""
    served_model_name: str
    """The ``model`` clients send."""
    namespace: str
    api_key: pulumi.Output[str] | None
    """The API key (secret Output), for clients such as the gateway. None when ``api_key`` is off."""
    api_key_secret_name: str | None
    """Secret (in ``namespace``) holding the key under ``api-key``."""
    fit: FitReport
    """The fit check's numbers and warnings."""
    manifests: dict[str, dict[str, Any]]
    """The rendered objects (image left as given)."""

    def __init__(self, name: str, args: VllmServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}VllmService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        self.namespace = args.namespace
        self.served_model_name = served_name(name, args)
        self.service_url = f"http://{name}.{args.namespace}.svc.cluster.local:{PORT}"
        self.fit = args.fit()
        for w in self.fit.warnings:
            pulumi.log.warn(f"VllmService {name}: {w}", resource=self)
        self.manifests = m = render_manifests(name, args)

        sa_meta: dict[str, Any] = {"name": name, "namespace": args.namespace, "labels": m["Service"]["metadata"]["labels"]}
        if args.model.weights_uri:
            role = irsa_role(f"{name}-weights", oidc_provider_arn=args.oidc_provider_arn,
                             oidc_issuer=args.oidc_issuer, namespace=args.namespace, service_account=name,
                             policy_document=weights_policy(args.model.weights_uri, args.weights_kms_key_arn),
                             tags=args.tags, parent=self, description=f"vLLM {name}: read model weights from S3")
            sa_meta["annotations"] = {"eks.amazonaws.com/role-arn": role.arn}
        sa = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa_meta, automount_service_account_token=False,
                                        opts=child)
        deps: list[pulumi.Resource] = [sa]
        self.api_key = None
        self.api_key_secret_name = None
        if args.api_key:
            key = random.RandomPassword(f"{name}-api-key", length=48, special=False, opts=child)
            self.api_key = pulumi.Output.secret(key.result)
            self.api_key_secret_name = f"{name}-api-key"
            deps.append(k8s.core.v1.Secret(
                f"{name}-api-key", metadata={"name": self.api_key_secret_name, "namespace": args.namespace,
                                             "labels": m["Service"]["metadata"]["labels"]},
                type="Opaque", string_data={"api-key": self.api_key}, opts=child))

        d = m["Deployment"]
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=d["metadata"], spec=d["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        s = m["Service"]
        self.service = k8s.core.v1.Service(f"{name}-service", metadata=s["metadata"], spec=s["spec"], opts=child)
        p = m["PodDisruptionBudget"]
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=p["metadata"], spec=p["spec"], opts=child)
        n = m["NetworkPolicy"]
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", metadata=n["metadata"], spec=n["spec"], opts=child)
        sm = m["ServiceMonitor"]
        k8s.apiextensions.CustomResource(f"{name}-servicemonitor", api_version=sm["apiVersion"], kind=sm["kind"],
                                         metadata=sm["metadata"], spec=sm["spec"], opts=after)
        self.scaled_object = None
        if "ScaledObject" in m:
            so = m["ScaledObject"]
            self.scaled_object = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject", api_version=so["apiVersion"], kind=so["kind"], metadata=so["metadata"],
                spec=so["spec"], opts=pulumi.ResourceOptions(parent=self,
                                                             depends_on=[self.deployment, *args.after]))
        self.placeholders = None
        if "PlaceholderDeployment" in m:
            pc = m["PriorityClass"]
            prio = k8s.scheduling.v1.PriorityClass(
                f"{name}-warm-pool", metadata=pc["metadata"], value=pc["value"], global_default=False,
                preemption_policy=pc["preemptionPolicy"], description=pc["description"], opts=child)
            ph = m["PlaceholderDeployment"]
            self.placeholders = k8s.apps.v1.Deployment(
                f"{name}-warm", metadata=ph["metadata"], spec=ph["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[prio]))

        self.register_outputs({"service_url": self.service_url, "served_model_name": self.served_model_name})
