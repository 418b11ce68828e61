"""Security rules for the edge and artefacts: ALB listeners and TLS, WAF on public load balancers (also ALBs the Load
Balancer Controller makes from an Ingress), S3 bucket public-access blocks, ECR tag immutability and scanning."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import Severity

from policies._props import as_list, as_map, get, peek, truthy
from policies._rule import Rule, Subject, resource_policy, stack_policy

LB_TYPES = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})
LISTENER_TYPES = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"

# --- ALB -----------------------------------------------------------------------------------------------------------------

TLS12_POLICY = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)(-|$)")
"""ELB security policies that accept TLS 1.2 and newer only (ALB "Security policies" page, 2026-11). The API default
when sslPolicy is unset is ELBSecurityPolicy-2016-08, which accepts TLS 1.0."""
ALB_ANNOTATION = "alb.ingress.kubernetes.io/"


def _ingress_annotations(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Annotations of an Ingress served by the AWS Load Balancer Controller, else None."""
    ann = as_map(get(props, "metadata.annotations"))
    cls = get(props, "spec.ingressClassName") or (ann["kubernetes.io/ingress.class"]
                                                    if "kubernetes.io/ingress.class" in list(ann) else None)
    if cls == "alb" or any(str(k).startswith(ALB_ANNOTATION) for k in list(ann)):
        return ann
    return None


def _ann(ann: Mapping[str, Any], key: str) -> str | None:
    full = ALB_ANNOTATION + key
    return str(ann[full]) if full in list(ann) else None


def _listen_protocols(ann: Mapping[str, Any]) -> set[str]:
    raw = _ann(ann, "listen-ports")
    if raw is None:
        return {"HTTP"}  # controller default: HTTP 80 only
    try:
        return {str(k).upper() for entry in json.loads(raw) for k in entry}
    except (ValueError, TypeError, AttributeError):
        return set()


@resource_policy(Rule(
    id="alb-http-redirects-to-https",
    title="ALB HTTP listeners only redirect to HTTPS",
    description="An HTTP listener must have exactly one default action: a redirect to HTTPS.",
    concern="security", severity=Severity.HIGH,
    remediation="Make the port-80 listener's only default action {type: 'redirect', redirect: {protocol: 'HTTPS', "
                "port: '443', statusCode: 'HTTP_301'}}; on an Ingress set alb.ingress.kubernetes.io/ssl-redirect.",
    checkov=("CKV_AWS_2", "CKV2_AWS_20"),
), types={*LISTENER_TYPES, INGRESS})
def alb_http_redirect(s: Subject, cfg: dict) -> Iterable[str]:
    if s.type == INGRESS:
        ann = _ingress_annotations(s.props)
        if ann is not None and "HTTP" in _listen_protocols(ann) and _ann(ann, "ssl-redirect") is None:
            yield "the Ingress listens on HTTP without alb.ingress.kubernetes.io/ssl-redirect: requests are served in plaintext"
        return
    if get(s.props, "protocol") != "HTTP":
        return
    actions = as_list(get(s.props, "defaultActions"))
    ok = (len(actions) == 1 and get(actions[0], "type") == "redirect"
          and get(actions[0], "redirect.protocol") == "HTTPS")
    if not ok:
        kinds = ", ".join(str(get(a, "type")) for a in actions) or "none"
        yield f"HTTP listener's default actions are [{kinds}], not a single redirect to HTTPS"


@resource_policy(Rule(
    id="alb-tls-1-2-minimum",
    title="ALB TLS policy allows TLS 1.2+ only",
    description="HTTPS/TLS listeners must use an ELB security policy that rejects TLS 1.0 and 1.1.",
    concern="security", severity=Severity.HIGH,
    remediation="Set sslPolicy='ELBSecurityPolicy-TLS13-1-2-2021-06' (or a TLS13-1-2/TLS13-1-3 PQ/FIPS variant); "
                "unset means ELBSecurityPolicy-2016-08 (TLS 1.0).",
    checkov=("CKV_AWS_103",),
), types={*LISTENER_TYPES, INGRESS})
def alb_tls(s: Subject, cfg: dict) -> Iterable[str]:
    if s.type == INGRESS:
        ann = _ingress_annotations(s.props)
        if ann is None or "HTTPS" not in _listen_protocols(ann):
            return
        policy = _ann(ann, "ssl-policy")
        if policy is None or not TLS12_POLICY.match(policy):
            shown = repr(policy) if policy else "unset (controller default ELBSecurityPolicy-2016-08)"
            yield f"alb.ingress.kubernetes.io/ssl-policy is {shown}: TLS 1.0/1.1 would be accepted"
        return
    if get(s.props, "protocol") not in ("HTTPS", "TLS"):
        return
    policy = get(s.props, "sslPolicy")
    if not isinstance(policy, str) or not TLS12_POLICY.match(policy):
        shown = repr(policy) if policy else "unset (API default ELBSecurityPolicy-2016-08)"
        yield f"sslPolicy is {shown}: TLS 1.0/1.1 would be accepted"


@resource_policy(Rule(
    id="alb-drop-invalid-headers",
    title="ALB drops invalid HTTP headers",
    description="Application load balancers must drop header fields with invalid names (request smuggling defence).",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set dropInvalidHeaderFields=true (Ingress: load-balancer-attributes "
                "routing.http.drop_invalid_header_fields.enabled=true).",
    checkov=("CKV_AWS_131",),
), types={*LB_TYPES, INGRESS})
def alb_drop_headers(s: Subject, cfg: dict) -> Iterable[str]:
    if s.type == INGRESS:
        ann = _ingress_annotations(s.props)
        if ann is not None and "routing.http.drop_invalid_header_fields.enabled=true" not in (
                _ann(ann, "load-balancer-attributes") or "").replace(" ", ""):
            yield "the Ingress's load balancer keeps invalid header fields (routing.http.drop_invalid_header_fields.enabled not true)"
        return
    if (get(s.props, "loadBalancerType") or "application") != "application":
        return
    if not truthy(get(s.props, "dropInvalidHeaderFields")):
        yield "dropInvalidHeaderFields is not true"


WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"


@stack_policy(Rule(
    id="alb-waf-on-public",
    title="Public ALB protected by WAF where the tier requires it",
    description="In a tier that requires it (tier fact publicAlbWaf) an internet-facing ALB must have a WAFv2 web "
                "ACL associated.",
    concern="security", severity=Severity.HIGH,
    remediation="Create an aws.wafv2.WebAcl (AWS managed common rules plus a rate-based rule) and an "
                "aws.wafv2.WebAclAssociation with resourceArn=<alb arn> (Ingress: alb.ingress.kubernetes.io/wafv2-acl-arn).",
    checkov=("CKV2_AWS_28",),
    config={"required": {"type": "boolean", "default": True,
                         "description": "Internet-facing ALBs must have a WAFv2 web ACL (the tier's publicAlbWaf)."}},
    facts={"required": "publicAlbWaf"},
))
def alb_waf(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if not cfg["required"]:
        return
    assocs = [r for r in resources if r.resource_type == WAF_ASSOCIATION]
    for r in resources:
        if r.resource_type in LB_TYPES:
            if (get(r.props, "loadBalancerType") or "application") != "application" or truthy(get(r.props, "internal")):
                continue
            arn = peek(r.props, "arn")
            covered = any(r in (getattr(a, "dependencies", None) or []) or (arn and peek(a.props, "resourceArn") == arn)
                          for a in assocs)
            if not covered:
                yield f"{r.name}: internet-facing ALB has no WAFv2 web ACL association", r.urn
        elif r.resource_type == INGRESS:
            ann = _ingress_annotations(r.props)
            if ann is None or _ann(ann, "scheme") != "internet-facing":
                continue
            if not _ann(ann, "wafv2-acl-arn"):
                yield f"{r.name}: internet-facing Ingress has no alb.ingress.kubernetes.io/wafv2-acl-arn", r.urn


# --- ECR, S3 ---------------------------------------------------------------------------------------------------------

@resource_policy(Rule(
    id="ecr-immutable-tags",
    title="ECR tags immutable",
    description="ECR repositories must make image tags immutable, so a deployed tag always means the same image.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set imageTagMutability='IMMUTABLE' (VllmImage does).",
    checkov=("CKV_AWS_51",),
), types={"aws:ecr/repository:Repository"})
def ecr_immutable(s: Subject, cfg: dict) -> Iterable[str]:
    value = get(s.props, "imageTagMutability") or "MUTABLE"
    if not str(value).startswith("IMMUTABLE"):
        yield f"imageTagMutability is {value!r}: a pushed tag can be overwritten under running workloads"


ECR_REPO = "aws:ecr/repository:Repository"
ECR_REGISTRY_SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"


def _registry_scans_everything(resources: Sequence[Any]) -> bool:
    for r in resources:
        if r.resource_type != ECR_REGISTRY_SCANNING:
            continue
        for rule in as_list(get(r.props, "rules")):
            if get(rule, "scanFrequency") not in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN"):
                continue
            if any(get(f, "filter") == "*" for f in as_list(get(rule, "repositoryFilters"))):
                return True
    return False


@stack_policy(Rule(
    id="ecr-scan-on-push",
    title="ECR images scanned on push",
    description="ECR repositories must scan images on push (repository setting or a registry-wide scanning rule).",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set imageScanningConfiguration.scanOnPush=true, or add an aws.ecr.RegistryScanningConfiguration "
                "rule with scanFrequency SCAN_ON_PUSH or CONTINUOUS_SCAN for filter '*'.",
    checkov=("CKV_AWS_163",),
))
def ecr_scan(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if _registry_scans_everything(resources):
        return
    for r in resources:
        if r.resource_type == ECR_REPO and not truthy(get(r.props, "imageScanningConfiguration.scanOnPush")):
            yield f"{r.name}: imageScanningConfiguration.scanOnPush is not true and no registry scanning rule covers it", r.urn


BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@stack_policy(Rule(
    id="s3-public-access-block",
    title="S3 buckets block public access",
    description="Every S3 bucket (ALB access logs, model artefacts) must have a public-access block with all four "
                "settings on.",
    concern="security", severity=Severity.HIGH,
    remediation="Add aws.s3.BucketPublicAccessBlock(bucket=<bucket id>, blockPublicAcls=True, blockPublicPolicy=True, "
                "ignorePublicAcls=True, restrictPublicBuckets=True).",
    checkov=("CKV2_AWS_6",),
))
def s3_pab(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    blocks = [r for r in resources if r.resource_type == PAB]
    for b in resources:
        if b.resource_type not in BUCKET_TYPES:
            continue
        ids = {v for v in (peek(b.props, "id"), peek(b.props, "bucket")) if v}
        mine = [p for p in blocks if b in (getattr(p, "dependencies", None) or []) or peek(p.props, "bucket") in ids]
        if not mine:
            yield f"{b.name}: no BucketPublicAccessBlock for this bucket", b.urn
            continue
        off = [f for f in PAB_FLAGS if not any(truthy(get(p.props, f)) for p in mine)]
        if off:
            yield f"{b.name}: public access block leaves {', '.join(off)} off", b.urn
