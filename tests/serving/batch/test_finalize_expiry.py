"""The finaliser's 24 h completion window (``expired``) and the progress it records (records and tokens)."""

from __future__ import annotations

import json

import pytest

from serving.batch.finalize import (
    COMPLETION_WINDOW_SECONDS,
    EXPIRED_MESSAGE,
    expires_at,
    finalize,
    is_past_window,
)
from serving.batch.shards import Layout, cancel, put_json
from serving.batch.worker import Worker, WorkerConfig, request_id
from tests.serving.batch.conftest import BUCKET, assert_exactly_once, batch_input, read_lines, submit_batch

DAY = 24 * 3600


def worker(aws, engine) -> Worker:
    s3, sqs, q, _ = aws
    cfg = WorkerConfig(queue_url=q, bucket=BUCKET, engine_url=engine.url, idle_exit_seconds=0.5,
                       engine_start_seconds=5, concurrency=4)
    return Worker(cfg, sqs=sqs, s3=s3)


def run_one_shard(aws, engine) -> str:
    s3, sqs, q, _ = aws
    (msg,) = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=1, VisibilityTimeout=30,
                                 AttributeNames=["ApproximateReceiveCount"])["Messages"]
    return worker(aws, engine).handle(msg)


def body(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_the_window_is_24_hours_from_creation():
    m = {"created_at": 1_000_000}
    assert COMPLETION_WINDOW_SECONDS == DAY
    assert expires_at(m) == 1_000_000 + DAY
    assert not is_past_window(m, 1_000_000 + DAY - 1)
    assert is_past_window(m, 1_000_000 + DAY)


def test_expired_with_some_shards_done_keeps_their_results_and_expires_the_rest(aws, stub_engine):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_x1", batch_input(6, reject={1}), max_records=2)
    assert run_one_shard(aws, stub_engine) == "done"  # shard 0: req-00000 ok, req-00001 rejected
    now = m0["created_at"] + DAY + 5
    m = finalize(s3, BUCKET, "batch_x1", now=now)
    assert m["status"] == "expired" and m["expired_at"] == now
    assert "completed_at" not in m and "finalizing_at" not in m
    assert assert_exactly_once(s3, m, 6) == (1, 5)
    assert m["request_counts"] == {"total": 6, "completed": 1, "failed": 5}
    assert [x["custom_id"] for x in read_lines(s3, m["output_key"])] == ["req-00000"]
    err = read_lines(s3, m["error_key"])
    assert [(x["custom_id"], x["error"]["code"]) for x in err] == [
        ("req-00001", "context_length_exceeded"), ("req-00002", "batch_expired"), ("req-00003", "batch_expired"),
        ("req-00004", "batch_expired"), ("req-00005", "batch_expired")]
    assert err[1] == {"id": request_id("batch_x1", "req-00002"), "custom_id": "req-00002", "response": None,
                      "error": {"code": "batch_expired", "message": EXPIRED_MESSAGE}}
    p = m["progress"]
    assert (p["shards_total"], p["shards_done"], p["shards_pending"], p["shards_expired"]) == (3, 1, 2, 2)
    assert (p["records_total"], p["records_settled"]) == (6, 2)


def test_expired_with_no_shard_done_has_an_error_line_for_every_record(aws):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_x0", batch_input(3), max_records=2)
    m = finalize(s3, BUCKET, "batch_x0", now=m0["created_at"] + 2 * DAY)
    assert m["status"] == "expired"
    assert assert_exactly_once(s3, m, 3) == (0, 3)
    assert body(s3, m["output_key"]) == b""
    assert {x["error"]["code"] for x in read_lines(s3, m["error_key"])} == {"batch_expired"}
    assert m["progress"]["shards_expired"] == 2 and m["progress"]["total_tokens"] is None


def test_the_boundary_is_exactly_created_at_plus_24_hours(aws):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_xb", batch_input(2))
    m = finalize(s3, BUCKET, "batch_xb", now=m0["created_at"] + DAY - 1)
    assert m["status"] == "in_progress" and m["output_key"] is None
    assert m["progress"]["shards_pending"] == 1 and "shards_expired" not in m["progress"]
    lay = Layout.of(BUCKET, "batch_xb")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key=lay.output)
    m = finalize(s3, BUCKET, "batch_xb", now=m0["created_at"] + DAY)
    assert m["status"] == "expired" and m["expired_at"] == m0["created_at"] + DAY


def test_rerunning_an_expired_batch_changes_nothing(aws, stub_engine):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_xi", batch_input(4), max_records=2)
    run_one_shard(aws, stub_engine)
    m = finalize(s3, BUCKET, "batch_xi", now=m0["created_at"] + DAY)
    out, err = body(s3, m["output_key"]), body(s3, m["error_key"])
    # a worker that was still running the other shard commits it after the batch expired
    lay = Layout.of(BUCKET, "batch_xi")
    s3.put_object(Bucket=BUCKET, Key=lay.out(1), Body=body(s3, lay.out(0)))
    s3.put_object(Bucket=BUCKET, Key=lay.err(1), Body=b"")
    put_json(s3, BUCKET, lay.done(1), {"shard": 1, "completed": 2, "failed": 0})
    again = finalize(s3, BUCKET, "batch_xi", now=m0["created_at"] + 3 * DAY)
    assert again == m and again["status"] == "expired"
    assert json.loads(body(s3, lay.manifest)) == m
    assert (body(s3, m["output_key"]), body(s3, m["error_key"])) == (out, err)


def test_a_batch_whose_shards_all_finished_completes_even_after_the_window(aws, stub_engine):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_xc", batch_input(3), max_records=2)
    worker(aws, stub_engine).run()
    m = finalize(s3, BUCKET, "batch_xc", now=m0["created_at"] + 2 * DAY)
    assert m["status"] == "completed" and "expired_at" not in m
    assert assert_exactly_once(s3, m, 3) == (3, 0)


def test_a_cancelling_batch_past_the_window_is_cancelled_not_expired(aws, stub_engine):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_xk", batch_input(4), max_records=2)
    run_one_shard(aws, stub_engine)
    cancel(s3, BUCKET, "batch_xk")
    m = finalize(s3, BUCKET, "batch_xk", now=m0["created_at"] + 2 * DAY)
    assert m["status"] == "cancelled"
    assert m["request_counts"] == {"total": 4, "completed": 2, "failed": 0}
    assert read_lines(s3, m["error_key"]) == []


def test_progress_counts_settled_records_and_the_engine_usage_of_finished_results(aws, stub_engine):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_pt", batch_input(5, reject={3}), max_records=2)
    m = finalize(s3, BUCKET, "batch_pt")
    assert m["progress"] == {"shards_total": 3, "shards_done": 0, "shards_failed": 0, "shards_pending": 3,
                             "records_total": 5, "records_settled": 0, "prompt_tokens": None,
                             "completion_tokens": None, "total_tokens": None}
    run_one_shard(aws, stub_engine)
    m = finalize(s3, BUCKET, "batch_pt")
    assert m["status"] == "in_progress" and m["progress"]["records_settled"] == 2
    first = read_lines(s3, Layout.of(BUCKET, "batch_pt").out(0))
    assert m["progress"]["total_tokens"] == sum(x["response"]["body"]["usage"]["total_tokens"] for x in first) > 0
    worker(aws, stub_engine).run()
    m = finalize(s3, BUCKET, "batch_pt")
    out = read_lines(s3, m["output_key"])
    assert len(out) == 4  # the rejected record has no usage
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert m["progress"][k] == sum(x["response"]["body"]["usage"][k] for x in out) > 0
    assert m["progress"]["records_settled"] == 5
    assert m["progress"]["total_tokens"] == m["progress"]["prompt_tokens"] + m["progress"]["completion_tokens"]


def test_the_worker_skips_the_shards_of_an_expired_batch(aws, stub_engine):
    s3, sqs, q, _ = aws
    m0 = submit_batch(s3, sqs, q, "batch_xw", batch_input(4), max_records=2)
    finalize(s3, BUCKET, "batch_xw", now=m0["created_at"] + DAY)
    assert run_one_shard(aws, stub_engine) == "skipped_cancelled"
    assert stub_engine.state.requests == 0
