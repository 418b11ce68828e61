"""The Batch API's per-model backends through the gateway app: Bedrock batch inference (a real ``bedrock`` client
under botocore's ``Stubber``, so every call is checked against the service model; S3 on a moto server) and the
SageMaker async dispatch queue; and every ``batch.backends`` config message."""

from __future__ import annotations

import json
import random
import time
import uuid

import boto3
import openai
import pytest
from botocore.stub import ANY, Stubber

from serving.batch import bedrock as bb
from serving.gateway.config import parse_config
from serving.gateway.errors import ConfigError
from tests.serving.batch.conftest import (
    FAKE_CREDS,
    REGION,
    make_queues,
    run_moto_server,
)
from tests.serving.gateway.conftest import KEYS, base_config

ROLE = "arn:aws:iam::123456789012:role/genai-dev-bedrock-batch"
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/q1w2e3r4t5y6"
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def moto_url():
    yield from run_moto_server()


class Env:
    def __init__(self, moto_url: str, gw, bucket: str, queue: str, async_queue: str, bedrock, stub: Stubber):
        kw = {"endpoint_url": moto_url, "region_name": REGION}
        self.s3, self.sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        self.gw, self.bucket, self.queue, self.async_queue = gw, bucket, queue, async_queue
        self.stub = stub
        gw.gw.batch_api.bedrock = bedrock

    def client(self, tenant: str = "acme") -> openai.OpenAI:
        return openai.OpenAI(api_key=KEYS[tenant], base_url=self.gw.url + "/v1", max_retries=0, timeout=20)

    def http(self, method: str, path: str, tenant: str = "acme", **kw):
        return self.gw.client.request(method, path, headers={"authorization": f"Bearer {KEYS[tenant]}"}, **kw)

    def create(self, data: bytes, tenant: str = "acme", endpoint: str = CHAT):
        fid = self.client(tenant).files.create(file=("in.jsonl", data), purpose="batch").id
        return self.http("POST", "/v1/batches", tenant, json={"input_file_id": fid, "endpoint": endpoint,
                                                              "completion_window": "24h"})

    def depth(self, queue: str) -> int:
        a = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def keys(self, prefix: str = "batches/") -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])]

    def manifest(self, batch_id: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"batches/{batch_id}/manifest.json")
                          ["Body"].read())

    def used(self, tenant: str) -> int:
        import redis

        key = self.gw.gw.batch_api._budget_key(tenant, time.strftime("%Y%m%d", time.gmtime()))
        return int(redis.Redis.from_url(self.gw.cfg.redis.url).get(key) or 0)

    def expect_create(self, tenant: str = "acme") -> None:
        self.stub.add_response("create_model_invocation_job", {"jobArn": JOB_ARN}, {
            "jobName": ANY, "roleArn": ROLE, "clientRequestToken": ANY, "modelId": "amazon.nova-lite-v1:0",
            "modelInvocationType": "Converse", "inputDataConfig": ANY, "outputDataConfig": ANY,
            "timeoutDurationInHours": 48, "tags": ANY})

    def expect_get(self, status: str, **kw) -> None:
        self.stub.add_response("get_model_invocation_job", {
            "jobArn": JOB_ARN, "jobName": "j", "modelId": "amazon.nova-lite-v1:0", "roleArn": ROLE, "status": status,
            "submitTime": "2026-12-06T00:00:00Z", "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/i"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/o/"}}, **kw}, {"jobIdentifier": JOB_ARN})

    def write_output(self, batch_id: str, rows: list[dict]) -> None:
        key = f"batches/{batch_id}/bedrock/output/{bb.job_id(JOB_ARN)}/records.jsonl.out"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"".join(json.dumps(r).encode() + b"\n" for r in rows))


@pytest.fixture
def env(moto_url, make_gateway, monkeypatch):
    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    suffix = uuid.uuid4().hex[:8]
    bucket = f"gw-bedrock-{suffix}"
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    queue, _ = make_queues(s3, sqs, max_receives=3, suffix=suffix)
    async_queue, _ = make_queues(s3, sqs, max_receives=3, suffix=f"async{suffix}")

    def mutate(cfg):
        cfg["batch"] = {"enabled": True, "bucket": bucket, "queueUrl": queue, "region": REGION, "backends": {
            "nova": {"kind": "bedrock", "modelId": "amazon.nova-lite-v1:0", "roleArn": ROLE, "minRecords": 4,
                     "maxRecords": 20, "timeoutHours": 48},
            "qwen-async": {"kind": "sagemaker-async", "endpointName": "genai-dev-qwen-async", "queueUrl": async_queue,
                           "invocationTimeoutSeconds": 900}}}
        cfg["tenants"]["limits"]["globex"] = {"batchTokensPerDay": 50_000, "models": ["plain", "nova"]}

    gw = make_gateway(mutate)
    bedrock = boto3.client("bedrock", region_name=REGION)  # real client, real service model; no endpoint is called
    with Stubber(bedrock) as stub:
        yield Env(moto_url, gw, bucket, queue, async_queue, bedrock, stub)
        stub.assert_no_pending_responses()


def lines(n: int, *, model: str = "nova", url: str = CHAT, extra: dict | None = None) -> bytes:
    body = {"messages": [{"role": "user", "content": "q"}], "max_tokens": 8} if url == CHAT else {"prompt": "q",
                                                                                                  "max_tokens": 8}
    rows = [{"custom_id": f"req-{i:03d}", "method": "POST", "url": url,
             "body": {"model": model, **body, **(extra or {})}} for i in range(n)]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def result(i: int, text: str) -> dict:
    return {"recordId": bb.record_id(i), "modelInput": {}, "modelOutput": {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6}}}


# --- Bedrock ---------------------------------------------------------------------------------------------------------
def test_a_bedrock_batch_is_created_polled_to_completed_and_joined_on_record_id(env):
    env.expect_create()
    r = env.create(lines(8))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["status"] == "validating" and b["model"] == "nova" and b["request_counts"]["total"] == 8
    assert env.depth(env.queue) == 0 and env.depth(env.async_queue) == 0  # nothing on a shard queue
    m = env.manifest(b["id"])
    assert m["backend"]["kind"] == "bedrock" and m["backend"]["jobArn"] == JOB_ARN
    records = [json.loads(x) for x in env.s3.get_object(Bucket=env.bucket, Key=m["backend"]["inputKey"])
               ["Body"].read().splitlines()]
    assert [x["recordId"] for x in records] == [bb.record_id(i) for i in range(1, 9)]
    client = env.client()
    env.expect_get("InProgress", processedRecordCount=3, successRecordCount=3, errorRecordCount=0)
    got = client.batches.retrieve(b["id"])
    assert got.status == "in_progress" and got.in_progress_at and got.request_counts.completed == 3
    rows = [result(i, f"answer {i}") for i in (1, 2, 3, 4, 6, 8)]
    rows.append({"recordId": bb.record_id(5), "modelInput": {}, "error": {"errorCode": 400,
                                                                         "errorMessage": "Malformed input"}})
    random.Random(3).shuffle(rows)  # record 7 is missing from the output
    env.write_output(b["id"], rows)
    env.expect_get("Completed")
    done = client.batches.retrieve(b["id"])
    assert done.status == "completed" and done.completed_at and done.output_file_id and done.error_file_id
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (8, 6, 2)
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    err = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert [x["custom_id"] for x in out] == ["req-000", "req-001", "req-002", "req-003", "req-005", "req-007"]
    assert [x["response"]["body"]["choices"][0]["message"]["content"] for x in out] == [
        f"answer {i}" for i in (1, 2, 3, 4, 6, 8)]  # joined on recordId, not on the shuffled order
    assert [(x["custom_id"], x["error"]["code"]) for x in err] == [("req-004", "bedrock_400"),
                                                                   ("req-006", "missing_result")]
    assert sorted(x["custom_id"] for x in out + err) == [f"req-{i:03d}" for i in range(8)]  # every one, once
    assert client.batches.retrieve(b["id"]).status == "completed"  # terminal: no more GetModelInvocationJob


def test_a_bedrock_batch_under_the_minimum_is_a_400_and_nothing_is_written(env):
    r = env.create(lines(3), tenant="globex")
    assert r.status_code == 400
    e = r.json()["error"]
    assert (e["code"], e["param"]) == ("invalid_record_count", "input_file_id")
    assert e["message"] == ("the file has 3 requests; a Bedrock batch job needs at least 4 (the quota 'Minimum number "
                            "of records per batch inference job'): add requests, or use a real-time route (model "
                            "'nova').")
    r = env.create(lines(21), tenant="globex")
    assert r.status_code == 400 and "takes at most 20: split the file" in r.json()["error"]["message"]
    assert env.keys() == [] and env.used("globex") == 0


def test_a_bedrock_batch_takes_chat_completions_only_and_lines_bedrock_cannot_run_are_listed(env):
    r = env.create(lines(5, url="/v1/completions"), endpoint="/v1/completions")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_endpoint"
    assert "runs on Bedrock batch inference, which takes /v1/chat/completions only" in r.json()["error"]["message"]
    r = env.create(lines(5, extra={"logit_bias": {"1": 2}}))
    e = r.json()["error"]
    assert r.status_code == 400 and e["code"] == "invalid_batch_input"
    assert [(x["line"], x["code"]) for x in e["errors"]["data"]] == [(i, "unsupported_by_backend") for i in range(1, 6)]
    assert env.keys() == []


def test_a_refused_create_job_is_a_failed_batch_with_the_reason_and_the_budget_back(env):
    env.stub.add_client_error("create_model_invocation_job", "ServiceQuotaExceededException",
                              "Too many in-progress batch jobs", 400)
    r = env.create(lines(5), tenant="globex")
    assert r.status_code == 200
    b = r.json()
    assert b["status"] == "failed" and b["failed_at"]
    assert b["errors"]["data"][0]["code"] == "bedrock_job_not_created"
    assert "ServiceQuotaExceededException: Too many in-progress batch jobs" in b["errors"]["data"][0]["message"]
    assert env.used("globex") == 0
    assert env.client("globex").batches.retrieve(b["id"]).status == "failed"  # no job to poll


def test_cancel_stops_the_job_and_the_batch_ends_cancelled_with_the_unrun_tokens_back(env):
    env.expect_create("globex")
    b = env.create(lines(6), tenant="globex").json()
    reserved = env.used("globex")
    assert reserved > 0 and env.manifest(b["id"])["reservation"]["tokens"] == reserved
    client = env.client("globex")
    env.stub.add_response("stop_model_invocation_job", {}, {"jobIdentifier": JOB_ARN})
    c = client.batches.cancel(b["id"])
    assert c.status == "cancelling" and c.cancelling_at
    env.expect_get("Stopping")
    assert client.batches.retrieve(b["id"]).status == "cancelling"
    env.write_output(b["id"], [result(2, "finished before the stop")])
    env.expect_get("Stopped")
    done = client.batches.retrieve(b["id"])
    assert done.status == "cancelled" and done.cancelled_at
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 0)
    assert [json.loads(x)["custom_id"] for x in client.files.content(done.output_file_id).text.splitlines()] == [
        "req-001"]
    per_record = reserved // 6
    assert env.used("globex") == per_record  # the one finished record stays charged
    assert client.batches.cancel(b["id"]).status == "cancelled"  # again: no second StopModelInvocationJob


def test_a_failed_job_is_a_failed_batch_with_bedrock_s_message(env):
    env.expect_create("globex")
    b = env.create(lines(4), tenant="globex").json()
    env.expect_get("Failed", message="The input file has records that are not valid JSON")
    got = env.client("globex").batches.retrieve(b["id"])
    assert got.status == "failed" and got.errors.data[0].code == "bedrock_job_failed"
    assert "not valid JSON" in got.errors.data[0].message and env.used("globex") == 0


# --- SageMaker async ---------------------------------------------------------------------------------------------------
def test_a_sagemaker_async_batch_goes_to_its_own_queue_with_the_endpoint_in_every_message(env):
    r = env.create(lines(3, model="qwen-async"))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["status"] == "in_progress" and env.depth(env.queue) == 0 and env.depth(env.async_queue) == 1
    msg = json.loads(env.sqs.receive_message(QueueUrl=env.async_queue)["Messages"][0]["Body"])
    assert msg["batchId"] == b["id"] and msg["backend"] == {
        "kind": "sagemaker-async", "endpointName": "genai-dev-qwen-async", "region": None,
        "invocationTimeoutSeconds": 900}
    assert env.manifest(b["id"])["backend"]["kind"] == "sagemaker-async"


def test_a_batch_model_outside_the_tenant_s_models_is_refused(env):
    r = env.create(lines(5, model="qwen-async"), tenant="globex")  # globex may use plain and nova only
    assert r.status_code == 400 and r.json()["error"]["errors"]["data"][0]["code"] == "model_not_allowed"


# --- config ----------------------------------------------------------------------------------------------------------
def _cfg(backends: dict, **batch) -> dict:
    cfg = base_config("redis://127.0.0.1:1/0", {})
    cfg["routes"] = {"plain": {"targets": [{"upstream": "u"}]}}
    cfg["upstreams"] = {"u": {"kind": "openai", "baseUrl": "http://127.0.0.1:1/v1", "model": "m"}}
    cfg["batch"] = {"enabled": True, "bucket": "b", "queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
                    "backends": backends, **batch}
    return cfg


def test_backend_defaults_and_batch_only_names_are_models():
    cfg = parse_config(_cfg({"nova": {"kind": "bedrock", "modelId": "amazon.nova-lite-v1:0", "roleArn": ROLE},
                             "qa": {"kind": "sagemaker-async", "endpointName": "qa-async",
                                    "queueUrl": "https://sqs.us-east-1.amazonaws.com/1/d"}},
                            models=["plain", "qa"]))
    nova, qa = cfg.batch.backends["nova"], cfg.batch.backends["qa"]
    assert (nova.min_records, nova.max_records, nova.timeout_hours, nova.region, nova.tags) == (100, 50_000, 24,
                                                                                                 None, {})
    assert (qa.invocation_timeout_seconds, qa.region) == (3600, None)
    c = _cfg({"qa": {"kind": "sagemaker-async", "endpointName": "qa", "queueUrl": "https://sqs.x/1/d"}})
    c["tenants"]["limits"]["t1"] = {"models": ["qa"]}
    assert parse_config(c).tenants.limits["t1"].models == ["qa"]  # a tenant may be given a batch-only backend
    c["tenants"]["limits"]["t2"] = {"models": ["ghost"]}
    with pytest.raises(ConfigError) as exc:
        parse_config(c)
    assert ("tenants.limits.t2.models[0] = 'ghost': unknown route or batch backend; expected one of: plain, qa"
            in str(exc.value))


def test_every_backend_config_problem_is_listed_with_its_path():
    cfg = _cfg({
        "nova": {"kind": "bedrock", "modelId": "Not A Model!", "roleArn": "arn:aws:iam::123:user/x",
                 "timeoutHours": 12, "minRecords": 500, "maxRecords": 200},
        "later": {"kind": "bedrock", "modelId": "amazon.nova-lite-v1:0", "roleArn": ROLE, "timeoutHours": 169},
        "qa": {"kind": "sagemaker-async", "endpointName": "-bad_name"},
        "qb": {"kind": "sagemaker-async", "endpointName": "ok", "queueUrl": "sqs-queue",
               "invocationTimeoutSeconds": 3601},
        "oops": {"kind": "lambda"},
        "typo": {"kind": "bedrock", "modelId": "amazon.nova-lite-v1:0", "roleArn": ROLE, "minRecord": 5},
        "bad name!": {"kind": "sagemaker-async", "endpointName": "e", "queueUrl": "https://sqs.x/1/q"},
    }, models=["plain", "ghost"])
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg)
    text = str(exc.value)
    for want in (
        ("batch.backends.nova.modelId = 'Not A Model!': a Bedrock base model id (e.g. amazon.nova-lite-v1:0), "
        "inference profile id or a model/profile ARN"),
        ("batch.backends.nova.roleArn = 'arn:aws:iam::123:user/x': an IAM role ARN, arn:aws:iam::<12-digit account>:"
        "role/<name> (the service role Bedrock assumes)"),
        "batch.backends.nova.timeoutHours = 12: Bedrock's timeoutDurationInHours takes 24 to 168 hours",
        "batch.backends.later.timeoutHours = 169: Bedrock's timeoutDurationInHours takes 24 to 168 hours",
        "batch.backends.nova.minRecords = 500: must be <= maxRecords (200)",
        "batch.backends.qa.endpointName = '-bad_name': a SageMaker endpoint name: 1-63 letters, digits and hyphens",
        ("batch.backends.qa.queueUrl: required for a sagemaker-async backend: the managed-dispatch queue its CPU "
        "workers read"),
        ("batch.backends.qb.queueUrl = 'sqs-queue': an SQS queue URL, https://sqs.<region>.amazonaws.com/<account>/"
        "<name>"),
        "batch.backends.qb.invocationTimeoutSeconds = 3601: expected a number <= 3600",
        ("batch.backends.oops = {'kind': 'lambda'}: input tag 'lambda' found using 'kind' does not match any of the "
        "expected tags: 'bedrock', 'sagemaker-async'"),
        "batch.backends.typo.minRecord: unknown key (did you mean \"minRecords\"?)",
        "batch.backends.bad name! = 'bad name!': names are 1-128 characters: letters, digits and . _ : / -",
        "batch.models[1] = 'ghost': unknown route or batch backend; expected one of:",
    ):
        assert want in text, (want, text)
    assert ".bedrock." not in text and ".sagemaker-async." not in text  # no union tags in the paths


class PutDown:
    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        from botocore.exceptions import EndpointConnectionError

        if name != "put_object":
            return getattr(self.real, name)

        def fail(**kw):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

        return fail


def test_s3_down_before_the_job_is_a_503_no_job_and_the_budget_back(env):
    fid = env.client("globex").files.create(file=("in.jsonl", lines(5)), purpose="batch").id
    api = env.gw.gw.batch_api
    api.s3 = PutDown(api.s3)
    r = env.http("POST", "/v1/batches", "globex", json={"input_file_id": fid, "endpoint": CHAT,
                                                        "completion_window": "24h"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert env.used("globex") == 0  # and no CreateModelInvocationJob: the Stubber has no response queued for one


def test_bedrock_unavailable_while_polling_reports_the_stored_state(env):
    env.expect_create()
    b = env.create(lines(4)).json()
    env.stub.add_client_error("get_model_invocation_job", "ThrottlingException", "Rate exceeded", 429)
    r = env.http("GET", f"/v1/batches/{b['id']}")
    assert r.status_code == 200 and r.json()["status"] == "validating"
    env.expect_get("Scheduled")
    assert env.http("GET", f"/v1/batches/{b['id']}").json()["status"] == "in_progress"
