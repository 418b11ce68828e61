"""The shard worker: takes one shard message at a time from SQS, runs its records against the engine in the pod and
commits the shard's results to S3 atomically.

Per message: (1) the shard's commit marker ``out/<n>.done`` exists -> delete the message (a redelivery of finished
work); (2) the batch is ``cancelling``/``cancelled``/``expired`` -> delete the message; (3) run every record against the
engine (OpenAI-compatible HTTP, at most ``BATCH_CONCURRENCY`` in flight) while a heartbeat extends the message's
visibility; (4) write ``out/<n>.jsonl`` and ``err/<n>.jsonl``, then the ``.done`` marker; (5) delete the message.
A shard without its marker is not done: a retry overwrites whatever a previous attempt left.

Failures: a client error of one record (HTTP 4xx, or 5xx after retries) is a line of the shard's error file; an
engine fault (unreachable after retries, a 200 whose body is not a JSON object) fails the whole shard: its message
becomes visible again at once, and on its last allowed receive (``BATCH_MAX_RECEIVES``) the worker writes
``out/<n>.failed`` with the reason before SQS moves the message to the dead-letter queue.

SIGTERM (a node drain, including the spot two-minute notice): stop taking messages, abandon the running shard
without a marker, send its message again as a new one (no receive spent) and delete the received one, exit 0. The
queue side (receive, heartbeat, release, requeue, delete, signals) is :mod:`serving.aws.sqs_worker`, shared with the
RAG ingestion worker.

Backends: a message whose ``backend.kind`` is ``sagemaker-async`` runs its records on a SageMaker asynchronous
inference endpoint (:mod:`serving.batch.sagemaker_async`) instead of the engine in the pod, with the same markers,
heartbeat, release and dead-lettering. A worker started with ``BATCH_BACKEND=sagemaker-async`` (a dispatcher pod,
no engine sidecar) does not wait for an engine and fails any cluster shard it is given.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from serving.aws.sqs_worker import SqsWorker, env_numbers, outcome_counter, receive_count, serve
from serving.batch import sagemaker_async
from serving.batch.shards import (
    Interrupted,
    Layout,
    ShardFailed,
    error_line,
    get_json,
    jsonl,
    put_json,
    read_jsonl,
    request_id,
)

__all__ = ["Interrupted", "Metrics", "ShardFailed", "Worker", "WorkerConfig", "error_line", "main", "request_id"]

log = logging.getLogger("serving.batch.worker")


@dataclass(frozen=True)
class WorkerConfig:
    """The worker's settings (:meth:`from_env` reads the variables the Kubernetes Job sets)."""

    queue_url: str
    bucket: str
    region: str | None = None
    engine_url: str = "http://127.0.0.1:8000/v1"
    """OpenAI-compatible base URL of the engine (``BATCH_ENGINE_URL``)."""
    visibility_seconds: int = 900
    """Visibility timeout set at receive and renewed by the heartbeat (``BATCH_VISIBILITY_SECONDS``)."""
    max_receives: int = 3
    """The DLQ's maxReceiveCount: the last attempt writes the ``.failed`` marker (``BATCH_MAX_RECEIVES``)."""
    concurrency: int = 32
    """Records in flight against the engine (``BATCH_CONCURRENCY``); vLLM batches them continuously."""
    request_timeout_seconds: float = 600.0
    """Per-record HTTP timeout (``BATCH_REQUEST_TIMEOUT_SECONDS``)."""
    retries: int = 2
    """Extra attempts of a record on a connection error or 5xx (``BATCH_RETRIES``)."""
    idle_exit_seconds: float = 20.0
    """Exit 0 after the queue has been empty this long (``BATCH_IDLE_EXIT_SECONDS``): a KEDA Job ends when done."""
    engine_start_seconds: float = 900.0
    """How long to wait for the engine's ``/models`` before giving up (``BATCH_ENGINE_START_SECONDS``)."""
    heartbeat_seconds: float | None = None
    """Visibility renewal interval (default a third of the visibility timeout)."""
    metrics_port: int = 0
    """Prometheus metrics port (``BATCH_METRICS_PORT``; 0 = not served)."""
    backend: str = "cluster"
    """``BATCH_BACKEND``: ``cluster`` (a GPU worker with the engine sidecar: waits for the engine, runs cluster
    shards) or ``sagemaker-async`` (a dispatcher without an engine: no wait; runs only sagemaker-async shards)."""
    async_settings: sagemaker_async.AsyncSettings = field(default_factory=sagemaker_async.AsyncSettings)
    """Polling, RequestTTLSeconds and the per-record deadline of sagemaker-async shards (``BATCH_ASYNC_*``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerConfig:
        e = os.environ if env is None else env
        problems = [k for k in ("BATCH_QUEUE_URL", "BATCH_BUCKET") if not e.get(k)]
        if problems:
            raise SystemExit(f"batch worker: {', '.join(problems)} must be set (see serving/batch/README.md)")

        num = env_numbers(e, "batch worker")
        hb = e.get("BATCH_HEARTBEAT_SECONDS")
        backend = e.get("BATCH_BACKEND") or "cluster"
        if backend not in BACKENDS:
            raise SystemExit(f"batch worker: BATCH_BACKEND = {backend!r}: expected one of {', '.join(BACKENDS)}")
        ttl = num("BATCH_ASYNC_REQUEST_TTL_SECONDS", sagemaker_async.REQUEST_TTL_RANGE[1])
        lo, hi = sagemaker_async.REQUEST_TTL_RANGE
        if not lo <= ttl <= hi:
            raise SystemExit(f"batch worker: BATCH_ASYNC_REQUEST_TTL_SECONDS = {ttl}: expected {lo}..{hi} "
                             "(InvokeEndpointAsync RequestTTLSeconds)")

        def positive(name: str, default: float | None) -> float | None:
            v = num(name, default, float)
            if v is not None and v <= 0:
                raise SystemExit(f"batch worker: {name} = {e.get(name)!r}: expected a number > 0")
            return v

        d = sagemaker_async.AsyncSettings()
        asyncs = sagemaker_async.AsyncSettings(
            poll_seconds=positive("BATCH_ASYNC_POLL_SECONDS", d.poll_seconds),
            poll_max_seconds=positive("BATCH_ASYNC_POLL_MAX_SECONDS", d.poll_max_seconds),
            request_ttl_seconds=ttl, deadline_seconds=positive("BATCH_ASYNC_DEADLINE_SECONDS", d.deadline_seconds))
        return cls(queue_url=e["BATCH_QUEUE_URL"], bucket=e["BATCH_BUCKET"],
                   region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION"),
                   engine_url=e.get("BATCH_ENGINE_URL") or cls.engine_url,
                   visibility_seconds=num("BATCH_VISIBILITY_SECONDS", 900),
                   max_receives=num("BATCH_MAX_RECEIVES", 3),
                   concurrency=max(1, num("BATCH_CONCURRENCY", 32)),
                   request_timeout_seconds=num("BATCH_REQUEST_TIMEOUT_SECONDS", 600.0, float),
                   retries=num("BATCH_RETRIES", 2),
                   idle_exit_seconds=num("BATCH_IDLE_EXIT_SECONDS", 20.0, float),
                   engine_start_seconds=num("BATCH_ENGINE_START_SECONDS", 900.0, float),
                   heartbeat_seconds=float(hb) if hb else None,
                   metrics_port=num("BATCH_METRICS_PORT", 0), backend=backend, async_settings=asyncs)


BACKENDS = ("cluster", sagemaker_async.KIND)
"""Values of ``BATCH_BACKEND``."""


SHARD_OUTCOMES = ("done", "skipped_done", "skipped_cancelled", "failed", "interrupted")
"""The ``outcome`` label values of ``genai_scale_batch_shards_total``."""


class Metrics:
    """The worker's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.shards = outcome_counter(self.registry, "genai_scale_batch_shards_total", "Shard messages",
                                      SHARD_OUTCOMES)
        self.records = Counter("genai_scale_batch_records_total", "Records run, by result (ok, error)",
                               ["result"], registry=self.registry)
        self.tokens = Counter("genai_scale_batch_tokens_total", "Tokens reported in the engine's usage",
                              registry=self.registry)
        # every series exists from the start at 0, so rate() sees a short-lived pod's first increment
        for result in ("ok", "error"):
            self.records.labels(result)
        self.seconds = Histogram("genai_scale_batch_shard_seconds", "Wall time of a completed shard",
                                 buckets=(1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600),
                                 registry=self.registry)


class Worker(SqsWorker):
    """The shard worker; the queue side (receive, heartbeat, release, requeue on SIGTERM, delete) is
    :class:`serving.aws.sqs_worker.SqsWorker`'s."""

    log = log

    def __init__(self, cfg: WorkerConfig, *, sqs=None, s3=None, metrics: Metrics | None = None,
                 sagemaker_runtime=None):
        import boto3

        self.cfg = cfg
        self.sqs = sqs or boto3.client("sqs", region_name=cfg.region)
        self.s3 = s3 or boto3.client("s3", region_name=cfg.region)
        self.metrics = metrics or Metrics()
        self.stop = threading.Event()
        self._runtime = sagemaker_runtime
        """A ``sagemaker-runtime`` client for every Region (tests); None: one per Region, made when first needed."""
        self._runtimes: dict[str | None, Any] = {}

    # -- the loop ---------------------------------------------------------------------------------------------
    def wait_engine(self) -> None:
        deadline = time.monotonic() + self.cfg.engine_start_seconds
        url = self.cfg.engine_url.rstrip("/") + "/models"
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"batch worker: engine at {url} not ready after {self.cfg.engine_start_seconds} s")
            time.sleep(0.5)

    def run(self) -> int:
        """Handle messages until SIGTERM or until the queue has been empty for ``idle_exit_seconds``."""
        if self.cfg.backend == "cluster":  # a sagemaker-async dispatcher has no engine in its pod
            self.wait_engine()
        return super().run()

    def handle(self, msg: dict) -> str:
        """Run one shard message; returns its outcome (the ``outcome`` label of the shards metric)."""
        receipt = msg["ReceiptHandle"]
        receives = receive_count(msg)
        try:
            body = json.loads(msg["Body"])
            layout = Layout(body["bucket"], body["prefix"])
            shard = int(body["shard"])
            batch_id = str(body["batchId"])
            backend = body.get("backend") or {"kind": "cluster"}
            if not isinstance(backend, dict):
                raise TypeError(f"backend = {backend!r}: expected an object")
        except (ValueError, KeyError, TypeError) as exc:
            log.error("malformed shard message %s: %s (left for the dead-letter queue)", msg.get("MessageId"), exc)
            self.metrics.shards.labels("failed").inc()
            self.release(receipt)
            return "failed"
        started = time.monotonic()
        try:
            outcome = self.run_shard(layout, batch_id, shard, receipt, backend)
        except Interrupted:
            self.requeue(msg)
            self.metrics.shards.labels("interrupted").inc()
            log.info("batch %s shard %d: interrupted, shard queued again", batch_id, shard)
            return "interrupted"
        except Exception as exc:
            self.metrics.shards.labels("failed").inc()
            reason = f"{type(exc).__name__}: {exc}"
            log.error("batch %s shard %d: failed on receive %d of %d: %s", batch_id, shard, receives,
                      self.cfg.max_receives, reason)
            if receives >= self.cfg.max_receives:
                try:
                    put_json(self.s3, layout.bucket, layout.failed(shard),
                             {"shard": shard, "reason": reason, "receives": receives, "failed_at": int(time.time())})
                except Exception as put_exc:
                    log.error("could not write the failed marker: %s", put_exc)
            self.release(receipt)
            return "failed"
        self.delete(receipt)
        self.metrics.shards.labels(outcome).inc()
        if outcome == "done":
            self.metrics.seconds.observe(time.monotonic() - started)
        log.info("batch %s shard %d: %s in %.2f s", batch_id, shard, outcome, time.monotonic() - started)
        return outcome

    # -- one shard --------------------------------------------------------------------------------------------
    def _exists(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def run_shard(self, layout: Layout, batch_id: str, shard: int, receipt: str,
                  backend: dict[str, Any] | None = None) -> str:
        if self._exists(layout.bucket, layout.done(shard)):
            return "skipped_done"
        manifest = get_json(self.s3, layout.bucket, layout.manifest)
        if manifest.get("status") in ("cancelling", "cancelled", "failed", "expired"):  # failed: submit did not finish
            return "skipped_cancelled"
        lines = read_jsonl(self.s3.get_object(Bucket=layout.bucket, Key=layout.shard(shard))["Body"].read())
        with self.heartbeat(receipt):
            results = self._run_backend(backend or {"kind": "cluster"}, layout, batch_id, shard, lines, manifest)
        out = [r for ok, r in results if ok]
        err = [r for ok, r in results if not ok]
        if self._exists(layout.bucket, layout.done(shard)):
            return "skipped_done"  # another worker committed while this one ran: keep its files
        self.s3.put_object(Bucket=layout.bucket, Key=layout.out(shard), Body=jsonl(out))
        self.s3.put_object(Bucket=layout.bucket, Key=layout.err(shard), Body=jsonl(err))
        put_json(self.s3, layout.bucket, layout.done(shard),
                 {"shard": shard, "completed": len(out), "failed": len(err), "committed_at": time.time()})
        self.metrics.records.labels("ok").inc(len(out))
        self.metrics.records.labels("error").inc(len(err))
        return "done"

    def _run_backend(self, backend: dict[str, Any], layout: Layout, batch_id: str, shard: int, lines: list[dict],
                     manifest: dict[str, Any]) -> list[tuple[bool, dict]]:
        """Run the shard's records on the message's backend; raises Interrupted or ShardFailed."""
        kind = backend.get("kind")
        if kind == sagemaker_async.KIND:
            try:
                target = sagemaker_async.AsyncBackend.from_message(backend)
            except (TypeError, ValueError) as exc:
                raise ShardFailed(str(exc)) from None
            settings = replace(self.cfg.async_settings, concurrency=self.cfg.concurrency)
            try:
                first_line = int(manifest["shards"][shard]["first_line"])
            except (KeyError, IndexError, TypeError, ValueError):
                first_line = 1 + sum(int(s.get("records", 0)) for s in (manifest.get("shards") or [])[:shard])
            engine = sagemaker_async.AsyncShard(self.s3, self.runtime(target.region), target, settings,
                                                stop=self.stop, on_tokens=self.metrics.tokens.inc)
            return engine.run(layout, batch_id, shard, lines, first_line)
        if kind != "cluster":
            raise ShardFailed(f"backend.kind = {kind!r}: expected one of {', '.join(BACKENDS)}")
        if self.cfg.backend != "cluster":
            raise ShardFailed(f"a cluster shard on a {self.cfg.backend} dispatcher, which has no engine: the "
                              "managed-dispatch queue carries only sagemaker-async shards")
        return self._run_records(batch_id, lines)

    def runtime(self, region: str | None):
        """The ``sagemaker-runtime`` client of ``region`` (default: the worker's)."""
        if self._runtime is not None:
            return self._runtime
        key = region or self.cfg.region
        if key not in self._runtimes:
            import boto3

            self._runtimes[key] = boto3.client("sagemaker-runtime", region_name=key)
        return self._runtimes[key]

    def _run_records(self, batch_id: str, lines: list[dict]) -> list[tuple[bool, dict]]:
        """Every record's (ok, output line), in shard order; raises Interrupted or ShardFailed."""
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for i, line in enumerate(lines):
            todo.put((i, line))
        finished: queue.SimpleQueue = queue.SimpleQueue()
        abort = threading.Event()

        def work() -> None:
            while not (abort.is_set() or self.stop.is_set()):
                try:
                    i, line = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    finished.put((i, self.call(batch_id, line), None))
                except BaseException as exc:  # handed to the coordinating thread
                    finished.put((i, None, exc))

        for _ in range(min(self.cfg.concurrency, len(lines))):
            threading.Thread(target=work, daemon=True).start()
        results: list[Any] = [None] * len(lines)
        got = 0
        try:
            while got < len(lines):
                if self.stop.is_set():
                    raise Interrupted()
                try:
                    i, res, exc = finished.get(timeout=0.1)
                except queue.Empty:
                    continue
                if exc is not None:
                    raise ShardFailed(f"record {lines[i].get('custom_id')!r}: {exc}") from exc
                results[i] = res
                got += 1
        finally:
            abort.set()
        return results

    def call(self, batch_id: str, line: dict) -> tuple[bool, dict]:
        """One record against the engine: (True, output line) or (False, error line); raises on an engine fault."""
        cid = line["custom_id"]
        path = line["url"][3:] if line["url"].startswith("/v1/") else line["url"]
        url = self.cfg.engine_url.rstrip("/") + path
        data = json.dumps(line["body"]).encode()
        last: Exception | None = None
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                time.sleep(min(4.0, 0.25 * 2 ** attempt))
            req = urllib.request.Request(url, data=data, method="POST",
                                         headers={"content-type": "application/json", "x-request-id": cid})
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.request_timeout_seconds) as r:
                    status, raw, rid = r.status, r.read(), r.headers.get("x-request-id", "")
            except urllib.error.HTTPError as exc:
                status, raw, rid = exc.code, exc.read(), exc.headers.get("x-request-id", "")
            except (OSError, urllib.error.URLError) as exc:
                last = exc
                continue
            if status >= 500 and attempt < self.cfg.retries:
                continue
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError(f"a JSON {type(body).__name__}")
            except ValueError as exc:
                if status == 200:
                    raise ShardFailed(f"engine answered {url} with a malformed body ({exc}): {raw[:80]!r}") from None
                body = {"error": {"message": raw[:500].decode(errors="replace")}}
            response = {"status_code": status, "request_id": rid or str(body.get("id", "")), "body": body}
            if status == 200:
                usage = body.get("usage") or {}
                self.metrics.tokens.inc(int(usage.get("total_tokens") or 0))
                return True, {"id": request_id(batch_id, cid), "custom_id": cid, "response": response,
                              "error": None}
            err = body.get("error") if isinstance(body.get("error"), dict) else {}
            return False, error_line(batch_id, cid, str(err.get("code") or f"http_{status}"),
                                     str(err.get("message") or f"engine answered HTTP {status}"), response)
        raise ShardFailed(f"engine unreachable at {url} after {self.cfg.retries + 1} attempts: {last}")


def main(env: Mapping[str, str] | None = None) -> int:
    return serve(Worker(WorkerConfig.from_env(env)))
