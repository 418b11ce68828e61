"""Caches (exact, semantic, tenant isolation, negation traps, fail-open) and the limiter (429, settle, fail modes)."""

from __future__ import annotations

import time

import orjson
import redis

from tests.serving.gateway.conftest import chat, free_port, sse_events


def test_exact_cache_hit_only_for_deterministic_requests(make_gateway, stubs):
    g = make_gateway()
    body = chat("What is the capital of France?", model="cached", temperature=0)
    assert g.post(body).headers["x-gateway-cache"] == "miss"
    g.settle()  # the write happens after the response
    r = g.post(body)
    assert r.headers["x-gateway-cache"] == "hit-exact" and stubs["a"].state.requests == 1
    assert r.json()["choices"][0]["message"]["content"] == "Hello from the stub upstream."
    warm = chat("What is the capital of France?", model="cached", temperature=0.7)
    assert g.post(warm).headers["x-gateway-cache"] == "bypass"
    assert g.post(warm, headers={"x-gateway-cache": "on"}).headers["x-gateway-cache"] == "miss"
    assert g.metric("gateway_cache_lookups_total", kind="exact", result="hit") == 1


def test_caches_never_cross_tenants(make_gateway, stubs):
    g = make_gateway()
    body = chat("What is the capital of France?", model="cached", temperature=0)
    g.post(body, key="acme")
    g.settle()
    assert g.post(body, key="globex").headers["x-gateway-cache"] == "miss"
    assert stubs["a"].state.requests == 2


def test_stream_cached_when_complete_and_replayed_as_stream(make_gateway, stubs):
    g = make_gateway()
    body = chat("Name three primes.", model="cached", temperature=0, stream=True, max_tokens=5)
    first = g.post(body)
    g.settle()
    r = g.post(body)
    assert r.headers["x-gateway-cache"] == "hit-exact" and stubs["a"].state.requests == 1
    text = lambda resp: "".join(orjson.loads(e)["choices"][0]["delta"].get("content", "")  # noqa: E731
                                for e in sse_events(resp.text)[:-1])
    assert text(r) == text(first) == "Hello from the stub upstream."
    assert sse_events(r.text)[-1] == "[DONE]"
    # the same request without streaming is answered from the same entry
    r = g.post(dict(body, stream=False))
    assert r.headers["x-gateway-cache"] == "hit-exact" and r.json()["object"] == "chat.completion"


def test_semantic_hit_on_paraphrase_but_not_on_negation(make_gateway, stubs):
    g = make_gateway()
    g.post(chat("How do I enable two-factor authentication on GitHub?", model="cached", temperature=0))
    g.settle()
    r = g.post(chat("How can I enable two-factor authentication on GitHub?", model="cached", temperature=0))
    assert r.headers["x-gateway-cache"] == "hit-semantic"
    assert float(r.headers["x-gateway-cache-similarity"]) >= 0.85
    r = g.post(chat("How do I disable two-factor authentication on GitHub?", model="cached", temperature=0))
    assert r.headers["x-gateway-cache"] == "miss"
    r = g.post(chat("How can I enable two-factor authentication on GitLab?", model="cached", temperature=0))
    assert r.headers["x-gateway-cache"] == "miss"
    r = g.post(chat("How can I enable two-factor authentication on GitHub?", model="cached", temperature=0),
               key="globex")
    assert r.headers["x-gateway-cache"] == "miss"


def test_without_the_guard_the_negation_trap_is_a_false_hit(make_gateway):
    """Shows what the guard is for: the same pair is a hit on cosine alone (0.92 > 0.85)."""
    g = make_gateway(lambda c: c["routes"]["cached"]["cache"]["semantic"].update(guard=False))
    g.post(chat("How do I enable 2FA on GitHub?", model="cached", temperature=0))
    g.settle()
    r = g.post(chat("How do I disable 2FA on GitHub?", model="cached", temperature=0))
    assert r.headers["x-gateway-cache"] == "hit-semantic"


def test_semantic_entries_shared_across_replicas(make_gateway, stubs):
    g1 = make_gateway()
    g2 = make_gateway()
    g1.post(chat("How do I enable two-factor authentication on GitHub?", model="cached", temperature=0))
    g1.settle()
    r = g2.post(chat("How can I enable two-factor authentication on GitHub?", model="cached", temperature=0))
    assert r.headers["x-gateway-cache"] == "hit-semantic"
    assert stubs["a"].state.requests == 1


def test_cache_store_down_fails_open(make_gateway, stubs):
    dead = f"redis://127.0.0.1:{free_port()}/0"

    def cfg(c):
        c["redis"]["url"] = dead
        c["limiter"]["enabled"] = False

    g = make_gateway(cfg)
    r = g.post(chat("What is the capital of France?", model="cached", temperature=0))
    assert r.status_code == 200 and stubs["a"].state.requests == 1
    assert g.metric("gateway_cache_errors_total", kind="exact", op="get") == 1
    assert g.metric("gateway_cache_lookups_total", kind="semantic", result="error") == 1


def test_limiter_store_down_fails_closed_or_open(make_gateway, stubs):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    closed = make_gateway(lambda c: c["redis"].update(url=dead))
    r = closed.post(chat(), key="tiny")
    assert r.status_code == 503 and r.json()["error"]["code"] == "limiter_unavailable"
    assert stubs["a"].state.requests == 0
    assert closed.metric("gateway_limiter_errors_total", mode="warm-up") == 1  # started anyway
    opened = make_gateway(lambda c: (c["redis"].update(url=dead), c["limiter"].update(failMode="open")))
    assert opened.post(chat(), key="tiny").status_code == 200
    assert opened.metric("gateway_limiter_errors_total", mode="open") == 1


def test_rpm_over_budget_is_429_with_retry_after(make_gateway):
    g = make_gateway()
    assert g.post(chat(max_tokens=10), key="tiny").status_code == 200
    assert g.post(chat(max_tokens=10), key="tiny").status_code == 200
    r = g.post(chat(max_tokens=10), key="tiny")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert g.metric("gateway_limiter_rejections_total", tenant="tiny", limit="rpm") == 1
    assert g.post(chat(max_tokens=10), key="acme").status_code == 200  # other tenants unaffected


def test_request_larger_than_the_whole_budget_is_400(make_gateway):
    g = make_gateway(lambda c: c["tenants"]["limits"]["tiny"].update(maxTokens=None, tokensPerMinute=300))
    r = g.post(chat(max_tokens=400), key="tiny")
    assert r.status_code == 400 and r.json()["error"]["code"] == "exceeds_token_budget"


def _level(redis_url: str, tenant: str) -> float:
    return float(redis.Redis.from_url(redis_url).hget(f"gw:lim:{{{tenant}}}:tpm", "l"))


def test_reservation_settles_to_reported_usage(make_gateway, redis_server, stubs):
    g = make_gateway()
    r = g.post(chat("hi", max_tokens=100), key="tiny")
    used = r.json()["usage"]["total_tokens"]
    g.settle()
    level = _level(redis_server.url, "tiny")
    # refill adds 1000/60 tokens per second at most; the reservation (prompt estimate + 100) was returned
    assert 1000 - used - 1 <= level <= 1000 - used + 5


def test_stream_settles_at_end_and_disconnect_charges_the_reservation(make_gateway, redis_server, stubs):
    import httpx

    g = make_gateway()
    g.post(chat("hi", stream=True, max_tokens=20), key="tiny")
    g.settle()
    assert _level(redis_server.url, "tiny") >= 1000 - 20 - 2 - 1
    redis_server.flush()
    stubs["a"].state.delay_ms = 200
    with httpx.Client(base_url=g.url, timeout=5) as c:
        with c.stream("POST", "/v1/chat/completions", json=chat("hi", stream=True, max_tokens=20),
                      headers={"authorization": "Bearer sk-tiny-test-key"}) as resp:
            next(resp.iter_raw())  # first bytes, then hang up
    deadline = time.monotonic() + 10
    while g.metric("gateway_requests_total", route="plain", tenant="tiny", status="499") == 0:
        assert time.monotonic() < deadline, "the gateway never noticed the disconnect"
        time.sleep(0.02)
    g.settle()
    level = _level(redis_server.url, "tiny")
    reserved = 20 + len("userhi") + 8 * 2
    assert level <= 1000 - reserved + 10  # charged the whole reservation: usage never arrived
    assert g.metric("gateway_requests_total", route="plain", tenant="tiny", status="499") == 1
