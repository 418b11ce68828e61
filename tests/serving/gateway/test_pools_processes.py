"""A thundering herd on one cold pool model across three gateway processes (``python -m serving.gateway.cli serve``)
sharing one redis-server, against a fake vLLM replica in its own process: one wake, one adapter load,
and one failed load whose error reaches the requests held on every gateway."""

from __future__ import annotations

import concurrent.futures as cf
import json
import subprocess
import sys

import httpx
import pytest
import yaml

from tests.kit import ROOT
from tests.serving.gateway.conftest import KEYS, base_config, chat, free_port, wait_port


@pytest.fixture
def fake_process():
    spec = {"engines": {"llama": {}, "qwen": {}}, "gpuMb": 2000, "knobs": {"wake_s": 0.4, "load_s": 0.3}}
    proc = subprocess.Popen([sys.executable, "-m", "tests.kit.fake_vllm", json.dumps(spec)], cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline())
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_thundering_herd_on_a_cold_model_makes_one_wake_and_one_load(redis_server, stubs, tmp_path, fake_process):
    redis_server.flush()
    cfg = base_config(redis_server.url, stubs)
    del cfg["routes"]["cached"]  # no semantic cache: its embedder would dominate the start-up time
    adapters = {"sup-en": "s3://m/adapters/sup-en", "sup-fr": "s3://m/adapters/sup-fr"}
    cfg["pools"] = {"shared": {"replicas": {"urls": [fake_process]}, "holdTimeoutSeconds": 20,
                               "engines": {"llama": {"port": 8000, "adapters": adapters}, "qwen": {"port": 8001}}}}
    procs, ports = [], []
    try:
        for i in range(3):
            port = free_port()
            path = tmp_path / f"gw{i}.yaml"
            path.write_text(yaml.safe_dump(dict(cfg, server=dict(cfg["server"], port=port, host="127.0.0.1"))))
            with open(tmp_path / f"gw{i}.stderr", "wb") as err:
                procs.append(subprocess.Popen([sys.executable, "-m", "serving.gateway.cli", "serve", "--config",
                                               str(path)], stdout=subprocess.DEVNULL, stderr=err, cwd=str(ROOT)))
            ports.append(port)
        for port in ports:
            wait_port(port, timeout=30)

        client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))

        def herd(model: str) -> list[int]:
            def one(i: int) -> int:
                r = client.post(f"http://127.0.0.1:{ports[i % 3]}/v1/chat/completions", json=chat(model=model),
                                headers={"authorization": f"Bearer {KEYS['acme']}"})
                return r.status_code

            with cf.ThreadPoolExecutor(24) as ex:
                return list(ex.map(one, range(24)))

        assert herd("llama") == [200] * 24
        stats = httpx.get(fake_process + "/_fake/stats").json()
        assert stats["calls"].get("wake_up llama") == 1, stats
        assert herd("sup-en") == [200] * 24
        stats = httpx.get(fake_process + "/_fake/stats").json()
        assert stats["calls"].get("load_lora_adapter llama") == 1, stats
        assert stats["calls"].get("wake_up llama") == 1 and stats["violations"] == []
        held = [httpx.get(f"http://127.0.0.1:{p}/metrics").text for p in ports]
        assert all('gateway_pool_held_requests{model="llama",pool="shared"} 0.0' in t for t in held)
        assert sum('gateway_pool_hold_seconds_count{model="llama",pool="shared"}' in t for t in held) == 3
        # a load that fails: the requests held on every gateway get the error, not a load each
        httpx.post(fake_process + "/_fake/set", json={"fail_next_load": 1, "load_s": 1.0})
        assert herd("sup-fr") == [502] * 24
        stats = httpx.get(fake_process + "/_fake/stats").json()
        assert stats["calls"].get("load_lora_adapter llama") == 2, stats
        assert herd("sup-fr") == [200] * 24  # the pool recovered: the next requests load it again
        stats = httpx.get(fake_process + "/_fake/stats").json()
        assert stats["calls"].get("load_lora_adapter llama") == 3, stats
        client.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:  # pragma: no cover
                p.kill()
