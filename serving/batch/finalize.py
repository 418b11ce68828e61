"""The finaliser: assembles ``output.jsonl`` and ``errors.jsonl`` in input order once every shard is settled, and
moves the batch to its final state. Idempotent: a batch already in a terminal state is returned unchanged, and the
assembled files depend only on the committed shard files.

A shard is settled when it has its ``.done`` marker (its ``out``/``err`` files are used), or its ``.failed``
marker, or its message is in the dead-letter queue (then every record of the shard is an error line
``shard_failed`` with the reason). A custom_id appears exactly once in the assembled files: within a shard a
result line wins over an error line for the same custom_id, and repeats are dropped.

States: ``in_progress`` with unsettled shards stays ``in_progress`` (the manifest's progress is updated);
``in_progress`` with every shard settled goes ``finalizing`` -> ``completed``; ``cancelling`` goes ``cancelled``
with the shards committed so far (records of other shards are in neither file, as in OpenAI's API).
"""

from __future__ import annotations

import json
import time
from typing import Any

from serving.batch.shards import (
    TERMINAL,
    Layout,
    get_json,
    jsonl,
    put_json,
    read_jsonl,
    transition,
)
from serving.batch.worker import error_line


def _exists(s3, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def _read(s3, bucket: str, key: str) -> list[dict[str, Any]]:
    return read_jsonl(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def mark_dead_lettered(s3, sqs, dlq_url: str, bucket: str, batch_id: str, root: str = "batches") -> list[int]:
    """Write a ``.failed`` marker for each of the batch's shards whose message is in the DLQ; returns the shards.

    The DLQ's messages are left in place (made visible again) for operators to inspect or redrive.
    """
    layout = Layout.of(bucket, batch_id, root)
    seen: dict[str, dict] = {}
    receipts: list[str] = []
    while True:
        resp = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=30, AttributeNames=["ApproximateReceiveCount"])
        msgs = resp.get("Messages") or []
        if not msgs:
            break
        for m in msgs:
            receipts.append(m["ReceiptHandle"])
            seen.setdefault(m["MessageId"], m)
    shards: list[int] = []
    for m in seen.values():
        try:
            body = json.loads(m["Body"])
        except ValueError:
            continue
        if body.get("batchId") != batch_id:
            continue
        n = int(body["shard"])
        shards.append(n)
        if not _exists(s3, bucket, layout.done(n)) and not _exists(s3, bucket, layout.failed(n)):
            put_json(s3, bucket, layout.failed(n), {"shard": n, "reason": "the shard's message reached the "
                                                    "dead-letter queue after repeated failures",
                                                    "failed_at": int(time.time())})
    for r in receipts:
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=r, VisibilityTimeout=0)
    return sorted(shards)


def _shard_lines(s3, layout: Layout, batch_id: str, n: int) -> tuple[str, list[dict], list[dict]]:
    """(state, output lines, error lines) of one shard, in the shard's input order."""
    if _exists(s3, layout.bucket, layout.done(n)):
        state = "done"
        order = [x["custom_id"] for x in _read(s3, layout.bucket, layout.shard(n))]
        pos = {cid: i for i, cid in enumerate(order)}
        ok: dict[str, dict] = {}
        bad: dict[str, dict] = {}
        for line in _read(s3, layout.bucket, layout.out(n)):
            ok.setdefault(line["custom_id"], line)
        for line in _read(s3, layout.bucket, layout.err(n)):
            if line["custom_id"] not in ok:
                bad.setdefault(line["custom_id"], line)
        missing = [cid for cid in order if cid not in ok and cid not in bad]
        for cid in missing:
            bad[cid] = error_line(batch_id, cid, "missing_result", f"shard {n} committed without this record")
        key = lambda line: pos.get(line["custom_id"], len(pos))
        return state, sorted(ok.values(), key=key), sorted(bad.values(), key=key)
    if _exists(s3, layout.bucket, layout.failed(n)):
        reason = get_json(s3, layout.bucket, layout.failed(n)).get("reason", "shard failed")
        lines = _read(s3, layout.bucket, layout.shard(n))
        return "failed", [], [error_line(batch_id, x["custom_id"], "shard_failed", f"shard {n} failed: {reason}")
                              for x in lines]
    return "pending", [], []


def finalize(s3, bucket: str, batch_id: str, *, sqs=None, dlq_url: str | None = None,
             root: str = "batches") -> dict[str, Any]:
    """Assemble the batch if every shard is settled; returns the (updated) manifest."""
    layout = Layout.of(bucket, batch_id, root)
    manifest = get_json(s3, bucket, layout.manifest)
    if manifest["status"] in TERMINAL:
        return manifest
    if sqs is not None and dlq_url:
        mark_dead_lettered(s3, sqs, dlq_url, bucket, batch_id, root)
    out: list[dict] = []
    err: list[dict] = []
    states: list[str] = []
    for n in range(manifest["shard_count"]):
        state, o, e = _shard_lines(s3, layout, batch_id, n)
        states.append(state)
        out += o
        err += e
    pending = [n for n, s in enumerate(states) if s == "pending"]
    manifest["progress"] = {"shards_total": len(states), "shards_done": states.count("done"),
                            "shards_failed": states.count("failed"), "shards_pending": len(pending)}
    manifest["request_counts"] = {"total": manifest["record_count"], "completed": len(out), "failed": len(err)}
    if pending and manifest["status"] != "cancelling":
        put_json(s3, bucket, layout.manifest, manifest)
        return manifest
    if manifest["status"] == "in_progress":
        transition(manifest, "finalizing")
        put_json(s3, bucket, layout.manifest, manifest)
    s3.put_object(Bucket=bucket, Key=layout.output, Body=jsonl(out))
    s3.put_object(Bucket=bucket, Key=layout.errors, Body=jsonl(err))
    manifest["output_key"], manifest["error_key"] = layout.output, layout.errors
    transition(manifest, "cancelled" if manifest["status"] == "cancelling" else "completed")
    put_json(s3, bucket, layout.manifest, manifest)
    return manifest
