"""End-to-end behaviour over HTTP: a real redis-server, stub upstreams and the gateway on loopback ports."""

from __future__ import annotations

import orjson

from tests.serving.gateway.conftest import KEYS, chat, free_port, sse_events


def test_chat_completion_passes_through_and_counts_tokens(make_gateway, stubs):
    g = make_gateway()
    r = g.post(chat(max_tokens=5))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["usage"]["completion_tokens"] == 5
    assert r.headers["x-gateway-upstream"] == "a"
    assert stubs["a"].state.last_body["model"] == "model-a"  # the upstream's served name
    assert stubs["a"].state.last_body["max_tokens"] == 5
    assert g.metric("gateway_tokens_total", tenant="acme", model="plain", direction="out") == 5


def test_missing_max_tokens_gets_the_route_cap(make_gateway, stubs):
    g = make_gateway()
    assert g.post(chat()).status_code == 200
    assert stubs["a"].state.last_body["max_tokens"] == 512


def test_auth_model_and_validation_errors_are_openai_shaped(make_gateway, stubs):
    g = make_gateway()
    r = g.post(chat(), key="sk-wrong")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = g.post(chat(model="nope"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = g.post(chat(max_tokens=513))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "max_tokens" and "above the limit of 512" in r.json()["error"]["message"]
    r = g.client.post("/v1/chat/completions", content=b"{not json", headers={"authorization": f"Bearer {KEYS['acme']}"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert stubs["a"].state.requests == 0


def test_oversize_prompt_rejected_before_any_upstream_call(make_gateway, stubs):
    g = make_gateway()
    r = g.post(chat("x" * 500))  # bytes fallback: 500 + overhead > maxPromptTokens 200
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded" and "above the limit of 200" in err["message"]
    assert "no tokenizer is configured" in err["message"]
    assert stubs["a"].state.requests == 0


def test_tenant_max_tokens_cap_applies(make_gateway):
    g = make_gateway()
    r = g.post(chat(max_tokens=101), key="tiny")
    assert r.status_code == 400 and "above the limit of 100" in r.json()["error"]["message"]


def test_models_lists_routes(make_gateway):
    g = make_gateway()
    r = g.client.get("/v1/models", headers={"authorization": f"Bearer {KEYS['acme']}"})
    assert {m["id"] for m in r.json()["data"]} >= {"plain", "failover", "cascade"}
    assert g.client.get("/v1/models").status_code == 401
    assert g.client.get("/healthz").status_code == 200 and g.client.get("/readyz").status_code == 200
    assert b"gateway_requests_total" in g.client.get("/metrics").content


def test_stream_relays_chunks_and_hides_usage_unless_asked(make_gateway, stubs):
    g = make_gateway()
    r = g.post(chat(stream=True, max_tokens=4))
    ev = sse_events(r.text)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert ev[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in ev[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello from the stub"
    assert all(c.get("usage") is None for c in chunks)
    assert stubs["a"].state.last_body["stream_options"] == {"include_usage": True}  # gateway always asks
    r = g.post(chat(stream=True, max_tokens=4, stream_options={"include_usage": True}))
    chunks = [orjson.loads(e) for e in sse_events(r.text)[:-1]]
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert g.metric("gateway_tokens_total", tenant="acme", model="plain", direction="out") == 8


def test_completions_endpoint(make_gateway):
    g = make_gateway()
    r = g.post({"model": "plain", "prompt": "Say hi", "max_tokens": 3}, path="/v1/completions")
    assert r.status_code == 200 and r.json()["object"] == "text_completion"
    r = g.post({"model": "plain", "prompt": "Say hi", "max_tokens": 3, "stream": True}, path="/v1/completions")
    assert sse_events(r.text)[-1] == "[DONE]"


def test_fallback_on_5xx_and_429(make_gateway, stubs):
    g = make_gateway()
    for status in (500, 429):
        stubs["a"].reset(), stubs["b"].reset()
        stubs["a"].state.status = status
        r = g.post(chat(model="failover"))
        assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "b"
        assert stubs["a"].state.requests == 1 and stubs["b"].state.requests == 1
    assert g.metric("gateway_fallbacks_total", route="failover", upstream="b") == 2


def test_fallback_on_timeout(make_gateway, stubs):
    g = make_gateway(lambda c: c["upstreams"]["a"]["timeouts"].update(readSeconds=0.3))
    stubs["a"].state.hang = True
    r = g.post(chat(model="failover"))
    assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "b"
    assert g.metric("gateway_upstream_errors_total", upstream="a", reason="first-byte timeout") == 1


def test_fallback_when_the_upstream_refuses_connections(make_gateway, stubs):
    g = make_gateway(lambda c: c["upstreams"]["a"].update(baseUrl=f"http://127.0.0.1:{free_port()}/v1"))
    r = g.post(chat(model="failover"))
    assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "b"
    assert g.metric("gateway_upstream_errors_total", upstream="a", reason="connection error") == 1


def test_stream_stalled_mid_way_ends_with_an_error_event_and_the_pool_recovers(make_gateway, stubs):
    g = make_gateway(lambda c: c["upstreams"]["a"]["timeouts"].update(readSeconds=0.3))
    stubs["a"].state.delay_ms = 1000  # the role chunk comes at once, the next one after the read timeout
    r = g.post(chat(stream=True))
    events = sse_events(r.text)
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_error" and "timeout" in events[-1]
    assert g.metric("gateway_requests_total", route="plain", tenant="acme", status="504") == 1
    stubs["a"].state.delay_ms = 0
    assert sse_events(g.post(chat(stream=True)).text)[-1] == "[DONE]"
    assert g.post(chat()).status_code == 200


def test_stream_falls_back_before_first_byte(make_gateway, stubs):
    g = make_gateway()
    stubs["a"].state.status = 503
    r = g.post(chat(model="failover", stream=True))
    assert r.headers["x-gateway-upstream"] == "b" and sse_events(r.text)[-1] == "[DONE]"


def test_circuit_breaker_stops_sending_to_a_failing_upstream(make_gateway, stubs):
    g = make_gateway()
    stubs["a"].state.status = 500
    for _ in range(5):
        assert g.post(chat(model="failover")).status_code == 200
    assert stubs["a"].state.requests == 2  # failureThreshold 2, then the circuit is open for 30 s
    assert stubs["b"].state.requests == 5
    assert g.metric("gateway_circuit_open", upstream="a") == 1


def test_no_fallback_without_retry_budget(make_gateway, stubs):
    g = make_gateway(lambda c: c["routes"]["failover"].update(retryBudget={"ratio": 0.0, "minPerSecond": 0.0}))
    stubs["a"].state.status = 500
    r = g.post(chat(model="failover"))
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
    assert stubs["b"].state.requests == 0
    assert g.metric("gateway_retry_budget_exhausted_total", route="failover") == 1


def test_client_errors_are_not_retried(make_gateway, stubs):
    g = make_gateway()
    stubs["a"].state.status = 400
    r = g.post(chat(model="failover"))
    assert r.status_code == 400 and stubs["b"].state.requests == 0


def test_cascade_keeps_a_confident_small_answer(make_gateway, stubs):
    g = make_gateway()
    r = g.post(chat(model="cascade"))
    assert r.status_code == 200 and r.headers["x-gateway-cascade-stage"] == "small"
    assert stubs["a"].state.last_body["logprobs"] is True  # asked for the rule...
    assert r.json()["choices"][0]["logprobs"] is None       # ...and hidden from the client who did not
    assert stubs["b"].state.requests == 0


def test_cascade_escalates_on_low_logprob_refusal_and_hint(make_gateway, stubs):
    g = make_gateway()
    stubs["a"].state.logprob = -2.5
    r = g.post(chat(model="cascade"))
    assert r.headers["x-gateway-cascade-stage"] == "large" and stubs["b"].state.requests == 1
    stubs["a"].state.logprob = -0.1
    stubs["a"].state.text = "I'm sorry, but I can't help with that."
    r = g.post(chat(model="cascade", stream=True))
    assert r.headers["x-gateway-cascade-stage"] == "large" and sse_events(r.text)[-1] == "[DONE]"
    before = stubs["a"].state.requests
    r = g.post(chat(model="cascade"), headers={"x-gateway-escalate": "true"})
    assert r.headers["x-gateway-cascade-stage"] == "large" and stubs["a"].state.requests == before
    for reason in ("low_logprob", "refusal", "client_hint"):
        assert g.metric("gateway_cascade_escalations_total", route="cascade", reason=reason) == 1


def test_cascade_stream_replays_small_answer(make_gateway, stubs):
    g = make_gateway()
    r = g.post(chat(model="cascade", stream=True))
    assert r.headers["x-gateway-cascade-stage"] == "small"
    text = "".join(orjson.loads(e)["choices"][0]["delta"].get("content", "") for e in sse_events(r.text)[:-1])
    assert text == "Hello from the stub upstream."
