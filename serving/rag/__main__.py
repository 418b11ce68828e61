"""``python -m serving.rag worker``: the ingestion worker (environment: serving/rag/README.md)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.rag", description="RAG data plane runtime.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("worker", help="ingest document messages from RAG_QUEUE_URL: chunk, embed through RAG_EMBED_URL, "
                                  "upsert into the vector store (environment: see serving/rag/README.md)")
    p.parse_args(argv)
    from serving.rag.worker import main as worker_main

    return worker_main()


if __name__ == "__main__":
    sys.exit(main())
