"""Stack section: edge. The Application Load Balancer (+ AWS Load Balancer Controller) and the Valkey semantic cache.

Config keys: ``genai-scale:alb`` and ``genai-scale:cache``. ``build`` puts ``ctx.alb`` (:class:`components.edge.alb.Alb`),
``ctx.lb_controller`` (the controller's Helm release: TargetGroupBindings ``depends_on`` it) and ``ctx.cache``
(:class:`components.edge.semantic_cache.SemanticCache`) on the context, or leaves them None when switched off.
"""

from __future__ import annotations


import pulumi
from pydantic import Field


from components.errors import ArgsError

from problems import Problem, missing
from components.edge.alb import Alb, AlbArgs
from components.edge.lb_controller import LbController, LbControllerArgs
from components.edge.semantic_cache import SemanticCache, SemanticCacheArgs
from infra.sections.base import BuildContext, args_from, derive_settings, optional, translate


WIRING = ("cluster", "tags", "region", "cluster_name", "oidc_provider_arn", "oidc_issuer")
"""Args the program supplies; never stack config."""

LbControllerSettings = derive_settings(LbControllerArgs, name="LbControllerSettings", exclude=WIRING,
                                       module=__name__)
AlbSettings = derive_settings(
    AlbArgs, name="AlbSettings", exclude=WIRING, module=__name__,
    doc="The public (or internal) entry point of the serving tier.",
    extra={
        "enabled": (bool, Field(default=False, description=(
            "Create the ALB and the AWS Load Balancer Controller. Default: off (tier presets turn it on)."))),
        **optional(AlbArgs, "certificate_arn"),
        "lb_controller": (LbControllerSettings, Field(default_factory=LbControllerSettings, description=(
            "AWS Load Balancer Controller settings."))),
    })
CacheSettings = derive_settings(
    SemanticCacheArgs, name="CacheSettings", exclude=WIRING, module=__name__,
    doc="ElastiCache for Valkey with vector search, for the gateway's semantic cache.",
    extra={"enabled": (bool, Field(default=False, description=(
        "Create the cache. Default: off (tier presets turn it on).")))})


KEYS = {"alb": AlbSettings, "cache": CacheSettings}
"""Top-level `genai-scale:<key>` config keys this section owns, each with its settings model."""

_CERT_PLACEHOLDER = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-0000-0000-000000000000"


def _alb_args(a, **wiring) -> AlbArgs:
    return args_from(a, AlbArgs, **wiring)


def _cache_args(c, **wiring) -> SemanticCacheArgs:
    return args_from(c, SemanticCacheArgs, **wiring)


def problems(cfg) -> list[Problem]:
    """Rules across keys, and every component rule in config terms (args built with placeholder wiring)."""
    out: list[Problem] = []
    a = cfg.alb
    if a.enabled:
        if not a.certificate_arn:
            out.append(missing("alb.certificateArn", "required when alb.enabled: the ARN of an issued ACM certificate "
                               f"in {cfg.region}; set genai-scale:alb.certificateArn in the stack file "
                               "(or alb.enabled: false)"))
        try:
            _alb_args(a, vpc_id="vpc", subnet_ids=["subnet"], node_security_group_id="sg", region=cfg.region,
                      certificate_arn=a.certificate_arn or _CERT_PLACEHOLDER.replace("us-east-1", cfg.region))
        except ArgsError as err:
            out.extend(translate(err, "alb"))
        try:
            args_from(a.lb_controller, LbControllerArgs, cluster_name="c", oidc_provider_arn="arn",
                      oidc_issuer="issuer", vpc_id="vpc", region=cfg.region)
        except ArgsError as err:
            out.extend(translate(err, "alb.lbController"))
        existing = getattr(getattr(cfg, "network", None), "existing", None)
        if not a.internal and existing is not None and not existing.public_subnet_ids:
            out.append(Problem("alb.internal", False, "true, or public subnets in network.existing.publicSubnetIds "
                               "(an internet-facing ALB needs public subnets)"))
    if cfg.cache.enabled:
        try:
            _cache_args(cfg.cache, vpc_id="vpc", subnet_ids=["subnet"], node_security_group_id="sg")
        except ArgsError as err:
            out.extend(translate(err, "cache"))
    return out


def build(ctx: BuildContext, cfg) -> None:
    """ALB + controller when ``alb.enabled``; the semantic cache when ``cache.enabled``."""
    a = cfg.alb
    if a.enabled:
        net, cluster = ctx.network, ctx.cluster
        subnets = net.private_subnet_ids if a.internal else net.public_subnet_ids
        ctx.alb = Alb("alb", _alb_args(a, vpc_id=net.vpc_id, subnet_ids=subnets,
                                       node_security_group_id=cluster.node_security_group_id, region=ctx.region,
                                       certificate_arn=a.certificate_arn, tags=ctx.tags))
        controller = LbController("lb-controller", args_from(
            a.lb_controller, LbControllerArgs, cluster_name=cluster.cluster_name,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer, vpc_id=net.vpc_id,
            region=ctx.region, tags=ctx.tags),
            opts=pulumi.ResourceOptions(provider=ctx.k8s_provider, depends_on=[cluster]))
        ctx.lb_controller = controller.release
        ctx.extras["lb_controller"] = controller
        ctx.export("albDnsName", ctx.alb.dns_name)
        ctx.export("albTargetGroupArns", {k: g.arn for k, g in ctx.alb.target_groups.items()})
    if cfg.cache.enabled:
        ctx.cache = SemanticCache("cache", _cache_args(
            cfg.cache, vpc_id=ctx.network.vpc_id, subnet_ids=ctx.network.private_subnet_ids,
            node_security_group_id=ctx.cluster.node_security_group_id, tags=ctx.tags))
        ctx.export("cacheEndpoint", ctx.cache.primary_endpoint)
        ctx.export("cacheReaderEndpoint", ctx.cache.reader_endpoint)
        ctx.export("cacheAuthSecretArn", ctx.cache.auth_secret_arn)
