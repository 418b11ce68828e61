"""The whole stack plan (all sections, under the mocks) for dev/staging/prod, and the edge/managed config rules.

The shipped stack files plan as they are: dev names no certificate (so it has no ALB, and its plan says what it offers
instead); staging and prod name an example domain and hosted zone, so their ALB gets an ACM certificate validated
through Route 53.
"""

import copy
import json

import pytest
import yaml

from infra import program
from tests.stack_plans import planned
from infra.config import ROOT, ConfigError, build_settings, read_stack_file

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def stack_config(stack: str) -> dict:
    """The shipped stack file's config mapping."""
    return read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")


@pytest.fixture(scope="module")
def plans():
    return {stack: planned(stack) for stack in ("dev", "staging", "prod")}


def one(result, type_token):
    return result.one(type_token)


# --- what each tier gets -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_have_the_alb_with_a_validated_certificate_and_the_controller(plans, stack):
    result, cfg = plans[stack]
    lb = one(result, "aws:lb/loadBalancer:LoadBalancer").inputs
    assert lb["dropInvalidHeaderFields"] is True and lb["idleTimeout"] >= 300
    cert = one(result, "aws:acm/certificate:Certificate")
    assert cert.inputs["domainName"] == cfg.alb.domain == "genai.example.com"
    https = [r for r in result.by_type("aws:lb/listener:Listener") if r.inputs["port"] == 443][0]
    assert https.inputs["certificateArn"] == cert.outputs["arn"]
    assert https.inputs["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-")
    assert one(result, "aws:acm/certificateValidation:CertificateValidation").urn in https.dependencies
    records = {r.name: r.inputs for r in result.by_type("aws:route53/record:Record")}
    assert set(records) == {"alb-cert-validation", "alb-alias-a"}
    assert {r["zoneId"] for r in records.values()} == {cfg.alb.hosted_zone_id}
    assert result.outputs["apiUrl"] == "https://genai.example.com"
    tg = one(result, "aws:lb/targetGroup:TargetGroup").inputs
    assert (tg["targetType"], tg["port"], tg["healthCheck"]["path"]) == ("ip", 8080, "/readyz")
    releases = {r.inputs["chart"]: r for r in result.by_type("kubernetes:helm.sh/v3:Release")}
    assert releases["aws-load-balancer-controller"].inputs["version"] == "3.5.0"
    assert result.outputs["albDnsName"].endswith(".elb.amazonaws.com")
    assert one(result, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert [n.split(" are ")[1][:25] for n in result.notes] == ["the shipped example value"]  # replace before up


def test_dev_without_a_certificate_has_no_alb_and_says_what_it_offers_instead(plans):
    result, cfg = plans["dev"]
    assert cfg.alb.enabled and cfg.alb.certificate_arn is None and cfg.alb.domain is None
    gone = ("genai-scale:index:Alb", "genai-scale:index:LbController", "aws:lb/loadBalancer:LoadBalancer",
            "aws:lb/listener:Listener", "aws:acm/certificate:Certificate", "aws:route53/record:Record",
            "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert [r.name for r in result.resources if r.type in gone] == []
    assert "albDnsName" not in result.outputs and "apiUrl" not in result.outputs
    service = result.one("kubernetes:core/v1:Service", "gateway-service")
    assert service.inputs["spec"]["type"] == "ClusterIP"
    note, = result.notes
    assert note.startswith("No public entry point: genai-scale:alb names no certificate (neither domain with "
                           "hostedZoneId nor certificateArn), so the stack creates no ALB")
    assert "`kubectl -n genai-gateway port-forward svc/gateway 8080:8080`" in note
    assert "set genai-scale:alb.domain (e.g. api.example.com) and genai-scale:alb.hostedZoneId" in note
    assert result.to_json(tier=cfg.tier)["notes"] == [note]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_stack_has_the_cache_and_bedrock(plans, stack):
    result, cfg = plans[stack]
    rg = one(result, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert rg["engine"] == "valkey" and rg["engineVersion"] == "8.2" and rg["transitEncryptionMode"] == "required"
    assert one(result, "aws:bedrock/inferenceProfile:InferenceProfile").inputs["modelSource"]["copyFrom"].endswith(
        ":inference-profile/us.amazon.nova-lite-v1:0")
    assert result.outputs["cacheEndpoint"].startswith("master.")


def test_alb_security_group_reaches_only_8080_on_the_cluster_node_group(plans):
    result, _ = plans["prod"]
    node_sg = one(result, "aws:eks/cluster:Cluster").outputs["vpcConfig"]["clusterSecurityGroupId"]
    egress = [r.inputs for r in result.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if r.name.startswith("alb-")]
    assert [(e["fromPort"], e["toPort"], e["referencedSecurityGroupId"]) for e in egress] == [(8080, 8080, node_sg)]
    node_ingress = [r.inputs for r in result.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                    if r.inputs["securityGroupId"] == node_sg and r.name.startswith("alb-")]
    alb_sg = one(result, "aws:lb/loadBalancer:LoadBalancer").inputs["securityGroups"][0]
    assert [(i["fromPort"], i["referencedSecurityGroupId"]) for i in node_ingress] == [(8080, alb_sg)]
    cache_rule = [r.inputs for r in result.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                  if r.name == "cache-from-nodes"]
    assert cache_rule[0]["referencedSecurityGroupId"] == node_sg and cache_rule[0]["fromPort"] == 6379


def test_prototype_buys_nothing_runs_no_endpoint_and_has_no_waf(plans):
    result, cfg = plans["dev"]
    assert result.by_type("aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput") == []
    assert result.by_type("aws:sagemaker/endpoint:Endpoint") == []
    assert result.by_type("aws:wafv2/webAcl:WebAcl") == []
    rg = one(result, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert rg["numCacheClusters"] == 1 and rg["automaticFailoverEnabled"] is False
    assert result.by_type("aws:lb/loadBalancer:LoadBalancer") == []  # no certificate in the shipped dev stack
    assert ":application-inference-profile/" in result.outputs["bedrockModelArn"]


def test_growth_has_waf_a_multi_az_cache_with_failover_and_one_endpoint(plans):
    result, _ = plans["staging"]
    assert one(result, "aws:wafv2/webAclAssociation:WebAclAssociation")
    rg = one(result, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert rg["numCacheClusters"] == 2 and rg["automaticFailoverEnabled"] is True and rg["multiAzEnabled"] is True
    variant = result.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration",
                         "sagemaker-qwen7b-config").inputs["productionVariants"][0]
    assert variant["instanceType"] == "ml.g6.2xlarge"
    assert variant["routingConfigs"] == [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}]
    target = result.one("aws:appautoscaling/target:Target", "sagemaker-qwen7b-scaling").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (1, 2)
    # and the asynchronous endpoint for batches, at zero while idle (tests/infra/sections/test_batch_backends.py)
    target = result.one("aws:appautoscaling/target:Target", "sagemaker-qwen7b-async-scaling").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (0, 2)
    assert result.by_type("aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput") == []


def test_scale_commits_protects_the_purchase_and_turns_on_deletion_protection(plans):
    result, _ = plans["prod"]
    pt = one(result, "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput")
    assert pt.inputs["commitmentDuration"] == "OneMonth" and pt.inputs["modelUnits"] == 1
    assert pt.inputs["modelArn"] == "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:24k"
    assert pt.protect is True
    assert pt.inputs["provisionedModelName"] == "prod-bedrock"
    assert ":provisioned-model/" in result.outputs["bedrockModelArn"]
    assert one(result, "aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is True
    rg = one(result, "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert rg["numCacheClusters"] == 3 and rg["finalSnapshotIdentifier"] == "prod-cache-final"


def test_scale_endpoints_gpu_lmi_and_inferentia_neuron(plans):
    result, _ = plans["prod"]
    models = {m.name: m.inputs["primaryContainer"] for m in result.by_type("aws:sagemaker/model:Model")}
    gpu, neuron = models["sagemaker-qwen32b-model"], models["sagemaker-qwen7b-inf2-model"]
    assert "/djl-inference:0.36.0-lmi28.0.0-cu130" in gpu["image"]
    assert gpu["environment"]["OPTION_TENSOR_PARALLEL_DEGREE"] == "4"
    assert "/huggingface-vllm-inference-neuronx:" in neuron["image"]
    assert neuron["environment"]["SM_ON_TENSOR_PARALLEL_SIZE"] == "2"
    configs = {c.name: c.inputs["productionVariants"][0] for c in
               result.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")}
    assert configs["sagemaker-qwen7b-inf2-config"]["volumeSizeInGb"] == 200
    assert configs["sagemaker-qwen7b-inf2-config"]["containerStartupHealthCheckTimeoutInSeconds"] == 3600
    targets = sorted((t.inputs["minCapacity"], t.inputs["maxCapacity"])
                     for t in result.by_type("aws:appautoscaling/target:Target"))
    assert targets == [(1, 3), (2, 6)]
    assert len(result.by_type("aws:appautoscaling/policy:Policy")) == 4
    assert set(result.outputs["sagemakerEndpoints"]) == {"qwen32b", "qwen7b-inf2"}
    # endpoints sit in the stack's private subnets
    assert all(m.inputs.get("vpcConfig") for m in result.by_type("aws:sagemaker/model:Model"))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_edge_and_managed_resources_carry_cost_tags(plans, stack):
    result, cfg = plans[stack]
    prefixes = ("aws:lb/", "aws:wafv2/webAcl:", "aws:elasticache/replicationGroup", "aws:sagemaker/", "aws:bedrock/",
                "aws:secretsmanager/secret:")
    mine = [r for r in result.resources if r.type.startswith(prefixes) and "tags" in r.inputs]
    assert mine
    assert all({"team", "environment", "tier"} <= set(r.inputs["tags"]) for r in mine)


def test_plan_json_contains_all_four_in_prod(plans):
    result, cfg = plans["prod"]
    doc = json.loads(json.dumps(result.to_json(tier=cfg.tier)))
    types = {r["type"] for r in doc["resources"]}
    assert {"genai-scale:index:Alb", "genai-scale:index:SemanticCache", "genai-scale:index:SageMakerLmiEndpoint",
            "genai-scale:index:BedrockProvisionedThroughput", "genai-scale:index:LbController"} <= types
    assert doc["outputs"]["cacheAuthSecretArn"].startswith("arn:aws:secretsmanager:")


# --- config rules in config terms ----------------------------------------------------------------------------

def settings_error(stack: str, **overrides) -> str:
    raw = stack_config(stack)
    for key, value in overrides.items():
        raw[key] = value
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source=f"Pulumi.{stack}.yaml")
    return str(exc.value)


def test_a_domain_needs_its_hosted_zone_and_the_other_way_round():
    msg = settings_error("dev", **{"genai-scale:alb": {"domain": "api.example.com"}})
    assert ("genai-scale:alb.hostedZoneId: required with domain: the Route 53 hosted zone that holds "
            "api.example.com") in msg
    msg = settings_error("dev", **{"genai-scale:alb": {"hostedZoneId": "Z0123456789EXAMPLE"}})
    assert "genai-scale:alb.domain: required with hostedZoneId: the host name to serve the API at" in msg


def test_certificate_arn_and_domain_together_are_one_config_problem_naming_both():
    msg = settings_error("prod", **{"genai-scale:alb": {"certificateArn": CERT, "domain": "genai.example.com",
                                                        "hostedZoneId": "Z0123456789EXAMPLE"}})
    assert msg.splitlines()[0].endswith("invalid configuration: 1 problem")
    assert ("genai-scale:alb.certificateArn = 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-"
            "9e0f1...: either certificateArn or domain with hostedZoneId, not both (domain is set too)") in msg


def test_without_a_certificate_the_other_alb_settings_are_still_checked():
    msg = settings_error("dev", **{"genai-scale:alb": {"sslPolicy": "ELBSecurityPolicy-2016-08"}})
    assert "genai-scale:alb.sslPolicy = 'ELBSecurityPolicy-2016-08': a TLS 1.3 security policy" in msg
    assert "certificateArn" not in msg


def test_a_certificate_arn_alone_still_gives_the_alb_its_listener_certificate():
    from infra.plan import run_program

    raw = {**stack_config("dev"), "genai-scale:alb": {"certificateArn": CERT}}
    cfg = build_settings(raw, source="Pulumi.dev.yaml")
    result = run_program(lambda: program.build_stack(cfg, "dev"), stack="dev", config=raw)
    https = [r.inputs for r in result.by_type("aws:lb/listener:Listener") if r.inputs["port"] == 443][0]
    assert https["certificateArn"] == CERT
    assert result.by_type("aws:acm/certificate:Certificate") == [] and result.notes == []
    assert one(result, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")


def test_alb_switched_off_is_noted_too():
    from infra.plan import run_program

    raw = {**stack_config("dev"), "genai-scale:alb": {"enabled": False}}
    cfg = build_settings(raw, source="Pulumi.dev.yaml")
    result = run_program(lambda: program.build_stack(cfg, "dev"), stack="dev", config=raw)
    note, = result.notes
    assert note.startswith("No public entry point: genai-scale:alb.enabled is false, so the stack creates no ALB")


def test_component_rules_come_back_as_camel_case_config_paths():
    msg = settings_error("prod", **{
        "genai-scale:alb": {"certificateArn": CERT, "idleTimeoutSeconds": 30, "sslPolicy": "ELBSecurityPolicy-2016-08"},
        "genai-scale:cache": {"engineVersion": "7.2"}})
    assert "genai-scale:alb.idleTimeoutSeconds = 30: expected a number >= 300" in msg
    msg = settings_error("prod", **{
        "genai-scale:alb": {"certificateArn": CERT, "sslPolicy": "ELBSecurityPolicy-2016-08"},
        "genai-scale:cache": {"engineVersion": "7.2", "serverless": True}})
    assert "genai-scale:alb.sslPolicy = 'ELBSecurityPolicy-2016-08': a TLS 1.3 security policy" in msg
    assert "genai-scale:cache.engineVersion = '7.2': a Valkey version with vector search" in msg
    assert "genai-scale:cache.serverless = True" in msg


def test_prototype_may_not_purchase_or_commit_or_run_endpoints():
    msg = settings_error("dev", **{
        "genai-scale:bedrock": {"purchase": True, "commitment": "SixMonths"},
        "genai-scale:sagemaker": {"endpoints": {"x": {"instanceType": "ml.g6.2xlarge", "model": "Qwen/Qwen2.5-7B-Instruct"}}}})
    assert "genai-scale:bedrock.purchase = True: false in the prototype tier" in msg
    assert "genai-scale:bedrock.commitment = 'SixMonths': 'none' in the prototype tier" in msg
    assert "genai-scale:sagemaker.endpoints = ['x']: empty in the prototype tier" in msg


def test_growth_may_buy_without_commitment_but_not_commit():
    msg = settings_error("staging", **{"genai-scale:bedrock": {"purchase": True, "commitment": "OneMonth"}})
    assert "genai-scale:bedrock.commitment = 'OneMonth': 'none' in the growth tier" in msg
    assert "bedrock.purchase" not in msg


def test_bedrock_model_must_be_a_catalogued_text_variant():
    msg = settings_error("prod", **{"genai-scale:bedrock": {"modelId": "amazon.nova-lite-v1:0"}})
    assert "genai-scale:bedrock.modelId = 'amazon.nova-lite-v1:0': a contextual variant id" in msg
    msg = settings_error("prod", **{"genai-scale:bedrock": {"modelId": "amazon.titan-embed-text-v1:2:8k",
                                                             "purchase": False, "commitment": "none",
                                                             "onDemandSource": "in-region"}})
    assert "genai-scale:bedrock.modelId = 'amazon.titan-embed-text-v1:2:8k': a text model" in msg


def test_endpoint_rules_are_reported_under_their_endpoint_name():
    endpoints = copy.deepcopy(yaml.safe_load((ROOT / "stacks/tiers/scale/managed.yaml").read_text())["sagemaker"])
    endpoints["endpoints"]["qwen32b"]["tensorParallelDegree"] = 3
    endpoints["endpoints"]["qwen32b"]["volumeSizeGb"] = 100
    msg = settings_error("prod", **{"genai-scale:sagemaker": endpoints})
    assert "genai-scale:sagemaker.endpoints.qwen32b.tensorParallelDegree = 3: a divisor of the 4 GPUs" in msg
    assert "genai-scale:sagemaker.endpoints.qwen32b.volumeSizeGb = 100: unset: ml.g6e.12xlarge keeps the model" in msg


def test_internet_facing_alb_needs_public_subnets_in_an_existing_vpc():
    msg = settings_error("prod", **{"genai-scale:network": {"existing": {
        "vpcId": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-1"]}}})
    assert "genai-scale:alb.internal = False: true, or public subnets in network.existing.publicSubnetIds" in msg


MINE = ("genai-scale:index:Alb", "genai-scale:index:LbController", "genai-scale:index:SemanticCache",
        "genai-scale:index:BedrockProvisionedThroughput", "genai-scale:index:SageMakerLmiEndpoint")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_policy_pack_finds_nothing_in_the_edge_and_managed_resources(plans, stack):
    from policies.engine import evaluate

    result, _ = plans[stack]
    report = evaluate(result.resources)
    mine = [v for v in report.violations if any(f"{t}$" in v.urn for t in MINE)]
    assert [f"{v.policy}: {v.resource_name}: {v.message}" for v in mine] == []


def _context(stack):
    from infra.plan import run_program

    cfg = build_settings(stack_config(stack), source=f"Pulumi.{stack}.yaml")
    holder = {}
    run_program(lambda: holder.setdefault("ctx", program.build_stack(cfg, stack)), stack=stack)
    return holder["ctx"]


def test_build_context_interface_for_later_sections():
    import pulumi_aws as aws
    import pulumi_kubernetes as k8s

    ctx = _context("prod")
    assert isinstance(ctx.alb.load_balancer, aws.lb.LoadBalancer)
    assert isinstance(ctx.alb.target_groups["gateway"], aws.lb.TargetGroup)
    assert {"dns_name", "arn", "security_group_id"} <= set(vars(ctx.alb))
    assert isinstance(ctx.lb_controller, k8s.helm.v3.Release)
    assert ctx.cache.engine_version == "8.2" and ctx.cache.limits["max_indexes"] == 10
    assert {"primary_endpoint", "reader_endpoint", "port", "auth_secret_arn", "auth_token"} <= set(vars(ctx.cache))
    assert ctx.bedrock.provisioned and ctx.bedrock.committed
    assert {"model_arn", "invoke_policy_arn"} <= set(vars(ctx.bedrock))
    assert set(ctx.sagemaker) == {"qwen32b", "qwen7b-inf2"}
    assert all({"endpoint_name", "invoke_policy_arn"} <= set(vars(ep)) for ep in ctx.sagemaker.values())


def test_prototype_context_has_an_on_demand_bedrock_model_and_no_endpoints():
    ctx = _context("dev")
    assert ctx.bedrock is not None and not ctx.bedrock.provisioned
    assert ctx.sagemaker == {}


def test_the_human_plan_prints_the_notes_after_the_outputs(plans):
    from infra.cli import render_plan

    result, cfg = plans["dev"]
    text = render_plan(result, cfg)
    assert text.index("\nOutputs\n") < text.index("\nNotes\n")
    assert text.endswith(f"\nNotes\n  - {result.notes[0]}\n")
    # staging ships the example domain: its only note says to replace it
    result, cfg = plans["staging"]
    [note] = result.notes
    assert note.startswith("genai-scale:alb.domain ('genai.example.com') and genai-scale:alb.hostedZoneId "
                           "('Z0123456789EXAMPLE') are the shipped example values: replace them")


def test_a_real_domain_gets_no_example_values_note():
    from infra.sections.edge import example_values_note

    class A:
        domain, hosted_zone_id = "api.acme.io", "Z1D633PJN98FT9"
    assert example_values_note(A()) is None
    A.domain = "api.example.org"
    assert example_values_note(A()) is not None
    A.domain, A.hosted_zone_id = "api.acme.io", "Z0EXAMPLE"
    assert example_values_note(A()) is not None
