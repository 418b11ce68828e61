"""The ingestion worker against a real PostgreSQL with pgvector, S3/SQS through moto and the stub embeddings server:
ingestion, idempotent re-ingest, overtaken and deleted documents, poison documents in the dead-letter queue with
their reason, SIGTERM, and (as processes on a moto server) a worker SIGKILLed mid-document and two workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import boto3
import pytest

from serving.rag.ingest import doc_key, failed_key, submit_document
from serving.rag.worker import Worker, WorkerConfig
from tests.kit import ROOT
from tests.serving.rag.conftest import EMBED_DIMS, RAG_BUCKET, make_rag_queues

LONG = " ".join(f"Paragraph {i}: the leave policy grants twenty five days of paid leave per year." for i in range(60))


def submit(aws, doc: str, text: str, *, tenant: str = "acme", collection: str = "handbook", metadata=None):
    s3, sqs, q, _ = aws
    return submit_document(s3, sqs, bucket=RAG_BUCKET, queue_url=q, tenant=tenant, collection=collection,
                           document_id=doc, text=text, metadata=metadata or {})


def worker(aws, store, embeddings, **kw) -> Worker:
    s3, sqs, q, _ = aws
    settings = {"idle_exit_seconds": 0.5, "max_tokens": 32, "overlap_tokens": 4, "embed_batch": 4,
                "max_receives": 2, **kw}
    cfg = WorkerConfig(queue_url=q, bucket=RAG_BUCKET, embed_url=embeddings.url, **settings)
    return Worker(cfg, sqs=sqs, s3=s3, store=store)


def depth(sqs, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def texts(store, tenant: str = "acme", collection: str = "handbook", doc: str | None = None) -> list[str]:
    rows = store.connection.execute(
        f"SELECT document_id, text FROM rag_chunks_{collection} WHERE tenant = %s ORDER BY document_id, "
        "chunk_index", (tenant,)).fetchall()
    return [t for d, t in rows if doc is None or d == doc]


@pytest.fixture
def handbook(pg_store):
    pg_store.create_collection("handbook", EMBED_DIMS)
    return pg_store


def test_a_document_is_chunked_embedded_in_batches_and_written_with_its_metadata(aws, handbook, embeddings):
    _s3, sqs, q, _ = aws
    submit(aws, "leave", LONG, metadata={"lang": "en", "year": 2025})
    w = worker(aws, handbook, embeddings)
    assert w.run() == 0
    chunks = texts(handbook)
    assert len(chunks) == len(w.chunker.texts(LONG)) > 8
    assert embeddings.inputs == len(chunks) and embeddings.requests == -(-len(chunks) // 4), "batches of 4"
    assert depth(sqs, q) == 0
    hit = handbook.query("handbook", "acme", [1.0] * EMBED_DIMS, top_k=1, filter={"year": 2025})
    assert hit and hit[0].metadata == {"lang": "en", "year": 2025}
    reg = w.metrics.registry
    assert reg.get_sample_value("genai_scale_rag_documents_total", {"outcome": "done"}) == 1
    assert reg.get_sample_value("genai_scale_rag_chunks_total") == len(chunks)


def test_re_ingesting_a_document_replaces_its_chunks(aws, handbook, embeddings):
    submit(aws, "leave", LONG)
    worker(aws, handbook, embeddings).run()
    first = texts(handbook)
    submit(aws, "leave", LONG)  # the same document again: the same chunks, not twice as many
    worker(aws, handbook, embeddings).run()
    assert texts(handbook) == first
    submit(aws, "leave", "Leave is now thirty days.")
    worker(aws, handbook, embeddings).run()
    assert texts(handbook) == ["Leave is now thirty days."]


def test_an_overtaken_message_is_dropped_and_the_newest_version_wins(aws, handbook, embeddings):
    submit(aws, "leave", "Version one of the leave policy.")
    submit(aws, "leave", "Version two of the leave policy.")
    w = worker(aws, handbook, embeddings)
    w.run()
    assert texts(handbook) == ["Version two of the leave policy."]
    assert w.metrics.registry.get_sample_value("genai_scale_rag_documents_total", {"outcome": "skipped_stale"}) == 1


def test_a_document_deleted_before_ingestion_is_skipped(aws, handbook, embeddings):
    s3, sqs, q, _ = aws
    submit(aws, "gone", "Soon deleted.")
    s3.delete_object(Bucket=RAG_BUCKET, Key=doc_key("acme", "handbook", "gone"))
    w = worker(aws, handbook, embeddings)
    w.run()
    assert texts(handbook) == [] and depth(sqs, q) == 0
    assert w.metrics.registry.get_sample_value("genai_scale_rag_documents_total", {"outcome": "skipped_deleted"}) == 1


@pytest.mark.parametrize("doc, text, collection, reason", [
    ("poison", "This chunk says EMBED_REJECT to the model.", "handbook", "HTTP Error 400"),
    ("blank", "   ", "handbook", "text = '   ': must be a non-empty string"),
    ("lost", "A document for a collection that does not exist.", "nope",
     "collection = 'nope': no such collection; create it first"),
])
def test_a_poison_document_lands_in_the_dead_letter_queue_with_its_reason(aws, handbook, embeddings, doc, text,
                                                                          collection, reason):
    s3, sqs, q, dlq = aws
    submit(aws, doc, text, collection=collection)
    submit(aws, "fine", "A good document beside the poison one.")
    w = worker(aws, handbook, embeddings, idle_exit_seconds=2)
    w.run()
    failure = json.loads(s3.get_object(Bucket=RAG_BUCKET, Key=failed_key("acme", collection, doc))["Body"].read())
    assert reason in failure["reason"]
    assert failure["documentId"] == doc and failure["receives"] == 2
    assert depth(sqs, q) == 0 and depth(sqs, dlq) == 1
    (moved,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert json.loads(moved["Body"])["documentId"] == doc
    assert texts(handbook) == ["A good document beside the poison one."], "nothing of the poison document written"


def test_sigterm_abandons_the_document_and_releases_its_message_at_once(aws, handbook, embeddings):
    _s3, sqs, q, _ = aws
    submit(aws, "leave", LONG)
    w = worker(aws, handbook, embeddings)
    embeddings.batch_ms = 50
    msg = sqs.receive_message(QueueUrl=q, VisibilityTimeout=300, AttributeNames=["All"])["Messages"][0]
    stopper = __import__("threading").Timer(0.12, w.stop.set)
    stopper.start()
    assert w.handle(msg) == "interrupted"
    assert texts(handbook) == []
    again = sqs.receive_message(QueueUrl=q, VisibilityTimeout=1).get("Messages")
    assert again, "released with visibility 0, not held for 300 s"


def test_the_environment_is_read_and_checked():
    env = {"RAG_QUEUE_URL": "https://sqs/q", "RAG_BUCKET": "b", "RAG_EMBED_URL": "http://e:8080/v1",
           "RAG_EMBED_MODEL": "BAAI/bge-base-en-v1.5", "RAG_STORE": "pgvector", "RAG_DB_HOST": "db",
           "RAG_DB_PORT": "5433", "RAG_DB_NAME": "rag", "RAG_DB_USER": "app", "RAG_DB_SECRET_ARN": "arn:secret",
           "RAG_MAX_RECEIVES": "5", "RAG_METRICS_PORT": "9100", "AWS_REGION": "eu-west-1"}
    cfg = WorkerConfig.from_env(env)
    assert (cfg.max_receives, cfg.metrics_port, cfg.region, cfg.embed_model) == (5, 9100, "eu-west-1",
                                                                                 "BAAI/bge-base-en-v1.5")
    assert (cfg.store.host, cfg.store.port, cfg.store.dbname, cfg.store.user) == ("db", 5433, "rag", "app")
    with pytest.raises(SystemExit, match="RAG_QUEUE_URL, RAG_EMBED_URL must be set"):
        WorkerConfig.from_env({"RAG_BUCKET": "b"})
    with pytest.raises(SystemExit, match="RAG_MAX_RECEIVES = 'x': expected a number"):
        WorkerConfig.from_env({**env, "RAG_MAX_RECEIVES": "x"})
    with pytest.raises(SystemExit, match="set RAG_DSN, or RAG_DB_HOST and RAG_DB_SECRET_ARN"):
        WorkerConfig.from_env({k: v for k, v in env.items() if k != "RAG_DB_SECRET_ARN"})
    with pytest.raises(SystemExit, match="RAG_STORE = 'mysql': expected pgvector or qdrant"):
        WorkerConfig.from_env({**env, "RAG_STORE": "mysql"})
    with pytest.raises(SystemExit, match="RAG_QDRANT_URL must be set with RAG_STORE=qdrant"):
        WorkerConfig.from_env({**env, "RAG_STORE": "qdrant"})
    q = WorkerConfig.from_env({**env, "RAG_STORE": "qdrant", "RAG_QDRANT_URL": "http://qdrant:6333",
                               "RAG_QDRANT_API_KEY": "k"}).store
    assert (q.kind, q.url, q.api_key) == ("qdrant", "http://qdrant:6333", "k")


def test_the_aurora_password_comes_from_the_secret_and_tls_is_required():
    from serving.rag.connect import StoreSettings, pg_conninfo

    class Secrets:
        def get_secret_value(self, SecretId):
            assert SecretId == "arn:secret"
            return {"SecretString": json.dumps({"username": "master", "password": "p w"})}

    info = pg_conninfo(StoreSettings(host="db", port=5432, dbname="rag", secret_arn="arn:secret"),
                       secrets_client=Secrets())
    assert info == "host=db port=5432 dbname=rag user=master password='p w' sslmode=require"


# --- worker processes on a moto server --------------------------------------------------------------------------

@pytest.fixture
def served(moto_server, postgres, handbook, embeddings, monkeypatch):
    from tests.serving.batch.conftest import FAKE_CREDS, REGION

    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    kw = {"endpoint_url": moto_server, "region_name": REGION}
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    q, dlq = make_rag_queues(s3, sqs, max_receives=3, suffix=uuid.uuid4().hex[:8])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAG_"))}
    env.update(FAKE_CREDS, AWS_ENDPOINT_URL=moto_server, AWS_REGION=REGION, RAG_QUEUE_URL=q, RAG_BUCKET=RAG_BUCKET,
               RAG_EMBED_URL=embeddings.url, RAG_DSN=postgres.conninfo, RAG_CHUNK_MAX_TOKENS="32",
               RAG_CHUNK_OVERLAP_TOKENS="4", RAG_EMBED_BATCH="4", RAG_VISIBILITY_SECONDS="2",
               RAG_IDLE_EXIT_SECONDS="3", PYTHONPATH=str(ROOT))
    return (s3, sqs, q, dlq), env


def spawn(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "serving.rag", "worker"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_worker_killed_mid_document_leaves_the_old_version_whole(served, handbook, embeddings):
    aws, env = served
    submit(aws, "leave", "The old leave policy: twenty days.")
    proc = spawn(env)
    deadline = time.monotonic() + 60
    while texts(handbook) == [] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert texts(handbook) == ["The old leave policy: twenty days."]
    embeddings.batch_ms = 300  # the new version takes several slow embedding calls
    submit(aws, "leave", LONG)
    while embeddings.requests < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert texts(handbook) == ["The old leave policy: twenty days."], "the old version, whole"
    embeddings.batch_ms = 0
    second = spawn(env)  # takes the message once its 2 s visibility lapses
    assert second.wait(timeout=90) == 0, second.stderr.read().decode()[-2000:]
    from serving.rag.chunking import Chunker

    assert texts(handbook) == Chunker(32, 4).texts(LONG), "the new version, whole"


def test_two_workers_share_the_queue_and_ingest_every_document_once(served, handbook, embeddings):
    aws, env = served
    _s3, sqs, q, dlq = aws
    embeddings.batch_ms = 20
    for i in range(12):
        submit(aws, f"doc-{i:02d}", f"Document {i}: " + LONG[: 200 + 40 * i])
    procs = [spawn(env), spawn(env)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
    rows = handbook.connection.execute("SELECT document_id, count(*), count(DISTINCT chunk_index) FROM "
                                       "rag_chunks_handbook GROUP BY document_id ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == [f"doc-{i:02d}" for i in range(12)]
    assert all(r[1] == r[2] for r in rows)
    assert depth(sqs, q) == 0 and depth(sqs, dlq) == 0


def test_rds_iam_authentication_signs_a_token_as_the_password():
    from serving.rag.connect import StoreSettings, pg_conninfo

    class Rds:
        def generate_db_auth_token(self, **kw):
            assert kw == {"DBHostname": "db", "Port": 5432, "DBUsername": "app", "Region": "eu-west-1"}
            return "signed-token"

    info = pg_conninfo(StoreSettings(host="db", user="app", iam_auth=True, region="eu-west-1"), rds_client=Rds())
    assert info == "host=db port=5432 dbname=postgres user=app password=signed-token sslmode=require"


def test_the_worker_ingests_into_qdrant_too(aws, qdrant_store, embeddings):
    qdrant_store.create_collection("handbook", EMBED_DIMS)
    submit(aws, "leave", LONG)
    submit(aws, "leave", "Replaced by a short version.")
    w = worker(aws, qdrant_store, embeddings)
    assert w.run() == 0
    assert qdrant_store.count("handbook", "acme") == 1
    (hit,) = qdrant_store.query("handbook", "acme", [1.0] * EMBED_DIMS, top_k=5)
    assert hit.text == "Replaced by a short version."
