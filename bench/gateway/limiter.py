"""Token-budget overrun with 4 gateway replicas sharing one redis-server.

One tenant with a token budget; a concurrent burst (32 clients spread over 4 replicas) asks for far more than the
budget. Two cases: every answer uses all of ``max_tokens`` (the worst case for reserve-then-settle), and every answer
uses 4 of its 64 tokens (most of each reservation is refunded: the held-back refunds of ``limiter.refundDelayMs``
are at their largest, so utilisation shows whether the limiter gets stricter than the budget). Overrun = tokens the
stub reports serving minus what the budget allows over the measured interval (capacity + capacity x elapsed / 60 s,
elapsed from the Redis server clock). Target: 0. Run: .venv/bin/python bench/gateway/limiter.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import urllib.request
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _harness import Procs, load, request_bytes  # noqa: E402

from serving.gateway.auth import hash_key  # noqa: E402

TPM = 20_000
REPLICAS = 4


def _control(stub: int, settings: dict) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{stub}/_control", data=json.dumps(settings).encode(),
                                 method="POST")
    urllib.request.urlopen(req).read()


def main() -> None:
    procs = Procs()
    try:
        tmp = Path(tempfile.mkdtemp())
        url = procs.redis()
        stub = procs.stub()
        cfg = {"redis": {"url": url},
               "tenants": {"keys": {"bench": [hash_key("sk-bench")]}, "defaultLimits": {"tokensPerMinute": TPM}},
               "upstreams": {"stub": {"kind": "openai", "baseUrl": f"http://127.0.0.1:{stub}/v1", "model": "m"}},
               "routes": {"m": {"targets": [{"upstream": "stub"}], "maxTokens": 64}}}
        ports = [procs.gateway(cfg, tmp) for _ in range(REPLICAS)]
        r = redis.Redis.from_url(url)
        body = {"model": "m", "messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 64}
        for label, chunks in (("answers use all 64 tokens", 64), ("answers use 4 of 64 tokens", 4)):
            r.flushall()
            _control(stub, {"chunks": chunks, "requests": 0, "completed": 0, "tokens_served": 0})
            s, us = r.time()
            t0 = s * 1000 + us // 1000

            async def burst():
                return await asyncio.gather(*(load(p, request_bytes(p, body), 8, 2000, 10) for p in ports))

            results = asyncio.run(burst())
            s, us = r.time()
            elapsed_ms = s * 1000 + us // 1000 - t0
            stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{stub}/_stats").read())
            codes: dict[int, int] = {}
            for res in results:
                for k, v in res["codes"].items():
                    codes[k] = codes.get(k, 0) + v
            allowed = TPM + TPM * elapsed_ms / 60_000
            served = stats["tokens_served"]
            print(f"{label}: {REPLICAS} replicas, budget {TPM} tokens/min, {elapsed_ms / 1000:.1f} s: answers {codes}")
            print(f"  tokens served {served}, budget allowed {allowed:.0f}, "
                  f"overrun {max(0, served - allowed):.0f} tokens, utilisation {served / allowed:.3f}")
    finally:
        procs.stop()


if __name__ == "__main__":
    main()
