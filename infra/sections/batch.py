"""Stack section: batch. Queue-driven batch inference on spot accelerator capacity tainted for batch.

Config key ``batch`` (camelCase in YAML): ``enabled``; ``model`` (a model of ``serving.models``: the workers' engine
gets the flags its VllmService renders, and serves it under the same name); ``nodeGroups`` (the batch node groups of
``nodeGroups``, SPOT, labelled ``genai-scale.io/capacity=batch`` and tainted ``genai-scale.io/batch=true:NoSchedule``;
the pods select the labels the groups share, so the cluster autoscaler may bring up any of them: several instance
types for spot diversity); ``onDemandFallback`` (an ON_DEMAND batch node group the autoscaler may use when spot is
short); and the :class:`~components.batch.batch_inference.BatchInference` settings (``maxParallelism``,
``visibilityTimeoutSeconds``, ``maxReceives``, ``bucketName``, ...).

Outputs: ``batchQueueUrl``, ``batchBucket``. See docs/reference/batch-inference.md.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pydantic import Field

from components.batch.batch_inference import BatchInference, BatchInferenceArgs
from components.errors import ArgsError
from components.serving.vllm.args import NodeGroupPlacement, VllmModelSettings
from components.serving.vllm.image import base_image, engine_version as image_engine_version
from problems import Problem
from infra.sections.base import BuildContext, args_from, derive_settings, translate
from infra.sections.gateway import resolve_batch_wiring

BatchSettings = derive_settings(
    BatchInferenceArgs, name="BatchSettings", module=__name__,
    exclude=("model", "placement", "engine_version", "weights_kms_key_arn", "after", "tags"),
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


def problems(cfg) -> list[Problem]:
    """The model and node groups exist, the groups are batch capacity (SPOT, or the on-demand fallback), KEDA and
    the gateway (whose image runs the worker) are on, and the component's own rules."""
    s = cfg.batch
    if not s.enabled:
        return []
    out: list[Problem] = []
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
    args = _args(cfg, groups, bucket=bucket_name(cfg, ctx.stack), engine_image=engine_image,
                 worker_image=ctx.gateway.image, cluster=ctx.cluster, region=ctx.region,
                 after=[ctx.keda.release] if ctx.keda is not None else [], tags=ctx.tags)
    batch = BatchInference("batch", args, opts=k8s_opts)
    ctx.extras["batch"] = batch
    resolve_batch_wiring(ctx, batch)  # the gateway's Batch API: this bucket, queue, DLQ and key
    ctx.export("batchQueueUrl", batch.queue_url)
    ctx.export("batchBucket", batch.bucket)


def _engine_image(ctx: BuildContext, cfg, vendor: str) -> Any:
    """The vLLM image the serving section runs for this vendor: the model's VllmService's, else the upstream pin."""
    svc = ctx.vllm_services.get(cfg.batch.model)
    if svc is not None and svc.manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0].get("image"):
        return svc.manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    return base_image(vendor)
