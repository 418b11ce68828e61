"""The ASGI application: OpenAI-compatible endpoints in front of the routes.

Request path for ``POST /v1/chat/completions`` and ``/v1/completions``:
authenticate (tenant) -> validate and cap ``max_tokens`` -> count prompt tokens (400 when too long) -> reserve
``prompt + n x max_tokens`` in the tenant's budget (429 / 503) -> exact cache, then semantic cache -> for a pool
model, a replica where it is hot (held while it wakes or loads: ``pools.py``) -> route
(balancing, retries, fallbacks, circuit breakers, cascade) -> respond (JSON or SSE) -> settle the reservation to the
reported usage -> write the caches (streams only once complete).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, AsyncIterator

import anyio
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route as HttpRoute

from serving.gateway import affinity
from serving.gateway.api_errors import ApiError
from serving.gateway.auth import Tenant, load_keys
from serving.gateway.cache import CacheUnavailable, ExactCache, SemanticCache, detect_index, digest
from serving.gateway.config import GatewayConfig, RouteConfig, RoutingConfig
from serving.gateway.limiter import Limiter, LimiterUnavailable, Reservation
from serving.gateway.metrics import Metrics
from serving.gateway.routing import (IncompleteStream, NoUpstream, RetryBudget, Route, Router, compile_refusals,
                                     escalation_reason, session_of)
from serving.gateway.schema import check_request
from serving.gateway.tokens import PromptError, TokenCounter
from serving.gateway.upstreams import DONE, UpstreamClient, UpstreamError, build_upstream

log = logging.getLogger("genai_scale.gateway")

JSON = "application/json"
_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
             "repetition_penalty", "logit_bias", "logprobs", "top_logprobs", "response_format", "tools",
             "tool_choice", "parallel_tool_calls", "echo", "suffix", "best_of", "user")
_WS = re.compile(r"\s+")
_RID_PREFIX = secrets.token_hex(8)  # request ids: a random per-process prefix and a counter (unique across replicas)
_RID_SEQ = itertools.count(1)
_RID_OK = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
"""A client's ``x-request-id`` is kept (and echoed) only when it is 1-128 of these characters; otherwise the gateway
assigns its own, so a log line or a response header never carries an attacker-sized or control-character value."""
_FINISH = re.compile(rb'"finish_reason":\s*"')


def request_id(given: str | None) -> str:
    """The client's request id when it is well-formed, else a fresh one."""
    if given and _RID_OK.match(given):
        return given
    return f"{_RID_PREFIX}{next(_RID_SEQ):08x}"


def error(status: int, message: str, type_: str, *, code: str | None = None, param: str | None = None,
          headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param, self.code = param, code


def _norm_text(s: str) -> str:
    return _WS.sub(" ", s).strip()


def _normalized_messages(messages: list[dict[str, Any]]) -> list[Any]:
    out = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, list):
            c = "".join(p.get("text", "") for p in c if isinstance(p, dict))
        out.append([m.get("role"), _norm_text(c) if isinstance(c, str) else c, m.get("name"), m.get("tool_calls"),
                    m.get("tool_call_id")])
    return out


def query_text(kind: str, body: dict[str, Any]) -> tuple[str, Any]:
    """(text the semantic cache embeds, the context it must match exactly)."""
    if kind == "completion":
        p = body.get("prompt")
        return (p if isinstance(p, str) else ""), None
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs else {}
    if last.get("role") != "user":
        return "", None
    c = last.get("content")
    if isinstance(c, list):
        c = "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return (c if isinstance(c, str) else ""), _normalized_messages(msgs[:-1])


class Gateway:
    """Everything one replica holds: config, clients, routes, caches, limiter and metrics."""

    def __init__(self, cfg: GatewayConfig, *, config_dir: str | Path = ".", redis_client=None,
                 upstreams: dict[str, UpstreamClient] | None = None, embedder=None):
        self.cfg = cfg
        self.metrics = Metrics()
        self.keys = load_keys(cfg, config_dir)
        self.redis = redis_client if redis_client is not None else make_redis(cfg, config_dir)
        self.limiter = Limiter(self.redis, timeout_s=cfg.limiter.timeout_ms / 1000,
                               refund_delay_s=cfg.limiter.refund_delay_ms / 1000,
                               on_error=lambda op: self.metrics.limiter_errors.labels(op).inc())
        self.exact = ExactCache(self.redis, timeout_s=cfg.semantic_cache.timeout_ms / 1000)
        self.upstreams = upstreams or {n: build_upstream(n, u) for n, u in cfg.upstreams.items()}
        self.router = Router(self.metrics)
        self.routes: dict[str, Route] = {}
        for name, r in cfg.routes.items():
            counter = TokenCounter(Path(config_dir) / r.tokenizer.file if r.tokenizer else None,
                                   message_overhead_tokens=r.tokenizer.message_overhead_tokens if r.tokenizer else 8)
            self.routes[name] = Route(name, r, [(self.upstreams[t.upstream], t.weight) for t in r.targets],
                                      [self.upstreams[f] for f in r.fallbacks], counter,
                                      RetryBudget(r.retry_budget.ratio, r.retry_budget.min_per_second))
        self.pools = None
        """The dynamic model pools (``pools``, ``serving/gateway/pools.py``); their models are routes without targets
        of their own: each request gets a replica where its model is hot."""
        if cfg.pools:
            from serving.gateway.pools import Pools

            self.pools = Pools(cfg.pools, self.redis, self.metrics)
            for model in self.pools.models:
                self.routes[model] = Route(model, RouteConfig(), [], [], TokenCounter(None), RetryBudget(0.2, 5.0))
        for name, route in self.routes.items():
            if route.cfg.cascade:
                route.stages = [self.routes[s] for s in route.cfg.cascade.stages]
                route.refusal_res = compile_refusals(route.cfg.cascade.escalate_when)
        self._embedder = embedder
        self.batch_api = None
        """The Files and Batch APIs (``batch.enabled``); built by :func:`create_app` unless set before."""
        self.embeddings_api = None
        """``POST /v1/embeddings`` (``embeddings.enabled``); built by :func:`create_app` unless set before."""
        self.rag_api = None
        """Collections and RAG routes (``rag.enabled``); built by :func:`create_app` unless set before."""
        self.semantic: SemanticCache | None = None
        self.draining = False
        self.started = time.time()
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle ---------------------------------------------------------------------------------------------
    async def startup(self) -> None:
        if self.cfg.limiter.enabled and self.cfg.limiter.warm_connections:
            try:  # before the server accepts requests: uvicorn opens the listener after the lifespan startup
                await self.limiter.warm(self.cfg.limiter.warm_connections)
            except LimiterUnavailable as exc:  # not fatal: requests fail closed (or open) until the store answers
                self.metrics.limiter_errors.labels("warm-up").inc()
                log.warning(orjson.dumps({"msg": "limiter store not reachable at startup",
                                          "error": str(exc)}).decode())
        if self.pools is not None:  # discover the replicas and their engines' state before serving
            await self.pools.start()
        if any(r.cache.semantic.enabled for r in self.cfg.routes.values()):
            emb = self._embedder or make_embedder(self.cfg)
            index = None
            try:
                index = await detect_index(self.redis, self.cfg.semantic_cache, emb.dim)
            except Exception:  # pragma: no cover - detect_index itself falls back
                pass
            self.semantic = SemanticCache(index, emb, candidates=self.cfg.semantic_cache.candidates,
                                          batcher=make_batcher(self.cfg, emb))
            try:
                await self.semantic.ensure_started()
            except Exception as exc:  # fail open: retried on the next lookup
                self.metrics.cache_errors.labels("semantic", "start").inc()
                log.warning(orjson.dumps({"msg": "semantic index not ready", "error": str(exc)}).decode())

    async def shutdown(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self.pools is not None:
            await self.pools.close()
        await self.limiter.aclose()  # pending refunds
        for u in self.upstreams.values():
            await u.aclose()
        try:
            await self.redis.aclose()
        except Exception:
            pass

    def _background(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- endpoints ---------------------------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(self, request: Request) -> Response:
        if self.draining:
            return Response(b'{"status":"draining"}', status_code=503, media_type=JSON)
        return Response(b'{"status":"ready"}', media_type=JSON)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def models(self, request: Request) -> Response:
        tenant = self.keys.authenticate(request.headers.get("authorization"))
        if tenant is None:
            return error(401, "Invalid or missing API key.", "authentication_error", code="invalid_api_key")
        data = [{"id": n, "object": "model", "created": int(self.started), "owned_by": "genai-scale"}
                for n in [*self.routes, *(self.cfg.rag.routes if self.rag_api else ()),
                          *(self.cfg.embeddings.models if self.cfg.embeddings.enabled else ())]
                if _allowed(tenant, n)]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)

    async def chat(self, request: Request) -> Response:
        return await self._handle(request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self._handle(request, "completion")

    # --- the request path --------------------------------------------------------------------------------------
    def _caps(self, route: Route, tenant: Tenant) -> tuple[int, int]:
        routes = [route] + (route.stages or [])
        max_tokens = min(r.cfg.max_tokens for r in routes)
        max_prompt = min(r.cfg.max_prompt_tokens for r in routes)
        if tenant.limits.max_tokens:
            max_tokens = min(max_tokens, tenant.limits.max_tokens)
        if tenant.limits.max_prompt_tokens:
            max_prompt = min(max_prompt, tenant.limits.max_prompt_tokens)
        return max_tokens, max_prompt

    def _validate(self, kind: str, body: dict[str, Any], route: Route, tenant: Tenant) -> tuple[int, int, int, int]:
        """Returns (max_tokens, n, prompt tokens of the largest stage, tokens to reserve). Raises BadRequest."""
        if kind == "chat":
            msgs = body.get("messages")
            if not isinstance(msgs, list) or not msgs:
                raise BadRequest("'messages' must be a non-empty list.", "messages")
        elif "prompt" not in body:
            raise BadRequest("'prompt' is required.", "prompt")
        n = body.get("n")
        n = 1 if n is None else n
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 16:
            raise BadRequest("'n' must be an integer from 1 to 16.", "n")
        cap, prompt_cap = self._caps(route, tenant)
        param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        asked = body.get(param)
        if asked is None:
            max_tokens = cap
        elif not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
            raise BadRequest(f"'{param}' must be a positive integer.", param)
        elif asked > cap:
            raise BadRequest(f"'{param}' is {asked}, above the limit of {cap} for model '{route.name}' and this "
                             f"API key.", param, "max_tokens_exceeded")
        else:
            max_tokens = asked
        counters = [s.counter for s in route.stages] if route.stages else [route.counter]
        try:
            if kind == "chat":
                counts = [c.count_chat(body["messages"], body.get("tools")) for c in counters]
            else:
                counts = [c.count_prompt(body["prompt"]) for c in counters]
        except PromptError as exc:
            raise BadRequest(str(exc), "messages" if kind == "chat" else "prompt") from None
        prompt = max(counts)
        if prompt > prompt_cap:
            exact = all(c.exact for c in counters)
            how = "tokens" if exact else "tokens (counted as UTF-8 bytes: no tokenizer is configured for this model)"
            raise BadRequest(f"The prompt has {prompt} {how}, above the limit of {prompt_cap} for model "
                             f"'{route.name}' and this API key.", "messages" if kind == "chat" else "prompt",
                             "context_length_exceeded")
        reserve = sum(c + n * max_tokens for c in counts)
        return max_tokens, n, prompt, reserve

    async def _handle(self, request: Request, kind: str) -> Response:
        t0 = time.perf_counter()
        rid = request_id(request.headers.get("x-request-id"))
        tenant = self.keys.authenticate(request.headers.get("authorization"))
        if tenant is None:
            return error(401, "Invalid or missing API key.", "authentication_error", code="invalid_api_key")
        try:
            raw = await self._read_body(request)
        except ClientDisconnect:  # gone while sending (or dropped by server.bodyReadTimeoutSeconds)
            self.metrics.requests.labels("", tenant.name, "499").inc()
            return Response(status_code=499)
        if raw is None:
            return self._reject(413, f"The request body is larger than {self.cfg.server.max_body_bytes} bytes.",
                                "invalid_request_error", None, tenant, code="request_too_large")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._reject(400, "The request body is not valid JSON (or nests deeper than 1024 levels).",
                                "invalid_request_error", None, tenant, code="invalid_json")
        if not isinstance(body, dict):
            return self._reject(400, "The request body must be a JSON object.", "invalid_request_error", None, tenant,
                                code="invalid_type")
        invalid = check_request(kind, body)
        if invalid is not None:
            return self._reject(400, invalid.message, "invalid_request_error", None, tenant, code=invalid.code,
                                param=invalid.param)
        model = body["model"]
        rag = self.rag_api.route_for(model) if self.rag_api is not None and _allowed(tenant, model) else None
        if rag is not None:  # a RAG route: retrieved chunks go into the prompt, its chat route answers
            answering = self.routes.get(rag.route)
            if answering is not None:  # the request's own mistakes cost nothing: checked before the paid retrieval
                try:
                    self._validate(kind, {**body, "model": rag.route}, answering, tenant)
                except BadRequest as exc:  # the prompt's length is checked after retrieval, with the chunks
                    if exc.code != "context_length_exceeded":
                        return self._reject(400, str(exc), "invalid_request_error", answering, tenant,
                                            code=exc.code, param=exc.param)
            try:
                body = await self.rag_api.augment(rag, tenant, body)
            except Exception as exc:
                return self.rag_api.failed(exc)
            model = body["model"]
        route = self.routes.get(model)
        if route is None or not (rag is not None or _allowed(tenant, model)):
            return self._reject(404, f"The model '{model[:256]}' does not exist or this API key may not use it. "
                                     f"See GET /v1/models.", "invalid_request_error", None, tenant,
                                code="model_not_found", param="model")
        try:
            max_tokens, n, prompt_est, reserve = self._validate(kind, body, route, tenant)
        except BadRequest as exc:
            return self._reject(400, str(exc), "invalid_request_error", route, tenant, code=exc.code,
                                param=exc.param)
        tpm = tenant.limits.tokens_per_minute
        if self.cfg.limiter.enabled and tpm and reserve > tpm:
            return self._reject(400, f"This request can use up to {reserve} tokens (prompt plus n x max_tokens), "
                                     f"more than this API key's budget of {tpm} tokens per minute; lower "
                                     f"max_tokens.", "invalid_request_error", route, tenant,
                                code="exceeds_token_budget", param="max_tokens")
        reservation: Reservation | None = None
        if self.cfg.limiter.enabled:
            try:
                decision = await self.limiter.reserve(tenant.name, tenant.limits, reserve)
            except LimiterUnavailable:
                self.metrics.limiter_errors.labels(self.cfg.limiter.fail_mode).inc()
                if self.cfg.limiter.fail_mode == "closed":
                    return self._reject(503, "Rate limiting is temporarily unavailable; retry shortly.",
                                        "api_error", route, tenant, code="limiter_unavailable",
                                        headers={"retry-after": "1"})
                decision = None
            if decision is not None:
                if not decision.allowed:
                    self.metrics.limiter_rejections.labels(tenant.name, decision.limit).inc()
                    what = "requests" if decision.limit == "rpm" else "tokens"
                    return self._reject(429, f"Rate limit reached for {what} per minute on this API key; retry "
                                             f"after {decision.retry_after_s} s.", "rate_limit_error", route,
                                        tenant, code="rate_limit_exceeded",
                                        headers={"retry-after": str(decision.retry_after_s)})
                reservation = decision.reservation
        ctx = _Ctx(rid, t0, kind, route, tenant, body, max_tokens, n, prompt_est, reservation)
        try:
            return await self._serve(request, ctx)
        except asyncio.CancelledError:
            self._settle(ctx, None)  # cancelled while waiting (shutdown): charged, the upstream may be generating
            self._release_lease(ctx)
            raise
        except Exception as exc:
            # nothing came back from an upstream: nothing was used, so the whole reservation goes back
            self._settle(ctx, 0 if ctx.upstream is None else None)
            log.error(orjson.dumps({"msg": "internal error", "request_id": rid, "error": repr(exc)}).decode())
            self._finish(ctx, 500)
            return error(500, "Internal gateway error.", "api_error", code="internal_error")

    async def _read_body(self, request: Request) -> bytes | None:
        """The request body, or None when it is larger than ``server.maxBodyBytes`` (read no further)."""
        cap = self.cfg.server.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _reject(self, status: int, message: str, type_: str, route: Route | None, tenant: Tenant | None, *,
                code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None) -> Response:
        self.metrics.requests.labels(route.name if route else "", tenant.name if tenant else "", str(status)).inc()
        return error(status, message, type_, code=code, param=param, headers=headers)

    def _upstream_body(self, ctx: "_Ctx") -> dict[str, Any]:
        b = dict(ctx.body)
        b.pop("max_completion_tokens", None)
        b["max_tokens"] = ctx.max_tokens
        if b.get("stream"):
            b["stream_options"] = {"include_usage": True}
        return b

    def _cacheable(self, request: Request, ctx: "_Ctx") -> bool:
        c = ctx.route.cfg.cache
        if not (c.exact.enabled or c.semantic.enabled) or ctx.n != 1:
            return False
        hint = request.headers.get("x-gateway-cache", "").lower()
        if hint == "off":
            return False
        temp = ctx.body.get("temperature")
        return temp == 0 or c.allow_nondeterministic or hint == "on"

    async def _serve(self, request: Request, ctx: "_Ctx") -> Response:
        route = ctx.route
        if self._cacheable(request, ctx):
            hit = await self._lookup(ctx)
            if hit is not None:
                return self._replay(ctx, hit)
        else:
            ctx.cache_status = "bypass"
        if self.pools is not None and route.name in self.pools.models:
            try:  # held while the model wakes or loads (a cache hit above never waits for it)
                ctx.lease = await self.pools.acquire(route.name, key=_affinity_key(request, ctx))
            except ApiError as exc:
                self._settle(ctx, 0)
                self._finish(ctx, exc.status)
                return exc.response()
            route = ctx.lease.route(route)
        ub = self._upstream_body(ctx)
        try:
            if route.stages:
                return await self._cascade(request, ctx, ub)
            if ctx.stream:
                events, up = await self.router.stream(route, ctx.kind, ub, session_of(route, request.headers))
                ctx.upstream = up
                return self._stream_response(ctx, events)
            resp, up = await self.router.complete(route, ctx.kind, ub, session_of(route, request.headers))
            ctx.upstream = up
            return await self._json_response(ctx, resp)
        except (UpstreamError, NoUpstream) as exc:
            return await self._upstream_failed(ctx, exc)

    async def _upstream_failed(self, ctx: "_Ctx", exc: Exception) -> Response:
        self._settle(ctx, 0)
        if isinstance(exc, NoUpstream):
            resp = error(503, str(exc), "api_error", code="no_upstream_available", headers={"retry-after": "1"})
        elif not exc.retryable and exc.body:
            resp = Response(exc.body, status_code=exc.status, media_type=JSON)
        elif exc.status == 429:
            resp = error(429, "The model is overloaded; retry shortly.", "rate_limit_error",
                         code="upstream_rate_limited", headers={"retry-after": exc.retry_after or "1"})
        else:
            status = exc.status if exc.status in (502, 503, 504) else 502
            resp = error(status, f"Upstream failure: {exc.reason}.", "api_error", code="upstream_error")
        self._finish(ctx, resp.status_code)
        return resp

    # --- caches ------------------------------------------------------------------------------------------------
    def _cache_key(self, ctx: "_Ctx") -> str:
        b = ctx.body
        prompt = _normalized_messages(b["messages"]) if ctx.kind == "chat" else b.get("prompt")
        params = {k: b[k] for k in _SAMPLING if k in b and k != "user"}
        if ctx.route.cfg.cache.scope_by_user:
            return digest("exact/v1", ctx.tenant.name, ctx.route.name, ctx.kind, prompt, params, ctx.max_tokens,
                          {"user": b.get("user")})
        return digest("exact/v1", ctx.tenant.name, ctx.route.name, ctx.kind, prompt, params, ctx.max_tokens)

    async def _lookup(self, ctx: "_Ctx") -> tuple[bytes, str] | None:
        c = ctx.route.cfg.cache
        if c.exact.enabled:
            ctx.exact_key = self._cache_key(ctx)
            try:
                raw = await self.exact.get(ctx.exact_key)
            except CacheUnavailable:
                self.metrics.cache_errors.labels("exact", "get").inc()
                self.metrics.cache.labels("exact", "error").inc()
                raw = None
            else:
                self.metrics.cache.labels("exact", "hit" if raw else "miss").inc()
            if raw:
                ctx.cache_status = "hit-exact"
                return raw, "exact"
        if c.semantic.enabled and self.semantic is not None:
            text, context = query_text(ctx.kind, ctx.body)
            if not text or not self.semantic.usable(text):
                self.metrics.cache.labels("semantic", "skip").inc()
                return None
            b = ctx.body
            params = {k: b[k] for k in _SAMPLING if k in b and k != "user"}
            if c.scope_by_user:
                params["user"] = b.get("user")  # cache.scopeByUser: end users of a tenant never share entries
            base = digest("semantic/v1", ctx.tenant.name, ctx.route.name, ctx.kind, context, params, ctx.max_tokens)
            try:
                ctx.sem_scope = self.semantic.scope(base, text, c.semantic.guard)
                ctx.sem_text = text
                hit, ctx.sem_vec = await self.semantic.find(ctx.sem_scope, text, c.semantic, c.semantic.guard)
            except CacheUnavailable:
                ctx.sem_scope = ""  # nothing is stored after a failed lookup
                self.metrics.cache_errors.labels("semantic", "get").inc()
                self.metrics.cache.labels("semantic", "error").inc()
                return None
            self.metrics.cache.labels("semantic", "hit" if hit else "miss").inc()
            if hit:
                ctx.cache_status = "hit-semantic"
                ctx.similarity = hit.similarity
                return hit.payload, "semantic"
        return None

    async def _store(self, ctx: "_Ctx", completion: dict[str, Any]) -> None:
        c = ctx.route.cfg.cache
        data = orjson.dumps(completion)
        if c.exact.enabled and ctx.exact_key:
            try:
                await self.exact.put(ctx.exact_key, data, c.exact.ttl_seconds)
            except CacheUnavailable:
                self.metrics.cache_errors.labels("exact", "put").inc()
        if c.semantic.enabled and self.semantic is not None and ctx.sem_scope:
            try:
                await self.semantic.store(ctx.sem_scope, ctx.sem_text, ctx.sem_vec, data, c.semantic.ttl_seconds)
            except CacheUnavailable:
                self.metrics.cache_errors.labels("semantic", "put").inc()

    def _replay(self, ctx: "_Ctx", hit: tuple[bytes, str]) -> Response:
        raw, kind = hit
        completion = orjson.loads(raw)
        self._settle(ctx, 0)
        headers = {"x-gateway-cache": ctx.cache_status, "x-request-id": ctx.rid}
        if ctx.similarity is not None:
            headers["x-gateway-cache-similarity"] = f"{ctx.similarity:.4f}"
        if ctx.stream:
            return self._stream_response(ctx, _replay_events(completion, ctx.wants_usage), headers=headers,
                                         settle=False)
        self._finish(ctx, 200)
        return Response(raw, media_type=JSON, headers=headers)

    # --- responses ---------------------------------------------------------------------------------------------
    async def _json_response(self, ctx: "_Ctx", resp: dict[str, Any], *, strip_logprobs: bool = False,
                             extra_usage: dict[str, int] | None = None) -> Response:
        usage = resp.get("usage") or None
        used = _used(usage)
        if extra_usage:
            used = None if used is None else used + extra_usage["total"]
        self._settle(ctx, used)  # off the latency path: admissions already made do not depend on it
        self._count_tokens(ctx, usage)
        if strip_logprobs:
            for c in resp.get("choices") or []:
                c["logprobs"] = None
        if ctx.cache_status == "miss" and resp.get("choices"):
            self._background(self._store(ctx, resp))
        self._finish(ctx, 200)
        return Response(orjson.dumps(resp), media_type=JSON, headers=self._headers(ctx))

    def _headers(self, ctx: "_Ctx") -> dict[str, str]:
        h = {"x-request-id": ctx.rid, "x-gateway-cache": ctx.cache_status}
        if ctx.upstream:
            h["x-gateway-upstream"] = ctx.upstream
        if ctx.stage:
            h["x-gateway-cascade-stage"] = ctx.stage
        return h

    def _stream_response(self, ctx: "_Ctx", events: AsyncIterator[bytes], *, headers: dict[str, str] | None = None,
                         settle: bool = True) -> StreamingResponse:
        """A streamed answer. ``settle``: the events come live from an upstream (settle the reservation at the end,
        check that the stream is complete); False for replays of a complete answer (cache hits, cascade stages)."""
        h = headers or self._headers(ctx)
        h.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
        st = _StreamState(events, settle, _Collector(ctx.kind) if ctx.cache_status == "miss" else None)
        return _GuardedStream(self._relay(ctx, st), lambda: self._end_stream(ctx, st), media_type="text/event-stream",
                              headers=h)

    async def _relay(self, ctx: "_Ctx", st: "_StreamState") -> AsyncIterator[bytes]:
        first = True
        collect = st.collect
        try:
            async for ev in st.events:
                if ev.startswith(DONE[:12]):
                    if st.live and not st.finished:
                        raise _Incomplete("no_finish_reason", "the upstream ended the stream without a finish reason")
                    st.complete = True
                    yield ev
                    continue
                if first:
                    first = False
                    self.metrics.ttft.labels(ctx.route.name).observe(time.perf_counter() - ctx.t0)
                if not st.finished and _FINISH.search(ev):
                    st.finished = True
                obj = None
                if st.live and ev.startswith(b"data:"):  # every live event must be a JSON object (orjson: ~1 us)
                    try:
                        obj = orjson.loads(ev[5:])
                    except orjson.JSONDecodeError:
                        raise _Incomplete("malformed_event", "the upstream sent a malformed event") from None
                    if not isinstance(obj, dict):
                        raise _Incomplete("malformed_event", "the upstream sent an event that is not an object")
                if b'"usage":{' in ev or b'"usage": {' in ev:
                    if obj is None:
                        try:
                            obj = orjson.loads(ev[5:])
                        except orjson.JSONDecodeError:
                            raise _Incomplete("malformed_event", "the upstream sent a malformed event") from None
                    st.usage = obj.get("usage") or st.usage
                    if not ctx.wants_usage:
                        if not obj.get("choices"):
                            continue
                        obj.pop("usage", None)
                        ev = b"data: " + orjson.dumps(obj) + b"\n\n"
                if collect is not None:
                    collect.add(ev)
                yield ev
            if st.live and not st.complete:
                raise _Incomplete("no_done", "the upstream ended the stream before [DONE]")
        except _Incomplete as exc:
            st.status = 502
            self.metrics.stream_incomplete.labels(ctx.route.name, exc.reason).inc()
            up = self.upstreams.get(ctx.upstream or "")
            if up is not None:  # a malformed upstream body in the mode the client asked for: an upstream fault
                up.breaker.failure()
                self.metrics.upstream_errors.labels(up.name, "incomplete stream").inc()
            yield _error_event(f"Upstream failure mid-stream: {exc.message}; the answer is incomplete.",
                               "upstream_incomplete_stream")
        except UpstreamError as exc:
            st.status = exc.status
            reason = "no_done" if isinstance(exc, IncompleteStream) else "upstream_error"
            self.metrics.stream_incomplete.labels(ctx.route.name, reason).inc()
            yield _error_event(f"Upstream failure mid-stream: {exc.reason}.", "upstream_error")
        finally:
            await self._end_stream(ctx, st)

    async def _end_stream(self, ctx: "_Ctx", st: "_StreamState") -> None:
        """Settle, cache and log a stream exactly once: from the relay's end, or from the response when the client
        went away before the relay started (an async generator that never ran never runs its ``finally``)."""
        if st.ended:
            return
        st.ended = True
        with anyio.CancelScope(shield=True):
            if not st.complete and st.status == 200:
                st.status = 499  # client went away
            aclose = getattr(st.events, "aclose", None)
            if aclose is not None and not st.complete:
                try:
                    await aclose()  # release the upstream connection and its outstanding count
                except Exception:  # pragma: no cover - closing a broken stream
                    pass
            if st.live:
                self._settle(ctx, _used(st.usage))
                self._count_tokens(ctx, st.usage)
            c = st.collect
            if st.complete and c is not None and c.ok and c.finish is not None and st.usage is not None:
                self._background(self._store(ctx, c.completion(st.usage)))
            self._finish(ctx, st.status)

    def _settle(self, ctx: "_Ctx", used: int | None) -> None:
        """Settle the reservation: to ``used`` tokens, or to the whole reservation when usage is unknown. Never on
        the response path: a refund is queued in the limiter (no Redis call here), a charge runs in the
        background."""
        res = ctx.reservation
        if res is None or res.settled:
            return
        total = res.reserved if used is None else used + ctx.extra_used
        if used is not None and total > res.reserved:
            self.metrics.limiter_underestimates.labels(ctx.route.name).inc()
        if not self.limiter.settle_later(res, total):
            self._background(self._settle_now(res, total))

    async def _settle_now(self, res: Reservation, total: int) -> None:
        try:
            await self.limiter.settle(res, total)
        except LimiterUnavailable:
            self.metrics.limiter_errors.labels("settle").inc()

    def _count_tokens(self, ctx: "_Ctx", usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        model = ctx.stage or ctx.route.name
        self.metrics.tokens.labels(ctx.tenant.name, model, "in").inc(usage.get("prompt_tokens") or 0)
        self.metrics.tokens.labels(ctx.tenant.name, model, "out").inc(usage.get("completion_tokens") or 0)

    def _release_lease(self, ctx: "_Ctx") -> None:
        """A pool model's claim ends with its request: the model may be evicted again."""
        if ctx.lease is not None:
            self._background(ctx.lease.release())
            ctx.lease = None

    def _finish(self, ctx: "_Ctx", status: int) -> None:
        dt = time.perf_counter() - ctx.t0
        self._release_lease(ctx)
        self.metrics.requests.labels(ctx.route.name, ctx.tenant.name, str(status)).inc()
        self.metrics.latency.labels(ctx.route.name, "true" if ctx.stream else "false").observe(dt)
        if log.isEnabledFor(logging.INFO):
            rec = {"msg": "request", "request_id": ctx.rid, "tenant": ctx.tenant.name, "model": ctx.route.name,
                   "kind": ctx.kind, "stream": ctx.stream, "status": status, "upstream": ctx.upstream,
                   "stage": ctx.stage, "cache": ctx.cache_status, "duration_ms": round(dt * 1000, 2),
                   "prompt_tokens_est": ctx.prompt_est, "max_tokens": ctx.max_tokens}
            if self.cfg.server.log_prompts:
                rec["prompt"] = ctx.body.get("messages") if ctx.kind == "chat" else ctx.body.get("prompt")
            log.info(orjson.dumps(rec).decode())

    # --- cascades ----------------------------------------------------------------------------------------------
    async def _cascade(self, request: Request, ctx: "_Ctx", ub: dict[str, Any]) -> Response:
        route = ctx.route
        stages = route.stages or []
        rule = route.cfg.cascade.escalate_when  # type: ignore[union-attr]
        start = 0
        if rule.client_hint and request.headers.get("x-gateway-escalate", "").lower() in ("1", "true", "yes"):
            start = len(stages) - 1
            self.metrics.escalations.labels(route.name, "client_hint").inc()
        for i in range(start, len(stages) - 1):
            stage = stages[i]
            body = dict(ub, stream=False)
            body.pop("stream_options", None)
            added = False
            if rule.mean_logprob_below is not None and stage.supports_logprobs and not body.get("logprobs"):
                body["logprobs"] = True
                added = True
            resp, up = await self.router.complete(stage, ctx.kind, body, session_of(stage, request.headers))
            reason = escalation_reason(resp, rule, route.refusal_res or [])
            if reason is None:
                ctx.upstream, ctx.stage = up, stage.name
                if ctx.stream:
                    if added:
                        for c in resp.get("choices") or []:
                            c["logprobs"] = None
                    usage = resp.get("usage")
                    self._settle(ctx, _used(usage))
                    self._count_tokens(ctx, usage)
                    if ctx.cache_status == "miss":
                        self._background(self._store(ctx, resp))
                    return self._stream_response(ctx, _replay_events(resp, ctx.wants_usage), settle=False)
                return await self._json_response(ctx, resp, strip_logprobs=added)
            self.metrics.escalations.labels(route.name, reason).inc()
            used = _used(resp.get("usage"))
            ctx.extra_used += used if used is not None else ctx.prompt_est + ctx.max_tokens
            self._count_tokens(ctx, resp.get("usage"))
        last = stages[-1]
        ctx.stage = last.name
        if ctx.stream:
            events, up = await self.router.stream(last, ctx.kind, ub, session_of(last, request.headers))
            ctx.upstream = up
            return self._stream_response(ctx, events)
        resp, up = await self.router.complete(last, ctx.kind, ub, session_of(last, request.headers))
        ctx.upstream = up
        return await self._json_response(ctx, resp)


def _allowed(tenant: Tenant, model: str) -> bool:
    """Whether the tenant's ``models`` allow-list (absent: every route) lets it use ``model``."""
    allow = tenant.limits.models
    return allow is None or model in allow


def _used(usage: dict[str, Any] | None) -> int | None:
    if not usage:
        return None
    total = usage.get("total_tokens")
    if total is None:
        total = (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
    return int(total)


_POOL_ROUTING = RoutingConfig()
"""How pool requests are keyed among the replicas where their model is hot: a route's ``routing`` defaults."""


def _affinity_key(request: Request, ctx: "_Ctx") -> str | None:
    """The session or prompt-prefix key a pool request is routed by (:data:`_POOL_ROUTING`)."""
    r = _POOL_ROUTING
    header = request.headers.get(r.session_header) if r.session_header else None
    return (affinity.session_key(header, ctx.body, use_user=r.use_user_field)
            or affinity.prefix_key(ctx.kind, ctx.body, block_tokens=r.prefix_block_tokens, blocks=r.prefix_blocks))


class _Ctx:
    __slots__ = ("rid", "t0", "kind", "route", "tenant", "body", "max_tokens", "n", "prompt_est", "reservation",
                 "stream", "wants_usage", "cache_status", "exact_key", "sem_vec", "sem_scope", "sem_text",
                 "similarity", "upstream", "stage", "extra_used", "lease")

    def __init__(self, rid, t0, kind, route, tenant, body, max_tokens, n, prompt_est, reservation):
        self.rid, self.t0, self.kind, self.route, self.tenant, self.body = rid, t0, kind, route, tenant, body
        self.max_tokens, self.n, self.prompt_est, self.reservation = max_tokens, n, prompt_est, reservation
        self.stream = body.get("stream") is True
        self.wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.cache_status = "miss"
        self.exact_key = None
        self.sem_vec = None
        self.sem_scope = ""
        self.sem_text = ""
        self.similarity = None
        self.upstream = None
        self.stage = None
        self.extra_used = 0
        self.lease = None


class _Collector:
    """Rebuilds a complete response from streamed chunks so it can be cached (content-only answers)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.text: list[str] = []
        self.finish = None
        self.id = ""
        self.model = ""
        self.created = 0
        self.ok = True

    def add(self, ev: bytes) -> None:
        if not self.ok or not ev.startswith(b"data: "):
            return
        try:
            obj = orjson.loads(ev[6:])
        except orjson.JSONDecodeError:
            self.ok = False
            return
        self.id = obj.get("id", self.id)
        self.model = obj.get("model", self.model)
        self.created = obj.get("created", self.created)
        for c in obj.get("choices") or []:
            if c.get("index", 0) != 0:
                self.ok = False
            if self.kind == "chat":
                d = c.get("delta") or {}
                if d.get("tool_calls") or d.get("function_call"):
                    self.ok = False
                if d.get("content"):
                    self.text.append(d["content"])
            elif c.get("text"):
                self.text.append(c["text"])
            if c.get("finish_reason"):
                self.finish = c["finish_reason"]

    def completion(self, usage: dict[str, Any]) -> dict[str, Any]:
        text = "".join(self.text)
        if self.kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": self.finish}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": self.finish, "logprobs": None}
            obj = "text_completion"
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "choices": [choice],
                "usage": usage}


async def _replay_events(completion: dict[str, Any], wants_usage: bool) -> AsyncIterator[bytes]:
    """A complete response (cached, or a cascade stage's) as a stream of chunks."""
    chat = completion.get("object") == "chat.completion"
    base = {"id": completion.get("id", ""), "object": "chat.completion.chunk" if chat else "text_completion",
            "created": completion.get("created", 0), "model": completion.get("model", "")}
    choice = (completion.get("choices") or [{}])[0]
    text = ((choice.get("message") or {}).get("content") if chat else choice.get("text")) or ""
    if chat:
        yield _event(base, {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
        yield _event(base, {"index": 0, "delta": {"content": text}, "finish_reason": None})
        yield _event(base, {"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")})
    else:
        yield _event(base, {"index": 0, "text": text, "finish_reason": None, "logprobs": None})
        yield _event(base, {"index": 0, "text": "", "finish_reason": choice.get("finish_reason"), "logprobs": None})
    if wants_usage and completion.get("usage"):
        yield b"data: " + orjson.dumps(dict(base, choices=[], usage=completion["usage"])) + b"\n\n"
    yield DONE


class _Incomplete(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


class _StreamState:
    """What a streamed answer has seen so far (shared by the relay and the response that ends it)."""

    __slots__ = ("events", "live", "collect", "usage", "complete", "finished", "status", "ended")

    def __init__(self, events: AsyncIterator[bytes], live: bool, collect: "_Collector | None"):
        self.events, self.live, self.collect = events, live, collect
        self.usage: dict[str, Any] | None = None
        self.complete = False  # [DONE] relayed
        self.finished = False  # a finish_reason seen
        self.status = 200
        self.ended = False


class _GuardedStream(StreamingResponse):
    """A streaming response that ends its stream (settle, release the upstream, log) even when the client left
    before the first event was pulled."""

    def __init__(self, content: AsyncIterator[bytes], end, **kw: Any):
        super().__init__(content, **kw)
        self._end = end

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._end()


def _error_event(message: str, code: str) -> bytes:
    err = {"error": {"message": message, "type": "api_error", "param": None, "code": code}}
    return b"data: " + orjson.dumps(err) + b"\n\n"


def _event(base: dict[str, Any], choice: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(dict(base, choices=[choice])) + b"\n\n"


def make_redis(cfg: GatewayConfig, config_dir: str | Path = "."):
    import redis.asyncio as aioredis

    token = None
    if cfg.redis.auth_token_env:
        token = os.environ.get(cfg.redis.auth_token_env)
    elif cfg.redis.auth_token_file:
        token = (Path(config_dir) / cfg.redis.auth_token_file).read_text().strip()
    # No socket_timeout: every call the gateway makes is already bounded by its caller (limiter.timeoutMs,
    # semanticCache.timeoutMs), and redis-py implements socket_timeout with an extra task (asyncio.wait_for) per
    # command sent plus a timer per reply read: 13 us of CPU per reservation (of 73) on the development machine.
    kw: dict[str, Any] = {"password": token, "socket_connect_timeout": 1.0, "socket_timeout": None,
                          "health_check_interval": 30, "max_connections": 512}
    if cfg.redis.tls_ca_file:
        kw["ssl_ca_certs"] = cfg.redis.tls_ca_file
    return aioredis.Redis.from_url(cfg.redis.url, **kw)


def make_embedder(cfg: GatewayConfig):
    from serving.gateway.embed import embedder_from_config

    return embedder_from_config(cfg.semantic_cache.embedder)


def make_batcher(cfg: GatewayConfig, embedder):
    from serving.gateway.batcher import EmbedBatcher

    e = cfg.semantic_cache.embedder
    return EmbedBatcher(embedder, max_batch=e.max_batch, max_wait_ms=e.max_wait_ms, max_queue=e.max_queue,
                        timeout_s=e.timeout_ms / 1000)


def create_app(gw: Gateway) -> Starlette:
    routes = [
        HttpRoute("/v1/chat/completions", gw.chat, methods=["POST"]),
        HttpRoute("/v1/completions", gw.completions, methods=["POST"]),
        HttpRoute("/v1/models", gw.models, methods=["GET"]),
        HttpRoute("/healthz", gw.healthz, methods=["GET"]),
        HttpRoute("/readyz", gw.readyz, methods=["GET"]),
    ]
    if gw.cfg.server.metrics_port == 0:
        routes.append(HttpRoute("/metrics", gw.metrics_endpoint, methods=["GET"]))
    if gw.cfg.batch.enabled:
        from serving.gateway.batch_api import BatchApi

        if gw.batch_api is None:
            gw.batch_api = BatchApi(gw.cfg, gw.keys, gw.redis)
        routes += gw.batch_api.routes()
    if gw.cfg.embeddings.enabled:
        from serving.gateway.embeddings_api import EmbeddingsApi

        if gw.embeddings_api is None:
            gw.embeddings_api = EmbeddingsApi(gw)
        routes += gw.embeddings_api.routes()
    if gw.cfg.rag.enabled:
        from serving.gateway.rag_api import RagApi

        if gw.rag_api is None:
            gw.rag_api = RagApi(gw)
        routes += gw.rag_api.routes()

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        await gw.startup()
        yield
        await gw.shutdown()
        if gw.embeddings_api is not None:
            gw.embeddings_api.close()
        if gw.rag_api is not None:
            gw.rag_api.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            return error(404, f"Unknown path {request.url.path[:200]!r}: this server serves /v1/chat/completions, "
                              f"/v1/completions and /v1/models.", "invalid_request_error", code="not_found")
        if status == 405:
            allowed = getattr(exc, "headers", None) or {}
            return error(405, f"Method {request.method} is not allowed on {request.url.path[:200]!r}.",
                         "invalid_request_error", code="method_not_allowed", headers=dict(allowed))
        return error(status, str(getattr(exc, "detail", "")) or "Request failed.", "invalid_request_error")

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error(orjson.dumps({"msg": "internal error", "path": request.url.path[:200], "error": repr(exc)}).decode())
        return error(500, "Internal gateway error.", "api_error", code="internal_error")

    from starlette.exceptions import HTTPException

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: internal_error})
    app.state.gateway = gw
    return app
