"""Cost of turning the semantic cache on: throughput at concurrency 8 with every request a miss, and added latency
at concurrency 1, with the embedding share.

Method: one redis-server, the zero-delay stub upstream, two gateway processes from this tree that differ only in
``cache.semantic.enabled`` on the route (limiter on in both, exact cache off in both so every request reaches the
semantic cache and the upstream). Every request carries a different prompt (a numbered question from a pool of
varied templates, 8-30 words, temperature 0), so every lookup is a miss and every answer is stored: the all-miss
worst case. Closed-loop keep-alive clients, warm-up before every run, targets interleaved per repetition. The
embedding share is the median time a prompt of the same pool spends in the embedder (the same micro-batcher
settings, one prompt at a time, in this process) over the added p50.

With the guard on, a prompt's numbers, negations and quantifiers are part of its scope, and a lookup in a scope
with no live entry does not embed (the answer is stored without a vector and embedded by the scope's next lookup).
The default pool numbers every prompt, so that path is what it measures; ``--shared-scope`` replaces the numbers
with distinct names so that every prompt shares one scope and every lookup embeds.

Run: .venv/bin/python bench/gateway/semantic_throughput.py [--reps 2] [--seconds 8] [--shared-scope]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the harness runs the gateways

from _harness import Procs, load  # noqa: E402

from serving.gateway.auth import hash_key  # noqa: E402

TEMPLATES = [
    "How do I configure the {x} service number {n} to retry failed requests?",
    "What is the difference between plan {n} and the {x} plan for a small team of engineers?",
    "Summarize ticket {n} about the {x} outage in two sentences for the weekly report.",
    "Write a short SQL query that counts the orders of customer {n} in the {x} region.",
    "Why does build {n} of the {x} pipeline fail when the cache is cold?",
    "Give me three ideas for naming project {n} in the {x} team.",
    "Translate the sentence 'order {n} has shipped from {x}' into German.",
    "Is invoice {n} from {x} due before the end of the month?",
]
PLACES = ["Lisbon", "Oslo", "Denver", "Kyoto", "Nairobi", "Lima", "Perth", "Quebec"]


def _name(i: int) -> str:
    """A distinct capitalised pseudo-name per number (an entity to the guard: two prompts never hit)."""
    out = ""
    i += 26 ** 3
    while i:
        i, r = divmod(i, 26)
        out += "bcdfghjklmnpqrstvwxzaeiouy"[r]
    return out.capitalize()


def prompts(shared_scope: bool = False):
    """Distinct prompts. By default each carries its own number, so with the guard on each lands in its own scope
    (the anchors are part of it) and no lookup embeds; ``shared_scope`` puts a name where the number was, so every
    prompt shares one scope and every lookup embeds (the worst case)."""
    for i in itertools.count():
        n = f"'{_name(i)}'" if shared_scope else 1000 + i
        yield TEMPLATES[i % len(TEMPLATES)].format(x=PLACES[(i // 8) % len(PLACES)], n=n)


def config(redis_url: str, stub_port: int, semantic: bool) -> dict:
    return {"redis": {"url": redis_url},
            "tenants": {"keys": {"bench": [hash_key("sk-bench")]},
                        "defaultLimits": {"requestsPerMinute": 10**9, "tokensPerMinute": 10**12}},
            "upstreams": {"stub": {"kind": "openai", "baseUrl": f"http://127.0.0.1:{stub_port}/v1",
                                   "model": "stub-model"}},
            "routes": {"stub-model": {"targets": [{"upstream": "stub"}], "maxTokens": 64,
                                      "cache": {"semantic": {"enabled": semantic}}}}}


def request(port: int, text: str) -> bytes:
    data = json.dumps({"model": "stub-model", "messages": [{"role": "user", "content": text}], "max_tokens": 16,
                       "temperature": 0}).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer sk-bench\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def embed_ms(shared_scope: bool, n: int = 200) -> tuple[float, float]:
    """(p50, p99) ms of one prompt through the batcher with the gateway's default settings, one at a time."""
    from serving.gateway.batcher import EmbedBatcher
    from serving.gateway.config import EmbedderConfig
    from serving.gateway.embed import LocalEmbedder

    e = EmbedderConfig()
    emb = LocalEmbedder()
    emb.embed_many(["warm-up"] * 4)
    b = EmbedBatcher(emb, max_batch=e.max_batch, max_wait_ms=e.max_wait_ms, max_queue=e.max_queue,
                     timeout_s=e.timeout_ms / 1000)
    texts = prompts(shared_scope)

    async def run():
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await b.embed(next(texts))
            out.append((time.perf_counter() - t) * 1000)
        return sorted(out)

    lat = asyncio.run(run())
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


def embed_capacity(conc: int = 8, n: int = 160) -> tuple[float, float]:
    """(prompts/s, mean batch size) of the batcher with ``conc`` callers in this process: the ceiling the local
    embedder puts on a replica's all-miss throughput, on this machine, now."""
    from serving.gateway.batcher import EmbedBatcher
    from serving.gateway.embed import LocalEmbedder

    emb = LocalEmbedder()
    emb.embed_many(["warm-up"] * 4)
    texts = prompts()

    async def run():
        b = EmbedBatcher(emb, max_batch=16, max_wait_ms=2, timeout_s=60)

        async def w():
            for _ in range(n // conc):
                await b.embed(next(texts))

        t = time.perf_counter()
        await asyncio.gather(*(w() for _ in range(conc)))
        return n / (time.perf_counter() - t), b.stats.texts / max(1, b.stats.batches)

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--shared-scope", action="store_true", help="every prompt in one scope: every lookup embeds")
    a = ap.parse_args()
    procs = Procs()
    texts = prompts(a.shared_scope)
    try:
        tmp = Path(tempfile.mkdtemp())
        url = procs.redis()
        stub = procs.stub()
        targets = {"semantic-off": procs.gateway(config(url, stub, False), tmp),
                   "semantic-on": procs.gateway(config(url, stub, True), tmp)}
        print(f"{'conc':>4s} {'target':14s} {'rps':>8s} {'p50 ms':>8s} {'p99 ms':>8s}")
        summary = {}
        for conc in (8, 1):
            res: dict[str, list[dict]] = {k: [] for k in targets}
            for _ in range(a.reps):
                for name, port in targets.items():
                    asyncio.run(load(port, lambda: request(port, next(texts)), conc, 10**9, 2))  # warm-up
                    r = asyncio.run(load(port, lambda: request(port, next(texts)), conc, 10**9, a.seconds))
                    assert set(r["codes"]) == {200}, r["codes"]
                    res[name].append(r)
            for name in targets:
                rs = res[name]
                med = lambda k: statistics.median(x[k] for x in rs)  # noqa: E731
                print(f"{conc:4d} {name:14s} {med('rps'):8.0f} {med('p50'):8.2f} {med('p99'):8.2f}")
            on, off = res["semantic-on"], res["semantic-off"]
            summary[conc] = {
                "ratio": statistics.median(x["rps"] for x in on) / statistics.median(x["rps"] for x in off),
                "add50": statistics.median(x["p50"] - y["p50"] for x, y in zip(on, off)),
                "add99": statistics.median(x["p99"] - y["p99"] for x, y in zip(on, off))}
        e50, e99 = embed_ms(a.shared_scope)
        cap, mean_batch = embed_capacity()
        s8, s1 = summary[8], summary[1]
        print(f"throughput at concurrency 8, all misses: semantic on / off = {s8['ratio']:.3f}")
        share = (f"embedding share of the added p50: {e50 / s1['add50']:.0%}" if a.shared_scope and s1["add50"] > 0
                 else "no lookup of this pool embeds: each prompt's scope is empty, the embedding share is 0")
        print(f"added at concurrency 1: p50 {s1['add50']:+.2f} ms, p99 {s1['add99']:+.2f} ms; "
              f"embedding one prompt: p50 {e50:.2f} ms, p99 {e99:.2f} ms ({share})")
        print(f"local embedder capacity with 8 callers: {cap:.0f} prompts/s (mean batch {mean_batch:.1f})")
    finally:
        procs.stop()


if __name__ == "__main__":
    main()
