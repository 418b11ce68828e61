"""The managed batch backends in the stacks: Bedrock batch in every tier (service role, submitter policy on the
gateway's IRSA role, ``batch.backends.bedrock``), the growth tier's SageMaker async endpoint (no real-time route, a
``sagemaker-async`` backend on the dispatch queue, results in the batch bucket under its key), and the config rules'
messages."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.config import ROOT, ConfigError, build_settings, read_stack_file
from tests.stack_plans import planned


def gateway_doc(result) -> dict:
    return yaml.safe_load(result.one("kubernetes:core/v1:ConfigMap", "gateway-config").inputs["data"]["gateway.yaml"])


def attachments(result) -> dict[str, str]:
    return {a.name: a.inputs["policyArn"] for a in result.by_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.name.startswith("gateway-irsa-managed-")}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_tier_runs_bedrock_batches_with_the_service_role(stack):
    result, cfg = planned(stack)
    backend = gateway_doc(result)["batch"]["backends"]["bedrock"]
    role = result.one("aws:iam/role:Role", "batch-bedrock-role")
    assert backend == {"kind": "bedrock", "modelId": "us.amazon.nova-lite-v1:0", "region": cfg.region,
                       "roleArn": role.outputs["arn"]}
    assert result.outputs["batchBedrockRoleArn"] == role.outputs["arn"]
    submit = result.one("aws:iam/policy:Policy", "batch-bedrock-submit")
    assert attachments(result)["gateway-irsa-managed-batch-bedrock"] == submit.outputs["arn"]
    pass_role = next(s for s in json.loads(submit.inputs["policy"])["Statement"] if s["Sid"] == "PassServiceRole")
    assert pass_role["Resource"] == [role.outputs["arn"]]
    bucket = result.outputs["batchBucket"]
    policy = json.loads(result.one("aws:iam/policy:Policy", "batch-bedrock-policy").inputs["policy"])
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{bucket}/batches/*/bedrock/input/*"]


def test_the_growth_tier_async_endpoint_is_a_batch_backend_not_a_route():
    result, cfg = planned("staging")
    doc = gateway_doc(result)
    endpoint = result.one("aws:sagemaker/endpoint:Endpoint", "sagemaker-qwen7b-async-endpoint")
    queue = result.one("aws:sqs/queue:Queue", "batch-dispatch-queue")
    assert doc["batch"]["backends"]["qwen7b-async"] == {
        "kind": "sagemaker-async", "endpointName": endpoint.outputs["name"], "region": cfg.region,
        "queueUrl": queue.outputs["url"]}
    assert "sagemaker-qwen7b-async" not in doc["routes"] and "sagemaker-qwen7b-async" not in doc["upstreams"]
    assert "sagemaker-qwen7b" in doc["routes"]  # the real-time endpoint keeps its route
    managed = attachments(result)
    assert "gateway-irsa-managed-sagemaker-qwen7b-async" not in managed
    assert managed["gateway-irsa-managed-batch-dispatch"] == result.one(
        "aws:iam/policy:Policy", "batch-dispatch-submit").outputs["arn"]
    assert result.outputs["batchDispatchQueueUrl"] == queue.outputs["url"]
    config = result.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "sagemaker-qwen7b-async-config")
    out = config.inputs["asyncInferenceConfig"]["outputConfig"]
    bucket = result.outputs["batchBucket"]
    assert out["s3OutputPath"] == f"s3://{bucket}/batches/sagemaker-async/qwen7b-async/output/"
    assert out["kmsKeyId"] == result.one("aws:kms/key:Key", "batch-key").outputs["arn"]
    target = result.one("aws:appautoscaling/target:Target", "sagemaker-qwen7b-async-scaling")
    assert target.inputs["minCapacity"] == 0
    dispatcher = json.loads(result.one("aws:iam/policy:Policy", "batch-dispatcher-policy").inputs["policy"])
    invoke = next(s for s in dispatcher["Statement"] if s["Sid"] == "InvokeAsyncEndpoints")
    assert invoke["Resource"] == [endpoint.outputs["arn"]]


def test_dev_and_prod_have_no_dispatch_queue():
    for stack in ("dev", "prod"):
        result, _ = planned(stack)
        assert not [q for q in result.by_type("aws:sqs/queue:Queue") if "dispatch" in q.name]
        assert "qwen7b-async" not in gateway_doc(result)["batch"]["backends"]


def raw(stack: str = "dev", **keys) -> dict:
    out = read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    out.update({f"genai-scale:{k}": v for k, v in keys.items()})
    return out


def problems_of(config: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(config, source="stacks/Pulumi.dev.yaml")
    return str(exc.value)


ASYNC = {"mode": "async", "instanceType": "ml.g6.2xlarge", "model": "Qwen/Qwen2.5-7B-Instruct", "minInstances": 0,
         "maxInstances": 1}


def test_bedrock_batch_needs_batch_and_a_model_id():
    text = problems_of(raw(batch={"enabled": False, "bedrock": {"enabled": True, "modelId": None}}))
    assert ("genai-scale:batch.bedrock.enabled = True: false without batch (batch.enabled): the jobs read and write "
            "the batch bucket") in text
    assert "genai-scale:batch.bedrock.modelId" in text and "required when batch.bedrock.enabled" in text


def test_a_provisioned_throughput_variant_is_not_a_batch_model():
    text = problems_of(raw(batch={"bedrock": {"modelId": "amazon.nova-lite-v1:0:24k"}}))
    assert ("genai-scale:batch.bedrock.modelId = 'amazon.nova-lite-v1:0:24k': a base model id or cross-Region "
            "profile id, not the Provisioned Throughput variant: use amazon.nova-lite-v1:0 or "
            "us.amazon.nova-lite-v1:0") in text


def test_a_backend_name_is_one_backend():
    text = problems_of(raw("staging", batch={"bedrock": {"name": "qwen7b-async"}}))
    assert ("genai-scale:batch.bedrock.name = 'qwen7b-async': a batch model name no async SageMaker endpoint uses "
            "(both are keys of the gateway's batch.backends)") in text


def test_an_async_endpoint_needs_batch():
    text = problems_of(raw(batch={"enabled": False, "bedrock": {"enabled": False}},
                           sagemaker={"endpoints": {"qa": ASYNC}}))
    assert ("genai-scale:sagemaker.endpoints.qa.mode = 'async': real-time, or turn batch on (batch.enabled)") in text


def test_the_prototype_tier_takes_async_endpoints_that_scale_to_zero_only():
    build_settings(raw(sagemaker={"endpoints": {"qa": ASYNC}}), source="stacks/Pulumi.dev.yaml")
    text = problems_of(raw(sagemaker={"endpoints": {"qa": {**ASYNC, "minInstances": 1}}}))
    assert ("genai-scale:sagemaker.endpoints.qa.minInstances = 1: 0 in the prototype tier (tier fact "
            "sagemakerEndpoints is false: no instance may stay up while the queue is empty)") in text
    real_time = {k: v for k, v in ASYNC.items() if k != "mode"} | {"minInstances": 1}
    text = problems_of(raw(sagemaker={"endpoints": {"qa": ASYNC, "rt": real_time}}))
    assert "genai-scale:sagemaker.endpoints = ['rt']: empty in the prototype tier but for async endpoints" in text


def test_async_settings_on_a_real_time_endpoint_are_refused():
    real_time = {k: v for k, v in ASYNC.items() if k != "mode"} | {"minInstances": 1,
                                                                    "maxConcurrentInvocationsPerInstance": 4}
    text = problems_of(raw("staging", sagemaker={"endpoints": {"rt": real_time}}))
    assert ("genai-scale:sagemaker.endpoints.rt.maxConcurrentInvocationsPerInstance = 4: unset for a real-time "
            "endpoint (mode: async only)") in text
