"""Typed model settings -> `vllm serve` arguments. Pure: no Pulumi, no vLLM import.

The rendered list is what the vLLM container receives as its args (the image's entrypoint runs ``vllm serve`` with
them after fetching the weights). tests/serving parse every rendered list with vLLM's own serve parser at the pinned
version, so a flag vLLM removed or renamed fails in the tests, not at pod start.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components.base import ArgsModel
from problems import Problem
from components.base import PulumiInput
from components.catalog import models as model_catalog
from components.catalog.accelerators import AcceleratorSpec
from components.catalog.vendors import GPU_OPERATOR_OPERANDS_LABEL, NEURON
from components.capacity.schedule import CronFloor
from components.catalog.models import ModelFacts
from components.serving.vllm.fit import FitInput, FitReport, check_fit, mig_memory_gib, unit_name

Dtype = Literal["auto", "bfloat16", "float16"]
Quantization = Literal["fp8", "awq", "awq_marlin", "gptq", "gptq_marlin", "moe_wna16", "mxfp4", "modelopt_fp4",
                       "experts_int8"]
KvCacheDtype = Literal["auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2"]
LoadFormat = Literal["auto", "runai_streamer"]

STREAMER = "runai_streamer"
"""``--load-format`` of the Run:ai Model Streamer (vLLM's ``runai`` extra: ``runai-model-streamer[s3,...]``)."""
STREAMER_CONCURRENCY_MIN = 16
"""Fewest streamer reader threads: the streamer's own default (``RUNAI_STREAMER_CONCURRENCY``, 16 in the vLLM
Run:ai streamer docs' example)."""
STREAMER_CONCURRENCY_MAX = 64
"""Most streamer reader threads a replica gets by default (one per vCPU of its share of the node, capped here so a
p5.48xlarge replica does not open 192 S3 connections; an inference, calibrate with bench/coldstart)."""

PORT = 8000
QUIET_ENDPOINTS = "/health,/metrics,/ping"
"""Probe and scrape paths kept out of the access log."""

FLAG_MIN_VERSION: dict[str, tuple[int, ...]] = {
    "--disable-access-log-for-endpoints": (0, 18, 0),  # (uncertain) older than 0.18; rendered from 0.18 only
}
"""Flags newer than some engines we run (the Neuron DLC ships vLLM 0.13): rendered only for engines at or above."""

ENGINE_DRAIN_MIN_VERSION = (0, 18, 0)
"""``--shutdown-timeout`` (drain on SIGTERM) arrived in vLLM 0.18 (PRs #34730 / #36666). It is always rendered; for
older engines the image's entrypoint takes it off the command line and drains in-flight requests itself."""

RENDERED_FLAGS = (
    "--served-model-name", "--host", "--port", "--tensor-parallel-size", "--max-model-len", "--max-num-seqs",
    "--gpu-memory-utilization", "--dtype", "--quantization", "--kv-cache-dtype", "--enable-prefix-caching",
    "--no-enable-prefix-caching", "--shutdown-timeout", "--disable-access-log-for-endpoints", "--api-key",
    "--model", "--load-format", "--model-loader-extra-config",
)
"""Flags set from typed settings; ``extra_args`` may not repeat them (the typed field is the one place to set each)."""

_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,127}$")


class VllmModelSettings(ArgsModel):
    """What one vLLM server serves and how: rendered into `vllm serve` arguments."""

    model_id: str = Field(min_length=1)
    """Hugging Face model id, e.g. ``meta-llama/Llama-3.1-8B-Instruct``. Must be in the model catalogue
    (components/catalog/models.py) unless ``model_facts`` is given."""
    served_model_name: str | None = None
    """Name clients send as ``model`` (and the ``model_name`` label on every vLLM metric). Default: the service name."""
    weights_uri: str | None = None
    """``s3://bucket/prefix/`` holding the weights (safetensors, config, tokenizer); fetched at pod start, never baked
    into the image. Default: none, which needs ``allow_hub_download`` (vLLM then downloads from the Hugging Face hub)."""
    allow_hub_download: bool = False
    """Let the pod download the weights from the Hugging Face hub when ``weights_uri`` is not set. Default: off
    (weights come from your S3 bucket, reachable through the VPC's S3 gateway endpoint)."""
    model_facts: ModelFacts | None = None
    """Architecture facts for a model outside the catalogue. Default: taken from the catalogue."""
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs (or NeuronCores) one replica shards the model over (``--tensor-parallel-size``). Default: 1."""
    max_model_len: int = Field(default=4096, ge=128, le=1_048_576)
    """Longest prompt + output in tokens (``--max-model-len``). Default: 4096."""
    max_num_seqs: int = Field(default=16, ge=1, le=4096)
    """Sequences batched at once per replica (``--max-num-seqs``). Default: 16."""
    kv_tokens_per_sequence: int | None = Field(default=None, ge=1)
    """KV-cache tokens the fit check reserves per concurrent sequence. Default: ``max_model_len`` (every sequence at
    full length, no preemption); set the typical prompt + output length to accept preemption on long-context bursts."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=0.98)
    """Share of each accelerator's memory vLLM may use for weights, activations and KV cache
    (``--gpu-memory-utilization``). Default: 0.9."""
    dtype: Dtype = "auto"
    """Weight/activation dtype (``--dtype``). Default: auto (the checkpoint's, bf16 for current models)."""
    quantization: Quantization | None = None
    """Weight quantization method (``--quantization``), matching the checkpoint (AWQ/GPTQ checkpoints) or online
    (fp8). Default: none."""
    kv_cache_dtype: KvCacheDtype = "auto"
    """KV-cache element type (``--kv-cache-dtype``); fp8 halves KV memory. Default: auto (the model dtype)."""
    enable_prefix_caching: bool = True
    """Reuse KV cache across requests sharing a prefix (``--enable-prefix-caching``). Default: on."""
    shutdown_timeout_seconds: int = Field(default=60, ge=0, le=3600)
    """On SIGTERM, stop taking requests and let in-flight ones finish for up to this long (``--shutdown-timeout``,
    vLLM >= 0.18; the pod's grace period is sized from it). Default: 60."""
    load_format: LoadFormat = "auto"
    """How the weights reach the GPUs. ``auto``: the image's entrypoint downloads ``weights_uri`` into the pod's
    ``/models`` volume before vLLM starts, and vLLM loads them from disk. ``runai_streamer``: no download step;
    vLLM gets the ``s3://`` URI as its model and streams the safetensors into GPU memory with the Run:ai Model
    Streamer (``--load-format runai_streamer``: concurrent S3 range reads; docs/coldstart.md), through the same
    read-only IRSA role. Needs ``weights_uri`` (a safetensors checkpoint) and an NVIDIA engine image carrying the
    streamer (serving/vllm/Dockerfile.nvidia). Default: auto."""
    streamer_concurrency: int | None = Field(default=None, ge=1, le=256)
    """Streamer reader threads (``--model-loader-extra-config '{"concurrency": N}'``), with ``runai_streamer``.
    Default: one per vCPU of the replica's share of the node, at least 16 and at most 64
    (:func:`streamer_concurrency`)."""
    extra_args: list[str] = Field(default_factory=list)
    """More `vllm serve` flags, verbatim (escape hatch; parsed by vLLM's parser in the tests). Default: none."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.model_facts is None and model_catalog.lookup(self.model_id) is None:
            out.append(Problem("model_id", self.model_id,
                               "a model in the catalogue (" + ", ".join(sorted(model_catalog.CATALOG)) +
                               ") or model_facts stating its parameters, layers, heads, head_dim and max_context"))
        if self.weights_uri is not None and not _S3_URI.match(self.weights_uri):
            out.append(Problem("weights_uri", self.weights_uri, "an S3 URI such as s3://my-models/llama-3.1-8b/"))
        if self.weights_uri is None and not self.allow_hub_download:
            out.append(Problem("weights_uri", None, "required: s3://bucket/prefix of the weights (or set "
                               "allow_hub_download to download from the Hugging Face hub)"))
        if self.served_model_name is not None and not _NAME.match(self.served_model_name):
            out.append(Problem("served_model_name", self.served_model_name,
                               "letters, digits, '.', '_', '-', '/' (at most 128 characters)"))
        facts = self.facts()
        if facts is not None and self.max_model_len > facts.max_context:
            out.append(Problem("max_model_len", self.max_model_len,
                               f"<= the model's context ({facts.max_context} tokens)"))
        if self.kv_tokens_per_sequence and self.kv_tokens_per_sequence > self.max_model_len:
            out.append(Problem("kv_tokens_per_sequence", self.kv_tokens_per_sequence,
                               f"<= max_model_len ({self.max_model_len})"))
        if self.load_format == STREAMER and self.weights_uri is None:
            out.append(Problem("load_format", self.load_format, "auto without weights_uri (the streamer reads the "
                               "weights from S3: set weights_uri to their s3:// prefix)"))
        if self.streamer_concurrency is not None and self.load_format != STREAMER:
            out.append(Problem("streamer_concurrency", self.streamer_concurrency,
                               f"only with load_format {STREAMER} (it sets the streamer's reader threads)"))
        for i, arg in enumerate(self.extra_args):
            flag = arg.split("=", 1)[0].replace("_", "-")
            if flag in RENDERED_FLAGS:
                out.append(Problem(f"extra_args[{i}]", arg, f"{flag} is set from a typed setting; use that instead"))
        if self.extra_args and not self.extra_args[0].startswith("--"):
            out.append(Problem("extra_args[0]", self.extra_args[0], "a flag starting with --"))
        return out

    def facts(self) -> ModelFacts | None:
        """Architecture facts: stated ones, else the catalogue's."""
        if self.model_facts is not None:
            return self.model_facts
        spec = model_catalog.lookup(self.model_id)
        return spec.facts if spec is not None else None


def parse_version(version: str) -> tuple[int, ...]:
    """``"v0.31.0"`` / ``"0.13.0"`` -> (0, 31, 0)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.lstrip("v"))[:3])


def supports(flag: str, engine_version: str) -> bool:
    """Whether the engine at ``engine_version`` knows ``flag`` (per :data:`FLAG_MIN_VERSION`)."""
    need = FLAG_MIN_VERSION.get(flag)
    return need is None or parse_version(engine_version) >= need


def engine_drains(engine_version: str) -> bool:
    """Whether vLLM itself honours ``--shutdown-timeout`` at this version."""
    return parse_version(engine_version) >= ENGINE_DRAIN_MIN_VERSION


def render_args(s: VllmModelSettings, *, served_model_name: str, model_path: str,
                engine_version: str = versions.VLLM.version, port: int = PORT,
                streamer_threads: int = STREAMER_CONCURRENCY_MIN) -> list[str]:
    """`vllm serve` arguments (without ``vllm serve``) for one server.

    ``model_path`` is the positional model: the local directory the entrypoint fills from ``weights_uri``, the
    ``s3://`` URI itself when the streamer reads it (``load_format`` runai_streamer, with ``streamer_threads``
    reader threads unless ``streamer_concurrency`` says otherwise), or the hub id. The API key is not an argument (vLLM reads ``VLLM_API_KEY`` from the environment, set from a Secret), so it
    never shows in the Deployment or in ``ps``.
    """
    args = [
        model_path,
        "--served-model-name", s.served_model_name or served_model_name,
        "--host", "0.0.0.0",
        "--port", str(port),
        "--tensor-parallel-size", str(s.tensor_parallel_size),
        "--max-model-len", str(s.max_model_len),
        "--max-num-seqs", str(s.max_num_seqs),
        "--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}",
        "--dtype", s.dtype,
    ]
    if s.quantization:
        args += ["--quantization", s.quantization]
    if s.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", s.kv_cache_dtype]
    args.append("--enable-prefix-caching" if s.enable_prefix_caching else "--no-enable-prefix-caching")
    args += ["--shutdown-timeout", str(s.shutdown_timeout_seconds)]
    if supports("--disable-access-log-for-endpoints", engine_version):
        args += ["--disable-access-log-for-endpoints", QUIET_ENDPOINTS]
    if s.load_format == STREAMER:
        threads = s.streamer_concurrency or streamer_threads
        args += ["--load-format", STREAMER,
                 "--model-loader-extra-config", json.dumps({"concurrency": threads}, separators=(",", ":"))]
    return args + list(s.extra_args)


# --- service args: where the pods go, how they scale, and the model-fit check ---

GpuSharing = Literal["dedicated", "time-sliced", "mig"]
MigStrategy = Literal["none", "single", "mixed"]


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

    @property
    def utilization_metric(self) -> str | None:
        """The accelerator's per-pod utilization series on these nodes, or None where nothing exports it: NVIDIA nodes
        kept from the GPU operator (Bottlerocket, label ``nvidia.com/gpu.deploy.operands: "false"``) run no DCGM
        exporter."""
        if self.labels.get(GPU_OPERATOR_OPERANDS_LABEL) == "false":
            return None
        return self.accelerator.vendor_facts.utilization_metric


def placement_from_node_group(node_group: Any, *, mig_config: str | None = None,
                              time_slicing_replicas: int | None = None) -> NodeGroupPlacement:
    """Placement from a :class:`components.foundation.gpu_node_group.GpuNodeGroup` (its ``labels``, ``taints``, ``accelerator``)."""
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
    cron_floors: tuple[CronFloor, ...] = ()
    """Scheduled floors (KEDA ``cron`` triggers, appended to the others: the HPA follows the highest): at least
    ``desired_replicas`` inside each window, so replicas are up before a known daily peak
    (:func:`components.capacity.schedule.cron_floors` derives them from a traffic profile). Default: none."""


class VllmServiceArgs(ArgsModel):
    """Arguments of :class:`VllmService`."""

    model: VllmModelSettings
    """What to serve and the vLLM settings."""
    placement: NodeGroupPlacement
    """The node group to run on (see :func:`placement_from_node_group`)."""
    image: PulumiInput
    """Container image (the :class:`components.serving.vllm.image.VllmImage` reference for the node group's vendor)."""
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
    capacity: dict[str, Any] | None = None
    """Capacity facts the caller computed (the planner's peak and off-peak requests/s, requests/s per replica, SLO),
    rendered as compact JSON in the ScaledObject's ``genai-scale.io/capacity-plan`` annotation for the policy pack.
    Default: none (no annotation)."""
    prometheus_url: PulumiInput = None
    """Prometheus the KEDA triggers query. Default: none (required with ``keda``)."""
    do_not_disrupt: bool = False
    """Annotate the pods ``karpenter.sh/do-not-disrupt: "true"``: on Karpenter nodes, consolidation and drift never
    take a node that runs a replica mid-stream (the pods' grace period, preStop delay plus vLLM's drain, stays well
    within the NodePools' ``terminationGracePeriod`` of 1 h). Default: off (a stack on Karpenter turns it on)."""
    replicas_service: bool = True
    """A headless Service ``<name>-replicas`` (``clusterIP: None``) beside the ClusterIP Service, selecting the same
    ready pods, so a client can address the replicas one by one (the gateway's prefix-affinity routing keeps a
    conversation on the replica whose prefix cache holds it). Default: on."""
    compile_cache_claim: str | None = Field(default=None, pattern=r"^[a-z0-9]([a-z0-9.\-]{0,251}[a-z0-9])?$")
    """A ReadWriteMany PersistentVolumeClaim in ``namespace`` (the shared EFS compile cache,
    :class:`components.foundation.shared_cache.SharedCacheFileSystem`) mounted at ``/compile-cache`` in a
    sub-directory named after the service: ``VLLM_CACHE_ROOT`` (torch.compile, Inductor and Triton caches) and the
    Neuron compiled graphs go there, so a new pod reuses what an earlier one compiled. Default: none (compile caches in
    the pod's ``/cache`` emptyDir, rebuilt by every new pod)."""
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
    cluster: PulumiInput = None
    """The EksCluster the service runs in: ``oidc_provider_arn`` and ``oidc_issuer`` default from it (explicit values
    win), and its Kubernetes provider is used when ``opts`` names none. Default: none."""
    neuron_scheduler: str | None = None
    """``schedulerName`` of the Neuron scheduler extension (``NeuronDevicePlugin.scheduler_name``, ``my-scheduler``).
    When given, every Neuron pod of the service (and its warm-pool placeholders) is placed by it, so one allocator
    picks the devices on a node; it is required when one replica takes more than one but not all of a node's
    Neuron devices (those must be directly connected: AWS Neuron docs, "Neuron scheduler extension"). Default: none
    (the default scheduler)."""
    hf_token: PulumiInput = None
    """Hugging Face access token (a Pulumi secret) for gated models and hub rate limits: stored in the Secret
    ``<name>-hf-token`` and handed to vLLM as ``HF_TOKEN`` through ``secretKeyRef``, never as a literal.
    Default: none."""
    hf_token_source: str | None = None
    """Where ``hf_token`` comes from (``secretsmanager:<secret id>`` or ``pulumi-config:<key>``), recorded on the
    Secret as the annotation ``genai-scale.io/secret-source``: the policy pack's ``no-literal-secrets`` rule cannot
    trace a value read from Secrets Manager or from a secret config key, and accepts a Secret that declares one of
    these sources. Default: none (the Secret then has to come from a generated secret to pass the rule)."""
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
        for i, floor in enumerate(a.cron_floors):
            where = f"autoscaling.cron_floors[{i}].desired_replicas"
            if floor.desired_replicas > a.max_replicas:
                out.append(Problem(where, floor.desired_replicas, f"<= autoscaling.max_replicas ({a.max_replicas})",
                                   ("autoscaling.max_replicas",)))
            if floor.desired_replicas <= a.min_replicas:
                out.append(Problem(where, floor.desired_replicas, f"> autoscaling.min_replicas ({a.min_replicas}): "
                                   "a floor at or below the minimum raises nothing", ("autoscaling.min_replicas",)))
        if a.cron_floors and not self.keda:
            out.append(Problem("autoscaling.cron_floors", len(a.cron_floors),
                               "none without keda (KEDA's cron triggers hold the floors)", ("keda",)))
        if self.capacity is not None:
            try:
                json.dumps(self.capacity, allow_nan=False)
            except (TypeError, ValueError):
                out.append(Problem("capacity", self.capacity, "a JSON object of strings, numbers (no NaN or "
                                   "infinity), booleans, null, lists and objects"))
        if self.keda and self.prometheus_url is None:
            out.append(Problem("prometheus_url", None, "required with keda (the triggers query Prometheus)"))
        if not self.keda and a.min_replicas == 0:
            out.append(Problem("autoscaling.min_replicas", 0, ">= 1 without keda (nothing would ever start a replica)"))
        if self.model.weights_uri and self.cluster is None and (self.oidc_provider_arn is None or self.oidc_issuer is None):
            out.append(Problem("oidc_provider_arn", self.oidc_provider_arn,
                               "required with model.weights_uri (with oidc_issuer: the pod reads S3 through IRSA; "
                               "or pass cluster=EksCluster)"))
        vendor = spec.vendor_facts
        shares = {"time-sliced": vendor.time_slicing, "mig": bool(vendor.mig_accelerators)}
        if not shares.get(self.gpu_sharing, True):
            out.append(Problem("gpu_sharing", self.gpu_sharing, f"dedicated on {vendor.display_name} node groups"))
        if spec.shards_over_cores and spec.cores_per_device and tp % spec.cores_per_device:
            out.append(Problem("model.tensor_parallel_size", tp,
                               f"a multiple of the {spec.cores_per_device} {vendor.unit_name}s per {spec.accelerator} "
                               "device (pods get whole devices)"))
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
        if self.model.load_format == STREAMER and spec.vendor == NEURON.name:
            out.append(Problem("model.load_format", STREAMER, f"auto on {vendor.display_name} node groups "
                               "(genai-scale adds and checks the streamer in the NVIDIA image only)"))
        if needs_neuron_scheduler(self) and self.neuron_scheduler is None:
            out.append(Problem("neuron_scheduler", None, NEURON_SCHEDULER_NEEDED.format(
                devices=devices_requested(self), count=spec.count, instance_type=spec.instance_type),
                ("model.tensor_parallel_size",)))
        if not out:
            for msg in self.fit().errors:
                out.append(_fit_problem(self, msg))
        return out

    def fit(self) -> FitReport:
        """The model fit check for these settings on this placement."""
        return check_fit(fit_input(self))


NEURON_SCHEDULER_NEEDED = (
    "required: one replica takes {devices} of the {count} Neuron devices of one {instance_type} node, which must be "
    "directly connected; turn on the Neuron scheduler extension (NeuronDevicePlugin scheduler_extension) and pass "
    "its scheduler_name")


def devices_requested(args: VllmServiceArgs) -> int:
    """Whole devices one replica takes: ``tensor_parallel_size`` GPUs, or enough devices for that many cores."""
    spec, tp = args.placement.accelerator, args.model.tensor_parallel_size
    return math.ceil(tp / max(spec.cores_per_device, 1)) if spec.shards_over_cores else tp


def streamer_concurrency(args: VllmServiceArgs) -> int:
    """Reader threads of the Run:ai streamer for one replica: ``model.streamer_concurrency`` when set, else one per
    vCPU of the replica's share of the node (``tensor_parallel_size`` of its GPUs), at least
    :data:`STREAMER_CONCURRENCY_MIN` and at most :data:`STREAMER_CONCURRENCY_MAX` (a g5.12xlarge replica on one of 4
    GPUs: 12 vCPUs -> 16; a p5.48xlarge replica on 8 GPUs: 192 vCPUs -> 64)."""
    if args.model.streamer_concurrency:
        return args.model.streamer_concurrency
    spec = args.placement.accelerator
    share = spec.vcpus * devices_requested(args) / max(spec.count, 1)
    return int(min(STREAMER_CONCURRENCY_MAX, max(STREAMER_CONCURRENCY_MIN, share)))


def needs_neuron_scheduler(args: VllmServiceArgs) -> bool:
    """Whether one replica takes more than one but not all of its node's Neuron devices: AWS's Neuron docs call the
    scheduler extension required for a pod that requests more than one device (it picks directly connected ones);
    a single device, or every device of the node, leaves no topology choice."""
    spec = args.placement.accelerator
    return spec.vendor == NEURON.name and 1 < devices_requested(args) < spec.count


def _fit_problem(args: "VllmServiceArgs", msg: str) -> Problem:
    """A fit-check error at the setting it is about (tensor parallel size, context length), else the model."""
    m = args.model
    if "tensor_parallel_size" in msg and "does not fit" not in msg:
        return Problem("model.tensor_parallel_size", m.tensor_parallel_size, msg)
    if "exceeds the model's context" in msg:
        return Problem("model.max_model_len", m.max_model_len, msg)
    return Problem("model", m.model_id, msg)


def fit_input(args: VllmServiceArgs) -> FitInput:
    """The fit check's input: the model's facts and settings, and the memory unit one shard gets (a GPU, a MIG
    slice, a time-sliced GPU or a NeuronCore) with how many of them one node has."""
    m, spec = args.model, args.placement.accelerator
    facts = m.facts()
    assert facts is not None  # VllmModelSettings rejects unknown models without facts
    unit = unit_name(spec.accelerator, spec.vendor_facts, args.gpu_sharing, args.mig_profile)
    if spec.shards_over_cores:
        unit_gib, units = spec.memory_gib / max(spec.cores_per_device, 1), spec.neuron_cores
    elif args.gpu_sharing == "mig":
        unit_gib, units = mig_memory_gib(args.mig_profile or "") or 0.0, 1
    elif args.gpu_sharing == "time-sliced":
        unit_gib, units = spec.memory_gib, 1
    else:
        unit_gib, units = spec.memory_gib, spec.count
    return FitInput(
        model=m.model_id, facts=facts, dtype=m.dtype, quantization=m.quantization, kv_cache_dtype=m.kv_cache_dtype,
        max_model_len=m.max_model_len, max_num_seqs=m.max_num_seqs, kv_tokens_per_sequence=m.kv_tokens_per_sequence,
        tensor_parallel_size=m.tensor_parallel_size, gpu_memory_utilization=m.gpu_memory_utilization,
        unit_memory_gib=round(unit_gib, 2), units_per_node=units, unit_name=unit, instance_type=spec.instance_type,
        time_slicing_replicas=args.placement.time_slicing_replicas if args.gpu_sharing == "time-sliced" else None)
