"""How the gateway and the ingestion workers reach the vector store: a PostgreSQL connection string from a DSN or from
host, port, database, user and an Aurora-managed Secrets Manager secret (JSON with ``username`` and ``password``),
or a Qdrant URL with an API key from the environment (or, for local runs and tests, a folder of qdrant-client's
local mode: the client's own in-process engine, one process at a time).

Aurora's connection is TLS (``sslmode=require``) whenever the password comes from Secrets Manager; a DSN is used as
given (local servers and tests).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import make_conninfo

__all__ = ["StoreSettings", "open_store", "pg_conninfo"]


@dataclass(frozen=True)
class StoreSettings:
    """Where the store is. ``kind`` pgvector: ``dsn`` or ``host`` (+ ``port``, ``dbname``, ``user``, ``secret_arn``);
    ``kind`` qdrant: ``url`` and ``api_key``, or ``path`` (a local-mode folder)."""

    kind: str = "pgvector"
    dsn: str | None = None
    host: str | None = None
    port: int = 5432
    dbname: str = "postgres"
    user: str | None = None
    secret_arn: str | None = None
    iam_auth: bool = False
    region: str | None = None
    url: str | None = None
    api_key: str | None = None
    path: str | None = None
    """Qdrant local mode: the folder qdrant-client keeps its in-process engine's data in (local runs, tests)."""

    @classmethod
    def from_env(cls, env: Any = None) -> StoreSettings:
        """The worker's settings: ``RAG_STORE`` and ``RAG_DSN`` or ``RAG_DB_*``, or ``RAG_QDRANT_URL`` and
        ``RAG_QDRANT_API_KEY`` (or ``RAG_QDRANT_PATH``, local mode) (serving/rag/README.md)."""
        e = os.environ if env is None else env
        kind = e.get("RAG_STORE") or "pgvector"
        if kind == "qdrant":
            url, path = e.get("RAG_QDRANT_URL"), e.get("RAG_QDRANT_PATH")
            if bool(url) == bool(path):
                raise SystemExit("rag worker: with RAG_STORE=qdrant set RAG_QDRANT_URL (a Qdrant server) or "
                                 f"RAG_QDRANT_PATH (local mode), exactly one ({'both' if url else 'neither'} set)")
            return cls(kind="qdrant", url=url or None, path=path or None,
                       api_key=e.get("RAG_QDRANT_API_KEY") or None)
        if kind != "pgvector":
            raise SystemExit(f"rag worker: RAG_STORE = {kind!r}: expected pgvector or qdrant")
        if e.get("RAG_DSN"):
            return cls(dsn=e["RAG_DSN"])
        missing = [k for k in ("RAG_DB_HOST", "RAG_DB_SECRET_ARN") if not e.get(k)]
        if missing:
            raise SystemExit(f"rag worker: set RAG_DSN, or RAG_DB_HOST and RAG_DB_SECRET_ARN ({', '.join(missing)} "
                             "missing)")
        try:
            port = int(e.get("RAG_DB_PORT") or 5432)
        except ValueError:
            raise SystemExit(f"rag worker: RAG_DB_PORT = {e.get('RAG_DB_PORT')!r}: expected a port number") from None
        return cls(host=e["RAG_DB_HOST"], port=port, dbname=e.get("RAG_DB_NAME") or "postgres",
                   user=e.get("RAG_DB_USER") or None, secret_arn=e["RAG_DB_SECRET_ARN"],
                   region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION"))


def pg_conninfo(s: StoreSettings, *, secrets_client: Any = None, rds_client: Any = None) -> str:
    """The libpq connection string of ``s``: its DSN, or host/port/dbname with the user and password of the Secrets
    Manager secret (``RAG_DB_USER`` wins over the secret's ``username``), or an RDS IAM authentication token as the
    password (``iam_auth``; valid 15 minutes, enough to open a connection); TLS is required with either."""
    if s.dsn:
        return s.dsn
    user, password = s.user, None
    if s.iam_auth:
        if rds_client is None:
            import boto3

            rds_client = boto3.client("rds", region_name=s.region)
        password = rds_client.generate_db_auth_token(DBHostname=s.host, Port=s.port, DBUsername=user,
                                                     Region=s.region)
    elif s.secret_arn:
        if secrets_client is None:
            import boto3

            secrets_client = boto3.client("secretsmanager", region_name=s.region)
        secret = json.loads(secrets_client.get_secret_value(SecretId=s.secret_arn)["SecretString"])
        user = user or secret.get("username")
        password = secret.get("password")
    kw = {"host": s.host, "port": s.port, "dbname": s.dbname, "user": user, "password": password}
    if s.secret_arn or s.iam_auth:
        kw["sslmode"] = "require"
    return make_conninfo(**{k: v for k, v in kw.items() if v is not None})


def open_store(s: StoreSettings):
    """A new store on its own connection (one per thread: a psycopg connection is not shared between threads)."""
    if s.kind == "qdrant":
        from qdrant_client import QdrantClient

        from serving.rag.qdrant import QdrantStore

        if s.path:
            return QdrantStore(QdrantClient(path=s.path))
        return QdrantStore(QdrantClient(url=s.url, api_key=s.api_key))
    from serving.rag.postgres import PgVectorStore

    return PgVectorStore.connect(pg_conninfo(s))
