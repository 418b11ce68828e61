"""BatchInference with SageMaker async endpoints: the managed-dispatch queue and its DLQ (encrypted, redriven), the
dispatchers' least-privilege role (InvokeEndpointAsync on those endpoints only), the submitter's policy and a second
ScaledJob whose pods run the worker alone (no engine, no GPU, no batch toleration) with BATCH_BACKEND=sagemaker-async."""

from __future__ import annotations

import json

import pytest

from components import BatchInference
from components.batch import _batch
from infra.plan import run_program
from tests.components.batch.test_batch_inference import args

SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
EP = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/qwen-async"


@pytest.fixture(scope="module")
def plan():
    return run_program(lambda: BatchInference("batch", args(async_endpoints={"qwen-async": EP},
                                                            dispatch_max_parallelism=3)))


def policy(plan, name) -> dict:
    return json.loads(next(p for p in plan.by_type("aws:iam/policy:Policy") if p.name == name).inputs["policy"])


def test_the_dispatch_queue_is_encrypted_and_redriven_to_its_dlq(plan):
    queues = {q.name: q.inputs for q in plan.by_type("aws:sqs/queue:Queue")}
    assert set(queues) == {"batch-queue", "batch-dlq", "batch-dispatch-queue", "batch-dispatch-dlq"}
    key = queues["batch-queue"]["kmsMasterKeyId"]
    assert queues["batch-dispatch-queue"]["kmsMasterKeyId"] == key == queues["batch-dispatch-dlq"]["kmsMasterKeyId"]
    redrive = json.loads(queues["batch-dispatch-queue"]["redrivePolicy"])
    assert redrive["maxReceiveCount"] == 3 and "batch-dispatch-dlq" in redrive["deadLetterTargetArn"]


def test_the_dispatchers_may_invoke_only_the_async_endpoints(plan):
    doc = policy(plan, "batch-dispatcher-policy")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["InvokeAsyncEndpoints"] == {"Sid": "InvokeAsyncEndpoints", "Effect": "Allow",
                                              "Action": ["sagemaker:InvokeEndpointAsync"], "Resource": [EP]}
    assert "batch-dispatch-queue" in by_sid["ConsumeShards"]["Resource"][0]
    assert by_sid["ReadWriteBatches"]["Resource"][0].endswith("/batches/*")
    assignments = {a.name: a.inputs for a in plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert assignments["batch-dispatcher"]["serviceAccount"] == "batch-dispatcher"
    assert assignments["batch-dispatcher"]["namespace"] == "genai-batch"


def test_the_submitter_may_send_to_the_dispatch_queue_and_keda_reads_both_depths(plan):
    submit = policy(plan, "batch-dispatch-submit")["Statement"]
    assert submit[0]["Action"] == ["sqs:SendMessage"] and "batch-dispatch-queue" in submit[0]["Resource"][0]
    assert "batch-dispatch-dlq" in submit[1]["Resource"][0] and "sqs:SendMessage" not in submit[1]["Action"]
    scaler = policy(plan, "batch-scaler-policy")["Statement"][0]["Resource"]
    assert len(scaler) == 2 and "batch-dispatch-queue" in scaler[1]


def test_the_dispatcher_job_runs_the_worker_alone_on_cpu_nodes(plan):
    job = next(j for j in plan.by_type(SCALED_JOB) if j.name == "batch-dispatch-scaledjob").inputs
    assert job["metadata"]["name"] == "batch-dispatch"
    spec = job["spec"]
    assert spec["maxReplicaCount"] == 3 and spec["minReplicaCount"] == 0
    [trigger] = spec["triggers"]
    assert trigger["type"] == "aws-sqs-queue" and "batch-dispatch-queue" in trigger["metadata"]["queueURL"]
    pod = spec["jobTargetRef"]["template"]["spec"]
    assert "initContainers" not in pod and "tolerations" not in pod
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and pod["serviceAccountName"] == "batch-dispatcher"
    [worker] = pod["containers"]
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert env["BATCH_BACKEND"] == "sagemaker-async" and "BATCH_ENGINE_URL" not in env
    assert "batch-dispatch-queue" in env["BATCH_QUEUE_URL"]
    assert "nvidia.com/gpu" not in json.dumps(worker["resources"])
    assert worker["command"] == _batch.WORKER_COMMAND


def test_without_async_endpoints_there_is_no_dispatch():
    plan = run_program(lambda: BatchInference("batch", args()))
    names = {r.name for r in plan.resources}
    assert not {n for n in names if "dispatch" in n}
    assert len(plan.by_type(SCALED_JOB)) == 1


def test_the_dispatcher_job_matches_the_vendored_keda_crd():
    from tests.infra.test_upstream_truth import cr_errors, custom_resources
    jobs = [c for c in custom_resources("staging") if c[1] == SCALED_JOB]
    assert len(jobs) == 2
    for name, token, body in jobs:
        assert cr_errors(name, token, body) == []


def test_each_dead_letter_queue_has_a_cloudwatch_alarm_with_the_given_actions():
    topic = "arn:aws:sns:us-east-1:123456789012:batch-alerts"
    plan = run_program(lambda: BatchInference("batch", args(async_endpoints={"qwen-async": EP},
                                                            alarm_actions=[topic])))
    alarms = {a.name: a.inputs for a in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {"batch-dlq-not-empty", "batch-dispatch-dlq-not-empty"}
    for name, a in alarms.items():
        dlq = name.removesuffix("-not-empty")
        assert (a["namespace"], a["metricName"], a["statistic"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                                                      "Maximum")
        assert a["comparisonOperator"] == "GreaterThanThreshold" and a["threshold"] == 0
        assert dlq in a["dimensions"]["QueueName"]  # the DLQ's own name, not the work queue's
        assert a["alarmActions"] == [topic] == a["okActions"]
        assert a["treatMissingData"] == "notBreaching"
