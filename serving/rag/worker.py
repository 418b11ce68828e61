"""The ingestion worker: takes one document message at a time from SQS, chunks the document, embeds the chunks in
batches through an OpenAI-compatible ``/embeddings`` server, and replaces the document's chunks in the vector store.

Per message (``serving.rag.ingest``): (1) read the document object; missing (deleted since) or of another version
(re-ingested since) -> delete the message, nothing to do; (2) chunk (``serving.rag.chunking``), (3) embed in batches
of ``RAG_EMBED_BATCH`` while a heartbeat extends the message's visibility, (4) re-check the object's version, then
``upsert_document``: one transaction that deletes the old chunks and copies the new ones, so a worker killed at any
point leaves the old version whole and a redelivery writes the new one; (5) delete the message.

The store is PostgreSQL with pgvector or Qdrant, as ``RAG_STORE`` says (``serving.rag.connect``); both replace a
document's chunks idempotently.

Failures: any error (a bad document, an unknown collection, the embedding server or the database down) releases the
message at once (visibility 0); on its last allowed receive (``RAG_MAX_RECEIVES``, the DLQ's maxReceiveCount) the
worker first writes the reason to ``rag/failed/<tenant>/<collection>/<doc>.json``, then SQS moves the message to the
dead-letter queue when it is next received.

SIGTERM (scale-in, a node drain): stop taking messages, abandon the running document before its transaction, send
its message again as a new message (no receive spent, so interruptions never walk a healthy document toward the
dead-letter queue) and delete the received one, exit 0. The queue side (receive, heartbeat, release, requeue,
delete, signals, the metrics server) is :mod:`serving.aws.sqs_worker`, shared with the batch worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from serving.aws.sqs_worker import SqsWorker, env_numbers, outcome_counter, receive_count, serve
from serving.rag.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, Chunker
from serving.rag.connect import StoreSettings, open_store
from serving.rag.errors import VectorStoreError
from serving.rag.ingest import Message, failed_key, parse_message, validate_source
from serving.rag.store import Chunk

__all__ = ["Interrupted", "Metrics", "Worker", "WorkerConfig", "main"]

log = logging.getLogger("serving.rag.worker")

OUTCOMES = ("done", "skipped_stale", "skipped_deleted", "failed", "interrupted")
"""The ``outcome`` label values of ``genai_scale_rag_documents_total``."""


class Interrupted(Exception):
    """SIGTERM arrived while a document was being prepared (it is abandoned before its transaction)."""


@dataclass(frozen=True)
class WorkerConfig:
    """The worker's settings (:meth:`from_env` reads the variables the Kubernetes workload sets)."""

    queue_url: str
    bucket: str
    embed_url: str
    """OpenAI-compatible base URL of the embedding server (``RAG_EMBED_URL``), e.g. TEI's ``http://...:8080/v1``."""
    embed_model: str = "default"
    """The ``model`` sent to the embedding server (``RAG_EMBED_MODEL``; TEI ignores it)."""
    store: StoreSettings = field(default_factory=StoreSettings)
    region: str | None = None
    embed_batch: int = 32
    """Chunks per embedding request (``RAG_EMBED_BATCH``; TEI's default ``--max-client-batch-size`` is 32)."""
    embed_timeout_seconds: float = 60.0
    """Timeout of one embedding request (``RAG_EMBED_TIMEOUT_SECONDS``)."""
    max_tokens: int = DEFAULT_MAX_TOKENS
    """Chunk size in tokens (``RAG_CHUNK_MAX_TOKENS``)."""
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
    """Tokens a chunk repeats from the previous one (``RAG_CHUNK_OVERLAP_TOKENS``)."""
    visibility_seconds: int = 300
    """Visibility timeout set at receive and renewed by the heartbeat (``RAG_VISIBILITY_SECONDS``)."""
    max_receives: int = 3
    """The DLQ's maxReceiveCount: the last attempt writes the failure reason (``RAG_MAX_RECEIVES``)."""
    idle_exit_seconds: float = 0.0
    """Exit 0 after the queue has been empty this long (``RAG_IDLE_EXIT_SECONDS``; 0 = never: a Deployment scaled
    by a KEDA ScaledObject; a ScaledJob sets it so a Job ends when the queue is drained)."""
    heartbeat_seconds: float | None = None
    """Visibility renewal interval (default a third of the visibility timeout)."""
    metrics_port: int = 0
    """Prometheus metrics port (``RAG_METRICS_PORT``; 0 = not served; the Ingestion component sets 9090, its
    container port ``metrics``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerConfig:
        e = os.environ if env is None else env
        missing = [k for k in ("RAG_QUEUE_URL", "RAG_BUCKET", "RAG_EMBED_URL") if not e.get(k)]
        if missing:
            raise SystemExit(f"rag worker: {', '.join(missing)} must be set (see serving/rag/README.md)")

        num = env_numbers(e, "rag worker")
        hb = num("RAG_HEARTBEAT_SECONDS", 0.0, float)
        return cls(queue_url=e["RAG_QUEUE_URL"], bucket=e["RAG_BUCKET"], embed_url=e["RAG_EMBED_URL"],
                   embed_model=e.get("RAG_EMBED_MODEL") or "default", store=StoreSettings.from_env(e),
                   region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION"),
                   embed_batch=num("RAG_EMBED_BATCH", 32, low=1),
                   embed_timeout_seconds=num("RAG_EMBED_TIMEOUT_SECONDS", 60.0, float, low=1),
                   max_tokens=num("RAG_CHUNK_MAX_TOKENS", DEFAULT_MAX_TOKENS, low=8),
                   overlap_tokens=num("RAG_CHUNK_OVERLAP_TOKENS", DEFAULT_OVERLAP_TOKENS),
                   visibility_seconds=num("RAG_VISIBILITY_SECONDS", 300, low=1),
                   max_receives=num("RAG_MAX_RECEIVES", 3, low=1),
                   idle_exit_seconds=num("RAG_IDLE_EXIT_SECONDS", 0.0, float),
                   heartbeat_seconds=hb or None, metrics_port=num("RAG_METRICS_PORT", 0))


class Metrics:
    """The worker's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.documents = outcome_counter(self.registry, "genai_scale_rag_documents_total", "Document messages",
                                         OUTCOMES)
        self.chunks = Counter("genai_scale_rag_chunks_total", "Chunks embedded and written", registry=self.registry)
        self.seconds = Histogram("genai_scale_rag_document_seconds", "Wall time of an ingested document",
                                 buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=self.registry)


class Worker(SqsWorker):
    """The ingestion worker; the queue side (receive, heartbeat, release, requeue on SIGTERM, delete) is
    :class:`serving.aws.sqs_worker.SqsWorker`'s."""

    log = log

    def __init__(self, cfg: WorkerConfig, *, sqs=None, s3=None, store=None, embedder_factory=None,
                 metrics: Metrics | None = None):
        import boto3

        self.cfg = cfg
        self.sqs = sqs or boto3.client("sqs", region_name=cfg.region)
        self.s3 = s3 or boto3.client("s3", region_name=cfg.region)
        self._store = store
        self._embedders: dict[int, Any] = {}
        self._embedder_factory = embedder_factory
        self.chunker = Chunker(cfg.max_tokens, cfg.overlap_tokens)
        self.metrics = metrics or Metrics()
        self.stop = threading.Event()

    @property
    def store(self):
        if self._store is None:
            self._store = open_store(self.cfg.store)
        return self._store

    def embedder(self, dimensions: int):
        """The embedding client for a collection of ``dimensions`` (the server's answers are checked against it)."""
        if dimensions not in self._embedders:
            if self._embedder_factory is not None:
                self._embedders[dimensions] = self._embedder_factory(dimensions)
            else:
                from serving.gateway.embed import OpenAIEmbedder

                self._embedders[dimensions] = OpenAIEmbedder(
                    self.cfg.embed_url, self.cfg.embed_model, dimensions=dimensions,
                    timeout_s=self.cfg.embed_timeout_seconds, max_chars=10**9)
        return self._embedders[dimensions]

    # -- the loop ---------------------------------------------------------------------------------------------
    def idle_exit_after(self) -> float | None:
        """``idle_exit_seconds``, where 0 means never (a Deployment under a KEDA ScaledObject)."""
        return self.cfg.idle_exit_seconds or None

    def handle(self, msg: dict) -> str:
        """Ingest one document message; returns its outcome (the ``outcome`` label of the documents metric)."""
        receipt = msg["ReceiptHandle"]
        receives = receive_count(msg)
        started = time.monotonic()
        message: Message | None = None
        try:
            message = parse_message(msg["Body"])
            with self.heartbeat(receipt):
                outcome = self.ingest(message)
        except Interrupted:
            self.requeue(msg)
            self.metrics.documents.labels("interrupted").inc()
            log.info("document message %s: interrupted, queued again", msg.get("MessageId"))
            return "interrupted"
        except Exception as exc:
            reason = str(exc) if isinstance(exc, VectorStoreError) else f"{type(exc).__name__}: {exc}"
            self.metrics.documents.labels("failed").inc()
            log.error("document message %s: failed on receive %d of %d: %s", msg.get("MessageId"), receives,
                      self.cfg.max_receives, reason)
            if receives >= self.cfg.max_receives:
                self._write_failure(message, msg, reason, receives)
            self.release(receipt)
            return "failed"
        self.delete(receipt)  # if it fails, a redelivery finds the same version and rewrites the same chunks
        self.metrics.documents.labels(outcome).inc()
        if outcome == "done":
            self.metrics.seconds.observe(time.monotonic() - started)
        return outcome

    def _write_failure(self, message: Message | None, msg: dict, reason: str, receives: int) -> None:
        import json

        if message is None:  # a malformed message names no document: its reason goes to the log only
            return
        body = {"tenant": message.tenant, "collection": message.collection, "documentId": message.document_id,
                "version": message.version, "key": message.key, "reason": reason, "receives": receives,
                "messageId": msg.get("MessageId"), "failedAt": int(time.time())}
        try:
            self.s3.put_object(Bucket=self.cfg.bucket,
                               Key=failed_key(message.tenant, message.collection, message.document_id),
                               Body=json.dumps(body, indent=1).encode(), ContentType="application/json")
        except Exception as exc:
            log.error("could not write the failure reason: %s", exc)

    # -- one document -----------------------------------------------------------------------------------------
    def _version(self, key: str) -> str | None:
        """The document object's version, or None when it is gone."""
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.cfg.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return (head.get("Metadata") or {}).get("version")

    def ingest(self, m: Message) -> str:
        import json

        from botocore.exceptions import ClientError

        try:
            raw = self.s3.get_object(Bucket=self.cfg.bucket, Key=m.key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return "skipped_deleted"
            raise
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("the document object is not a JSON object")
        if doc.get("version") != m.version:
            return "skipped_stale"
        text, metadata = validate_source({"text": doc.get("text"), "metadata": doc.get("metadata")})
        info = self.store.describe_collection(m.collection)
        pieces = self.chunker.texts(text)
        embedder = self.embedder(info.dimensions)
        vectors: list[Any] = []
        for i in range(0, len(pieces), self.cfg.embed_batch):
            if self.stop.is_set():
                raise Interrupted()
            vectors.extend(embedder.embed_many(pieces[i:i + self.cfg.embed_batch]))
        if self.stop.is_set():
            raise Interrupted()
        if self._version(m.key) != m.version:  # re-ingested or deleted while this one was embedded
            return "skipped_stale"
        chunks = [Chunk(t, v, metadata) for t, v in zip(pieces, vectors)]
        self.store.upsert_document(m.collection, m.tenant, m.document_id, chunks)
        self.metrics.chunks.inc(len(chunks))
        log.info("document %s/%s/%s version %s: %d chunks", m.tenant, m.collection, m.document_id, m.version,
                 len(chunks))
        return "done"


def main(env: Mapping[str, str] | None = None) -> int:
    return serve(Worker(WorkerConfig.from_env(env)))
