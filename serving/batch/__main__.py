"""``python -m serving.batch worker`` (the Kubernetes Job's command) and ``finalize --batch ID``."""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.batch", description="Batch inference runtime.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("worker", help="run shard messages from BATCH_QUEUE_URL against BATCH_ENGINE_URL "
                                  "(environment: see serving/batch/README.md)")
    f = sub.add_parser("finalize", help="assemble a batch's output and errors once every shard is settled")
    f.add_argument("--batch", required=True, help="the batch id")
    f.add_argument("--bucket", default=os.environ.get("BATCH_BUCKET"), help="default: BATCH_BUCKET")
    f.add_argument("--dlq-url", default=os.environ.get("BATCH_DLQ_URL"),
                   help="dead-letter queue to read failed shards from (default: BATCH_DLQ_URL)")
    args = p.parse_args(argv)
    if args.cmd == "worker":
        from serving.batch.worker import main as worker_main

        return worker_main()
    if not args.bucket:
        p.error("finalize: --bucket or BATCH_BUCKET is required")
    import boto3

    from serving.batch.finalize import finalize

    region = os.environ.get("AWS_REGION")
    sqs = boto3.client("sqs", region_name=region) if args.dlq_url else None
    manifest = finalize(boto3.client("s3", region_name=region), args.bucket, args.batch, sqs=sqs,
                        dlq_url=args.dlq_url)
    json.dump({k: manifest.get(k) for k in ("id", "status", "request_counts", "progress", "output_key",
                                            "error_key")}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
