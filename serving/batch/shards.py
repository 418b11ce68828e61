"""Shards, the S3 layout, the manifest and the batch state machine.

Layout under one bucket, one prefix per batch (``batches/<batch_id>``)::

    input.jsonl            the validated input, as submitted
    manifest.json          the batch object (status, counts, shards)
    shards/<nnnnn>.jsonl   the input lines of shard n, in input order
    out/<nnnnn>.jsonl      shard n's successful results   } written only when the shard is complete,
    err/<nnnnn>.jsonl      shard n's per-record errors    } then the commit marker:
    out/<nnnnn>.done       shard n is done (its out/err files are whole)
    out/<nnnnn>.failed     shard n failed on its last allowed receive (the reason; its message goes to the DLQ)
    output.jsonl           the assembled results, in input order (finaliser)
    errors.jsonl           the assembled errors, in input order (finaliser)

One SQS message per shard, JSON body ``{"batchId", "shard", "bucket", "prefix", "endpoint", "model", "records"}``
plus the submitter's ``message_extra`` (the backend of a managed batch, e.g. ``{"backend": {"kind":
"sagemaker-async", "endpointName": ...}}``); the manifest records that ``backend`` (``{"kind": "cluster"}`` when the
shards run on the cluster's workers).

Output lines are OpenAI's batch output shape, ``{"id", "custom_id", "response", "error"}``; ``id`` is
:func:`request_id` of the batch id and custom_id, so every attempt writes identical lines (:func:`error_line` builds
an error line).

**Shard size.** A shard is the unit of durability: an interrupted worker loses at most the shard it was running,
which another worker runs again from the start. The default, :data:`SHARD_RECORDS` = 1,000 records and at most
:data:`SHARD_TOKENS` = 2,000,000 estimated tokens, assumes an engine sustaining at least ~2,500 tokens/s per pod
(one mid-size GPU with a 7-8B model under vLLM's continuous batching; an assumption to re-measure per model), i.e.
about 800 s in the worst case of every record using its whole token allowance, under the default visibility
timeout of 900 s; the worker also extends the visibility while it runs (heartbeat), so the timeout bounds only how
long a dead worker holds a shard.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from serving.batch.validate import BatchRecord

SHARD_RECORDS = 1000
"""Default most records per shard."""
SHARD_TOKENS = 2_000_000
"""Default most estimated tokens per shard (a single larger record still gets a shard of its own)."""

STATES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled")
"""OpenAI's batch states."""
TERMINAL = frozenset({"failed", "completed", "expired", "cancelled"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "validating": frozenset({"failed", "in_progress", "cancelling"}),
    "in_progress": frozenset({"finalizing", "cancelling", "expired", "failed"}),
    "finalizing": frozenset({"completed", "expired", "cancelling"}),
    "cancelling": frozenset({"cancelled"}),
    "failed": frozenset(), "completed": frozenset(), "expired": frozenset(), "cancelled": frozenset(),
}
"""Allowed moves between batch states."""


_BATCH_ID = re.compile(r"^batch_([0-9a-f]{28})$")


def new_batch_id(now: float | None = None) -> str:
    """``batch_`` + 12 hex digits of the creation time in ms + 16 random hex digits (ids sort by creation time)."""
    ms = int((now if now is not None else time.time()) * 1000)
    return f"batch_{ms:012x}{secrets.token_hex(8)}"


def batch_created_ms(batch_id: str) -> int | None:
    """The creation time (ms) in an id of :func:`new_batch_id`, or None for any other string."""
    m = _BATCH_ID.match(batch_id)
    return int(m.group(1)[:12], 16) if m else None


class Interrupted(Exception):
    """SIGTERM arrived while a shard was running (the shard is abandoned without a marker)."""


class ShardFailed(Exception):
    """An engine fault that fails the whole shard (the message is retried, then dead-lettered)."""


def request_id(batch_id: str, custom_id: str) -> str:
    """A stable output line id (the same on every attempt, so retries write identical lines)."""
    return "batch_req_" + hashlib.sha256(f"{batch_id}\0{custom_id}".encode()).hexdigest()[:32]


def error_line(batch_id: str, custom_id: str, code: str, message: str, response: dict | None = None) -> dict:
    """An error file line in OpenAI's batch output shape."""
    return {"id": request_id(batch_id, custom_id), "custom_id": custom_id, "response": response,
            "error": {"code": code, "message": message}}


class TransitionError(ValueError):
    """A batch state change the state machine does not allow."""


def transition(manifest: dict[str, Any], to: str, *, now: float | None = None) -> dict[str, Any]:
    """Move ``manifest`` to state ``to`` (in place; stamps ``<to>_at``) or raise :class:`TransitionError`."""
    frm = manifest["status"]
    if to not in STATES:
        raise TransitionError(f"status {to!r} is not a batch state; expected one of: {', '.join(STATES)}")
    if to not in TRANSITIONS[frm]:
        allowed = ", ".join(sorted(TRANSITIONS[frm])) or "none (terminal)"
        raise TransitionError(f"batch {manifest['id']}: status {frm!r} cannot become {to!r}; allowed: {allowed}")
    manifest["status"] = to
    manifest[f"{to}_at"] = int(now if now is not None else time.time())
    return manifest


@dataclass(frozen=True)
class Layout:
    """The S3 keys of one batch."""

    bucket: str
    prefix: str
    """``batches/<batch_id>`` (no trailing slash)."""

    @classmethod
    def of(cls, bucket: str, batch_id: str, root: str = "batches") -> Layout:
        return cls(bucket, f"{root.strip('/')}/{batch_id}")

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @property
    def input(self) -> str:
        return self.key("input.jsonl")

    @property
    def manifest(self) -> str:
        return self.key("manifest.json")

    @property
    def output(self) -> str:
        return self.key("output.jsonl")

    @property
    def errors(self) -> str:
        return self.key("errors.jsonl")

    def shard(self, n: int) -> str:
        return self.key(f"shards/{n:05d}.jsonl")

    def out(self, n: int) -> str:
        return self.key(f"out/{n:05d}.jsonl")

    def err(self, n: int) -> str:
        return self.key(f"err/{n:05d}.jsonl")

    def done(self, n: int) -> str:
        return self.key(f"out/{n:05d}.done")

    def failed(self, n: int) -> str:
        return self.key(f"out/{n:05d}.failed")


def split(records: Sequence[BatchRecord], *, max_records: int = SHARD_RECORDS,
          max_tokens: int = SHARD_TOKENS) -> list[list[BatchRecord]]:
    """Contiguous shards in input order, each within ``max_records`` and ``max_tokens`` (one record at least)."""
    if max_records < 1 or max_tokens < 1:
        raise ValueError(f"max_records ({max_records}) and max_tokens ({max_tokens}) must be >= 1")
    shards: list[list[BatchRecord]] = []
    cur: list[BatchRecord] = []
    tokens = 0
    for r in records:
        if cur and (len(cur) >= max_records or tokens + r.tokens > max_tokens):
            shards.append(cur)
            cur, tokens = [], 0
        cur.append(r)
        tokens += r.tokens
    if cur:
        shards.append(cur)
    return shards


def jsonl(objs: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objs)


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(x) for x in data.split(b"\n") if x.strip()]


def new_manifest(batch_id: str, endpoint: str, model: str, shards: list[list[BatchRecord]], layout: Layout, *,
                 now: float | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """The batch object at submit (status ``validating``), with one entry per shard."""
    total = sum(len(s) for s in shards)
    return {
        "id": batch_id, "object": "batch", "endpoint": endpoint, "model": model, "status": "validating",
        "created_at": int(now if now is not None else time.time()), "bucket": layout.bucket,
        "prefix": layout.prefix, "input_key": layout.input, "output_key": None, "error_key": None,
        "shard_count": len(shards), "record_count": total,
        "shards": [{"shard": i, "records": len(s), "tokens": sum(r.tokens for r in s), "first_line": s[0].line}
                   for i, s in enumerate(shards)],
        "request_counts": {"total": total, "completed": 0, "failed": 0},
        "metadata": metadata or {},
    }


MESSAGE_KEYS = frozenset({"batchId", "shard", "bucket", "prefix", "endpoint", "model", "records"})
"""The keys of a shard message that ``message_extra`` may not replace."""
CLUSTER_BACKEND: dict[str, Any] = {"kind": "cluster"}
"""The manifest's ``backend`` of a batch whose shards run on the cluster's GPU workers (no ``message_extra``)."""


def message(manifest: dict[str, Any], shard: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The SQS message body of one shard (``extra`` merged in last)."""
    return {"batchId": manifest["id"], "shard": shard, "bucket": manifest["bucket"], "prefix": manifest["prefix"],
            "endpoint": manifest["endpoint"], "model": manifest["model"],
            "records": manifest["shards"][shard]["records"], **(extra or {})}


def put_json(s3, bucket: str, key: str, obj: Any) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(obj, indent=1).encode(), ContentType="application/json")


def get_json(s3, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def submit(s3, sqs, *, bucket: str, queue_url: str, batch_id: str, records: Sequence[BatchRecord],
           input_bytes: bytes | None = None, max_records: int = SHARD_RECORDS, max_tokens: int = SHARD_TOKENS,
           metadata: dict[str, str] | None = None, root: str = "batches",
           extra: dict[str, Any] | None = None, message_extra: dict[str, Any] | None = None,
           manifest_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a validated batch's input, shards and manifest to S3, then send one SQS message per shard.

    The manifest is written (``in_progress``) before any message, so a worker always finds it; ``extra`` keys
    (the gateway's tenant, input file id, budget reservation; ``manifest_extra`` is the same, merged after it) are
    stored in it. ``message_extra`` is merged into every shard message; its ``backend`` (or
    :data:`CLUSTER_BACKEND`) is recorded in the manifest as ``backend``. Returns the manifest.
    """
    if not records:
        raise ValueError("a batch needs at least one record")
    clash = sorted(set(message_extra or {}) & MESSAGE_KEYS)
    if clash:
        raise ValueError(f"message_extra keys {', '.join(clash)} would replace the shard message's own keys")
    layout = Layout.of(bucket, batch_id, root)
    shards = split(records, max_records=max_records, max_tokens=max_tokens)
    manifest = new_manifest(batch_id, records[0].url, str(records[0].body["model"]), shards, layout,
                            metadata=metadata)
    manifest["backend"] = dict((message_extra or {}).get("backend") or CLUSTER_BACKEND)
    manifest.update(extra or {})
    manifest.update(manifest_extra or {})
    s3.put_object(Bucket=bucket, Key=layout.input,
                  Body=input_bytes if input_bytes is not None else jsonl(r.to_json() for r in records))
    for i, s in enumerate(shards):
        s3.put_object(Bucket=bucket, Key=layout.shard(i), Body=jsonl(r.to_json() for r in s))
    transition(manifest, "in_progress")
    put_json(s3, bucket, layout.manifest, manifest)
    for start in range(0, len(shards), 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(message(manifest, i, message_extra))}
                   for i in range(start, min(start + 10, len(shards)))]
        resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if resp.get("Failed"):
            raise RuntimeError(f"SQS refused shard messages of batch {batch_id}: {resp['Failed']}")
    return manifest


def claim(s3, bucket: str, key: str) -> bool:
    """Create ``key`` only if it does not exist (an S3 conditional write): True for the one caller that created it.

    Used to give a batch's unused token budget back exactly once when several gateway replicas (or a replica and
    the operator CLI) settle the same batch at the same time."""
    from botocore.exceptions import ClientError

    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"", IfNoneMatch="*")
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
            return False
        raise


def cancel(s3, bucket: str, batch_id: str, root: str = "batches") -> dict[str, Any]:
    """Mark a batch ``cancelling``: workers skip (and delete) its remaining shard messages; finished shards stay."""
    layout = Layout.of(bucket, batch_id, root)
    manifest = get_json(s3, bucket, layout.manifest)
    if manifest["status"] not in ("cancelling", "cancelled"):
        transition(manifest, "cancelling")
        put_json(s3, bucket, layout.manifest, manifest)
    return manifest
