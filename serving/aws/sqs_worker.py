"""The SQS consumer loop the queue workers share: the batch shard worker (``serving.batch.worker``) and the RAG
ingestion worker (``serving.rag.worker``) take one message at a time from one queue and differ only in what a
message means.

:class:`SqsWorker` holds the queue side; a worker subclasses it and implements :meth:`SqsWorker.handle`:

- **receive**: one message, long-polled for at most 5 s (less when the idle exit is nearer), with the visibility
  timeout set at receive and ``ApproximateReceiveCount`` asked for (:func:`receive_count`; a worker writes its failure
  reason on the dead-letter queue's last allowed receive).
- **heartbeat**: while a unit runs, its visibility is renewed every ``heartbeat_seconds`` (default a third of the
  visibility timeout), so a unit longer than the timeout is never handed to a second worker.
- **release** (visibility 0): a failed unit comes back at once and spends a receive, walking a poison unit toward the
  dead-letter queue.
- **requeue** on SIGTERM: an interrupted unit is sent again as a new message (receive count 0) and the received one
  deleted. SQS counts every receive toward the dead-letter queue's ``maxReceiveCount``, so releasing it would let a few
  scale-ins or spot interruptions send a healthy unit to the DLQ. If the send fails (e.g. no ``sqs:SendMessage``) the
  message is released instead; if the delete fails the unit is queued twice, which the workers' idempotence (a
  shard's ``.done`` marker, a document's version and one-transaction replace) makes harmless.
- **delete**: a finished (or skipped) unit's message; a stale receipt is logged, not raised (the redelivery is a
  no-op for an idempotent worker).
- **signals**: SIGTERM and SIGINT set ``stop``; the loop takes no new message, a message received during the poll
  is requeued at once, and the worker's ``handle`` abandons the running unit (``stop`` is its to watch) and requeues it.

- **process**: :func:`serve` is a worker's main (logging, signals, the Prometheus registry on ``metrics_port``
  before the first receive, then the loop); :func:`env_numbers` reads its numeric environment variables with one
  message shape; :func:`outcome_counter` is its messages-by-outcome counter.

Behaviour every worker keeps: at-least-once delivery, so a unit's output is written once and atomically, and a
redelivered unit whose output exists is skipped. IAM a worker needs on its queue: ``sqs:ReceiveMessage``,
``sqs:ChangeMessageVisibility``, ``sqs:DeleteMessage`` and ``sqs:SendMessage`` (the requeue).

It lives in ``serving/aws`` because both workers run from the gateway image, which carries that package.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

__all__ = ["MAX_WAIT_SECONDS", "QueueSettings", "SqsWorker", "env_numbers", "outcome_counter", "receive_count",
           "serve"]

MAX_WAIT_SECONDS = 5
"""Longest long poll of one receive, so a SIGTERM or the idle exit is noticed within seconds (SQS allows 20)."""


class QueueSettings(Protocol):
    """The settings :class:`SqsWorker` reads from a worker's ``cfg`` (both workers' ``WorkerConfig`` have them)."""

    queue_url: str
    visibility_seconds: int
    heartbeat_seconds: float | None
    idle_exit_seconds: float
    metrics_port: int


def env_numbers(env: Mapping[str, str], who: str) -> Callable[..., Any]:
    """The number reader of a worker's ``from_env``: ``num(name, default, kind=int, low=0)`` is ``kind(env[name])``,
    or ``default`` when unset or empty; a value that does not parse, or is below ``low``, exits with
    ``"<who>: NAME = 'raw': expected a number"`` (``... >= <low>``)."""
    def num(name: str, default: Any, kind: Callable[[str], Any] = int, low: float = 0) -> Any:
        raw = env.get(name)
        if raw in (None, ""):
            return default
        try:
            v = kind(raw)
        except ValueError:
            raise SystemExit(f"{who}: {name} = {raw!r}: expected a number") from None
        if v < low:
            raise SystemExit(f"{who}: {name} = {raw!r}: expected a number >= {low}")
        return v

    return num


def receive_count(msg: Mapping[str, Any]) -> int:
    """The message's ``ApproximateReceiveCount`` (1 when SQS did not say)."""
    return int((msg.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))


def outcome_counter(registry: Any, name: str, what: str, outcomes: tuple[str, ...]):
    """A Prometheus counter of messages handled, labelled ``outcome``, with every outcome's series created at 0 (so
    ``rate()`` sees a short-lived pod's first increment). Help text: ``<what> handled, by outcome (<outcomes>)``."""
    from prometheus_client import Counter

    counter = Counter(name, f"{what} handled, by outcome ({', '.join(outcomes)})", ["outcome"], registry=registry)
    for outcome in outcomes:
        counter.labels(outcome)
    return counter


class SqsWorker:
    """The queue side of a worker. A subclass sets ``cfg`` (:class:`QueueSettings`), ``sqs`` (a boto3 SQS client),
    ``stop`` (a ``threading.Event``) and ``metrics`` (with a Prometheus ``registry``) in its ``__init__``, and
    implements :meth:`handle`. Every call reads ``self.cfg`` and ``self.sqs`` when it is made, so either may be
    replaced after construction (tests do)."""

    cfg: Any
    sqs: Any
    stop: threading.Event
    metrics: Any
    log: ClassVar[logging.Logger] = logging.getLogger("serving.aws.sqs_worker")
    """The worker's logger (a subclass sets its module's)."""

    # -- what a worker implements ------------------------------------------------------------------------------
    def handle(self, msg: dict) -> str:
        """Handle one received message and settle it (delete, release or requeue); returns its outcome."""
        raise NotImplementedError

    def idle_exit_after(self) -> float | None:
        """Seconds of empty queue after which :meth:`run` returns; None: never. Default: ``cfg.idle_exit_seconds``
        (0: return as soon as a poll finds the queue empty)."""
        return self.cfg.idle_exit_seconds

    # -- the loop ------------------------------------------------------------------------------------------------
    def install_signals(self) -> None:
        """SIGTERM and SIGINT set ``stop``: finish no new work (main thread only)."""
        def on_term(signum, frame):
            self.log.info("signal %s: finishing no new work", signum)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)

    def run(self) -> int:
        """Handle messages until ``stop`` is set or the queue has been empty for :meth:`idle_exit_after`; returns 0."""
        idle_exit = self.idle_exit_after()
        idle_since = time.monotonic()
        while not self.stop.is_set():
            wait = MAX_WAIT_SECONDS
            if idle_exit is not None:
                left = idle_exit - (time.monotonic() - idle_since)
                if left <= 0:
                    self.log.info("queue empty for %s s: exiting", idle_exit)
                    break
                wait = min(MAX_WAIT_SECONDS, int(left))  # whole seconds (the API's unit)
            msg = self.receive(wait)
            if msg is None:
                if wait == 0:  # under a second of the idle budget left: this short poll found nothing
                    self.log.info("queue empty for %s s: exiting", idle_exit)
                    break
                continue
            if self.stop.is_set():  # SIGTERM during the poll: hand the message back at once
                self.requeue(msg)
                break
            self.handle(msg)
            idle_since = time.monotonic()
        return 0

    def receive(self, wait_seconds: int) -> dict | None:
        """One message (visibility ``cfg.visibility_seconds``, with its receive count), or None after the poll."""
        resp = self.sqs.receive_message(QueueUrl=self.cfg.queue_url, MaxNumberOfMessages=1,
                                        WaitTimeSeconds=wait_seconds, VisibilityTimeout=self.cfg.visibility_seconds,
                                        AttributeNames=["ApproximateReceiveCount"])
        msgs = resp.get("Messages") or []
        return msgs[0] if msgs else None

    # -- settling a message ----------------------------------------------------------------------------------------
    @contextmanager
    def heartbeat(self, receipt: str) -> Iterator[None]:
        """Renew the message's visibility every ``cfg.heartbeat_seconds`` (default a third of the visibility
        timeout, at least 1 s) while the block runs."""
        done = threading.Event()
        threading.Thread(target=self._beat, args=(receipt, done), daemon=True).start()
        try:
            yield
        finally:
            done.set()

    def _beat(self, receipt: str, done: threading.Event) -> None:
        every = self.cfg.heartbeat_seconds or max(1.0, self.cfg.visibility_seconds / 3)
        while not done.wait(every):
            try:
                self.sqs.change_message_visibility(QueueUrl=self.cfg.queue_url, ReceiptHandle=receipt,
                                                   VisibilityTimeout=self.cfg.visibility_seconds)
            except Exception as exc:
                self.log.warning("heartbeat failed: %s", exc)

    def release(self, receipt: str) -> None:
        """Make the message visible again at once (visibility 0); this spends one of its receives."""
        try:
            self.sqs.change_message_visibility(QueueUrl=self.cfg.queue_url, ReceiptHandle=receipt,
                                               VisibilityTimeout=0)
        except Exception as exc:  # the message then reappears after its visibility timeout
            self.log.warning("could not release message: %s", exc)

    def requeue(self, msg: dict) -> None:
        """Hand an interrupted unit back without spending a receive: send its body again as a new message, then
        delete the received one; if the send fails, release it instead."""
        try:
            self.sqs.send_message(QueueUrl=self.cfg.queue_url, MessageBody=msg["Body"])
        except Exception as exc:
            self.log.warning("could not requeue the interrupted message, releasing it instead: %s", exc)
            self.release(msg["ReceiptHandle"])
            return
        self.delete(msg["ReceiptHandle"])

    def delete(self, receipt: str) -> None:
        """Delete the message; a failure (a stale receipt: the message was redelivered) is logged, not raised."""
        try:
            self.sqs.delete_message(QueueUrl=self.cfg.queue_url, ReceiptHandle=receipt)
        except Exception as exc:
            self.log.warning("could not delete message: %s", exc)


def serve(worker: SqsWorker) -> int:
    """A worker process's main: log to stderr, install the signal handlers, serve the worker's Prometheus registry on
    ``cfg.metrics_port`` (0: not served) before taking messages, then :meth:`SqsWorker.run`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker.install_signals()
    if worker.cfg.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(worker.cfg.metrics_port, registry=worker.metrics.registry)
    return worker.run()
