"""Failure handling on the data path: reservations settled on every exit, circuit breakers that only count upstream
faults, honest streams, first-byte timeouts, per-tenant model allow-lists and per-user cache scopes."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
import redis

from serving.gateway.config import CircuitBreakerConfig
from serving.gateway.errors import ConfigError
from serving.gateway.upstreams import CircuitBreaker
from tests.serving.gateway.conftest import KEYS, base_config, chat, free_port, sse_events

CAP = 1000  # tenant "tiny": tokensPerMinute


def _level(url: str, tenant: str = "tiny") -> float:
    v = redis.Redis.from_url(url).hget(f"gw:lim:{{{tenant}}}:tpm", "l")
    return float(v) if v is not None else float(CAP)


def _roomy(c: dict) -> None:
    c["tenants"]["limits"]["tiny"].update(requestsPerMinute=1000)


# --- 2. the reservation is settled or released on every path --------------------------------------------------

@pytest.mark.parametrize("kind", ["upstream-5xx", "upstream-4xx", "timeout", "connection-refused",
                                  "no-upstream", "internal-error"])
def test_failed_requests_give_the_whole_reservation_back(kind, make_gateway, redis_server, stubs):
    def cfg(c):
        _roomy(c)
        c["upstreams"]["a"]["timeouts"].update(readSeconds=0.3)
        if kind == "connection-refused":
            c["upstreams"]["a"]["baseUrl"] = f"http://127.0.0.1:{free_port()}/v1"

    g = make_gateway(cfg, with_embedder=False)
    if kind == "upstream-5xx":
        stubs["a"].state.status = 500
    elif kind == "upstream-4xx":
        stubs["a"].state.status = 400
    elif kind == "timeout":
        stubs["a"].state.hang = True
    elif kind == "no-upstream":
        g.gw.upstreams["a"].breaker.opened_at = time.monotonic()  # circuit open
    elif kind == "internal-error":
        def boom(*a, **kw):
            raise RuntimeError("a bug before any upstream call")
        g.gw._cacheable = boom
    r = g.post(chat("hello", max_tokens=100), key="tiny")
    assert r.status_code >= 400 and r.json()["error"]["type"]
    g.settle()
    assert _level(redis_server.url) >= CAP - 3, f"{kind}: reservation kept"  # refill only adds


def test_stream_cut_by_the_upstream_settles_and_never_caches(make_gateway, redis_server, stubs):
    g = make_gateway(_roomy, with_embedder=False)
    stubs["a"].state.cut_after = 3
    assert sse_events(g.post(chat("hello", stream=True, max_tokens=100), key="tiny").text)[-1] != "[DONE]"
    g.settle()
    reserved = 100 + len("userhello") + 8 * 2
    level = _level(redis_server.url)
    assert CAP - reserved - 1 <= level <= CAP - reserved + 10  # no usage came: charged the reservation, no more
    assert g.gw.upstreams["a"].outstanding == 0


def test_client_leaving_before_the_first_event_releases_the_upstream(make_gateway, redis_server, stubs):
    g = make_gateway(_roomy, with_embedder=False)
    stubs["a"].state.delay_ms = 300
    with httpx.Client(base_url=g.url, timeout=5) as c:
        with c.stream("POST", "/v1/chat/completions", json=chat("hi", stream=True, max_tokens=20),
                      headers={"authorization": f"Bearer {KEYS['tiny']}"}) as resp:
            assert resp.status_code == 200  # headers only, then hang up
    deadline = time.monotonic() + 10
    while g.metric("gateway_requests_total", route="plain", tenant="tiny", status="499") == 0:
        assert time.monotonic() < deadline, "the stream was never ended"
        time.sleep(0.02)
    g.settle()
    assert g.gw.upstreams["a"].outstanding == 0
    assert _level(redis_server.url) < CAP  # settled (to the whole reservation: no usage arrived)


# --- 3. circuit breakers count upstream faults only ----------------------------------------------------------------

def test_one_tenants_bad_requests_do_not_take_the_route_offline(make_gateway, stubs):
    g = make_gateway(with_embedder=False)  # failureThreshold 2
    for _ in range(5):
        r = g.post(chat(stream="yes"), key="acme")
        assert r.status_code == 400 and r.json()["error"]["param"] == "stream"
    stubs["a"].state.status = 400  # the upstream itself refuses acme's requests
    for _ in range(5):
        assert g.post(chat(), key="acme").status_code == 400
    stubs["a"].state.status = 200
    r = g.post(chat(), key="globex")
    assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "a"
    assert g.gw.upstreams["a"].breaker.state == "closed"
    assert g.metric("gateway_circuit_open", upstream="a") == 0


def test_client_errors_neither_trip_nor_reset_the_breaker():
    clock = [0.0]
    b = CircuitBreaker(CircuitBreakerConfig(failure_threshold=2, cooldown_seconds=10), clock=lambda: clock[0])
    b.failure()
    b.neutral()  # a 4xx between two upstream faults does not hide the first one
    b.failure()
    assert b.state == "open"
    clock[0] = 11
    assert b.acquire()  # the half-open probe
    b.neutral()  # answered with a 4xx: the upstream is reachable
    assert b.state == "closed"


def test_truncated_streams_count_against_the_upstream(make_gateway, stubs):
    g = make_gateway(with_embedder=False)  # failureThreshold 2
    stubs["a"].state.cut_after = 2
    for _ in range(2):
        g.post(chat(stream=True))
    assert g.gw.upstreams["a"].breaker.state == "open"


# --- 4. streams end with [DONE] or an error event --------------------------------------------------------------

def _exact_only(c: dict) -> None:
    c["routes"]["cached"]["cache"] = {"exact": {"enabled": True}}


def test_stream_without_done_ends_with_an_error_event_and_a_metric(make_gateway, stubs):
    g = make_gateway(_exact_only, with_embedder=False)
    stubs["a"].state.cut_after = 3
    r = g.post(chat("Name three primes.", model="cached", temperature=0, stream=True))
    events = sse_events(r.text)
    assert events[-1] != "[DONE]"
    err = orjson.loads(events[-1])["error"]
    assert err["code"] == "upstream_error" and err["type"] == "api_error" and "[DONE]" in err["message"]
    content = [orjson.loads(e) for e in events[:-1]]
    assert len(content) == 4  # the role chunk and 3 content chunks, relayed as they came
    assert g.metric("gateway_stream_incomplete_total", route="cached", reason="no_done") == 1
    g.settle()
    stubs["a"].state.cut_after = -1
    r = g.post(chat("Name three primes.", model="cached", temperature=0, stream=True))
    assert r.headers["x-gateway-cache"] == "miss"  # the truncated answer was not cached
    assert sse_events(r.text)[-1] == "[DONE]"


def _fixed_upstream(body: bytes, content_type: bytes = b"text/event-stream"):
    """A loopback upstream that answers every request with 200, this content type and this body (then closes)."""
    from tests.serving.gateway.conftest import ServerThread

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": body})

    return ServerThread(app)


def _chunk(delta: dict, finish: str | None) -> bytes:
    return b"data: " + orjson.dumps({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"


def _stream_through(make_gateway, body: bytes) -> tuple[list[str], object]:
    srv = _fixed_upstream(body)
    try:
        g = make_gateway(lambda c: c["upstreams"]["a"].update(baseUrl=srv.url + "/v1"), with_embedder=False)
        return sse_events(g.post(chat(stream=True)).text), g
    finally:
        srv.stop()


@pytest.mark.parametrize("bad", [b"data: {this is not json\n\n", b"data: [1, 2]\n\n"])
def test_a_malformed_event_ends_the_stream_with_an_error_and_counts_against_the_upstream(bad, make_gateway, stubs):
    """Found by an independent fault harness: a broken event between good ones was relayed silently."""
    events, g = _stream_through(make_gateway, bad + _chunk({}, "stop") + b"data: [DONE]\n\n")
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_incomplete_stream"
    assert "[DONE]" not in events and not any(e.startswith(("{this", "[1")) for e in events)
    assert g.metric("gateway_stream_incomplete_total", route="plain", reason="malformed_event") == 1
    assert g.gw.upstreams["a"].breaker.failures >= 1 or g.gw.upstreams["a"].breaker.state == "open"


def test_stream_with_done_but_no_finish_reason_is_incomplete(make_gateway, stubs):
    from serving.gateway.stub import StubState, make_stub

    assert make_stub(StubState())  # the regular stub always sends a finish reason
    events, g = _stream_through(make_gateway, _chunk({"content": "partial"}, None) + b"data: [DONE]\n\n")
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_incomplete_stream"
    assert "[DONE]" not in events
    assert g.metric("gateway_stream_incomplete_total", route="plain", reason="no_finish_reason") == 1


def test_upstream_answering_json_to_a_stream_request_is_an_upstream_fault(make_gateway, stubs):
    srv = _fixed_upstream(b'{"choices": []}', b"application/json")
    try:
        g = make_gateway(lambda c: c["upstreams"]["a"].update(baseUrl=srv.url + "/v1"), with_embedder=False)
        r = g.post(chat(model="failover", stream=True))
        assert r.headers["x-gateway-upstream"] == "b" and sse_events(r.text)[-1] == "[DONE]"
        assert g.metric("gateway_upstream_errors_total", upstream="a", reason="upstream did not stream") == 1
    finally:
        srv.stop()


# --- 6. time to first byte -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
def test_first_byte_timeout_falls_back_long_before_the_read_timeout(stream, make_gateway, stubs):
    def cfg(c):
        c["upstreams"]["a"]["timeouts"] = {"readSeconds": 120, "firstByteSeconds": 0.5}

    g = make_gateway(cfg, with_embedder=False)
    stubs["a"].state.hang = True
    t0 = time.monotonic()
    r = g.post(chat(model="failover", stream=stream))
    assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "b"
    assert time.monotonic() - t0 < 5
    assert g.metric("gateway_upstream_errors_total", upstream="a", reason="first-byte timeout") == 1


def test_first_byte_timeout_default_and_rule():
    from serving.gateway.config import TimeoutsConfig, parse_config

    assert TimeoutsConfig().first_byte == 30.0 and TimeoutsConfig().read_seconds == 120.0
    assert TimeoutsConfig(read_seconds=2).first_byte == 2  # never longer than the read timeout by default
    cfg = base_config("redis://127.0.0.1:6379/0", {})
    cfg["upstreams"] = {"a": {"kind": "openai", "baseUrl": "http://x/v1", "model": "m",
                              "timeouts": {"readSeconds": 5, "firstByteSeconds": 10}}}
    cfg["routes"] = {"plain": {"targets": [{"upstream": "a"}]}}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    assert "upstreams.a.timeouts.firstByteSeconds = 10.0: must be <= readSeconds (5)" in str(err.value)


# --- 7. model allow-lists and per-user cache scopes --------------------------------------------------------------

def test_tenant_model_allow_list(make_gateway, stubs):
    g = make_gateway(lambda c: c["tenants"]["limits"]["tiny"].update(models=["plain"], requestsPerMinute=1000),
                     with_embedder=False)
    assert g.post(chat(max_tokens=5), key="tiny").status_code == 200
    r = g.post(chat(model="failover", max_tokens=5), key="tiny")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert r.json()["error"]["param"] == "model"
    assert g.post(chat(model="failover", max_tokens=5), key="acme").status_code == 200  # no list: every route
    listed = g.client.get("/v1/models", headers={"authorization": f"Bearer {KEYS['tiny']}"}).json()["data"]
    assert [m["id"] for m in listed] == ["plain"]


def test_allow_list_names_must_be_routes():
    from serving.gateway.config import parse_config

    cfg = base_config("redis://127.0.0.1:6379/0", {})
    cfg["upstreams"] = {"a": {"kind": "openai", "baseUrl": "http://x/v1", "model": "m"}}
    cfg["routes"] = {"plain": {"targets": [{"upstream": "a"}]}}
    cfg["tenants"]["limits"]["tiny"]["models"] = ["plain", "gpt-9"]
    cfg["tenants"]["defaultLimits"] = {"models": ["nope"]}
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = str(err.value)
    assert "tenants.limits.tiny.models[1] = 'gpt-9': unknown route; expected one of: plain" in text
    assert "tenants.defaultLimits.models[0] = 'nope': unknown route" in text


def test_cache_scoped_by_user(make_gateway, stubs):
    def cfg(c):
        c["routes"]["cached"]["cache"] = {"exact": {"enabled": True}, "scopeByUser": True}

    g = make_gateway(cfg, with_embedder=False)
    body = chat("What is the capital of France?", model="cached", temperature=0)
    assert g.post(dict(body, user="alice")).headers["x-gateway-cache"] == "miss"
    g.settle()
    assert g.post(dict(body, user="bob")).headers["x-gateway-cache"] == "miss"
    assert g.post(body).headers["x-gateway-cache"] == "miss"
    g.settle()
    assert g.post(dict(body, user="alice")).headers["x-gateway-cache"] == "hit-exact"
    unscoped = make_gateway(_exact_only, with_embedder=False)  # default: shared within the tenant
    unscoped.post(dict(body, user="alice"))
    unscoped.settle()
    assert unscoped.post(dict(body, user="bob")).headers["x-gateway-cache"] == "hit-exact"


def test_semantic_cache_scoped_by_user(make_gateway, stubs):
    def cfg(c):
        c["routes"]["cached"]["cache"] = {"semantic": {"enabled": True}, "scopeByUser": True}

    g = make_gateway(cfg)
    body = chat("How do I rotate the access keys of an IAM user?", model="cached", temperature=0)
    assert g.post(dict(body, user="alice")).headers["x-gateway-cache"] == "miss"
    deadline = time.monotonic() + 5  # the entry reaches the replica's index asynchronously
    while True:
        g.settle()
        if g.post(dict(body, user="alice")).headers["x-gateway-cache"] == "hit-semantic":
            break
        assert time.monotonic() < deadline, "alice's entry never served alice"
        time.sleep(0.1)
    assert g.post(dict(body, user="bob")).headers["x-gateway-cache"] == "miss"  # visible, but not bob's
    assert g.post(body).headers["x-gateway-cache"] == "miss"


@pytest.mark.parametrize("payload", [b"data: {}\n\n", b"[1, 2]", b'{"object": "error"}'])
def test_malformed_json_answer_is_an_upstream_fault_and_falls_back(payload, make_gateway, stubs):
    srv = _fixed_upstream(payload, b"application/json")
    try:
        g = make_gateway(lambda c: c["upstreams"]["a"].update(baseUrl=srv.url + "/v1"), with_embedder=False)
        r = g.post(chat(model="failover"))
        assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "b"
        assert g.gw.upstreams["a"].breaker.failures == 1
    finally:
        srv.stop()
