"""Stack section: edge. The Application Load Balancer (+ AWS Load Balancer Controller) and the Valkey semantic cache.

Config keys: ``genai-scale:alb`` and ``genai-scale:cache``. ``build`` puts ``ctx.alb`` (:class:`components.edge.alb.Alb`),
``ctx.lb_controller`` (the controller's Helm release: TargetGroupBindings ``depends_on`` it) and ``ctx.cache``
(:class:`components.edge.semantic_cache.SemanticCache`) on the context, or leaves them None when switched off.

The ALB needs a certificate: ``alb.certificateArn`` (an issued ACM certificate), or ``alb.domain`` with
``alb.hostedZoneId`` (the ALB has one issued and validated in that Route 53 zone). With neither, the stack has no
public entry point: no ALB and no load balancer controller; the gateway keeps its ClusterIP Service (reached inside
the cluster or through ``kubectl port-forward``), and the plan's notes say so and how to add a domain later.
"""

from __future__ import annotations


import pulumi
from pydantic import Field


from components.errors import ArgsError

from problems import Problem
from components.edge.alb import Alb, AlbArgs
from components.edge.lb_controller import LbController, LbControllerArgs
from components.edge.semantic_cache import SemanticCache, SemanticCacheArgs
from infra.sections.base import BuildContext, args_from, derive_settings, translate


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


def has_certificate(a) -> bool:
    """True when the ALB settings name a certificate source: ``certificateArn``, or ``domain`` / ``hostedZoneId``
    (a half-given domain mode is a problem, reported by the component rules, not a silent "no ALB")."""
    return a.certificate_arn is not None or a.domain is not None or a.hosted_zone_id is not None


def no_public_entry_note(cfg) -> str:
    """The plan note for a stack without an ALB: why, what the user gets instead, how to add a domain later."""
    why = ("genai-scale:alb.enabled is false" if not cfg.alb.enabled else
           "genai-scale:alb names no certificate (neither domain with hostedZoneId nor certificateArn)")
    g = getattr(cfg, "gateway", None)
    if g is not None and g.enabled:
        reach = ("The gateway keeps its ClusterIP Service: reach it from inside the cluster "
                 f"(http://gateway.{g.namespace}.svc:8080), or from your machine with "
                 f"`kubectl -n {g.namespace} port-forward svc/gateway 8080:8080` (then http://localhost:8080).")
    else:
        reach = "Nothing is reachable from outside the cluster."
    return (f"No public entry point: {why}, so the stack creates no ALB and no AWS Load Balancer Controller. {reach} "
            "To add a public HTTPS endpoint later, set genai-scale:alb.domain (e.g. api.example.com) and "
            "genai-scale:alb.hostedZoneId (the Route 53 hosted zone that holds it) in the stack file: the next "
            "`pulumi up` creates the ALB, has ACM issue a certificate validated through that zone, and points the "
            "name at the ALB (or set genai-scale:alb.certificateArn to use a certificate you already have).")


def problems(cfg) -> list[Problem]:
    """Rules across keys, and every component rule in config terms (args built with placeholder wiring)."""
    out: list[Problem] = []
    a = cfg.alb
    if a.enabled:
        # Without any certificate source there is no ALB (see the module docstring); its other settings are still
        # checked, with a placeholder certificate, so a mistake shows before a domain is added.
        cert = {} if has_certificate(a) else {"certificate_arn": _CERT_PLACEHOLDER.replace("us-east-1", cfg.region)}
        try:
            _alb_args(a, vpc_id="vpc", subnet_ids=["subnet"], node_security_group_id="sg", region=cfg.region, **cert)
        except ArgsError as err:
            out.extend(translate(err, "alb"))
        try:
            args_from(a.lb_controller, LbControllerArgs, cluster_name="c", oidc_provider_arn="arn",
                      oidc_issuer="issuer", vpc_id="vpc", region=cfg.region)
        except ArgsError as err:
            out.extend(translate(err, "alb.lbController"))
        existing = getattr(getattr(cfg, "network", None), "existing", None)
        if has_certificate(a) and not a.internal and existing is not None and not existing.public_subnet_ids:
            out.append(Problem("alb.internal", False, "true, or public subnets in network.existing.publicSubnetIds "
                               "(an internet-facing ALB needs public subnets)"))
    if cfg.cache.enabled:
        try:
            _cache_args(cfg.cache, vpc_id="vpc", subnet_ids=["subnet"], node_security_group_id="sg")
        except ArgsError as err:
            out.extend(translate(err, "cache"))
    return out


EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
"""Reserved for documentation (RFC 2606): a stack that names one still holds the shipped example values."""


def example_values_note(a) -> str | None:
    """A plan note when ``alb.domain`` / ``alb.hostedZoneId`` are still the shipped example values."""
    domain, zone = getattr(a, "domain", None) or "", getattr(a, "hosted_zone_id", None) or ""
    reserved = domain == "example.com" or domain.endswith(tuple("." + d for d in EXAMPLE_DOMAINS)) \
        or domain in EXAMPLE_DOMAINS
    if not (reserved or "EXAMPLE" in zone):
        return None
    return (f"genai-scale:alb.domain ({domain!r}) and genai-scale:alb.hostedZoneId ({zone!r}) are the shipped example "
            "values: replace them with your domain and the Route 53 hosted zone that holds it before `pulumi up` "
            "(certificate validation waits for DNS records in that zone and fails when the zone does not exist).")


def build(ctx: BuildContext, cfg) -> None:
    """ALB + controller when ``alb.enabled`` and a certificate source is set (else a plan note says what the stack
    offers instead); the semantic cache when ``cache.enabled``."""
    a = cfg.alb
    if not (a.enabled and has_certificate(a)):
        ctx.note(no_public_entry_note(cfg))
    else:
        if (note := example_values_note(a)) is not None:
            ctx.note(note)
        net, cluster = ctx.network, ctx.cluster
        subnets = net.private_subnet_ids if a.internal else net.public_subnet_ids
        ctx.alb = Alb("alb", _alb_args(a, vpc_id=net.vpc_id, subnet_ids=subnets,
                                       node_security_group_id=cluster.node_security_group_id, region=ctx.region,
                                       tags=ctx.tags))
        controller = LbController("lb-controller", args_from(
            a.lb_controller, LbControllerArgs, cluster_name=cluster.cluster_name,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer, vpc_id=net.vpc_id,
            region=ctx.region, tags=ctx.tags),
            opts=pulumi.ResourceOptions(provider=ctx.k8s_provider, depends_on=[cluster]))
        ctx.lb_controller = controller.release
        ctx.extras["lb_controller"] = controller
        ctx.export("albDnsName", ctx.alb.dns_name)
        ctx.export("albTargetGroupArns", {k: g.arn for k, g in ctx.alb.target_groups.items()})
        if ctx.alb.url is not None:
            ctx.export("apiUrl", ctx.alb.url)
    if cfg.cache.enabled:
        ctx.cache = SemanticCache("cache", _cache_args(
            cfg.cache, vpc_id=ctx.network.vpc_id, subnet_ids=ctx.network.private_subnet_ids,
            node_security_group_id=ctx.cluster.node_security_group_id, tags=ctx.tags))
        ctx.export("cacheEndpoint", ctx.cache.primary_endpoint)
        ctx.export("cacheReaderEndpoint", ctx.cache.reader_endpoint)
        ctx.export("cacheAuthSecretArn", ctx.cache.auth_secret_arn)
