"""Stack section: edge. The Application Load Balancer (+ AWS Load Balancer Controller) and the Valkey semantic cache.

Config keys: ``genai-scale:alb`` and ``genai-scale:cache``. ``build`` puts ``ctx.alb`` (:class:`components.edge.alb.Alb`),
``ctx.lb_controller`` (the controller's Helm release: TargetGroupBindings ``depends_on`` it) and ``ctx.cache``
(:class:`components.edge.semantic_cache.SemanticCache`) on the context, or leaves them None when switched off.
"""

from __future__ import annotations

from typing import Literal

import pulumi
from pydantic import Field

from components import versions

from components.errors import ArgsError

from problems import Problem, missing
from components.edge.alb import DEFAULT_SSL_POLICY, Alb, AlbArgs, AlbTargetArgs
from components.edge.lb_controller import LbController, LbControllerArgs
from components.edge.semantic_cache import MaxmemoryPolicy, SemanticCache, SemanticCacheArgs
from infra.sections.base import BuildContext, SettingsModel, translate


class AlbTargetSettings(SettingsModel):
    """One IP target group (the map key is its name)."""

    port: int = 8080
    """Container port of the pods. Default: 8080 (the gateway)."""
    health_check_path: str = "/readyz"
    """Readiness path. Default: /readyz."""


class LbControllerSettings(SettingsModel):
    replicas: int = 2
    """Controller replicas. Default: 2."""
    chart_version: str = versions.LB_CONTROLLER_CHART.version
    """aws-load-balancer-controller chart version. Default: the pinned one."""


class AlbSettings(SettingsModel):
    """The public (or internal) entry point of the serving tier."""

    enabled: bool = False
    """Create the ALB and the AWS Load Balancer Controller. Default: off (tier presets turn it on)."""
    certificate_arn: str | None = None
    """ACM certificate for HTTPS, issued in the stack's Region. Required when enabled; set it in the stack file
    (``genai-scale:alb: {certificateArn: arn:aws:acm:...}``), it is account-specific."""
    internal: bool = False
    """Internal ALB in the private subnets instead of internet-facing in the public ones. Default: internet-facing."""
    ingress_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"])
    """Client CIDRs allowed on 443/80. Default: anywhere."""
    ssl_policy: str = DEFAULT_SSL_POLICY
    """TLS 1.3 listener policy. Default: ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09."""
    idle_timeout_seconds: int = 600
    """Idle timeout (300-4000 s). Default: 600."""
    deregistration_delay_seconds: int = 300
    """Drain time for leaving pods (0-3600 s). Default: 300."""
    deletion_protection: bool = False
    """ALB deletion protection. Default: off."""
    access_logs: bool = True
    """Access logs to S3. Default: on."""
    access_log_retention_days: int = 90
    """Access-log expiry in days. Default: 90."""
    force_destroy_logs: bool = False
    """Allow destroying a non-empty log bucket. Default: off."""
    waf: bool = False
    """WAFv2 web ACL. Default: off."""
    waf_rate_limit: int = 2000
    """Requests per IP per 5 minutes before WAF blocks. Default: 2000."""
    targets: dict[str, AlbTargetSettings] = Field(default_factory=lambda: {"gateway": AlbTargetSettings()})
    """Target groups. Default: gateway on 8080."""
    lb_controller: LbControllerSettings = Field(default_factory=LbControllerSettings)
    """AWS Load Balancer Controller settings."""


class CacheSettings(SettingsModel):
    """ElastiCache for Valkey with vector search, for the gateway's semantic cache."""

    enabled: bool = False
    """Create the cache. Default: off (tier presets turn it on)."""
    engine_version: str = versions.VALKEY_ENGINE.version
    """Valkey version with vector search (8.2, 9.0, 9.1). Default: pinned 8.2."""
    serverless: bool = False
    """Must stay false (vector search needs node-based clusters)."""
    node_type: str = "cache.t4g.medium"
    """Node type. Default: cache.t4g.medium."""
    replicas: int = 0
    """Read replicas (0-5). Default: 0."""
    automatic_failover: bool = False
    """Automatic failover (needs replicas). Default: off."""
    multi_az: bool = False
    """Multi-AZ (needs automatic failover). Default: off."""
    auth: Literal["token", "rbac"] = "token"
    """token or rbac. Default: token."""
    maxmemory_policy: MaxmemoryPolicy = "volatile-lru"
    """Eviction policy. Default: volatile-lru."""
    reserved_memory_percent: int = 25
    """Reserved memory percent. Default: 25."""
    snapshot_retention_days: int = 1
    """Daily snapshots kept. Default: 1."""
    snapshot_window: str = "03:00-04:00"
    """UTC snapshot window. Default: 03:00-04:00."""
    maintenance_window: str = "sun:05:00-sun:06:00"
    """UTC maintenance window. Default: sun:05:00-sun:06:00."""
    slow_log_retention_days: int = 30
    """Slow-log retention in days. Default: 30."""
    final_snapshot: bool = False
    """Final snapshot on deletion. Default: off."""
    apply_immediately: bool = False
    """Apply changes immediately. Default: off."""


KEYS = {"alb": AlbSettings, "cache": CacheSettings}
"""Top-level `genai-scale:<key>` config keys this section owns, each with its settings model."""

_CERT_PLACEHOLDER = "arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-0000-0000-000000000000"


def _alb_args(a: AlbSettings, **wiring) -> AlbArgs:
    return AlbArgs(
        internal=a.internal, ingress_cidrs=list(a.ingress_cidrs), ssl_policy=a.ssl_policy,
        idle_timeout_seconds=a.idle_timeout_seconds, deregistration_delay_seconds=a.deregistration_delay_seconds,
        deletion_protection=a.deletion_protection, access_logs=a.access_logs,
        access_log_retention_days=a.access_log_retention_days, force_destroy_logs=a.force_destroy_logs, waf=a.waf,
        waf_rate_limit=a.waf_rate_limit,
        targets={k: AlbTargetArgs(port=t.port, health_check_path=t.health_check_path) for k, t in a.targets.items()},
        **wiring)


def _cache_args(c: CacheSettings, **wiring) -> SemanticCacheArgs:
    return SemanticCacheArgs(
        engine_version=c.engine_version, serverless=c.serverless, node_type=c.node_type, replicas=c.replicas,
        automatic_failover=c.automatic_failover, multi_az=c.multi_az, auth=c.auth, maxmemory_policy=c.maxmemory_policy,
        reserved_memory_percent=c.reserved_memory_percent, snapshot_retention_days=c.snapshot_retention_days,
        snapshot_window=c.snapshot_window, maintenance_window=c.maintenance_window,
        slow_log_retention_days=c.slow_log_retention_days, final_snapshot=c.final_snapshot,
        apply_immediately=c.apply_immediately, **wiring)


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
            LbControllerArgs(cluster_name="c", oidc_provider_arn="arn", oidc_issuer="issuer", vpc_id="vpc",
                             region=cfg.region, replicas=a.lb_controller.replicas,
                             chart_version=a.lb_controller.chart_version)
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
        controller = LbController("lb-controller", LbControllerArgs(
            cluster_name=cluster.cluster_name, oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer, vpc_id=net.vpc_id, region=ctx.region,
            replicas=a.lb_controller.replicas, chart_version=a.lb_controller.chart_version, tags=ctx.tags),
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
