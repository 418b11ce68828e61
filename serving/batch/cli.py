"""``genai-scale batch submit|status|cancel|results``: batches for operators, straight to S3 and SQS.

The operator's AWS credentials come from the SDK's default chain (``AWS_PROFILE``, SSO, ...); ``AWS_ENDPOINT_URL``
points the SDK elsewhere (a local moto server). The bucket, queue, Region and prefix come from ``--bucket``,
``--queue-url``, ``--region``, ``--prefix`` or the ``batch`` block of a gateway config (``--config``); flags win.

A batch of a ``bedrock`` backend (submitted through the gateway) works the same way: ``status`` and ``results`` poll
its Bedrock job (``GetModelInvocationJob``) and assemble the results once it ends, ``cancel`` stops the job
(``StopModelInvocationJob``). ``submit`` queues on the cluster only.

Exit codes: 0 ok, 1 the batch is not finished (``results``), 2 bad arguments, configuration or input file (every bad
line listed), 3 S3/SQS/Bedrock failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OPERATOR_TENANT = "operator"
"""Tenant recorded on batches submitted with the CLI (``--tenant`` to submit on a gateway tenant's behalf)."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="gateway YAML config whose `batch` block names the bucket, queue and Region")
    common.add_argument("--bucket", help="batch bucket (default: batch.bucket of --config)")
    common.add_argument("--queue-url", help="shard queue URL (default: batch.queueUrl of --config)")
    common.add_argument("--region", help="AWS Region (default: batch.region of --config, else the SDK's)")
    common.add_argument("--prefix", help="key prefix of the batch folders (default: batch.prefix, 'batches/')")
    p = argparse.ArgumentParser(prog="genai-scale batch", description="Batch inference for operators: submit a "
                                "JSONL file of OpenAI batch requests, follow it, cancel it, fetch its results.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit", parents=[common], help="validate a JSONL file, shard it and queue its shards")
    s.add_argument("file", help="JSONL input: one {custom_id, method, url, body} per line")
    s.add_argument("--model", action="append", required=True,
                   help="model the lines may use (repeat for several); every line must name one of them")
    s.add_argument("--tenant", default=OPERATOR_TENANT, help="tenant recorded on the batch (default: operator)")
    s.add_argument("--shard-records", type=int, help="most records per shard (default: 1000)")
    s.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="batch metadata")
    for name, what in (("status", "print the batch object (assembles the results once every shard is done)"),
                       ("cancel", "stop the batch's remaining shards; finished shards are kept")):
        c = sub.add_parser(name, parents=[common], help=what)
        c.add_argument("batch_id")
    r = sub.add_parser("results", parents=[common], help="write the batch's output (or --errors) file")
    r.add_argument("batch_id")
    r.add_argument("-o", "--output", help="file to write (default: stdout)")
    r.add_argument("--errors", action="store_true", help="the error file instead of the output file")
    return p


class _Usage(Exception):
    pass


def _settings(args: argparse.Namespace, *, need_queue: bool) -> dict[str, Any]:
    b = None
    if args.config:
        from serving.gateway.config import load_config

        b = load_config(args.config).batch
    bucket = args.bucket or (b.bucket if b else None)
    queue = args.queue_url or (b.queue_url if b else None)
    missing = [n for n, v in (("--bucket", bucket), ("--queue-url", queue if need_queue else "x")) if not v]
    if missing:
        raise _Usage(f"{' and '.join(missing)} required (or --config with a `batch` block)")
    prefix = args.prefix or (b.prefix if b else "batches/")
    return {"bucket": bucket, "queue_url": queue, "region": args.region or (b.region if b else None),
            "root": prefix.strip("/")}


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "endpoint", "model", "tenant", "created_at", "shard_count", "request_counts",
            "progress", "output_key", "error_key", "errors", "metadata")
    return {k: m.get(k) for k in keys if k in m}


def _print(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1)
    sys.stdout.write("\n")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    if not (sys.argv[1:] if argv is None else argv):  # `genai-scale batch` alone: what it can do
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from problems import ProblemsError

    try:
        return _run(args)
    except _Usage as exc:
        print(f"genai-scale batch {args.cmd}: {exc}", file=sys.stderr)
        return 2
    except ProblemsError as exc:  # a bad gateway config or input file: every problem, one per line
        print(str(exc), file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        if code in ("NoSuchKey", "404") and getattr(args, "batch_id", None):
            print(f"genai-scale batch {args.cmd}: no batch {args.batch_id!r} in this bucket", file=sys.stderr)
            return 2
        print(f"genai-scale batch {args.cmd}: AWS call failed ({code}): {exc}", file=sys.stderr)
        return 3


def _run(args: argparse.Namespace) -> int:
    import boto3

    from serving.batch import bedrock, shards
    from serving.batch.finalize import finalize

    st = _settings(args, need_queue=args.cmd == "submit")
    s3 = boto3.client("s3", region_name=st["region"])
    bucket, root = st["bucket"], st["root"]
    if args.cmd == "submit":
        from serving.batch.validate import Limits, validate_batch

        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise _Usage(f"cannot read {args.file} ({exc.strerror})") from None
        meta = {}
        for kv in args.metadata:
            k, sep, v = kv.partition("=")
            if not sep or not k:
                raise _Usage(f"--metadata {kv!r}: expected KEY=VALUE")
            meta[k] = v
        if args.shard_records is not None and args.shard_records < 1:
            raise _Usage(f"--shard-records {args.shard_records}: expected a number >= 1")
        records = validate_batch(data, Limits(allowed_models=tuple(args.model)))
        sqs = boto3.client("sqs", region_name=st["region"])
        kw = {"max_records": args.shard_records} if args.shard_records else {}
        manifest = shards.submit(s3, sqs, bucket=bucket, queue_url=st["queue_url"], batch_id=shards.new_batch_id(),
                                 records=records, input_bytes=data, metadata=meta or None, root=root,
                                 extra={"tenant": args.tenant, "completion_window": "24h"}, **kw)
        _print(_summary(manifest))
        return 0
    manifest = shards.get_json(s3, bucket, shards.Layout.of(bucket, args.batch_id, root).manifest)
    if bedrock.is_bedrock(manifest):  # one Bedrock batch inference job: poll it (and stop it on cancel)
        client = boto3.client("bedrock", region_name=manifest["backend"].get("region") or st["region"])
        if args.cmd == "cancel":
            manifest = bedrock.cancel(s3, client, bucket, manifest)
        manifest, _ = bedrock.poll(s3, client, bucket, manifest)
    else:
        if args.cmd == "cancel":
            shards.cancel(s3, bucket, args.batch_id, root)
        manifest = finalize(s3, bucket, args.batch_id, root=root)
    if args.cmd in ("status", "cancel"):
        _print(_summary(manifest))
        return 0
    key = manifest.get("error_key" if args.errors else "output_key")
    if not key:
        print(f"genai-scale batch results: batch {args.batch_id} is {manifest['status']}; its results are "
              f"assembled once every shard is done", file=sys.stderr)
        return 1
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if args.output:
        Path(args.output).write_bytes(body)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0
