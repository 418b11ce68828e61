"""`genai-scale batch submit|status|cancel|results` against in-process moto S3/SQS and the stub engine."""

from __future__ import annotations

import json

import pytest

from infra.cli import main as genai_scale
from serving.batch.cli import main
from serving.batch.worker import Worker, WorkerConfig
from tests.serving.batch.conftest import BUCKET, MODEL, REGION, batch_input


def flags(aws) -> list[str]:
    return ["--bucket", BUCKET, "--queue-url", aws[2], "--region", REGION]


def submit(aws, tmp_path, capsys, data: bytes, *extra: str) -> dict:
    f = tmp_path / "in.jsonl"
    f.write_bytes(data)
    assert main(["submit", str(f), "--model", MODEL, *flags(aws), *extra]) == 0
    return json.loads(capsys.readouterr().out)


def run_worker(aws, engine) -> None:
    s3, sqs, q, _ = aws
    cfg = WorkerConfig(queue_url=q, bucket=BUCKET, engine_url=engine.url, idle_exit_seconds=0.5,
                       engine_start_seconds=5, concurrency=4)
    assert Worker(cfg, sqs=sqs, s3=s3).run() == 0


def test_help_alone_and_with_help(capsys):
    assert genai_scale(["batch"]) == 2
    out = capsys.readouterr().out
    assert "genai-scale batch" in out and all(c in out for c in ("submit", "status", "cancel", "results"))
    assert genai_scale(["batch", "--help"]) == 0
    assert "Batch inference for operators" in capsys.readouterr().out
    assert genai_scale(["batch", "submit", "--help"]) == 0
    assert "--model" in capsys.readouterr().out
    assert genai_scale(["--help"]) == 0
    assert "genai-scale batch submit|status|cancel|results" in capsys.readouterr().out


def test_submit_status_results_every_custom_id_once(aws, stub_engine, tmp_path, capsys):
    b = submit(aws, tmp_path, capsys, batch_input(5, reject={2}), "--shard-records", "2", "--metadata", "run=1")
    assert b["status"] == "in_progress" and b["shard_count"] == 3 and b["tenant"] == "operator"
    assert b["metadata"] == {"run": "1"} and b["id"].startswith("batch_")
    assert main(["results", b["id"], *flags(aws)]) == 1
    assert "is in_progress" in capsys.readouterr().err
    run_worker(aws, stub_engine)
    assert main(["status", b["id"], *flags(aws)]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["status"] == "completed" and st["request_counts"] == {"total": 5, "completed": 4, "failed": 1}
    out = tmp_path / "out.jsonl"
    assert main(["results", b["id"], *flags(aws), "-o", str(out)]) == 0
    ids = [json.loads(x)["custom_id"] for x in out.read_text().splitlines()]
    assert main(["results", b["id"], *flags(aws), "--errors"]) == 0
    errs = [json.loads(x)["custom_id"] for x in capsys.readouterr().out.splitlines()]
    assert errs == ["req-00002"] and sorted(ids + errs) == [f"req-{i:05d}" for i in range(5)]


def test_cancel_stops_the_remaining_shards(aws, stub_engine, tmp_path, capsys):
    b = submit(aws, tmp_path, capsys, batch_input(4), "--shard-records", "2")
    assert main(["cancel", b["id"], *flags(aws)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"  # no shard was running: settled at once
    run_worker(aws, stub_engine)
    assert stub_engine.state.requests == 0
    assert main(["status", b["id"], *flags(aws)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"


def test_a_bad_file_lists_every_bad_line_and_queues_nothing(aws, tmp_path, capsys):
    _, sqs, q, _ = aws
    data = batch_input(3) + b"{broken\n" + batch_input(1)  # line 5 repeats line 1's custom_id
    f = tmp_path / "bad.jsonl"
    f.write_bytes(data)
    assert main(["submit", str(f), "--model", MODEL, *flags(aws)]) == 2
    err = capsys.readouterr().err
    assert "line 4" in err and "not valid JSON" in err and "line 5" in err and "repeats line 1" in err
    assert "Messages" not in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=0)


@pytest.mark.parametrize(("argv", "words"), [
    (["status", "batch_x"], "--bucket required"),
    (["submit", "missing.jsonl", "--model", "m", "--bucket", "b"], "--queue-url required"),
    (["submit", "missing.jsonl", "--model", "m", "--bucket", "b", "--queue-url", "q"], "cannot read missing.jsonl"),
])
def test_usage_errors(aws, argv, words, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_an_unknown_batch_is_a_clear_error(aws, capsys):
    assert main(["status", "batch_nope", *flags(aws)]) == 2
    assert "no batch 'batch_nope'" in capsys.readouterr().err


def test_settings_come_from_a_gateway_config(aws, stub_engine, tmp_path, capsys):
    cfg = tmp_path / "gateway.yaml"
    doc = {
        "tenants": {"keys": {"t": ["0" * 64]}},
        "upstreams": {"u": {"kind": "openai", "baseUrl": "http://127.0.0.1:1/v1", "model": MODEL}},
        "routes": {MODEL: {"targets": [{"upstream": "u"}]}},
        "batch": {"enabled": True, "bucket": BUCKET, "queueUrl": aws[2], "region": REGION}}
    cfg.write_text(json.dumps(doc))
    f = tmp_path / "in.jsonl"
    f.write_bytes(batch_input(2))
    assert main(["submit", str(f), "--model", MODEL, "--config", str(cfg)]) == 0
    bid = json.loads(capsys.readouterr().out)["id"]
    run_worker(aws, stub_engine)
    assert main(["status", bid, "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    del doc["batch"]["bucket"]
    cfg.write_text(json.dumps(doc))
    assert main(["status", bid, "--config", str(cfg)]) == 2
    assert "batch.bucket" in capsys.readouterr().err
