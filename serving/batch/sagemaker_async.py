"""The SageMaker asynchronous inference engine: runs the records of one shard on a SageMaker async endpoint.

A batch whose route names a ``sagemaker-async`` backend is sharded and queued as usual, on the managed-dispatch
queue; its shard messages carry ``{"backend": {"kind": "sagemaker-async", "endpointName", "region",
"invocationTimeoutSeconds"}}``. A dispatcher worker (``BATCH_BACKEND=sagemaker-async``: no GPU, no engine sidecar)
runs each record of the shard in three steps, under the batch prefix:

1. **Invoke.** Unless the record's invocation is already recorded, put its request body (the OpenAI chat/completions
   body: LMI containers answer it on ``/invocations`` when it has ``messages``) at ``async/in/<nnnnn>/<line>.json``,
   call ``InvokeEndpointAsync`` (``InputLocation`` that object, ``ContentType`` ``application/json``, a
   deterministic ``InferenceId``, ``InvocationTimeoutSeconds``, ``RequestTTLSeconds``), then record the answer's
   ``OutputLocation`` and ``FailureLocation`` at ``async/calls/<nnnnn>/<line>.json``.
2. **Poll.** Read the output (or failure) object of every outstanding record, all of them per round, with the
   interval doubling from ``poll_seconds`` to ``poll_max_seconds``; the worker's heartbeat keeps the shard's message
   invisible meanwhile. An endpoint at zero instances first scales out (minutes), so the first results are slow.
3. **Lines.** An output object -> an output line (``status_code`` 200, the object as ``body``); a failure object ->
   an error line ``sagemaker_async_failure`` with its text; no result within the record's deadline (counted from
   the recorded invocation, so a rerun does not extend it) -> an error line ``timeout``; an output that is not a JSON
   object -> an error line ``malformed_output``; a line whose ``url`` is not ``/v1/chat/completions`` -> an error
   line ``unsupported_endpoint`` (no invocation).

A rerun of the shard (after SIGTERM, a crash, or a second worker) reads the recorded invocations and polls them
instead of invoking again. Only a crash between ``InvokeEndpointAsync`` and the write of its record can invoke a
record twice (extra cost, same result): its output still reaches the shard's files once, because the shard's lines
are written by the worker's single commit (one line per record) and the ``InferenceId`` is the same on both calls.

An ``InvokeEndpointAsync`` or S3 error (after botocore's retries) is an engine fault: it fails the shard like an
unreachable engine (the message is retried, then dead-lettered).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from serving.batch.shards import (
    Interrupted,
    Layout,
    ShardFailed,
    error_line,
    put_json,
    request_id,
)

KIND = "sagemaker-async"
"""``backend.kind`` of a shard message run by this engine."""
SUPPORTED_URL = "/v1/chat/completions"
"""The only batch endpoint the LMI container serves on ``/invocations`` in OpenAI's schema (chat, with
``messages``): https://docs.djl.ai/master/docs/serving/serving/docs/lmi/user_guides/chat_input_output_schema.html
(read 2026-12-06)."""

INVOCATION_TIMEOUT_MAX = 3600
"""InvokeEndpointAsync ``InvocationTimeoutSeconds``: 1..3600 (service default 900), botocore's sagemaker-runtime
model 2017-05-13."""
REQUEST_TTL_RANGE = (60, 21600)
"""InvokeEndpointAsync ``RequestTTLSeconds``: 60..21600 (service default 21600, 6 hours), same model."""
INFERENCE_ID_MAX = 64
"""InvokeEndpointAsync ``InferenceId``: 1..64 characters, pattern ``\\A\\S[\\p{Print}]*\\z``, same model."""
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PRINTABLE = re.compile(r"^[\x21-\x7e][\x20-\x7e]*$")
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
DEADLINE_MARGIN_SECONDS = 600
"""Added to RequestTTLSeconds + InvocationTimeoutSeconds for the default per-record deadline."""
ERROR_TEXT_MAX = 2000
"""Characters of a failure object kept in its error line."""


@dataclass(frozen=True)
class AsyncBackend:
    """The ``backend`` of a sagemaker-async shard message."""

    endpoint_name: str
    region: str | None = None
    """The endpoint's Region (default: the worker's)."""
    invocation_timeout_seconds: int = INVOCATION_TIMEOUT_MAX
    """``InvocationTimeoutSeconds`` of every invocation (a record's longest processing time on the endpoint)."""

    @classmethod
    def from_message(cls, raw: Any) -> AsyncBackend:
        """Parse ``backend`` of a shard message; raises ValueError listing every problem with its key path (TypeError
        when it is not an object)."""
        if not isinstance(raw, Mapping):
            raise TypeError(f"backend = {raw!r}: expected an object")
        problems = []
        name = raw.get("endpointName")
        if not isinstance(name, str) or not _ENDPOINT_NAME.match(name):
            problems.append(f"backend.endpointName = {name!r}: expected a SageMaker endpoint name (1-63 letters, "
                            "digits and hyphens, starting with a letter or digit)")
        region = raw.get("region")
        if region is not None and (not isinstance(region, str) or not region):
            problems.append(f"backend.region = {region!r}: expected a Region name or null")
        timeout = raw.get("invocationTimeoutSeconds", INVOCATION_TIMEOUT_MAX)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= INVOCATION_TIMEOUT_MAX:
            problems.append(f"backend.invocationTimeoutSeconds = {timeout!r}: expected an integer 1..3600")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(endpoint_name=name, region=region, invocation_timeout_seconds=timeout)


@dataclass(frozen=True)
class AsyncSettings:
    """The dispatcher's settings for sagemaker-async shards (``WorkerConfig`` reads them from the environment)."""

    poll_seconds: float = 5.0
    """First interval between polls of the outstanding records (``BATCH_ASYNC_POLL_SECONDS``); doubles per round."""
    poll_max_seconds: float = 60.0
    """Longest interval between polls (``BATCH_ASYNC_POLL_MAX_SECONDS``)."""
    request_ttl_seconds: int = REQUEST_TTL_RANGE[1]
    """``RequestTTLSeconds``: how long a request may wait in the endpoint's queue, e.g. while it scales out from 0
    (``BATCH_ASYNC_REQUEST_TTL_SECONDS``; 60..21600, default the API's 6 hours)."""
    deadline_seconds: float | None = None
    """A record without a result this long after its invocation becomes a ``timeout`` error line
    (``BATCH_ASYNC_DEADLINE_SECONDS``; default RequestTTLSeconds + InvocationTimeoutSeconds + 600 s, i.e.
    7 h 10 min with the defaults: within SQS's 12-hour limit on a message's visibility)."""
    concurrency: int = 32
    """S3 and InvokeEndpointAsync calls in flight (``BATCH_CONCURRENCY``)."""

    def deadline_for(self, backend: AsyncBackend) -> float:
        if self.deadline_seconds is not None:
            return self.deadline_seconds
        return self.request_ttl_seconds + backend.invocation_timeout_seconds + DEADLINE_MARGIN_SECONDS


def input_key(layout: Layout, shard: int, line: int) -> str:
    """Where a record's request body is put for ``InputLocation``."""
    return layout.key(f"async/in/{shard:05d}/{line:06d}.json")


def call_key(layout: Layout, shard: int, line: int) -> str:
    """Where a record's invocation (InferenceId, OutputLocation, FailureLocation, invoked_at) is recorded."""
    return layout.key(f"async/calls/{shard:05d}/{line:06d}.json")


def inference_id(batch_id: str, shard: int, line: int) -> str:
    """A deterministic ``InferenceId`` within the API's length and pattern (a hash when the plain form is not)."""
    plain = f"{batch_id}-{shard:05d}-{line:06d}"
    if len(plain) <= INFERENCE_ID_MAX and _PRINTABLE.match(plain):
        return plain
    return "gs-" + hashlib.sha256(f"{batch_id}\0{shard}\0{line}".encode()).hexdigest()[:48]


def parse_s3_uri(uri: str) -> tuple[str, str]:
    m = _S3_URI.match(uri or "")
    if not m:
        raise ShardFailed(f"InvokeEndpointAsync answered a location {uri!r}: expected s3://bucket/key")
    return m.group(1), m.group(2)


class AsyncShard:
    """Runs one shard's records on a SageMaker async endpoint: :meth:`run` returns (ok, line) per record."""

    def __init__(self, s3, runtime, backend: AsyncBackend, settings: AsyncSettings, *, stop: threading.Event,
                 clock: Callable[[], float] = time.time, wait: Callable[[float], bool] | None = None,
                 on_tokens: Callable[[int], None] | None = None):
        self.s3 = s3
        self.runtime = runtime
        self.backend = backend
        self.settings = settings
        self.stop = stop
        self.clock = clock
        self.wait = wait or stop.wait
        """Sleeps between poll rounds; returns True when the worker is stopping."""
        self.on_tokens = on_tokens or (lambda n: None)
        self.invoked = 0
        """InvokeEndpointAsync calls made by this run (a rerun makes none for recorded records)."""

    def run(self, layout: Layout, batch_id: str, shard: int, lines: list[dict],
            first_line: int = 1) -> list[tuple[bool, dict]]:
        """Every record's (ok, output line), in shard order; raises Interrupted or ShardFailed."""
        results: list[tuple[bool, dict] | None] = [None] * len(lines)
        todo = []
        for i, line in enumerate(lines):
            if line.get("url") != SUPPORTED_URL:
                results[i] = (False, error_line(batch_id, line["custom_id"], "unsupported_endpoint",
                                                f"url {line.get('url')!r}: a sagemaker-async backend serves only "
                                                f"{SUPPORTED_URL}"))
            else:
                todo.append((i, first_line + i, line))
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.settings.concurrency, len(todo) or 1)))
        try:
            invoked = self._each(pool, lambda t: self._invoke(layout, batch_id, shard, t[1], t[2]), todo)
            deadline = self.settings.deadline_for(self.backend)
            interval = self.settings.poll_seconds
            pending = {i: (line, call) for (i, _, line), call in zip(todo, invoked)}
            while pending:
                items = list(pending.items())
                polled = self._each(pool, lambda item: self._poll(batch_id, item[1][0], item[1][1], deadline),
                                    items)
                for (i, _), res in zip(items, polled):
                    if res is not None:
                        results[i] = res
                        del pending[i]
                if not pending:
                    break
                if self.stop.is_set() or self.wait(interval):
                    raise Interrupted()
                interval = min(self.settings.poll_max_seconds, interval * 2)
        finally:  # on SIGTERM or a fault, calls already running finish in the background; none start
            pool.shutdown(wait=False, cancel_futures=True)
        return results  # type: ignore[return-value]

    def _each(self, pool: ThreadPoolExecutor, fn, items: list) -> list:
        """``fn`` over ``items`` in the pool, in order; an error of one item fails the shard; SIGTERM interrupts."""
        futures = [pool.submit(self._guarded, fn, x) for x in items]
        out = []
        try:
            for f in futures:
                while True:
                    if self.stop.is_set():
                        raise Interrupted()
                    try:
                        out.append(f.result(timeout=0.1))
                        break
                    except FutureTimeout:
                        continue
        finally:
            for f in futures:
                f.cancel()
        return out

    def _guarded(self, fn, x):
        if self.stop.is_set():
            raise Interrupted()
        try:
            return fn(x)
        except (Interrupted, ShardFailed):
            raise
        except Exception as exc:
            raise ShardFailed(f"{type(exc).__name__}: {exc}") from exc

    # -- one record -----------------------------------------------------------------------------------------------
    def _get(self, bucket: str, key: str) -> bytes | None:
        """An object's bytes, or None when it does not exist (yet)."""
        from botocore.exceptions import ClientError

        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _invoke(self, layout: Layout, batch_id: str, shard: int, line_no: int, line: dict) -> dict:
        """The record's invocation: the recorded one, or a new InvokeEndpointAsync call that is then recorded."""
        recorded = self._get(layout.bucket, call_key(layout, shard, line_no))
        if recorded is not None:
            return json.loads(recorded)
        key = input_key(layout, shard, line_no)
        self.s3.put_object(Bucket=layout.bucket, Key=key, Body=json.dumps(line["body"]).encode(),
                           ContentType="application/json")
        iid = inference_id(batch_id, shard, line_no)
        resp = self.runtime.invoke_endpoint_async(
            EndpointName=self.backend.endpoint_name, InputLocation=f"s3://{layout.bucket}/{key}",
            ContentType="application/json", Accept="application/json", InferenceId=iid,
            InvocationTimeoutSeconds=self.backend.invocation_timeout_seconds,
            RequestTTLSeconds=self.settings.request_ttl_seconds)
        self.invoked += 1
        if not resp.get("OutputLocation"):
            raise ShardFailed(f"InvokeEndpointAsync on {self.backend.endpoint_name} answered no OutputLocation")
        call = {"custom_id": line["custom_id"], "inference_id": resp.get("InferenceId") or iid,
                "output_location": resp["OutputLocation"], "failure_location": resp.get("FailureLocation"),
                "invoked_at": self.clock()}
        put_json(self.s3, layout.bucket, call_key(layout, shard, line_no), call)
        return call

    def _poll(self, batch_id: str, line: dict, call: dict, deadline: float) -> tuple[bool, dict] | None:
        """The record's line once its output or failure object exists or its deadline passed; else None."""
        cid = line["custom_id"]
        raw = self._get(*parse_s3_uri(call["output_location"]))
        if raw is not None:
            return self._output(batch_id, cid, call, raw)
        if call.get("failure_location"):
            raw = self._get(*parse_s3_uri(call["failure_location"]))
            if raw is not None:
                text = raw[:ERROR_TEXT_MAX].decode(errors="replace")
                return False, error_line(batch_id, cid, "sagemaker_async_failure",
                                         f"endpoint {self.backend.endpoint_name} failed inference "
                                         f"{call['inference_id']}: {text}")
        waited = self.clock() - float(call["invoked_at"])
        if waited > deadline:
            return False, error_line(batch_id, cid, "timeout",
                                     f"no result from endpoint {self.backend.endpoint_name} for inference "
                                     f"{call['inference_id']} within {deadline:.0f} s of its invocation")
        return None

    def _output(self, batch_id: str, cid: str, call: dict, raw: bytes) -> tuple[bool, dict]:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError(f"a JSON {type(body).__name__}")
        except ValueError as exc:
            return False, error_line(batch_id, cid, "malformed_output",
                                     f"the output of inference {call['inference_id']} is not a JSON object ({exc}): "
                                     f"{raw[:80]!r}")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        tokens = usage.get("total_tokens")
        self.on_tokens(tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0)
        response = {"status_code": 200, "request_id": call["inference_id"], "body": body}
        return True, {"id": request_id(batch_id, cid), "custom_id": cid, "response": response, "error": None}
