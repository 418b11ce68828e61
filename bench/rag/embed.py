"""Embedding throughput with the gateway's micro-batcher against one text per model call, on the local CPU model.

The model is all-MiniLM-L6-v2 on numpy (``serving/gateway/embed.py``, the ``local`` kind of ``embeddings.models``,
without the semantic cache's typo correction), behind ``serving/gateway/batcher.py`` exactly as
``POST /v1/embeddings`` uses it: ``concurrency`` clients each send one text, wait for its vector and send the next
(a closed loop). Two settings, measured in the same run:
- ``batched``: ``maxBatch`` 64, ``maxWaitMs`` 5 (the config defaults): texts that arrive within the window or while
  the worker is busy share one ``embed_many`` call;
- ``one-by-one``: ``maxBatch`` 1, ``maxWaitMs`` 0: every text is its own model call, in arrival order.
Per concurrency (1, 8, 64) it prints requests/s, p50/p99 latency (arrival to vector) and the mean batch size, then
the throughput ratio (batched / one-by-one) and the latency the window adds (batched - one-by-one at p50 and p99).
Target (issue 16): >= 5x throughput at concurrency 64. Texts are synthetic sentences of 8-40 words (16-60 word
pieces), every one distinct. The HTTP layer, auth and the vector cache are left out: they cost the same in both
settings, and on a 2-core machine the client load would take cores from the model.

Run: .venv/bin/python bench/rag/embed.py [--concurrency 1,8,64] [--requests 256] [--rounds 4] [--window-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from serving.gateway.batcher import EmbedBatcher
from serving.gateway.embed import LocalEmbedder

WORDS = [
    "refund", "policy", "account", "password", "reset", "invoice", "billing", "order", "shipping", "delivery",
    "return", "warranty", "support", "ticket", "contract", "renewal", "subscription", "cancel", "upgrade",
    "plan", "storage", "cluster", "node", "region", "latency", "backup", "restore", "database", "index",
    "query", "vector", "embedding", "document", "collection", "tenant", "access", "role", "permission", "key",
    "rotate", "certificate", "network", "subnet", "gateway", "route", "model", "token", "limit", "budget",
    "report", "dashboard", "alert"
]


def sentences(n: int, words: tuple[int, int] = (8, 40), seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(words[0], words[1] + 1))
        out.append(f"{i} " + " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), k)) + ".")
    return out


async def run(embedder, texts: list[str], concurrency: int, per_client: int, *, max_batch: int,
              window_ms: float) -> tuple[float, list[float], int, int]:
    """(seconds, latencies in ms, texts, model calls) of one round."""
    b = EmbedBatcher(embedder, max_batch=max_batch, max_wait_ms=window_ms, max_queue=100_000, timeout_s=600)
    lat: list[float] = []
    it = iter(texts)

    async def client():
        for _ in range(per_client):
            t = next(it)
            t0 = time.perf_counter()
            await b.embed(t)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    b.close()
    return wall, [x * 1000 for x in lat], b.stats.texts, b.stats.batches


def summary(rounds: list[tuple[float, list[float], int, int]]) -> dict:
    ms = np.array([x for r in rounds for x in r[1]])
    return {"rps": len(ms) / sum(r[0] for r in rounds), "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "batch": sum(r[2] for r in rounds) / max(1, sum(r[3] for r in rounds))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--requests", type=int, default=256,
                    help="texts per concurrency level and setting, split over the rounds (at least 2 per client "
                         "and round)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="rounds per level, the two settings alternating, so load from other processes on a shared "
                         "machine falls on both alike")
    ap.add_argument("--window-ms", type=float, default=5.0)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--words", default="8,40", help="shortest,longest text in words (default 8,40)")
    args = ap.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    emb = LocalEmbedder().plain()
    per = {c: max(2, args.requests // (c * args.rounds)) for c in levels}
    lo, hi = (int(x) for x in args.words.split(","))
    pool = sentences(sum(c * per[c] * args.rounds for c in levels) * 2 + 64, (lo, hi))
    emb.embed_many(pool[:64])  # warm-up: first-call allocations and caches
    pos = 64
    rows = []
    settings = (("one-by-one", 1, 0.0), ("batched", args.max_batch, args.window_ms))
    for c in levels:
        got: dict[str, list] = {m: [] for m, _, _ in settings}
        for r in range(args.rounds):
            for mode, mb, win in settings if r % 2 == 0 else settings[::-1]:
                texts = pool[pos:pos + c * per[c]]
                pos += c * per[c]
                got[mode].append(asyncio.run(run(emb, texts, c, per[c], max_batch=mb, window_ms=win)))
        rows.append((c, {m: summary(v) for m, v in got.items()}))
    print(f"all-MiniLM-L6-v2 on CPU (numpy), micro-batcher maxBatch {args.max_batch}, window {args.window_ms:g} ms "
          f"vs one text per call; closed-loop clients, one text per request")
    print(f"{'conc':>5} {'mode':<11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6}")
    for c, cell in rows:
        for mode in ("one-by-one", "batched"):
            r = cell[mode]
            print(f"{c:>5} {mode:<11} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['batch']:>6.1f}")
    print("\nratios from this run (batched vs one-by-one)")
    print(f"{'conc':>5} {'throughput':>11} {'p50 +ms':>8} {'p99 +ms':>8}")
    for c, cell in rows:
        on, off = cell["batched"], cell["one-by-one"]
        ratio, d50, d99 = on["rps"] / off["rps"], on["p50"] - off["p50"], on["p99"] - off["p99"]
        print(f"{c:>5} {ratio:>10.2f}x {d50:>+8.1f} {d99:>+8.1f}")
    print("\nceiling on this machine: 64 forward passes of one sequence vs one pass of 64 equal-length sequences (no "
          "padding, no tokenizer, best of 3)")
    for n, (single, batch) in ceiling(emb).items():
        print(f"{n:>4} word pieces: {single * 1000 / 64:>6.1f} ms per text alone, {batch * 1000 / 64:>6.1f} ms in a "
              f"batch: {single / batch:.2f}x")


def ceiling(emb, lengths=(8, 32)) -> dict[int, tuple[float, float]]:
    """The most batching can gain for the numpy model: the model's FLOPs per token are fixed (about 21 MFLOP for
    MiniLM's six layers), so a batch only saves per-call overhead and gets larger, more efficient matrix products."""
    out = {}
    for n in lengths:
        seqs = [[101] + [2000 + i + j for j in range(n - 2)] + [102] for i in range(64)]
        single = batch = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for s in seqs:
                emb._forward_batch([s])
            single = min(single, time.perf_counter() - t0)
            t0 = time.perf_counter()
            emb._forward_batch(seqs)
            batch = min(batch, time.perf_counter() - t0)
        out[n] = (single, batch)
    return out


if __name__ == "__main__":
    main()
