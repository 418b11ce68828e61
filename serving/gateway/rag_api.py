"""Collections, document ingestion, queries and RAG routes for the gateway's tenants, over ``serving/rag``.

Routes (all behind the tenant's API key; collections are shared definitions, their chunks belong to tenants: every
read, write and delete names the calling tenant, so another tenant's document ids answer 404 and its chunks are never
returned):

- ``POST /v1/collections`` ``{"name", "distance"?}``: create a collection whose dimensions are the embedding model's
  (``rag.embeddingModel``); 201, or 200 when it exists with the same definition.
- ``GET /v1/collections/{name}``: its definition and the tenant's chunk count.
- ``POST /v1/collections/{name}/documents``: one document ``{"id"?, "text", "metadata"?}`` or a batch
  ``{"documents": [...]}``; every document is validated before anything is written (empty or oversized text,
  metadata of the wrong type, duplicate ids: 400 listing every problem), then each is stored in S3 and gets one SQS
  message; 202 with the ids and versions. The ingestion workers (``python -m serving.rag worker``) do the rest.
- ``DELETE /v1/collections/{name}/documents/{id}``: delete the document object (a queued message then finds
  nothing) and its chunks.
- ``POST /v1/collections/{name}/query`` ``{"query" | "vector", "top_k"?, "filter"?}``: query text is embedded by
  the gateway with the collection's model through the ``/v1/embeddings`` path (its micro-batcher; the model of
  ``rag.embeddingModel`` in ``embeddings.models``).

RAG routes (``rag.routes``): a chat request whose ``model`` is a RAG route has its last user turn embedded, the
tenant's top-k chunks retrieved and put into the prompt by the route's template, and is then served by the route's
chat route like any request (token counting, limits and caches see the augmented prompt). Retrieved chunks are cached
in Redis for ``rag.cache.ttlSeconds`` under tenant + collection + collection version + a hash of the query; an
accepted or deleted document bumps the tenant's collection version.

Budget: query text (a collection query's, a RAG route's last user turn) is counted and limited as ``/v1/embeddings``
input is (the model's length, the tenant's ``maxPromptTokens``) and its tokens reserved in the tenant's
``tokensPerMinute`` (tokens only, no request), settled to nothing when a cache answered; accepted documents are charged
their tokens (the tenant pays for embedding them), a document that could not be queued is given back.

Reads (collection lookups, queries, RAG retrieval) go to ``rag.store.readerHost`` / ``readerDsnEnv`` when set (the
Aurora reader endpoint), on read-only stores that run no DDL; writes, and the lookups that guard them, stay on the
writer.

Errors are OpenAI-shaped: the vector store's typed errors keep their status and message (every problem, key path,
value and expectation); S3/SQS or database failures answer 503 with nothing queued for the failing document.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from serving.gateway.api_errors import ApiError, read_json_object
from serving.rag.connect import StoreSettings, open_store, pg_conninfo
from serving.rag.errors import VectorStoreError
from serving.rag.ingest import (
    doc_key,
    submit_document,
    validate_source,
)
from serving.rag.store import NAME_PATTERN, id_problem

log = logging.getLogger("genai_scale.gateway.rag")

JSON = "application/json"
DEFAULT_TEMPLATE = (
    "Answer the user's question from the numbered sources below. Cite the sources you use as [n]. If the sources do "
    "not contain the answer, say that you do not know.\n\nSources:\n{sources}")
"""The ``default`` RAG template: one system message, put first, with each chunk as ``[n] (document <id>) <text>``."""


_CODES = {"DimensionMismatch": "invalid_dimensions", "InvalidDocument": "invalid_document",
          "InvalidFilter": "invalid_filter", "InvalidQuery": "invalid_query", "InvalidRequest": "invalid_request",
          "UnknownCollection": "collection_not_found", "CollectionExists": "collection_exists"}


def store_error(err: VectorStoreError) -> ApiError:
    """The store's typed error as an API error: its status, type and message, the first problem's path as param."""
    param = err.problems[0].path if err.problems else None
    return ApiError(err.status, str(err), _CODES.get(type(err).__name__, "invalid_request"), param, err.error_type)


def _unavailable(what: str, exc: Exception) -> ApiError:
    log.warning(orjson.dumps({"msg": f"{what} unavailable", "error": repr(exc)[:500]}).decode())
    return ApiError(503, f"The {what} is temporarily unavailable; retry shortly.", f"{what.replace(' ', '_')}"
                    "_unavailable", type_="api_error", headers={"retry-after": "2"})


def store_settings(s, env: Any = None) -> StoreSettings:
    """``rag.store`` as :class:`StoreSettings` (a ``dsnEnv`` read from the environment now)."""
    e = os.environ if env is None else env
    if s.kind == "qdrant":
        return StoreSettings(kind="qdrant", url=s.url, api_key=e.get(s.api_key_env) if s.api_key_env else None)
    if s.dsn_env:
        return StoreSettings(dsn=e.get(s.dsn_env) or "")
    return StoreSettings(host=s.host, port=s.port, dbname=s.dbname, user=s.user, secret_arn=s.secret_arn,
                         iam_auth=s.iam_auth, region=s.region)


def reader_settings(s, env: Any = None) -> StoreSettings | None:
    """Where ``rag.store``'s reads go: ``readerHost`` (with the writer's port, database and credentials) or
    ``readerDsnEnv``; None when reads share the writer's connection (the default, and Qdrant)."""
    e = os.environ if env is None else env
    if s.kind != "pgvector":
        return None
    if s.reader_dsn_env:
        return StoreSettings(dsn=e.get(s.reader_dsn_env) or "")
    if s.reader_host:
        return dataclasses.replace(store_settings(s, e), host=s.reader_host)
    return None


def open_reader(s: StoreSettings):
    """A read-only store on a reader endpoint: it runs no DDL (an Aurora reader refuses it; the writer creates the
    extension and the catalogue)."""
    import psycopg

    from serving.rag.postgres import PgVectorStore

    return PgVectorStore(psycopg.connect(pg_conninfo(s), autocommit=True), read_only=True)


def last_user_text(messages: Any) -> str | None:
    """The text of the last ``user`` message (a string, or its text parts joined), or None."""
    if not isinstance(messages, list):
        return None
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return "\n".join(str(p.get("text", "")) for p in c if isinstance(p, dict) and p.get("type") == "text")
            return None
    return None


def render_template(hits: list[dict[str, Any]]) -> str:
    """The ``default`` template's system message for ``hits`` (nearest first)."""
    sources = "\n".join(f"[{i}] (document {h['document_id']}) {h['text']}" for i, h in enumerate(hits, 1))
    return DEFAULT_TEMPLATE.format(sources=sources or "(no sources found)")


class RagApi:
    """The collection endpoints and the RAG-route hook of one gateway replica (see the module docstring)."""

    def __init__(self, gw, *, s3=None, sqs=None, embeddings=None, store_factory=None, reader_factory=None):
        """``gw``: the Gateway. ``embeddings``: the EmbeddingsApi whose model embeds query text (default: the
        gateway's, or one built for this API when ``/v1/embeddings`` is off). ``store_factory`` /
        ``reader_factory``: open a store on the writer / on the readers (default: from ``rag.store``; reads use
        the writer's store when no reader is configured)."""
        self.gw = gw
        self.cfg = gw.cfg.rag
        if s3 is None or sqs is None:
            import boto3

            s3 = s3 or boto3.client("s3", region_name=self.cfg.region)
            sqs = sqs or boto3.client("sqs", region_name=self.cfg.region)
        self.s3, self.sqs = s3, sqs
        if embeddings is None:
            embeddings = getattr(gw, "embeddings_api", None)
        if embeddings is None:
            from serving.gateway.embeddings_api import EmbeddingsApi

            embeddings = EmbeddingsApi(gw)
            self._own_embeddings = embeddings
        else:
            self._own_embeddings = None
        self.embeddings = embeddings
        self._settings = store_settings(self.cfg.store)
        self._store_factory = store_factory or (lambda: open_store(self._settings))
        reader = reader_settings(self.cfg.store)
        self._reader_factory = reader_factory or (None if reader is None else (lambda: open_reader(reader)))
        self._local = threading.local()
        self._schema_ready = False
        self._stores: list[Any] = []
        self._lock = threading.Lock()

    def routes(self) -> list:
        from starlette.routing import Route

        return [
            Route("/v1/collections", self._wrap(self.create_collection), methods=["POST"]),
            Route("/v1/collections/{name}", self._wrap(self.get_collection), methods=["GET"]),
            Route("/v1/collections/{name}/documents", self._wrap(self.add_documents), methods=["POST"]),
            Route("/v1/collections/{name}/documents/{doc_id:path}", self._wrap(self.delete_document),
                  methods=["DELETE"]),
            Route("/v1/collections/{name}/query", self._wrap(self.query), methods=["POST"]),
        ]

    def close(self) -> None:
        if self._own_embeddings is not None:
            self._own_embeddings.close()
        with self._lock:
            for s in self._stores:
                try:
                    s.close()
                except Exception:
                    pass
            self._stores.clear()

    def _wrap(self, handler):
        async def endpoint(request: Request) -> Response:
            tenant = self.gw.keys.authenticate(request.headers.get("authorization"))
            if tenant is None:
                return ApiError(401, "Invalid or missing API key.", "invalid_api_key",
                                type_="authentication_error").response()
            try:
                return await handler(request, tenant)
            except ApiError as exc:
                return exc.response()
            except ClientDisconnect:
                return Response(status_code=499)

        return endpoint

    # --- plumbing ----------------------------------------------------------------------------------------------
    def _store(self, slot: str = "store"):
        """This thread's store on the writer (``store``) or the readers (``reader``); a psycopg connection is used
        by one thread at a time."""
        store = getattr(self._local, slot, None)
        if store is None or getattr(getattr(store, "connection", None), "closed", False):  # lost: reconnect
            if slot == "reader" and not self._schema_ready:
                self._store()  # the writer's store creates the extension and catalogue a reader cannot
                self._schema_ready = True
            store = (self._reader_factory if slot == "reader" else self._store_factory)()
            setattr(self._local, slot, store)
            with self._lock:
                self._stores.append(store)
        return store

    async def _db(self, fn, *args, read: bool = False, **kw):
        """Run a store call in a worker thread; typed store errors become 4xx, anything else 503. ``read``: a call
        that only reads, sent to the readers when ``rag.store`` names them."""
        slot = "reader" if read and self._reader_factory is not None else "store"

        def call():
            try:
                return fn(self._store(slot), *args, **kw)
            except VectorStoreError:
                raise
            except Exception:
                setattr(self._local, slot, None)  # a broken connection: open a new one next time
                raise

        try:
            return await anyio.to_thread.run_sync(call)
        except VectorStoreError as err:
            raise store_error(err) from None
        except Exception as exc:
            raise _unavailable("vector store", exc) from None

    async def _aws(self, fn, *args, **kw):
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kw))
        except Exception as exc:
            raise _unavailable("document storage", exc) from None

    async def _json(self, request: Request) -> dict[str, Any]:
        return await read_json_object(self.gw, request)

    def _model(self):
        m = self.embeddings.models.get(self.cfg.embedding_model or "")
        if m is None:  # parse_config checks it; an EmbeddingsApi passed in by hand may lack it
            raise ApiError(503, f"The embedding model '{self.cfg.embedding_model}' is not configured.",
                           "embedding_unavailable", type_="api_error")
        return m

    async def _vector(self, m, text: str) -> tuple[list[float], bool]:
        """(the vector of ``text``, whether it was embedded now rather than found in the embedding cache)."""
        from serving.gateway.batcher import EmbedUnavailable

        try:
            vecs, fresh = await self.embeddings.vectors(m.name, [text])  # the embedding cache, then the batcher
            vec = vecs[text]
        except EmbedUnavailable as exc:
            raise _unavailable("embedding model", exc) from None
        return [float(x) for x in vec], text in fresh

    async def _dimensions(self) -> int:
        m = self._model()
        dim = getattr(m.default, "dim", None)
        if not dim:  # an embedding server of unconfigured size: ask it once (the gateway's own call: not charged)
            dim = len((await self._vector(m, "dimension probe"))[0])
        return int(dim)

    def _version_key(self, tenant: str, collection: str) -> str:
        return "rag:ver:" + hashlib.sha256(f"{tenant}\0{collection}".encode()).hexdigest()[:32]

    async def _bump(self, tenant: str, collection: str) -> None:
        try:
            await self.gw.redis.incr(self._version_key(tenant, collection))
        except Exception:  # the cache's TTL bounds staleness when the store is down
            log.warning(orjson.dumps({"msg": "could not bump the collection version"}).decode())

    @staticmethod
    def _check_name(name: str) -> None:
        if not NAME_PATTERN.match(name):
            raise ApiError(400, f"collection = {name[:80]!r}: must match [a-z][a-z0-9_]{{0,47}}",
                           "invalid_collection", "name")

    # --- collections -------------------------------------------------------------------------------------------
    async def create_collection(self, request: Request, tenant) -> Response:
        body = await self._json(request)
        extra = sorted(set(body) - {"name", "distance"})
        if extra:
            raise ApiError(400, f"Unrecognized field '{extra[0][:64]}'; a collection has name and distance.",
                           "unknown_parameter", extra[0][:64])
        name, distance = body.get("name"), body.get("distance", "cosine")
        if not isinstance(name, str):
            raise ApiError(400, "'name' is required: a string matching [a-z][a-z0-9_]{0,47}.", "invalid_value",
                           "name")
        dims = await self._dimensions()
        existed = await self._db(lambda s: _exists(s, name))
        info = await self._db(lambda s: s.create_collection(name, dims, distance, exist_ok=True))
        return Response(orjson.dumps(self._collection(info)), status_code=200 if existed else 201, media_type=JSON)

    def _collection(self, info, count: int | None = None) -> dict[str, Any]:
        out = {"object": "collection", "name": info.name, "dimensions": info.dimensions, "distance": info.distance,
               "embedding_model": self.cfg.embedding_model, "backend": info.backend}
        if count is not None:
            out["chunks"] = count
        return out

    async def get_collection(self, request: Request, tenant) -> Response:
        name = request.path_params["name"]
        info = await self._db(lambda s: s.describe_collection(name), read=True)
        count = await self._db(lambda s: s.count(name, tenant.name), read=True)
        return Response(orjson.dumps(self._collection(info, count)), media_type=JSON)

    # --- documents ---------------------------------------------------------------------------------------------
    async def add_documents(self, request: Request, tenant) -> Response:
        name = request.path_params["name"]
        self._check_name(name)
        body = await self._json(request)
        if "documents" in body:
            extra = sorted(set(body) - {"documents"})
            docs, batch = body["documents"], True
            if extra:
                raise ApiError(400, f"Unrecognized field '{extra[0][:64]}' beside 'documents'.", "unknown_parameter",
                               extra[0][:64])
            if not isinstance(docs, list) or not docs:
                raise ApiError(400, "'documents' must be a non-empty list of {id, text, metadata}.",
                               "invalid_value", "documents")
            if len(docs) > self.cfg.max_documents_per_request:
                raise ApiError(400, f"'documents' has {len(docs)} documents; at most "
                                    f"{self.cfg.max_documents_per_request} per request.", "too_many_documents",
                               "documents")
        else:
            docs, batch = [body], False
        await self._db(lambda s: s.describe_collection(name))  # 404 before anything is written
        prepared, problems, seen = [], [], set()
        for i, doc in enumerate(docs):
            path = f"documents[{i}]" if batch else ""
            try:
                text, meta = validate_source(doc, path=path)
            except VectorStoreError as err:
                problems += err.problems
                continue
            doc_id = doc.get("id")
            if doc_id is None:
                doc_id = "doc-" + os.urandom(12).hex()
            if doc_id in seen:
                from problems import Problem

                problems.append(Problem(f"{path}.id" if path else "id", doc_id, "appears twice in this request",
                                        code="document"))
            seen.add(doc_id)
            prepared.append((doc_id, text, meta))
        if problems:
            from serving.rag.errors import InvalidDocument

            err = InvalidDocument(problems)
            too_big = all(p.code == "document_too_large" for p in problems)
            api = store_error(err)
            if too_big:
                api.status, api.code = 413, "document_too_large"
            raise api
        m = self._model()  # the tenant pays for embedding its documents, charged when they are accepted
        counts = await anyio.to_thread.run_sync(lambda: [m.count(text) for _, text, _ in prepared])
        res = await self.embeddings.reserve(tenant, sum(counts), request=False,
                                            param="documents" if batch else "text", what="document tokens",
                                            hint="send fewer or smaller documents per request")
        out, accepted = [], 0
        try:
            for (doc_id, text, meta), tokens in zip(prepared, counts):
                msg = await self._aws(submit_document, self.s3, self.sqs, bucket=self.cfg.bucket,
                                      queue_url=self.cfg.queue_url, tenant=tenant.name, collection=name,
                                      document_id=doc_id, text=text, metadata=meta)
                accepted += tokens
                out.append({"object": "collection.document", "id": doc_id, "version": msg.version,
                            "status": "queued"})
        finally:  # a document that was not queued is not charged
            self.embeddings.settle(res, accepted)
            self.gw.metrics.tokens.labels(tenant.name, m.name, "in").inc(accepted)
        await self._bump(tenant.name, name)
        return Response(orjson.dumps({"object": "list", "collection": name, "data": out}), status_code=202,
                        media_type=JSON)

    async def delete_document(self, request: Request, tenant) -> Response:
        name, doc_id = request.path_params["name"], request.path_params["doc_id"]
        self._check_name(name)
        if (p := id_problem("id", doc_id)) is not None:
            raise ApiError(400, f"id = {doc_id[:80]!r}: {p.expected}", "invalid_value", "id")
        await self._db(lambda s: s.describe_collection(name))
        key = doc_key(tenant.name, name, doc_id)
        from botocore.exceptions import ClientError

        def remove() -> bool:
            try:
                self.s3.head_object(Bucket=self.cfg.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            self.s3.delete_object(Bucket=self.cfg.bucket, Key=key)
            return True

        had_object = await self._aws(remove)
        chunks = await self._db(lambda s: s.delete_document(name, tenant.name, doc_id))
        if not had_object and not chunks:
            raise ApiError(404, f"No document with id {doc_id[:80]!r} in collection {name!r} (or this API key may "
                                "not see it).", "not_found", "id")
        await self._bump(tenant.name, name)
        return Response(orjson.dumps({"object": "collection.document.deleted", "id": doc_id, "deleted": True,
                                      "chunks": chunks}), media_type=JSON)

    # --- queries -----------------------------------------------------------------------------------------------
    async def query(self, request: Request, tenant) -> Response:
        name = request.path_params["name"]
        body = await self._json(request)
        extra = sorted(set(body) - {"query", "vector", "top_k", "filter"})
        if extra:
            raise ApiError(400, f"Unrecognized field '{extra[0][:64]}'; a query has query or vector, top_k and "
                                "filter.", "unknown_parameter", extra[0][:64])
        if ("query" in body) == ("vector" in body):
            raise ApiError(400, "Give exactly one of 'query' (text) and 'vector' (numbers).", "invalid_value",
                           "query")
        top_k, flt = body.get("top_k", 10), body.get("filter")
        if "query" in body:
            text = body["query"]
            if not isinstance(text, str) or not text.strip():
                raise ApiError(400, "'query' must be a non-empty string.", "invalid_value", "query")
            await self._db(lambda s: s.describe_collection(name), read=True)  # 404 before embedding
            hits = await self.retrieve(tenant, name, text, top_k, flt)
        else:
            hits = await self._search(tenant.name, name, body["vector"], top_k, flt)
        return Response(orjson.dumps({"object": "list", "collection": name, "data": hits}), media_type=JSON)

    async def _search(self, tenant: str, collection: str, vector: Any, top_k: Any, flt: Any) -> list[dict]:
        hits = await self._db(lambda s: s.query(collection, tenant, vector, top_k, flt), read=True)
        return [{"document_id": h.document_id, "chunk_index": h.chunk_index, "text": h.text,
                 "metadata": h.metadata, "distance": h.distance} for h in hits]

    async def retrieve(self, tenant, collection: str, text: str, top_k: Any, flt: Any, *,
                       param: str = "query") -> list[dict]:
        """The tenant's top-k chunks for ``text``, through the retrieved-chunk cache. ``text`` is counted, limited
        (the model's length and the tenant's ``maxPromptTokens``) and charged to the tenant's token budget as
        ``/v1/embeddings`` input is (tokens only), settled to nothing when the chunks or the vector were cached."""
        m = self._model()
        where, hint = (("'query'", "send a shorter query") if param == "query" else
                       ("The last user message", "send a shorter last user message"))
        tokens = self.embeddings.count_text(tenant, m, text, where, param, hint)
        res = await self.embeddings.reserve(tenant, tokens, request=False, param=param, what="query tokens", hint=hint)
        used = [0]  # the tokens embedded now (``_retrieve`` sets it): what the tenant is charged
        try:
            return await self._retrieve(tenant.name, collection, m, text, top_k, flt, tokens, used)
        finally:
            self.embeddings.settle(res, used[0])
            self.gw.metrics.tokens.labels(tenant.name, m.name, "in").inc(used[0])

    async def _retrieve(self, tenant: str, collection: str, m, text: str, top_k: Any, flt: Any, tokens: int,
                        used: list[int]) -> list[dict]:
        key = None
        if self.cfg.cache.enabled:
            try:
                version = int(await self.gw.redis.get(self._version_key(tenant, collection)) or 0)
                digest = hashlib.sha256(orjson.dumps([tenant, collection, version, top_k, flt, text],
                                                     option=orjson.OPT_SORT_KEYS)).hexdigest()
                key = f"rag:hits:{digest}"
                cached = await self.gw.redis.get(key)
                if cached is not None:
                    self.gw.metrics.cache.labels("rag", "hit").inc()
                    return orjson.loads(cached)
                self.gw.metrics.cache.labels("rag", "miss").inc()
            except Exception:  # fail open: retrieve from the store
                self.gw.metrics.cache_errors.labels("rag", "get").inc()
                key = None
        vector, embedded = await self._vector(m, text)
        used[0] = tokens if embedded else 0
        hits = await self._search(tenant, collection, vector, top_k, flt)
        if key is not None:
            try:
                await self.gw.redis.set(key, orjson.dumps(hits), ex=self.cfg.cache.ttl_seconds)
            except Exception:
                self.gw.metrics.cache_errors.labels("rag", "put").inc()
        return hits

    # --- RAG routes --------------------------------------------------------------------------------------------
    def route_for(self, model: Any):
        """The RAG route of a chat request's ``model``, or None."""
        return self.cfg.routes.get(model) if isinstance(model, str) else None

    def failed(self, exc: Exception) -> Response:
        """The answer to a RAG route whose retrieval failed: its API error, or a 500 for anything unexpected."""
        if isinstance(exc, ApiError):
            return exc.response()
        log.error(orjson.dumps({"msg": "rag retrieval failed", "error": repr(exc)[:500]}).decode())
        return ApiError(500, "Internal gateway error.", "internal_error", type_="api_error").response()

    async def augment(self, rag, tenant, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the retrieved chunks put in by the route's template and ``model`` set to its chat route."""
        text = last_user_text(body.get("messages"))
        if not text or not text.strip():
            raise ApiError(400, "A RAG route needs a last user message with text to retrieve sources for.",
                           "invalid_value", "messages")
        hits = await self.retrieve(tenant, rag.collection, text, rag.top_k, rag.filter, param="messages")
        out = dict(body)
        out["model"] = rag.route
        out["messages"] = [{"role": "system", "content": render_template(hits)}] + list(body["messages"])
        return out


def _exists(store, name: str) -> bool:
    from serving.rag.errors import UnknownCollection

    try:
        store.describe_collection(name)
        return True
    except UnknownCollection:
        return False

