"""Gateway processes started as a user would (``python -m serving.gateway.cli serve``): several replicas sharing one
budget, and draining on SIGTERM."""

from __future__ import annotations

import concurrent.futures as cf
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.serving.gateway.conftest import KEYS, base_config, chat, free_port, sse_events, wait_port
from tests.kit import ROOT

TPM = 2000


def _start(cfg: dict, tmp_path, name: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    path = tmp_path / f"{name}.yaml"
    cfg = dict(cfg, server=dict(cfg["server"], port=port, host="127.0.0.1"))
    path.write_text(yaml.safe_dump(cfg))
    with open(tmp_path / f"{name}.stderr", "wb") as err:  # kept for a failing run; a pipe nobody reads could fill
        proc = subprocess.Popen([sys.executable, "-m", "serving.gateway.cli", "serve", "--config", str(path)],
                                stdout=subprocess.DEVNULL, stderr=err,
                                cwd=str(ROOT))
    return proc, port


@pytest.fixture
def replicas(redis_server, stubs, tmp_path):
    procs: list[subprocess.Popen] = []
    redis_server.flush()
    for s in stubs.values():
        s.reset()

    def _make(n: int, mutate=None) -> list[int]:
        cfg = base_config(redis_server.url, stubs)
        if mutate:
            mutate(cfg)
        ports = []
        for i in range(n):
            p, port = _start(cfg, tmp_path, f"gw{i}")
            procs.append(p)
            ports.append(port)
        for port in ports:
            wait_port(port, timeout=30)
        return ports

    yield _make
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            p.kill()


def _server_ms(url: str) -> int:
    s, us = redis.Redis.from_url(url).time()
    return s * 1000 + us // 1000


def test_token_budget_holds_across_three_replicas(replicas, redis_server, stubs):
    def cfg(c):
        c["tenants"]["limits"].update({"tiny": {"tokensPerMinute": TPM, "maxTokens": 50}})
        # This test proves the budget across replicas, not the timeout: a CI machine that stalls a process for a
        # moment must not turn a reservation into a fail-closed 503. (Warm-up at startup is tested on its own.)
        c["limiter"]["timeoutMs"] = 2000

    ports = replicas(3, cfg)
    stubs["a"].state.chunks = 50  # every answer uses all of max_tokens
    body = chat("hi", max_tokens=50)
    headers = {"authorization": f"Bearer {KEYS['tiny']}"}
    t0 = _server_ms(redis_server.url)

    unexpected: list[str] = []

    def one(i: int) -> int:
        with httpx.Client(timeout=20) as c:
            r = c.post(f"http://127.0.0.1:{ports[i % 3]}/v1/chat/completions", json=body, headers=headers)
        if r.status_code not in (200, 429):
            unexpected.append(f"{r.status_code} {r.text[:200]}")
        return r.status_code

    with cf.ThreadPoolExecutor(24) as pool:  # phase 1: a concurrent burst spread over the replicas
        codes = list(pool.map(one, range(120)))
    assert codes.count(429) > 0 and codes.count(200) > 0
    assert set(codes) <= {200, 429}, unexpected
    i = 0
    while (code := one(i)) == 200:  # phase 2: round-robin until the budget is spent
        i += 1
        assert i < 200
    assert code == 429, unexpected
    elapsed_ms = _server_ms(redis_server.url) - t0
    served = stubs["a"].state.tokens_served
    bound = TPM + TPM * elapsed_ms / 60_000
    assert served <= bound, f"{served} tokens served, budget allowed {bound:.0f}"
    assert served >= TPM - (50 + 2 + 16) - 51  # and the limiter is not stricter than the budget


def test_sigterm_drains_in_flight_streams(replicas, stubs):
    (port,) = replicas(1)
    stubs["a"].state.chunks = 20
    stubs["a"].state.delay_ms = 150  # a 3-second stream
    out: dict = {}
    first = threading.Event()

    def stream():
        with httpx.Client(timeout=20) as c:
            with c.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                          json=chat("hi", stream=True, max_tokens=20),
                          headers={"authorization": f"Bearer {KEYS['acme']}"}) as r:
                buf = b""
                for chunk in r.iter_raw():
                    buf += chunk
                    first.set()
                out["body"] = buf.decode()

    t = threading.Thread(target=stream)
    t.start()
    assert first.wait(10)
    proc = next(p for p in _procs_of(port))
    proc.send_signal(signal.SIGTERM)
    refused_while_streaming = False
    while t.is_alive():  # new connections are refused while the stream is still being served
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            # refused, or (on a loaded machine) accepted by the closing listener's backlog and then reset: not served
            refused_while_streaming = t.is_alive()
            break
        time.sleep(0.02)
    t.join(15)
    assert refused_while_streaming
    events = sse_events(out["body"])
    assert events[-1] == "[DONE]" and len(events) == 1 + 20 + 1 + 1  # role, 20 tokens, finish, DONE
    assert proc.wait(timeout=10) == 0


def _procs_of(port: int):
    import gc

    for obj in gc.get_objects():
        if isinstance(obj, subprocess.Popen) and obj.args and "serve" in obj.args and obj.poll() is None:
            cfg = obj.args[-1]
            if f"port: {port}" in Path(cfg).read_text():
                yield obj
