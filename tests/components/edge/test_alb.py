"""Alb: listeners, TLS, security groups, target groups, access logs, WAF; target_group_binding; validation."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.edge import _alb
from components.edge.alb import Alb, AlbArgs, AlbTargetArgs, target_group_binding
from infra.plan import run_program
from tests.kit.plan import errors_of, plan_component

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
WIRING = {"vpc_id": "vpc-0abc", "subnet_ids": ["subnet-pub-a", "subnet-pub-b"], "node_security_group_id": "sg-nodes",
          "region": "us-east-1", "certificate_arn": CERT}


def args(**kw):
    return AlbArgs(**{**WIRING, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


def plan(**kw):
    return plan_component(lambda: Alb("edge", args(**kw)))


def listeners(result):
    return {r.inputs["port"]: r.inputs for r in result.by_type("aws:lb/listener:Listener")}


def test_https_listener_uses_the_certificate_and_a_tls13_policy_and_forwards_to_the_gateway():
    result, alb = plan()
    https = listeners(result)[443]
    assert https["protocol"] == "HTTPS"
    assert https["certificateArn"] == CERT
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
    gateway = result.one("aws:lb/targetGroup:TargetGroup")
    assert gateway.urn.endswith(alb.target_groups["gateway"]._name)
    assert https["defaultActions"] == [{"type": "forward", "targetGroupArn": gateway.outputs["arn"]}]


def test_http_listener_only_redirects_to_https():
    result, _ = plan()
    http = listeners(result)[80]
    assert http["protocol"] == "HTTP"
    assert http["defaultActions"] == [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443",
                                                                         "statusCode": "HTTP_301"}}]


def test_load_balancer_settings_for_streams_and_hardening():
    result, _ = plan(idle_timeout_seconds=900, deletion_protection=True)
    lb = result.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert lb["loadBalancerType"] == "application"
    assert lb["internal"] is False
    assert lb["subnets"] == ["subnet-pub-a", "subnet-pub-b"]
    assert lb["idleTimeout"] == 900
    assert lb["dropInvalidHeaderFields"] is True
    assert lb["desyncMitigationMode"] == "strictest"
    assert lb["enableDeletionProtection"] is True
    assert lb["accessLogs"]["enabled"] is True and lb["accessLogs"]["prefix"] == "alb"


def test_target_group_is_ip_based_with_readiness_health_check_and_stream_drain():
    result, alb = plan(deregistration_delay_seconds=450)
    tg = result.one("aws:lb/targetGroup:TargetGroup").inputs
    assert set(alb.target_groups) == {"gateway"}
    assert tg["targetType"] == "ip" and tg["protocol"] == "HTTP" and tg["port"] == 8080
    assert tg["vpcId"] == "vpc-0abc"
    assert tg["deregistrationDelay"] == 450
    assert tg["loadBalancingAlgorithmType"] == "least_outstanding_requests"
    assert tg["healthCheck"]["path"] == "/readyz"
    assert tg["healthCheck"]["matcher"] == "200"
    assert tg["healthCheck"]["port"] == "traffic-port"


def test_alb_may_reach_only_the_serving_ports_on_the_node_security_group():
    result, _ = plan(targets={"gateway": AlbTargetArgs(), "vllm": AlbTargetArgs(port=8000, health_check_path="/health")})
    sg_id = result.one("aws:ec2/securityGroup:SecurityGroup").outputs["id"]
    egress = [r.inputs for r in result.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    assert sorted((e["fromPort"], e["toPort"]) for e in egress) == [(8000, 8000), (8080, 8080)]
    assert {e["referencedSecurityGroupId"] for e in egress} == {"sg-nodes"}
    assert all("cidrIpv4" not in e for e in egress)
    node_in = [r.inputs for r in result.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if r.inputs["securityGroupId"] == "sg-nodes"]
    assert sorted(i["fromPort"] for i in node_in) == [8000, 8080]
    assert {i["referencedSecurityGroupId"] for i in node_in} == {sg_id}
    client_in = [r.inputs for r in result.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                 if r.inputs["securityGroupId"] == sg_id]
    assert sorted(i["fromPort"] for i in client_in) == [80, 443]


def test_internal_alb_with_restricted_clients():
    result, _ = plan(internal=True, ingress_cidrs=["10.0.0.0/16"], subnet_ids=["subnet-priv-a"])
    assert result.one("aws:lb/loadBalancer:LoadBalancer").inputs["internal"] is True
    cidrs = {r.inputs.get("cidrIpv4") for r in result.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if "cidrIpv4" in r.inputs}
    assert cidrs == {"10.0.0.0/16"}


def test_access_log_bucket_is_sse_s3_private_and_writable_by_elb_only():
    result, alb = plan(access_log_retention_days=30)
    bucket = result.one("aws:s3/bucket:Bucket")
    sse = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    pab = result.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    assert result.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"]["objectOwnership"] == \
        "BucketOwnerEnforced"
    rules = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rules[0]["expiration"]["days"] == 30
    policy = json.loads(result.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    write, deny = policy["Statement"]
    assert write["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
    assert write["Resource"] == f"{bucket.outputs['arn']}/alb/AWSLogs/123456789012/*"
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    lb = result.one("aws:lb/loadBalancer:LoadBalancer")
    assert any(d.endswith("edge-logs") and "bucketPolicy" in d for d in lb.dependencies)
    assert bucket.inputs["forceDestroy"] is False and alb.log_bucket is not None


def test_newer_regions_use_the_log_delivery_service_principal():
    assert _alb.log_delivery_principal("aws", "ap-south-2") == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert _alb.log_delivery_principal("aws", "eu-west-1") == {"AWS": "arn:aws:iam::156460612806:root"}


def test_without_waf_no_web_acl_is_created():
    result, alb = plan()
    assert result.by_type("aws:wafv2/webAcl:WebAcl") == [] and alb.web_acl is None


def test_waf_has_common_rules_bad_inputs_and_a_rate_limit_and_is_associated_and_logged():
    result, alb = plan(waf=True, waf_rate_limit=5000)
    acl = result.one("aws:wafv2/webAcl:WebAcl")
    assert acl.inputs["scope"] == "REGIONAL" and acl.inputs["defaultAction"] == {"allow": {}}
    rules = {r["name"]: r for r in acl.inputs["rules"]}
    common = rules["AWSManagedRulesCommonRuleSet"]["statement"]["managedRuleGroupStatement"]
    assert common["vendorName"] == "AWS"
    assert common["ruleActionOverrides"] == [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}]
    assert rules["AWSManagedRulesKnownBadInputsRuleSet"]["statement"]["managedRuleGroupStatement"]["name"] == \
        "AWSManagedRulesKnownBadInputsRuleSet"
    rate = rules["rate-limit-per-ip"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"] == {"limit": 5000, "aggregateKeyType": "IP", "evaluationWindowSec": 300}
    assoc = result.one("aws:wafv2/webAclAssociation:WebAclAssociation").inputs
    assert assoc["resourceArn"] == result.one("aws:lb/loadBalancer:LoadBalancer").outputs["arn"]
    assert assoc["webAclArn"] == acl.outputs["arn"]
    logging = result.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration").inputs
    group = result.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["namePrefix"].startswith("aws-waf-logs-")
    assert logging["logDestinationConfigs"] == [group.outputs["arn"]]
    assert logging["redactedFields"] == [{"singleHeader": {"name": "authorization"}}]


def test_target_group_binding_manifest():
    def prog():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        target_group_binding("gateway", target_group_arn="arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/g/1",
                             service_name="gateway", service_port=8080, namespace="genai",
                             opts=pulumi.ResourceOptions(provider=provider))
    result = run_program(prog)
    tgb = result.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert tgb.inputs["apiVersion"] == "elbv2.k8s.aws/v1beta1" and tgb.inputs["kind"] == "TargetGroupBinding"
    assert tgb.inputs["metadata"]["namespace"] == "genai"
    assert tgb.inputs["spec"] == {"serviceRef": {"name": "gateway", "port": 8080}, "targetType": "ip",
                                  "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/g/1"}
    assert "networking" not in tgb.inputs["spec"]
    assert tgb.provider.startswith(result.one("pulumi:providers:kubernetes").urn)


# --- validation ------------------------------------------------------------------------------------------------

def test_certificate_must_be_an_acm_arn_in_the_same_region():
    assert "certificate_arn = 'cert-123': an ACM certificate ARN" in errors(certificate_arn="cert-123")
    assert "a certificate in the ALB's Region eu-west-1" in errors(region="eu-west-1")


def test_ssl_policy_must_not_accept_tls_1_0_or_1_1():
    assert "ssl_policy = 'ELBSecurityPolicy-TLS13-1-0-2021-06': still accepts TLS 1.0/1.1 clients" in \
        errors(ssl_policy="ELBSecurityPolicy-TLS13-1-0-2021-06")
    assert "still accepts TLS 1.0/1.1" in errors(ssl_policy="ELBSecurityPolicy-TLS13-1-1-2021-06")


def test_ssl_policy_must_be_tls13():
    assert "ssl_policy = 'ELBSecurityPolicy-2016-08': a TLS 1.3 security policy" in \
        errors(ssl_policy="ELBSecurityPolicy-2016-08")


@pytest.mark.parametrize("value,bound", [(60, ">= 300"), (4001, "<= 4000")])
def test_idle_timeout_range(value, bound):
    assert f"idle_timeout_seconds = {value}: expected a number {bound}" in errors(idle_timeout_seconds=value)


def test_deregistration_delay_range():
    assert "deregistration_delay_seconds = 3601: expected a number <= 3600" in errors(deregistration_delay_seconds=3601)


def test_default_target_and_cidrs_and_paths_are_checked_together():
    msg = errors(default_target="vllm", ingress_cidrs=["0.0.0.0/0", "10.0.0.1/8", "::/0"],
                 targets={"gateway": AlbTargetArgs(health_check_path="readyz")})
    assert "default_target = 'vllm': one of the targets: gateway" in msg
    assert "ingress_cidrs[1] = '10.0.0.1/8': an IPv4 CIDR" in msg
    assert "ingress_cidrs[2] = '::/0': an IPv4 CIDR" in msg
    assert "targets.gateway.health_check_path = 'readyz': a path starting with '/'" in msg


def test_waf_rate_limit_minimum():
    assert "waf_rate_limit = 5: expected a number >= 10" in errors(waf_rate_limit=5)


# --- domain mode: the certificate issued and validated through Route 53 --------------------------------------------

DOMAIN = {"certificate_arn": None, "domain": "api.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ"}


def test_domain_mode_requests_a_dns_validated_certificate_for_the_domain():
    result, alb = plan(**DOMAIN)
    cert = result.one("aws:acm/certificate:Certificate")
    assert cert.name == "edge-cert"
    assert cert.inputs["domainName"] == "api.example.com" and cert.inputs["validationMethod"] == "DNS"
    assert "keyAlgorithm" not in cert.inputs  # ACM's default (RSA 2048)
    assert cert.inputs["tags"]["genai-scale/component"] == "alb"
    assert alb.certificate is not None and alb.domain == "api.example.com"


def test_validation_record_comes_from_the_certificates_validation_option():
    result, _ = plan(**DOMAIN)
    option, = result.one("aws:acm/certificate:Certificate").outputs["domainValidationOptions"]
    record = result.one("aws:route53/record:Record", "edge-cert-validation").inputs
    assert record["zoneId"] == "Z0123456789ABCDEFGHIJ"
    assert record["name"] == option["resourceRecordName"] and record["name"].endswith(".api.example.com.")
    assert record["type"] == option["resourceRecordType"] == "CNAME"
    assert record["records"] == [option["resourceRecordValue"]]
    assert record["ttl"] == 60 and record["allowOverwrite"] is True


def test_https_listener_waits_for_the_validation_and_uses_its_certificate():
    result, alb = plan(**DOMAIN)
    cert = result.one("aws:acm/certificate:Certificate")
    validation = result.one("aws:acm/certificateValidation:CertificateValidation")
    record = result.one("aws:route53/record:Record", "edge-cert-validation")
    assert validation.inputs["certificateArn"] == cert.outputs["arn"]
    assert validation.inputs["validationRecordFqdns"] == [record.outputs["fqdn"]]
    https = next(r for r in result.by_type("aws:lb/listener:Listener") if r.inputs["port"] == 443)
    assert validation.urn in https.dependencies
    assert validation.urn in https.property_dependencies["certificateArn"]
    assert https.inputs["certificateArn"] == cert.outputs["arn"]


def test_alias_record_points_the_domain_at_the_load_balancer():
    result, _ = plan(**DOMAIN)
    lb = result.one("aws:lb/loadBalancer:LoadBalancer").outputs
    alias = result.one("aws:route53/record:Record", "edge-alias-a").inputs
    assert alias["zoneId"] == "Z0123456789ABCDEFGHIJ" and alias["name"] == "api.example.com" and alias["type"] == "A"
    assert alias["aliases"] == [{"name": lb["dnsName"], "zoneId": lb["zoneId"], "evaluateTargetHealth": True}]
    assert "records" not in alias and "ttl" not in alias


def test_domain_mode_outputs_the_url():
    result, alb = plan_component(lambda: _export_url(Alb("edge", args(**DOMAIN))))
    assert result.outputs["url"] == "https://api.example.com"


def _export_url(alb):
    pulumi.export("url", alb.url)
    return alb


def test_certificate_arn_mode_creates_no_certificate_or_records():
    result, alb = plan()
    assert not result.by_type("aws:acm/certificate:Certificate")
    assert not result.by_type("aws:acm/certificateValidation:CertificateValidation")
    assert not result.by_type("aws:route53/record:Record")
    assert alb.certificate is None and alb.domain is None and alb.url is None


def test_validation_record_is_picked_by_domain_name():
    opts = [{"domainName": "www.example.com", "resourceRecordName": "_b.www.example.com.",
             "resourceRecordType": "CNAME", "resourceRecordValue": "_b.acm-validations.aws."},
            {"domain_name": "api.example.com", "resource_record_name": "_a.api.example.com.",
             "resource_record_type": "CNAME", "resource_record_value": "_a.acm-validations.aws."}]
    assert _alb.validation_record(opts, "api.example.com") == {
        "name": "_a.api.example.com.", "type": "CNAME", "value": "_a.acm-validations.aws."}
    with pytest.raises(ValueError, match=r"no DNS validation option for x.example.com \(options for: "
                                         r"api.example.com, www.example.com\)"):
        _alb.validation_record(opts, "x.example.com")


def test_certificate_arn_and_domain_together_are_rejected_naming_both():
    msg = errors(domain="api.example.com", hosted_zone_id="Z0123456789ABCDEFGHIJ")
    assert msg.startswith("invalid AlbArgs: 1 problem")
    assert ("  - certificate_arn = 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1...: "
            "either certificate_arn or domain with hosted_zone_id, not both (domain is set too)") in msg


def test_a_certificate_source_is_required():
    msg = errors(certificate_arn=None)
    assert "certificate_arn: required without domain: the HTTPS listener needs a certificate" in msg


def test_domain_and_hosted_zone_need_each_other():
    assert ("hosted_zone_id: required with domain: the Route 53 hosted zone that holds api.example.com"
            in errors(certificate_arn=None, domain="api.example.com"))
    assert ("domain: required with hosted_zone_id: the host name to serve the API at"
            in errors(certificate_arn=None, hosted_zone_id="Z0123456789ABCDEFGHIJ"))


@pytest.mark.parametrize("domain, expected", [
    ("API.example.com", "a lowercase host name, e.g. api.example.com"),
    ("*.example.com", "one host name, not a wildcard"),
    ("localhost", "a fully qualified host name such as api.example.com"),
    ("api.example.com.", "a fully qualified host name"),
    ("under_score.example.com", "a fully qualified host name"),
    ("a" * 60 + ".example.com", "at most 64 characters (72 given): ACM limits"),
])
def test_domain_must_be_a_host_name_acm_accepts(domain, expected):
    assert f"domain = '{domain}': {expected}" in errors(certificate_arn=None, domain=domain,
                                                         hosted_zone_id="Z0123456789ABCDEFGHIJ")


@pytest.mark.parametrize("zone, expected", [
    ("/hostedzone/Z0123456789ABCDEFGHIJ", "the id without the /hostedzone/ prefix: Z0123456789ABCDEFGHIJ"),
    ("z-lowercase", "a Route 53 hosted zone id: up to 32 uppercase letters and digits"),
    ("Z" * 33, "a Route 53 hosted zone id"),
])
def test_hosted_zone_id_format(zone, expected):
    assert f"hosted_zone_id = '{zone}': {expected}" in errors(certificate_arn=None, domain="api.example.com",
                                                                hosted_zone_id=zone)
