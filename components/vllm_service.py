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

from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components._base import TYPE_PREFIX, ArgsModel, PulumiInput
from components._errors import Problem
from components._irsa import irsa_role
from components._model_fit import FitReport, check_fit
from components._vllm_args import PORT, VllmModelSettings
# The rendering functions, metric names and queries live in the two modules below; every name this module used to
# define stays importable from here (infra and user programs import them), hence the unused imports.
from components._vllm_autoscaling import (  # noqa: F401
    DEPLOYMENT_REPLICAS, E2E_LATENCY, GATEWAY_UPSTREAM_REQUESTS, GENERATION_TOKENS, GPU_UTIL, ITL, KV_CACHE,
    LATENCY_METRICS, PROMPT_TOKENS, QUEUE, RUNNING, TTFT, banded_replicas_query, gateway_demand_query, gpu_util_query,
    hpa_behavior, latency_p95_ms_query, queue_query, replicas_query, selector, tokens_query)
from components._vllm_manifests import (  # noqa: F401
    CACHE_DIR, MODEL_DIR, PLACEHOLDER_PRIORITY, RESTRICTED, RUN_AS_USER, accelerator_request, annotations,
    container_resources, deployment_manifest, fit_input, grace_period_seconds, labels, network_policy_manifest,
    neuron_cores_per_device, node_share, object_meta, pdb_manifest, placeholder_manifest, placeholder_names,
    pod_template, priority_class_manifest, render_manifests, scaled_object_manifest, selector_labels, served_name,
    service_manifest, service_monitor_manifest, shm_gib, tolerations, triggers, vllm_args, weights_policy,
    weights_volume_gib)
from components.catalog.accelerators import AcceleratorSpec

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
            per_device = neuron_cores_per_device(spec)
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
                out.append(_fit_problem(self, msg))
        return out

    def fit(self) -> FitReport:
        """The model fit check for these settings on this placement."""
        return check_fit(fit_input(self))


def _fit_problem(args: "VllmServiceArgs", msg: str) -> Problem:
    """A fit-check error at the setting it is about (tensor parallel size, context length), else the model."""
    m = args.model
    if "tensor_parallel_size" in msg and "does not fit" not in msg:
        return Problem("model.tensor_parallel_size", m.tensor_parallel_size, msg)
    if "exceeds the model's context" in msg:
        return Problem("model.max_model_len", m.max_model_len, msg)
    return Problem("model", m.model_id, msg)


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

        sa_meta = object_meta(name, args)
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
                f"{name}-api-key", metadata={**object_meta(name, args), "name": self.api_key_secret_name},
                type="Opaque", string_data={"api-key": self.api_key}, opts=child))

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", **_body(m["Deployment"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        self.service = k8s.core.v1.Service(f"{name}-service", **_body(m["Service"]), opts=child)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", **_body(m["PodDisruptionBudget"]), opts=child)
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", **_body(m["NetworkPolicy"]), opts=child)
        _custom_resource(f"{name}-servicemonitor", m["ServiceMonitor"], opts=after)
        self.scaled_object = None
        if "ScaledObject" in m:
            self.scaled_object = _custom_resource(
                f"{name}-scaledobject", m["ScaledObject"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment, *args.after]))
        self.placeholders = None
        if "PlaceholderDeployment" in m:
            pc = m["PriorityClass"]
            prio = k8s.scheduling.v1.PriorityClass(
                f"{name}-warm-pool", metadata=pc["metadata"], value=pc["value"], global_default=False,
                preemption_policy=pc["preemptionPolicy"], description=pc["description"], opts=child)
            self.placeholders = k8s.apps.v1.Deployment(
                f"{name}-warm", **_body(m["PlaceholderDeployment"]),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[prio]))

        self.register_outputs({"service_url": self.service_url, "served_model_name": self.served_model_name})


def _body(manifest: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` and ``spec`` of a rendered object, as keyword arguments of its typed Kubernetes resource."""
    return {"metadata": manifest["metadata"], "spec": manifest["spec"]}


def _custom_resource(resource_name: str, manifest: dict[str, Any],
                     opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
