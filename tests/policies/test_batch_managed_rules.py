"""The managed batch backends' rules (policies/batch_managed.py): quiet on the shipped plans, firing on a mutation of
a real plan and on small failing resources, each with its message."""

from __future__ import annotations

import json

import pytest

from infra.tiers import pack_config_for
from policies.engine import evaluate
from policies.pack import RULES
from tests.policies.kit import mutated, res, violations
from tests.stack_plans import planned

RULE_IDS = ("sagemaker-async-output-encrypted", "sagemaker-async-scale-to-zero",
            "bedrock-service-role-source-conditions")
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
TARGET = "aws:appautoscaling/target:Target"
ROLE = "aws:iam/role:Role"


def found(resources, tier, policy):
    report = evaluate(list(resources), config=pack_config_for(tier))
    return [(v.resource_name, v.message) for v in report.by_policy(policy)]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_rules_are_registered_and_the_shipped_plans_pass(stack):
    assert set(RULE_IDS) <= set(RULES)
    result, cfg = planned(stack)
    report = evaluate(list(result.resources), config=pack_config_for(cfg.tier))
    assert [v for v in report.violations if v.policy in RULE_IDS] == []


def test_async_results_without_a_key_fire_on_the_growth_plan():
    result, _ = planned("staging")
    bad = mutated(result.resources, "sagemaker-qwen7b-async-config",
                  lambda i: i["asyncInferenceConfig"]["outputConfig"].pop("kmsKeyId"), type_=CONFIG)
    assert found(bad, "growth", "sagemaker-async-output-encrypted") == [
        ("sagemaker-qwen7b-async-config", "asyncInferenceConfig.outputConfig has no kmsKeyId: the async results are "
                                          "written without a KMS key")]


def test_async_output_rule_passes_an_encrypted_and_a_real_time_config():
    ok = res(CONFIG, "c", {"asyncInferenceConfig": {"outputConfig": {"s3OutputPath": "s3://b/o/", "kmsKeyId": "k"}}})
    assert violations([ok, res(CONFIG, "rt", {"productionVariants": []})], "sagemaker-async-output-encrypted") == []
    bad = res(CONFIG, "c", {"asyncInferenceConfig": {"outputConfig": {"s3OutputPath": "s3://b/o/"}}})
    assert violations([bad], "sagemaker-async-output-encrypted")


def _async_stack(min_capacity: int, *, async_config: bool = True):
    config = res(CONFIG, "cfg", {"asyncInferenceConfig": {"outputConfig": {"kmsKeyId": "k"}}} if async_config else {})
    endpoint = res(ENDPOINT, "ep", {"endpointConfigName": "cfg-1"}, deps=[config])
    target = res(TARGET, "ep-scaling", {"serviceNamespace": "sagemaker", "minCapacity": min_capacity,
                                        "maxCapacity": 2}, deps=[endpoint])
    return [config, endpoint, target]


def test_an_idle_async_instance_fires_only_where_accelerators_scale_to_zero():
    assert violations(_async_stack(1), "sagemaker-async-scale-to-zero", tier="prototype") == [
        "ep-scaling: minCapacity is 1 on an async endpoint; this tier keeps no idle accelerator (minCapacity 0)"]
    assert violations(_async_stack(0), "sagemaker-async-scale-to-zero", tier="prototype") == []
    assert violations(_async_stack(1), "sagemaker-async-scale-to-zero", tier="growth") == []
    assert violations(_async_stack(1, async_config=False), "sagemaker-async-scale-to-zero", tier="prototype") == []


def trust(condition: dict | None) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_a_bedrock_trust_without_source_conditions_fires():
    assert violations([res(ROLE, "r", {"assumeRolePolicy": trust(None)})],
                      "bedrock-service-role-source-conditions") == [
        "the trust of bedrock.amazonaws.com has no aws:SourceAccount or aws:SourceArn condition: Bedrock could assume "
        "the role for another account's resources"]
    only_account = trust({"StringEquals": {"aws:SourceAccount": "123456789012"}})
    assert violations([res(ROLE, "r", {"assumeRolePolicy": only_account})],
                      "bedrock-service-role-source-conditions") == [
        "the trust of bedrock.amazonaws.com has no aws:SourceArn condition: Bedrock could assume the role for another "
        "account's resources"]


def test_a_conditioned_bedrock_trust_and_other_services_pass():
    ok = trust({"StringEquals": {"aws:SourceAccount": "123456789012"},
                "ArnLike": {"aws:SourceArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/*"}})
    other = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                       "Action": "sts:AssumeRole"}]})
    assert violations([res(ROLE, "a", {"assumeRolePolicy": ok}), res(ROLE, "b", {"assumeRolePolicy": other})],
                      "bedrock-service-role-source-conditions") == []


def test_the_shipped_service_role_fires_once_its_conditions_are_dropped():
    result, _ = planned("dev")

    def strip(inputs):
        doc = json.loads(inputs["assumeRolePolicy"])
        doc["Statement"][0].pop("Condition")
        inputs["assumeRolePolicy"] = json.dumps(doc)
    bad = mutated(result.resources, "batch-bedrock-role", strip, type_=ROLE)
    assert [n for n, _ in found(bad, "prototype", "bedrock-service-role-source-conditions")] == ["batch-bedrock-role"]


def test_the_growth_async_endpoint_would_fire_under_the_prototype_facts_with_an_idle_instance():
    result, _ = planned("staging")
    assert found(result.resources, "prototype", "sagemaker-async-scale-to-zero") == []
    bad = mutated(result.resources, "sagemaker-qwen7b-async-scaling", lambda i: i.update(minCapacity=1), type_=TARGET)
    assert [n for n, _ in found(bad, "prototype", "sagemaker-async-scale-to-zero")] == [
        "sagemaker-qwen7b-async-scaling"]
