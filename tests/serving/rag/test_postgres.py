"""PgVectorStore on a real PostgreSQL 18 with pgvector: the table and index layout, per-query HNSW settings, the
tenant in every statement, all-or-nothing document replacement (a failure injected mid-upsert), concurrent
re-ingests, and recall of the HNSW index against exact search."""

from __future__ import annotations

import re
import threading

import numpy as np
import psycopg
import pytest

from serving.rag.errors import UnknownCollection
from serving.rag.postgres import (
    DEFAULT_EF_SEARCH,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    PgVectorStore,
)
from serving.rag.store import Chunk

D = 8


def vec(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    x = rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def docs(pg_store):
    pg_store.create_collection("docs", D)
    return pg_store


def test_the_bundled_server_is_postgresql_18_with_pgvector_0_8(pg_store):
    version = pg_store.connection.execute("SHOW server_version").fetchone()[0]
    ext = pg_store.connection.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    assert version.startswith("18.") and ext.startswith("0.8."), (version, ext)


def test_a_collection_is_a_table_with_an_hnsw_cosine_index_and_documented_parameters(docs):
    cols = docs.connection.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'rag_chunks_docs' ORDER BY ordinal_position").fetchall()
    assert [(c, n) for c, _, n in cols] == [("id", "NO"), ("tenant", "NO"), ("document_id", "NO"),
                                            ("chunk_index", "NO"), ("text", "NO"), ("metadata", "NO"),
                                            ("embedding", "NO")]
    assert docs.connection.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                                   "'rag_chunks_docs'::regclass AND attname = 'embedding'").fetchone()[0] \
        == "vector(8)"
    indexes = dict(docs.connection.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'rag_chunks_docs'").fetchall())
    hnsw = indexes["rag_chunks_docs_hnsw"]
    assert "USING hnsw (embedding vector_cosine_ops)" in hnsw
    assert f"m='{HNSW_M}'" in hnsw and f"ef_construction='{HNSW_EF_CONSTRUCTION}'" in hnsw
    assert (HNSW_M, HNSW_EF_CONSTRUCTION) == (16, 64)
    assert "USING gin (metadata jsonb_path_ops)" in indexes["rag_chunks_docs_metadata"]
    assert any("UNIQUE" in d and "(tenant, document_id, chunk_index)" in d for d in indexes.values())
    info = docs.describe_collection("docs")
    assert info.settings == {"table": "rag_chunks_docs", "hnsw_m": 16, "hnsw_ef_construction": 64}


@pytest.mark.parametrize(("distance", "opclass"), [("l2", "vector_l2_ops"), ("dot", "vector_ip_ops")])
def test_other_distances_use_their_operator_class(pg_store, distance, opclass):
    pg_store.create_collection("other", D, distance)
    (indexdef,) = pg_store.connection.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'rag_chunks_other_hnsw'").fetchone()
    assert f"USING hnsw (embedding {opclass})" in indexdef


def test_deferred_index_is_built_by_build_index(pg_store):
    pg_store.create_collection("bulk", D, defer_index=True)
    count = "SELECT count(*) FROM pg_indexes WHERE indexname = 'rag_chunks_bulk_hnsw'"
    assert pg_store.connection.execute(count).fetchone()[0] == 0
    pg_store.build_index("bulk")
    assert pg_store.connection.execute(count).fetchone()[0] == 1


class Recorder:
    """Records every statement a connection's cursors execute (``psycopg.Cursor.execute`` and ``copy``)."""

    def __init__(self, monkeypatch, conn):
        self.statements: list[tuple[str, object]] = []
        execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

        def rec_execute(cur, query, params=None, **kw):
            if cur.connection is conn:
                self.statements.append((self.text(cur, query), params))
            return execute(cur, query, params, **kw)

        def rec_copy(cur, statement, params=None, **kw):
            if cur.connection is conn:
                self.statements.append((self.text(cur, statement), params))
            return copy(cur, statement, params, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", rec_execute)
        monkeypatch.setattr(psycopg.Cursor, "copy", rec_copy)

    @staticmethod
    def text(cur, query) -> str:
        return query if isinstance(query, str) else query.as_string(cur)


def test_ef_search_and_iterative_scan_are_set_per_query_and_do_not_leak(docs, monkeypatch):
    rng = np.random.default_rng(1)
    docs.upsert_document("docs", "t", "d", [Chunk(f"c{i}", v) for i, v in enumerate(vec(rng, 5))])
    rec = Recorder(monkeypatch, docs.connection)
    docs.query("docs", "t", vec(rng)[0], 5, ef_search=123)
    docs.query("docs", "t", vec(rng)[0], 5)
    docs.query("docs", "t", vec(rng)[0], 100, ef_search=40)  # ef_search is at least top_k
    settings = [(q, p) for q, p in rec.statements if "set_config" in q]
    assert [p for _, p in settings] == [("123",), (str(DEFAULT_EF_SEARCH),), ("100",)]
    assert all("'hnsw.ef_search', %s, true" in q and "'hnsw.iterative_scan', 'relaxed_order', true" in q
               for q, _ in settings)
    assert docs.connection.execute("SHOW hnsw.ef_search").fetchone()[0] == "40"  # the server default, untouched
    assert docs.connection.execute("SHOW hnsw.iterative_scan").fetchone()[0] == "off"


def test_every_statement_on_a_chunk_table_names_the_tenant(docs, monkeypatch):
    rng = np.random.default_rng(2)
    rec = Recorder(monkeypatch, docs.connection)
    docs.upsert_document("docs", "acme", "d", [Chunk("a", vec(rng)[0], {"k": "v"})])
    docs.query("docs", "acme", vec(rng)[0], 3, {"k": {"$in": ["v", "w"]}})
    docs.count("docs", "acme")
    docs.delete_document("docs", "acme", "d")
    on_chunks = [q for q, _ in rec.statements if "rag_chunks_docs" in q]
    assert len(on_chunks) == 5  # delete + copy (upsert), query, count, delete
    for q in on_chunks:
        assert re.search(r"WHERE tenant = %s|COPY .*\(tenant, ", q), q


def test_a_failure_mid_upsert_leaves_the_previous_version_whole(docs, monkeypatch):
    rng = np.random.default_rng(3)
    old = [Chunk(f"old{i}", v) for i, v in enumerate(vec(rng, 3))]
    docs.upsert_document("docs", "t", "d", old)
    original = PgVectorStore._insert_chunks

    def half_then_fail(self, cur, table, rows):
        original(self, cur, table, rows[: len(rows) // 2])  # half the new chunks really reach the table
        raise ConnectionError("injected: worker lost mid-upsert")

    monkeypatch.setattr(PgVectorStore, "_insert_chunks", half_then_fail)
    with pytest.raises(ConnectionError):
        docs.upsert_document("docs", "t", "d", [Chunk(f"new{i}", v) for i, v in enumerate(vec(rng, 4))])
    monkeypatch.undo()
    assert docs.count("docs", "t") == 3
    assert sorted(h.text for h in docs.query("docs", "t", vec(rng)[0], 10)) == ["old0", "old1", "old2"]
    assert docs.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_concurrent_reingests_of_one_document_serialise_and_leave_one_version(postgres, docs):
    rng = np.random.default_rng(4)
    versions = [[Chunk(f"v{n}-{i}", v) for i, v in enumerate(vec(rng, 20))] for n in range(4)]
    errors: list[BaseException] = []

    def ingest(chunks):
        store = PgVectorStore.connect(postgres.conninfo)
        try:
            for _ in range(5):
                store.upsert_document("docs", "t", "d", chunks)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            store.close()

    threads = [threading.Thread(target=ingest, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    hits = docs.query("docs", "t", vec(rng)[0], 100)
    assert len(hits) == 20 and len({h.text.split("-")[0] for h in hits}) == 1


def test_a_collection_dropped_by_another_client_is_an_unknown_collection(postgres, docs):
    docs.upsert_document("docs", "t", "d", [Chunk("a", [1.0] * D)])
    other = PgVectorStore.connect(postgres.conninfo)
    other.drop_collection("docs")
    other.close()
    with pytest.raises(UnknownCollection, match="collection = 'docs': no such collection"):
        docs.query("docs", "t", [1.0] * D)


def test_hnsw_recall_against_exact_search_and_the_index_is_used(docs):
    rng = np.random.default_rng(5)
    data = vec(rng, 3000)
    for lo in range(0, len(data), 500):
        docs.upsert_document("docs", "t", f"d{lo}", [Chunk(f"{lo + i}", v) for i, v in enumerate(data[lo:lo + 500])])
    docs.connection.execute("ANALYZE rag_chunks_docs")
    queries = vec(rng, 50)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    got = [[int(h.text) for h in docs.query("docs", "t", q, 10)] for q in queries]
    recall = np.mean([len(set(g) & set(t.tolist())) / 10 for g, t in zip(got, truth)])
    assert recall >= 0.95
    plan = "\n".join(r[0] for r in docs.connection.execute(
        "EXPLAIN SELECT id FROM rag_chunks_docs WHERE tenant = 't' ORDER BY embedding <=> %s LIMIT 10",
        (queries[0],)).fetchall())
    assert "rag_chunks_docs_hnsw" in plan


def test_the_store_needs_an_autocommit_connection(postgres):
    with psycopg.connect(postgres.conninfo) as conn:
        with pytest.raises(ValueError, match="needs an autocommit connection"):
            PgVectorStore(conn)
