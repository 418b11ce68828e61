"""Semantic-cache quality (precision, recall, F1 per category) and lookup latency.

(1) Quality on a labelled pair file (``semantic_eval/dev.jsonl`` by default; ``--pairs FILE`` for another, such as
the held-out set): for each pair the first prompt is the cached one and the second is looked up, through the same
functions the gateway's semantic cache calls (:func:`serving.gateway.guard.split` for the context/question split,
the local embedder on the question, :func:`serving.gateway.guard.decide` at the shipped defaults of
``serving.gateway.config.SemanticCacheConfig``). Printed: per category the pairs, hits, precision, recall and F1,
then the totals; for comparison cosine alone at the shipped base threshold and at 0.90.
(2) ``--latency``: lookup p99 of the shared-log index (any Redis) with 100,000 entries in one scope, against a local
redis-server.

Run: .venv/bin/python bench/gateway/semantic.py [--pairs FILE] [--split tune|check] [--latency] [--errors N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from serving.gateway import guard  # noqa: E402
from serving.gateway.config import SemanticCacheConfig  # noqa: E402
from serving.gateway.embed import LocalEmbedder  # noqa: E402

DEV = Path(__file__).resolve().parent / "semantic_eval" / "dev.jsonl"


def shipped_policy() -> guard.Policy:
    c = SemanticCacheConfig()
    return guard.Policy(threshold=c.threshold, threshold_reworded=c.threshold_reworded,
                        max_changed_words=c.max_changed_words,
                        threshold_strict=c.threshold_strict)


def load(path: Path, split: str | None) -> list[dict]:
    pairs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [p for p in pairs if split is None or p.get("split") == split]


def judge(pairs: list[dict], emb, policy: guard.Policy) -> tuple[list[bool], list[float], list[str]]:
    """(hit, cosine, reason) per pair, as the cache decides it."""
    cache: dict[str, np.ndarray] = {}

    def vec(t: str) -> np.ndarray:
        if t not in cache:
            cache[t] = emb.embed(t)
        return cache[t]

    preds, cosines, reasons = [], [], []
    for p in pairs:
        qa, qb = guard.split(p["a"]), guard.split(p["b"])
        if qa.context != qb.context:
            preds.append(False), cosines.append(float("nan")), reasons.append("context")
            continue
        if not qa.question or emb.too_long(qa.question) or emb.too_long(qb.question):
            preds.append(False), cosines.append(float("nan")), reasons.append("too long")
            continue
        cos = float(vec(qa.question) @ vec(qb.question))
        hit, why = guard.decide(qa.question, qb.question, cos, policy)
        preds.append(hit), cosines.append(cos), reasons.append(why)
    return preds, cosines, reasons


def prf(preds: list[bool], labels: list[bool]) -> tuple[float, float, float, int, int]:
    tp = sum(p and lab for p, lab in zip(preds, labels))
    fp = sum(p and not lab for p, lab in zip(preds, labels))
    pos = sum(labels)
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / pos if pos else float("nan")
    f1 = 2 * prec * rec / (prec + rec) if pos and tp else (0.0 if pos else float("nan"))
    return prec, rec, f1, tp, fp


def report(pairs: list[dict], preds: list[bool], title: str) -> None:
    labels = [bool(p["same"]) for p in pairs]
    print(f"{title}: {len(pairs)} pairs ({sum(labels)} same, {len(labels) - sum(labels)} different)")
    print(f"  {'category':22s} {'pairs':>5s} {'same':>5s} {'hits':>5s} {'false':>5s} {'prec':>6s} {'recall':>6s} "
          f"{'F1':>6s}")
    cats = sorted({p["category"] for p in pairs})
    for c in cats + ["ALL"]:
        idx = [i for i, p in enumerate(pairs) if c == "ALL" or p["category"] == c]
        pr = [preds[i] for i in idx]
        lb = [labels[i] for i in idx]
        prec, rec, f1, tp, fp = prf(pr, lb)
        fmt = lambda v: "   -  " if v != v else f"{v:6.3f}"  # noqa: E731
        print(f"  {c:22s} {len(idx):5d} {sum(lb):5d} {sum(pr):5d} {fp:5d} {fmt(prec)} {fmt(rec)} {fmt(f1)}")


def quality(path: Path, split: str | None, errors: int) -> None:
    pairs = load(path, split)
    emb = LocalEmbedder()
    policy = shipped_policy()
    t = time.perf_counter()
    preds, cosines, reasons = judge(pairs, emb, policy)
    took = time.perf_counter() - t
    report(pairs, preds, f"{path.name}{f' ({split})' if split else ''} at the shipped defaults {policy}")
    for thr in sorted({policy.threshold, 0.90}):
        plain = [c == c and c >= thr for c in cosines]
        report(pairs, plain, f"cosine alone >= {thr:.2f} (same split, no rules)")
    print(f"judged in {took:.1f} s")
    if errors:
        labels = [bool(p["same"]) for p in pairs]
        wrong = [(p, c, r) for p, pr, c, r, lab in zip(pairs, preds, cosines, reasons, labels) if pr != lab]
        for p, c, r in wrong[:errors]:
            qa, qb = guard.split(p["a"]), guard.split(p["b"])
            print(f"[{p['category']}, same={p['same']}, cos={c:.3f}, {r}] {qa.question!r} | {qb.question!r}")


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=Path, default=DEV)
    ap.add_argument("--split", choices=["tune", "check"], help="only this part of the dev set")
    ap.add_argument("--errors", type=int, default=0, help="print up to N wrong decisions")
    ap.add_argument("--latency", action="store_true", help="also measure the shared-log lookup latency")
    a = ap.parse_args()
    quality(a.pairs, a.split, a.errors)
    if a.latency:
        asyncio.run(lookup_latency())


if __name__ == "__main__":
    main()
