"""Fixtures for the gateway tests: a real redis-server per session, stub upstreams and gateways on free loopback
ports (uvicorn in background threads), and helpers to build configs."""

from __future__ import annotations

import asyncio
import copy
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from serving.gateway.auth import hash_key
from serving.gateway.stub import StubState, make_stub
from tests.kit.net import free_port, wait_port  # noqa: F401 (re-exported to the tests of this folder)

KEYS = {"acme": "sk-acme-test-key", "globex": "sk-globex-test-key", "tiny": "sk-tiny-test-key"}


class RedisServer:
    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: run `make setup` (scripts/setup.d/20-redis.sh)")
        self.port = free_port()
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--protected-mode", "yes"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class ServerThread:
    """uvicorn serving an ASGI app from a background thread (its own event loop)."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    access_log=False, lifespan="on", loop="asyncio",
                                                    timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Stub:
    def __init__(self, name: str):
        self.state = StubState(name)
        self.server = ServerThread(make_stub(self.state))
        self.url = self.server.url + "/v1"

    def reset(self) -> None:
        s = self.state
        s.status, s.chunks, s.delay_ms, s.hang, s.cut_after = 200, 20, 0.0, False, -1
        s.text, s.logprob = "Hello from the stub upstream.", -0.1
        s.requests = s.completed = s.tokens_served = 0
        s.last_body = None


@pytest.fixture(scope="session")
def redis_server():
    srv = RedisServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def stubs():
    s = {n: Stub(n) for n in ("a", "b", "c")}
    yield s
    for st in s.values():
        st.server.stop()


@pytest.fixture
def stub_a(stubs):
    for s in stubs.values():
        s.reset()
    return stubs["a"]


def base_config(redis_url: str, stubs: dict[str, Stub]) -> dict:
    """A config with upstreams a/b/c, a plain route, a fallback route, a cascade and cached routes."""
    return {
        "server": {"metricsPort": 0, "drainTimeoutSeconds": 5},
        "redis": {"url": redis_url},
        "tenants": {
            "keys": {t: [hash_key(k)] for t, k in KEYS.items()},
            "limits": {"tiny": {"requestsPerMinute": 2, "tokensPerMinute": 1000, "maxTokens": 100}},
        },
        "limiter": {"failMode": "closed"},
        # generous cache timeouts: on a loaded 2-core runner a lookup may take longer than the production defaults
        # (100 ms store, 1 s embedding) and turn an expected hit into a miss; tests of the timeouts set their own
        "semanticCache": {"timeoutMs": 3000, "embedder": {"timeoutMs": 15000}},
        "upstreams": {n: {"kind": "openai", "baseUrl": s.url, "model": f"model-{n}",
                          "timeouts": {"connectSeconds": 1, "readSeconds": 2},
                          "circuitBreaker": {"failureThreshold": 2, "cooldownSeconds": 30}}
                      for n, s in stubs.items()},
        "routes": {
            "plain": {"targets": [{"upstream": "a"}], "maxTokens": 512, "maxPromptTokens": 200},
            "failover": {"targets": [{"upstream": "a"}], "fallbacks": ["b"],
                         "retryBudget": {"ratio": 1.0, "minPerSecond": 100}},
            "cached": {"targets": [{"upstream": "a"}],
                       "cache": {"exact": {"enabled": True}, "semantic": {"enabled": True, "threshold": 0.85}}},
            "small": {"targets": [{"upstream": "a"}]},
            "large": {"targets": [{"upstream": "b"}]},
            "cascade": {"cascade": {"stages": ["small", "large"],
                                    "escalateWhen": {"meanLogprobBelow": -1.0, "refusal": True,
                                                     "clientHint": True}}},
        },
    }


@pytest.fixture(scope="session")
def embedder():
    from serving.gateway.embed import LocalEmbedder

    return LocalEmbedder()


class GatewayHandle:
    def __init__(self, cfg_dict: dict, embedder=None, tmp: Path | None = None, upstreams=None):
        from serving.gateway.app import Gateway, create_app
        from serving.gateway.config import parse_config

        self.cfg = parse_config(copy.deepcopy(cfg_dict), base_dir=tmp or ".")
        ups = None
        if upstreams:
            from serving.gateway.upstreams import build_upstream

            ups = {n: upstreams[n](self.cfg.upstreams[n]) if n in upstreams else build_upstream(n, u)
                   for n, u in self.cfg.upstreams.items()}
        self.gw = Gateway(self.cfg, config_dir=tmp or ".", embedder=embedder, upstreams=ups)
        self.server = ServerThread(create_app(self.gw))
        self.url = self.server.url
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(self, body: dict, *, key: str = "acme", path: str = "/v1/chat/completions", headers=None):
        h = {"authorization": f"Bearer {KEYS.get(key, key)}"}
        h.update(headers or {})
        return self.client.post(path, json=body, headers=h)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the gateway's background work (cache writes, budget settling, held refunds) is done."""
        deadline = time.monotonic() + timeout
        while (self.gw._tasks or not self.gw.limiter.idle) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.gw._tasks and self.gw.limiter.idle, "background tasks did not finish"

    def metric(self, name: str, **labels) -> float:
        v = self.gw.metrics.registry.get_sample_value(name, labels)
        return v or 0.0

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def make_gateway(redis_server, stubs, embedder):
    handles: list[GatewayHandle] = []
    for s in stubs.values():
        s.reset()
    redis_server.flush()

    def _make(mutate=None, *, with_embedder: bool = True, tmp: Path | None = None, upstreams=None) -> GatewayHandle:
        cfg = base_config(redis_server.url, stubs)
        if mutate:
            mutate(cfg)
        h = GatewayHandle(cfg, embedder if with_embedder else None, tmp, upstreams)
        handles.append(h)
        return h

    yield _make
    for h in handles:
        h.stop()


def chat(content: str = "Hello there", model: str = "plain", **kw) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **kw}


def sse_events(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def run(coro):
    return asyncio.run(coro)
