"""The shard worker in-process (moto S3/SQS, the stub engine), and the finaliser."""

from __future__ import annotations

import json
import threading
import time

import pytest

from serving.batch.finalize import finalize
from serving.batch.shards import Layout, cancel, put_json
from serving.batch.worker import Worker, WorkerConfig, request_id
from tests.serving.batch.conftest import (
    BUCKET,
    MODEL,
    assert_exactly_once,
    batch_input,
    read_lines,
    submit_batch,
)


def worker(aws, engine, **kw) -> Worker:
    s3, sqs, q, _ = aws
    cfg = WorkerConfig(queue_url=q, bucket=BUCKET, engine_url=engine.url, idle_exit_seconds=0.5,
                       engine_start_seconds=5, concurrency=4, **kw)
    return Worker(cfg, sqs=sqs, s3=s3)


def receive(aws, visibility: int = 30) -> dict | None:
    s3, sqs, q, _ = aws
    got = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=1, VisibilityTimeout=visibility,
                              AttributeNames=["ApproximateReceiveCount"]).get("Messages")
    return got[0] if got else None


def queue_depth(aws) -> int:
    s3, sqs, q, _ = aws
    a = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def test_worker_runs_every_shard_commits_markers_and_empties_the_queue(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_w", batch_input(9, reject={4}), max_records=4)
    w = worker(aws, stub_engine)
    assert w.run() == 0
    lay = Layout.of(BUCKET, "batch_w")
    for n in range(3):
        assert json.loads(s3.get_object(Bucket=BUCKET, Key=lay.done(n))["Body"].read())["shard"] == n
    assert queue_depth(aws) == 0
    out = read_lines(s3, lay.out(0))
    assert [x["custom_id"] for x in out] == ["req-00000", "req-00001", "req-00002", "req-00003"]
    first = out[0]
    assert set(first) == {"id", "custom_id", "response", "error"} and first["error"] is None
    assert first["id"] == request_id("batch_w", "req-00000")
    assert first["response"]["status_code"] == 200 and first["response"]["body"]["object"] == "chat.completion"
    assert first["response"]["request_id"]
    (bad,) = read_lines(s3, lay.err(1))
    assert bad["custom_id"] == "req-00004" and bad["response"]["status_code"] == 400
    assert bad["error"] == {"code": "context_length_exceeded", "message": "prompt too long"}
    reg = w.metrics.registry
    assert reg.get_sample_value("genai_scale_batch_shards_total", {"outcome": "done"}) == 3
    assert reg.get_sample_value("genai_scale_batch_records_total", {"result": "ok"}) == 8
    assert reg.get_sample_value("genai_scale_batch_records_total", {"result": "error"}) == 1
    assert reg.get_sample_value("genai_scale_batch_tokens_total") > 0
    assert reg.get_sample_value("genai_scale_batch_shard_seconds_count") == 3


def test_a_shard_with_its_marker_is_skipped_and_its_message_deleted(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_s", batch_input(3))
    put_json(s3, BUCKET, Layout.of(BUCKET, "batch_s").done(0), {"shard": 0})
    w = worker(aws, stub_engine)
    assert w.handle(receive(aws)) == "skipped_done"
    assert stub_engine.state.requests == 0 and queue_depth(aws) == 0


def test_a_cancelled_batch_is_skipped_and_its_messages_deleted(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_x", batch_input(3))
    cancel(s3, BUCKET, "batch_x")
    assert worker(aws, stub_engine).handle(receive(aws)) == "skipped_cancelled"
    assert stub_engine.state.requests == 0 and queue_depth(aws) == 0


def test_an_engine_fault_fails_the_shard_and_the_last_receive_writes_the_failed_marker(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_p", batch_input(3, poison={1}))
    w = worker(aws, stub_engine, max_receives=2)
    lay = Layout.of(BUCKET, "batch_p")
    assert w.handle(receive(aws)) == "failed"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=lay.key("out/"))
    msg = receive(aws)  # released at once (visibility 0): no wait for the timeout
    assert msg["Attributes"]["ApproximateReceiveCount"] == "2"
    assert w.handle(msg) == "failed"
    failed = json.loads(s3.get_object(Bucket=BUCKET, Key=lay.failed(0))["Body"].read())
    assert "engine answered" in failed["reason"] and "malformed body" in failed["reason"]
    assert failed["receives"] == 2
    m = finalize(s3, BUCKET, "batch_p")
    assert m["status"] == "completed" and assert_exactly_once(s3, m, 3) == (0, 3)
    assert {e["error"]["code"] for e in read_lines(s3, m["error_key"])} == {"shard_failed"}


def test_a_malformed_message_is_left_for_the_dead_letter_queue(aws, stub_engine):
    s3, sqs, q, dlq = aws
    sqs.send_message(QueueUrl=q, MessageBody="not json")
    w = worker(aws, stub_engine)
    assert w.handle(receive(aws)) == "failed"
    assert w.handle(receive(aws)) == "failed"
    assert receive(aws) is None  # the third receive moved it (maxReceiveCount 2)
    assert sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"] == "not json"


def test_heartbeat_keeps_a_long_shard_invisible(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_h", batch_input(6))
    stub_engine.reset(delay_ms=400)
    w = worker(aws, stub_engine, visibility_seconds=1, heartbeat_seconds=0.3)
    w.cfg = WorkerConfig(**{**w.cfg.__dict__, "concurrency": 1})
    msg = receive(aws, visibility=1)
    t = threading.Thread(target=w.handle, args=(msg,))
    t.start()
    seen = []
    while t.is_alive():  # the shard takes ~2.4 s, more than twice the visibility timeout
        seen.append(receive(aws, visibility=1))
        time.sleep(0.2)
    assert seen and all(m is None for m in seen)
    assert stub_engine.state.requests == 6


def test_sigterm_does_not_use_a_receive(aws, stub_engine):
    """An interrupted shard comes back as a new message (receive count 1 again), so spot interruptions cannot walk a
    healthy shard into the dead-letter queue; the old message is gone (one message per shard)."""
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_t", batch_input(6))
    stub_engine.reset(delay_ms=300)
    w = worker(aws, stub_engine)
    w.cfg = WorkerConfig(**{**w.cfg.__dict__, "concurrency": 1})
    for attempt in range(3):  # three interruptions: with a release, the fourth receive would count 4
        msg = receive(aws)
        assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
        t = threading.Thread(target=lambda m=msg: w.handle(m))
        t.start()
        time.sleep(0.4)
        w.stop.set()  # what the SIGTERM handler does
        t.join(10)
        w.stop.clear()
        assert queue_depth(aws) == 1
    msg = receive(aws)
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
    assert w.handle(msg) == "done" and queue_depth(aws) == 0


def test_an_interrupted_shard_is_released_when_it_cannot_be_sent_again(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_u", batch_input(4))
    stub_engine.reset(delay_ms=300)
    w = worker(aws, stub_engine)
    w.cfg = WorkerConfig(**{**w.cfg.__dict__, "concurrency": 1})

    class NoSend:
        def __init__(self, inner):
            self.inner = inner

        def send_message(self, **kw):
            raise RuntimeError("AccessDenied: sqs:SendMessage")

        def __getattr__(self, name):
            return getattr(self.inner, name)

    w.sqs = NoSend(sqs)
    msg = receive(aws)
    t = threading.Thread(target=lambda: w.handle(msg))
    t.start()
    time.sleep(0.4)
    w.stop.set()
    t.join(10)
    again = receive(aws)  # released at once (visibility 0), so visible now
    assert again is not None and again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_worker_config_from_env():
    cfg = WorkerConfig.from_env({"BATCH_QUEUE_URL": "https://q", "BATCH_BUCKET": "b", "AWS_REGION": "eu-west-1",
                                 "BATCH_VISIBILITY_SECONDS": "60"})
    assert (cfg.engine_url, cfg.visibility_seconds, cfg.max_receives, cfg.region) == (
        "http://127.0.0.1:8000/v1", 60, 3, "eu-west-1")
    with pytest.raises(SystemExit, match="BATCH_QUEUE_URL, BATCH_BUCKET must be set"):
        WorkerConfig.from_env({})
    with pytest.raises(SystemExit, match="BATCH_MAX_RECEIVES = 'three': expected a number"):
        WorkerConfig.from_env({"BATCH_QUEUE_URL": "q", "BATCH_BUCKET": "b", "BATCH_MAX_RECEIVES": "three"})


# -- finaliser ----------------------------------------------------------------------------------------------------
def test_finalize_waits_for_every_shard_then_assembles_in_input_order(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_f", batch_input(10, reject={2, 7}), max_records=3)
    w = worker(aws, stub_engine)
    w.handle(receive(aws))
    m = finalize(s3, BUCKET, "batch_f")
    assert m["status"] == "in_progress"
    assert m["progress"].items() >= {  # and records / tokens
        "shards_total": 4, "shards_done": 1, "shards_failed": 0, "shards_pending": 3}.items()
    w.run()
    m = finalize(s3, BUCKET, "batch_f")
    assert m["status"] == "completed" and m["finalizing_at"] <= m["completed_at"]
    assert assert_exactly_once(s3, m, 10) == (8, 2)
    assert [x["custom_id"] for x in read_lines(s3, m["error_key"])] == ["req-00002", "req-00007"]
    before = s3.get_object(Bucket=BUCKET, Key=m["output_key"])["Body"].read()
    assert finalize(s3, BUCKET, "batch_f") == m  # idempotent
    assert s3.get_object(Bucket=BUCKET, Key=m["output_key"])["Body"].read() == before


def test_finalize_keeps_one_line_per_custom_id_when_out_and_err_overlap(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_d", batch_input(2))
    worker(aws, stub_engine).run()
    lay = Layout.of(BUCKET, "batch_d")
    out = s3.get_object(Bucket=BUCKET, Key=lay.out(0))["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=lay.out(0), Body=out + out)  # a result repeated
    s3.put_object(Bucket=BUCKET, Key=lay.err(0), Body=json.dumps(  # and an error for a record that succeeded
        {"id": "x", "custom_id": "req-00001", "response": None, "error": {"code": "c", "message": "m"}}).encode())
    m = finalize(s3, BUCKET, "batch_d")
    assert assert_exactly_once(s3, m, 2) == (2, 0)


def test_finalize_of_a_cancelled_batch_keeps_finished_shards(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_k", batch_input(4), max_records=2)
    w = worker(aws, stub_engine)
    w.handle(receive(aws))
    cancel(s3, BUCKET, "batch_k")
    assert w.handle(receive(aws)) == "skipped_cancelled"
    m = finalize(s3, BUCKET, "batch_k")
    assert m["status"] == "cancelled"
    assert m["request_counts"] == {"total": 4, "completed": 2, "failed": 0}
    assert [x["custom_id"] for x in read_lines(s3, m["output_key"])] == ["req-00000", "req-00001"]


def test_embeddings_shard(aws, stub_engine):
    s3, sqs, q, _ = aws
    from serving.batch.shards import submit
    from serving.batch.validate import Limits, validate_batch

    data = b"".join(json.dumps({"custom_id": f"req-{i:05d}", "method": "POST", "url": "/v1/embeddings",
                                "body": {"model": MODEL, "input": f"text {i}"}}).encode() + b"\n" for i in range(3))
    submit(s3, sqs, bucket=BUCKET, queue_url=q, batch_id="batch_e",
           records=validate_batch(data, Limits(allowed_models=(MODEL,))))
    worker(aws, stub_engine).run()
    m = finalize(s3, BUCKET, "batch_e")
    assert assert_exactly_once(s3, m, 3) == (3, 0)
    assert read_lines(s3, m["output_key"])[0]["response"]["body"]["object"] == "list"


def test_every_metric_series_exists_at_zero_before_the_first_shard():
    """A KEDA Job's pod may live for one shard: rate() needs the series at 0 before its first increment."""
    from serving.batch.worker import SHARD_OUTCOMES, Metrics

    reg = Metrics().registry
    for outcome in SHARD_OUTCOMES:
        assert reg.get_sample_value("genai_scale_batch_shards_total", {"outcome": outcome}) == 0
    for result in ("ok", "error"):
        assert reg.get_sample_value("genai_scale_batch_records_total", {"result": result}) == 0
