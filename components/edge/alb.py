"""Alb: the Application Load Balancer in front of the serving tier, plus ``target_group_binding``.

Creates
    A security group for the load balancer (HTTPS 443 and HTTP 80 in from ``ingress_cidrs``, one rule per port and
    CIDR named ``<name>-in-https-<cidr>``/``<name>-in-http-redirect-<cidr>`` with ``/`` written ``-``, aliased to
    the positional ``...-<i>`` names they had before; out only to the serving ports of the node security group) and
    the matching ingress rules on the node security group; the ``aws.lb.LoadBalancer`` in the public
    (internet-facing) or private (internal) subnets; one IP target group per entry of ``targets`` (HTTP health check
    on the readiness path, least-outstanding-requests routing); an HTTPS listener on 443 with the ACM certificate
    and a TLS 1.3 policy forwarding to ``default_target``; an HTTP listener on 80 that only redirects to HTTPS; in
    domain mode (``domain`` + ``hosted_zone_id`` instead of ``certificate_arn``) an ``aws.acm.Certificate`` for the
    domain with DNS validation, its validation record in the hosted zone, an ``aws.acm.CertificateValidation`` that
    waits until the certificate is issued (the HTTPS listener depends on it) and an alias A record for the domain
    pointing at the load balancer; an S3 bucket for access logs (SSE-S3, public access blocked, TLS-only bucket
    policy, lifecycle expiry); optionally a WAFv2 web ACL (AWS common rules + known bad inputs + per-IP rate limit)
    with logging to CloudWatch. Pods join the target groups through ``TargetGroupBinding`` resources
    (:func:`target_group_binding`), reconciled by the AWS Load Balancer Controller
    (``components.edge.lb_controller``).
Defaults
    Internet-facing, TLS policy ``ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09``, idle timeout 600 s (token streams
    stay open while the model thinks), deregistration delay 300 s (in-flight streams finish before a pod leaves),
    invalid header fields dropped, desync mitigation ``strictest``, access logs kept 90 days, no WAF, no deletion
    protection.
Security posture
    TLS terminates at the ALB with a modern policy; port 80 answers only with a redirect; the ALB can reach nothing
    but the serving ports on the nodes; the log bucket is private, encrypted and TLS-only. In domain mode the alias
    record never overwrites an existing record of that name (only ACM's validation record may be overwritten).
Cost drivers
    ALB hours and LCUs (new connections, active connections - long streams hold them -, processed bytes, rule
    evaluations); WAF web ACL, rule and per-request charges; S3 storage for logs; CloudWatch Logs for WAF logs.
    Public ACM certificates and alias queries to the ALB are free; the hosted zone is billed monthly by Route 53.
Quotas and prerequisites
    An issued ACM certificate in the same Region (``certificate_arn``), or a Route 53 public hosted zone that holds
    ``domain`` and is delegated from its parent (ACM validates through public DNS; issuing takes minutes, and
    ``pulumi up`` waits for it); ACM certificates per account and Region (2500 by default); ALBs and target groups
    per Region; WAF web ACL capacity units (about 900 WCUs here: common rule set 700, known bad inputs 200, rate
    rule 2).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components.edge import _alb
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput, merge_tags
from components.foundation.eks_cluster import cluster_input_problems, from_cluster
from problems import Problem, missing

DEFAULT_SSL_POLICY = _alb.DEFAULT_SSL_POLICY
"""TLS policy of the HTTPS listener (TLS 1.3 with 1.2 fallback, no 1.0/1.1)."""


class AlbTargetArgs(ArgsModel):
    """One IP target group."""

    port: int = Field(default=8080, ge=1, le=65535)
    """Container port the pods serve on. Default: 8080 (the gateway)."""
    health_check_path: str = "/readyz"
    """HTTP readiness path probed on the pods. Default: ``/readyz``."""
    health_check_interval_seconds: int = Field(default=10, ge=5, le=300)
    """Seconds between probes. Default: 10."""
    healthy_threshold: int = Field(default=2, ge=2, le=10)
    """Consecutive successes to mark a pod healthy. Default: 2."""
    unhealthy_threshold: int = Field(default=3, ge=2, le=10)
    """Consecutive failures to mark a pod unhealthy. Default: 3."""


CLUSTER_INPUTS = {"vpc_id": "vpc_id", "node_security_group_id": "node_security_group_id"}
"""Args that default from ``cluster`` -> the EksCluster attribute they come from (the ALB's subnets do not: an
internet-facing ALB goes in the public subnets, the cluster has the private ones)."""


class AlbArgs(ArgsModel):
    """Typed arguments of :class:`Alb`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` the ALB serves: ``vpc_id`` and
    ``node_security_group_id`` default from it (explicit values win). Default: none (give both)."""
    vpc_id: PulumiInput = None
    """VPC of the load balancer and its target groups. Default: ``cluster.vpc_id`` (required without ``cluster``)."""
    subnet_ids: PulumiInput
    """Subnets of the load balancer: the public ones when internet-facing, the private ones when internal."""
    node_security_group_id: PulumiInput = None
    """Security group shared by the cluster nodes; it gets an ingress rule per serving port from the ALB. Default:
    ``cluster.node_security_group_id`` (required without ``cluster``)."""
    certificate_arn: str | None = None
    """ARN of an issued ACM certificate in the ALB's Region (``arn:aws:acm:<region>:<account>:certificate/<id>``) for
    the HTTPS listener. Default: none; give this or ``domain`` with ``hosted_zone_id``, not both."""
    domain: str | None = None
    """Host name the API is served at (``api.example.com``, at most 64 characters). With ``hosted_zone_id`` the ALB
    requests an ACM certificate for it (DNS validation, default key algorithm), writes the validation record into
    that zone, waits until the certificate is issued before the HTTPS listener uses it, and points an alias A record
    for the name at the load balancer. Default: none (give ``certificate_arn`` instead)."""
    hosted_zone_id: str | None = None
    """Route 53 hosted zone that holds ``domain`` (its id, e.g. ``Z0123456789ABCDEFGHIJ``): the validation and alias
    records go there. Required with ``domain``. Default: none."""
    region: str
    """Region of the stack; selects the access-log writer and must match the certificate's Region."""
    internal: bool = False
    """Internal scheme (reachable inside the VPC only) instead of internet-facing. Default: internet-facing."""
    ingress_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"])
    """IPv4 CIDRs allowed to connect on 443 (and 80 for the redirect). Default: anywhere (a public API)."""
    ssl_policy: str = _alb.DEFAULT_SSL_POLICY
    """HTTPS listener security policy; must be a TLS 1.3 policy (``ELBSecurityPolicy-TLS13-*``)."""
    idle_timeout_seconds: int = Field(default=600, ge=300, le=4000)
    """Seconds a connection may stay idle (no bytes either way) before the ALB closes it: 300-4000, long enough for
    the first token of a long prompt. Default: 600."""
    deregistration_delay_seconds: int = Field(default=300, ge=0, le=3600)
    """How long a leaving pod keeps its in-flight requests (streams) before the ALB cuts them. Default: 300."""
    deletion_protection: bool = False
    """Refuse deletion of the load balancer through the API. Default: off (tiers turn it on in scale)."""
    access_logs: bool = True
    """Write access logs to a dedicated S3 bucket. Default: on."""
    access_log_retention_days: int = Field(default=90, ge=1, le=3650)
    """Days before access-log objects expire. Default: 90."""
    force_destroy_logs: bool = False
    """Let ``pulumi destroy`` delete a non-empty log bucket. Default: off (logs outlive the stack)."""
    waf: bool = False
    """Attach a WAFv2 web ACL (AWS common rules, known bad inputs, per-IP rate limit). Default: off."""
    waf_rate_limit: int = Field(default=2000, ge=10, le=2_000_000_000)
    """Requests per client IP per 5 minutes before WAF blocks it. Default: 2000."""
    waf_log_retention_days: int = Field(default=30, ge=1)
    """Days WAF logs are kept in CloudWatch Logs. Default: 30."""
    targets: dict[str, AlbTargetArgs] = Field(default_factory=lambda: {"gateway": AlbTargetArgs()})
    """Target groups by name. Default: ``gateway`` on 8080 with ``/readyz``."""
    default_target: str = "gateway"
    """Target group the HTTPS listener forwards to. Default: ``gateway``."""
    desync_mitigation_mode: Literal["monitor", "defensive", "strictest"] = "strictest"
    """HTTP desync protection. Default: ``strictest`` (checkov CKV_AWS_328)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for every taggable child."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = cluster_input_problems(self, CLUSTER_INPUTS, required=CLUSTER_INPUTS)
        out += self._certificate_problems()
        if not self.ssl_policy.startswith(_alb.TLS13_POLICY_PREFIX):
            out.append(Problem("ssl_policy", self.ssl_policy,
                               f"a TLS 1.3 security policy ({_alb.TLS13_POLICY_PREFIX}*), e.g. {_alb.DEFAULT_SSL_POLICY}"))
        elif self.ssl_policy.startswith(_alb.LEGACY_MINIMUM_TLS13_POLICIES):
            out.append(Problem("ssl_policy", self.ssl_policy,
                               "still accepts TLS 1.0/1.1 clients; use a TLS13-1-2 or TLS13-1-3 policy, e.g. "
                               f"{_alb.DEFAULT_SSL_POLICY}"))
        if self.default_target not in self.targets:
            out.append(Problem("default_target", self.default_target,
                               "one of the targets: " + (", ".join(sorted(self.targets)) or "(none defined)")))
        for i, cidr in enumerate(self.ingress_cidrs):
            if not _is_ipv4_cidr(cidr):
                out.append(Problem(f"ingress_cidrs[{i}]", cidr, "an IPv4 CIDR such as 203.0.113.0/24"))
            elif cidr in self.ingress_cidrs[:i]:
                out.append(Problem(f"ingress_cidrs[{i}]", cidr,
                                   f"listed already as ingress_cidrs[{self.ingress_cidrs.index(cidr)}]"))
        if not self.ingress_cidrs:
            out.append(Problem("ingress_cidrs", [], "at least one CIDR (an ALB nobody can reach serves nothing)"))
        for tname, t in self.targets.items():
            if not t.health_check_path.startswith("/"):
                out.append(Problem(f"targets.{tname}.health_check_path", t.health_check_path, "a path starting with '/'"))
        return out

    def _certificate_problems(self) -> list[Problem]:
        """Exactly one certificate source: ``certificate_arn``, or ``domain`` with ``hosted_zone_id``."""
        out: list[Problem] = []
        domain_mode = self.domain is not None or self.hosted_zone_id is not None
        if self.certificate_arn is not None and domain_mode:
            given = "domain" if self.domain is not None else "hosted_zone_id"
            out.append(Problem("certificate_arn", self.certificate_arn,
                               f"either certificate_arn or domain with hosted_zone_id, not both ({given} is set too)",
                               (given,)))
        elif self.certificate_arn is None and not domain_mode:
            out.append(missing("certificate_arn", "required without domain: the HTTPS listener needs a certificate; "
                               "give certificate_arn, or domain with hosted_zone_id to have one issued",
                               ("domain", "hosted_zone_id")))
        if self.certificate_arn is not None:
            m = _alb.ACM_ARN.match(self.certificate_arn)
            if not m:
                out.append(Problem("certificate_arn", self.certificate_arn,
                                   "an ACM certificate ARN arn:aws:acm:<region>:<account>:certificate/<uuid>"))
            elif m["region"] != self.region:
                out.append(Problem("certificate_arn", self.certificate_arn, f"a certificate in the ALB's Region "
                                   f"{self.region} (ALBs use regional ACM certificates)"))
        if self.domain is not None:
            if (why := _alb.domain_problem(self.domain)) is not None:
                out.append(Problem("domain", self.domain, why))
            if self.hosted_zone_id is None:
                out.append(missing("hosted_zone_id", f"required with domain: the Route 53 hosted zone that holds "
                                   f"{self.domain} (the validation and alias records go there)", ("domain",)))
        if self.hosted_zone_id is not None:
            if (why := _alb.hosted_zone_problem(self.hosted_zone_id)) is not None:
                out.append(Problem("hosted_zone_id", self.hosted_zone_id, why))
            if self.domain is None:
                out.append(missing("domain", "required with hosted_zone_id: the host name to serve the API at",
                                   ("hosted_zone_id",)))
        return out


def _is_ipv4_cidr(text: str) -> bool:
    import ipaddress

    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return net.version == 4


class Alb(pulumi.ComponentResource):
    """The serving tier's Application Load Balancer; see the module docstring."""

    load_balancer: aws.lb.LoadBalancer
    """The Application Load Balancer (HTTPS listener, HTTP redirect, access logs)."""
    dns_name: pulumi.Output[str]
    """DNS name to point the API's CNAME/alias record at."""
    arn: pulumi.Output[str]
    """ARN of the load balancer (for WAF associations and CloudWatch alarms)."""
    security_group_id: pulumi.Output[str]
    """The ALB's own security group."""
    target_groups: dict[str, aws.lb.TargetGroup]
    """IP target groups by name (``gateway`` at least); bind pods with :func:`target_group_binding`."""
    https_listener: aws.lb.Listener
    """The HTTPS (443) listener with the TLS 1.3 policy; its default action forwards to the default target group."""
    certificate: aws.acm.Certificate | None
    """The ACM certificate issued for ``domain`` (DNS-validated). None when ``certificate_arn`` is given."""
    certificate_arn: pulumi.Output[str]
    """ARN of the certificate the HTTPS listener uses: the given ``certificate_arn``, or the validated certificate of
    ``domain``."""
    domain: str | None
    """The API's host name (``domain``), whose alias record points at the ALB. None when ``certificate_arn`` is
    given (point your own DNS name at ``dns_name``)."""
    url: pulumi.Output[str] | None
    """``https://<domain>``, the API's base URL, in domain mode. None when ``certificate_arn`` is given."""
    web_acl: aws.wafv2.WebAcl | None
    """The WAFv2 web ACL in front of the ALB (``waf``). None when WAF is off."""
    log_bucket: aws.s3.Bucket | None
    """The S3 bucket receiving the access logs (``access_logs``). None when access logs are off."""

    def __init__(self, name: str, args: AlbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}Alb", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = merge_tags(args.tags, {"genai-scale/component": "alb"})

        vpc_id = from_cluster(args.vpc_id, args.cluster, "vpc_id")
        node_sg = from_cluster(args.node_security_group_id, args.cluster, "node_security_group_id")
        sg = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id, description=f"ALB {name}: HTTPS in, serving "
                                   "ports to the nodes out", tags=tags, opts=child)
        for i, cidr in enumerate(args.ingress_cidrs):
            for port, what in ((443, "https"), (80, "http-redirect")):
                rule = f"{name}-in-{what}-{cidr.replace('/', '-')}"
                aws.vpc.SecurityGroupIngressRule(rule, security_group_id=sg.id, ip_protocol="tcp",
                                                 from_port=port, to_port=port, cidr_ipv4=cidr,
                                                 description=f"clients ({what})", tags=tags,
                                                 opts=pulumi.ResourceOptions(parent=self, aliases=[
                                                     pulumi.Alias(name=f"{name}-in-{what}-{i}")]))
        for port in sorted({t.port for t in args.targets.values()}):
            aws.vpc.SecurityGroupEgressRule(f"{name}-out-{port}", security_group_id=sg.id, ip_protocol="tcp",
                                            from_port=port, to_port=port,
                                            referenced_security_group_id=node_sg,
                                            description=f"serving port {port} on the nodes", tags=tags, opts=child)
            aws.vpc.SecurityGroupIngressRule(f"{name}-nodes-in-{port}", security_group_id=node_sg,
                                             ip_protocol="tcp", from_port=port, to_port=port,
                                             referenced_security_group_id=sg.id,
                                             description=f"ALB {name} to serving port {port}", tags=tags, opts=child)

        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        bucket = None
        lb_depends: list[pulumi.Resource] = []
        access_logs = None
        if args.access_logs:
            bucket = aws.s3.Bucket(f"{name}-logs", force_destroy=args.force_destroy_logs, tags=tags, opts=child)
            aws.s3.BucketOwnershipControls(f"{name}-logs", bucket=bucket.id,
                                           rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
            pab = aws.s3.BucketPublicAccessBlock(f"{name}-logs", bucket=bucket.id, block_public_acls=True,
                                                 block_public_policy=True, ignore_public_acls=True,
                                                 restrict_public_buckets=True, opts=child)
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-logs", bucket=bucket.id,
                rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-logs", bucket=bucket.id,
                rules=[{"id": "expire-access-logs", "status": "Enabled", "filter": {"prefix": f"{_alb.ACCESS_LOG_PREFIX}/"},
                        "expiration": {"days": args.access_log_retention_days},
                        "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}], opts=child)
            policy = aws.s3.BucketPolicy(
                f"{name}-logs", bucket=bucket.id,
                policy=pulumi.Output.all(partition.partition, identity.account_id, bucket.arn).apply(
                    lambda a: json.dumps(_alb.access_log_bucket_policy(partition=a[0], region=args.region,
                                                                       account=a[1], bucket_arn=a[2]))),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[pab]))
            lb_depends.append(policy)
            access_logs = {"bucket": bucket.id, "prefix": _alb.ACCESS_LOG_PREFIX, "enabled": True}

        lb = aws.lb.LoadBalancer(
            f"{name}-lb", load_balancer_type="application", internal=args.internal, subnets=args.subnet_ids,
            security_groups=[sg.id], idle_timeout=args.idle_timeout_seconds, drop_invalid_header_fields=True,
            desync_mitigation_mode=args.desync_mitigation_mode, enable_deletion_protection=args.deletion_protection,
            enable_http2=True, access_logs=access_logs, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=lb_depends))

        groups: dict[str, aws.lb.TargetGroup] = {}
        for tname, t in sorted(args.targets.items()):
            groups[tname] = aws.lb.TargetGroup(
                f"{name}-{tname}", target_type="ip", protocol="HTTP", protocol_version="HTTP1", port=t.port,
                vpc_id=vpc_id, deregistration_delay=args.deregistration_delay_seconds,
                load_balancing_algorithm_type="least_outstanding_requests",
                health_check={"enabled": True, "protocol": "HTTP", "path": t.health_check_path, "port": "traffic-port",
                              "matcher": "200", "interval": t.health_check_interval_seconds, "timeout": 5,
                              "healthy_threshold": t.healthy_threshold, "unhealthy_threshold": t.unhealthy_threshold},
                tags=merge_tags(tags, {"genai-scale/target": tname}), opts=child)

        certificate = None
        certificate_arn: Any = pulumi.Output.from_input(args.certificate_arn)
        https_opts = child
        if args.domain is not None:
            certificate, validation = _domain_certificate(self, name, args, tags)
            certificate_arn = validation.certificate_arn
            https_opts = pulumi.ResourceOptions(parent=self, depends_on=[validation])
            aws.route53.Record(f"{name}-alias-a", zone_id=args.hosted_zone_id, name=args.domain, type="A",
                               aliases=[{"name": lb.dns_name, "zone_id": lb.zone_id,
                                         "evaluate_target_health": True}], opts=child)
        https = aws.lb.Listener(
            f"{name}-https", load_balancer_arn=lb.arn, port=443, protocol="HTTPS", ssl_policy=args.ssl_policy,
            certificate_arn=certificate_arn,
            default_actions=[{"type": "forward", "target_group_arn": groups[args.default_target].arn}],
            tags=tags, opts=https_opts)
        aws.lb.Listener(
            f"{name}-http", load_balancer_arn=lb.arn, port=80, protocol="HTTP",
            default_actions=[{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443",
                                                               "status_code": "HTTP_301"}}],
            tags=tags, opts=child)

        acl = None
        if args.waf:
            metric = _alb.metric_name(name)
            acl = aws.wafv2.WebAcl(
                f"{name}-waf", scope="REGIONAL", default_action={"allow": {}},
                rules=_alb.waf_rules(metric, args.waf_rate_limit),
                visibility_config={"cloudwatch_metrics_enabled": True, "metric_name": metric,
                                   "sampled_requests_enabled": True},
                description=f"genai-scale {name}", tags=tags, opts=child)
            aws.wafv2.WebAclAssociation(f"{name}-waf", resource_arn=lb.arn, web_acl_arn=acl.arn, opts=child)
            waf_logs = aws.cloudwatch.LogGroup(f"{name}-waf-logs", name_prefix=f"aws-waf-logs-{name}-",
                                               retention_in_days=args.waf_log_retention_days, tags=tags, opts=child)
            aws.wafv2.WebAclLoggingConfiguration(
                f"{name}-waf", resource_arn=acl.arn, log_destination_configs=[waf_logs.arn],
                redacted_fields=[{"single_header": {"name": "authorization"}}], opts=child)

        self.load_balancer = lb
        self.dns_name = lb.dns_name
        self.arn = lb.arn
        self.security_group_id = sg.id
        self.target_groups = groups
        self.https_listener = https
        self.certificate = certificate
        self.certificate_arn = certificate_arn
        self.domain = args.domain
        self.url = pulumi.Output.from_input(f"https://{args.domain}") if args.domain is not None else None
        self.web_acl = acl
        self.log_bucket = bucket
        self.register_outputs({"dns_name": lb.dns_name, "arn": lb.arn, "security_group_id": sg.id,
                               "target_group_arns": {k: g.arn for k, g in groups.items()},
                               "certificate_arn": certificate_arn, "url": self.url})


def _domain_certificate(parent: Alb, name: str, args: AlbArgs, tags: dict[str, str]
                        ) -> tuple[aws.acm.Certificate, aws.acm.CertificateValidation]:
    """An ACM certificate for ``args.domain``, its DNS validation record in ``args.hosted_zone_id`` and the
    validation that waits until ACM has issued it (``pulumi up`` blocks there, typically a few minutes)."""
    child = pulumi.ResourceOptions(parent=parent)
    cert = aws.acm.Certificate(f"{name}-cert", domain_name=args.domain, validation_method="DNS", tags=tags,
                               opts=child)
    # One record per domain name on the certificate (one: the certificate names only ``domain``); the record comes
    # from the validation option ACM returns for that name.
    wanted = cert.domain_validation_options.apply(lambda opts: _alb.validation_record(opts, args.domain))
    record = aws.route53.Record(
        f"{name}-cert-validation", zone_id=args.hosted_zone_id, name=wanted["name"], type=wanted["type"],
        records=[wanted["value"]], ttl=_alb.VALIDATION_RECORD_TTL, allow_overwrite=True, opts=child)
    validation = aws.acm.CertificateValidation(f"{name}-cert", certificate_arn=cert.arn,
                                               validation_record_fqdns=[record.fqdn], opts=child)
    return cert, validation


def target_group_binding(name: str, *, target_group_arn: PulumiInput, service_name: str, service_port: int | str,
                         namespace: str, opts: pulumi.ResourceOptions | None = None,
                         target_type: Literal["ip", "instance"] = "ip",
                         labels: dict[str, str] | None = None) -> k8s.apiextensions.CustomResource:
    """A ``TargetGroupBinding`` (elbv2.k8s.aws/v1beta1) that registers a Service's pods in an existing target group.

    The AWS Load Balancer Controller reconciles it; pass ``opts`` with the cluster's Kubernetes provider and
    ``depends_on=[ctx.lb_controller]`` (its webhook must be running). No ``spec.networking`` is set: the security
    group rules are owned by :class:`Alb`, so the controller does not edit security groups.
    """
    return k8s.apiextensions.CustomResource(
        name, api_version="elbv2.k8s.aws/v1beta1", kind="TargetGroupBinding",
        metadata={"name": name, "namespace": namespace,
                  "labels": {"app.kubernetes.io/managed-by": "genai-scale", **(labels or {})}},
        spec=_tgb_spec(target_group_arn, service_name, service_port, target_type),
        opts=opts)


def _tgb_spec(target_group_arn: Any, service_name: str, service_port: int | str, target_type: str) -> dict[str, Any]:
    return {"serviceRef": {"name": service_name, "port": service_port}, "targetGroupARN": target_group_arn,
            "targetType": target_type}
