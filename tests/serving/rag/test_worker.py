"""The ingestion worker against a real PostgreSQL with pgvector, S3/SQS through moto and the stub embeddings server:
ingestion, idempotent re-ingest, overtaken and deleted documents, poison documents in the dead-letter queue with
their reason, SIGTERM (the message queued again without spending a receive), Qdrant as the store, and (as processes
on a moto server) a worker SIGKILLed mid-document, a worker SIGTERMed mid-document with its metrics served, and two
workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import boto3
import pytest

from serving.rag.chunking import Chunker
from serving.rag.connect import StoreSettings
from serving.rag.ingest import doc_key, failed_key, submit_document
from serving.rag.worker import Worker, WorkerConfig
from tests.kit import ROOT
from tests.kit.aws import FAKE_CREDS, REGION, RefusingSend, process_env
from tests.kit.net import free_port, wait_port
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


def interrupt(w: Worker, msg: dict, after_requests: int, embeddings) -> str:
    """Handle ``msg`` in a thread and set ``stop`` (what the SIGTERM handler does) once the embedding server has seen
    ``after_requests`` more requests; returns the outcome."""
    seen = embeddings.requests
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(w.handle(msg)))
    t.start()
    deadline = time.monotonic() + 10
    while embeddings.requests < seen + after_requests and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    w.stop.set()
    t.join(10)
    w.stop.clear()
    return out[0]


def test_sigterm_queues_the_document_again_without_spending_a_receive(aws, handbook, embeddings):
    """An interrupted document comes back as a new message (receive count 1 again), so scale-ins cannot walk a
    healthy document into the dead-letter queue (maxReceiveCount 2 here); the next worker ingests it once."""
    _s3, sqs, q, dlq = aws
    submit(aws, "leave", LONG)
    embeddings.batch_ms = 30
    w = worker(aws, handbook, embeddings)
    for _ in range(3):  # three interruptions: with a release, the second receive would count 2 and the third move it
        (msg,) = sqs.receive_message(QueueUrl=q, VisibilityTimeout=300, AttributeNames=["All"])["Messages"]
        assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
        assert interrupt(w, msg, 2, embeddings) == "interrupted"
        assert texts(handbook) == [], "abandoned before its transaction"
        assert depth(sqs, q) == 1, "one message: the received one is deleted"
    assert w.metrics.registry.get_sample_value("genai_scale_rag_documents_total", {"outcome": "interrupted"}) == 3
    embeddings.batch_ms = 0
    nxt = worker(aws, handbook, embeddings)
    assert nxt.run() == 0
    assert texts(handbook) == Chunker(32, 4).texts(LONG), "ingested once, whole"
    assert nxt.metrics.registry.get_sample_value("genai_scale_rag_documents_total", {"outcome": "done"}) == 1
    assert depth(sqs, q) == 0 and depth(sqs, dlq) == 0


def test_an_interrupted_document_is_released_when_it_cannot_be_sent_again(aws, handbook, embeddings):
    _s3, sqs, q, _ = aws
    submit(aws, "leave", LONG)
    embeddings.batch_ms = 30
    w = worker(aws, handbook, embeddings)
    w.sqs = RefusingSend(sqs)
    (msg,) = sqs.receive_message(QueueUrl=q, VisibilityTimeout=300)["Messages"]
    assert interrupt(w, msg, 2, embeddings) == "interrupted"
    again = sqs.receive_message(QueueUrl=q, VisibilityTimeout=1, AttributeNames=["All"]).get("Messages")
    assert again, "released with visibility 0, not held for 300 s"
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_the_worker_opens_qdrant_when_the_store_settings_say_so(aws, embeddings, tmp_path):
    """RAG_STORE=qdrant: the worker builds its QdrantStore from the settings (here qdrant-client's local mode in a
    folder, the same client code as against a server) and ingests into it."""
    from qdrant_client import QdrantClient

    from serving.rag.qdrant import QdrantStore

    setup = QdrantClient(path=str(tmp_path))
    QdrantStore(setup).create_collection("handbook", EMBED_DIMS)
    setup.close()  # local mode: one client per folder at a time
    submit(aws, "leave", LONG)
    store = StoreSettings.from_env({"RAG_STORE": "qdrant", "RAG_QDRANT_PATH": str(tmp_path)})
    s3, sqs, q, _ = aws
    w = Worker(WorkerConfig(queue_url=q, bucket=RAG_BUCKET, embed_url=embeddings.url, store=store, max_tokens=32,
                            overlap_tokens=4, embed_batch=4, idle_exit_seconds=0.5), sqs=sqs, s3=s3)
    assert w.run() == 0
    try:
        assert isinstance(w.store, QdrantStore)
        assert w.store.count("handbook", "acme") == len(Chunker(32, 4).texts(LONG))
        (hit,) = w.store.query("handbook", "acme", [1.0] * EMBED_DIMS, top_k=1)
        assert hit.document_id == "leave" and hit.chunk_index in range(len(Chunker(32, 4).texts(LONG)))
    finally:
        w.store.client.close()


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
    with pytest.raises(SystemExit, match=r"with RAG_STORE=qdrant set RAG_QDRANT_URL \(a Qdrant server\) or "
                       r"RAG_QDRANT_PATH \(local mode\), exactly one \(neither set\)"):
        WorkerConfig.from_env({**env, "RAG_STORE": "qdrant"})
    with pytest.raises(SystemExit, match=r"exactly one \(both set\)"):
        WorkerConfig.from_env({**env, "RAG_STORE": "qdrant", "RAG_QDRANT_URL": "http://q:6333",
                               "RAG_QDRANT_PATH": "/tmp/q"})
    local = WorkerConfig.from_env({**env, "RAG_STORE": "qdrant", "RAG_QDRANT_PATH": "qdrant-data"}).store
    assert (local.kind, local.path, local.url) == ("qdrant", "qdrant-data", None)
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
    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    kw = {"endpoint_url": moto_server, "region_name": REGION}
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    q, dlq = make_rag_queues(s3, sqs, max_receives=3, suffix=uuid.uuid4().hex[:8])
    env = process_env(moto_server, "RAG_")
    env.update(RAG_QUEUE_URL=q, RAG_BUCKET=RAG_BUCKET,
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
    assert texts(handbook) == Chunker(32, 4).texts(LONG), "the new version, whole"


def metric(port: int, name: str) -> float:
    """One sample of the worker's /metrics (the PodMonitor's view)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        body = r.read().decode()
    return float(next(line.split()[-1] for line in body.splitlines() if line.startswith(name + " ")
                      or line.startswith(name + "{")))


def test_a_sigtermed_worker_queues_its_document_again_and_the_next_ingests_it_once(served, handbook, embeddings):
    """As a process: SIGTERM mid-document -> exit 0, the message back as a new one (receive count 1, not 2), nothing
    written; the next worker writes the document once. The metrics port answers while the worker runs."""
    aws, env = served
    _s3, sqs, q, dlq = aws
    port = free_port()
    env = {**env, "RAG_METRICS_PORT": str(port), "RAG_VISIBILITY_SECONDS": "60", "RAG_IDLE_EXIT_SECONDS": "0"}
    embeddings.batch_ms = 200
    submit(aws, "leave", LONG)
    proc = spawn(env)
    wait_port(port, timeout=30)
    assert metric(port, 'genai_scale_rag_documents_total{outcome="done"}') == 0
    deadline = time.monotonic() + 60
    while embeddings.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.stderr.read().decode()[-2000:]
    assert texts(handbook) == []
    msgs = sqs.receive_message(QueueUrl=q, VisibilityTimeout=1, AttributeNames=["All"]).get("Messages")
    assert msgs and msgs[0]["Attributes"]["ApproximateReceiveCount"] == "1", "a new message, not a released one"
    sqs.change_message_visibility(QueueUrl=q, ReceiptHandle=msgs[0]["ReceiptHandle"], VisibilityTimeout=0)
    embeddings.batch_ms = 0
    second = spawn(env | {"RAG_IDLE_EXIT_SECONDS": "3", "RAG_METRICS_PORT": "0"})
    assert second.wait(timeout=90) == 0, second.stderr.read().decode()[-2000:]
    assert texts(handbook) == Chunker(32, 4).texts(LONG), "ingested once, whole"
    assert depth(sqs, q) == 0 and depth(sqs, dlq) == 0


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
