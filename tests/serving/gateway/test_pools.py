"""The pool controller (serving/gateway/pools.py) against fake vLLM replicas (tests/kit/fake_vllm.py) and a real
redis-server: wake on demand, LRU eviction, adapter loads, held requests, failures and replicas that die."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import random
import threading
import time

import httpx
import pytest
import redis as redis_sync

from serving.gateway.config import ConfigError, parse_config
from serving.gateway.pool_policy import DEFAULT_POLICY
from tests.kit.fake_vllm import EngineSpec, FakeReplica, Knobs
from tests.serving.gateway.conftest import KEYS, chat, sse_events

ADAPTERS = {"sup-en": "s3://models/adapters/sup-en", "sup-fr": "s3://models/adapters/sup-fr",
            "sup-de": "s3://models/adapters/sup-de"}


@pytest.fixture
def fakes():
    made: list[FakeReplica] = []

    def _make(engines=("llama", "qwen", "mistral"), *, awake=(), gpu_mb=2000, **knobs) -> FakeReplica:
        specs = {e: EngineSpec(weights_mb=1000, kv_mb=500, asleep=e not in awake) for e in engines}
        f = FakeReplica(specs, gpu_mb=gpu_mb, knobs=Knobs(**knobs)).start()
        made.append(f)
        return f

    yield _make
    for f in made:
        f.stop()


def pool(replicas, engines=("llama", "qwen", "mistral"), **kw) -> dict:
    eng = {e: {"port": 8000 + i} for i, e in enumerate(engines)}
    eng[engines[0]]["adapters"] = dict(ADAPTERS)
    return {"replicas": {"urls": [r.url for r in replicas]}, "engines": eng, "hotEnginesPerReplica": 1,
            "maxLorasPerEngine": 2, "holdTimeoutSeconds": 5, "loadTimeoutSeconds": 5, **kw}


@pytest.fixture
def pool_gateway(make_gateway):
    def _make(replicas, *, mutate=None, **kw):
        def cfg(c):
            c["pools"] = {"shared": pool(replicas, **kw)}
            if mutate:
                mutate(c)

        return make_gateway(cfg, with_embedder=False)

    return _make


def _post(url: str, body: dict, timeout: float = 15) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=timeout,
                      headers={"authorization": f"Bearer {KEYS['acme']}"})


def _state(redis_server) -> dict[str, str]:
    r = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    return r.hgetall("gw:pool:{shared}:state")


def test_cold_engine_is_woken_served_and_evicted_by_the_next(fakes, pool_gateway, redis_server):
    f = fakes()
    gw = pool_gateway([f])
    assert set(_state(redis_server).values()) == {"warm"}  # probed at startup: every engine asleep
    r = gw.post(chat(model="llama"))
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "llama" and r.headers["x-gateway-upstream"].startswith("shared/")
    assert gw.post(chat(model="llama")).status_code == 200
    assert f.count("wake_up", "llama") == 1  # hot: no second wake
    r = gw.post(chat(model="qwen", stream=True))
    assert r.status_code == 200 and sse_events(r.text)[-1] == "[DONE]"
    assert f.log == [("wake_up", "llama"), ("sleep", "llama"), ("wake_up", "qwen")]
    st = _state(redis_server)
    assert st[f"127.0.0.1:{f.base_port}|qwen"] == "hot" and st[f"127.0.0.1:{f.base_port}|llama"] == "warm"
    gw.settle()
    m = gw.metric
    assert m("gateway_pool_wakes_total", pool="shared", model="llama", outcome="ok") == 1
    assert m("gateway_pool_evictions_total", pool="shared", model="llama") == 1
    assert m("gateway_pool_model_state", pool="shared", model="qwen", state="hot") == 1
    assert m("gateway_pool_model_state", pool="shared", model="llama", state="warm") == 1
    assert m("gateway_pool_model_state", pool="shared", model="sup-en", state="cold") == 1
    assert m("gateway_pool_held_requests", pool="shared", model="qwen") == 0
    assert m("gateway_pool_hold_seconds_count", pool="shared", model="qwen") == 1
    assert m("gateway_pool_load_seconds_count", pool="shared", model="qwen", op="wake") == 1
    text = gw.client.get("/metrics").text
    for name in ("gateway_pool_model_state", "gateway_pool_wakes_total", "gateway_pool_loads_total",
                 "gateway_pool_evictions_total", "gateway_pool_load_seconds", "gateway_pool_held_requests",
                 "gateway_pool_hold_seconds"):
        assert name in text
    assert {m["id"] for m in gw.client.get("/v1/models", headers={"authorization": f"Bearer {KEYS['acme']}"})
            .json()["data"]} >= {"llama", "qwen", "mistral", "sup-en", "sup-fr", "sup-de"}
    assert f.violations == []


def test_a_wake_that_does_not_fit_the_gpu_fails_clearly(fakes, pool_gateway):
    f = fakes(awake=("qwen",))  # 2,000 MB: one awake engine (1,500 MB) fits, not two
    gw = pool_gateway([f], hotEnginesPerReplica=2)  # the pool thinks two fit: the engine refuses the second
    r = gw.post(chat(model="llama"))
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert err["code"] == "model_load_failed" and r.headers["retry-after"] == "1"
    assert err["message"] == ("The model 'llama' could not be loaded on pool 'shared': the engine answered wake with "
                              "HTTP 500: Internal Server Error. Retry; the pool will try again.")
    assert f.stats()["used_mb"] == 1500 and f.stats()["engines"]["llama"]["asleep"]
    assert gw.post(chat(model="qwen")).status_code == 200  # what was hot still serves


def test_tenant_model_lists_apply_to_pool_models(fakes, pool_gateway):
    f = fakes(awake=("llama",))
    gw = pool_gateway([f], mutate=lambda c: c["tenants"]["limits"].update(globex={"models": ["sup-en"]}))
    r = gw.post(chat(model="llama"), key="globex")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert gw.post(chat(model="sup-en"), key="globex").status_code == 200
    listed = gw.client.get("/v1/models", headers={"authorization": f"Bearer {KEYS['globex']}"}).json()["data"]
    assert [m["id"] for m in listed] == ["sup-en"]
    assert f.count("chat", "llama") == 0


def test_lru_order_under_a_zipf_trace(fakes, pool_gateway):
    engines = ("e0", "e1", "e2", "e3", "e4")
    f = fakes(engines, gpu_mb=3000, wake_s=0.005, sleep_s=0.002)
    gw = pool_gateway([f], engines=engines, hotEnginesPerReplica=2, eviction="lru")
    rng = random.Random(7)
    weights = [1 / (k + 1) ** 1.1 for k in range(len(engines))]  # Zipf-like popularity
    trace = rng.choices(engines, weights, k=40)
    hot: dict[str, int] = {}  # the reference LRU: engine -> last use
    expected: list[tuple[str, str]] = []
    for i, model in enumerate(trace):
        if model not in hot:
            if len(hot) == 2:
                victim = min(hot, key=hot.get)
                del hot[victim]
                expected.append(("sleep", victim))
            expected.append(("wake_up", model))
        hot[model] = i
        r = gw.post(chat(model=model, max_tokens=2))
        assert r.status_code == 200, r.text
    assert f.log == expected
    assert len([e for e in expected if e[0] == "sleep"]) >= 5  # the trace did exercise eviction
    assert f.violations == []


def test_adapters_load_on_demand_and_the_least_recently_used_is_unloaded(fakes, pool_gateway):
    f = fakes()
    gw = pool_gateway([f])
    for model in ("sup-en", "sup-fr", "sup-en", "sup-de"):
        r = gw.post(chat(model=model))
        assert r.status_code == 200 and r.json()["model"] == model, r.text
    assert f.log == [("wake_up", "llama"), ("load_lora_adapter", "sup-en"), ("load_lora_adapter", "sup-fr"),
                     ("unload_lora_adapter", "sup-fr"), ("load_lora_adapter", "sup-de")]
    gw.settle()
    assert gw.metric("gateway_pool_loads_total", pool="shared", model="sup-de", outcome="ok") == 1
    assert gw.metric("gateway_pool_evictions_total", pool="shared", model="sup-fr") == 1
    assert gw.metric("gateway_pool_model_state", pool="shared", model="sup-fr", state="cold") == 1


def test_a_failed_load_fails_the_held_requests_clearly_and_the_next_request_succeeds(fakes, pool_gateway):
    f = fakes(awake=("llama",), load_s=1.0, fail_next_load=1)  # long enough for all six to be held
    gw = pool_gateway([f])
    with cf.ThreadPoolExecutor(6) as ex:
        rs = list(ex.map(lambda _: gw.post(chat(model="sup-en")), range(6)))
    assert [r.status_code for r in rs] == [502] * 6
    err = rs[0].json()["error"]
    assert err["code"] == "model_load_failed" and err["type"] == "api_error" and err["param"] == "model"
    assert "adapter 'sup-en' of 'llama'" in err["message"] and "No adapter found" in err["message"]
    assert f.count("load_lora_adapter") == 1  # one load for the six held requests
    r = gw.post(chat(model="sup-en"))
    assert r.status_code == 200, r.text
    assert f.count("load_lora_adapter") == 2
    gw.settle()
    assert gw.metric("gateway_pool_loads_total", pool="shared", model="sup-en", outcome="error") == 1


def test_a_replica_dying_mid_wake_fails_over_to_another(fakes, pool_gateway, redis_server):
    dies = fakes(die_on_load=True)
    other = fakes(awake=("qwen",))  # its slot is taken: the free replica is tried first
    gw = pool_gateway([dies, other])
    t0 = time.monotonic()
    r = gw.post(chat(model="llama"))
    assert r.status_code == 200, r.text
    assert time.monotonic() - t0 < 5
    assert dies.dead and dies.count("wake_up", "llama") == 1
    assert other.log == [("sleep", "qwen"), ("wake_up", "llama")]
    st = _state(redis_server)
    assert not [k for k in st if k.startswith(f"127.0.0.1:{dies.base_port}|")]  # dropped from the state
    assert st[f"127.0.0.1:{other.base_port}|llama"] == "hot"
    assert gw.post(chat(model="llama")).status_code == 200  # and the pool keeps serving
    gw.settle()
    assert gw.metric("gateway_pool_wakes_total", pool="shared", model="llama", outcome="error") == 1


def test_a_hot_replica_that_stops_answering_is_dropped_and_the_next_request_goes_elsewhere(fakes, pool_gateway,
                                                                                           redis_server):
    a, b = fakes(awake=("llama",)), fakes(awake=("qwen",))
    gw = pool_gateway([a, b])
    assert gw.post(chat(model="llama")).status_code == 200
    a.stop()  # the pod is gone while its engine was hot
    r = gw.post(chat(model="llama"))
    assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error", r.text
    gw.settle()
    assert not [k for k in _state(redis_server) if k.startswith(f"127.0.0.1:{a.base_port}|")]
    r = gw.post(chat(model="llama"))
    assert r.status_code == 200, r.text
    assert b.log == [("sleep", "qwen"), ("wake_up", "llama")]


def test_without_the_shared_state_pool_requests_get_503(fakes, make_gateway):
    from tests.serving.gateway.conftest import free_port

    f = fakes()

    def cfg(c):
        c["redis"]["url"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        c["limiter"]["enabled"] = False
        c["pools"] = {"shared": pool([f])}

    gw = make_gateway(cfg, with_embedder=False)
    r = gw.post(chat(model="llama"))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "pool_state_unavailable"
    assert f.calls == {} or set(k[0] for k in f.calls) <= {"is_sleeping"}


def test_the_only_replica_dying_gives_a_clear_error_within_the_bound(fakes, pool_gateway):
    f = fakes(die_on_load=True)
    gw = pool_gateway([f], holdTimeoutSeconds=3)
    t0 = time.monotonic()
    r = gw.post(chat(model="llama"))
    assert time.monotonic() - t0 < 3.5
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_replica_available", r.text
    assert "retry-after" in r.headers


def test_eviction_never_removes_a_model_with_requests_in_flight(fakes, pool_gateway):
    f = fakes(token_s=0.04, tokens=15)
    gw = pool_gateway([f])
    out: dict[str, httpx.Response] = {}
    th = threading.Thread(target=lambda: out.setdefault("llama", _post(gw.url, chat(model="llama", stream=True))))
    th.start()
    deadline = time.monotonic() + 5
    while f.stats()["engines"]["llama"]["active"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f.stats()["engines"]["llama"]["active"] == 1
    r = gw.post(chat(model="qwen"))  # needs llama's slot: held until the stream ends
    th.join()
    assert r.status_code == 200, r.text
    assert sse_events(out["llama"].text)[-1] == "[DONE]"
    assert f.violations == []
    assert f.log == [("wake_up", "llama"), ("sleep", "llama"), ("wake_up", "qwen")]


def test_in_flight_entries_expire_so_a_dead_gateway_cannot_pin_a_model(fakes, pool_gateway, redis_server):
    f = fakes()
    gw = pool_gateway([f])
    assert gw.post(chat(model="llama")).status_code == 200
    r = redis_sync.Redis.from_url(redis_server.url)
    key = f"gw:pool:{{shared}}:inflight:127.0.0.1:{f.base_port}|llama"
    r.zadd(key, {"from-a-dead-gateway": time.time() - 1})  # its expiry has passed
    assert gw.post(chat(model="qwen")).status_code == 200  # llama was evicted all the same
    assert f.log[-2:] == [("sleep", "llama"), ("wake_up", "qwen")]
    r.zadd(f"gw:pool:{{shared}}:inflight:127.0.0.1:{f.base_port}|qwen", {"live": time.time() + 60})
    gw2 = pool_gateway([f], holdTimeoutSeconds=0.3)
    assert gw2.post(chat(model="mistral")).status_code == 503  # a live entry does pin it
    assert f.count("sleep", "qwen") == 0


def test_hold_timeout_gives_503_with_retry_after(fakes, pool_gateway):
    f = fakes(wake_s=3.0)
    gw = pool_gateway([f], holdTimeoutSeconds=0.3)
    t0 = time.monotonic()
    r = gw.post(chat(model="llama"))
    assert 0.3 <= time.monotonic() - t0 < 2.5  # not waiting for the wake
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    err = r.json()["error"]
    assert err["code"] == "model_loading" and err["type"] == "api_error"
    assert "'llama'" in err["message"] and "0.3 s" in err["message"]
    assert gw.metric("gateway_pool_held_requests", pool="shared", model="llama") == 0
    assert gw.metric("gateway_pool_hold_seconds_count", pool="shared", model="llama") == 1
    assert gw.metric("gateway_requests_total", route="llama", tenant="acme", status="503") == 1


def test_clients_never_reach_the_engines_admin_endpoints(fakes, pool_gateway):
    f = fakes()
    gw = pool_gateway([f])
    before = dict(f.calls)
    for method, path in [("POST", "/v1/load_lora_adapter"), ("POST", "/v1/unload_lora_adapter"),
                         ("POST", "/sleep?level=1"), ("POST", "/wake_up"), ("GET", "/is_sleeping"),
                         ("POST", "/collective_rpc"), ("POST", "/v1/load_lora_adapter/")]:
        r = gw.client.request(method, path, json={"lora_name": "x", "lora_path": "/tmp/x"},
                              headers={"authorization": f"Bearer {KEYS['acme']}"})
        assert r.status_code == 404, (method, path)
        err = r.json()["error"]
        assert (err["code"], err["type"]) == ("not_found", "invalid_request_error"), (method, path)
    assert dict(f.calls) == before  # nothing was forwarded


def test_dns_replicas_are_probed_and_dropped_when_they_disappear(redis_server):
    from serving.gateway.config import PoolConfig
    from serving.gateway.metrics import Metrics
    from serving.gateway.pools import PoolController

    f = FakeReplica({"llama": EngineSpec(asleep=False), "qwen": EngineSpec()}, host="127.0.0.2").start()
    answers = [["127.0.0.2"]]

    async def resolver(name: str) -> list[str]:
        assert name == "shared.serving.svc.cluster.local"
        return answers[-1]

    async def scenario() -> tuple[dict, dict]:
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        await r.delete("gw:pool:{shared}:state", "gw:pool:{shared}:down")
        cfg = PoolConfig.model_validate({"replicas": {"dns": "shared.serving.svc.cluster.local"},
                                         "engines": {"llama": {"port": f.ports()["llama"]},
                                                     "qwen": {"port": f.ports()["qwen"]}}})
        ctl = PoolController("shared", cfg, r, Metrics(), resolver=resolver)
        await ctl.refresh()
        first = await r.hgetall("gw:pool:{shared}:state")
        answers.append(["127.0.0.3"])  # the pod went away; a new one (not answering yet) came
        await r.hset("gw:pool:{shared}:down", mapping={"127.0.0.9": time.time() - 1, "127.0.0.3": time.time() + 60})
        await ctl.refresh()
        second = await r.hgetall("gw:pool:{shared}:state")
        assert list(await r.hgetall("gw:pool:{shared}:down")) == ["127.0.0.3"]  # expired marks are cleaned up
        await ctl.close()
        await r.aclose()
        return first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        f.stop()
    assert first == {"127.0.0.2|llama": "hot", "127.0.0.2|qwen": "warm"}
    assert second == {}


def test_pool_config_problems_are_listed_with_their_paths(redis_server, stubs):
    from tests.serving.gateway.conftest import base_config

    cfg = base_config(redis_server.url, stubs)
    cfg["tenants"]["limits"]["acme"] = {"models": ["nope"]}
    cfg["pools"] = {
        "Bad_Name": {"replicas": {}, "engines": {"plain": {"port": 8000}}},
        "shared": {"replicas": {"dns": "x.svc", "urls": ["ftp://h"]}, "eviction": "fifo",
                   "hotEnginesPerReplica": 1,
                   "engines": {"llama": {"port": 8000, "keepHot": True, "adapters": {"qwen": "s3://a", "ok": " "}},
                               "qwen": {"port": 8000, "keepHot": True}}},
    }
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    text = str(e.value)
    for needle in ("pools.Bad_Name = ", "a pool name is 1-63 lowercase letters",
                   "pools.Bad_Name.replicas", "set exactly one of dns",
                   "pools.Bad_Name.engines.plain", "already a route",
                   "pools.shared.replicas.urls[0]", "http://HOST[:PORT]",
                   "pools.shared.eviction", "one of: cost-aware, lfu, lru",
                   "pools.shared.hotEnginesPerReplica", ">= the keepHot engines (2: llama, qwen)",
                   "pools.shared.engines.qwen.port", "already the port of engine 'llama'",
                   "pools.shared.engines.qwen", "already used at pools.shared.engines.llama.adapters.qwen",
                   "pools.shared.engines.llama.adapters.ok", "the adapter's lora_path",
                   "tenants.limits.acme.models[0]", "unknown model"):
        assert needle in text, (needle, text)
    good = base_config(redis_server.url, stubs)
    good["tenants"]["limits"]["acme"] = {"models": ["sup-en", "plain"]}
    good["pools"] = {"shared": {"replicas": {"urls": ["http://127.0.0.1:9101"]},
                                "engines": {"llama": {"port": 8000, "adapters": {"sup-en": "s3://a"}}}}}
    parsed = parse_config(good)
    p = parsed.pools["shared"]
    assert (p.hot_engines_per_replica, p.max_loras_per_engine, p.sleep_level, p.eviction, p.hold_timeout_seconds,
            p.load_timeout_seconds, p.replicas.refresh_seconds) == (1, 4, 1, DEFAULT_POLICY, 60.0, 300.0, 10.0)


def test_a_sessions_turns_stay_on_one_hot_replica_and_sessions_spread(fakes, pool_gateway):
    """Prefix-affinity among the replicas where the model is already hot: the same session (or prompt prefix)
    lands on the same replica, so vLLM's prefix cache there serves the shared tokens; other sessions spread."""
    a, b = fakes(awake=("llama",)), fakes(awake=("llama",))
    gw = pool_gateway([a, b])
    seen: dict[str, set[str]] = {}
    for i in range(12):
        for turn in range(3):
            r = gw.post(chat(f"turn {turn}", model="llama"), headers={"x-session-id": f"s{i}"})
            assert r.status_code == 200, r.text
            seen.setdefault(f"s{i}", set()).add(r.headers["x-gateway-upstream"])
    assert all(len(v) == 1 for v in seen.values()), seen
    assert len({next(iter(v)) for v in seen.values()}) == 2, "12 sessions over 2 hot replicas use both"
    assert a.count("wake_up", "llama") == b.count("wake_up", "llama") == 0  # both were hot: no wake
