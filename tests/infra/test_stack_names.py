"""Any stack name plans, and every AWS physical name in the plan is valid for its service; the ECR teardown option
flows from stack config to ``forceDelete``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.naming import name_problems
from infra.config import ConfigError, load
from infra.program import plan_stack

STACKS_DIR = Path(__file__).resolve().parents[2] / "stacks"

NAME_INPUTS: dict[str, dict[str, str]] = {
    # resource type -> {input holding a physical name -> the naming rule it must satisfy}
    "aws:s3/bucket:Bucket": {"bucket": "s3-bucket"},
    "aws:s3/bucketV2:BucketV2": {"bucket": "s3-bucket"},
    "aws:ecr/repository:Repository": {"name": "ecr-repository"},
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": {"repository": "ecr-repository"},
    "aws:eks/cluster:Cluster": {"name": "eks-cluster"},
    "aws:eks/nodeGroup:NodeGroup": {"clusterName": "eks-cluster"},
    "aws:eks/addon:Addon": {"clusterName": "eks-cluster"},
    "aws:cloudwatch/logGroup:LogGroup": {"name": "log-group"},
    "aws:elasticache/replicationGroup:ReplicationGroup": {"replicationGroupId": "elasticache-replication-group",
                                                          "finalSnapshotIdentifier": "elasticache-snapshot"},
    "aws:elasticache/user:User": {"userId": "elasticache-user"},
    "aws:elasticache/userGroup:UserGroup": {"userGroupId": "elasticache-user-group"},
    "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput": {
        "provisionedModelName": "bedrock-provisioned-model"},
    "aws:sagemaker/endpoint:Endpoint": {"name": "sagemaker-endpoint"},
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": {"name": "sagemaker-endpoint-config"},
    "aws:sagemaker/model:Model": {"name": "sagemaker-model"},
    "aws:iam/role:Role": {"name": "iam-role"},
    "aws:iam/policy:Policy": {"name": "iam-policy"},
}


def physical_names(result) -> list[tuple[str, str, str, str]]:
    """(resource name, input, rule, value) of every physical name the plan sets explicitly."""
    out = []
    for r in result.resources:
        for key, service in NAME_INPUTS.get(r.type, {}).items():
            value = r.inputs.get(key)
            if isinstance(value, str):
                out.append((r.name, key, service, value))
    return out


def invalid_names(result) -> list[str]:
    return [f"{res}.{key} = {value!r} ({service}): {'; '.join(name_problems(service, value))}"
            for res, key, service, value in physical_names(result) if name_problems(service, value)]


LONG = "platform-team-inference-gateway-staging-eu-01"  # 45 characters


@pytest.mark.parametrize("stack", ["my_stack", "Team-A", LONG])
def test_the_dev_stack_plans_under_any_stack_name(stack):
    assert len(LONG) == 45
    result, _ = plan_stack(stack=stack, config_file=str(STACKS_DIR / "Pulumi.dev.yaml"))
    checked = {service for _, _, service, _ in physical_names(result)}
    assert {"s3-bucket", "ecr-repository", "eks-cluster", "log-group"} <= checked  # the check is not vacuous
    assert invalid_names(result) == []
    assert result.outputs["modelsBucket"] in {v for _, _, s, v in physical_names(result) if s == "s3-bucket"}


def test_the_prod_stack_plans_under_a_long_mixed_case_name():
    result, _ = plan_stack(stack="Team_A-" + "x" * 40, config_file=str(STACKS_DIR / "Pulumi.prod.yaml"))
    checked = {service for _, _, service, _ in physical_names(result)}
    assert {"bedrock-provisioned-model", "elasticache-snapshot", "eks-cluster", "s3-bucket"} <= checked
    assert invalid_names(result) == []


def test_the_check_catches_an_invalid_name():
    class R:
        type, name, inputs = "aws:s3/bucket:Bucket", "models", {"bucket": "genai-scale-Team-A-models"}

    class Result:
        resources = [R()]

    assert invalid_names(Result()) == [
        "models.bucket = 'genai-scale-Team-A-models' (s3-bucket): must match [a-z0-9][a-z0-9.-]*[a-z0-9]"]


def test_stacks_whose_names_differ_in_case_or_separator_get_different_buckets():
    dev = str(STACKS_DIR / "Pulumi.dev.yaml")
    names = {s: plan_stack(stack=s, config_file=dev)[0].outputs["modelsBucket"] for s in ("Team-A", "team-a")}
    assert names["Team-A"] != names["team-a"] == "genai-scale-team-a-models-us-east-1"


# --- ECR teardown: genai-scale:serving.images.forceDelete and genai-scale:gateway.forceDeleteRepository ---------

def _stack_file(tmp_path: Path, base: str, extra: dict) -> str:
    doc = yaml.safe_load((STACKS_DIR / f"Pulumi.{base}.yaml").read_text())
    for key, value in extra.items():
        doc["config"][key] = value
    path = tmp_path / f"Pulumi.{base}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _force_delete(result) -> dict[str, bool]:
    return {r.name: r.inputs["forceDelete"] for r in result.by_type("aws:ecr/repository:Repository")}


def test_repositories_keep_their_images_on_destroy_by_default():
    result, cfg = plan_stack(stack="dev")
    assert cfg.serving.images.force_delete is False and cfg.gateway.force_delete_repository is False
    assert _force_delete(result) == {"gateway-repo": False, "vllm-nvidia-repo": False}


def test_force_delete_flows_from_stack_config_to_every_repository(tmp_path):
    path = _stack_file(tmp_path, "dev", {"genai-scale:serving": {"images": {"forceDelete": True}},
                                         "genai-scale:gateway": {"forceDeleteRepository": True}})
    result, _ = plan_stack(stack="dev", config_file=path)
    assert _force_delete(result) == {"gateway-repo": True, "vllm-nvidia-repo": True}


def test_force_delete_of_the_vllm_images_alone(tmp_path):
    path = _stack_file(tmp_path, "dev", {"genai-scale:serving": {"images": {"forceDelete": True}}})
    result, _ = plan_stack(stack="dev", config_file=path)
    assert _force_delete(result) == {"gateway-repo": False, "vllm-nvidia-repo": True}


def test_a_bad_force_delete_value_is_reported_with_its_key(tmp_path):
    path = _stack_file(tmp_path, "dev", {"genai-scale:serving": {"images": {"forceDelete": "sometimes"}},
                                         "genai-scale:gateway": {"forceDeleteRepository": "sometimes"}})
    with pytest.raises(ConfigError) as err:
        load(stack="dev", config_file=path)
    text = str(err.value)
    assert "genai-scale:serving.images.forceDelete = 'sometimes'" in text
    assert "genai-scale:gateway.forceDeleteRepository = 'sometimes'" in text


# --- user keys that Pulumi turns into AWS names ------------------------------------------------------------------

def test_a_sagemaker_endpoint_key_must_give_valid_aws_names(tmp_path):
    endpoint = {"model": "Qwen/Qwen2.5-7B-Instruct", "instanceType": "ml.g5.2xlarge"}
    path = _stack_file(tmp_path, "prod", {"genai-scale:sagemaker": {"endpoints": {
        "Qwen_7B": endpoint, "q" * 37: endpoint, "qwen-7b": endpoint, "x" * 36: endpoint}}})
    with pytest.raises(ConfigError) as err:
        load(stack="prod", config_file=path)
    text = str(err.value)
    expected = ("an endpoint name of letters, digits and hyphens, at most 36 characters (its SageMaker endpoint is "
                "named sagemaker-<name>-endpoint-<7 random characters>, at most 63 of [a-zA-Z0-9-])")
    assert f"genai-scale:sagemaker.endpoints.Qwen_7B = 'Qwen_7B': {expected}" in text
    assert f"genai-scale:sagemaker.endpoints.{'q' * 37} = '{'q' * 37}': {expected}" in text
    assert "qwen-7b" not in text and "x" * 36 not in text


def test_a_model_key_must_give_a_valid_iam_role_name():
    from infra.sections.serving import model_key_problems

    assert model_key_problems("llama-8b") == [] and model_key_problems("m" * 43) == []
    [problem] = model_key_problems("m" * 44)
    assert (problem.path, problem.value) == (f"serving.models.{'m' * 44}", "m" * 44)
    assert problem.expected == ("a model name of at most 43 letters, digits and +=,.@_- (its IAM role is named "
                                "<name>-weights-role-<7 random characters>, at most 64)")
    assert model_key_problems("llama 8b") != []
