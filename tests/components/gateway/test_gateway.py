"""The Gateway component and the gateway stack section under the Pulumi mocks."""

from __future__ import annotations

import types

import pulumi
import pulumi_aws as aws
import pytest
import yaml

from components.errors import ArgsError
from components.gateway.gateway import Gateway, GatewayArgs, TenantSpec, grace_period_seconds, render_config
from infra.plan import run_program
from infra.sections import gateway as section
from infra.sections.base import BuildContext
from serving.gateway.config import parse_config
from tests.kit import ROOT

DEPLOY = "kubernetes:apps/v1:Deployment"
CONFIG = {"upstreams": {"llama": {"kind": "openai", "baseUrl": "http://llama.serving.svc:8000/v1", "model": "llama"}},
          "routes": {"llama": {"targets": [{"upstream": "llama"}]}},
          "redis": {"url": "rediss://cache.example:6379/0"}}


def _args(**over) -> GatewayArgs:
    base = dict(config=CONFIG, tenants={"acme": TenantSpec(tokens_per_minute=1000)},
                redis_auth_token=pulumi.Output.secret("tok"), target_group_arn="arn:aws:elasticloadbalancing:tg",
                invoke_policy_arns=["arn:aws:iam::123456789012:policy/invoke"],
                oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks", oidc_issuer="oidc.eks/id/X",
                tags={"team": "ml"})
    base.update(over)
    return GatewayArgs(**base)


def test_gateway_component_resources_and_security_posture():
    r = run_program(lambda: Gateway("gw", _args()))
    dep = r.one(DEPLOY, "gw-deployment")
    pod = dep.inputs["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False and "tolerations" not in pod
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"] == "1Gi"
    assert c["ports"][0] == {"name": "http", "containerPort": 8080}
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]  # ALB deregistration first
    assert pod["terminationGracePeriodSeconds"] == 50 >= 15 + 30  # covers preStop + drain
    assert c["args"] == ["serve", "--config", "/etc/gateway/config/gateway.yaml"]
    env = {e["name"]: e for e in c["env"]}
    assert env["GATEWAY_REDIS_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "gateway-redis-auth"
    hpa = r.one("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "gw-hpa")
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (2, 6)
    assert r.one("kubernetes:policy/v1:PodDisruptionBudget", "gw-pdb").inputs["spec"]["maxUnavailable"] == 1
    svc = r.one("kubernetes:core/v1:Service", "gw-service")
    assert [p["port"] for p in svc.inputs["spec"]["ports"]] == [8080, 9090]
    tgb = r.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "gw-tgb")
    assert tgb.inputs["spec"]["serviceRef"] == {"name": "gw", "port": 8080}
    assert tgb.inputs["spec"]["targetGroupARN"] == "arn:aws:elasticloadbalancing:tg"
    ns = r.one("kubernetes:core/v1:Namespace", "gw-ns")
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    repo = r.one("aws:ecr/repository:Repository", "gw-repo")
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE" and repo.inputs["tags"]["team"] == "ml"
    built = r.one("docker-build:index:Image", "gw-image")
    assert c["image"] == built.outputs["ref"] and ":0.1.0-" in c["image"]  # built here, pulled by digest


def test_secrets_are_pulumi_secrets_and_keys_file_holds_digests_only():
    r = run_program(lambda: Gateway("gw", _args()))
    keys = r.one("kubernetes:core/v1:Secret", "gw-tenant-keys")
    auth = r.one("kubernetes:core/v1:Secret", "gw-redis-auth")
    assert section_secret(keys.inputs["stringData"]) and section_secret(auth.inputs["stringData"])
    digests = yaml.safe_load(keys.inputs["stringData"]["value"]["keys.yaml"])
    assert list(digests) == ["acme"] and len(digests["acme"][0]) == 64 and "sk-" not in str(digests)
    assert auth.inputs["stringData"]["value"]["token"] == "tok"
    pw = r.one("random:index/randomPassword:RandomPassword", "gw-key-acme")
    assert pw.inputs["length"] == 48


def section_secret(value) -> bool:
    from infra.plan import _is_secret

    return _is_secret(value)


def test_irsa_role_gets_only_the_invoke_policies():
    r = run_program(lambda: Gateway("gw", _args()))
    attach = r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert [a.inputs["policyArn"] for a in attach] == ["arn:aws:iam::123456789012:policy/invoke"]
    sa = r.one("kubernetes:core/v1:ServiceAccount", "gw-sa")
    assert "eks.amazonaws.com/role-arn" in sa.inputs["metadata"]["annotations"]
    r = run_program(lambda: Gateway("gw", _args(invoke_policy_arns=[], target_group_arn=None)))
    assert r.by_type("aws:iam/role:Role") == [] and r.by_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding") == []


def test_rendered_config_is_valid_for_the_gateway():
    args = _args(tenants={"acme": TenantSpec(tokens_per_minute=1000, max_tokens=256)})
    text = render_config(CONFIG, args, args.tenants)
    doc = yaml.safe_load(text)
    assert doc["server"] == {"host": "0.0.0.0", "port": 8080, "metricsPort": 9090, "drainTimeoutSeconds": 30}
    assert doc["tenants"]["keysFile"] == "/etc/gateway/keys/keys.yaml"
    assert doc["tenants"]["limits"] == {"acme": {"tokensPerMinute": 1000, "maxTokens": 256}}
    assert doc["redis"]["authTokenEnv"] == "GATEWAY_REDIS_AUTH_TOKEN"
    parse_config(doc)  # the gateway's own loader accepts it


def test_args_validation_lists_every_problem():
    with pytest.raises(ArgsError) as e:
        _args(min_replicas=4, max_replicas=2, tenants={}, oidc_provider_arn=None)
    text = str(e.value)
    assert "max_replicas = 2: >= min_replicas (4)" in text
    assert "tenants = {}: at least one tenant" in text
    assert "oidc_provider_arn = None: required (with oidc_issuer)" in text
    assert grace_period_seconds(_args(drain_timeout_seconds=120, pre_stop_seconds=10)) == 135


def _ctx(**over) -> BuildContext:
    ctx = BuildContext(stack="test", tier="growth", region="us-east-1", tags={"team": "ml"})
    ctx.cluster = types.SimpleNamespace(oidc_provider_arn="arn:aws:iam::1:oidc-provider/x", oidc_issuer="x/id/1")
    for k, v in over.items():
        setattr(ctx, k, v)
    return ctx


def _settings(**over):
    return types.SimpleNamespace(gateway=section.GatewaySettings.model_validate({"enabled": True, **over}),
                                 batch=types.SimpleNamespace(enabled=False),
                                 rag=types.SimpleNamespace(embedding=types.SimpleNamespace(enabled=False)))


def test_section_wires_cache_alb_vllm_sagemaker_and_bedrock():
    def prog():
        tg = aws.lb.TargetGroup("gateway-tg", port=8080, protocol="HTTP", target_type="ip", vpc_id="vpc-1")
        ctx = _ctx(
            cache=types.SimpleNamespace(primary_endpoint=pulumi.Output.from_input("master.cache.example"),
                                        port=pulumi.Output.from_input(6379),
                                        auth_token=pulumi.Output.secret("t")),
            alb=types.SimpleNamespace(target_groups={"gateway": tg}),
            vllm_services={"llama": types.SimpleNamespace(service_url="http://llama.serving.svc:8000",
                                                          served_model_name="llama-3.1-8b")},
            sagemaker={"mistral": types.SimpleNamespace(endpoint_name="mistral-ep",
                                                        invoke_policy_arn="arn:aws:iam::1:policy/sm")},
            bedrock=types.SimpleNamespace(model_arn="arn:aws:bedrock:us-east-1:1:provisioned-model/abc",
                                          invoke_policy_arn="arn:aws:iam::1:policy/br"))
        section.build(ctx, _settings(tenants={"acme": {"tokensPerMinute": 1000}}, semanticCache=True))

    r = run_program(prog)
    cm = r.one("kubernetes:core/v1:ConfigMap", "gateway-config")
    doc = yaml.safe_load(cm.inputs["data"]["gateway.yaml"])
    assert doc["redis"]["url"] == "rediss://master.cache.example:6379/0"
    assert doc["upstreams"]["vllm-llama"] == {"kind": "openai", "baseUrl": "http://llama.serving.svc:8000/v1",
                                              "model": "llama-3.1-8b"}
    assert doc["upstreams"]["sagemaker-mistral"]["endpointName"] == "mistral-ep"
    assert doc["routes"]["llama"]["fallbacks"] == ["bedrock"]
    assert doc["routes"]["llama"]["cache"]["semantic"]["enabled"] is True
    assert doc["limiter"]["enabled"] is True
    attach = sorted(a.inputs["policyArn"] for a in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"))
    assert attach == ["arn:aws:iam::1:policy/br", "arn:aws:iam::1:policy/sm"]
    assert r.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "gateway-tgb")
    assert "gatewayApiKeys" in r.secret_outputs


def test_section_without_cache_or_alb_turns_shared_features_off():
    def prog():
        ctx = _ctx(bedrock=types.SimpleNamespace(model_arn="arn:aws:bedrock:us-east-1::inference-profile/x",
                                                 invoke_policy_arn="arn:aws:iam::1:policy/br"))
        section.build(ctx, _settings(tenants={"default": {"maxTokens": 512}}))

    r = run_program(prog)
    doc = yaml.safe_load(r.one("kubernetes:core/v1:ConfigMap", "gateway-config").inputs["data"]["gateway.yaml"])
    assert doc["limiter"]["enabled"] is False and doc["routes"]["bedrock"]["cache"]["exact"]["enabled"] is False
    assert r.by_type("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding") == []
    assert r.by_type("kubernetes:core/v1:Secret")[0].name == "gateway-tenant-keys"


def test_section_refuses_budgets_without_cache_and_an_empty_gateway():
    off = types.SimpleNamespace(enabled=False, models={}, endpoints={})
    cfg = _settings(tenants={"acme": {"tokensPerMinute": 10}}, semanticCache=True)
    cfg.serving, cfg.sagemaker, cfg.bedrock, cfg.cache = off, off, off, off
    text = "\n".join(p.render() for p in section.problems(cfg))
    assert "gateway.enabled = True: needs something to route to" in text
    assert "gateway.tenants.acme" in text and "need the shared cache" in text
    assert "gateway.semanticCache = True: needs the cache" in text


def test_disabled_section_creates_nothing():
    r = run_program(lambda: section.build(_ctx(), types.SimpleNamespace(gateway=section.GatewaySettings())))
    assert r.resources == []


@pytest.mark.parametrize("tier", ["prototype", "growth", "scale"])
def test_tier_presets_validate(tier):

    doc = yaml.safe_load((ROOT / "stacks" / "tiers" / tier / "gateway.yaml").read_text())
    s = section.GatewaySettings.model_validate(doc["gateway"])
    assert s.enabled and s.max_replicas >= s.min_replicas
