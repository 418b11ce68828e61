"""BatchInference: the queues and their DLQ (encrypted), the bucket, the Pod Identity roles and their least-privilege
policies, the KEDA objects, and a worker pod whose engine renders exactly the flags of a VllmService of the model."""

from __future__ import annotations

import json

import pytest

from components import BatchInference, BatchInferenceArgs
from components.batch import _batch
from components.catalog.accelerators import lookup
from components.errors import ArgsError
from components.serving.vllm.args import NodeGroupPlacement, VllmModelSettings, VllmServiceArgs
from components.serving.vllm.manifests import render_manifests
from infra.plan import run_program

SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
BATCH_TAINT = {"key": "genai-scale.io/batch", "value": "true", "effect": "NoSchedule"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def placement(labels=None, taints=None) -> NodeGroupPlacement:
    return NodeGroupPlacement(
        name="batch-a10g", accelerator=lookup("g5.xlarge"),
        labels={"genai-scale/accelerator": "a10g", "genai-scale.io/capacity": "batch"} if labels is None else labels,
        taints=[GPU_TAINT, BATCH_TAINT] if taints is None else taints)


MODEL = VllmModelSettings(model_id="meta-llama/Llama-3.1-8B-Instruct", served_model_name="llama-8b",
                          weights_uri="s3://models-bucket/llama/", kv_tokens_per_sequence=1024)


def args(**over) -> BatchInferenceArgs:
    base = dict(model=MODEL, placement=placement(), engine_image="vllm:pinned", worker_image="gateway:1",
                cluster_name="eks", region="us-east-1")
    return BatchInferenceArgs(**{**base, **over})


@pytest.fixture(scope="module")
def plan():
    return run_program(lambda: BatchInference("batch", args()))


def pod_of(plan) -> dict:
    return plan.one(SCALED_JOB).inputs["spec"]["jobTargetRef"]["template"]["spec"]


def test_queue_and_dlq_are_encrypted_with_the_key_and_redrive_after_max_receives(plan):
    queues = {q.name: q.inputs for q in plan.by_type("aws:sqs/queue:Queue")}
    assert set(queues) == {"batch-queue", "batch-dlq"}
    key_arn = queues["batch-queue"]["kmsMasterKeyId"]
    assert key_arn.startswith("arn:aws:kms:") and queues["batch-dlq"]["kmsMasterKeyId"] == key_arn
    assert queues["batch-dlq"]["messageRetentionSeconds"] == 14 * 24 * 3600
    assert queues["batch-queue"]["visibilityTimeoutSeconds"] == 900
    redrive = json.loads(queues["batch-queue"]["redrivePolicy"])
    assert redrive["maxReceiveCount"] == 3 and redrive["deadLetterTargetArn"].startswith("arn:aws:sqs:us-east-1:")
    assert plan.one("aws:kms/key:Key").inputs["enableKeyRotation"] is True


def test_bucket_is_kms_encrypted_private_tls_only_and_expires_batches(plan):
    sse = plan.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    pab = plan.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    policy = json.loads(plan.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert policy["Statement"][0]["Effect"] == "Deny"
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [rule] = plan.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["filter"] == {"prefix": "batches/"} and rule["expiration"] == {"days": 30}


def test_an_existing_bucket_is_used_as_given():
    plan = run_program(lambda: BatchInference("batch", args(bucket_name="my-batches")))
    assert plan.by_type("aws:s3/bucket:Bucket") == []
    env = {e["name"]: e["value"] for e in pod_of(plan)["containers"][0]["env"]}
    assert env["BATCH_BUCKET"] == "my-batches"


def test_worker_and_scaler_roles_use_pod_identity_with_least_privilege(plan):
    assocs = {a.name: a.inputs for a in plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert assocs["batch-worker"]["namespace"] == "genai-batch"
    assert assocs["batch-worker"]["serviceAccount"] == "batch-worker"
    assert (assocs["batch-scaler"]["namespace"], assocs["batch-scaler"]["serviceAccount"]) == ("keda", "keda-operator")
    roles = {r.name: json.loads(r.inputs["assumeRolePolicy"]) for r in plan.by_type("aws:iam/role:Role")}
    for trust in roles.values():
        assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert trust["Statement"][0]["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    policies = {p.name: json.loads(p.inputs["policy"]) for p in plan.by_type("aws:iam/policy:Policy")}
    worker = {s["Sid"]: s for s in policies["batch-worker-policy"]["Statement"]}
    assert worker["ConsumeShards"]["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                 "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
                                                 "sqs:SendMessage"]  # an interrupted shard is sent again
    assert worker["ReadWriteBatches"]["Resource"][0].endswith("/batches/*")
    assert worker["UseBatchKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert worker["ReadWeights"]["Resource"] == ["arn:aws:s3:::models-bucket/llama/*"]
    [scaler] = policies["batch-scaler-policy"]["Statement"]
    assert scaler["Action"] == ["sqs:GetQueueAttributes"] and scaler["Resource"][0].startswith("arn:aws:sqs:")


def test_without_keda_identity_no_scaler_role():
    plan = run_program(lambda: BatchInference("batch", args(keda_identity=False)))
    assert [a.name for a in plan.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")] == ["batch-worker"]


def test_scaled_job_scales_on_the_queue_with_pod_identity(plan):
    spec = plan.one(SCALED_JOB).inputs["spec"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"].startswith("https://sqs.us-east-1.amazonaws.com/")
    assert {k: v for k, v in trigger["metadata"].items() if k != "queueURL"} == {
        "queueLength": "1", "activationQueueLength": "0", "awsRegion": "us-east-1", "scaleOnInFlight": "true"}
    auth = plan.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication").inputs
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"]) == (0, 2, 30)
    assert spec["rollout"] == {"strategy": "gradual"} and spec["scalingStrategy"] == {"strategy": "default"}
    assert spec["successfulJobsHistoryLimit"] == spec["failedJobsHistoryLimit"] == 10
    assert spec["jobTargetRef"]["backoffLimit"] == 0


def test_worker_pod_on_batch_capacity_within_the_spot_notice(plan):
    pod = pod_of(plan)
    assert pod["restartPolicy"] == "Never" and pod["terminationGracePeriodSeconds"] == 30 < 120
    assert pod["nodeSelector"]["genai-scale.io/capacity"] == "batch"
    assert {"key": "genai-scale.io/batch", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in \
        pod["tolerations"]
    assert pod["serviceAccountName"] == "batch-worker" and pod["automountServiceAccountToken"] is False
    [worker] = pod["containers"]
    assert worker["name"] == "worker" and worker["command"] == ["python", "-m", "serving.batch", "worker"]
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert set(env) == {"BATCH_QUEUE_URL", "BATCH_BUCKET", "AWS_REGION", "BATCH_ENGINE_URL",
                        "BATCH_VISIBILITY_SECONDS", "BATCH_MAX_RECEIVES", "BATCH_METRICS_PORT"}
    assert env["BATCH_ENGINE_URL"] == "http://127.0.0.1:8000/v1"
    assert [(p["name"], int(p["containerPort"])) for p in worker["ports"]] == [("metrics", int(env["BATCH_METRICS_PORT"]))]
    assert (env["BATCH_VISIBILITY_SECONDS"], env["BATCH_MAX_RECEIVES"], env["AWS_REGION"]) == ("900", "3", "us-east-1")
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_engine_renders_the_flags_of_a_vllm_service_of_the_model_on_loopback(plan):
    [engine] = pod_of(plan)["initContainers"]
    assert engine["name"] == "engine" and engine["restartPolicy"] == "Always"  # native sidecar
    service = render_manifests("batch", VllmServiceArgs(
        model=MODEL, placement=placement(), image="vllm:pinned", keda=False, api_key=False,
        oidc_provider_arn="arn", oidc_issuer="issuer"))["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    expected = list(service["args"])
    expected[expected.index("--host") + 1] = "127.0.0.1"
    assert engine["args"] == expected
    assert engine["image"] == "vllm:pinned" and engine["resources"] == service["resources"]
    assert engine["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert engine["env"] == service["env"]
    assert "lifecycle" not in engine and "readinessProbe" not in engine and engine["startupProbe"]


def test_engine_args_parse_with_vllms_parser(plan, vllm_parser):
    [engine] = pod_of(plan)["initContainers"]
    ns = vllm_parser.parse(engine["args"])
    assert ns.host == "127.0.0.1" and ns.port == 8000 and ns.served_model_name == ["llama-8b"]


def test_placement_must_be_batch_capacity():
    with pytest.raises(ArgsError) as exc:
        args(placement=placement(labels={"genai-scale/accelerator": "a10g"}, taints=[GPU_TAINT]))
    text = str(exc.value)
    assert "placement.labels = {'genai-scale/accelerator': 'a10g'}: batch capacity: a node group labelled " \
           "genai-scale.io/capacity=batch" in text
    assert "placement.taints = [{'key': 'nvidia.com/gpu', 'value': 'true', 'effect': 'NoSchedule'}]: batch " \
           "capacity: a node group tainted genai-scale.io/batch=true:NoSchedule (so real-time pods never land " \
           "there)" in text


def test_the_model_must_fit_the_batch_accelerator():
    big = MODEL.model_copy(update={"kv_tokens_per_sequence": None})
    with pytest.raises(ArgsError) as exc:
        args(model=big)
    assert "model = 'meta-llama/Llama-3.1-8B-Instruct': meta-llama/Llama-3.1-8B-Instruct does not fit" in str(exc.value)


def test_cluster_name_is_required_without_a_cluster():
    with pytest.raises(ArgsError) as exc:
        args(cluster_name=None)
    assert "cluster_name" in str(exc.value)


def test_grace_period_stays_inside_the_spot_notice():
    with pytest.raises(ArgsError) as exc:
        args(termination_grace_seconds=120)
    assert "termination_grace_seconds = 120" in str(exc.value)


def test_redrive_and_policies_are_pure():
    assert _batch.redrive_policy("arn:dlq", 5) == {"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 5}
    doc = _batch.worker_policy(queue_arn="arn:q", bucket="b", kms_key_arn="arn:k")
    assert [s["Sid"] for s in doc["Statement"]] == ["ConsumeShards", "ReadWriteBatches", "ListBatches", "UseBatchKey"]
    assert doc["Statement"][2]["Condition"] == {"StringLike": {"s3:prefix": ["batches/*"]}}


def test_the_job_keda_creates_validates_against_the_kubernetes_schema(plan):
    import kubernetes_validate

    from components import versions
    from infra.plan import jsonable
    from tests.infra.test_k8s_schema import SCHEMA_VERSION
    spec = jsonable(plan.one(SCALED_JOB).inputs)["spec"]["jobTargetRef"]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch-x", "namespace": "genai-batch"},
           "spec": spec}
    kubernetes_validate.validate(job, SCHEMA_VERSION, strict=True)
    # the engine is a native sidecar (an init container with restartPolicy Always): Kubernetes >= 1.29
    assert tuple(int(p) for p in versions.KUBERNETES_VERSION.split(".")[:2]) >= (1, 29)


def test_the_scaled_job_matches_the_vendored_keda_crd_and_a_wrong_field_is_caught():
    import copy

    from tests.infra.test_upstream_truth import cr_errors, custom_resources
    name, token, body = next(c for c in custom_resources("dev") if c[1] == SCALED_JOB)
    assert cr_errors(name, token, body) == []
    bad = copy.deepcopy(body)
    bad["spec"]["rollout"] = {"strategy": "slow"}
    bad["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["envv"] = []
    errors = cr_errors(name, token, bad)
    assert any("spec.rollout.strategy: 'slow' is not one of ['gradual', 'immediate']" in e for e in errors), errors
    assert any("'envv' was unexpected" in e for e in errors), errors
