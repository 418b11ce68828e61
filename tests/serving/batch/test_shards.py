"""Sharding, the S3 layout, the SQS messages and the batch state machine."""

from __future__ import annotations

import json

import pytest

from serving.batch.shards import Layout, TransitionError, cancel, split, transition
from serving.batch.validate import BatchRecord
from tests.serving.batch.conftest import (
    BUCKET,
    MODEL,
    batch_input,
    read_lines,
    submit_batch,
)


def recs(*tokens: int) -> list[BatchRecord]:
    return [BatchRecord(i + 1, f"r{i}", "/v1/completions", {"model": MODEL, "prompt": "x"}, t)
            for i, t in enumerate(tokens)]


def test_split_by_record_count_keeps_input_order():
    shards = split(recs(*[1] * 7), max_records=3)
    assert [[r.custom_id for r in s] for s in shards] == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]


def test_split_by_tokens_and_an_oversized_record_gets_its_own_shard():
    shards = split(recs(40, 40, 30, 500, 10), max_records=100, max_tokens=100)
    assert [[r.custom_id for r in s] for s in shards] == [["r0", "r1"], ["r2"], ["r3"], ["r4"]]


def test_split_rejects_zero_sizes():
    with pytest.raises(ValueError, match=r"max_records \(0\) and max_tokens \(5\) must be >= 1"):
        split(recs(1), max_records=0, max_tokens=5)


def test_layout_keys():
    lay = Layout.of("b", "batch_1")
    assert (lay.input, lay.manifest, lay.shard(7), lay.out(7), lay.err(7), lay.done(7), lay.output, lay.errors) == (
        "batches/batch_1/input.jsonl", "batches/batch_1/manifest.json", "batches/batch_1/shards/00007.jsonl",
        "batches/batch_1/out/00007.jsonl", "batches/batch_1/err/00007.jsonl", "batches/batch_1/out/00007.done",
        "batches/batch_1/output.jsonl", "batches/batch_1/errors.jsonl")


def test_submit_writes_layout_manifest_and_one_message_per_shard(aws):
    s3, sqs, q, _ = aws
    data = batch_input(25)
    m = submit_batch(s3, sqs, q, "batch_a", data, max_records=10)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["batches/batch_a/input.jsonl", "batches/batch_a/manifest.json",
                    "batches/batch_a/shards/00000.jsonl", "batches/batch_a/shards/00001.jsonl",
                    "batches/batch_a/shards/00002.jsonl"]
    assert s3.get_object(Bucket=BUCKET, Key="batches/batch_a/input.jsonl")["Body"].read() == data
    assert [x["custom_id"] for x in read_lines(s3, "batches/batch_a/shards/00002.jsonl")] == [
        f"req-{i:05d}" for i in range(20, 25)]
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="batches/batch_a/manifest.json")["Body"].read())
    assert stored == m
    assert (m["status"], m["endpoint"], m["model"], m["shard_count"], m["record_count"]) == (
        "in_progress", "/v1/chat/completions", MODEL, 3, 25)
    assert [s["records"] for s in m["shards"]] == [10, 10, 5]
    assert m["request_counts"] == {"total": 25, "completed": 0, "failed": 0}
    assert isinstance(m["created_at"], int) and m["in_progress_at"] >= m["created_at"]
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10).get("Messages") or []
        if not got:
            break
        bodies += [json.loads(x["Body"]) for x in got]
    assert sorted(bodies, key=lambda b: b["shard"]) == [
        {"batchId": "batch_a", "shard": i, "bucket": BUCKET, "prefix": "batches/batch_a",
         "endpoint": "/v1/chat/completions", "model": MODEL, "records": n} for i, n in enumerate([10, 10, 5])]


def test_state_machine_allows_openai_moves_and_refuses_others():
    m = {"id": "b", "status": "validating"}
    for to in ("in_progress", "finalizing", "completed"):
        transition(m, to, now=5)
    assert m["status"] == "completed" and m["completed_at"] == 5
    with pytest.raises(TransitionError, match=r"batch b: status 'completed' cannot become 'in_progress'; "
                                              r"allowed: none \(terminal\)"):
        transition(m, "in_progress")
    with pytest.raises(TransitionError, match=r"status 'cancelling' cannot become 'completed'; allowed: cancelled"):
        transition({"id": "b", "status": "cancelling"}, "completed")
    with pytest.raises(TransitionError, match="status 'done' is not a batch state"):
        transition({"id": "b", "status": "in_progress"}, "done")


def test_cancel_marks_cancelling_once(aws):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_c", batch_input(2))
    assert cancel(s3, BUCKET, "batch_c")["status"] == "cancelling"
    assert cancel(s3, BUCKET, "batch_c")["status"] == "cancelling"
