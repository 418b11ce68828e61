"""Fault tests with real worker processes (``python -m serving.batch worker``) against a moto server and the stub
engine. In every case the assembled output has every custom_id exactly once, or an error line for it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from serving.batch.finalize import finalize
from serving.batch.shards import Layout
from tests.serving.batch.conftest import (
    BUCKET,
    FAKE_CREDS,
    REGION,
    assert_exactly_once,
    batch_input,
    make_queues,
    read_lines,
    server_env,
    submit_batch,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def remote(moto_server, request):
    kw = dict(endpoint_url=moto_server, region_name=REGION, aws_access_key_id=FAKE_CREDS["AWS_ACCESS_KEY_ID"],
              aws_secret_access_key=FAKE_CREDS["AWS_SECRET_ACCESS_KEY"])
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    return s3, sqs, moto_server


def spawn(endpoint: str, queue_url: str, engine_url: str, log: Path, *, aws_env: dict[str, str] | None = None,
          **env: object) -> subprocess.Popen:
    """A worker process; ``env`` items become ``BATCH_<NAME>`` variables, ``aws_env`` is added as given."""
    e = server_env(endpoint)
    e.update(BATCH_QUEUE_URL=queue_url, BATCH_BUCKET=BUCKET, BATCH_ENGINE_URL=engine_url,
             BATCH_CONCURRENCY="2", BATCH_IDLE_EXIT_SECONDS="3", BATCH_ENGINE_START_SECONDS="10")
    e.update({f"BATCH_{k.upper()}": str(v) for k, v in env.items()})
    e.update(aws_env or {})
    return subprocess.Popen([sys.executable, "-m", "serving.batch", "worker"], cwd=ROOT, env=e,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def note(case: str, n: int, counts: tuple[int, int], engine) -> None:
    """The counts of a fault case (``pytest -s`` shows them)."""
    print(f"\nfault {case}: records {n}, output {counts[0]}, errors {counts[1]}, "
          f"engine requests {engine.state.requests}")


def has(s3, key: str) -> bool:
    return "Contents" in s3.list_objects_v2(Bucket=BUCKET, Prefix=key)


def depth(sqs, q: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def test_sigkill_mid_shard_the_message_reappears_after_the_visibility_timeout(remote, stub_engine, tmp_path):
    s3, sqs, ep = remote
    q, _ = make_queues(s3, sqs, max_receives=3, suffix="-kill")
    submit_batch(s3, sqs, q, "batch_kill", batch_input(30), max_records=10)
    stub_engine.reset(delay_ms=200)  # 10 records, 2 in flight: ~1 s per shard
    a = spawn(ep, q, stub_engine.url, tmp_path / "a.log", visibility_seconds=3)
    wait_for(lambda: stub_engine.state.requests >= 3)
    a.send_signal(signal.SIGKILL)
    assert a.wait(timeout=5) == -signal.SIGKILL
    lay = Layout.of(BUCKET, "batch_kill")
    assert not has(s3, lay.done(0)) and not has(s3, lay.out(0)), "killed mid-shard: nothing committed"
    b = spawn(ep, q, stub_engine.url, tmp_path / "b.log", visibility_seconds=3)
    assert b.wait(timeout=30) == 0, (tmp_path / "b.log").read_text()
    m = finalize(s3, BUCKET, "batch_kill")
    assert m["status"] == "completed"
    counts = assert_exactly_once(s3, m, 30)
    assert counts == (30, 0)
    assert stub_engine.state.requests > 30  # shard 0 ran again
    note("sigkill", 30, counts, stub_engine)
    assert depth(sqs, q) == (0, 0)


def test_sigterm_releases_the_shard_and_another_worker_takes_it_at_once(remote, stub_engine, tmp_path):
    s3, sqs, ep = remote
    q, _ = make_queues(s3, sqs, max_receives=3, suffix="-term")
    submit_batch(s3, sqs, q, "batch_term", batch_input(30), max_records=10)
    stub_engine.reset(delay_ms=200)
    a = spawn(ep, q, stub_engine.url, tmp_path / "a.log", visibility_seconds=60)
    wait_for(lambda: stub_engine.state.requests >= 3)
    t0 = time.monotonic()
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5, "exits well within the grace period"
    assert "interrupted, shard queued again" in (tmp_path / "a.log").read_text()
    assert not has(s3, Layout.of(BUCKET, "batch_term").done(0))
    assert depth(sqs, q) == (3, 0), "the interrupted shard is visible again at once"
    t1 = time.monotonic()
    b = spawn(ep, q, stub_engine.url, tmp_path / "b.log", visibility_seconds=60, idle_exit_seconds=1)
    assert b.wait(timeout=30) == 0, (tmp_path / "b.log").read_text()
    assert time.monotonic() - t1 < 20, "no wait for the 60 s visibility timeout"
    m = finalize(s3, BUCKET, "batch_term")
    counts = assert_exactly_once(s3, m, 30)
    assert counts == (30, 0)
    note("sigterm", 30, counts, stub_engine)


def test_two_workers_on_one_shard_after_the_visibility_timeout_expired(remote, stub_engine, tmp_path):
    s3, sqs, ep = remote
    q, _ = make_queues(s3, sqs, max_receives=10, suffix="-two")
    submit_batch(s3, sqs, q, "batch_two", batch_input(10))
    stub_engine.reset(delay_ms=300)  # 10 records one at a time: ~3 s, three times the visibility timeout
    common = dict(visibility_seconds=1, heartbeat_seconds=1000, concurrency=1)  # no heartbeat: it expires
    a = spawn(ep, q, stub_engine.url, tmp_path / "a.log", **common)
    wait_for(lambda: stub_engine.state.requests >= 1)
    b = spawn(ep, q, stub_engine.url, tmp_path / "b.log", **common)
    assert a.wait(timeout=30) == 0 and b.wait(timeout=30) == 0
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert stub_engine.state.requests > 10, "both workers ran the shard"
    assert "shard 0: done" in logs
    m = finalize(s3, BUCKET, "batch_two")
    counts = assert_exactly_once(s3, m, 10)
    assert counts == (10, 0)
    note("two workers", 10, counts, stub_engine)
    assert depth(sqs, q) == (0, 0)


def test_a_poisoned_shard_lands_in_the_dlq_and_its_records_are_errors(remote, stub_engine, tmp_path):
    s3, sqs, ep = remote
    q, dlq = make_queues(s3, sqs, max_receives=2, suffix="-poison")
    submit_batch(s3, sqs, q, "batch_poison", batch_input(15, poison={7}), max_records=5)
    a = spawn(ep, q, stub_engine.url, tmp_path / "a.log", visibility_seconds=3, max_receives=2,
              idle_exit_seconds=2)
    assert a.wait(timeout=30) == 0, (tmp_path / "a.log").read_text()
    assert depth(sqs, q) == (0, 0)
    (dead,) = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0)["Messages"]
    assert json.loads(dead["Body"])["shard"] == 1
    lay = Layout.of(BUCKET, "batch_poison")
    assert "malformed body" in json.loads(s3.get_object(Bucket=BUCKET, Key=lay.failed(1))["Body"].read())["reason"]
    # a worker that crashed on its last attempt leaves no marker: the finaliser learns of the shard from the DLQ
    s3.delete_object(Bucket=BUCKET, Key=lay.failed(1))
    assert finalize(s3, BUCKET, "batch_poison")["status"] == "in_progress"
    m = finalize(s3, BUCKET, "batch_poison", sqs=sqs, dlq_url=dlq)
    assert m["status"] == "completed"
    assert m["progress"].items() >= {  # and records / tokens
        "shards_total": 3, "shards_done": 2, "shards_failed": 1, "shards_pending": 0}.items()
    counts = assert_exactly_once(s3, m, 15)
    assert counts == (10, 5)
    note("poisoned shard", 15, counts, stub_engine)
    errs = read_lines(s3, m["error_key"])
    assert [e["custom_id"] for e in errs] == [f"req-{i:05d}" for i in range(5, 10)]
    assert {e["error"]["code"] for e in errs} == {"shard_failed"}
    assert "dead-letter queue" in errs[0]["error"]["message"]
