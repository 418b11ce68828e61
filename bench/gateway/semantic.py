"""Semantic-cache quality and lookup latency.

(1) Precision/recall on ``pairs.py`` (paraphrases vs negation/number/entity/role/same-topic traps): for each pair,
the first prompt is cached alone and the second looked up. Compared, on the same embeddings (all-MiniLM-L6-v2 from
the bundled weights): this gateway's rule (threshold + guard signature + order check), cosine alone at the same
threshold, and GPTCache's default similarity (SearchDistanceEvaluation, max_distance 4, similarity_threshold 0.8 ->
rank = 4 - L2^2 >= 3.2, i.e. cosine >= 0.6 on unit vectors; gptcache/similarity_evaluation/distance.py and
gptcache/config.py at 0.1.44).
(2) Lookup p99 of the shared-log index (any Redis) with 100,000 entries in one scope (the worst case: every entry
is a candidate), against a local redis-server; embedding time reported separately.

Run: .venv/bin/python bench/gateway/semantic.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pairs import build  # noqa: E402
from serving.gateway import guard  # noqa: E402
from serving.gateway.embed import LocalEmbedder  # noqa: E402

THRESHOLD = 0.85


def prf(preds, labels):
    tp = sum(p and l for p, l in zip(preds, labels))
    fp = sum(p and not l for p, l in zip(preds, labels))
    pos = sum(labels)
    return (tp / (tp + fp) if tp + fp else 1.0), tp / pos, fp


def quality() -> None:
    pairs = build()
    emb = LocalEmbedder()
    t = time.perf_counter()
    va = np.stack([emb.embed(a) for a, _, _, _ in pairs])
    vb = np.stack([emb.embed(b) for _, b, _, _ in pairs])
    per_embed_ms = (time.perf_counter() - t) / (2 * len(pairs)) * 1000
    cos = (va * vb).sum(1)
    labels = [h for _, _, h, _ in pairs]
    ours = [c >= THRESHOLD and guard.compatible(a, b) for c, (a, b, _, _) in zip(cos, pairs)]
    plain = [c >= THRESHOLD for c in cos]
    gptcache = [4.0 - min(4.0, max(0.0, 2 - 2 * c)) >= 4.0 * 0.8 for c in cos]
    n_pos = sum(labels)
    print(f"pairs: {len(pairs)} ({n_pos} paraphrases, {len(pairs) - n_pos} traps); embed {per_embed_ms:.1f} ms/prompt")
    print(f"{'rule':44s} precision  recall  false hits")
    for name, preds in ((f"gateway: cosine>={THRESHOLD} + guard", ours), (f"cosine>={THRESHOLD} alone", plain),
                        ("GPTCache default (cosine>=0.6)", gptcache)):
        p, r, fp = prf(preds, labels)
        print(f"{name:44s} {p:9.3f} {r:7.3f} {fp:6d}")
    best = None
    for thr in np.arange(0.5, 1.0, 0.01):
        p, r, _ = prf([c >= thr for c in cos], labels)
        if r >= 0.8 and (best is None or p > best[1]):
            best = (thr, p, r)
    if best:
        print(f"best cosine-only precision at recall>=0.8: {best[1]:.3f} (threshold {best[0]:.2f})")
    cats: dict[str, list[int]] = {}
    for pred, (_, _, h, cat) in zip(ours, pairs):
        if not h:
            cats.setdefault(cat, [0, 0])
            cats[cat][0] += pred
            cats[cat][1] += 1
    print("gateway false hits by trap:", {k: f"{v[0]}/{v[1]}" for k, v in cats.items()})


async def lookup_latency(n: int = 100_000) -> None:
    import redis.asyncio as aioredis

    from serving.gateway.cache import SharedLogIndex

    exe = shutil.which("redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = aioredis.Redis(port=port)
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((n, 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        exp = int(time.time() * 1000) + 3_600_000
        t = time.perf_counter()
        for i in range(0, n, 2000):
            pipe = r.pipeline(transaction=False)
            for j in range(i, min(n, i + 2000)):
                pipe.xadd("bench:log", {"scope": "s", "id": f"e{j}", "vec": vecs[j].tobytes(), "exp": exp})
            await pipe.execute()
        load_s = time.perf_counter() - t
        idx = SharedLogIndex(r, name="bench", dim=384, max_entries=n + 10, timeout_s=5)
        t = time.perf_counter()
        await idx.start()
        sync_s = time.perf_counter() - t
        q = vecs[rng.integers(0, n, 300)] + 0.01 * rng.standard_normal((300, 384)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        lat = []
        for v in q:
            t = time.perf_counter()
            await idx.search("s", v, 4, 0.9)
            lat.append(time.perf_counter() - t)
        lat.sort()
        p = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))] * 1000  # noqa: E731
        print(f"shared-log lookup, {n} entries in one scope: p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms "
              f"(XADD {n} in {load_s:.1f} s, replica warm-up from the stream {sync_s:.1f} s)")
        await r.aclose()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    quality()
    asyncio.run(lookup_latency())
