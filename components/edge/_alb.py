"""Pure functions behind Alb: access-log bucket policy, WAF rules, listener defaults.

Sources (checked 2026-11):
- ALB access logs (Elastic Load Balancing user guide, "Enable access logs for your Application Load Balancer"): the
  bucket must be in the load balancer's Region and use SSE-S3 (the only supported server-side encryption); the
  bucket policy grants ``s3:PutObject`` on ``<prefix>/AWSLogs/<account>/*`` to the Region's Elastic Load Balancing
  account in Regions available before August 2022, and to the ``logdelivery.elasticloadbalancing.amazonaws.com``
  service principal in later Regions. The account table below is the one in that guide (also hard-coded by the
  Terraform AWS provider's ``aws_elb_service_account`` data source).
- TLS policy: ``ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09`` is the console default and AWS's recommendation
  (TLS 1.3 + restricted TLS 1.2 ciphers, hybrid post-quantum key exchange; "Security policies for your Application
  Load Balancer"); APIs and IaC otherwise default to ``ELBSecurityPolicy-2016-08``, so it is always set.
- WAF: AWS managed rule groups ``AWSManagedRulesCommonRuleSet`` and ``AWSManagedRulesKnownBadInputsRuleSet`` (the
  latter carries the Log4j rules that checkov CKV_AWS_192 looks for). The common rule set's
  ``SizeRestrictions_BODY`` blocks bodies over 8 KB, which long chat prompts exceed, so it is overridden to count.
- Domain mode (checked 2026-12): ACM ``RequestCertificate`` (API reference): the domain name (the certificate's common
  name) is at most 64 octets including periods (RFC 5280), labels at most 63; DNS validation answers with one
  ``DomainValidationOption`` per domain name, each a CNAME ``ResourceRecord`` (``Name``, ``Type``, ``Value``) to create
  in the domain's zone. Route 53 API reference: a hosted zone id (``ResourceId``) is at most 32 characters and is
  given without the ``/hostedzone/`` prefix; an alias A record to an ALB names the load balancer's DNS name and its
  canonical hosted zone id.
"""

from __future__ import annotations

import re
from typing import Any

ELB_LOG_ACCOUNTS: dict[str, str] = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
    "us-west-2": "797873946194", "af-south-1": "098369216593", "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580", "ap-south-1": "718504428378", "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887", "ap-southeast-1": "114774131450", "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864", "ca-central-1": "985666609251", "eu-central-1": "054676820928",
    "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-south-1": "635631232127",
    "eu-west-3": "009996457667", "eu-north-1": "897822967062", "me-south-1": "076674570225",
    "sa-east-1": "507241528517", "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993", "cn-northwest-1": "037604701340",
}
LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"

DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
TLS13_POLICY_PREFIX = "ELBSecurityPolicy-TLS13-"
# TLS 1.3 policies whose minimum protocol is still TLS 1.0 / 1.1 (ELB "Security policies for your ALB" table).
LEGACY_MINIMUM_TLS13_POLICIES = ("ELBSecurityPolicy-TLS13-1-0-", "ELBSecurityPolicy-TLS13-1-1-")
ACM_ARN = re.compile(r"^arn:aws(?:-cn|-us-gov)?:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")
ACCESS_LOG_PREFIX = "alb"
# A host name: 2+ labels of letters, digits and inner hyphens, each 1-63 characters (no wildcard: the alias record
# and the URL name one host).
DOMAIN = re.compile(r"^(?=.{1,64}$)(?!-)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
DOMAIN_MAX = 64
HOSTED_ZONE_ID = re.compile(r"^[A-Z0-9]{1,32}$")
VALIDATION_RECORD_TTL = 60
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
COUNT_OVERRIDES = ("SizeRestrictions_BODY",)


def log_delivery_principal(partition: str, region: str) -> dict[str, str]:
    """Who writes ALB access logs in a Region: the ELB account (older Regions) or the log-delivery service."""
    account = ELB_LOG_ACCOUNTS.get(region)
    if account:
        return {"AWS": f"arn:{partition}:iam::{account}:root"}
    return {"Service": LOG_DELIVERY_SERVICE}


def access_log_bucket_policy(*, partition: str, region: str, account: str, bucket_arn: str,
                             prefix: str = ACCESS_LOG_PREFIX) -> dict[str, Any]:
    """Bucket policy: ELB may put log objects under its prefix; nobody may use plain HTTP."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AlbAccessLogs", "Effect": "Allow", "Principal": log_delivery_principal(partition, region),
         "Action": "s3:PutObject", "Resource": f"{bucket_arn}/{prefix}/AWSLogs/{account}/*"},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


def _visibility(metric: str) -> dict[str, Any]:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def waf_rules(metric_prefix: str, rate_limit: int) -> list[dict[str, Any]]:
    """Managed common rules (body-size rule counted, not blocked), known bad inputs, and a per-IP rate limit
    (requests per 5-minute window)."""
    return [
        {"name": COMMON_RULE_SET, "priority": 1, "override_action": {"none": {}},
         "statement": {"managed_rule_group_statement": {
             "vendor_name": "AWS", "name": COMMON_RULE_SET,
             "rule_action_overrides": [{"name": n, "action_to_use": {"count": {}}} for n in COUNT_OVERRIDES]}},
         "visibility_config": _visibility(f"{metric_prefix}-common")},
        {"name": BAD_INPUTS_RULE_SET, "priority": 2, "override_action": {"none": {}},
         "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": BAD_INPUTS_RULE_SET}},
         "visibility_config": _visibility(f"{metric_prefix}-bad-inputs")},
        {"name": "rate-limit-per-ip", "priority": 3, "action": {"block": {}},
         "statement": {"rate_based_statement": {"limit": rate_limit, "aggregate_key_type": "IP",
                                                "evaluation_window_sec": 300}},
         "visibility_config": _visibility(f"{metric_prefix}-rate")},
    ]


def metric_name(name: str) -> str:
    """CloudWatch metric names for WAF: letters, digits, ``-`` and ``_`` (max 128)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:128]


def domain_problem(domain: str) -> str | None:
    """What is wrong with ``domain`` as the certificate's and the alias record's name, or None."""
    if len(domain) > DOMAIN_MAX:
        return (f"at most {DOMAIN_MAX} characters ({len(domain)} given): ACM limits a certificate's domain name "
                "(its common name) to 64 octets")
    if domain != domain.lower():
        return f"a lowercase host name, e.g. {domain.lower()}"
    if domain.startswith("*."):
        return "one host name, not a wildcard (the alias record and the API URL name a single host)"
    if not DOMAIN.match(domain):
        return ("a fully qualified host name such as api.example.com (labels of letters, digits and inner hyphens, "
                "no trailing dot)")
    return None


def hosted_zone_problem(zone_id: str) -> str | None:
    """What is wrong with ``zone_id`` as a Route 53 hosted zone id, or None."""
    if zone_id.startswith("/hostedzone/"):
        return f"the id without the /hostedzone/ prefix: {zone_id.removeprefix('/hostedzone/')}"
    if not HOSTED_ZONE_ID.match(zone_id):
        return "a Route 53 hosted zone id: up to 32 uppercase letters and digits, e.g. Z0123456789ABCDEFGHIJ"
    return None


def validation_record(options: list[Any], domain: str) -> dict[str, str]:
    """The DNS record ACM asks for to validate ``domain``: ``{"name", "type", "value"}`` from the certificate's
    ``domain_validation_options`` (objects or dicts, snake_case or camelCase keys)."""

    def field(opt: Any, snake: str) -> Any:
        if hasattr(type(opt), snake):  # the provider's output type (a dict subclass with property getters)
            return getattr(opt, snake)
        if isinstance(opt, dict):
            return opt.get(snake, opt.get(re.sub(r"_([a-z])", lambda m: m.group(1).upper(), snake)))
        return getattr(opt, snake, None)

    for opt in options or []:
        if field(opt, "domain_name") == domain:
            return {"name": field(opt, "resource_record_name"), "type": field(opt, "resource_record_type"),
                    "value": field(opt, "resource_record_value")}
    names = sorted(str(field(o, "domain_name")) for o in options or [])
    raise ValueError(f"the certificate has no DNS validation option for {domain} (options for: "
                     f"{', '.join(names) or 'none'})")

