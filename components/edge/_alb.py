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
