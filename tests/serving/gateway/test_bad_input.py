"""Malformed requests: every one a 4xx JSON answer in OpenAI's error shape, before any reservation or upstream call.

The corpus below is the contract (>= 80 cases, chat and completions). Each case is sent by a tenant with a token
budget; afterwards the tenant's buckets must not exist in Redis (nothing was reserved) and the stub upstream must
have seen no request.
"""

from __future__ import annotations

import json

import pytest
import redis

from serving.gateway.schema import MAX_DEPTH, check_request, depth_exceeds
from tests.serving.gateway.conftest import KEYS, GatewayHandle, base_config

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def _chat(**kw) -> dict:
    body = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}
    body.update(kw)
    return body


def _msg(**m) -> dict:
    return _chat(messages=[m])


def _cmpl(**kw) -> dict:
    body = {"model": "plain", "prompt": "hi"}
    body.update(kw)
    return body


def _nest(levels: int) -> object:
    v: object = "x"
    for _ in range(levels):
        v = {"a": v}
    return v


def _nest_list(levels: int) -> object:
    v: object = 1
    for _ in range(levels):
        v = [v]
    return v


# (id, path, body or raw bytes, expected status, expected param (None: not checked))
CORPUS: list[tuple[str, str, object, int, str | None]] = [
    # the body itself
    ("not-json", CHAT, b"{not json", 400, None),
    ("empty-body", CHAT, b"", 400, None),
    ("json-array", CHAT, b"[1, 2]", 400, None),
    ("json-string", CHAT, b'"hello"', 400, None),
    ("json-null", CHAT, b"null", 400, None),
    ("truncated-json", CHAT, b'{"model": "plain", "messages": [', 400, None),
    ("invalid-utf8", CHAT, b'{"model": "pl\xff\xfeain"}', 400, None),
    # model
    ("model-missing", CHAT, {"messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
    ("model-list", CHAT, _chat(model=[]), 400, "model"),
    ("model-object", CHAT, _chat(model={}), 400, "model"),
    ("model-number", CHAT, _chat(model=5), 400, "model"),
    ("model-bool", CHAT, _chat(model=True), 400, "model"),
    ("model-null", CHAT, _chat(model=None), 400, "model"),
    ("model-empty", CHAT, _chat(model=""), 400, "model"),
    ("model-huge", CHAT, _chat(model="m" * 5000), 400, "model"),
    ("model-unknown", CHAT, _chat(model="nope"), 404, "model"),
    # messages
    ("messages-missing", CHAT, {"model": "plain"}, 400, "messages"),
    ("messages-null", CHAT, _chat(messages=None), 400, "messages"),
    ("messages-empty", CHAT, _chat(messages=[]), 400, "messages"),
    ("messages-string", CHAT, _chat(messages="hi"), 400, "messages"),
    ("messages-object", CHAT, _chat(messages={"role": "user"}), 400, "messages"),
    ("message-string", CHAT, _chat(messages=["hi"]), 400, "messages[0]"),
    ("message-number", CHAT, _chat(messages=[1]), 400, "messages[0]"),
    ("message-null", CHAT, _chat(messages=[None]), 400, "messages[0]"),
    ("role-missing", CHAT, _msg(content="hi"), 400, "messages[0].role"),
    ("role-unknown", CHAT, _msg(role="wizard", content="hi"), 400, "messages[0].role"),
    ("role-number", CHAT, _msg(role=1, content="hi"), 400, "messages[0].role"),
    ("role-list", CHAT, _msg(role=["user"], content="hi"), 400, "messages[0].role"),
    ("content-missing", CHAT, _msg(role="user"), 400, "messages[0].content"),
    ("content-null-user", CHAT, _msg(role="user", content=None), 400, "messages[0].content"),
    ("content-number", CHAT, _msg(role="user", content=5), 400, "messages[0].content"),
    ("content-object", CHAT, _msg(role="user", content={"text": "hi"}), 400, "messages[0].content"),
    ("content-empty-list", CHAT, _msg(role="user", content=[]), 400, "messages[0].content"),
    ("part-string", CHAT, _msg(role="user", content=["hi"]), 400, "messages[0].content[0]"),
    ("part-no-type", CHAT, _msg(role="user", content=[{"text": "hi"}]), 400, "messages[0].content[0].type"),
    ("part-unknown-type", CHAT, _msg(role="user", content=[{"type": "video", "text": "x"}]), 400,
     "messages[0].content[0].type"),
    ("part-text-number", CHAT, _chat(temperature=0, messages=[{"role": "user", "content": [{"type": "text",
                                                                                              "text": 5}]}]),
     400, "messages[0].content[0].text"),
    ("part-text-missing", CHAT, _msg(role="user", content=[{"type": "text"}]), 400, "messages[0].content[0].text"),
    ("part-text-null", CHAT, _msg(role="user", content=[{"type": "text", "text": None}]), 400,
     "messages[0].content[0].text"),
    ("part-image", CHAT, _msg(role="user", content=[{"type": "image_url", "image_url": {"url": "x"}}]), 400,
     "messages[0].content[0].type"),
    ("name-number", CHAT, _msg(role="user", content="hi", name=3), 400, "messages[0].name"),
    ("tool-calls-string", CHAT, _chat(messages=[{"role": "user", "content": "hi"},
                                                {"role": "assistant", "tool_calls": "abc"}]),
     400, "messages[1].tool_calls"),
    ("tool-calls-ints", CHAT, _chat(messages=[{"role": "user", "content": "hi"},
                                              {"role": "assistant", "tool_calls": [1]}]),
     400, "messages[1].tool_calls[0]"),
    ("tool-calls-no-function", CHAT, _chat(messages=[{"role": "assistant", "tool_calls": [{"id": "1"}]}]), 400,
     "messages[0].tool_calls[0].function"),
    ("tool-calls-args-object", CHAT, _chat(messages=[{"role": "assistant", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]), 400,
     "messages[0].tool_calls[0].function.arguments"),
    ("tool-calls-on-user", CHAT, _chat(messages=[{"role": "user", "content": "hi", "tool_calls": []}]), 400,
     "messages[0].tool_calls"),
    ("tool-message-no-id", CHAT, _chat(messages=[{"role": "tool", "content": "42"}]), 400,
     "messages[0].tool_call_id"),
    ("tool-call-id-number", CHAT, _chat(messages=[{"role": "tool", "content": "42", "tool_call_id": 7}]), 400,
     "messages[0].tool_call_id"),
    # sampling parameters
    ("temperature-string", CHAT, _chat(temperature="hot"), 400, "temperature"),
    ("temperature-negative", CHAT, _chat(temperature=-0.1), 400, "temperature"),
    ("temperature-high", CHAT, _chat(temperature=2.5), 400, "temperature"),
    ("temperature-bool", CHAT, _chat(temperature=True), 400, "temperature"),
    ("temperature-list", CHAT, _chat(temperature=[0]), 400, "temperature"),
    ("top-p-high", CHAT, _chat(top_p=1.5), 400, "top_p"),
    ("top-p-string", CHAT, _chat(top_p="all"), 400, "top_p"),
    ("top-k-float", CHAT, _chat(top_k=1.5), 400, "top_k"),
    ("min-p-negative", CHAT, _chat(min_p=-1), 400, "min_p"),
    ("presence-penalty-high", CHAT, _chat(presence_penalty=3), 400, "presence_penalty"),
    ("frequency-penalty-low", CHAT, _chat(frequency_penalty=-3), 400, "frequency_penalty"),
    ("repetition-penalty-zero", CHAT, _chat(repetition_penalty=0), 400, "repetition_penalty"),
    ("seed-float", CHAT, _chat(seed=1.5), 400, "seed"),
    ("seed-huge", CHAT, _chat(seed=2**63), 400, "seed"),
    ("seed-beyond-json-parser", CHAT, b'{"model": "plain", "messages": [], "seed": 18446744073709551616}', 400,
     None),
    ("n-zero", CHAT, _chat(n=0), 400, "n"),
    ("n-string", CHAT, _chat(n="2"), 400, "n"),
    ("n-huge", CHAT, _chat(n=1000), 400, "n"),
    ("max-tokens-zero", CHAT, _chat(max_tokens=0), 400, "max_tokens"),
    ("max-tokens-negative", CHAT, _chat(max_tokens=-5), 400, "max_tokens"),
    ("max-tokens-string", CHAT, _chat(max_tokens="10"), 400, "max_tokens"),
    ("max-tokens-float", CHAT, _chat(max_tokens=10.5), 400, "max_tokens"),
    ("max-tokens-bool", CHAT, _chat(max_tokens=True), 400, "max_tokens"),
    ("max-completion-tokens-list", CHAT, _chat(max_completion_tokens=[5]), 400, "max_completion_tokens"),
    ("stop-number", CHAT, _chat(stop=5), 400, "stop"),
    ("stop-list-of-numbers", CHAT, _chat(stop=[1, 2]), 400, "stop[0]"),
    ("stop-too-many", CHAT, _chat(stop=["x"] * 100), 400, "stop"),
    ("logit-bias-list", CHAT, _chat(logit_bias=[1]), 400, "logit_bias"),
    ("logit-bias-word-key", CHAT, _chat(logit_bias={"hello": 1}), 400, None),
    ("logit-bias-range", CHAT, _chat(logit_bias={"50256": 500}), 400, "logit_bias.50256"),
    ("logprobs-int-on-chat", CHAT, _chat(logprobs=5), 400, "logprobs"),
    ("top-logprobs-high", CHAT, _chat(logprobs=True, top_logprobs=50), 400, "top_logprobs"),
    ("user-number", CHAT, _chat(user=42), 400, "user"),
    ("user-huge", CHAT, _chat(user="u" * 5000), 400, "user"),
    # streaming
    ("stream-string", CHAT, _chat(stream="yes"), 400, "stream"),
    ("stream-number", CHAT, _chat(stream=1), 400, "stream"),
    ("stream-options-string", CHAT, _chat(stream=True, stream_options="x"), 400, "stream_options"),
    ("stream-options-list", CHAT, _chat(stream=True, stream_options=[]), 400, "stream_options"),
    ("stream-options-without-stream", CHAT, _chat(stream_options={"include_usage": True}), 400,
     "stream_options"),
    ("stream-options-usage-string", CHAT, _chat(stream=True, stream_options={"include_usage": "yes"}), 400,
     "stream_options.include_usage"),
    # tools and formats
    ("tools-object", CHAT, _chat(tools={"type": "function"}), 400, "tools"),
    ("tools-ints", CHAT, _chat(tools=[1]), 400, "tools[0]"),
    ("tools-bad-type", CHAT, _chat(tools=[{"type": "magic", "function": {"name": "f"}}]), 400, "tools[0].type"),
    ("tools-no-name", CHAT, _chat(tools=[{"type": "function", "function": {}}]), 400, "tools[0].function.name"),
    ("tools-parameters-string", CHAT, _chat(tools=[{"type": "function", "function": {"name": "f",
                                                                                      "parameters": "x"}}]),
     400, "tools[0].function.parameters"),
    ("tool-choice-unknown", CHAT, _chat(tool_choice="sometimes"), 400, "tool_choice"),
    ("tool-choice-number", CHAT, _chat(tool_choice=1), 400, "tool_choice"),
    ("parallel-tool-calls-string", CHAT, _chat(parallel_tool_calls="true"), 400, "parallel_tool_calls"),
    ("response-format-string", CHAT, _chat(response_format="json"), 400, "response_format"),
    ("response-format-type", CHAT, _chat(response_format={"type": "yaml"}), 400, "response_format.type"),
    ("response-format-schema-missing", CHAT, _chat(response_format={"type": "json_schema"}), 400,
     "response_format.json_schema"),
    ("metadata-values", CHAT, _chat(metadata={"k": 1}), 400, "metadata.k"),
    ("reasoning-effort", CHAT, _chat(reasoning_effort="extreme"), 400, "reasoning_effort"),
    # nesting (the encoder that forwards the body stops at 255 levels, the parser at 1024)
    ("nested-40", CHAT, _chat(extra=_nest(40)), 400, None),
    ("nested-255-field", CHAT, _chat(guided_json=_nest(255)), 400, None),
    ("nested-300-list", CHAT, _chat(stop=_nest_list(300)), 400, None),
    ("nested-600-metadata", CHAT, _chat(metadata=_nest(600)), 400, None),
    ("nested-1024-raw", CHAT, b'{"model": "plain", "x": ' + b"[" * 1024 + b"]" * 1024 + b"}", 400, None),
    ("nested-content", CHAT, _msg(role="user", content=[{"type": "text", "text": "hi", "extra": _nest(300)}]),
     400, None),
    # completions
    ("prompt-missing", COMPLETIONS, {"model": "plain"}, 400, "prompt"),
    ("prompt-null", COMPLETIONS, _cmpl(prompt=None), 400, "prompt"),
    ("prompt-number", COMPLETIONS, _cmpl(prompt=5), 400, "prompt"),
    ("prompt-object", COMPLETIONS, _cmpl(prompt={"text": "hi"}), 400, "prompt"),
    ("prompt-empty-list", COMPLETIONS, _cmpl(prompt=[]), 400, "prompt"),
    ("prompt-mixed-list", COMPLETIONS, _cmpl(prompt=["a", 1]), 400, "prompt"),
    ("prompt-negative-ids", COMPLETIONS, _cmpl(prompt=[-1, 2]), 400, "prompt"),
    ("completion-model-list", COMPLETIONS, _cmpl(model=["plain"]), 400, "model"),
    ("completion-logprobs-bool", COMPLETIONS, _cmpl(logprobs=True), 400, "logprobs"),
    ("completion-logprobs-high", COMPLETIONS, _cmpl(logprobs=100), 400, "logprobs"),
    ("completion-echo-string", COMPLETIONS, _cmpl(echo="yes"), 400, "echo"),
    ("completion-best-of-zero", COMPLETIONS, _cmpl(best_of=0), 400, "best_of"),
    ("completion-suffix-number", COMPLETIONS, _cmpl(suffix=1), 400, "suffix"),
    ("completion-stream-string", COMPLETIONS, _cmpl(stream="yes"), 400, "stream"),
    ("completion-temperature-string", COMPLETIONS, _cmpl(temperature="hot"), 400, "temperature"),
    ("completion-nested", COMPLETIONS, _cmpl(extra=_nest(500)), 400, None),
]


def test_the_corpus_is_large_and_unique():
    assert len(CORPUS) >= 80
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.fixture(scope="module")
def gw(redis_server, stubs, embedder):
    for s in stubs.values():
        s.reset()
    cfg = base_config(redis_server.url, stubs)
    cfg["tenants"]["limits"]["tiny"].update(requestsPerMinute=1000)
    h = GatewayHandle(cfg, embedder)
    yield h
    h.stop()


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_request_is_a_json_4xx_and_costs_nothing(case, gw, redis_server, stubs):
    name, path, body, status, param = case
    redis_server.flush()
    before = stubs["a"].state.requests
    content = body if isinstance(body, bytes) else json.dumps(body).encode()  # orjson refuses 255+ levels
    r = gw.client.post(path, content=content, headers={"authorization": f"Bearer {KEYS['tiny']}",
                                                        "content-type": "application/json"})
    assert r.status_code == status, (name, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["message"]
    if param is not None:
        assert err["param"] == param, (name, err)
    assert stubs["a"].state.requests == before  # nothing went upstream
    assert not redis.Redis.from_url(redis_server.url).exists("gw:lim:{tiny}:tpm", "gw:lim:{tiny}:rpm")


def test_well_formed_requests_pass_the_schema():
    ok_chat = [
        _chat(),
        _chat(temperature=0, top_p=1, top_k=-1, min_p=0.1, seed=-5, n=2, stop=["\n"], user="u-1",
              logit_bias={"50256": -100}, logprobs=True, top_logprobs=5, presence_penalty=1.5, stream=None),
        _chat(stream=True, stream_options={"include_usage": True}),
        _chat(messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            tool_choice={"type": "function", "function": {"name": "f"}}, parallel_tool_calls=False,
            response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {}}}),
        _chat(guided_json=_nest(MAX_DEPTH - 1), chat_template_kwargs={"enable_thinking": False}),
    ]
    for body in ok_chat:
        assert check_request("chat", body) is None, body
    for body in (_cmpl(), _cmpl(prompt=["a", "b"]), _cmpl(prompt=[1, 2, 3]), _cmpl(logprobs=2, echo=True)):
        assert check_request("completion", body) is None, body


def test_depth_check_is_iterative_and_exact():
    assert not depth_exceeds({"a": _nest(MAX_DEPTH - 1)})
    assert depth_exceeds({"a": _nest(MAX_DEPTH)})
    assert depth_exceeds(_nest(100_000))  # far beyond Python's recursion limit


def test_schema_messages_name_the_field_and_the_value():
    assert check_request("chat", _chat(temperature="hot")).message == "'temperature' must be a number, not a string."
    assert check_request("chat", _chat(temperature=3)).message == \
        "'temperature' is 3, outside the allowed range [0, 2]."
    bad = check_request("chat", _chat(stream=True, stream_options="x"))
    assert bad.message == "'stream_options' must be an object, not a string." and bad.param == "stream_options"
    bad = check_request("chat", _chat(stream_options={"include_usage": True}))
    assert bad.message == "'stream_options' is only allowed when 'stream' is true."
    bad = check_request("chat", _msg(role="wizard", content="x"))
    assert bad.message.startswith("'messages[0].role' is 'wizard'; expected one of: system, developer, user")
    bad = check_request("chat", _chat(extra=_nest(40)))
    assert bad.code == "nesting_too_deep" and "more than 32 levels" in bad.message


def test_oversized_body_is_413_before_anything_is_reserved(make_gateway, redis_server, stubs):
    g = make_gateway(lambda c: c["server"].update(maxBodyBytes=2048), with_embedder=False)
    r = g.post(_chat(messages=[{"role": "user", "content": "x" * 5000}]), key="tiny")
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert stubs["a"].state.requests == 0
    assert not redis.Redis.from_url(redis_server.url).exists("gw:lim:{tiny}:tpm")


def test_unknown_path_and_wrong_method_are_openai_shaped_json(make_gateway):
    g = make_gateway(with_embedder=False)
    r = g.client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "not_found" and r.json()["error"]["type"] == "invalid_request_error"
    r = g.client.get("/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in r.headers.get("allow", "")
    r = g.client.delete("/v1/models")
    assert r.status_code == 405 and set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_request_id_is_echoed_only_when_short_and_plain(make_gateway):
    g = make_gateway(with_embedder=False)
    body = _chat(max_tokens=2)
    assert g.post(body, headers={"x-request-id": "req-123_abc"}).headers["x-request-id"] == "req-123_abc"
    for bad in ("r" * 65536, "r" * 129, "has space", "semi;colon", "quote\"d"):
        rid = g.post(body, headers={"x-request-id": bad}).headers["x-request-id"]
        assert rid != bad and len(rid) <= 40 and rid.isalnum()


def test_an_unexpected_error_outside_the_request_path_is_a_json_500(make_gateway):
    g = make_gateway(with_embedder=False)

    def broken(_authorization):
        raise RuntimeError("a bug")

    g.gw.keys.authenticate = broken
    r = g.client.get("/v1/models", headers={"authorization": f"Bearer {KEYS['acme']}"})
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == {"message": "Internal gateway error.", "type": "api_error", "param": None,
                                 "code": "internal_error"}


def test_explicit_nulls_mean_the_defaults(make_gateway, stubs):
    g = make_gateway(with_embedder=False)
    r = g.post(_chat(n=None, stop=None, temperature=None, stream=None, max_tokens=None, user=None, seed=None))
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "chat.completion"
