"""`genai-scale batch status|cancel|results` on a batch of the Bedrock backend: in-process moto S3, a real
``bedrock`` client under botocore's ``Stubber``."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from serving.batch import bedrock as bb
from serving.batch.cli import main
from tests.serving.batch.conftest import BUCKET, REGION
from tests.serving.batch.test_bedrock import (
    JOB_ARN,
    MODEL_ID,
    ROLE,
    converse_output,
    job,
    lines,
    records,
)


@pytest.fixture
def bedrock(aws, monkeypatch):
    client = boto3.client("bedrock", region_name=REGION)
    real = boto3.client
    monkeypatch.setattr(boto3, "client", lambda name, **kw: client if name == "bedrock" else real(name, **kw))
    with Stubber(client) as stub:
        yield aws[0], client, stub
        stub.assert_no_pending_responses()


def submit(s3, client, stub, batch_id: str, n: int = 3) -> dict:
    recs = records(n)
    data, index = bb.records_file(recs)
    stub.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
    return bb.submit(s3, client, bucket=BUCKET, batch_id=batch_id, records=recs, input_bytes=lines(n),
                     records_bytes=data, index=index, model_id=MODEL_ID, role_arn=ROLE, region=REGION,
                     extra={"tenant": "acme"})


def test_status_and_results_poll_the_job_and_assemble_its_output(bedrock, capsys):
    s3, client, stub = bedrock
    m = submit(s3, client, stub, "batch_00000000000b0000000000000001")
    flags = ["--bucket", BUCKET, "--region", REGION]
    stub.add_response("get_model_invocation_job", job("InProgress"), {"jobIdentifier": JOB_ARN})
    assert main(["results", m["id"], *flags]) == 1
    assert "is in_progress" in capsys.readouterr().err
    key = f"{m['backend']['outputPrefix']}{bb.job_id(JOB_ARN)}/records.jsonl.out"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"".join(
        json.dumps({"recordId": bb.record_id(i), "modelOutput": converse_output(f"a{i}")}).encode() + b"\n"
        for i in (3, 1)))
    stub.add_response("get_model_invocation_job", job("Completed"), {"jobIdentifier": JOB_ARN})
    assert main(["status", m["id"], *flags]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["status"] == "completed" and st["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert main(["results", m["id"], *flags]) == 0  # terminal: no further Bedrock call
    assert [json.loads(x)["custom_id"] for x in capsys.readouterr().out.splitlines()] == ["req-00000", "req-00002"]
    assert main(["results", m["id"], *flags, "--errors"]) == 0
    err = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["custom_id"], x["error"]["code"]) for x in err] == [("req-00001", "missing_result")]


def test_cancel_stops_the_job(bedrock, capsys):
    s3, client, stub = bedrock
    m = submit(s3, client, stub, "batch_00000000000b0000000000000002")
    stub.add_response("stop_model_invocation_job", {}, {"jobIdentifier": JOB_ARN})
    stub.add_response("get_model_invocation_job", job("Stopping"), {"jobIdentifier": JOB_ARN})
    assert main(["cancel", m["id"], "--bucket", BUCKET]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelling"
    stub.add_client_error("get_model_invocation_job", "ThrottlingException", "Rate exceeded", 429)
    assert main(["status", m["id"], "--bucket", BUCKET]) == 3
    assert "AWS call failed (ThrottlingException)" in capsys.readouterr().err
