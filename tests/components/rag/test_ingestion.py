"""Ingestion under mocks: encrypted queue + DLQ with its alarm, the documents bucket, least-privilege roles, the
workers' Deployment and KEDA objects (checked against the Kubernetes schema and the vendored KEDA CRDs), and every
validation message."""

from __future__ import annotations

import json

import kubernetes_validate
import pulumi
import pytest

from components import queues
from components.rag import _ingestion
from components.rag.ingestion import Ingestion, IngestionArgs
from infra.plan import jsonable
from tests.infra.test_k8s_schema import SCHEMA_VERSION
from tests.infra.test_upstream_truth import cr_errors
from tests.kit.plan import errors_of, plan_component

QUEUE = "aws:sqs/queue:Queue"
SO = "kubernetes:keda.sh/v1alpha1:ScaledObject"
TA = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
PM = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-abc"
WIRING = dict(worker_image="gateway:1", embed_url="http://embeddings.genai-rag.svc:8080/v1",
              embed_model="BAAI/bge-base-en-v1.5", db_host="vectors.cluster-x.us-east-1.rds.amazonaws.com",
              db_secret_arn=SECRET, cluster_name="genai-dev", region="us-east-1")


def args(**kw) -> IngestionArgs:
    return IngestionArgs(**{**WIRING, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


@pytest.fixture(scope="module")
def plan():
    def build():
        ing = Ingestion("rag-ingest", args(db_secret_kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/db"))
        pulumi.export("queue", ing.queue_url)
        return ing
    return plan_component(build)


def policy(result, name):
    return json.loads(result.one("aws:iam/policy:Policy", name).inputs["policy"])


def test_queues_are_encrypted_and_redrive_to_the_dlq(plan):
    result, _ = plan
    key = result.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    q = result.one(QUEUE, "rag-ingest-queue").inputs
    dlq = result.one(QUEUE, "rag-ingest-dlq").inputs
    assert q["kmsMasterKeyId"] == dlq["kmsMasterKeyId"] == key.outputs["arn"]
    assert json.loads(q["redrivePolicy"])["maxReceiveCount"] == 3
    assert (q["visibilityTimeoutSeconds"], dlq["messageRetentionSeconds"]) == (300, queues.DLQ_RETENTION_SECONDS)
    alarm = result.one("aws:cloudwatch/metricAlarm:MetricAlarm").inputs
    assert (alarm["metricName"], alarm["threshold"]) == ("ApproximateNumberOfMessagesVisible", 0)


def test_documents_bucket_is_encrypted_private_and_tls_only(plan):
    result, _ = plan
    sse = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert result.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs["restrictPublicBuckets"]
    stmt = json.loads(result.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"][0]
    assert stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_worker_role_is_least_privilege(plan):
    result, _ = plan
    doc = policy(result, "rag-ingest-worker-policy")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert sorted(by_sid) == ["ConsumeDocuments", "ReadDocuments", "ReadStoreSecret", "UseKeys", "WriteFailures"]
    assert by_sid["ReadDocuments"]["Action"] == ["s3:GetObject"]
    # SIGTERM sends the document in hand back to its own queue (then deletes it): SendMessage on that queue only
    queue_arn = plan[0].one(QUEUE, "rag-ingest-queue").outputs["arn"]
    sends = [s for s in doc["Statement"] if "sqs:SendMessage" in s["Action"]]
    assert [s["Resource"] for s in sends] == [[queue_arn]]
    assert by_sid["ReadDocuments"]["Resource"][0].endswith("/rag/docs/*")
    assert by_sid["WriteFailures"]["Resource"][0].endswith("/rag/failed/*")
    assert by_sid["ReadStoreSecret"]["Resource"] == [SECRET]
    assert "arn:aws:kms:us-east-1:123456789012:key/db" in by_sid["UseKeys"]["Resource"]
    assert policy(result, "rag-ingest-scaler")["Statement"][0]["Action"] == ["sqs:GetQueueAttributes"]
    submit = {s["Sid"] for s in policy(result, "rag-ingest-submit")["Statement"]}
    assert submit == {"PutDocuments", "SendDocuments", "UseIngestionKey", "ReadStoreSecret", "DecryptStoreSecret"}
    assocs = {r.name: r.inputs for r in result.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert assocs["rag-ingest-worker"]["serviceAccount"] == "rag-ingest-worker"
    assert (assocs["rag-ingest-scaler"]["namespace"], assocs["rag-ingest-scaler"]["serviceAccount"]) == (
        "keda", "keda-operator")


def test_workers_get_the_contract_env_and_scale_on_queue_depth(plan):
    result, _ = plan
    dep = jsonable(result.one("kubernetes:apps/v1:Deployment").inputs)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["python", "-m", "serving.rag", "worker"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert {"RAG_QUEUE_URL", "RAG_BUCKET", "AWS_REGION", "RAG_EMBED_URL", "RAG_EMBED_MODEL", "RAG_STORE",
            "RAG_DB_HOST", "RAG_DB_PORT", "RAG_DB_NAME", "RAG_DB_USER", "RAG_DB_SECRET_ARN", "RAG_MAX_RECEIVES",
            "RAG_METRICS_PORT", "RAG_VISIBILITY_SECONDS", "RAG_EMBED_BATCH", "RAG_CHUNK_MAX_TOKENS",
            "RAG_CHUNK_OVERLAP_TOKENS"} == set(env)
    assert (env["RAG_VISIBILITY_SECONDS"], env["RAG_EMBED_BATCH"]) == ("300", "64")
    assert (env["RAG_STORE"], env["RAG_DB_PORT"], env["RAG_MAX_RECEIVES"]) == ("pgvector", "5432", "3")
    so = jsonable(result.one(SO).inputs)["spec"]
    t = so["triggers"][0]
    assert (t["type"], t["metadata"]["queueLength"], t["authenticationRef"]["name"]) == (
        "aws-sqs-queue", "10", "rag-ingest-aws")
    assert (so["minReplicaCount"], so["maxReplicaCount"]) == (0, 4)
    assert jsonable(result.one(TA).inputs)["spec"] == {"podIdentity": {"provider": "aws"}}


def test_objects_match_the_kubernetes_schema_and_the_keda_crds(plan):
    result, _ = plan
    for r in result.resources:
        if not (r.custom and r.type.startswith("kubernetes:")):
            continue
        body = jsonable(r.inputs, reveal_secrets=True)
        if r.type in (SO, TA, PM):
            assert cr_errors(r.name, r.type, body) == []
        else:
            body.setdefault("metadata", {}).setdefault("name", r.name)
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)


def test_pod_monitor_scrapes_the_workers_metrics_port(plan):
    result, _ = plan
    pod = jsonable(result.one("kubernetes:apps/v1:Deployment").inputs)["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    pm = jsonable(result.one(PM).inputs)
    assert pm["metadata"]["namespace"] == "genai-rag"
    selector = pm["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()  # it selects the workers' pods
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], ports[endpoint["port"]], endpoint["path"]) == ("metrics", 9090, "/metrics")
    assert {"name": "RAG_METRICS_PORT", "value": "9090"} in pod["spec"]["containers"][0]["env"]


def test_qdrant_store_env_reads_the_api_key_from_its_secret():
    env = _ingestion.worker_env(queue_url="q", bucket="b", region="r", embed_url="u", embed_model="m",
                                max_receives=2, store=args(store="qdrant", qdrant_url="http://q:6333",
                                                           qdrant_api_key_secret="vectors-api-key").store_env())
    by_name = {e["name"]: e for e in env}
    assert by_name["RAG_STORE"]["value"] == "qdrant"
    assert not {n for n in by_name if n.startswith("RAG_DB_")}
    assert by_name["RAG_QDRANT_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "vectors-api-key",
                                                                           "key": "api-key"}}


def test_without_keda_identity_no_scaler_role_and_without_pod_monitor_none():
    result, _ = plan_component(lambda: Ingestion("ri", args(keda_identity=False, bucket_name="docs-bucket",
                                                            pod_monitor=False)))
    assert [r.name for r in result.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")] == ["ri-worker"]
    assert not result.by_type("aws:s3/bucket:Bucket")
    assert not result.by_type(PM)


# --- validation: every message ---

def test_min_above_max_is_an_error():
    assert "min_replicas = 5: <= max_replicas (4)" in errors(min_replicas=5)


def test_overlap_above_half_a_chunk_is_an_error():
    assert "chunk_overlap_tokens = 100: <= half of chunk_max_tokens (128)" in \
        errors(chunk_max_tokens=128, chunk_overlap_tokens=100)


def test_pgvector_needs_host_and_secret():
    msg = errors(db_host=None, db_secret_arn=None)
    assert "db_host = None: given for store pgvector (the workers connect to Aurora)" in msg
    assert "db_secret_arn = None: given for store pgvector (the workers connect to Aurora)" in msg


def test_qdrant_needs_its_url_and_the_secret_of_its_api_key():
    msg = errors(store="qdrant")
    assert "qdrant_url = None: given for store qdrant" in msg
    assert ("qdrant_api_key_secret = None: given for store qdrant (the workers read the API key from that Secret, "
            "never from a literal)") in msg
    assert ("qdrant_api_key_secret = 'Bad_Name': string should match pattern '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$'"
            in errors(store="qdrant", qdrant_url="http://q:6333", qdrant_api_key_secret="Bad_Name"))


def test_pod_identity_needs_the_cluster_name():
    assert "cluster_name = None: given, or a cluster (the Pod Identity associations need it)" in \
        errors(cluster_name=None)
