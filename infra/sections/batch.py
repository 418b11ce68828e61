"""Stack section: batch. Queue-driven batch inference on spot accelerator capacity tainted for batch.

Config key ``batch`` (camelCase in YAML): ``enabled``; ``model`` (a model of ``serving.models``: the workers' engine
gets the flags its VllmService renders, and serves it under the same name); ``nodeGroups`` (the batch node groups of
``nodeGroups``, SPOT, labelled ``genai-scale.io/capacity=batch`` and tainted ``genai-scale.io/batch=true:NoSchedule``;
the pods select the labels the groups share, so the cluster autoscaler may bring up any of them: several instance
types for spot diversity); ``onDemandFallback`` (an ON_DEMAND batch node group the autoscaler may use when spot is
short); the :class:`~components.batch.batch_inference.BatchInference` settings (``maxParallelism``,
``visibilityTimeoutSeconds``, ``maxReceives``, ``bucketName``, ``dispatchMaxParallelism``, ...); and ``bedrock``
(``enabled``, ``modelId``, ``name``): Bedrock batch inference as the gateway's ``batch.backends.<name>``, with the
service role of :class:`~components.batch.bedrock_batch.BedrockBatchServiceRole`.

The other managed backend, SageMaker asynchronous endpoints, is configured where the endpoints are
(``sagemaker.endpoints.<name>.mode: async``); this section gives them the bucket and key, and BatchInference the
managed-dispatch queue and the dispatcher ScaledJob that calls them.

Outputs: ``batchQueueUrl``, ``batchBucket`` (and ``batchDispatchQueueUrl`` with async endpoints, ``batchBedrockRoleArn``
with Bedrock batch). See docs/reference/batch-inference.md and docs/reference/bedrock-batch-service-role.md.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic import Field

from components.batch.batch_inference import BatchInference, BatchInferenceArgs
from components.batch.bedrock_batch import BedrockBatchServiceRole, BedrockBatchServiceRoleArgs
from components.errors import ArgsError
from components.serving.vllm.args import NodeGroupPlacement, VllmModelSettings
from components.serving.vllm.image import base_image, engine_version as image_engine_version
from problems import Problem, missing
from infra.sections.base import BuildContext, args_from, derive_settings, optional, translate
from infra.sections.gateway import resolve_batch_wiring
from infra.sections.managed import async_endpoint_names, resolve_async_wiring

BACKEND_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"

BedrockBatchSettings = derive_settings(
    BedrockBatchServiceRoleArgs, name="BedrockBatchSettings", module=__name__, exclude=("region", "tags"),
    doc="Bedrock batch inference (CreateModelInvocationJob) as a batch backend of the gateway.",
    extra={
        "enabled": (bool, Field(default=False, description=(
            "Run the batches of ``name`` as Bedrock batch inference jobs (needs batch.enabled). Default: off."))),
        "name": (str, Field(default="bedrock", pattern=BACKEND_NAME, description=(
            "The batch model name the gateway sends to Bedrock (``batch.backends.<name>``); the name of a route "
            "moves that route's batches to Bedrock. Default: bedrock (the Bedrock route's name)."))),
        **optional(BedrockBatchServiceRoleArgs, "model_id")})

BatchSettings = derive_settings(
    BatchInferenceArgs, name="BatchSettings", module=__name__,
    exclude=("model", "placement", "engine_version", "weights_kms_key_arn", "after", "tags", "async_endpoints"),
    doc="Batch inference on spot: the shard queue and its DLQ, the batches bucket and the KEDA ScaledJob of workers.",
    extra={
        "enabled": (bool, Field(default=False, description="Run batch inference. Default: off (tier presets turn it "
                                                           "on).")),
        "model": (str | None, Field(default=None, description=(
            "A model of ``serving.models``: the workers serve it with the same vLLM settings and name. Required "
            "when enabled."))),
        "node_groups": (list[str], Field(default_factory=list, description=(
            "Batch node groups of ``nodeGroups`` (SPOT, labelled genai-scale.io/capacity=batch, tainted "
            "genai-scale.io/batch=true:NoSchedule); the first sizes the pods. Required when enabled."))),
        "on_demand_fallback": (str | None, Field(default=None, description=(
            "An ON_DEMAND batch node group the pods may also land on when spot capacity is short. Default: none "
            "(spot only)."))),
        "bedrock": (BedrockBatchSettings, Field(default_factory=BedrockBatchSettings, description=(
            "Bedrock batch inference as a batch backend. Default: off."))),
    })

KEYS = {"batch": BatchSettings}
FALLBACK_LABEL = ("genai-scale.io/capacity-fallback", "on-demand")
"""Label of the ON_DEMAND batch fallback group (policies/batch.py accepts an ON_DEMAND batch group only with it)."""
"""Top-level `genai-scale:<key>` config keys this section owns."""

_PLACEHOLDER = {"engine_image": "image", "worker_image": "image", "cluster_name": "cluster", "region": "us-east-1"}


def _groups(s) -> list[str]:
    return [*s.node_groups, *([s.on_demand_fallback] if s.on_demand_fallback else [])]


def placement(groups: list[tuple[str, Any, dict[str, str], list[dict[str, str]]]]) -> NodeGroupPlacement:
    """Placement over several batch groups ``(name, accelerator spec, labels, taints)``: the first group's
    accelerator and taints, and the labels every group shares (the node-group name is not among them, so the pods
    may land on any of the groups)."""
    name, spec, labels, taints = groups[0]
    shared = {k: v for k, v in labels.items() if all(g[2].get(k) == v for g in groups[1:])}
    return NodeGroupPlacement(name=name, accelerator=spec, labels=shared, taints=[dict(t) for t in taints])


def _settings_groups(cfg) -> list[tuple[str, Any, dict[str, str], list[dict[str, str]]]] | None:
    from components.foundation.gpu_node_group import node_labels, node_taints
    from infra.sections.foundation import node_group_args

    out = []
    for name in _groups(cfg.batch):
        ng = cfg.node_groups.get(name)
        args = node_group_args(ng) if ng is not None else None
        if args is None:
            return None
        spec = args.spec()
        out.append((name, spec, node_labels(name, spec, efa=args.efa, mig_config=args.mig_config,
                                            extra=args.extra_labels), node_taints(spec, args.extra_taints)))
    return out


def model_settings(cfg, bucket: str) -> VllmModelSettings:
    from infra.sections.serving import model_settings as serving_model_settings
    name = cfg.batch.model
    return serving_model_settings(name, cfg.serving.models[name], bucket)


def _args(cfg, groups, *, bucket: str, **wiring: Any) -> BatchInferenceArgs:
    p = placement(groups)
    return args_from(cfg.batch, BatchInferenceArgs, model=model_settings(cfg, bucket), placement=p,
                     engine_version=image_engine_version(p.accelerator.vendor), **wiring)


def bedrock_problems(cfg) -> list[Problem]:
    """Bedrock batch: on only with batch, a model id Bedrock batch takes, a name no async endpoint uses."""
    b = cfg.batch.bedrock
    if not b.enabled:
        return []
    out: list[Problem] = []
    if not cfg.batch.enabled:
        out.append(Problem("batch.bedrock.enabled", True, "false without batch (batch.enabled): the jobs read and "
                           "write the batch bucket", ("batch.enabled",)))
    if not b.model_id:
        out.append(missing("batch.bedrock.modelId", "required when batch.bedrock.enabled: a base model id or a "
                           "cross-Region profile id such as us.amazon.nova-lite-v1:0"))
    else:
        try:
            args_from(b, BedrockBatchServiceRoleArgs, model_id=b.model_id, bucket="bucket", kms_key_arn="key",
                      region=cfg.region)
        except ArgsError as err:
            out.extend(translate(err, "batch.bedrock"))
    if b.name in async_endpoint_names(cfg):
        out.append(Problem("batch.bedrock.name", b.name, "a batch model name no async SageMaker endpoint uses (both "
                           "are keys of the gateway's batch.backends)", (f"sagemaker.endpoints.{b.name}",)))
    return out


def problems(cfg) -> list[Problem]:
    """The model and node groups exist, the groups are batch capacity (SPOT, or the on-demand fallback), KEDA and
    the gateway (whose image runs the worker) are on, and the component's own rules; Bedrock batch's rules."""
    s = cfg.batch
    out: list[Problem] = bedrock_problems(cfg)
    if not s.enabled:
        return out
    models = cfg.serving.models if cfg.serving.enabled else {}
    if s.model is None or s.model not in models:
        out.append(Problem("batch.model", s.model, "a model of serving.models (" +
                           (", ".join(sorted(models)) or "none defined; enable serving") + ")", ("serving.models",)))
    if not s.node_groups:
        out.append(Problem("batch.nodeGroups", [], "at least one batch node group of nodeGroups"))
    for i, name in enumerate(s.node_groups):
        ng = cfg.node_groups.get(name)
        if ng is None:
            out.append(Problem(f"batch.nodeGroups[{i}]", name, "a node group of nodeGroups (" +
                               ", ".join(sorted(cfg.node_groups)) + ")", (f"nodeGroups.{name}",)))
        elif ng.capacity_type != "SPOT":
            out.append(Problem(f"nodeGroups.{name}.capacityType", ng.capacity_type,
                               "SPOT for a batch node group (name an ON_DEMAND group as batch.onDemandFallback)",
                               ("batch.nodeGroups",)))
    fb = s.on_demand_fallback
    if fb is not None:
        ng = cfg.node_groups.get(fb)
        if ng is None:
            out.append(Problem("batch.onDemandFallback", fb, "a node group of nodeGroups", (f"nodeGroups.{fb}",)))
        elif ng.capacity_type != "ON_DEMAND":
            out.append(Problem(f"nodeGroups.{fb}.capacityType", ng.capacity_type,
                               "ON_DEMAND for the batch on-demand fallback", ("batch.onDemandFallback",)))
        elif ng.extra_labels.get(FALLBACK_LABEL[0]) != FALLBACK_LABEL[1]:
            out.append(Problem(f"nodeGroups.{fb}.extraLabels", dict(ng.extra_labels),
                               f"{FALLBACK_LABEL[0]}: {FALLBACK_LABEL[1]} on the batch on-demand fallback (the policy "
                               "pack accepts an ON_DEMAND batch group only with it)", ("batch.onDemandFallback",)))
    if not (cfg.serving.enabled and cfg.serving.keda.enabled):
        out.append(Problem("serving.keda.enabled", False, "true with batch.enabled (KEDA runs the batch workers)",
                           ("batch.enabled",)))
    if not cfg.gateway.enabled:
        out.append(Problem("gateway.enabled", False, "true with batch.enabled (the workers run the gateway image)",
                           ("batch.enabled",)))
    if out:
        return out
    groups = _settings_groups(cfg)
    if groups is None:
        return out  # the foundation section reports the node groups' own problems
    specs = {(g[1].vendor, g[1].accelerator, g[1].count) for g in groups}
    if len(specs) > 1:
        out.append(Problem("batch.nodeGroups", _groups(s), "groups of one accelerator (vendor, kind and count per "
                           "node), so one pod spec fits them all", ("batch.onDemandFallback",)))
        return out
    try:
        _args(cfg, groups, bucket="bucket", **_PLACEHOLDER)
    except ArgsError as err:
        out.extend(translate(err, "batch", {"placement": "nodeGroups"}))
    return out


def build(ctx: BuildContext, cfg) -> None:
    """One BatchInference over the batch node groups, after the serving section (KEDA) and the gateway (its image)."""
    from infra.sections.serving import bucket_name
    s = cfg.batch
    if not s.enabled:
        return
    groups = []
    for name in _groups(s):
        ng = ctx.node_groups[name]
        groups.append((name, ng.accelerator, dict(ng.labels), [dict(t) for t in ng.taints]))
    p = placement(groups)
    engine_image = _engine_image(ctx, cfg, p.accelerator.vendor)
    k8s_opts = pulumi.ResourceOptions(provider=ctx.k8s_provider) if ctx.k8s_provider else None
    async_endpoints = {n: ctx.sagemaker[n].endpoint_arn for n in async_endpoint_names(cfg)}
    args = _args(cfg, groups, bucket=bucket_name(cfg, ctx.stack), engine_image=engine_image,
                 worker_image=ctx.gateway.image, cluster=ctx.cluster, region=ctx.region,
                 after=[ctx.keda.release] if ctx.keda is not None else [], async_endpoints=async_endpoints,
                 tags=ctx.tags)
    batch = BatchInference("batch", args, opts=k8s_opts)
    ctx.extras["batch"] = batch
    resolve_async_wiring(ctx, batch.bucket, batch.kms_key_arn)  # the async endpoints' results go to this bucket
    bedrock = None
    if s.bedrock.enabled:
        bedrock = BedrockBatchServiceRole("batch-bedrock", args_from(
            s.bedrock, BedrockBatchServiceRoleArgs, model_id=s.bedrock.model_id, bucket=batch.bucket,
            kms_key_arn=batch.kms_key_arn, region=ctx.region, tags=ctx.tags))
        ctx.extras["batch-bedrock"] = bedrock
        ctx.export("batchBedrockRoleArn", bedrock.role_arn)
    resolve_batch_wiring(ctx, batch, bedrock)  # the gateway's Batch API: this bucket, queues, key and backends
    ctx.export("batchQueueUrl", batch.queue_url)
    ctx.export("batchBucket", batch.bucket)
    if batch.dispatch_queue_url is not None:
        ctx.export("batchDispatchQueueUrl", batch.dispatch_queue_url)


def _engine_image(ctx: BuildContext, cfg, vendor: str) -> Any:
    """The vLLM image the serving section runs for this vendor: the model's VllmService's, else the upstream pin."""
    svc = ctx.vllm_services.get(cfg.batch.model)
    deployment = svc.manifests.get("Deployment") if svc is not None else None  # none on a multi-node service
    if deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0].get("image"):
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return base_image(vendor)
