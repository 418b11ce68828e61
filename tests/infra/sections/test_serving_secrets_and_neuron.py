"""Stack settings of issue 14's cluster items: the serving section's Hugging Face token (from Secrets Manager or a
Pulumi secret, never clear text in the stack file), the Neuron scheduler extension (required, and used, when a replica
takes part of a node's devices; its kube-scheduler follows the cluster version) and ``cluster.metricsServer``."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra import program
from infra.config import ROOT, SECRET_VALUE, ConfigError, build_settings, read_stack_file
from infra.plan import jsonable, run_program
from infra.sections import serving

SECRET = "kubernetes:core/v1:Secret"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:genai/hf-token-AbCdEf"


def stack_config(stack: str) -> dict:
    return read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")


def with_config(stack: str = "dev", **keys) -> dict:
    raw = stack_config(stack)
    for key, value in keys.items():
        raw[f"genai-scale:{key}"] = value
    return raw


def plan(raw: dict, stack: str = "dev"):
    cfg = build_settings(raw, source=f"stacks/Pulumi.{stack}.yaml")
    return run_program(lambda: program.build_stack(cfg, stack), project=program.PROJECT, stack=stack, config=raw,
                       region=cfg.region), cfg


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.dev.yaml")
    return str(exc.value)


def test_the_loaders_secret_marker_is_the_sections():
    assert serving.SECRET_VALUE == SECRET_VALUE


# --- Hugging Face token ---

@pytest.mark.parametrize("secret_id", ["genai/hf-token", SECRET_ARN])
def test_token_from_secrets_manager_reaches_every_vllm_service_as_a_secret(secret_id):
    result, cfg = plan(with_config(serving={"huggingFaceTokenSecretId": secret_id}))
    names = set(cfg.serving.models)
    assert names
    secrets = {r.name: r for r in result.by_type(SECRET) if r.name.endswith("-hf-token")}
    assert set(secrets) == {f"{n}-hf-token" for n in names}
    for name in names:
        assert jsonable(secrets[f"{name}-hf-token"].inputs)["stringData"] == "[secret]"
        assert jsonable(secrets[f"{name}-hf-token"].inputs, reveal_secrets=True)["stringData"] == {
            "token": "hf_mocktoken0000"}, "the value read from Secrets Manager (mocked)"
        dep = result.one(DEPLOYMENT, f"{name}-deployment")
        env = dep.get("spec.template.spec.containers.0.env")
        assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": f"{name}-hf-token", "key": "token"}}} \
            in env
        assert secrets[f"{name}-hf-token"].urn in dep.dependencies
    # the mocked secret string never shows in the plan
    assert "hf_mocktoken0000" not in json.dumps(result.to_json())


def test_no_token_configured_no_token_secret():
    result, _ = plan(stack_config("dev"))
    assert not [r for r in result.by_type(SECRET) if r.name.endswith("-hf-token")]


def test_a_secure_token_in_the_stack_file_is_accepted_and_planned_as_a_secret():
    # `pulumi config set --secret --path serving.huggingFaceToken ...` writes {secure: ...}; the loader reads "[secret]"
    result, _ = plan(with_config(serving={"huggingFaceToken": SECRET_VALUE}))
    secrets = [r for r in result.by_type(SECRET) if r.name.endswith("-hf-token")]
    assert secrets and all(jsonable(s.inputs)["stringData"] == "[secret]" for s in secrets)


def test_a_token_in_clear_is_refused_without_echoing_it():
    text = problems_of(with_config(serving={"huggingFaceToken": "hf_abcdefghijklmnop"}))
    assert ("genai-scale:serving.huggingFaceToken = '<in clear>': a Pulumi secret, never clear text in the stack "
            "file: `pulumi config set --secret --path serving.huggingFaceToken <token>`, or keep it in Secrets "
            "Manager and set serving.huggingFaceTokenSecretId") in text
    assert "hf_abcdefghijklmnop" not in text


def test_under_pulumi_a_secret_config_key_is_accepted():
    raw = with_config(serving={"huggingFaceToken": "hf_abcdefghijklmnop"})
    pulumi.runtime.set_all_config({}, ["genai-scale:serving"])  # how the engine marks a key holding a secure value
    try:
        build_settings(raw, source="stacks/Pulumi.dev.yaml")
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_token_from_two_places_is_refused():
    text = problems_of(with_config(serving={"huggingFaceToken": SECRET_VALUE,
                                            "huggingFaceTokenSecretId": "genai/hf-token"}))
    assert ("genai-scale:serving.huggingFaceToken = '[secret]': set only one of huggingFaceToken and "
            "huggingFaceTokenSecretId") in text


def test_secret_id_must_be_a_name_or_an_arn():
    text = problems_of(with_config(serving={"huggingFaceTokenSecretId": "no spaces allowed"}))
    assert "genai-scale:serving.huggingFaceTokenSecretId = 'no spaces allowed'" in text


# --- Neuron scheduler extension ---

INF2_TP4 = {"models": {"llama-8b-inf2": {"tensorParallelSize": 4}}}
"""The scale tier's Inferentia2 model on 2 of the 12 devices of an inf2.48xlarge."""


def test_part_of_a_nodes_neuron_devices_needs_the_scheduler_extension():
    text = problems_of(with_config("prod", serving=INF2_TP4))
    assert ("genai-scale:neuron.schedulerExtension = False: true: serving.models.llama-8b-inf2: one replica takes 2 "
            "of the 12 Neuron devices of one inf2.48xlarge node, which must be directly connected") in text


def test_with_the_extension_the_pods_use_my_scheduler_matched_to_the_cluster():
    result, _ = plan(with_config("prod", serving=INF2_TP4, neuron={"schedulerExtension": True}), stack="prod")
    values = result.one("kubernetes:helm.sh/v3:Release", "neuron").inputs["values"]
    assert values["scheduler"]["enabled"] is True
    assert values["scheduler"]["customScheduler"]["image"] == {"repository": "registry.k8s.io/kube-scheduler",
                                                               "tag": "v1.35.0"}
    inf2 = result.one(DEPLOYMENT, "llama-8b-inf2-deployment")
    assert inf2.get("spec.template.spec.schedulerName") == "my-scheduler"
    assert result.one(DEPLOYMENT, "llama-8b-inf2-warm").get("spec.template.spec.schedulerName") == "my-scheduler"
    assert result.one(DEPLOYMENT, "llama-8b-deployment").get("spec.template.spec.schedulerName") is None


def test_shipped_stacks_run_no_neuron_scheduler():
    result, _ = plan(stack_config("prod"), stack="prod")
    assert result.one("kubernetes:helm.sh/v3:Release", "neuron").inputs["values"]["scheduler"] == {"enabled": False}
    assert result.one(DEPLOYMENT, "llama-8b-inf2-deployment").get("spec.template.spec.schedulerName") is None


ALL_ADDONS_PINNED = {"vpc-cni": "v1", "coredns": "v1", "kube-proxy": "v1", "eks-pod-identity-agent": "v1",
                     "aws-ebs-csi-driver": "v1", "metrics-server": "v1"}


def test_the_scheduler_tag_follows_the_cluster_version():
    result, _ = plan(with_config("prod", serving=INF2_TP4, neuron={"schedulerExtension": True},
                                 cluster={"version": "1.34"}), stack="prod")
    values = result.one("kubernetes:helm.sh/v3:Release", "neuron").inputs["values"]
    assert values["scheduler"]["customScheduler"]["image"]["tag"] == "v1.34.1"
    text = problems_of(with_config("prod", neuron={"schedulerExtension": True},
                                   cluster={"version": "1.33", "addonVersions": ALL_ADDONS_PINNED}))
    assert ("genai-scale:cluster.version = '1.33': a Kubernetes minor with a pinned kube-scheduler tag for the "
            "scheduler extension: 1.34, 1.35 (or set neuron.schedulerImageTag)") in text


# --- metrics-server: a cluster setting, on by default ---

def test_metrics_server_is_a_cluster_setting():
    from tests.infra.test_autoscaler_sources import autoscaler_source_problems
    on, _ = plan(stack_config("dev"))
    assert [a.inputs["addonVersion"] for a in on.by_type("aws:eks/addon:Addon")
            if a.inputs["addonName"] == "metrics-server"] == ["v0.8.1-eksbuild.6"]
    off, _ = plan(with_config(cluster={"metricsServer": False}))
    assert "metrics-server" not in {a.inputs["addonName"] for a in off.by_type("aws:eks/addon:Addon")}
    assert any("need metrics-server" in p for p in autoscaler_source_problems(off.resources))


@pytest.mark.parametrize("keys", [{"huggingFaceTokenSecretId": "genai/hf-token"}, {"huggingFaceToken": SECRET_VALUE}])
def test_the_token_secret_declares_its_source_and_passes_the_literal_secret_rule(keys):
    from infra.tiers import pack_config_for
    from policies.engine import evaluate

    result, cfg = plan(with_config(serving=keys))
    tokens = [r for r in result.by_type(SECRET) if r.name.endswith("-hf-token")]
    assert tokens
    expected = ("secretsmanager:genai/hf-token" if "huggingFaceTokenSecretId" in keys
                else "pulumi-config:genai-scale:serving.huggingFaceToken")
    for r in tokens:
        assert r.inputs["metadata"]["annotations"]["genai-scale.io/secret-source"] == expected
    report = evaluate(result.resources, config=pack_config_for(cfg.tier))
    assert [v.message for v in report.violations if v.policy == "no-literal-secrets"] == []
