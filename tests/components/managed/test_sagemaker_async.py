"""SageMakerLmiEndpoint in async mode: the AsyncInferenceConfig (results and failures under the given prefix,
encrypted), scale to zero (backlog target tracking + the HasBacklogWithoutCapacity alarm and its step policy), the
InvokeEndpointAsync-only invoke policy, the execution role's S3 reach, and the mode's validation messages."""

from __future__ import annotations

import json

import pytest

from components.managed import _sagemaker as sm
from components.managed.sagemaker_endpoint import SageMakerLmiEndpoint, SageMakerLmiEndpointArgs
from tests.kit.plan import errors_of, plan_component

KEY = "arn:aws:kms:us-east-1:123456789012:key/batch"
ASYNC = {"instance_type": "ml.g6.2xlarge", "model": "Qwen/Qwen2.5-7B-Instruct", "region": "us-east-1",
         "mode": "async", "min_instances": 0, "max_instances": 2, "async_input_s3_uri": "s3://bkt/batches/",
         "async_output_s3_uri": "s3://bkt/batches/sagemaker-async/qa/", "async_kms_key_arn": KEY}


def args(**kw):
    return SageMakerLmiEndpointArgs(**{**ASYNC, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


@pytest.fixture(scope="module")
def plan():
    return plan_component(lambda: SageMakerLmiEndpoint("qa", args(max_concurrent_invocations_per_instance=4)))[0]


def of(plan, type_: str) -> dict:
    return {r.name: r.inputs for r in plan.by_type(type_)}


def test_the_config_writes_encrypted_results_and_failures_under_the_prefix(plan):
    config = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs
    assert config["asyncInferenceConfig"] == {
        "outputConfig": {"s3OutputPath": "s3://bkt/batches/sagemaker-async/qa/output/",
                         "s3FailurePath": "s3://bkt/batches/sagemaker-async/qa/failure/", "kmsKeyId": KEY},
        "clientConfig": {"maxConcurrentInvocationsPerInstance": 4}}
    [variant] = config["productionVariants"]
    assert variant["initialInstanceCount"] == 1  # the API creates no empty variant; it scales to zero once idle
    assert "routingConfigs" not in variant


def test_scale_to_zero_backlog_tracking_and_the_step_from_zero(plan):
    target = plan.one("aws:appautoscaling/target:Target").inputs
    assert target["minCapacity"] == 0 and target["maxCapacity"] == 2
    policies = of(plan, "aws:appautoscaling/policy:Policy")
    assert set(policies) == {"qa-backlog", "qa-from-zero"}  # no real-time invocation/concurrency tracking
    tracking = policies["qa-backlog"]["targetTrackingScalingPolicyConfiguration"]
    endpoint = plan.one("aws:sagemaker/endpoint:Endpoint")
    name = target["resourceId"].split("/")[1]
    assert tracking["customizedMetricSpecification"] == {
        "metricName": "ApproximateBacklogSizePerInstance", "namespace": "AWS/SageMaker", "statistic": "Average",
        "dimensions": [{"name": "EndpointName", "value": name}]}
    assert tracking["targetValue"] == 5.0
    step = policies["qa-from-zero"]
    assert step["policyType"] == "StepScaling"
    assert step["stepScalingPolicyConfiguration"]["adjustmentType"] == "ChangeInCapacity"
    assert step["stepScalingPolicyConfiguration"]["stepAdjustments"] == [
        {"metricIntervalLowerBound": "0", "scalingAdjustment": 1}]
    alarm = plan.one("aws:cloudwatch/metricAlarm:MetricAlarm").inputs
    assert (alarm["metricName"], alarm["namespace"], alarm["statistic"]) == (
        "HasBacklogWithoutCapacity", "AWS/SageMaker", "Average")
    assert alarm["dimensions"] == {"EndpointName": name}
    assert (alarm["threshold"], alarm["comparisonOperator"], alarm["evaluationPeriods"]) == (
        1, "GreaterThanOrEqualToThreshold", 2)
    assert len(alarm["alarmActions"]) == 1 and "qa-from-zero" in alarm["alarmActions"][0]
    assert endpoint.name == "qa-endpoint"


def test_the_invoke_policy_allows_invoke_endpoint_async_only(plan):
    doc = json.loads(of(plan, "aws:iam/policy:Policy")["qa-invoke"]["policy"])
    assert [s["Action"] for s in doc["Statement"]] == [["sagemaker:InvokeEndpointAsync"]]


def test_the_execution_role_reads_requests_and_writes_only_the_result_folders(plan):
    doc = json.loads(of(plan, "aws:iam/policy:Policy")["qa-execution"]["policy"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["AsyncReadRequests"]["Resource"] == ["arn:aws:s3:::bkt/batches/*"]
    assert by_sid["AsyncWriteResults"]["Resource"] == ["arn:aws:s3:::bkt/batches/sagemaker-async/qa/output/*",
                                                       "arn:aws:s3:::bkt/batches/sagemaker-async/qa/failure/*"]
    assert by_sid["AsyncKey"]["Resource"] == [KEY]


def test_a_real_time_endpoint_renders_as_before():
    doc = sm.invoke_policy("arn:x")
    assert doc["Statement"][0]["Action"] == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"]
    rt = sm.execution_role_policy(partition="aws", region="us-east-1", account="1", repository_arn="r",
                                  s3_model=None, kms_key_arn=None, vpc_arn=None)
    assert not any(s["Sid"].startswith("Async") for s in rt["Statement"])


def test_async_needs_its_s3_prefixes_and_key():
    text = errors(async_input_s3_uri=None, async_output_s3_uri="bkt/out", async_kms_key_arn=None)
    assert ("async_input_s3_uri = None: required for an async endpoint (its requests and results live in S3, "
            "encrypted with the key)") in text
    assert "async_output_s3_uri = 'bkt/out': an S3 prefix 's3://bucket/prefix/' ending with '/'" in text
    assert "async_kms_key_arn = None: required for an async endpoint" in text


def test_only_an_async_endpoint_scales_to_zero_or_takes_async_settings():
    text = errors(mode="real-time", min_instances=0, async_input_s3_uri=None, async_output_s3_uri=None,
                  async_kms_key_arn=None, max_concurrent_invocations_per_instance=4)
    assert ("min_instances = 0: >= 1 for a real-time endpoint (only mode: async scales to zero: a real-time endpoint "
            "without inference components keeps an instance)") in text
    assert "max_concurrent_invocations_per_instance = 4: unset for a real-time endpoint (mode: async only)" in text
    text = errors(mode="real-time", min_instances=1, async_input_s3_uri=None, async_output_s3_uri=None)
    assert f"async_kms_key_arn = '{KEY}': unset for a real-time endpoint (mode: async only)" in text


def test_client_concurrency_is_bounded_by_the_api():
    assert "max_concurrent_invocations_per_instance" in errors(max_concurrent_invocations_per_instance=1001)
