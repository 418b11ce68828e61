"""``POST /v1/embeddings`` through the openai SDK against a local gateway (real redis-server): shapes, base64,
dimensions, micro-batching and scatter, the vector cache (hit, miss, Redis killed mid-run), an embedding server that
is down (503 in OpenAI's error shape), every 4xx, token budgets, and the config block's problems."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import numpy as np
import openai
import pytest

from serving.gateway.config import ConfigError, parse_config
from tests.serving.gateway.conftest import (
    KEYS,
    RedisServer,
    ServerThread,
    base_config,
    free_port,
)

DIM = 8


class CountingEmbedder:
    """A fast stand-in for a model: the vector of "text N" has N in its first component; counts embed_many calls."""

    dim = DIM
    max_tokens = 8192

    def __init__(self, delay_s: float = 0.05):
        self.calls: list[int] = []
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def too_long(self, text: str) -> bool:
        return False

    def embed_many(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(self.delay_s)
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts):
            out[i, 0] = float(t.split()[-1]) if t.split()[-1].isdigit() else len(t)
            out[i, 1] = 1.0
        return out


class FakeServer:
    """An OpenAI-compatible embedding server (what TEI serves) on a loopback port."""

    def __init__(self, dim: int = DIM):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                data = [{"object": "embedding", "index": i, "embedding": [float(len(t))] + [1.0] * (dim - 1)}
                        for i, t in enumerate(body["input"])]
                raw = json.dumps({"object": "list", "data": data}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def no_stubs() -> dict:
    """Upstreams that nothing listens on (the tests that need no chat route)."""
    return {n: SimpleNamespace(url="http://127.0.0.1:9/v1") for n in ("a", "b", "c")}


def emb_config(redis_url: str, stubs, **embeddings) -> dict:
    cfg = base_config(redis_url, stubs)
    cfg["embeddings"] = {
        "enabled": True,
        "models": {"minilm": {"kind": "local"},
                   "fake": {"kind": "openai", "baseUrl": "http://127.0.0.1:9/v1", "model": "fake", "dimensions": DIM,
                            "maxInputChars": 100},
                   "titan": {"kind": "bedrock", "dimensions": 1024, "region": "us-east-1"},
                   "nodim": {"kind": "openai", "baseUrl": "http://127.0.0.1:9/v1", "model": "m"}},
        "batch": {"maxBatch": 64, "maxWaitMs": 20},
    }
    cfg["embeddings"].update(embeddings)
    cfg["tenants"]["limits"]["globex"] = {"models": ["plain"]}
    return cfg


class Handle:
    def __init__(self, cfg_dict: dict, *, embedder=None, embedders=None):
        from serving.gateway.app import Gateway, create_app
        from serving.gateway.embeddings_api import EmbeddingsApi

        self.cfg = parse_config(copy.deepcopy(cfg_dict))
        self.gw = Gateway(self.cfg, embedder=embedder)
        self.gw.embeddings_api = EmbeddingsApi(self.gw, embedders=embedders)
        self.server = ServerThread(create_app(self.gw))
        self.url = self.server.url

    def client(self, key: str = "acme") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=KEYS.get(key, key), max_retries=0, timeout=30)

    def aclient(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=KEYS["acme"], max_retries=0, timeout=30)

    def raw(self, body, key: str = "acme") -> httpx.Response:
        h = {"authorization": f"Bearer {KEYS.get(key, key)}"}
        if isinstance(body, (bytes, str)):
            return httpx.post(self.url + "/v1/embeddings", content=body, headers=h, timeout=30)
        return httpx.post(self.url + "/v1/embeddings", json=body, headers=h, timeout=30)

    def settle(self) -> None:
        deadline = time.monotonic() + 10
        while self.gw._tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def metric(self, name: str, **labels) -> float:
        return self.gw.metrics.registry.get_sample_value(name, labels) or 0.0

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def make(redis_server, stubs, embedder):
    handles: list[Handle] = []
    redis_server.flush()

    def _make(mutate=None, *, redis_url=None, embedders=None, **embeddings) -> Handle:
        cfg = emb_config(redis_url or redis_server.url, stubs, **embeddings)
        if mutate:
            mutate(cfg)
        h = Handle(cfg, embedder=embedder, embedders={"fake": CountingEmbedder()} if embedders is None else embedders)
        handles.append(h)
        return h

    yield _make
    for h in handles:
        h.stop()


# --- shapes ----------------------------------------------------------------------------------------------------------

def test_local_model_float_and_base64_through_the_sdk(make, embedder):
    g = make()
    c = g.client()
    texts = ["How do I reset my password?", "Where is the refund policy?"]
    r = c.embeddings.create(model="minilm", input=texts, encoding_format="float")
    assert r.object == "list" and r.model == "minilm" and [d.index for d in r.data] == [0, 1]
    assert all(d.object == "embedding" and len(d.embedding) == 384 for d in r.data)
    want = embedder.plain().embed_many(texts)  # the model's own vectors, no typo correction
    assert np.allclose(np.array([d.embedding for d in r.data]), want, atol=1e-5)
    assert r.usage.prompt_tokens == sum(embedder.token_count(t) for t in texts) == r.usage.total_tokens
    # the SDK's default is base64 (it decodes with numpy); the vectors are the same
    b = c.embeddings.create(model="minilm", input="How do I reset my password?")
    assert np.allclose(b.data[0].embedding, want[0], atol=1e-5)
    raw = g.raw({"model": "minilm", "input": "How do I reset my password?", "encoding_format": "base64"}).json()
    vec = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert vec.shape == (384,) and np.allclose(vec, want[0], atol=1e-5)
    # dimensions: the model's own size is accepted
    assert len(c.embeddings.create(model="minilm", input="hi", dimensions=384, encoding_format="float")
               .data[0].embedding) == 384
    assert g.metric("gateway_embedding_requests_total", model="minilm", tenant="acme", status="200") == 4


def test_models_lists_the_embeddings_models_a_tenant_may_use(make):
    g = make()
    ids = {m.id for m in g.client().models.list().data}
    assert {"minilm", "titan"} <= ids and "plain" in ids  # embeddings models beside the chat routes
    assert {m.id for m in g.client("globex").models.list().data} == {"plain"}  # narrowed by the tenant's models


def test_remote_server_through_the_openai_embedder():
    srv = FakeServer(dim=6)
    try:
        from serving.gateway.embed import OpenAIEmbedder

        e = OpenAIEmbedder(srv.url, "m", dimensions=None, timeout_s=5)
        v = e.embed_many(["abc", "abcdef"])
        assert e.dim == 6 and v.shape == (2, 6)  # the size of the first answer
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    finally:
        srv.stop()


def test_remote_model_end_to_end(make):
    srv = FakeServer()
    try:
        g = make(lambda c: c["embeddings"]["models"]["fake"].update(baseUrl=srv.url), embedders={})
        r = g.client().embeddings.create(model="fake", input=["one", "three"], encoding_format="float")
        assert [len(d.embedding) for d in r.data] == [DIM, DIM] and srv.requests == 1
        assert r.usage.prompt_tokens == 1 + 2  # remote models: one token per 4 UTF-8 bytes, rounded up
    finally:
        srv.stop()


# --- micro-batching ---------------------------------------------------------------------------------------------------

def test_concurrent_requests_share_embedder_calls_and_each_gets_its_own_vector(make):
    g = make()
    fake = g.gw.embeddings_api.models["fake"].default
    n = 48

    async def go():
        c = g.aclient()
        try:
            return await asyncio.gather(*(c.embeddings.create(model="fake", input=f"text {i}",
                                                              encoding_format="float") for i in range(n)))
        finally:
            await c.close()

    results = asyncio.run(go())
    for i, r in enumerate(results):
        assert r.data[0].embedding[0] == float(i)  # scattered back to the caller that sent it
    assert sum(fake.calls) == n
    assert len(fake.calls) < n / 3, fake.calls  # batched: far fewer embedder calls than requests
    assert g.metric("gateway_embedding_batch_size_count", model="fake") == len(fake.calls)
    assert g.metric("gateway_embedding_inputs_total", model="fake", tenant="acme", source="embedded") == n


def test_one_request_with_many_inputs_keeps_their_order(make):
    g = make()
    texts = [f"item {i}" for i in range(150)] + ["item 3"]  # a duplicate is embedded once
    r = g.client().embeddings.create(model="fake", input=texts, encoding_format="float")
    assert [d.embedding[0] for d in r.data] == [float(t.split()[1]) for t in texts]
    fake = g.gw.embeddings_api.models["fake"].default
    assert sum(fake.calls) == 150 and max(fake.calls) <= 64


# --- cache -----------------------------------------------------------------------------------------------------------

def test_cache_hit_and_miss(make):
    g = make()
    c = g.client()
    fake = g.gw.embeddings_api.models["fake"].default
    first = c.embeddings.create(model="fake", input=["text 1", "text 2"], encoding_format="float")
    g.settle()
    assert g.metric("gateway_cache_lookups_total", kind="embeddings", result="miss") == 2
    second = c.embeddings.create(model="fake", input=["text 2", "text 1", "text 5"], encoding_format="float")
    assert sum(fake.calls) == 3  # only "text 5" was embedded again
    assert g.metric("gateway_cache_lookups_total", kind="embeddings", result="hit") == 2
    assert second.data[0].embedding == first.data[1].embedding and second.data[2].embedding[0] == 5.0
    assert g.metric("gateway_embedding_inputs_total", model="fake", tenant="acme", source="cache") == 2


def test_cache_off_embeds_every_time(make):
    g = make(cache={"enabled": False})
    c = g.client()
    for _ in range(2):
        c.embeddings.create(model="fake", input="text 1")
        g.settle()
    assert sum(g.gw.embeddings_api.models["fake"].default.calls) == 2


def test_redis_killed_mid_run_fails_open():
    srv = RedisServer()
    g = None
    try:
        cfg = emb_config(srv.url, no_stubs())
        cfg["limiter"] = {"enabled": True, "failMode": "closed", "timeoutMs": 100, "warmConnections": 0}
        g = Handle(cfg, embedders={"fake": CountingEmbedder(0)})
        c = g.client()
        c.embeddings.create(model="fake", input="text 1")
        g.settle()
        c.embeddings.create(model="fake", input="text 1")
        assert sum(g.gw.embeddings_api.models["fake"].default.calls) == 1  # a hit
        srv.proc.kill()
        srv.proc.wait(timeout=10)
        r = c.embeddings.create(model="fake", input=["text 1", "text 7"], encoding_format="float")
        assert [d.embedding[0] for d in r.data] == [1.0, 7.0]  # computed: a dead cache is a miss, not a 5xx
        g.settle()
        assert g.metric("gateway_cache_errors_total", kind="embeddings", op="get") == 1
        assert g.metric("gateway_cache_errors_total", kind="embeddings", op="put") == 1
    finally:
        if g is not None:
            g.stop()
        if srv.proc.poll() is None:
            srv.stop()


# --- failures --------------------------------------------------------------------------------------------------------

def test_embedding_server_down_is_a_503_in_openais_shape(make):
    g = make(lambda c: c["embeddings"]["models"]["fake"].update(baseUrl=f"http://127.0.0.1:{free_port()}/v1"),
             embedders={})
    with pytest.raises(openai.InternalServerError) as err:
        g.client().embeddings.create(model="fake", input="text 1")
    e = err.value
    assert e.status_code == 503 and e.response.headers["retry-after"] == "1"
    body = e.response.json()["error"]
    assert body == {"message": "The embeddings model 'fake' is unavailable right now; retry shortly.",
                    "type": "api_error", "param": None, "code": "embedding_unavailable"}
    assert g.metric("gateway_embedding_requests_total", model="fake", tenant="acme", status="503") == 1


def test_a_full_queue_is_a_503(make):
    g = make(batch={"maxBatch": 4, "maxQueue": 4, "maxWaitMs": 5})
    with pytest.raises(openai.InternalServerError) as err:
        g.client().embeddings.create(model="fake", input=[f"text {i}" for i in range(5)])
    assert err.value.status_code == 503


# --- every 4xx -------------------------------------------------------------------------------------------------------

LONG = "word " * 300


@pytest.mark.parametrize("body,status,code,param,message", [
    ({"model": "minilm", "input": ""}, 400, "invalid_value", "input", "'input' cannot be an empty string."),
    ({"model": "minilm", "input": []}, 400, "invalid_value", "input", "'input' cannot be an empty array."),
    ({"model": "minilm", "input": ["a", ""]}, 400, "invalid_value", "input", "'input[1]' cannot be an empty string."),
    ({"model": "minilm", "input": ["a"] * 2049}, 400, "too_many_inputs", "input",
     "'input' has 2049 items, above the limit of 2048 per request."),
    ({"model": "minilm", "input": [1, 2, 3]}, 400, "unsupported_input", "input",
     "Token arrays are not supported by this gateway: send the input as text (a string or an array of strings)."),
    ({"model": "minilm", "input": [[1, 2], [3]]}, 400, "unsupported_input", "input",
     "Token arrays are not supported by this gateway: send the input as text (a string or an array of strings)."),
    ({"model": "minilm", "input": ["a", 3]}, 400, "invalid_type", "input", "'input[1]' must be a string, not int."),
    ({"model": "minilm", "input": {"a": 1}}, 400, "invalid_type", "input",
     "'input' must be a string or an array of strings."),
    ({"model": "minilm"}, 400, "missing_required_parameter", "input", "'input' is required."),
    ({"input": "hi"}, 400, "missing_required_parameter", "model", "'model' is required."),
    ({"model": 5, "input": "hi"}, 400, "invalid_type", "model", "'model' must be a non-empty string."),
    ({"model": "minilm", "input": LONG}, 400, "context_length_exceeded", "input",
     "'input' has 302 tokens, above the limit of 256 tokens of model 'minilm'; split it into shorter texts."),
    ({"model": "fake", "input": ["ok", "x" * 101]}, 400, "context_length_exceeded", "input",
     ("'input[1]' has 101 characters, above the limit of 100 characters of model 'fake'; split it into shorter "
     "texts.")),
    ({"model": "nope", "input": "hi"}, 404, "model_not_found", "model",
     "The embeddings model 'nope' does not exist or this API key may not use it."),
    ({"model": "plain", "input": "hi"}, 404, "model_not_found", "model",
     "The embeddings model 'plain' does not exist or this API key may not use it."),
    ({"model": "minilm", "input": "hi", "encoding_format": "int8"}, 400, "invalid_value", "encoding_format",
     "'encoding_format' must be 'float' or 'base64', not 'int8'."),
    ({"model": "minilm", "input": "hi", "dimensions": 256}, 400, "invalid_value", "dimensions",
     "Model 'minilm' does not support dimensions=256; it returns vectors of 384 dimensions."),
    ({"model": "nodim", "input": "hi", "dimensions": 8}, 400, "invalid_value", "dimensions",
     "Model 'nodim' does not support dimensions=8; it returns vectors of the embedding server's own size."),
    ({"model": "titan", "input": "hi", "dimensions": 300}, 400, "invalid_value", "dimensions",
     "Model 'titan' does not support dimensions=300; it returns vectors of 256, 512, 1024 dimensions."),
    ({"model": "minilm", "input": "hi", "dimensions": 0}, 400, "invalid_type", "dimensions",
     "'dimensions' must be a positive integer."),
    ({"model": "minilm", "input": "hi", "user": 7}, 400, "invalid_type", "user", "'user' must be a string."),
    ({"model": "minilm", "input": "hi", "truncate": True}, 400, "unknown_parameter", "truncate",
     ("Unrecognized request argument supplied: truncate. This endpoint takes model, input, encoding_format, "
     "dimensions and user.")),
])
def test_bad_requests(make, body, status, code, param, message):
    g = make()
    r = g.raw(body)
    assert r.status_code == status
    assert r.json() == {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    assert sum(g.gw.embeddings_api.models["fake"].default.calls) == 0


def test_a_model_the_tenant_may_not_use_is_404(make):
    g = make()
    with pytest.raises(openai.NotFoundError) as err:
        g.client("globex").embeddings.create(model="minilm", input="hi")
    assert err.value.response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("body,message", [
    (b"{not json", "The request body is not valid JSON."),
    (b"[1, 2]", "The request body must be a JSON object."),
])
def test_bad_bodies(make, body, message):
    r = make().raw(body)
    assert r.status_code == 400 and r.json()["error"]["message"] == message


def test_auth_and_token_budget(make, redis_server):
    g = make()
    r = g.raw({"model": "minilm", "input": "hi"}, key="sk-wrong")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    # tenant "tiny": 1,000 tokens and 2 requests per minute; 4 bytes per token estimated for remote models
    r = g.raw({"model": "fake", "input": ["x" * 100] * 41}, key="tiny")
    assert r.status_code == 400 and r.json()["error"] == {
        "message": "This request has 1025 input tokens, more than this API key's budget of 1000 tokens per minute; "
                   "send fewer or shorter inputs.", "type": "invalid_request_error", "param": "input",
        "code": "exceeds_token_budget"}
    assert g.raw({"model": "fake", "input": ["x" * 100] * 30}, key="tiny").status_code == 200
    r = g.raw({"model": "fake", "input": ["x" * 100] * 30}, key="tiny")
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"


def test_the_tenants_max_prompt_tokens_applies_to_each_input_before_anything_is_reserved(make, redis_server,
                                                                                          embedder):
    import redis

    g = make(lambda c: c["tenants"]["limits"]["tiny"].update(maxPromptTokens=5))
    text = "one two three four five six"
    n = embedder.token_count(text)
    r = g.raw({"model": "minilm", "input": ["hi", text]}, key="tiny")
    assert r.status_code == 400 and r.json()["error"] == {
        "message": f"'input[1]' has {n} tokens, above this API key's limit of 5 tokens per text (maxPromptTokens); "
                   "split it into shorter texts.", "type": "invalid_request_error", "param": "input",
        "code": "context_length_exceeded"}
    r = g.raw({"model": "fake", "input": "x" * 24}, key="tiny")  # 6 tokens at 4 bytes a token
    assert r.status_code == 400 and r.json()["error"]["message"] == (
        "'input' has 6 tokens (estimated at 4 UTF-8 bytes a token), above this API key's limit of 5 tokens per "
        "text (maxPromptTokens); split it into shorter texts.")
    assert redis.Redis.from_url(redis_server.url).keys("gw:lim:{tiny}:*") == [], "nothing reserved"
    assert sum(g.gw.embeddings_api.models["fake"].default.calls) == 0
    assert g.raw({"model": "fake", "input": ["x" * 20, "y" * 20]}, key="tiny").status_code == 200, "per text"


def test_embeddings_off_is_a_404(redis_server, stubs):
    cfg = base_config(redis_server.url, stubs)
    from serving.gateway.app import Gateway, create_app

    srv = ServerThread(create_app(Gateway(parse_config(cfg))))
    try:
        r = httpx.post(srv.url + "/v1/embeddings", json={"model": "minilm", "input": "hi"},
                       headers={"authorization": f"Bearer {KEYS['acme']}"})
        assert r.status_code == 404
    finally:
        srv.stop()


# --- config ----------------------------------------------------------------------------------------------------------

def _problems(mutate) -> list[str]:
    cfg = base_config("redis://127.0.0.1:1/0", no_stubs())
    cfg["embeddings"] = {"enabled": True, "models": {"minilm": {"kind": "local"}}}
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    return [line.removeprefix("  - ") for line in str(err.value).splitlines()[1:]]


@pytest.mark.parametrize("mutate,want", [
    (lambda c: c["embeddings"].update(models={}),
     "embeddings.models: required when embeddings.enabled is true: at least one model, e.g. {minilm: {kind: local}}"),
    (lambda c: c["embeddings"]["models"].update(m={"kind": "local", "threads": 0}),
     "embeddings.models.m.threads = 0: expected a number > 0"),
    (lambda c: c["embeddings"]["models"].update(t={"kind": "bedrock", "dimensions": 300}),
     "embeddings.models.t.dimensions = 300: expected one of 256, 512 or 1024"),
    (lambda c: c["embeddings"]["models"].update(o={"kind": "openai", "model": "x"}),
     "embeddings.models.o.baseUrl: required"),
    (lambda c: c["embeddings"]["models"].update(o={"kind": "openai", "model": "x", "baseUrl": "ftp://x"}),
     "embeddings.models.o.baseUrl = 'ftp://x': http(s)://HOST[:PORT]/v1 (the server's API base)"),
    (lambda c: c["embeddings"]["models"].update(m={"kind": "local", "thread": 2}),
     'embeddings.models.m.thread: unknown key (did you mean "threads"?)'),
    (lambda c: c["embeddings"]["models"].update({"bad name!": {"kind": "local"}}),
     "embeddings.models.bad name! = 'bad name!': names are 1-128 characters: letters, digits and . _ : / -"),
    (lambda c: c["embeddings"].update(batch={"maxBatch": 0}),
     "embeddings.batch.maxBatch = 0: expected a number >= 1"),
    (lambda c: c["embeddings"].update(batch={"maxWaitMs": -1}),
     "embeddings.batch.maxWaitMs = -1: expected a number >= 0.0"),
    (lambda c: c["embeddings"].update(batch={"maxBatch": 64, "maxQueue": 10}),
     "embeddings.batch.maxQueue = 10: must be >= maxBatch (64): a full batch must fit in the queue"),
    (lambda c: c["embeddings"].update(cache={"ttlSeconds": 0}),
     "embeddings.cache.ttlSeconds = 0: expected a number > 0"),
    (lambda c: c["tenants"]["limits"].update(x={"models": ["nope"]}),
     ("tenants.limits.x.models[0] = 'nope': unknown route or embeddings model; expected one of: cached, cascade, "
     "failover, large, minilm, plain, small")),
])
def test_config_problems(mutate, want):
    assert _problems(mutate) == [want]


def test_config_accepts_the_contract_example():
    cfg = base_config("redis://127.0.0.1:1/0", no_stubs())
    cfg["embeddings"] = {
        "enabled": True,
        "models": {"minilm": {"kind": "local"},
                   "bge-base": {"kind": "openai", "baseUrl": "http://embeddings.genai-rag.svc:8080/v1",
                                "model": "BAAI/bge-base-en-v1.5"},
                   "titan-v2": {"kind": "bedrock", "modelId": "amazon.titan-embed-text-v2:0", "dimensions": 1024}},
        "cache": {"enabled": True, "ttlSeconds": 604800},
        "batch": {"maxBatch": 64, "maxWaitMs": 5},
    }
    cfg["tenants"]["limits"]["acme"] = {"models": ["plain", "bge-base"]}
    e = parse_config(cfg).embeddings
    assert e.models["bge-base"].dimensions is None and e.models["titan-v2"].dimensions == 1024
    assert (e.batch.max_batch, e.batch.max_wait_ms, e.cache.ttl_seconds) == (64, 5.0, 604800)


def test_cache_hits_are_not_charged(make):
    g = make(lambda c: c["tenants"]["limits"]["tiny"].update(requestsPerMinute=100))
    a = {"model": "fake", "input": ["a" * 100] * 15 + ["text 1"]}  # 15 x 25 + 2 = 377 tokens (estimated)
    assert g.raw(a, key="tiny").status_code == 200
    g.settle()
    assert g.raw(a, key="tiny").status_code == 200  # all hits: reserved, then given back
    g.settle()
    b = {"model": "fake", "input": [f"b {i} " + "b" * 94 for i in range(20)]}  # 500 tokens: fits only after the refund
    assert g.raw(b, key="tiny").status_code == 200


def test_cache_keys_follow_the_model_and_size_not_the_public_name():
    from serving.gateway.config import LocalEmbeddingModel, OpenAIEmbeddingModel
    from serving.gateway.embeddings_api import cache_key, identity

    one = OpenAIEmbeddingModel(kind="openai", baseUrl="http://e:8080/v1", model="BAAI/bge-base-en-v1.5")
    same = OpenAIEmbeddingModel(kind="openai", baseUrl="http://e:8080/v1/", model="BAAI/bge-base-en-v1.5")
    other = OpenAIEmbeddingModel(kind="openai", baseUrl="http://e:8080/v1", model="BAAI/bge-large-en-v1.5")
    assert identity(one) == identity(same) != identity(other)
    assert identity(LocalEmbeddingModel(kind="local")) == "local:all-MiniLM-L6-v2"
    k = cache_key(identity(one), 768, "hello")
    assert k.startswith("gw:emb:") and k != cache_key(identity(one), 384, "hello") != cache_key(identity(other), 768,
                                                                                                "hello")


def test_the_local_model_answers_without_the_semantic_caches_typo_correction(make, embedder):
    g = make()
    text = "How do I reset my passwrod?"
    r = g.client().embeddings.create(model="minilm", input=text, encoding_format="float")
    v = np.array(r.data[0].embedding)
    assert np.allclose(v, embedder.plain().embed_many([text])[0], atol=1e-5)
    assert not np.allclose(v, embedder.embed(text), atol=1e-3)  # the semantic cache's view spells it "password"
