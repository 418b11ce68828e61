"""The shared SQS loop (serving/aws/sqs_worker.py) on in-process moto, with a worker whose units are trivial: the
idle exit, a message received while stopping is queued again (no receive spent, never handled), requeue falling back
to release, a stale receipt's delete, the outcome counter and the environment's number reader. The batch and
ingestion workers' own tests cover the same pieces through their units (the heartbeat:
tests/serving/batch/test_worker.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from serving.aws.sqs_worker import MAX_WAIT_SECONDS, SqsWorker, env_numbers, outcome_counter, receive_count
from tests.kit.aws import RefusingSend, make_queue_pair


@dataclass
class Cfg:
    queue_url: str
    visibility_seconds: int = 30
    heartbeat_seconds: float | None = None
    idle_exit_seconds: float = 0.0
    metrics_port: int = 0


class Echo(SqsWorker):
    """Deletes every message it handles and remembers its body."""

    def __init__(self, cfg: Cfg, sqs) -> None:
        self.cfg, self.sqs, self.stop = cfg, sqs, threading.Event()
        self.handled: list[str] = []

    def handle(self, msg: dict) -> str:
        self.handled.append(msg["Body"])
        self.delete(msg["ReceiptHandle"])
        return "done"


@pytest.fixture
def queue(moto_aws):
    s3, sqs = moto_aws
    q, _ = make_queue_pair(s3, sqs, bucket="loop-test", name="loop", max_receives=2)
    return sqs, q


def receive(sqs, q, visibility: int = 30) -> dict | None:
    got = sqs.receive_message(QueueUrl=q, VisibilityTimeout=visibility, AttributeNames=["All"]).get("Messages")
    return got[0] if got else None


def test_run_handles_every_message_then_exits_on_the_idle_timeout(queue):
    sqs, q = queue
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=q, MessageBody=body)
    w = Echo(Cfg(q, idle_exit_seconds=0.2), sqs)
    assert w.run() == 0
    assert w.handled == ["a", "b"] and receive(sqs, q) is None


def test_a_message_received_while_stopping_is_queued_again_unhandled_and_without_a_receive(queue):
    sqs, q = queue
    sqs.send_message(QueueUrl=q, MessageBody="late")

    class StopDuringPoll:  # SIGTERM arrives while the long poll is waiting
        def __init__(self, inner, stop):
            self.inner, self.stop = inner, stop

        def receive_message(self, **kw):
            got = self.inner.receive_message(**kw)
            self.stop.set()
            return got

        def __getattr__(self, name):
            return getattr(self.inner, name)

    w = Echo(Cfg(q, idle_exit_seconds=5), sqs)
    w.sqs = StopDuringPoll(sqs, w.stop)
    assert w.run() == 0
    assert w.handled == []
    again = receive(sqs, q)
    assert again["Body"] == "late" and receive_count(again) == 1


def test_requeue_releases_when_the_send_fails_and_a_stale_delete_is_only_logged(queue, caplog):
    sqs, q = queue
    sqs.send_message(QueueUrl=q, MessageBody="x")
    w = Echo(Cfg(q), RefusingSend(sqs))
    w.requeue(receive(sqs, q))
    again = receive(sqs, q)
    assert again is not None and receive_count(again) == 2, "released (visibility 0): one receive spent"
    assert "could not requeue the interrupted message, releasing it instead" in caplog.text
    w.delete("not-a-receipt")
    assert "could not delete message" in caplog.text


def test_idle_exit_none_means_the_loop_polls_until_stopped():
    class Empty:  # an empty queue that answers each long poll at once
        def __init__(self):
            self.waits: list[int] = []

        def receive_message(self, **kw):
            self.waits.append(kw["WaitTimeSeconds"])
            time.sleep(0.02)
            return {}

    class Forever(Echo):
        def idle_exit_after(self):
            return None

    w = Forever(Cfg("https://sqs.example/q"), Empty())
    t = threading.Thread(target=w.run)
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "idle_exit_seconds 0 would have returned at once"
    w.stop.set()
    t.join(5)
    assert not t.is_alive() and len(w.sqs.waits) > 3 and set(w.sqs.waits) == {MAX_WAIT_SECONDS}


def test_the_outcome_counter_has_every_series_from_the_start():
    reg = CollectorRegistry()
    c = outcome_counter(reg, "genai_scale_test_units_total", "Unit messages", ("done", "failed"))
    c.labels("done").inc()
    assert reg.get_sample_value("genai_scale_test_units_total", {"outcome": "done"}) == 1
    assert reg.get_sample_value("genai_scale_test_units_total", {"outcome": "failed"}) == 0
    (family,) = [m for m in reg.collect() if m.name == "genai_scale_test_units"]
    assert family.documentation == "Unit messages handled, by outcome (done, failed)"


def test_the_number_reader_names_the_worker_the_variable_and_the_expectation():
    num = env_numbers({"A": "7", "F": "0.5", "BAD": "x", "LOW": "0", "EMPTY": ""}, "rag worker")
    assert (num("A", 1), num("F", 1.0, float), num("EMPTY", 3), num("UNSET", 4)) == (7, 0.5, 3, 4)
    with pytest.raises(SystemExit, match=r"^rag worker: BAD = 'x': expected a number$"):
        num("BAD", 1)
    with pytest.raises(SystemExit, match=r"^rag worker: LOW = '0': expected a number >= 1$"):
        num("LOW", 1, low=1)
    with pytest.raises(SystemExit, match=r"^rag worker: F = '0.5': expected a number$"):
        num("F", 1)  # an int variable given a fraction
