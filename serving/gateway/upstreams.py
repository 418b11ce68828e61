"""Upstream clients with one interface: ``complete(kind, body)`` and ``open_stream(kind, body)``.

- ``OpenAIUpstreamClient``: any OpenAI-compatible server (vLLM) over pooled aiohttp keep-alive connections;
  streamed bytes are forwarded event by event without re-encoding. With ``replicas`` it addresses the pods of a
  headless Service one by one (``serving/gateway/discovery.py``): each replica has its own keep-alive connections and
  outstanding count, the route's strategy orders them (``serving/gateway/affinity.py``), and a replica that refuses
  the connection is skipped for the breaker's cooldown while the request moves to the next one.
- ``BedrockUpstreamClient`` / ``SageMakerUpstreamClient``: the synchronous boto3 invokers of ``serving.aws`` run on
  a bounded thread pool so the event loop never blocks; their OpenAI-shaped chunks are encoded as SSE events.

Every upstream has a circuit breaker and an outstanding-request count (the load balancer's signal). Failures that
another upstream may not repeat (5xx, 429, timeouts, connection errors) raise a retryable :class:`UpstreamError`;
other 4xx answers are the client's problem and are passed through unchanged.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Iterator

import aiohttp
import orjson
import yarl

from serving.gateway import affinity
from serving.gateway.config import BedrockUpstream, CircuitBreakerConfig, OpenAIUpstream, SageMakerUpstream
from serving.gateway.discovery import Discovery, Endpoint

DONE = b"data: [DONE]\n\n"


class UpstreamError(Exception):
    def __init__(self, status: int, reason: str, *, retryable: bool, body: bytes | None = None,
                 retry_after: str | None = None):
        super().__init__(f"{reason} (HTTP {status})")
        self.status = status
        self.reason = reason
        self.retryable = retryable
        self.body = body
        self.retry_after = retry_after


class ConnectFailed(UpstreamError):
    """The TCP/TLS connection could not be opened: nothing was sent, so another replica may take the request."""


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> one probe after the cooldown -> closed or open again."""

    def __init__(self, cfg: CircuitBreakerConfig, clock: Callable[[], float] = time.monotonic):
        self.threshold = cfg.failure_threshold
        self.cooldown = cfg.cooldown_seconds
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self._probing or self._clock() >= self.opened_at + self.cooldown:
            return "half-open"
        return "open"

    def available(self) -> bool:
        """Could a request go here now (without taking the half-open probe slot)?"""
        if self.opened_at is None:
            return True
        return not self._probing and self._clock() >= self.opened_at + self.cooldown

    def acquire(self) -> bool:
        """Take permission to send one request (the probe slot when half-open)."""
        if self.opened_at is None:
            return True
        if self._probing or self._clock() < self.opened_at + self.cooldown:
            return False
        self._probing = True
        return True

    def release_probe(self) -> None:
        """Give back an unused probe slot."""
        self._probing = False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._probing = False

    def neutral(self) -> None:
        """The upstream answered, but the request was at fault (a 4xx): closes a half-open circuit (the upstream
        is reachable), and otherwise leaves the consecutive-failure count alone."""
        if self._probing:
            self.success()

    def failure(self) -> None:
        self.failures += 1
        if self._probing or self.failures >= self.threshold:
            self.opened_at = self._clock()
            self._probing = False


class UpstreamClient:
    name: str
    supports_logprobs: bool = False
    has_replicas: bool = False
    """Whether ``complete``/``open_stream`` take ``order=`` (a function ordering :class:`Replica` objects)."""

    def __init__(self, name: str, breaker: CircuitBreaker):
        self.name = name
        self.breaker = breaker
        self.outstanding = 0

    async def complete(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def open_stream(self, kind: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


REPLICA_TRIES = 3
"""Replicas one attempt tries when connections are refused (a pod gone since the last DNS refresh) before the
attempt fails."""


class Replica:
    """One pod of an upstream: its URLs, requests in flight and, after a refused connection, when it may be tried
    again."""

    def __init__(self, endpoint: Endpoint, path: str):
        self.endpoint = endpoint
        self.name = endpoint.name
        base = endpoint.url(path)
        self.urls = {"chat": yarl.URL(base + "/chat/completions"), "completion": yarl.URL(base + "/completions")}
        self.outstanding = 0
        self.ejected_until = 0.0


ReplicaOrder = Callable[[list[Replica]], list[Replica]]


class OpenAIUpstreamClient(UpstreamClient):
    """An OpenAI-compatible server over one pooled aiohttp session (HTTP/1.1 keep-alive, TCP_NODELAY).

    aiohttp rather than httpx: on the 2-core development machine an httpx ``AsyncClient`` round trip to the local
    stub took about 0.65 ms against 0.15 ms for aiohttp (see "Measured" in ``README.md``; the upstream report is
    encode/httpx#3215), and that difference was most of the gateway's added latency. The session is created on first
    use, inside the event loop that serves requests.
    """

    def __init__(self, name: str, cfg: OpenAIUpstream):
        super().__init__(name, CircuitBreaker(cfg.circuit_breaker))
        self.cfg = cfg
        self.model = cfg.model
        self.supports_logprobs = cfg.supports_logprobs
        base = cfg.base_url.rstrip("/")
        self._urls = {"chat": yarl.URL(base + "/chat/completions"), "completion": yarl.URL(base + "/completions")}
        self.discovery: Discovery | None = None
        self.replicas: dict[str, Replica] = {}
        """Known replicas by name (``host:port``), with ``replicas`` configured."""
        if cfg.replicas is not None:
            self.has_replicas = True
            self._path = yarl.URL(base).path.rstrip("/")
            self.discovery = Discovery.from_config(cfg.replicas, scheme=yarl.URL(base).scheme)
            self.discovery.listeners.append(self._replicas_changed)
            self._replicas_changed(self.discovery.snapshot(), [])
        self._eject_s = cfg.circuit_breaker.cooldown_seconds
        headers = {"content-type": "application/json"}
        if cfg.api_key_env:
            headers["authorization"] = f"Bearer {os.environ.get(cfg.api_key_env, '')}"
        self._headers = headers
        t = cfg.timeouts
        # connect: waiting for a pooled connection plus opening one; sock_read: the longest gap between bytes
        self._timeout = aiohttp.ClientTimeout(total=None, connect=2 * t.connect_seconds,
                                              sock_connect=t.connect_seconds, sock_read=t.read_seconds)
        self._ttfb = t.first_byte
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        s = self._session
        if s is None or s.closed:
            connector = aiohttp.TCPConnector(limit=self.cfg.max_connections, limit_per_host=0, keepalive_timeout=60)
            # no Accept-Encoding: a compressing proxy in front of an upstream would otherwise buffer SSE chunks
            s = self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                      timeout=self._timeout,
                                                      skip_auto_headers=("User-Agent", "Accept-Encoding"))
        return s

    def _replicas_changed(self, added: list[Endpoint], removed: list[Endpoint]) -> None:
        for e in removed:
            self.replicas.pop(e.name, None)  # in-flight requests keep their own reference
        for e in added:
            self.replicas.setdefault(e.name, Replica(e, self._path))

    async def live_replicas(self) -> list[Replica]:
        """The discovered replicas not recently refusing connections (all of them if every one was)."""
        assert self.discovery is not None
        eps = await self.discovery.endpoints()
        reps = [self.replicas[e.name] for e in eps if e.name in self.replicas]
        now = time.monotonic()
        live = [r for r in reps if r.ejected_until <= now]
        return live or reps

    async def _on_replica(self, order: ReplicaOrder, send: Callable[[Replica], Any]) -> tuple[Any, Replica]:
        """``send(replica)`` on the first replica of ``order`` that accepts the connection."""
        reps = await self.live_replicas()
        if not reps:
            raise UpstreamError(503, "no replicas discovered", retryable=True)
        ranked = order(reps)[:REPLICA_TRIES]
        for i, rep in enumerate(ranked):
            rep.outstanding += 1
            try:
                return await send(rep), rep
            except ConnectFailed:
                rep.outstanding -= 1
                rep.ejected_until = time.monotonic() + self._eject_s
                if i == len(ranked) - 1:
                    raise
            except BaseException:
                rep.outstanding -= 1
                raise
        raise AssertionError("unreachable")

    async def _send(self, kind: str, body: dict[str, Any], deadline: float,
                    url: yarl.URL | None = None) -> aiohttp.ClientResponse:
        payload = dict(body, model=self.model)
        try:
            async with asyncio.timeout_at(deadline):  # timeouts.firstByteSeconds: the headers must come by then
                resp = await self._client().post(url or self._urls[kind], data=orjson.dumps(payload))
        except TimeoutError as exc:  # aiohttp's connect/read timeouts subclass TimeoutError
            if asyncio.get_running_loop().time() >= deadline:
                raise UpstreamError(504, "first-byte timeout", retryable=True) from exc
            raise UpstreamError(504, f"timeout ({type(exc).__name__})", retryable=True) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectFailed(502, f"connection error ({type(exc).__name__})", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"connection error ({type(exc).__name__})", retryable=True) from exc
        if resp.status != 200:
            try:
                data = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                data = b""
            finally:
                resp.release()
            raise UpstreamError(resp.status, f"upstream status {resp.status}", retryable=_retryable(resp.status),
                                body=data, retry_after=resp.headers.get("retry-after"))
        return resp

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._ttfb

    async def complete(self, kind: str, body: dict[str, Any], *, order: ReplicaOrder | None = None) -> dict[str, Any]:
        """One completion; with replicas, on the first replica of ``order`` (default: least outstanding) that
        accepts the connection."""
        if self.discovery is None:
            return await self._read_json(await self._send(kind, body, self._deadline()))
        deadline = self._deadline()
        rep: Replica | None = None
        try:
            resp, rep = await self._on_replica(order or _least_outstanding,
                                               lambda r: self._send(kind, body, deadline, r.urls[kind]))
            return await self._read_json(resp)
        finally:
            if rep is not None:
                rep.outstanding -= 1

    async def _read_json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        try:
            data = await resp.read()
        except TimeoutError as exc:
            raise UpstreamError(504, f"timeout ({type(exc).__name__})", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"connection error ({type(exc).__name__})", retryable=True) from exc
        finally:
            resp.release()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(502, "upstream sent invalid JSON", retryable=True) from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
            raise UpstreamError(502, "upstream sent invalid JSON (not a completion object)", retryable=True)
        return obj

    async def open_stream(self, kind: str, body: dict[str, Any], *,
                          order: ReplicaOrder | None = None) -> AsyncIterator[bytes]:
        """The upstream's events, once the first one is in (by ``timeouts.firstByteSeconds``): until then a failure
        can still fall back to another upstream. With replicas, the replica's outstanding count is held until the
        stream is closed."""
        deadline = self._deadline()
        if self.discovery is None:
            return await self._open(await self._send(kind, body, deadline), deadline)
        resp, rep = await self._on_replica(order or _least_outstanding,
                                           lambda r: self._send(kind, body, deadline, r.urls[kind]))
        try:
            events = await self._open(resp, deadline)
        except BaseException:
            rep.outstanding -= 1
            raise
        events.on_close = rep
        return events

    async def _open(self, resp: aiohttp.ClientResponse, deadline: float) -> "_Prefetched":
        if resp.content_type != "text/event-stream":  # a stream was asked for: anything else is a broken answer
            resp.close()
            raise UpstreamError(502, f"upstream did not stream (content-type {resp.content_type})", retryable=True)
        events = _sse_events(resp)
        try:
            async with asyncio.timeout_at(deadline):
                first = await events.__anext__()
        except TimeoutError as exc:
            await events.aclose()
            raise UpstreamError(504, "first-byte timeout", retryable=True) from exc
        except StopAsyncIteration:
            raise UpstreamError(502, "the upstream sent an empty stream", retryable=True) from None
        return _Prefetched(first, events)

    async def aclose(self) -> None:
        if self.discovery is not None:
            await self.discovery.aclose()
        if self._session is not None:
            await self._session.close()


def _least_outstanding(reps: list[Replica]) -> list[Replica]:
    return [reps[i] for i in affinity.least_outstanding([r.outstanding for r in reps])]


class _Prefetched:
    """An event stream whose first event was already read; ``on_close`` (a replica) is released once on close."""

    def __init__(self, first: bytes, rest: AsyncIterator[bytes]):
        self._first: bytes | None = first
        self._rest = rest
        self.on_close: Replica | None = None

    def __aiter__(self) -> "_Prefetched":
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            ev, self._first = self._first, None
            return ev
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        rep, self.on_close = self.on_close, None
        if rep is not None:
            rep.outstanding -= 1
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()


async def _sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Split the upstream byte stream into whole SSE events (each ending in a blank line)."""
    buf = b""
    done = False
    try:
        async for chunk in resp.content.iter_any():
            buf += chunk
            if b"\n\n" not in buf:
                if b"\r\n\r\n" in buf:
                    buf = buf.replace(b"\r\n", b"\n")
                else:
                    continue
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                if ev.strip():
                    yield ev + b"\n\n"
        if buf.strip():
            yield buf.rstrip(b"\n") + b"\n\n"
        done = True
    except TimeoutError as exc:
        raise UpstreamError(504, "timeout mid-stream", retryable=True) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(502, f"stream broken ({type(exc).__name__})", retryable=True) from exc
    finally:
        if done:
            resp.release()  # fully read: the connection goes back to the pool
        else:
            resp.close()  # abandoned mid-stream (client gone, error): the connection cannot be reused


# --- AWS upstreams (sync boto3 invokers on a thread pool) -------------------------------------------------------

_THROTTLE = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException",
             "ThrottledException"}
_UNAVAILABLE = {"ServiceUnavailableException", "ModelNotReadyException", "InternalServerException",
                "InternalFailure", "ServiceUnavailable", "ModelTimeoutException", "ModelStreamErrorException",
                "InternalDependencyException", "ModelError"}


def _aws_error(exc: Exception) -> UpstreamError:
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, ReadTimeoutError

    if isinstance(exc, UpstreamError):
        return exc
    try:
        from serving.aws import InvalidRequest, ModelResponseError
    except ImportError:  # pragma: no cover - serving.aws ships with the gateway
        InvalidRequest = ModelResponseError = ()  # type: ignore[assignment,misc]
    if InvalidRequest and isinstance(exc, InvalidRequest):
        body = orjson.dumps({"error": {"message": str(exc), "type": "invalid_request_error",
                                       "param": getattr(exc, "param", None), "code": None}})
        return UpstreamError(400, "invalid request for this upstream", retryable=False, body=body)
    if ModelResponseError and isinstance(exc, ModelResponseError):
        return UpstreamError(502, "model error", retryable=True)
    if isinstance(exc, ReadTimeoutError):
        return UpstreamError(504, "timeout", retryable=True)
    if isinstance(exc, BotoConnectionError):
        return UpstreamError(502, f"connection error ({type(exc).__name__})", retryable=True)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        msg = exc.response.get("Error", {}).get("Message", code)
        body = orjson.dumps({"error": {"message": msg, "type": "invalid_request_error", "code": code}})
        if code in _THROTTLE or status == 429:
            return UpstreamError(429, code or "throttled", retryable=True)
        if code in _UNAVAILABLE or status >= 500:
            return UpstreamError(status if status >= 500 else 503, code or "unavailable", retryable=True)
        return UpstreamError(status or 400, code or "client error", retryable=False, body=body)
    return UpstreamError(502, f"{type(exc).__name__}: {exc}", retryable=True)


def chat_request_from_completion(body: dict[str, Any]) -> dict[str, Any]:
    """A ``/v1/completions`` request as a chat request (for upstreams that only speak chat)."""
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise UpstreamError(400, "this upstream takes one string prompt", retryable=False,
                                body=orjson.dumps({"error": {"message": "this model takes a single string prompt",
                                                             "type": "invalid_request_error", "param": "prompt"}}))
        prompt = prompt[0]
    out = {k: v for k, v in body.items() if k not in ("prompt", "echo", "suffix", "best_of", "logprobs")}
    out["messages"] = [{"role": "user", "content": prompt}]
    return out


def completion_from_chat(resp: dict[str, Any]) -> dict[str, Any]:
    choices = [{"index": c.get("index", 0), "text": (c.get("message") or {}).get("content") or "",
                "finish_reason": c.get("finish_reason"), "logprobs": None} for c in resp.get("choices", [])]
    return {"id": resp.get("id", ""), "object": "text_completion", "created": resp.get("created", int(time.time())),
            "model": resp.get("model", ""), "choices": choices, "usage": resp.get("usage")}


def completion_chunk_from_chat(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = [{"index": c.get("index", 0), "text": (c.get("delta") or {}).get("content") or "",
                "finish_reason": c.get("finish_reason"), "logprobs": None} for c in chunk.get("choices", [])]
    out = {"id": chunk.get("id", ""), "object": "text_completion", "created": chunk.get("created", 0),
           "model": chunk.get("model", ""), "choices": choices}
    if chunk.get("usage"):
        out["usage"] = chunk["usage"]
    return out


class _ThreadedUpstream(UpstreamClient):
    def __init__(self, name: str, breaker: CircuitBreaker, invoker: Any, *, threads: int = 64):
        super().__init__(name, breaker)
        self._inv = invoker
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"up-{name}")
        self._ttfb: float | None = None  # timeouts.firstByteSeconds (set by the subclass)

    def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        raise NotImplementedError

    async def _run(self, fn, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except Exception as exc:
            raise _aws_error(exc) from exc

    async def _first(self, fn, *args):
        """``fn(*args)`` on the pool within ``firstByteSeconds`` (the thread itself runs on to the SDK's read
        timeout; the request moves on at once)."""
        try:
            async with asyncio.timeout(self._ttfb):
                return await self._run(fn, *args)
        except TimeoutError as exc:
            raise UpstreamError(504, "first-byte timeout", retryable=True) from exc

    async def complete(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        req = chat_request_from_completion(body) if kind == "completion" else body
        resp = await self._first(self._call, req)
        return completion_from_chat(resp) if kind == "completion" else resp

    async def open_stream(self, kind: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        req = chat_request_from_completion(body) if kind == "completion" else body
        _end = object()

        def start():
            it = iter(self._stream(req))
            return it, next(it, _end)  # the first chunk surfaces errors before anything is sent

        it, first = await self._first(start)

        async def events() -> AsyncIterator[bytes]:
            chunk = first
            while chunk is not _end:
                out = completion_chunk_from_chat(chunk) if kind == "completion" else chunk
                yield b"data: " + orjson.dumps(out) + b"\n\n"
                chunk = await self._run(next, it, _end)
            yield DONE

        return events()

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class BedrockUpstreamClient(_ThreadedUpstream):
    """Bedrock Converse / ConverseStream through ``serving.aws.bedrock.BedrockInvoker``."""

    def __init__(self, name: str, cfg: BedrockUpstream, *, invoker: Any = None):
        if invoker is None:
            from serving.aws.bedrock import BedrockInvoker

            invoker = BedrockInvoker(cfg.model_id, region=cfg.region, read_timeout_seconds=cfg.timeouts.read_seconds)
        super().__init__(name, CircuitBreaker(cfg.circuit_breaker), invoker)
        self.supports_logprobs = cfg.supports_logprobs
        self._ttfb = cfg.timeouts.first_byte

    def _call(self, body):
        return self._inv.converse(body)

    def _stream(self, body):
        return self._inv.converse_stream(body)


class SageMakerUpstreamClient(_ThreadedUpstream):
    """InvokeEndpoint / InvokeEndpointWithResponseStream through ``serving.aws.sagemaker.SageMakerInvoker``."""

    def __init__(self, name: str, cfg: SageMakerUpstream, *, invoker: Any = None):
        if invoker is None:
            from serving.aws.sagemaker import SageMakerInvoker

            invoker = SageMakerInvoker(cfg.endpoint_name, region=cfg.region,
                                       inference_component=cfg.inference_component,
                                       read_timeout_seconds=cfg.timeouts.read_seconds)
        super().__init__(name, CircuitBreaker(cfg.circuit_breaker), invoker)
        self.supports_logprobs = cfg.supports_logprobs
        self._ttfb = cfg.timeouts.first_byte

    def _call(self, body):
        return self._inv.invoke(body)

    def _stream(self, body):
        return self._inv.invoke_stream(body)


def build_upstream(name: str, cfg, **kw) -> UpstreamClient:
    if isinstance(cfg, OpenAIUpstream):
        return OpenAIUpstreamClient(name, cfg, **kw)
    if isinstance(cfg, BedrockUpstream):
        return BedrockUpstreamClient(name, cfg, **kw)
    return SageMakerUpstreamClient(name, cfg, **kw)
