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

Expiry (OpenAI's ``completion_window`` of ``24h``): a batch that still has unsettled shards at or after
``created_at`` + :data:`COMPLETION_WINDOW_SECONDS` goes ``expired``. The output file keeps the results of the shards
that finished, and every record of an unsettled shard is an error line ``batch_expired``; ``request_counts`` count
them as failed. A batch whose shards are all settled completes even when the finaliser runs after the window (the
work finished; nothing is left to expire). Workers skip the shards of an expired batch as they do a cancelled one.

Progress: ``progress`` holds shards (total, done, failed, pending; ``expired`` once expired), records (total, and
those of settled shards) and the tokens the engine reported in the usage of finished results (``None`` while no
finished result carries usage).
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

COMPLETION_WINDOW_SECONDS = 24 * 3600
"""OpenAI's only ``completion_window``, ``24h``: a batch not finished this long after ``created_at`` expires."""
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
"""The message of a ``batch_expired`` error line (OpenAI's wording)."""
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def expires_at(manifest: dict[str, Any]) -> int:
    """When the batch expires: ``created_at`` + the 24 h completion window (seconds since the epoch)."""
    return int(manifest["created_at"]) + COMPLETION_WINDOW_SECONDS


def is_past_window(manifest: dict[str, Any], now: float | None = None) -> bool:
    """True at and after :func:`expires_at` (the window is ``[created_at, created_at + 24 h)``)."""
    return (now if now is not None else time.time()) >= expires_at(manifest)


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


def _usage(lines: list[dict]) -> dict[str, int] | None:
    """Summed engine usage of result lines, or None when none of them reports usage."""
    total = dict.fromkeys(USAGE_KEYS, 0)
    seen = False
    for line in lines:
        body = (line.get("response") or {}).get("body")
        usage = body.get("usage") if isinstance(body, dict) else None
        if not isinstance(usage, dict):
            continue
        for k in USAGE_KEYS:
            v = usage.get(k)
            if isinstance(v, int) and not isinstance(v, bool):
                total[k] += v
                seen = True
    return total if seen else None


def progress(manifest: dict[str, Any], states: list[str], out: list[dict]) -> dict[str, Any]:
    """The manifest's ``progress``: shards by state, records of settled shards, tokens of finished results."""
    shards = manifest.get("shards") or []
    records_settled = sum(int(sh["records"]) for sh, st in zip(shards, states) if st != "pending")
    usage = _usage(out)
    return {"shards_total": len(states), "shards_done": states.count("done"), "shards_failed": states.count("failed"),
            "shards_pending": states.count("pending"), "records_total": manifest["record_count"],
            "records_settled": records_settled,
            **{k: (usage[k] if usage else None) for k in USAGE_KEYS}}


def finalize(s3, bucket: str, batch_id: str, *, sqs=None, dlq_url: str | None = None,
             root: str = "batches", now: float | None = None) -> dict[str, Any]:
    """Assemble the batch if every shard is settled, or expire it once its completion window has passed; returns
    the (updated) manifest. ``now`` (seconds since the epoch) defaults to the clock."""
    now = now if now is not None else time.time()
    layout = Layout.of(bucket, batch_id, root)
    manifest = get_json(s3, bucket, layout.manifest)
    if manifest["status"] in TERMINAL:
        return manifest
    past_window = manifest["status"] != "cancelling" and is_past_window(manifest, now)  # a cancel wins
    if sqs is not None and dlq_url:
        mark_dead_lettered(s3, sqs, dlq_url, bucket, batch_id, root)
    out: list[dict] = []
    err: list[dict] = []
    states: list[str] = []
    for n in range(manifest["shard_count"]):
        state, o, e = _shard_lines(s3, layout, batch_id, n)
        if state == "pending" and past_window:
            e = [error_line(batch_id, x["custom_id"], "batch_expired", EXPIRED_MESSAGE)
                 for x in _read(s3, bucket, layout.shard(n))]
        states.append(state)
        out += o
        err += e
    pending = states.count("pending")
    manifest["progress"] = progress(manifest, states, out)
    manifest["request_counts"] = {"total": manifest["record_count"], "completed": len(out), "failed": len(err)}
    expire = bool(pending) and past_window
    if pending and manifest["status"] != "cancelling" and not expire:
        put_json(s3, bucket, layout.manifest, manifest)
        return manifest
    if manifest["status"] == "in_progress" and not expire:
        transition(manifest, "finalizing", now=now)
        put_json(s3, bucket, layout.manifest, manifest)
    s3.put_object(Bucket=bucket, Key=layout.output, Body=jsonl(out))
    s3.put_object(Bucket=bucket, Key=layout.errors, Body=jsonl(err))
    manifest["output_key"], manifest["error_key"] = layout.output, layout.errors
    # the estimated tokens of the shards that never ran, which the gateway gives back to the tenant's budget once
    manifest["unrun_tokens"] = sum(int(manifest["shards"][n].get("tokens") or 0)
                                   for n, st in enumerate(states) if st == "pending")
    if expire:
        manifest["progress"]["shards_expired"] = pending
        transition(manifest, "expired", now=now)
    else:
        transition(manifest, "cancelled" if manifest["status"] == "cancelling" else "completed", now=now)
    put_json(s3, bucket, layout.manifest, manifest)
    return manifest
