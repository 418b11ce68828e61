"""The Bedrock batch backend (serving/batch/bedrock.py): the records file, the job request checked against botocore's
``bedrock`` service model with ``Stubber``, the status map, the join on recordId, and submit / poll / cancel over
moto S3 with a stubbed ``bedrock`` client."""

from __future__ import annotations

import base64
import json
import random
import re

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber

from serving.aws import InvalidRequest
from serving.batch import bedrock as bb
from serving.batch.validate import BatchValidationError, Limits, validate_batch
from tests.serving.batch.conftest import BUCKET, MODEL, REGION, read_lines

MODEL_ID = "amazon.nova-lite-v1:0"
ROLE = "arn:aws:iam::123456789012:role/genai-dev-bedrock-batch"
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcdef123456"
SERVICE = botocore.session.get_session().get_service_model("bedrock")


def shape(op: str, *path: str):
    s = SERVICE.operation_model(op).input_shape
    for p in path:
        s = s.members[p]
    return s


def lines(n: int, **body) -> bytes:
    rows = [{"custom_id": f"req-{i:05d}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": MODEL, "messages": [{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": f"question {i}"}],
                      "max_tokens": 8, **body}} for i in range(n)]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def records(n: int, **body):
    return validate_batch(lines(n, **body), Limits(allowed_models=(MODEL,)))


def converse_output(text: str, inp: int = 5, out: int = 3) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out}, "metrics": {"latencyMs": 9}}


# --- pure parts -----------------------------------------------------------------------------------------------------
def test_every_job_status_of_the_service_model_maps_to_an_openai_state():
    assert set(bb.STATUS_MAP) == set(SERVICE.shape_for("ModelInvocationJobStatus").enum)  # all ten
    assert {s: bb.openai_status(s) for s in bb.STATUS_MAP} == {
        "Submitted": "validating", "Validating": "validating", "Scheduled": "in_progress",
        "InProgress": "in_progress", "Completed": "completed", "PartiallyCompleted": "completed",
        "Failed": "failed", "Stopping": "cancelling", "Stopped": "cancelled", "Expired": "expired"}
    with pytest.raises(ValueError, match="unknown Bedrock job status 'Paused'; expected one of: Submitted"):
        bb.openai_status("Paused")


def test_record_ids_are_the_line_numbers_in_eleven_digits():
    assert bb.record_id(1) == "00000000001" and bb.record_id(50_000) == "00000050000"
    assert all(len(bb.record_id(n)) == 11 and bb.record_id(n).isalnum() for n in (1, 99, 10 ** 10))


def test_model_input_is_the_converse_body_without_model_id():
    body = {"model": MODEL, "max_tokens": 16, "temperature": 0.2, "stop": "END",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," +
                                                           base64.b64encode(b"\x89PNG").decode()}}]}]}
    got = bb.model_input(body)
    assert got == {"system": [{"text": "be brief"}],
                   "messages": [{"role": "user", "content": [
                       {"text": "what is this?"},
                       {"image": {"format": "png", "source": {"bytes": base64.b64encode(b"\x89PNG").decode()}}}]}],
                   "inferenceConfig": {"maxTokens": 16, "temperature": 0.2, "stopSequences": ["END"]}}
    json.dumps(got)  # JSON-ready: image bytes as base64
    with pytest.raises(InvalidRequest, match="do not run tool calls"):
        bb.model_input({**body, "tools": [{"type": "function", "function": {"name": "f"}}]})
    assert "toolConfig" not in bb.model_input({**body, "tools": [{"type": "function", "function": {"name": "f"}}],
                                               "tool_choice": "none"})
    with pytest.raises(InvalidRequest, match="n \\(Converse returns one choice\\)"):
        bb.model_input({**body, "n": 2})


def test_the_records_file_has_one_record_per_line_and_lists_every_line_bedrock_cannot_run():
    data, index = bb.records_file(records(3))
    rows = [json.loads(x) for x in data.splitlines()]
    assert [r["recordId"] for r in rows] == ["00000000001", "00000000002", "00000000003"]
    assert rows[0]["modelInput"]["messages"] == [{"role": "user", "content": [{"text": "question 0"}]}]
    assert [i[:2] for i in index] == [["00000000001", "req-00000"], ["00000000002", "req-00001"],
                                      ["00000000003", "req-00002"]]
    assert all(isinstance(i[2], int) and i[2] > 8 for i in index)
    bad = validate_batch(lines(2, logit_bias={"1": 5}), Limits(allowed_models=(MODEL,)))
    with pytest.raises(BatchValidationError) as exc:
        bb.records_file(bad)
    assert [(e.line, e.code) for e in exc.value.errors] == [(1, "unsupported_by_backend"),
                                                            (2, "unsupported_by_backend")]
    assert "line 2: not supported by Bedrock batch: not supported by Bedrock Converse: logit_bias" in str(exc.value)


def test_the_record_count_must_be_within_the_job_quotas():
    assert bb.check_count(100, 100, 50_000) is None and bb.check_count(50_000, 100, 50_000) is None
    assert bb.check_count(99, 100, 50_000) == (
        "the file has 99 requests; a Bedrock batch job needs at least 100 (the quota 'Minimum number of records per "
        "batch inference job'): add requests, or use a real-time route")
    assert bb.check_count(50_001, 100, 50_000) == (
        "the file has 50001 requests; a Bedrock batch job takes at most 50000: split the file")


def test_the_job_request_is_valid_for_the_service_model():
    batch_id = "batch_" + "0" * 11 + "f" + "a" * 16
    req = bb.job_request(batch_id=batch_id, model_id=MODEL_ID, role_arn=ROLE,
                         input_uri=f"s3://{BUCKET}/batches/{batch_id}/bedrock/input/records.jsonl",
                         output_uri=f"s3://{BUCKET}/batches/{batch_id}/bedrock/output/", timeout_hours=48,
                         tags={"team": "ml"})
    client = boto3.client("bedrock", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:  # Stubber validates the parameters against botocore's bedrock service model
        stub.add_response("create_model_invocation_job", {"jobArn": JOB_ARN}, req)
        assert client.create_model_invocation_job(**req)["jobArn"] == JOB_ARN
        stub.assert_no_pending_responses()
    op = "CreateModelInvocationJob"
    for value, path in ((req["jobName"], ("jobName",)), (req["clientRequestToken"], ("clientRequestToken",)),
                        (req["roleArn"], ("roleArn",)), (req["modelId"], ("modelId",))):
        meta = shape(op, *path).metadata
        assert re.fullmatch(meta["pattern"], value) and len(value) <= meta.get("max", 10 ** 6), (path, value)
    uri = shape(op, "inputDataConfig", "s3InputDataConfig", "s3Uri").metadata["pattern"]
    assert re.fullmatch(uri, req["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
    assert re.fullmatch(uri, req["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
    assert req["modelInvocationType"] == "Converse" and req["timeoutDurationInHours"] == 48
    assert req["inputDataConfig"]["s3InputDataConfig"]["s3InputFormat"] == "JSONL"
    assert req["tags"] == [{"key": "team", "value": "ml"}]
    assert bb.job_name(batch_id) == f"genai-scale-batch-{batch_id[6:]}" and bb.client_token(batch_id) == \
        f"batch-{batch_id[6:]}"
    assert bb.TIMEOUT_HOURS_RANGE == (shape(op, "timeoutDurationInHours").metadata["min"],
                                      shape(op, "timeoutDurationInHours").metadata["max"])
    assert re.fullmatch(shape(op, "modelId").metadata["pattern"], "us.amazon.nova-lite-v1:0")
    assert bb.MODEL_ID_PATTERN == shape(op, "modelId").metadata["pattern"]


def test_the_join_is_on_record_id_in_input_order_with_errors_and_missing_records():
    index = [[bb.record_id(i + 1), f"c{i}", 10 * (i + 1)] for i in range(5)]
    output = [{"recordId": bb.record_id(i + 1), "modelInput": {}, "modelOutput": converse_output(f"answer {i}")}
              for i in (0, 1, 3)]
    output.append({"recordId": bb.record_id(3), "modelInput": {}, "error": {"errorCode": 400,
                                                                           "errorMessage": "bad request"}})
    random.Random(7).shuffle(output)
    output.append({"recordId": bb.record_id(1), "modelOutput": converse_output("a repeat is ignored")})
    out, err, unrun = bb.join("batch_x", index, output, model="nova", created=1700000000,
                              missing=("missing_result", "no result"))
    assert [x["custom_id"] for x in out] == ["c0", "c1", "c3"]
    body = out[0]["response"]["body"]
    assert out[0]["response"]["status_code"] == 200 and out[0]["error"] is None
    assert body["object"] == "chat.completion" and body["model"] == "nova" and body["created"] == 1700000000
    assert body["choices"][0]["message"]["content"] == "answer 0" and body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    again, _, _ = bb.join("batch_x", index, output, model="nova", created=1700000000, missing=None)
    assert again == out  # ids are stable: a second assembly writes identical lines
    assert [(x["custom_id"], x["error"]["code"]) for x in err] == [("c2", "bedrock_400"), ("c4", "missing_result")]
    assert err[0]["error"]["message"] == "bad request" and err[0]["response"]["status_code"] == 400
    assert unrun == 50  # only the missing record did not run
    _, err, unrun = bb.join("batch_x", index, output, model="nova", created=0, missing=None)
    assert [x["custom_id"] for x in err] == ["c2"] and unrun == 50  # a cancelled batch lists no missing records


# --- submit / poll / cancel over moto S3 and a stubbed bedrock client -----------------------------------------------
@pytest.fixture
def env(aws):
    s3 = aws[0]
    client = boto3.client("bedrock", region_name=REGION)
    with Stubber(client) as stub:
        yield s3, client, stub


def submit(s3, client, stub, n: int = 5, *, batch_id: str = "batch_00000000000a0000000000000001",
           reservation: dict | None = None) -> dict:
    recs = records(n)
    data, index = bb.records_file(recs)
    stub.add_response("create_model_invocation_job", {"jobArn": JOB_ARN}, {
        "jobName": bb.job_name(batch_id), "roleArn": ROLE, "clientRequestToken": bb.client_token(batch_id),
        "modelId": MODEL_ID, "modelInvocationType": "Converse",
        "inputDataConfig": {"s3InputDataConfig": {
            "s3Uri": f"s3://{BUCKET}/batches/{batch_id}/bedrock/input/records.jsonl", "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/batches/{batch_id}/bedrock/output/"}},
        "timeoutDurationInHours": 24,
        "tags": [{"key": "genai-scale:batch-id", "value": batch_id}, {"key": "genai-scale:tenant", "value": "acme"}]})
    return bb.submit(s3, client, bucket=BUCKET, batch_id=batch_id, records=recs, input_bytes=lines(n),
                     records_bytes=data, index=index, model_id=MODEL_ID, role_arn=ROLE, region=REGION,
                     extra={"tenant": "acme", "reservation": reservation})


def job(status: str, **kw) -> dict:
    return {"jobArn": JOB_ARN, "jobName": "j", "modelId": MODEL_ID, "roleArn": ROLE, "status": status,
            "submitTime": "2026-12-06T00:00:00Z", "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/i"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o/"}}, **kw}


def write_output(s3, manifest: dict, rows: list[dict], *, folder: str = "abcdef123456") -> None:
    key = f"{manifest['backend']['outputPrefix']}{folder}/records.jsonl.out"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"".join(json.dumps(r).encode() + b"\n" for r in rows))


def poll(s3, client, stub, manifest, status: str, **kw):
    stub.add_response("get_model_invocation_job", job(status, **kw), {"jobIdentifier": JOB_ARN})
    return bb.poll(s3, client, BUCKET, manifest)


def test_submit_writes_the_records_and_creates_the_job_then_polls_to_completed(env):
    s3, client, stub = env
    m = submit(s3, client, stub, 5)
    assert m["status"] == "validating" and m["backend"]["jobArn"] == JOB_ARN and m["backend"]["kind"] == "bedrock"
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"batches/{m['id']}/manifest.json")["Body"].read())
    assert stored["backend"]["jobArn"] == JOB_ARN and stored["tenant"] == "acme"
    rows = read_lines(s3, f"batches/{m['id']}/bedrock/input/records.jsonl")
    assert [r["recordId"] for r in rows] == [bb.record_id(i) for i in range(1, 6)]
    assert s3.get_object(Bucket=BUCKET, Key=f"batches/{m['id']}/input.jsonl")["Body"].read() == lines(5)
    m, release = poll(s3, client, stub, m, "Validating")
    assert m["status"] == "validating" and release == 0
    m, _ = poll(s3, client, stub, m, "InProgress", processedRecordCount=2, successRecordCount=2,
                errorRecordCount=0)
    assert m["status"] == "in_progress" and m["request_counts"] == {"total": 5, "completed": 2, "failed": 0}
    out = [{"recordId": bb.record_id(i), "modelInput": {}, "modelOutput": converse_output(f"a{i}")} for i in (1, 2, 5)]
    out.append({"recordId": bb.record_id(3), "modelInput": {}, "error": {"errorCode": 429, "errorMessage": "busy"}})
    random.Random(1).shuffle(out)
    write_output(s3, m, out)
    m, release = poll(s3, client, stub, m, "PartiallyCompleted")
    assert m["status"] == "completed" and m["completed_at"] and m["finalizing_at"] and release == 0
    assert m["request_counts"] == {"total": 5, "completed": 3, "failed": 2}
    assert [x["custom_id"] for x in read_lines(s3, m["output_key"])] == ["req-00000", "req-00001", "req-00004"]
    assert [(x["custom_id"], x["error"]["code"]) for x in read_lines(s3, m["error_key"])] == [
        ("req-00002", "bedrock_429"), ("req-00003", "missing_result")]
    assert bb.poll(s3, client, BUCKET, m) == (m, 0)  # terminal: no more calls
    stub.assert_no_pending_responses()


def test_a_refused_create_leaves_a_failed_batch_with_the_reason(env):
    s3, client, stub = env
    recs = records(3)
    data, index = bb.records_file(recs)
    stub.add_client_error("create_model_invocation_job", "ValidationException", "The provided model identifier "
                          "is invalid.", 400)
    with pytest.raises(bb.JobCreateFailed, match="ValidationException: The provided model identifier is invalid."):
        bb.submit(s3, client, bucket=BUCKET, batch_id="batch_00000000000a0000000000000002", records=recs,
                  input_bytes=lines(3), records_bytes=data, index=index, model_id=MODEL_ID, role_arn=ROLE,
                  region=None)
    m = json.loads(s3.get_object(Bucket=BUCKET, Key="batches/batch_00000000000a0000000000000002/manifest.json")
                   ["Body"].read())
    assert m["status"] == "failed" and m["backend"]["jobArn"] is None
    assert m["errors"]["data"][0]["code"] == "bedrock_job_not_created"
    assert "ValidationException: The provided model identifier is invalid." in m["errors"]["data"][0]["message"]


def test_a_failed_job_fails_the_batch_and_gives_back_every_token(env):
    s3, client, stub = env
    m = submit(s3, client, stub, 3, reservation={"tenant": "acme", "day": "20261206", "tokens": 300, "released": 0})
    m, release = poll(s3, client, stub, m, "Failed", message="Access denied to the input location")
    assert m["status"] == "failed" and release == sum(s["tokens"] for s in m["shards"]) > 0
    assert m["unrun_tokens"] == release and m["reservation"]["released"] == 0  # the gateway gives it back
    assert m["errors"]["data"][0]["message"] == "the Bedrock batch job failed: Access denied to the input location"
    assert m["output_key"] is None


def test_cancel_stops_the_job_and_a_stopped_job_is_cancelled_with_its_finished_records(env):
    s3, client, stub = env
    m = submit(s3, client, stub, 4, reservation={"tenant": "acme", "day": "20261206", "tokens": 999, "released": 0})
    stub.add_response("stop_model_invocation_job", {}, {"jobIdentifier": JOB_ARN})
    m = bb.cancel(s3, client, BUCKET, m)
    assert m["status"] == "cancelling" and m["cancelling_at"]
    assert bb.cancel(s3, client, BUCKET, m)["status"] == "cancelling"  # once: no second StopModelInvocationJob
    m, release = poll(s3, client, stub, m, "InProgress")
    assert m["status"] == "cancelling" and release == 0
    m, _ = poll(s3, client, stub, m, "Stopping")
    assert m["status"] == "cancelling"
    write_output(s3, m, [{"recordId": bb.record_id(2), "modelOutput": converse_output("done")}])
    m, release = poll(s3, client, stub, m, "Stopped")
    assert m["status"] == "cancelled" and m["request_counts"] == {"total": 4, "completed": 1, "failed": 0}
    tokens = [i[2] for i in json.loads(s3.get_object(Bucket=BUCKET, Key=m["backend"]["indexKey"])["Body"].read())
              ["records"]]
    assert release == sum(tokens) - tokens[1] and m["unrun_tokens"] == release
    assert read_lines(s3, m["error_key"]) == []  # records that did not run are in neither file
    stub.assert_no_pending_responses()


def test_an_expired_job_keeps_its_results_and_the_rest_are_expired_lines(env):
    s3, client, stub = env
    m = submit(s3, client, stub, 3)
    write_output(s3, m, [{"recordId": bb.record_id(1), "modelOutput": converse_output("ok")}])
    m, _ = poll(s3, client, stub, m, "Expired")
    assert m["status"] == "expired" and m["expired_at"]
    assert [(x["custom_id"], x["error"]["code"]) for x in read_lines(s3, m["error_key"])] == [
        ("req-00001", "batch_expired"), ("req-00002", "batch_expired")]


def test_the_output_is_found_when_bedrock_writes_it_under_another_folder(env):
    s3, client, stub = env
    m = submit(s3, client, stub, 2)
    write_output(s3, m, [{"recordId": bb.record_id(i), "modelOutput": converse_output("x")} for i in (1, 2)],
                 folder="some-other-id")
    m, _ = poll(s3, client, stub, m, "Completed")
    assert m["status"] == "completed" and m["request_counts"]["completed"] == 2
    m2 = submit(s3, client, stub, 2, batch_id="batch_00000000000a0000000000000003")
    m2, _ = poll(s3, client, stub, m2, "Completed")  # no output at all: every record is a missing_result line
    assert [x["error"]["code"] for x in read_lines(s3, m2["error_key"])] == ["missing_result"] * 2


class FailingManifestPut:
    """S3 whose second write of a manifest fails (after the job was created)."""

    def __init__(self, real):
        self.real, self.manifests = real, 0

    def __getattr__(self, name):
        if name != "put_object":
            return getattr(self.real, name)

        def put(**kw):
            if kw["Key"].endswith("manifest.json"):
                self.manifests += 1
                if self.manifests == 2:
                    raise ConnectionError("S3 unreachable")
            return self.real.put_object(**kw)

        return put


def test_a_job_the_manifest_cannot_record_is_stopped(env):
    s3, client, stub = env
    recs = records(2)
    data, index = bb.records_file(recs)
    stub.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
    stub.add_response("stop_model_invocation_job", {}, {"jobIdentifier": JOB_ARN})
    with pytest.raises(ConnectionError):
        bb.submit(FailingManifestPut(s3), client, bucket=BUCKET, batch_id="batch_00000000000a0000000000000004",
                  records=recs, input_bytes=lines(2), records_bytes=data, index=index, model_id=MODEL_ID,
                  role_arn=ROLE, region=None)
    stub.assert_no_pending_responses()  # StopModelInvocationJob was called: no job runs unrecorded
