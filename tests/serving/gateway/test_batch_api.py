"""The gateway's Files and Batch APIs through the `openai` SDK, against S3/SQS on a moto server and a shard worker
run in-process against the stub engine: the whole flow, tenant isolation, every validation error path, the daily
batch token budget, and storage failures."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import httpx
import openai
import pytest

from serving.batch.worker import Worker, WorkerConfig
from serving.gateway.config import parse_config
from serving.gateway.errors import ConfigError
from tests.serving.batch.conftest import FAKE_CREDS, REGION, Engine, make_queues, run_moto_server
from tests.serving.gateway.conftest import KEYS, base_config

MODEL = "plain"


@pytest.fixture(scope="module")
def moto_url():
    yield from run_moto_server()


@pytest.fixture(scope="module")
def engine():
    e = Engine()
    yield e
    e.stop()


class Env:
    def __init__(self, moto_url: str, gw, engine: Engine, bucket: str, queue: str):
        kw = {"endpoint_url": moto_url, "region_name": REGION}
        self.s3, self.sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        self.gw, self.engine, self.bucket, self.queue = gw, engine, bucket, queue

    def client(self, tenant: str = "acme") -> openai.OpenAI:
        return openai.OpenAI(api_key=KEYS[tenant], base_url=self.gw.url + "/v1", max_retries=0, timeout=20)

    def http(self, method: str, path: str, tenant: str = "acme", **kw) -> httpx.Response:
        headers = {"authorization": f"Bearer {KEYS[tenant]}", **kw.pop("headers", {})}
        return self.gw.client.request(method, path, headers=headers, **kw)

    def upload(self, data: bytes, tenant: str = "acme") -> str:
        return self.client(tenant).files.create(file=("in.jsonl", data), purpose="batch").id

    def depth(self) -> int:
        a = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["All"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def run_worker(self) -> None:
        cfg = WorkerConfig(queue_url=self.queue, bucket=self.bucket, engine_url=self.engine.url,
                           idle_exit_seconds=1.0, engine_start_seconds=5, concurrency=4)
        assert Worker(cfg, sqs=self.sqs, s3=self.s3).run() == 0

    def used(self, tenant: str) -> int:
        """Batch tokens reserved by ``tenant`` today (read from Redis)."""
        import redis

        key = self.gw.gw.batch_api._budget_key(tenant, time.strftime("%Y%m%d", time.gmtime()))
        return int(redis.Redis.from_url(self.gw.cfg.redis.url).get(key) or 0)


@pytest.fixture
def env(moto_url, engine, make_gateway, monkeypatch):
    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    suffix = uuid.uuid4().hex[:8]
    bucket = f"gw-batch-{suffix}"
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    queue, _ = make_queues(s3, sqs, max_receives=3, suffix=suffix)

    def mutate(cfg):
        cfg["batch"] = {"enabled": True, "bucket": bucket, "queueUrl": queue, "region": REGION,
                        "maxLines": 50}
        cfg["tenants"]["limits"]["globex"] = {"batchTokensPerDay": 5000, "models": ["plain", "small"]}

    engine.reset()
    return Env(moto_url, make_gateway(mutate), engine, bucket, queue)


def lines(n: int, *, model: str = MODEL, prefix: str = "req", url: str = "/v1/chat/completions",
          max_tokens: int = 8) -> bytes:
    out = [{"custom_id": f"{prefix}-{i:03d}", "method": "POST", "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": f"question {i}"}],
                     "max_tokens": max_tokens}} for i in range(n)]
    return b"".join(json.dumps(x).encode() + b"\n" for x in out)


# --- the whole flow through the openai SDK --------------------------------------------------------------------------
def test_openai_sdk_files_create_batches_create_retrieve_and_files_content(env):
    client = env.client()
    f = client.files.create(file=("input.jsonl", lines(7)), purpose="batch")
    assert f.id.startswith("file-") and f.object == "file" and f.purpose == "batch"
    assert f.bytes == len(lines(7)) and f.filename == "input.jsonl" and f.created_at > 0
    assert client.files.retrieve(f.id).id == f.id
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
                              metadata={"job": "nightly"})
    assert b.id.startswith("batch_") and b.object == "batch" and b.status == "in_progress"
    assert b.input_file_id == f.id and b.completion_window == "24h" and b.metadata == {"job": "nightly"}
    assert b.request_counts.total == 7 and b.expires_at == b.created_at + 86400
    assert b.progress["shards_pending"] == 1
    assert env.depth() == 1
    assert client.batches.retrieve(b.id).status == "in_progress"  # no shard done yet: nothing to finalise
    env.run_worker()
    done = client.batches.retrieve(b.id)
    assert done.status == "completed" and done.completed_at and done.output_file_id and done.error_file_id
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (7, 7, 0)
    assert done.progress.items() >= {  # and records / tokens
        "shards_total": 1, "shards_done": 1, "shards_failed": 0, "shards_pending": 0}.items()
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in out] == [f"req-{i:03d}" for i in range(7)]  # every custom_id once, in order
    assert all(x["response"]["status_code"] == 200 and x["error"] is None for x in out)
    assert client.files.content(done.error_file_id).text == ""
    meta = client.files.retrieve(done.output_file_id)
    assert meta.purpose == "batch_output" and meta.bytes > 0
    listed = client.batches.list(limit=10)
    assert [x.id for x in listed.data] == [b.id]


def test_list_is_newest_first_and_pages_with_after(env):
    client = env.client()
    fid = env.upload(lines(2))
    ids = [client.batches.create(input_file_id=fid, endpoint="/v1/chat/completions",
                                 completion_window="24h").id for _ in range(3)]
    page = env.http("GET", "/v1/batches", params={"limit": 2}).json()
    assert [x["id"] for x in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    rest = env.http("GET", "/v1/batches", params={"limit": 2, "after": page["last_id"]}).json()
    assert [x["id"] for x in rest["data"]] == [ids[0]] and rest["has_more"] is False
    bad = env.http("GET", "/v1/batches", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


# --- tenant isolation -----------------------------------------------------------------------------------------------
def test_another_tenant_gets_404_for_a_file_and_a_batch_it_does_not_own(env):
    fid = env.upload(lines(2))
    bid = env.client().batches.create(input_file_id=fid, endpoint="/v1/chat/completions",
                                      completion_window="24h").id
    other = env.client("globex")
    for call in (lambda: other.files.retrieve(fid), lambda: other.files.content(fid),
                 lambda: other.batches.retrieve(bid), lambda: other.batches.cancel(bid),
                 lambda: other.batches.create(input_file_id=fid, endpoint="/v1/chat/completions",
                                              completion_window="24h")):
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert exc.value.status_code == 404 and "may not see it" in exc.value.message
    assert other.batches.list().data == []
    assert env.http("GET", f"/v1/batches/{bid}", tenant="acme").status_code == 200
    assert env.gw.client.get(f"/v1/batches/{bid}").status_code == 401


# --- validation: status, OpenAI's error shape, message; nothing queued ---------------------------------------------
def bad_lines() -> bytes:
    good = json.loads(lines(1))
    rows = [json.dumps(good), "{not json", json.dumps(good),  # line 3 repeats line 1's custom_id
            json.dumps({**good, "custom_id": "x4", "method": "GET"}),
            json.dumps({**good, "custom_id": "x5", "body": {**good["body"], "model": "large-secret"}})]
    return ("\n".join(rows) + "\n").encode()


def test_a_bad_file_is_rejected_with_every_bad_line_and_nothing_is_queued(env):
    fid = env.upload(bad_lines())
    r = env.http("POST", "/v1/batches", json={"input_file_id": fid, "endpoint": "/v1/chat/completions",
                                              "completion_window": "24h"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"} and err["code"] == "invalid_batch_input"
    assert err["type"] == "invalid_request_error" and err["param"] == "input_file_id"
    assert [(e["line"], e["code"]) for e in err["errors"]["data"]] == [
        (2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "invalid_method"), (5, "model_not_allowed")]
    assert "line 3" in err["message"] and "repeats line 1" in err["message"]
    assert env.depth() == 0
    assert env.s3.list_objects_v2(Bucket=env.bucket, Prefix="batches/").get("KeyCount") == 0


@pytest.mark.parametrize(("body", "status", "code", "param", "words"), [
    ({"endpoint": "/v1/chat/completions", "completion_window": "24h"}, 400, "missing_required_parameter",
     "input_file_id", "'input_file_id' is required"),
    ({"input_file_id": "file-000000000000000000000000", "endpoint": "/v1/chat/completions",
      "completion_window": "24h"}, 404, "not_found", None, "No file with id"),
    ({"input_file_id": "FID", "endpoint": "/v1/embeddings", "completion_window": "24h"}, 400,
     "invalid_endpoint", "endpoint", "endpoint '/v1/embeddings' is not supported"),
    ({"input_file_id": "FID", "endpoint": "/v1/chat/completions", "completion_window": "1h"}, 400,
     "invalid_completion_window", "completion_window", "expected '24h'"),
    ({"input_file_id": "FID", "endpoint": "/v1/chat/completions", "completion_window": "24h",
      "metadata": {"k": 1}}, 400, "invalid_metadata", "metadata", "at most 16 string pairs"),
    ({"input_file_id": "FID", "endpoint": "/v1/completions", "completion_window": "24h"}, 400,
     "mismatched_endpoint", "endpoint", "the file's lines call '/v1/chat/completions'"),
])
def test_create_batch_errors(env, body, status, code, param, words):
    fid = env.upload(lines(2))
    body = {k: (fid if v == "FID" else v) for k, v in body.items()}
    r = env.http("POST", "/v1/batches", json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert (err["code"], err["param"]) == (code, param) and words in err["message"]
    assert env.depth() == 0


def test_create_batch_body_errors(env):
    r = env.http("POST", "/v1/batches", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = env.http("POST", "/v1/batches", content=b"[1]")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_type"


def test_upload_errors(env):
    r = env.http("POST", "/v1/files", files={"file": ("a.jsonl", lines(1))}, data={"purpose": "fine-tune"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_purpose"
    assert "purpose 'fine-tune' is not supported" in r.json()["error"]["message"]
    r = env.http("POST", "/v1/files", data={"purpose": "batch"}, files={"other": ("a", b"x")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_file"
    r = env.http("POST", "/v1/files", json={"purpose": "batch"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type"
    r = env.http("POST", "/v1/files", files={"file": ("a.jsonl", b"\n")}, data={"purpose": "batch"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_file"
    env.gw.gw.batch_api.b = env.gw.gw.batch_api.b.model_copy(update={"max_file_bytes": 100})
    r = env.http("POST", "/v1/files", files={"file": ("a.jsonl", lines(3))}, data={"purpose": "batch"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert "the limit is 100 (batch.maxFileBytes)" in r.json()["error"]["message"]


def _multipart_body(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for name, filename, data in parts:
        fn = f'; filename="{filename}"' if filename else ""
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{fn}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _chunked(body: bytes, size: int = 256 * 1024, fail_after: int | None = None):
    for i in range(0, len(body), size):
        if fail_after is not None and i >= fail_after:
            raise ConnectionError("the client went away mid-upload")
        yield body[i:i + size]


def _uploads_in_flight(env) -> list:
    return env.s3.list_multipart_uploads(Bucket=env.bucket).get("Uploads", [])


def test_a_large_upload_streams_to_s3_in_parts_and_reads_back_whole(env):
    env.gw.gw.batch_api.part_bytes = 5 * 1024 * 1024  # S3's smallest part: an 11 MiB file takes three parts
    data = lines(1) * (11 * 1024 * 1024 // len(lines(1)) + 1)
    f = env.client().files.create(file=("big.jsonl", data), purpose="batch")
    assert f.bytes == len(data) and f.filename == "big.jsonl"
    key = f"files/acme/{f.id}"
    head = env.s3.head_object(Bucket=env.bucket, Key=key, PartNumber=1)
    assert head["PartsCount"] == 3  # written as a multipart upload, not buffered into one PUT
    assert env.client().files.content(f.id).read() == data
    assert _uploads_in_flight(env) == []


def test_a_streamed_upload_over_the_limit_is_413_and_leaves_nothing(env):
    api = env.gw.gw.batch_api
    api.part_bytes = 5 * 1024 * 1024
    api.b = api.b.model_copy(update={"max_file_bytes": 7 * 1024 * 1024})
    body = _multipart_body([("purpose", None, b"batch"), ("file", "a.jsonl", b"x" * (12 * 1024 * 1024))])
    r = env.http("POST", "/v1/files", content=_chunked(body),  # chunked: no Content-Length to refuse up front
                 headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert "the limit is 7340032 (batch.maxFileBytes)" in r.json()["error"]["message"]
    assert _uploads_in_flight(env) == []  # the part already sent was aborted
    assert env.s3.list_objects_v2(Bucket=env.bucket, Prefix="files/").get("KeyCount", 0) == 0


def test_a_purpose_after_a_large_file_is_checked_and_the_upload_aborted(env):
    env.gw.gw.batch_api.part_bytes = 5 * 1024 * 1024
    body = _multipart_body([("file", "a.jsonl", lines(1) * 60000), ("purpose", None, b"assistants")])
    r = env.http("POST", "/v1/files", content=body,
                 headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_purpose"
    assert _uploads_in_flight(env) == []
    assert env.s3.list_objects_v2(Bucket=env.bucket, Prefix="files/").get("KeyCount", 0) == 0


@pytest.mark.parametrize("body, ctype, words", [
    (b"--b0undary\r\nno headers end", "multipart/form-data; boundary=b0undary", "could not be parsed"),
    (b"x", "multipart/form-data", "has no boundary"),
    (_multipart_body([("purpose", None, b"b" * 2000)]), "multipart/form-data; boundary=b0undary",
     "longer than 1024 bytes"),
    (_multipart_body([("purpose", None, b"batch"), ("file", "a", b"{}\n"), ("file", "b", b"{}\n")]),
     "multipart/form-data; boundary=b0undary", "more than one 'file' field"),
])
def test_malformed_multipart_bodies_are_400(env, body, ctype, words):
    r = env.http("POST", "/v1/files", content=body, headers={"content-type": ctype})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_multipart"
    assert words in r.json()["error"]["message"]
    assert _uploads_in_flight(env) == []


def test_a_client_that_disconnects_mid_upload_leaves_no_object_or_parts(env):
    env.gw.gw.batch_api.part_bytes = 5 * 1024 * 1024
    body = _multipart_body([("purpose", None, b"batch"), ("file", "a.jsonl", b"y" * (12 * 1024 * 1024))])
    with pytest.raises(Exception):
        env.http("POST", "/v1/files", content=_chunked(body, fail_after=11 * 1024 * 1024),
                 headers={"content-type": "multipart/form-data; boundary=b0undary"})
    time.sleep(0.5)  # the gateway sees the cut after the client does
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _uploads_in_flight(env):
        time.sleep(0.1)
    assert _uploads_in_flight(env) == []  # two parts were sent before the cut: aborted
    assert env.s3.list_objects_v2(Bucket=env.bucket, Prefix="files/").get("KeyCount", 0) == 0


def test_the_line_limit_comes_from_the_config(env):
    fid = env.upload(lines(51))
    r = env.http("POST", "/v1/batches", json={"input_file_id": fid, "endpoint": "/v1/chat/completions",
                                              "completion_window": "24h"})
    assert r.status_code == 400 and "the file has 51 lines; the limit is 50" in r.json()["error"]["message"]


def test_an_output_file_cannot_be_a_batch_input_and_files_can_be_deleted(env):
    client = env.client()
    fid = env.upload(lines(1))
    b = client.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h")
    env.run_worker()
    out = client.batches.retrieve(b.id).output_file_id
    r = env.http("POST", "/v1/batches", json={"input_file_id": out, "endpoint": "/v1/chat/completions",
                                              "completion_window": "24h"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_purpose"
    assert client.files.delete(fid).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(fid)


# --- the daily batch token budget -----------------------------------------------------------------------------------
def test_budget_is_reserved_at_create_429_when_spent_and_released_on_cancel(env):
    client = env.client("globex")
    fid = env.upload(lines(20, max_tokens=100), tenant="globex")  # 20 lines x (prompt + 100) tokens
    b = client.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h")
    reserved = env.used("globex")
    assert 2000 < reserved < 5000
    with pytest.raises(openai.RateLimitError) as exc:
        client.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h")
    assert exc.value.status_code == 429 and exc.value.code == "batch_token_budget_exceeded"
    assert "of its 5000 batch tokens left today" in exc.value.message
    assert env.used("globex") == reserved and env.depth() == 1  # the refused batch reserved and queued nothing
    c = client.batches.cancel(b.id)
    assert c.status in ("cancelling", "cancelled")
    assert env.used("globex") == 0  # its one shard had not started: all given back
    assert client.batches.retrieve(b.id).status == "cancelled"


def test_cancel_gives_back_only_the_shards_not_done(env):
    api = env.gw.gw.batch_api
    api.b = api.b.model_copy(update={"shard_records": 10})
    client = env.client("globex")
    b = client.batches.create(input_file_id=env.upload(lines(20, max_tokens=50), tenant="globex"),
                              endpoint="/v1/chat/completions", completion_window="24h")
    manifest = json.loads(env.s3.get_object(Bucket=env.bucket, Key=f"batches/{b.id}/manifest.json")["Body"].read())
    per_shard = [s["tokens"] for s in manifest["shards"]]
    assert manifest["reservation"]["tokens"] == sum(per_shard) == env.used("globex") and len(per_shard) == 2
    cfg = WorkerConfig(queue_url=env.queue, bucket=env.bucket, engine_url=env.engine.url, concurrency=4)
    w = Worker(cfg, sqs=env.sqs, s3=env.s3)
    msg = env.sqs.receive_message(QueueUrl=env.queue, MaxNumberOfMessages=1,
                                  AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    done = json.loads(msg["Body"])["shard"]
    assert w.handle(msg) == "done"
    client.batches.cancel(b.id)
    assert env.used("globex") == per_shard[done]  # the finished shard stays charged, the other is given back
    final = client.batches.retrieve(b.id)
    assert final.status == "cancelled" and final.request_counts.completed == 10


def test_a_cli_cancel_is_given_back_exactly_once_by_the_gateways_that_next_read_the_batch(env, capsys):
    from concurrent.futures import ThreadPoolExecutor

    from serving.batch import cli

    client = env.client("globex")
    b = client.batches.create(input_file_id=env.upload(lines(20, max_tokens=100), tenant="globex"),
                              endpoint="/v1/chat/completions", completion_window="24h")
    reserved = env.used("globex")
    assert reserved > 0
    assert cli.main(["cancel", b.id, "--bucket", env.bucket, "--region", REGION]) == 0  # the operator CLI
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert env.used("globex") == reserved  # the CLI has no Redis: nothing given back yet
    with ThreadPoolExecutor(8) as pool:  # eight concurrent readers, as several gateway replicas would be
        got = list(pool.map(lambda _: env.client("globex").batches.retrieve(b.id).status, range(8)))
    assert set(got) == {"cancelled"}
    assert env.used("globex") == 0  # given back once: twice would leave it at -reserved
    client.batches.list()
    client.batches.cancel(b.id)
    assert env.used("globex") == 0


def test_an_expired_batch_gives_back_the_shards_it_never_ran(env):
    from serving.batch.finalize import finalize

    api = env.gw.gw.batch_api
    api.b = api.b.model_copy(update={"shard_records": 10})
    client = env.client("globex")
    b = client.batches.create(input_file_id=env.upload(lines(20, max_tokens=50), tenant="globex"),
                              endpoint="/v1/chat/completions", completion_window="24h")
    manifest = json.loads(env.s3.get_object(Bucket=env.bucket, Key=f"batches/{b.id}/manifest.json")["Body"].read())
    per_shard = [s["tokens"] for s in manifest["shards"]]
    w = Worker(WorkerConfig(queue_url=env.queue, bucket=env.bucket, engine_url=env.engine.url, concurrency=4),
               sqs=env.sqs, s3=env.s3)
    msg = env.sqs.receive_message(QueueUrl=env.queue, MaxNumberOfMessages=1,
                                  AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    done = json.loads(msg["Body"])["shard"]
    assert w.handle(msg) == "done"
    m = finalize(env.s3, env.bucket, b.id, now=manifest["created_at"] + 24 * 3600 + 1)  # a finaliser, a day late
    assert m["status"] == "expired" and m["unrun_tokens"] == per_shard[1 - done]
    got = client.batches.retrieve(b.id)
    assert got.status == "expired" and got.request_counts.completed == 10 and got.request_counts.failed == 10
    assert env.used("globex") == per_shard[done]  # the shard that ran stays charged
    client.batches.retrieve(b.id)
    assert env.used("globex") == per_shard[done]


def test_a_finished_batch_cannot_be_cancelled(env):
    client = env.client()
    b = client.batches.create(input_file_id=env.upload(lines(1)), endpoint="/v1/chat/completions",
                              completion_window="24h")
    env.run_worker()
    assert client.batches.retrieve(b.id).status == "completed"
    with pytest.raises(openai.ConflictError) as exc:
        client.batches.cancel(b.id)
    assert exc.value.code == "batch_not_cancellable" and "is completed" in exc.value.message


def test_a_batch_larger_than_the_whole_daily_budget_is_a_400(env):
    fid = env.upload(lines(50, max_tokens=200), tenant="globex")
    r = env.http("POST", "/v1/batches", tenant="globex", json={
        "input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "exceeds_batch_token_budget"
    assert "batch budget of 5000 tokens per day" in r.json()["error"]["message"]
    assert env.used("globex") == 0 and env.depth() == 0


# --- storage failures: 503, nothing queued, the budget given back ---------------------------------------------------
class Down:
    """An AWS client whose every call fails as if the service were unreachable."""

    def __init__(self, real, only: tuple[str, ...] = ()):
        self.real, self.only = real, only

    def __getattr__(self, name):
        from botocore.exceptions import EndpointConnectionError

        if self.only and name not in self.only:
            return getattr(self.real, name)

        def fail(*a, **kw):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

        return fail


def test_s3_down_is_503_and_nothing_is_queued(env):
    fid = env.upload(lines(3), tenant="globex")
    api = env.gw.gw.batch_api
    real = api.s3
    api.s3 = Down(real)
    r = env.http("POST", "/v1/files", files={"file": ("a.jsonl", lines(1))}, data={"purpose": "batch"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert r.json()["error"]["type"] == "api_error"
    api.s3 = Down(real, only=("put_object",))  # the input is readable, nothing can be written
    r = env.http("POST", "/v1/batches", tenant="globex", json={
        "input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.status_code == 503 and "Batch storage is temporarily unavailable" in r.json()["error"]["message"]
    assert env.depth() == 0 and env.used("globex") == 0


def test_sqs_down_after_the_manifest_marks_the_batch_failed_and_gives_the_budget_back(env):
    fid = env.upload(lines(3), tenant="globex")
    api = env.gw.gw.batch_api
    api.sqs = Down(api.sqs)
    r = env.http("POST", "/v1/batches", tenant="globex", json={
        "input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    assert env.used("globex") == 0
    (b,) = env.client("globex").batches.list().data
    assert b.status == "failed" and b.failed_at and b.errors.data[0].code == "queue_unavailable"


class FailSecondSend:
    """SQS that takes the first batch of shard messages and refuses the rest (a submit that stops half-way)."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def __getattr__(self, name):
        if name != "send_message_batch":
            return getattr(self.real, name)

        def send(**kw):
            from botocore.exceptions import ClientError

            self.calls += 1
            if self.calls > 1:
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")
            return self.real.send_message_batch(**kw)

        return send


def test_a_submit_that_stops_half_way_leaves_a_failed_batch_whose_sent_shards_workers_skip(env):
    api = env.gw.gw.batch_api
    api.b = api.b.model_copy(update={"shard_records": 1})
    fid = env.upload(lines(12), tenant="globex")
    api.sqs = FailSecondSend(api.sqs)
    r = env.http("POST", "/v1/batches", tenant="globex", json={
        "input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.status_code == 503 and "ServiceUnavailable" in r.json()["error"]["message"]
    assert env.depth() == 10 and env.used("globex") == 0  # the first ten shard messages went out
    (b,) = env.client("globex").batches.list().data
    assert b.status == "failed"
    env.run_worker()
    assert env.engine.state.requests == 0 and env.depth() == 0  # every sent shard skipped and deleted


class RedisDown:
    async def incrby(self, *a):
        raise ConnectionError("budget store down")


def test_the_budget_store_down_is_503_and_nothing_is_queued(env):
    fid = env.upload(lines(2), tenant="globex")
    env.gw.gw.batch_api.redis = RedisDown()
    r = env.http("POST", "/v1/batches", tenant="globex", json={
        "input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert r.status_code == 503 and "batch budget store: ConnectionError" in r.json()["error"]["message"]
    assert env.depth() == 0
    assert env.client("globex").batches.list().data == []
    acme = env.upload(lines(2))  # a tenant without a batch budget does not need the store
    assert env.client().batches.create(input_file_id=acme, endpoint="/v1/chat/completions",
                                       completion_window="24h").status == "in_progress"


def test_a_custom_prefix_holds_the_batch_and_the_worker_follows_it(env):
    env.gw.gw.batch_api.root = "jobs/batch"  # batch.prefix "jobs/batch/"
    client = env.client()
    b = client.batches.create(input_file_id=env.upload(lines(3)), endpoint="/v1/chat/completions",
                              completion_window="24h")
    keys = [o["Key"] for o in env.s3.list_objects_v2(Bucket=env.bucket, Prefix="jobs/batch/")["Contents"]]
    assert f"jobs/batch/{b.id}/manifest.json" in keys
    assert not env.s3.list_objects_v2(Bucket=env.bucket, Prefix="batches/").get("Contents")
    env.run_worker()
    done = client.batches.retrieve(b.id)
    assert done.status == "completed" and len(client.files.content(done.output_file_id).text.splitlines()) == 3


def test_shards_follow_the_configured_size(env):
    api = env.gw.gw.batch_api
    api.b = api.b.model_copy(update={"shard_records": 2})
    env.client().batches.create(input_file_id=env.upload(lines(5)), endpoint="/v1/chat/completions",
                                completion_window="24h")
    assert env.depth() == 3


# --- config --------------------------------------------------------------------------------------------------------
def test_batch_config_errors_are_listed_with_their_paths():
    cfg = base_config("redis://127.0.0.1:1/0", {})
    cfg["routes"] = {"plain": {"targets": [{"upstream": "u"}]}}
    cfg["upstreams"] = {"u": {"kind": "openai", "baseUrl": "http://127.0.0.1:1/v1", "model": "m"}}
    cfg["batch"] = {"enabled": True, "prefix": "batches", "models": ["nope"], "endpoints": ["/v1/images"]}
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg)
    text = str(exc.value)
    for want in ("batch.endpoints.0", "batch.bucket", "batch.queueUrl", "required when batch.enabled is true",
                 "batch.prefix", "ending in '/'", "batch.models[0]", "unknown route"):
        assert want in text, want
    cfg["batch"] = {"enabled": False}
    parsed = parse_config(cfg)
    assert parsed.batch.prefix == "batches/" and parsed.batch.max_lines == 50_000
    assert parsed.batch.max_file_bytes == 200 * 1024 * 1024


def test_batch_paths_are_404_when_the_batch_api_is_off(make_gateway):
    gw = make_gateway()
    r = gw.client.get("/v1/batches", headers={"authorization": f"Bearer {KEYS['acme']}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
