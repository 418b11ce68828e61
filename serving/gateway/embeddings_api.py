"""OpenAI's ``POST /v1/embeddings`` for the gateway's tenants, in front of the models of ``embeddings.models``.

Request path: authenticate (tenant) -> validate the whole request (every client mistake is a 4xx in OpenAI's error
shape before anything is reserved) -> the model must be in ``embeddings.models`` and in the tenant's ``models``
list (404 ``model_not_found`` otherwise, as for chat) -> count input tokens (400 when one text is longer than the
model takes, or than the tenant's ``maxPromptTokens``, which applies to each text on its own) -> reserve the tokens
in the tenant's budget (the chat limiter: 429 / 503) -> look every text up in the vector cache (Redis/Valkey, one
``MGET``) -> embed the misses through the model's micro-batcher (``serving/gateway/batcher.py``: texts of concurrent
requests share one embedder call) -> answer, settle the reservation to the tokens actually embedded, write the new
vectors to the cache in the background. The collection endpoints and RAG routes (``rag_api.py``) charge their query
text and documents through the same counting, limit and budget.

Inputs: a string or an array of up to 2,048 strings (OpenAI's limit), none empty. Token arrays (arrays of integers)
are answered 400: the gateway's models do not share one vocabulary, so it cannot take token ids. ``encoding_format``
``float`` (default) or ``base64`` (little-endian float32, as OpenAI's SDK decodes it). ``dimensions``: the model's
own size, or for Titan v2 (``kind: bedrock``) 256, 512 or 1024; anything else is a 400. ``user`` is accepted and
logged only. Other fields are a 400 (``unknown_parameter``).

Tokens: the local model counts exactly (its WordPiece tokenizer, 256 word pieces at most). A remote model's
tokenizer is not in the gateway, so its count is an estimate of one token per 4 UTF-8 bytes (OpenAI's rule of thumb
for English), and its length limit is in characters (Titan v2: 40,000 of the service's 50,000; an embedding
server: ``maxInputChars``).

The cache is a function of the text alone: ``sha256(model identity, dimensions, text)`` -> float32 bytes, with a TTL,
shared by every tenant and replica (a tenant learns nothing from it but the vector it asked for). Every store
failure is a miss (fail open): the texts are embedded and the answer is a 200. An embedder failure (the server is
down, a timeout, a full queue) is a 503 ``embedding_unavailable`` with ``retry-after``, never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from typing import Any

import numpy as np
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from serving.gateway.api_errors import ApiError, read_json_object
from serving.gateway.batcher import EmbedBatcher, EmbedUnavailable
from serving.gateway.config import (
    BedrockEmbeddingModel,
    LocalEmbeddingModel,
    OpenAIEmbeddingModel,
)
from serving.gateway.limiter import LimiterUnavailable, Reservation

log = logging.getLogger("genai_scale.gateway")

JSON = "application/json"
MAX_INPUTS = 2048
"""OpenAI's limit on the number of inputs in one embeddings request."""
BEDROCK_MAX_CHARS = 40_000
"""Titan Text Embeddings v2 takes 50,000 characters (and 8,192 tokens); the gateway stops well inside it."""
TITAN_DIMENSIONS = (256, 512, 1024)
BYTES_PER_TOKEN = 4
_FIELDS = {"model", "input", "encoding_format", "dimensions", "user"}
_REMOTE_WORKERS = 4
"""Concurrent embedder calls of a remote model's batcher (the server batches on its side too); the local model
has one worker: two CPU-bound batches at once only share the same cores."""


def cache_key(identity: str, dimensions: int | None, text: str) -> str:
    """The vector cache key of ``text`` embedded by the model ``identity`` at ``dimensions``."""
    h = hashlib.sha256()
    for part in (identity, str(dimensions or ""), text):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return "gw:emb:" + h.hexdigest()


def identity(m: LocalEmbeddingModel | BedrockEmbeddingModel | OpenAIEmbeddingModel) -> str:
    """What the vectors depend on: the model, not the public name (two names of one model share entries, a name
    pointed at another model does not reuse the old vectors)."""
    if isinstance(m, LocalEmbeddingModel):
        return "local:all-MiniLM-L6-v2"
    if isinstance(m, BedrockEmbeddingModel):
        return f"bedrock:{m.model_id}"
    return f"openai:{m.base_url.rstrip('/')}:{m.model}"


class _Model:
    """One public model: its config, its embedders (by dimensions) and their batchers."""

    def __init__(self, name: str, cfg, embedder, api: EmbeddingsApi):
        self.name, self.cfg, self.api = name, cfg, api
        self.identity = identity(cfg)
        self.default = embedder
        self._by_dim: dict[int | None, Any] = {None: embedder}
        self._batchers: dict[int | None, EmbedBatcher] = {}

    @property
    def local(self) -> bool:
        return isinstance(self.cfg, LocalEmbeddingModel)

    def dims_allowed(self, dims: int) -> bool:
        if isinstance(self.cfg, BedrockEmbeddingModel):
            return dims in TITAN_DIMENSIONS
        return dims == self.default.dim

    def native(self, dims: int | None) -> int | None:
        """``dims`` as the key of the embedder that serves it (None: the model's default)."""
        if dims is None or dims == self.default.dim:
            return None
        return dims

    def batcher(self, dims: int | None) -> EmbedBatcher:
        b = self._batchers.get(dims)
        if b is None:
            emb = self._by_dim.get(dims)
            if emb is None:  # Titan v2 at another size: same client, another ``dimensions``
                from serving.gateway.embed import BedrockEmbedder

                emb = self._by_dim[dims] = BedrockEmbedder(self.cfg.model_id, dimensions=dims,
                                                           client=getattr(self.default, "_client", None),
                                                           region=self.cfg.region,
                                                           timeout_s=self.cfg.request_timeout_ms / 1000)
            bc = self.api.cfg.batch
            hist = self.api.metrics.embedding_batch_size.labels(self.name)
            b = self._batchers[dims] = EmbedBatcher(emb, max_batch=bc.max_batch, max_wait_ms=bc.max_wait_ms,
                                                    max_queue=bc.max_queue, timeout_s=bc.timeout_ms / 1000,
                                                    workers=1 if self.local else _REMOTE_WORKERS,
                                                    on_batch=hist.observe)
        return b

    def count(self, text: str) -> int:
        if self.local:
            return self.default.token_count(text)
        return max(1, -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN))

    def too_long(self, text: str, tokens: int) -> str | None:
        """Why ``text`` is too long for the model, or None."""
        if self.local:
            cap = self.default.max_tokens
            return None if tokens <= cap else f"has {tokens} tokens, above the limit of {cap} tokens"
        cap = BEDROCK_MAX_CHARS if isinstance(self.cfg, BedrockEmbeddingModel) else self.cfg.max_input_chars
        return None if len(text) <= cap else f"has {len(text)} characters, above the limit of {cap} characters"

    def close(self) -> None:
        for b in self._batchers.values():
            b.close()


def build_embedder(cfg, shared_local=None):
    """The embedder of one ``embeddings.models`` entry. ``shared_local``: a LocalEmbedder whose weights to share."""
    from serving.gateway.embed import BedrockEmbedder, LocalEmbedder, OpenAIEmbedder

    if isinstance(cfg, LocalEmbeddingModel):
        base = shared_local if isinstance(shared_local, LocalEmbedder) else LocalEmbedder(threads=cfg.threads)
        return base.plain()
    if isinstance(cfg, BedrockEmbeddingModel):
        return BedrockEmbedder(cfg.model_id, dimensions=cfg.dimensions, region=cfg.region,
                               timeout_s=cfg.request_timeout_ms / 1000)
    import os

    key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
    return OpenAIEmbedder(cfg.base_url, cfg.model, dimensions=cfg.dimensions, api_key=key,
                          timeout_s=cfg.request_timeout_ms / 1000, max_chars=cfg.max_input_chars)


class EmbeddingsApi:
    """``POST /v1/embeddings`` of one gateway replica (see the module docstring)."""

    def __init__(self, gw, *, embedders: dict[str, Any] | None = None):
        """``gw``: the :class:`serving.gateway.app.Gateway` (keys, limiter, Redis, metrics). ``embedders``: public
        model name -> embedder, replacing the one the config describes (tests, benchmarks)."""
        self.gw = gw
        self.cfg = gw.cfg.embeddings
        self.metrics = gw.metrics
        given = dict(embedders or {})
        shared = getattr(gw, "_embedder", None)  # the semantic cache's local model: share its weights
        self.models: dict[str, _Model] = {}
        for name, m in self.cfg.models.items():
            emb = given.get(name)
            if emb is None:
                emb = build_embedder(m, shared)
                if isinstance(m, LocalEmbeddingModel):
                    shared = emb
            self.models[name] = _Model(name, m, emb, self)

    def routes(self) -> list:
        from starlette.routing import Route

        return [Route("/v1/embeddings", self.create, methods=["POST"])]

    def close(self) -> None:
        for m in self.models.values():
            m.close()

    # --- the request -------------------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        t0 = time.perf_counter()
        tenant = self.gw.keys.authenticate(request.headers.get("authorization"))
        if tenant is None:
            self.metrics.embedding_requests.labels("", "", "401").inc()
            return ApiError(401, "Invalid or missing API key.", "invalid_api_key",
                            type_="authentication_error").response()
        model = ""
        try:
            body = await self._body(request)
            model = body["model"] if isinstance(body.get("model"), str) else ""
            resp = await self._serve(tenant, body)
        except ApiError as exc:
            resp = exc.response()
        except ClientDisconnect:
            resp = Response(status_code=499)
        self.metrics.embedding_requests.labels(model if model in self.models else "", tenant.name,
                                               str(resp.status_code)).inc()
        if model in self.models:
            self.metrics.embedding_latency.labels(model).observe(time.perf_counter() - t0)
        return resp

    async def _body(self, request: Request) -> dict[str, Any]:
        return await read_json_object(self.gw, request)

    def _validate(self, tenant, body: dict[str, Any]) -> tuple[_Model, list[str], str, int | None]:
        """(model, texts, encoding format, dimensions). Raises ApiError with the first problem."""
        extra = sorted(k for k in body if k not in _FIELDS)
        if extra:
            raise ApiError(400, f"Unrecognized request argument supplied: {extra[0][:64]}. This endpoint takes "
                                f"model, input, encoding_format, dimensions and user.", "unknown_parameter",
                           extra[0][:64])
        name = body.get("model")
        if name is None:
            raise ApiError(400, "'model' is required.", "missing_required_parameter", "model")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "'model' must be a non-empty string.", "invalid_type", "model")
        m = self.models.get(name)
        allow = tenant.limits.models
        if m is None or (allow is not None and name not in allow):
            raise ApiError(404, f"The embeddings model '{name[:256]}' does not exist or this API key may not use "
                                f"it.", "model_not_found", "model")
        texts = self._texts(body.get("input", _MISSING))
        fmt = body.get("encoding_format")
        if fmt is None:
            fmt = "float"
        if fmt not in ("float", "base64"):
            raise ApiError(400, f"'encoding_format' must be 'float' or 'base64', not {str(fmt)[:32]!r}.",
                           "invalid_value", "encoding_format")
        dims = body.get("dimensions")
        if dims is not None:
            if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
                raise ApiError(400, "'dimensions' must be a positive integer.", "invalid_type", "dimensions")
            if not m.dims_allowed(dims):
                sizes = ", ".join(map(str, TITAN_DIMENSIONS)) if isinstance(m.cfg, BedrockEmbeddingModel) else (
                    str(m.default.dim) if m.default.dim else None)
                what = f"vectors of {sizes} dimensions" if sizes else "vectors of the embedding server's own size"
                raise ApiError(400, f"Model '{name}' does not support dimensions={dims}; it returns {what}.",
                               "invalid_value", "dimensions")
        user = body.get("user")
        if user is not None and not isinstance(user, str):
            raise ApiError(400, "'user' must be a string.", "invalid_type", "user")
        return m, texts, fmt, m.native(dims)

    @staticmethod
    def _texts(value: Any) -> list[str]:
        if value is _MISSING:
            raise ApiError(400, "'input' is required.", "missing_required_parameter", "input")
        if isinstance(value, str):
            if not value:
                raise ApiError(400, "'input' cannot be an empty string.", "invalid_value", "input")
            return [value]
        if not isinstance(value, list):
            raise ApiError(400, "'input' must be a string or an array of strings.", "invalid_type", "input")
        if not value:
            raise ApiError(400, "'input' cannot be an empty array.", "invalid_value", "input")
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value) or any(
                isinstance(v, list) for v in value):
            raise ApiError(400, "Token arrays are not supported by this gateway: send the input as text (a string "
                                "or an array of strings).", "unsupported_input", "input")
        if len(value) > MAX_INPUTS:
            raise ApiError(400, f"'input' has {len(value)} items, above the limit of {MAX_INPUTS} per request.",
                           "too_many_inputs", "input")
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise ApiError(400, f"'input[{i}]' must be a string, not {type(v).__name__}.", "invalid_type",
                               "input")
            if not v:
                raise ApiError(400, f"'input[{i}]' cannot be an empty string.", "invalid_value", "input")
        return value

    def count_text(self, tenant, m: _Model, text: str, where: str, param: str, hint: str) -> int:
        """The tokens of one text to embed for ``tenant``, or a 400 ``context_length_exceeded`` when it is longer
        than the model takes or than the tenant's ``maxPromptTokens`` (which applies to each text on its own)."""
        n = m.count(text)
        why = m.too_long(text, n)
        if why is not None:
            raise ApiError(400, f"{where} {why} of model '{m.name}'; {hint}.", "context_length_exceeded", param)
        cap = tenant.limits.max_prompt_tokens
        if cap and n > cap:
            how = "tokens" if m.local else f"tokens (estimated at {BYTES_PER_TOKEN} UTF-8 bytes a token)"
            raise ApiError(400, f"{where} has {n} {how}, above this API key's limit of {cap} tokens per text "
                                f"(maxPromptTokens); {hint}.", "context_length_exceeded", param)
        return n

    async def _serve(self, tenant, body: dict[str, Any]) -> Response:
        m, texts, fmt, dims = self._validate(tenant, body)
        one = isinstance(body["input"], str)
        counts = [self.count_text(tenant, m, t, "'input'" if one else f"'input[{i}]'", "input",
                                  "split it into shorter texts") for i, t in enumerate(texts)]
        total = sum(counts)
        reservation = await self.reserve(tenant, total)
        try:
            vecs, fresh = await self.vectors(m.name, texts, dims)
        except EmbedUnavailable as exc:
            self.settle(reservation, 0)
            raise self._unavailable(m, str(exc)) from None
        embedded = sum(n for t, n in zip(texts, counts) if t in fresh)
        self.settle(reservation, embedded)
        inputs = self.metrics.embedding_inputs
        inputs.labels(m.name, tenant.name, "embedded").inc(sum(1 for t in texts if t in fresh))
        inputs.labels(m.name, tenant.name, "cache").inc(sum(1 for t in texts if t not in fresh))
        self.metrics.tokens.labels(tenant.name, m.name, "in").inc(total)
        data = []
        for i, t in enumerate(texts):
            v = np.asarray(vecs[t], dtype="<f4")
            emb: Any = base64.b64encode(v.tobytes()).decode("ascii") if fmt == "base64" else v
            data.append({"object": "embedding", "index": i, "embedding": emb})
        out = {"object": "list", "data": data, "model": m.name,
               "usage": {"prompt_tokens": total, "total_tokens": total}}
        if log.isEnabledFor(logging.INFO):
            log.info(orjson.dumps({"msg": "embeddings", "tenant": tenant.name, "model": m.name,
                                   "inputs": len(texts), "cached": sum(1 for t in texts if t not in fresh),
                                   "tokens": total,
                                   "user": body.get("user")}).decode())
        return Response(orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)

    async def vectors(self, model: str, texts: list[str], dims: int | None = None
                      ) -> tuple[dict[str, np.ndarray], set[str]]:
        """The vectors of ``texts`` by the model ``model`` (a name of ``embeddings.models``; ``dims``: a size
        :meth:`_Model.native` returns, None for the model's own): from the cache, the rest through the model's
        micro-batcher (new vectors are written to the cache in the background). Returns (text -> vector, the texts
        that were embedded now). No validation, auth or budget: for callers that did them (the RAG endpoints too).
        Raises :class:`EmbedUnavailable` when the embedder fails or its queue has no room for the texts."""
        m = self.models[model]
        vecs: dict[str, np.ndarray] = {}
        keys = {t: cache_key(m.identity, dims or m.default.dim, t) for t in texts}
        if self.cfg.cache.enabled:
            vecs = await self._cached(m, keys)
        misses = [t for t in keys if t not in vecs]
        batcher = m.batcher(dims)
        if misses and batcher.waiting + len(misses) > batcher.max_queue:
            raise EmbedUnavailable(f"queue full ({batcher.waiting} texts waiting)")
        got = await asyncio.gather(*(batcher.embed(t) for t in misses))
        fresh = dict(zip(misses, got))
        vecs.update(fresh)
        if fresh and self.cfg.cache.enabled:
            self._background(self._store(m, {keys[t]: v for t, v in fresh.items()}))
        return vecs, set(fresh)

    def _unavailable(self, m: _Model, reason: str) -> ApiError:
        log.warning(orjson.dumps({"msg": "embedding failed", "model": m.name, "error": reason[:500]}).decode())
        return ApiError(503, f"The embeddings model '{m.name}' is unavailable right now; retry shortly.",
                        "embedding_unavailable", type_="api_error", headers={"retry-after": "1"})

    # --- budget ------------------------------------------------------------------------------------------------
    async def reserve(self, tenant, tokens: int, *, request: bool = True, param: str = "input",
                      what: str = "input tokens", hint: str = "send fewer or shorter inputs") -> Reservation | None:
        """Reserve ``tokens`` (and, with ``request``, one request) in the tenant's budget: 400 when they exceed the
        whole ``tokensPerMinute``, 429 when the budget has no room now, 503 when the limiter is down and fails
        closed. ``request=False`` charges tokens only (the collection endpoints and a RAG route's retrieval, whose
        chat request is counted by the chat path). Settle with :meth:`settle`."""
        gw = self.gw
        if not gw.cfg.limiter.enabled or tokens <= 0:
            return None
        tpm = tenant.limits.tokens_per_minute
        if tpm and tokens > tpm:
            raise ApiError(400, f"This request has {tokens} {what}, more than this API key's budget of {tpm} "
                                f"tokens per minute; {hint}.", "exceeds_token_budget", param)
        limits = tenant.limits if request else tenant.limits.model_copy(update={"requests_per_minute": None})
        try:
            decision = await gw.limiter.reserve(tenant.name, limits, tokens)
        except LimiterUnavailable:
            self.metrics.limiter_errors.labels(gw.cfg.limiter.fail_mode).inc()
            if gw.cfg.limiter.fail_mode == "closed":
                raise ApiError(503, "Rate limiting is temporarily unavailable; retry shortly.",
                               "limiter_unavailable", type_="api_error", headers={"retry-after": "1"}) from None
            return None
        if not decision.allowed:
            self.metrics.limiter_rejections.labels(tenant.name, decision.limit).inc()
            what = "requests" if decision.limit == "rpm" else "tokens"
            raise ApiError(429, f"Rate limit reached for {what} per minute on this API key; retry after "
                                f"{decision.retry_after_s} s.", "rate_limit_exceeded", type_="rate_limit_error",
                           headers={"retry-after": str(decision.retry_after_s)})
        return decision.reservation

    def settle(self, res: Reservation | None, used: int) -> None:
        """Settle a reservation of :meth:`reserve` to the ``used`` tokens (a refund is held briefly, see limiter)."""
        if res is None or res.settled:
            return
        if not self.gw.limiter.settle_later(res, used):
            self._background(self._settle_now(res, used))

    async def _settle_now(self, res: Reservation, used: int) -> None:
        try:
            await self.gw.limiter.settle(res, used)
        except LimiterUnavailable:
            self.metrics.limiter_errors.labels("settle").inc()

    # --- cache -------------------------------------------------------------------------------------------------
    async def _cached(self, m: _Model, keys: dict[str, str]) -> dict[str, np.ndarray]:
        """The cached vectors of the texts that have one; a store failure is a miss for every text."""
        c = self.metrics.cache
        try:
            async with asyncio.timeout(self.cfg.cache.timeout_ms / 1000):
                raw = await self.gw.redis.mget(list(keys.values()))
        except Exception:  # noqa: BLE001 (down, timeout, auth, a bad reply: fail open)
            self.metrics.cache_errors.labels("embeddings", "get").inc()
            c.labels("embeddings", "error").inc(len(keys))
            return {}
        out = {}
        for t, r in zip(keys, raw):
            if r is not None and len(r) % 4 == 0 and len(r):
                out[t] = np.frombuffer(r, dtype="<f4")
        c.labels("embeddings", "hit").inc(len(out))
        c.labels("embeddings", "miss").inc(len(keys) - len(out))
        return out

    async def _store(self, m: _Model, entries: dict[str, np.ndarray]) -> None:
        try:
            async with asyncio.timeout(max(1.0, self.cfg.cache.timeout_ms / 1000)):
                pipe = self.gw.redis.pipeline(transaction=False)
                for k, v in entries.items():
                    pipe.set(k, np.asarray(v, dtype="<f4").tobytes(), ex=self.cfg.cache.ttl_seconds)
                await pipe.execute()
        except Exception:  # noqa: BLE001 (a failed write only costs a later miss)
            self.metrics.cache_errors.labels("embeddings", "put").inc()

    def _background(self, coro) -> None:
        self.gw._background(coro)  # the gateway's shutdown waits for them before it closes Redis


_MISSING = object()
