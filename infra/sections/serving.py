"""Stack section: serving. vLLM images, one VllmService (or multi-node group) per model, KEDA, warm pools, monitoring.

Config keys (camelCase in YAML):

- ``serving``: ``enabled``; ``namespace``; ``modelsBucket`` (the S3 bucket the weights are uploaded to: created,
  private and encrypted, unless ``create: false`` names an existing one); ``buildImages`` (build and push the vLLM
  images to ECR, default on; off uses the pinned upstream images directly); ``images`` (their ECR repositories:
  ``forceDelete``, set true before ``pulumi destroy`` to delete repositories that still hold images); ``keda``; ``models``: a map of served
  models keyed by name, each naming a node group of ``nodeGroups`` and carrying its vLLM and autoscaling settings;
  ``huggingFaceTokenSecretId`` (a Secrets Manager secret holding a Hugging Face token) or ``huggingFaceToken`` (a
  Pulumi secret): handed to every vLLM service as ``HF_TOKEN`` from a Kubernetes Secret.
- ``serving.pools``: model pools keyed by name, each a ``ModelPool`` (components/serving/pools; docs/pools.md): a node
  group (``nodeGroup``), a ``policy`` (``dedicated``, ``mig:<config>``, ``time-slicing:<n>`` or ``dynamic``), an
  optional ``workload`` of seed 003's decision matrix (the plan prints the recommended policy with its reason, and a
  warning when the policy differs; ``genai-scale pools recommend``), replica bounds, the dynamic pool's hot slots and
  sleep level, the LoRA limits, the gateway's hold timeout and eviction, and ``models``: base models (``modelId``,
  ``weightsPrefix`` in ``modelsBucket``, vLLM limits, ``keepHot``) with their LoRA ``adapters`` (``weightsPrefix``,
  ``rank``). Every ModelPoolArgs rule is reported at its config key; model and adapter names must be unique across
  pools, ``serving.models`` and the gateway's routes; a dynamic pool needs the gateway, one GPU per node, the node
  group's ``timeSlicingReplicas`` equal to its base models, and no more replicas than the group's ``maxSize``.
- Multi-node models: a model that does not fit one node of its group, on an instance type with EFA, is laid out by
  the fit check over the fewest nodes that fit (TP = GPUs per node, PP = nodes: a 405B BF16 model on p5.48xlarge
  gives 2 nodes, TP 8 x PP 2), or over ``nodes`` (with an optional ``pipelineParallelSize``) when given, and served
  as a ``MultiNodeVllmService`` (a LeaderWorkerSet group; docs/multinode.md). Its node group needs ``efa: true``
  (EFA interfaces, a cluster placement group, one AZ) and ``maxSize`` >= nodes x ``maxReplicas``; warm-pool
  placeholders are refused; a layout that cannot work is reported with the fit check's numbers under the model's key.
  The plan's ``vllmServices`` entry of such a model adds its ``layout``.
- ``serving.lws``: the LeaderWorkerSet controller (``enabled``, default on; ``highAvailability``, ``chartVersion``,
  ``imageTag``), installed once when any served model is multi-node (its ServiceMonitor with monitoring on); turning
  it off under a multi-node model is an error.
- ``serving.compileCache``: the shared compile cache (``enabled``, default off; tiers turn it on): an encrypted EFS
  file system with a mount target per private subnet, the EFS CSI driver add-on, a StorageClass and one ReadWriteMany
  claim ``compile-cache`` in the serving namespace that every vLLM service, multi-node group and model pool mounts at
  ``/compile-cache`` (a sub-directory each), so compiled artefacts outlive the pods (docs/coldstart.md). Tunables:
  ``kmsKeyArn``, ``throughputMode``, ``transitionToIaDays``, ``backups``, ``addonVersion``, ``storageClassName``,
  ``basePath``, ``claimSizeGib``.
- ``monitoring``: kube-prometheus-stack with Grafana, the vLLM dashboards and alert rules.

``build`` fills ``ctx.vllm_services[name]`` (a ``VllmService`` or ``MultiNodeVllmService``: ``.service_url``,
``.served_model_name``, ``.api_key``),
``ctx.model_pools[name]`` (the ModelPools, for the gateway section), ``ctx.keda`` and ``ctx.monitoring``, and exports
``vllmServices`` and ``modelPools`` (what the plan prints per pool). See docs/serving.md and docs/pools.md.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field, create_model


from components.errors import ArgsError
from problems import Problem
from components.serving.vllm.args import VllmModelSettings
from components.catalog import vendors
from components.naming import autoname_problems, aws_name, longest_key
from components.serving.keda import Keda, KedaArgs
from components.serving.lws import LeaderWorkerSetController, LeaderWorkerSetControllerArgs
from components.serving.monitoring import Monitoring, MonitoringArgs
from components.serving.vllm.image import VllmImage, VllmImageArgs, base_image
from components.serving.vllm.image import engine_version as image_engine_version
from components.serving.vllm.service import VllmService
from components.serving.vllm.multinode import MultiNodeVllmServiceArgs, planned_layout
from components.serving.vllm.multinode_service import MultiNodeVllmService
from components.serving.pools.args import ModelPoolArgs
from components.serving.pools.pool import ModelPool
from components.serving.pools.strategy import PolicyError, mismatch_warning, parse_policy, recommend
from components.foundation.neuron_device_plugin import SCHEDULER_NAME
from components.foundation.shared_cache import SharedCacheFileSystem, SharedCacheFileSystemArgs, claim_manifest
from components.serving.vllm.args import (AutoscalingSettings, NodeGroupPlacement, VllmServiceArgs,
                                     placement_from_node_group)
from infra.sections.base import BuildContext, SettingsModel, args_from, derive_settings, pick, translate

ModelAutoscalingSettings = derive_settings(
    AutoscalingSettings, name="ModelAutoscalingSettings", module=__name__,
    exclude=("min_replicas", "max_replicas", "p95_latency_ms", "cron_floors"),
    doc="KEDA triggers of one model (replica bounds are on the model; the latency SLO comes from targets; the cron "
        "floors from capacity.traffic).",
    extra={"latency_slo": (bool, Field(default=True, description=(
        "Scale on p95 latency against the stack's ``targets.p95LatencyMs``. Default: on.")))})

ModelServiceSettings = derive_settings(
    VllmModelSettings, name="ModelServiceSettings", module=__name__,
    doc="One served model: where it runs, the vLLM settings, replicas and warm pool.",
    extra={
        "node_group": (str, Field(description=(
            "Name of a node group in ``nodeGroups`` (its labels and taints place the pods)."))),
        "weights_prefix": (str | None, Field(default=None, pattern=r"^[A-Za-z0-9._\-/]+$", description=(
            "Prefix of the weights in ``serving.modelsBucket`` (upload them with ``aws s3 sync``). Default: the "
            "model id."))),
        **pick(VllmServiceArgs, "gpu_sharing", "mig_profile", "warm_pool_placeholders", "pre_stop_seconds",
               "startup_timeout_seconds"),
        **pick(MultiNodeVllmServiceArgs, "nodes", "pipeline_parallel_size"),
        **pick(AutoscalingSettings, "min_replicas", "max_replicas"),
        "autoscaling": (ModelAutoscalingSettings, Field(default_factory=ModelAutoscalingSettings, description=(
            "KEDA triggers. Default: queue depth, the latency SLO and GPU utilization."))),
    })


POOL_WIRING = ("placement", "image", "models_bucket", "namespace", "engine_version", "mig_strategy", "api_key",
               "gateway_namespaces", "monitoring_namespace", "keda", "prometheus_url", "oidc_provider_arn",
               "oidc_issuer", "cluster", "weights_kms_key_arn", "after", "tags", "autoscaling", "compile_cache_claim")
"""ModelPoolArgs the section supplies from the rest of the stack (the serving, gateway, monitoring and GPU operator
settings, the cluster, the latency target); never a pool's config. (``autoscaling``: the components' defaults with the
pool's replica bounds and the stack's ``targets.p95LatencyMs``.)"""

PoolSettings = derive_settings(
    ModelPoolArgs, name="PoolSettings", module=__name__, exclude=POOL_WIRING,
    doc="One model pool: its node group, GPU allocation policy, base models and LoRA adapters.",
    extra={
        "node_group": (str, Field(description=(
            "Name of a node group in ``nodeGroups`` (its labels and taints place the pods; ``dynamic`` needs one GPU "
            "per node and ``timeSlicingReplicas`` equal to the number of base models)."))),
    })


class ModelsBucketSettings(SettingsModel):
    """The S3 bucket holding model weights."""

    create: bool = True
    """Create the bucket (private, SSE-KMS, public access blocked). Off: ``name`` is an existing bucket. Default: on."""
    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
    """Bucket name. Default: ``genai-scale-<stack>-models-<region>``."""


KedaSettings = derive_settings(KedaArgs, name="KedaSettings", exclude=("node_selector",), module=__name__,
                               extra={"enabled": (bool, Field(default=True, description=(
                                   "Run KEDA and autoscale the models. Default: on.")))})


LwsSettings = derive_settings(
    LeaderWorkerSetControllerArgs, name="LwsSettings", module=__name__,
    exclude=("node_selector", "prometheus", "after"),
    doc="The LeaderWorkerSet controller, installed once when any served model spans several nodes (its ServiceMonitor "
        "with monitoring on).",
    extra={"enabled": (bool, Field(default=True, description=(
        "Install the LWS controller when a served model spans several nodes (every multi-node model needs it). "
        "Default: on.")))})


COMPILE_CACHE_CLAIM = "compile-cache"
"""Name of the shared compile-cache PersistentVolumeClaim in the serving namespace (one per stack)."""
COMPILE_CACHE_WIRING = ("subnet_ids", "kubernetes_version", "posix_uid", "posix_gid", "tags")
"""SharedCacheFileSystemArgs the section supplies (the network's private subnets, the cluster, the vLLM container's
user and group, the stack's tags); never config."""

CompileCacheSettings = derive_settings(
    SharedCacheFileSystemArgs, name="CompileCacheSettings", module=__name__, exclude=COMPILE_CACHE_WIRING,
    doc="The shared compile cache: an encrypted EFS file system every vLLM pod mounts, so compiled artefacts "
        "(torch.compile, Inductor, Triton, Neuron graphs) outlive the pods.",
    extra={"enabled": (bool, Field(default=False, description=(
        "Create the shared compile cache and mount it in every vLLM service, multi-node group and model pool. "
        "Default: off (compile caches in each pod's emptyDir; tier presets turn it on)."))),
           "claim_size_gib": (int, Field(default=100, ge=1, le=65536, description=(
               "Requested size of the ReadWriteMany claim in GiB. EFS is elastic and does not enforce it (billing is "
               "by what is stored); Kubernetes needs a request. Default: 100.")))})


VllmImageSettings = derive_settings(
    VllmImageArgs, name="VllmImageSettings", module=__name__,
    exclude=("vendor", "repository_name", "base_image", "push", "tags"),
    doc="The vLLM images' ECR repositories (one per accelerator vendor; used when ``buildImages`` is on).")


SECRET_ID = r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512})$"
"""A Secrets Manager secret name (letters, digits, ``/_+=.@-``, up to 512) or its ARN."""


ServingSettings = create_model(
    "ServingSettings", __base__=SettingsModel, __module__=__name__,
    __doc__="vLLM serving: images, models, autoscaling.",
    enabled=(bool, Field(default=False, description="Deploy the vLLM models. Default: off (tier presets turn it on).")),
    models_bucket=(ModelsBucketSettings, Field(default_factory=ModelsBucketSettings,
                                               description="The S3 bucket holding model weights.")),
    build_images=(bool, Field(default=True, description=(
        "Build the vLLM images and push them to ECR. Off: run the pinned upstream images. Default: on."))),
    images=(VllmImageSettings, Field(default_factory=VllmImageSettings, description=(
        "The vLLM images' ECR repositories: ``forceDelete`` (set true before ``pulumi destroy`` to delete "
        "repositories that still hold images), ``keepImages``, ``untaggedExpiryDays``."))),
    keda=(KedaSettings, Field(default_factory=KedaSettings, description="KEDA, which autoscales the models.")),
    compile_cache=(CompileCacheSettings, Field(default_factory=CompileCacheSettings, description=(
        "The shared compile cache on EFS: ``enabled``, ``kmsKeyArn``, ``throughputMode``, ``transitionToIaDays``, "
        "``backups``, ``addonVersion``, ``storageClassName``, ``basePath``, ``claimSizeGib``."))),
    lws=(LwsSettings, Field(default_factory=LwsSettings, description=(
        "The LeaderWorkerSet controller for models served across several nodes: ``enabled``, ``highAvailability``, "
        "``chartVersion``, ``imageTag``."))),
    **pick(VllmServiceArgs, "namespace", "api_key"),  # for every model: one default, on the service args
    hugging_face_token_secret_id=(str | None, Field(default=None, pattern=SECRET_ID, description=(
        "Secrets Manager secret (name or ARN) whose string is a Hugging Face token, read at deploy time and handed "
        "to every vLLM service as ``HF_TOKEN`` (a Kubernetes Secret; gated models, hub rate limits). The deploying "
        "identity needs secretsmanager:GetSecretValue on it. Default: none."))),
    hugging_face_token=(str | None, Field(default=None, description=(
        "A Hugging Face token kept as a Pulumi secret (``pulumi config set --secret --path "
        "serving.huggingFaceToken <token>``), handed to every vLLM service like ``huggingFaceTokenSecretId``; a "
        "stack file holding it in clear is refused. Default: none."))),
    models=(dict[str, ModelServiceSettings], Field(default_factory=dict, description=(
        "Served models keyed by name (the name is the Service, the gateway route and the default served model "
        "name)."))),
    pools=(dict[str, PoolSettings], Field(default_factory=dict, description=(
        "Model pools keyed by name: many base models and LoRA adapters on a node group's GPUs, divided by the "
        "pool's policy (dedicated, mig:<config>, time-slicing:<n> or dynamic: engines that sleep and wake on "
        "demand, driven by the gateway). Model and adapter names are what clients send as ``model``: unique "
        "across pools, serving.models and the gateway's routes. Default: none."))),
)


MonitoringSettings = derive_settings(
    MonitoringArgs, name="MonitoringSettings", module=__name__,
    exclude=("p95_latency_ms", "scrape_dcgm", "gpu_operator_namespace", "node_selector"),
    doc="kube-prometheus-stack with Grafana, the vLLM dashboards and alerts.",
    extra={"enabled": (bool, Field(default=False, description=(
        "Deploy monitoring. Default: off (tier presets turn it on; KEDA's triggers need it).")))})


KEYS = {"serving": ServingSettings, "monitoring": MonitoringSettings}

SECRET_VALUE = "[secret]"
"""What the config loader reads a ``secure:`` stack-file value as offline (``infra.config.SECRET_VALUE``; a section
may not import the loader, which imports the sections)."""


def bucket_name(cfg, stack: str) -> str:
    """``serving.modelsBucket.name``, or ``genai-scale-<stack>-models-<region>`` made a valid, unique bucket name by
    :func:`components.naming.aws_name` (``Team-A`` gives ``genai-scale-team-a-models-<hash>-<region>``)."""
    s = cfg.serving.models_bucket
    return s.name or aws_name("s3-bucket", "genai-scale", stack, "models", cfg.region)


def weights_uri(m: ModelServiceSettings, bucket: str) -> str | None:
    if m.weights_uri:
        return m.weights_uri
    if m.allow_hub_download and not m.weights_prefix:
        return None
    prefix = (m.weights_prefix or m.model_id).strip("/")
    return f"s3://{bucket}/{prefix}/"


def model_settings(name: str, m, bucket: str) -> VllmModelSettings:
    data = m.model_dump(by_alias=False, include=set(VllmModelSettings.model_fields))
    data.update(served_model_name=m.served_model_name or name, weights_uri=weights_uri(m, bucket))
    return VllmModelSettings(**data)


def autoscaling_settings(m, p95_latency_ms: float | None, cron_floors: tuple = ()) -> AutoscalingSettings:
    data = m.autoscaling.model_dump(by_alias=False, exclude={"latency_slo"})
    return AutoscalingSettings(**data, min_replicas=m.min_replicas, max_replicas=m.max_replicas,
                               p95_latency_ms=p95_latency_ms if m.autoscaling.latency_slo else None,
                               cron_floors=tuple(cron_floors))


def neuron_scheduler(cfg) -> str | None:
    """``schedulerName`` of the Neuron scheduler extension when the stack runs it (``neuron.schedulerExtension``)."""
    n = getattr(cfg, "neuron", None)
    return SCHEDULER_NAME if n is not None and n.enabled and n.scheduler_extension else None


def hugging_face_token(cfg) -> pulumi.Output[str] | None:
    """The Hugging Face token as a secret Output: read from Secrets Manager at deploy time, or the Pulumi secret."""
    s = cfg.serving
    if s.hugging_face_token_secret_id:
        version = aws.secretsmanager.get_secret_version_output(secret_id=s.hugging_face_token_secret_id)
        return pulumi.Output.secret(version.secret_string)
    if s.hugging_face_token is not None:
        return pulumi.Output.secret(s.hugging_face_token)
    return None


def hugging_face_token_source(cfg) -> str | None:
    """Where the token comes from, recorded on its Secret for the policy pack (``no-literal-secrets``)."""
    s = cfg.serving
    if s.hugging_face_token_secret_id:
        return f"secretsmanager:{s.hugging_face_token_secret_id}"
    if s.hugging_face_token is not None:
        return "pulumi-config:genai-scale:serving.huggingFaceToken"
    return None


def _is_pulumi_secret(key: str) -> bool:
    """Whether the Pulumi engine handed ``key`` to the program as a secret (a ``secure:`` value in the stack file)."""
    from pulumi.runtime import config as rc
    return rc.is_config_secret(key) or key in rc.get_config_secret_keys_env()


def token_problems(cfg) -> list[Problem]:
    """The Hugging Face token comes from one place, and never from the stack file in clear."""
    s = cfg.serving
    out: list[Problem] = []
    if s.hugging_face_token is not None and s.hugging_face_token_secret_id:
        out.append(Problem("serving.huggingFaceToken", SECRET_VALUE, "set only one of huggingFaceToken and "
                           "huggingFaceTokenSecretId", ("serving.huggingFaceTokenSecretId",)))
    if s.hugging_face_token not in (None, SECRET_VALUE) and not _is_pulumi_secret("genai-scale:serving"):
        out.append(Problem("serving.huggingFaceToken", "<in clear>", "a Pulumi secret, never clear text in the "
                           "stack file: `pulumi config set --secret --path serving.huggingFaceToken <token>`, or keep "
                           "it in Secrets Manager and set serving.huggingFaceTokenSecretId"))
    return out


def service_args(name: str, m: ModelServiceSettings, *, cfg, placement: NodeGroupPlacement, bucket: str,
                 **wiring: Any) -> VllmServiceArgs:
    """A model's :class:`VllmServiceArgs`, or :class:`MultiNodeVllmServiceArgs` when it is multi-node
    (:func:`is_multi_node`)."""
    data = _service_data(name, m, cfg=cfg, placement=placement, bucket=bucket, **wiring)
    return _build_args(m, data, is_multi_node(m, data))


def _build_args(m: ModelServiceSettings, data: dict[str, Any], multi: bool) -> VllmServiceArgs:
    if not multi:
        return VllmServiceArgs(**data)
    return MultiNodeVllmServiceArgs(**data, nodes=m.nodes, pipeline_parallel_size=m.pipeline_parallel_size)


def multi_node_problems(name: str, m: ModelServiceSettings, ng, *, nodes: int | None) -> list[Problem]:
    """A multi-node model's node group: EFA on (EFA interfaces, a cluster placement group, one AZ: the group's
    pods talk NCCL to each other) and room for ``nodes`` x ``maxReplicas`` nodes."""
    base, group = f"serving.models.{name}", f"nodeGroups.{m.node_group}"
    layout = f"{nodes} nodes" if nodes else "several nodes"
    out: list[Problem] = []
    if not ng.efa:
        out.append(Problem(f"{group}.efa", ng.efa, f"true: {base} is served across {layout} per replica (NCCL over "
                           "EFA needs the EFA interfaces, a cluster placement group and one AZ)",
                           (f"{base}.nodeGroup",)))
    if nodes and ng.max_size < nodes * m.max_replicas:
        out.append(Problem(f"{group}.maxSize", ng.max_size, f">= {nodes * m.max_replicas}: {base} runs up to "
                           f"maxReplicas ({m.max_replicas}) groups of {nodes} nodes", (f"{base}.maxReplicas",)))
    return out


def is_multi_node(m: ModelServiceSettings, data: dict[str, Any]) -> bool:
    """Whether a model is served across nodes: ``nodes`` given, or the fit check's layout needs more than one node
    (the model does not fit one node of its group, the fewest nodes that fit, with TP = GPUs per node and
    PP = nodes, are more than one, and the instance type has EFA: across nodes without EFA the fit check's
    "does not fit" stands)."""
    if m.nodes is not None:
        return True
    spec = data["placement"].accelerator
    if (m.gpu_sharing != "dedicated" or spec.shards_over_cores or not spec.efa_supported
            or data["model"].facts() is None):
        return False  # whole GPUs with EFA, known models only (VllmServiceArgs reports the rest)
    # the layout of the single-node settings, unvalidated: they fail the fit check when one node is too small
    return planned_layout(VllmServiceArgs.model_construct(**data)).multi_node


def _service_data(name: str, m: ModelServiceSettings, *, cfg, placement: NodeGroupPlacement, bucket: str,
                  cron_floors: tuple = (), **wiring: Any) -> dict[str, Any]:
    vendor = placement.accelerator.vendor
    gateway = getattr(cfg, "gateway", None)
    clients = [gateway.namespace] if gateway is not None and getattr(gateway, "namespace", None) else []
    targets = getattr(cfg, "targets", None)
    return dict(
        model=model_settings(name, m, bucket), placement=placement, namespace=cfg.serving.namespace,
        engine_version=image_engine_version(vendor),
        gpu_sharing=m.gpu_sharing, mig_profile=m.mig_profile, mig_strategy=cfg.gpu_operator.mig_strategy,
        autoscaling=autoscaling_settings(m, getattr(targets, "p95_latency_ms", None), cron_floors),
        keda=cfg.serving.keda.enabled, warm_pool_placeholders=m.warm_pool_placeholders,
        pre_stop_seconds=m.pre_stop_seconds, startup_timeout_seconds=m.startup_timeout_seconds,
        api_key=cfg.serving.api_key, client_namespaces=clients, monitoring_namespace=cfg.monitoring.namespace,
        neuron_scheduler=neuron_scheduler(cfg),
        do_not_disrupt=getattr(cfg, "node_provisioner", "managed-node-groups") == "karpenter", **wiring)


def _checked_placement(base: str, group: str, node_groups: dict[str, Any], out: list[Problem]
                       ) -> NodeGroupPlacement | None:
    """The placement on node group ``group`` that ``base`` (a model or a pool) names; None, with a problem in
    ``out`` when the group does not exist (none when its own settings are invalid: the foundation section reports
    those)."""
    if group not in node_groups:
        out.append(Problem(f"{base}.nodeGroup", group,
                           f"a node group of nodeGroups ({', '.join(sorted(node_groups)) or 'none defined'})",
                           (f"nodeGroups.{group}",)))
        return None
    return placement_from_settings(group, node_groups[group])


def placement_from_settings(name: str, ng) -> NodeGroupPlacement | None:
    """Placement computed from node-group settings (for checks before anything is built); None when the node group's
    own settings are invalid (those problems are reported by the foundation section)."""
    from components.foundation.gpu_node_group import node_labels, node_taints
    from infra.sections.foundation import node_group_args

    args = node_group_args(ng)
    if args is None:
        return None
    spec = args.spec()
    return NodeGroupPlacement(name=name, accelerator=spec,
                              labels=node_labels(name, spec, efa=args.efa, mig_config=args.mig_config,
                                                 time_slicing_replicas=args.time_slicing_replicas,
                                                 extra=args.extra_labels),
                              taints=node_taints(spec), mig_config=args.mig_config,
                              time_slicing_replicas=args.time_slicing_replicas)


_PLACEHOLDER_WIRING = {"image": "image", "prometheus_url": "http://prometheus:9090", "oidc_provider_arn": "arn",
                       "oidc_issuer": "issuer"}
_SNAKE = re.compile(r"\b(?:model\.|autoscaling\.)?[a-z]+(?:_[a-z0-9]+)+\b|\bmodel\b")


def _config_term(term: str) -> str:
    """A component field path in config terms (the config flattens ``model.*`` and the replica bounds)."""
    from pydantic.alias_generators import to_camel
    if term in ("model", "model.model_id", "model_id"):
        return "modelId"
    if term in ("autoscaling.min_replicas", "autoscaling.max_replicas"):
        term = term.split(".", 1)[1]
    term = term.removeprefix("model.")
    return ".".join(to_camel(p) for p in term.split("."))


_NODE_GROUP_KEYS = {"efa": "instanceType", "placement": "instanceType"}
"""Args fields of a multi-node model whose problem is its node group's (an instance type without EFA, Neuron)."""


def _config_problem(base: str, p: Problem, *, node_group: tuple[str, str] | None = None) -> Problem:
    """A service-args problem at its config key; ``node_group`` (name, instance type) places a multi-node model's
    instance-type problems at its node group."""
    if node_group and p.path in _NODE_GROUP_KEYS:
        expected = p.expected.replace(" (or efa off)", "")  # the group always requests EFA from the section
        return Problem(f"nodeGroups.{node_group[0]}.{_NODE_GROUP_KEYS[p.path]}", node_group[1],
                       f"{expected} ({base} is served across nodes)", (f"{base}.nodeGroup",))
    if p.path == "neuron_scheduler":  # the extension is a cluster-wide setting of the Neuron chart
        reason = p.expected.removeprefix("required: ").split("; turn on", 1)[0]
        return Problem("neuron.schedulerExtension", False, f"true: {base}: {reason}",
                       (f"{base}.tensorParallelSize",))

    def where(path: str) -> str:
        if path == "mig_strategy":
            return "gpuOperator.migStrategy"  # a cluster-wide GPU operator setting
        return f"{base}.{_config_term(path)}" if path else base

    expected = _SNAKE.sub(lambda m: _config_term(m.group(0)) if "_" in m.group(0) else m.group(0), p.expected)
    return Problem(where(p.path), p.value, expected, tuple(where(r) for r in p.related))


MODEL_NAMES = (("iam-role", "{}-weights-role"), ("iam-policy", "{}-weights-policy"))
"""AWS names Pulumi generates from a model's key (``<logical name>-<7 random characters>``)."""


def model_key_problems(name: str) -> list[Problem]:
    """A model's key must give valid AWS names (its IAM role's alphabet and length limit)."""
    if not any(autoname_problems(service, template.format(name)) for service, template in MODEL_NAMES):
        return []
    longest = min(longest_key(service, template) for service, template in MODEL_NAMES)
    return [Problem(f"serving.models.{name}", name, f"a model name of at most {longest} letters, digits and "
                    f"+=,.@_- (its IAM role is named <name>-weights-role-<7 random characters>, at most 64)")]


def pool_args(name: str, p, *, cfg, placement: NodeGroupPlacement, bucket: str, **wiring: Any) -> ModelPoolArgs:
    """A pool's :class:`ModelPoolArgs`: its settings plus what the rest of the stack decides (namespace, bucket, engine
    version, MIG strategy, API key, gateway and monitoring namespaces, KEDA)."""
    gateway = getattr(cfg, "gateway", None)
    clients = [gateway.namespace] if gateway is not None and getattr(gateway, "namespace", None) else []
    targets = getattr(cfg, "targets", None)
    data = {k: v for k, v in p.model_dump(by_alias=False).items() if k in ModelPoolArgs.model_fields}
    scaling = AutoscalingSettings(min_replicas=p.min_replicas, max_replicas=p.max_replicas,
                                  p95_latency_ms=getattr(targets, "p95_latency_ms", None))
    return ModelPoolArgs(
        **data, placement=placement, models_bucket=bucket, namespace=cfg.serving.namespace,
        engine_version=image_engine_version(placement.accelerator.vendor), mig_strategy=cfg.gpu_operator.mig_strategy,
        api_key=cfg.serving.api_key, gateway_namespaces=clients, monitoring_namespace=cfg.monitoring.namespace,
        keda=cfg.serving.keda.enabled, autoscaling=scaling, **wiring)


_POOL_GLOBAL = {"mig_strategy": "gpuOperator.migStrategy", "models_bucket": "serving.modelsBucket",
                "prometheus_url": "monitoring.enabled", "oidc_provider_arn": "cluster"}
"""ModelPoolArgs fields the section fills from other settings: a problem with one is reported at that setting."""


def _pool_config_problems(base: str, err: ArgsError) -> list[Problem]:
    out = []
    for orig, p in zip(err.problems, translate(err, base)):
        head = orig.path.split(".", 1)[0]
        out.append(Problem(_POOL_GLOBAL[head], p.value, p.expected, (*p.related, base)) if head in _POOL_GLOBAL
                   else p)
    return out


def route_names(cfg) -> dict[str, str]:
    """Names clients send as ``model`` that the stack already routes, each with the config key that defines it: the
    served models, the real-time SageMaker endpoints (``sagemaker-<name>``) and ``bedrock``."""
    out = {name: f"serving.models.{name}" for name in cfg.serving.models}
    sagemaker = getattr(cfg, "sagemaker", None)
    for name, e in (getattr(sagemaker, "endpoints", None) or {}).items():
        if getattr(e, "mode", "real-time") != "async":
            out[f"sagemaker-{name}"] = f"sagemaker.endpoints.{name}"
    if getattr(getattr(cfg, "bedrock", None), "enabled", False):
        out["bedrock"] = "bedrock"
    return out


def pool_name_problems(cfg) -> list[Problem]:
    """Pool model and adapter names are unique across the stack (the pool itself reports a repeat inside it)."""
    owners = route_names(cfg) if cfg.serving.enabled else {}
    out: list[Problem] = []
    for pool, p in cfg.serving.pools.items():
        base = f"serving.pools.{pool}."
        names = [(m, f"{base}models.{m}") for m in p.models]
        names += [(a, f"{base}models.{m}.adapters.{a}") for m, pm in p.models.items() for a in pm.adapters]
        for name, path in names:
            owner = owners.setdefault(name, path)
            if owner != path and not owner.startswith(base):
                out.append(Problem(path, name, f"a name unique across serving.models, serving.pools and the gateway's "
                                   f"routes (clients send it as model; already {owner})", (owner,)))
    return out


def pool_problems(cfg) -> list[Problem]:
    """Every pool: its node group exists, its args hold (every ModelPoolArgs rule, at its config key), a dynamic pool
    has the gateway to drive it and no more replicas than its node group has nodes; names unique across the stack."""
    s = cfg.serving
    node_groups = getattr(cfg, "node_groups", {}) or {}
    out: list[Problem] = []
    for name, p in s.pools.items():
        base = f"serving.pools.{name}"
        placement = _checked_placement(base, p.node_group, node_groups, out)
        if placement is None:
            continue
        ng = node_groups[p.node_group]
        try:
            pool_args(name, p, cfg=cfg, placement=placement, bucket=bucket_name(cfg, "stack"),
                      **_PLACEHOLDER_WIRING)
        except ArgsError as err:
            out.extend(_pool_config_problems(base, err))
            continue
        if parse_policy(p.policy).kind != "dynamic":
            continue
        if not getattr(getattr(cfg, "gateway", None), "enabled", False):
            out.append(Problem(f"{base}.policy", p.policy, "needs the gateway (gateway.enabled): its pool controller "
                               "wakes, loads and evicts the pool's models", ("gateway.enabled",)))
        if p.max_replicas > ng.max_size:
            out.append(Problem(f"{base}.maxReplicas", p.max_replicas, f"<= node group {p.node_group!r}'s maxSize "
                               f"({ng.max_size}): a dynamic replica takes every share of its node's GPU",
                               (f"nodeGroups.{p.node_group}.maxSize",)))
    return out + pool_name_problems(cfg)


def pool_summary(name: str, p, *, service_dns: Any = None) -> dict[str, Any]:
    """What the plan prints for a pool (the ``modelPools`` output): policy, node group, replicas, models with their
    adapters, the workload's recommended policy and reason, and the warning when the policy differs."""
    rec = recommend(p.workload) if p.workload else None
    try:
        warning = mismatch_warning(p.workload, p.policy) if p.workload else None
    except PolicyError:
        warning = None
    out = {"policy": p.policy, "nodeGroup": p.node_group, "minReplicas": p.min_replicas,
           "maxReplicas": p.max_replicas, "workload": p.workload,
           "models": {m: {"modelId": pm.model_id, "adapters": list(pm.adapters)} for m, pm in p.models.items()},
           "recommendation": {"policy": rec.policy, "reason": rec.reason} if rec else None,
           "warning": warning}
    if service_dns is not None:
        out["serviceDns"] = service_dns
    return out


def problems(cfg) -> list[Problem]:
    """Cross-section rules: node groups exist, the model fits them, warm capacity fits the group, monitoring is on."""
    out: list[Problem] = []
    s = cfg.serving
    if not s.enabled:
        return out
    node_groups = getattr(cfg, "node_groups", {}) or {}
    out.extend(token_problems(cfg))
    out.extend(pool_problems(cfg))
    multi_node: list[str] = []
    if (s.models or s.pools) and s.keda.enabled and not cfg.monitoring.enabled:
        out.append(Problem("serving.keda.enabled", True, "needs monitoring.enabled (the triggers query Prometheus)",
                           ("monitoring.enabled",)))
    for name, m in s.models.items():
        base = f"serving.models.{name}"
        out.extend(model_key_problems(name))
        placement = _checked_placement(base, m.node_group, node_groups, out)
        if placement is None:
            continue
        ng = node_groups[m.node_group]
        multi = False
        try:
            data = _service_data(name, m, cfg=cfg, placement=placement, bucket=bucket_name(cfg, "stack"),
                                 **_PLACEHOLDER_WIRING)
            multi = is_multi_node(m, data)
            args = _build_args(m, data, multi)
        except ArgsError as err:
            out.extend(_config_problem(base, p, node_group=(m.node_group, ng.instance_type)) for p in err.problems)
            if multi:
                out.extend(multi_node_problems(name, m, ng, nodes=m.nodes))
            continue
        if isinstance(args, MultiNodeVllmServiceArgs):
            multi_node.append(base)
            out.extend(multi_node_problems(name, m, ng, nodes=args.layout().nodes))
            continue
        per_replica = _accelerators_per_replica(args)
        per_node = placement.accelerator.count * (placement.time_slicing_replicas or 1)
        need = (m.min_replicas + m.warm_pool_placeholders) * per_replica
        if per_node and need > ng.max_size * per_node:
            out.append(Problem(f"{base}.warmPoolPlaceholders", m.warm_pool_placeholders,
                               f"minReplicas ({m.min_replicas}) + placeholders hold {need} accelerator(s), more than "
                               f"node group {m.node_group!r} can have ({ng.max_size} x {per_node})",
                               (f"{base}.minReplicas", f"nodeGroups.{m.node_group}")))
    out.extend(compile_cache_problems(cfg))
    if multi_node and not s.lws.enabled:
        out.append(Problem("serving.lws.enabled", False, f"true: {', '.join(multi_node)} span several nodes per "
                           "replica (a LeaderWorkerSet needs the LWS controller)", tuple(multi_node)))
    return out


_COMPILE_CACHE_PLACEHOLDERS = {"subnet_ids": {"private-0": "subnet"}, "vpc_id": "vpc", "node_security_group_id": "sg",
                               "cluster_name": "cluster", "oidc_provider_arn": "arn", "oidc_issuer": "issuer"}


def compile_cache_problems(cfg) -> list[Problem]:
    """``serving.compileCache`` against SharedCacheFileSystemArgs' rules, at its config keys (the add-on pin's rule
    at ``cluster.version``)."""
    c = cfg.serving.compile_cache
    if not c.enabled:
        return []
    version = getattr(getattr(cfg, "cluster", None), "version", None)
    try:
        args_from(c, SharedCacheFileSystemArgs, kubernetes_version=version, **_COMPILE_CACHE_PLACEHOLDERS)
    except ArgsError as err:
        out = []
        for orig, p in zip(err.problems, translate(err, "serving.compileCache")):
            if orig.path == "kubernetes_version":
                p = Problem("cluster.version", orig.value, orig.expected.replace("addon_version", "addonVersion"),
                            ("serving.compileCache.addonVersion",))
            out.append(p)
        return out
    return []


def compile_cache_subnets(ctx: BuildContext, cfg) -> dict[str, Any]:
    """The private subnets that get a mount target, keyed by a stable name: an adopted VPC's subnet ids as they are
    listed, else ``private-<i>`` for the network's i-th private subnet (AZ i, tagged ``network-private-<i>``). EFS takes
    one mount target per Availability Zone: an adopted VPC must list one private subnet per zone (two in one zone
    fail at apply with MountTargetConflict; their zones are not known offline)."""
    existing = getattr(cfg.network, "existing", None)
    if existing is not None:
        return {sid: sid for sid in existing.private_subnet_ids}
    ids = ctx.network.private_subnet_ids
    return {f"private-{i}": ids.apply(lambda v, i=i: v[i]) for i in range(cfg.network.az_count)}


def compile_cache(ctx: BuildContext, cfg, ns: Any, k8s_opts: pulumi.ResourceOptions | None) -> str | None:
    """The shared compile cache (file system, CSI driver, StorageClass) and its claim in the serving namespace, when
    ``serving.compileCache.enabled``: the claim's name, else None."""
    c = cfg.serving.compile_cache
    if not c.enabled:
        return None
    cache = SharedCacheFileSystem("compile-cache", args_from(
        c, SharedCacheFileSystemArgs, cluster=ctx.cluster, subnet_ids=compile_cache_subnets(ctx, cfg),
        tags=ctx.tags), opts=k8s_opts)
    claim = claim_manifest(COMPILE_CACHE_CLAIM, cfg.serving.namespace, cache.storage_class_name, c.claim_size_gib)
    k8s.core.v1.PersistentVolumeClaim("compile-cache", metadata=claim["metadata"], spec=claim["spec"],
                                      opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                                          depends_on=[ns, cache.storage_class])))
    return COMPILE_CACHE_CLAIM


def image_size_class(vendor: str) -> str:
    """What the plan says of the vLLM image's size (docs/coldstart.md, "Image pull"): the NVIDIA image's class from
    the cold-start catalogue; the Neuron image's size is not catalogued."""
    from components.catalog.coldstart import VLLM_IMAGE_SIZE_CLASS
    return VLLM_IMAGE_SIZE_CLASS if vendor == "nvidia" else "not catalogued (the Neuron vLLM image; measure its pull)"


def _accelerators_per_replica(args: VllmServiceArgs) -> int:
    from components.serving.vllm.manifests import accelerator_request
    req = accelerator_request(args)
    return sum(int(v) for k, v in req.items() if k in vendors.device_resources())


def _models_bucket(name: str, tags: dict[str, str]) -> aws.s3.Bucket:
    bucket = aws.s3.Bucket("models-bucket", bucket=name, force_destroy=False, tags=tags)
    aws.s3.BucketOwnershipControls("models-bucket", bucket=bucket.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"})
    aws.s3.BucketPublicAccessBlock("models-bucket", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                   ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketServerSideEncryptionConfiguration("models-bucket", bucket=bucket.id, rules=[{
        "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}, "bucket_key_enabled": True}])
    return bucket


def build(ctx: BuildContext, cfg) -> None:
    """Monitoring -> KEDA -> models bucket, images -> the LWS controller (with a multi-node model) -> one VllmService or
    MultiNodeVllmService per model."""
    k8s_opts = pulumi.ResourceOptions(provider=ctx.k8s_provider) if ctx.k8s_provider else None
    mon = cfg.monitoring
    targets = ctx.targets
    p95 = getattr(targets, "p95_latency_ms", None)
    if mon.enabled:
        margs = args_from(mon, MonitoringArgs, scrape_dcgm=ctx.gpu_operator is not None,
                          **({"p95_latency_ms": p95} if p95 else {}))
        storage = getattr(ctx.cluster, "storage_class", None)  # Prometheus's volume needs the gp3 class first
        mon_opts = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
            depends_on=[storage] if storage is not None else []))
        ctx.monitoring = Monitoring("monitoring", margs, opts=mon_opts)
        ctx.export("grafanaAdminPassword", ctx.monitoring.grafana_admin_password)
    s = cfg.serving
    if not s.enabled or not (s.models or s.pools):
        return
    after: list[pulumi.Resource] = []
    if s.keda.enabled:
        ctx.keda = Keda("keda", args_from(s.keda, KedaArgs), opts=k8s_opts)
        after.append(ctx.keda.release)
    if ctx.monitoring is not None:
        after.append(ctx.monitoring.release)
    ns = k8s.core.v1.Namespace("serving-ns", metadata={"name": s.namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}, opts=k8s_opts)

    claim = compile_cache(ctx, cfg, ns, k8s_opts)
    bucket = bucket_name(cfg, ctx.stack)
    reads_bucket = any(not m.weights_uri and not (m.allow_hub_download and not m.weights_prefix)
                       for m in s.models.values())
    if s.models_bucket.create and (reads_bucket or s.pools):
        _models_bucket(bucket, ctx.tags)
        ctx.export("modelsBucket", bucket)

    placements = {}
    for name, m in s.models.items():
        spec = ctx.node_group_specs.get(m.node_group)
        placements[name] = placement_from_node_group(
            ctx.node_groups[m.node_group], mig_config=getattr(spec, "mig_config", None),
            time_slicing_replicas=getattr(spec, "time_slicing_replicas", None))
    pool_placements = {}
    for name, p in s.pools.items():
        spec = ctx.node_group_specs.get(p.node_group)
        pool_placements[name] = placement_from_node_group(
            ctx.node_groups[p.node_group], mig_config=getattr(spec, "mig_config", None),
            time_slicing_replicas=getattr(spec, "time_slicing_replicas", None))
    images: dict[str, Any] = {}
    for vendor in sorted({p.accelerator.vendor for p in [*placements.values(), *pool_placements.values()]}):
        if s.build_images:
            img = VllmImage(f"vllm-{vendor}", args_from(s.images, VllmImageArgs, vendor=vendor, tags=ctx.tags))
            images[vendor] = img.image_ref
        else:
            images[vendor] = base_image(vendor)

    prom = ctx.monitoring.prometheus_url if ctx.monitoring is not None else None
    cluster = ctx.cluster
    pools: dict[str, Any] = {}
    for name, p in s.pools.items():
        placement = pool_placements[name]
        args = pool_args(name, p, cfg=cfg, placement=placement, bucket=bucket,
                         image=images[placement.accelerator.vendor], prometheus_url=prom,
                         oidc_provider_arn=getattr(cluster, "oidc_provider_arn", None),
                         oidc_issuer=getattr(cluster, "oidc_issuer", None), after=after, tags=ctx.tags,
                         compile_cache_claim=claim)
        pool = ModelPool(name, args, opts=pulumi.ResourceOptions(
            provider=ctx.k8s_provider, depends_on=[ns]) if ctx.k8s_provider else pulumi.ResourceOptions(depends_on=[ns]))
        ctx.model_pools[name] = pool
        pools[name] = pool_summary(name, p, service_dns=getattr(pool, "service_dns", None))
        if pools[name]["warning"]:
            ctx.note(f"warning: serving.pools.{name}: {pools[name]['warning']}")
    if pools:
        ctx.export("modelPools", pools)
    exported: dict[str, Any] = {}
    hf_token = hugging_face_token(cfg)
    capacity = ctx.extras.get("capacity")  # the capacity section's plan: cron floors and facts per model
    model_args = {name: service_args(
        name, m, cfg=cfg, placement=placements[name], bucket=bucket, image=images[placements[name].accelerator.vendor],
        prometheus_url=prom, hf_token=hf_token, hf_token_source=hugging_face_token_source(cfg),
        oidc_provider_arn=getattr(cluster, "oidc_provider_arn", None),
        oidc_issuer=getattr(cluster, "oidc_issuer", None), after=after, tags=ctx.tags, compile_cache_claim=claim,
        cron_floors=capacity.floors.get(name, ()) if capacity is not None else (),
        capacity=capacity.facts.get(name) if capacity is not None else None)
        for name, m in s.models.items()}
    group_after = list(after)
    if any(isinstance(a, MultiNodeVllmServiceArgs) for a in model_args.values()):
        lws = LeaderWorkerSetController("lws", args_from(
            s.lws, LeaderWorkerSetControllerArgs, prometheus=ctx.monitoring is not None,
            after=[ctx.monitoring.release] if ctx.monitoring is not None else []), opts=k8s_opts)
        group_after.append(lws.release)
    for name, m in s.models.items():
        args = model_args[name]
        gpu_trigger = args.autoscaling.gpu_utilization_up_percent
        if gpu_trigger and args.placement.accelerator.vendor_facts.utilization_metric \
                and args.placement.utilization_metric is None:
            ctx.note(f"serving.models.{name}: no GPU-utilization trigger (gpuUtilizationUpPercent {gpu_trigger}): "
                     f"node group {m.node_group} runs Bottlerocket, whose NVIDIA nodes run no DCGM exporter; it "
                     "scales on queue depth and latency")
        svc_opts = pulumi.ResourceOptions(provider=ctx.k8s_provider, depends_on=[ns]) if ctx.k8s_provider \
            else pulumi.ResourceOptions(depends_on=[ns])
        if isinstance(args, MultiNodeVllmServiceArgs):
            svc = MultiNodeVllmService(name, args.model_copy(update={"after": group_after}), opts=svc_opts)
        else:
            svc = VllmService(name, args, opts=svc_opts)
        ctx.vllm_services[name] = svc
        exported[name] = {"url": svc.service_url, "servedModelName": svc.served_model_name,
                          "nodeGroup": m.node_group, "minReplicas": m.min_replicas, "maxReplicas": m.max_replicas,
                          "warmPoolPlaceholders": m.warm_pool_placeholders,
                          "fitGib": {"need": svc.fit.need_gib, "capacity": svc.fit.capacity_gib},
                          "imageSizeClass": image_size_class(placements[name].accelerator.vendor)}
        if isinstance(args, MultiNodeVllmServiceArgs):
            lay = svc.layout
            exported[name]["layout"] = {"nodes": lay.nodes, "tensorParallelSize": lay.tensor_parallel_size,
                                        "pipelineParallelSize": lay.pipeline_parallel_size}
    if s.models:
        ctx.export("vllmServices", exported)
