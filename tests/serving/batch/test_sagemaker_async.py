"""The SageMaker async engine and the worker's sagemaker-async shards: InvokeEndpointAsync through botocore's
Stubber on a real ``sagemaker-runtime`` client (request and response checked against the service model), S3 through
moto; the endpoint's output and failure objects are written by the test, standing in for SageMaker."""

from __future__ import annotations

import json
import re
import threading

import boto3
import pytest
from botocore.stub import Stubber

from serving.batch import sagemaker_async as sa
from serving.batch.shards import Interrupted, Layout, get_json, put_json, request_id
from serving.batch.worker import Worker, WorkerConfig
from tests.serving.batch.conftest import (
    BUCKET,
    REGION,
    batch_input,
    read_lines,
    submit_batch,
)

ENDPOINT = "genai-test-qwen-async"
BACKEND = {"kind": "sagemaker-async", "endpointName": ENDPOINT, "region": None, "invocationTimeoutSeconds": 600}
INFERENCE_ID = re.compile(r"\A\S[\x20-\x7e]*\Z")
"""The InferenceId pattern of the service model (``\\A\\S[\\p{Print}]*\\z``; ASCII here)."""


def runtime() -> tuple[object, Stubber]:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    return client, Stubber(client)


def out_uri(iid: str) -> str:
    return f"s3://{BUCKET}/async-out/{iid}.out"


def fail_uri(iid: str) -> str:
    return f"s3://{BUCKET}/async-failures/{iid}-error.out"


def expect_invoke(stub: Stubber, batch_id: str, shard: int, line: int, *, timeout: int = 600,
                  ttl: int = 21600) -> str:
    """Stub one InvokeEndpointAsync with the exact request the engine must send; returns its InferenceId."""
    iid = sa.inference_id(batch_id, shard, line)
    key = f"batches/{batch_id}/async/in/{shard:05d}/{line:06d}.json"
    stub.add_response("invoke_endpoint_async",
                      {"InferenceId": iid, "OutputLocation": out_uri(iid), "FailureLocation": fail_uri(iid)},
                      expected_params={"EndpointName": ENDPOINT, "InputLocation": f"s3://{BUCKET}/{key}",
                                       "ContentType": "application/json", "Accept": "application/json",
                                       "InferenceId": iid, "InvocationTimeoutSeconds": timeout,
                                       "RequestTTLSeconds": ttl})
    return iid


def completion(text: str) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}).encode()


def put_uri(s3, uri: str, body: bytes) -> None:
    bucket, key = sa.parse_s3_uri(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


class Clock:
    """A fake clock: the engine's ``wait`` between poll rounds advances it and runs the test's endpoint step."""

    def __init__(self, step=None):
        self.now = 1_000_000.0
        self.rounds = 0
        self.step = step or (lambda n: None)

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.rounds += 1
        self.now += seconds
        return bool(self.step(self.rounds))


def shard_lines(s3, batch_id: str, n: int = 0) -> list[dict]:
    return read_lines(s3, Layout.of(BUCKET, batch_id).shard(n))


def engine(s3, client, clock: Clock, stop: threading.Event | None = None, **settings) -> sa.AsyncShard:
    backend = sa.AsyncBackend.from_message(BACKEND)
    return sa.AsyncShard(s3, client, backend, sa.AsyncSettings(concurrency=1, **settings),
                         stop=stop or threading.Event(), clock=clock, wait=clock.wait)


# -- the engine ---------------------------------------------------------------------------------------------------
def test_a_shard_with_a_success_a_failure_object_and_a_record_past_its_deadline(aws):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_sa", batch_input(3))
    client, stub = runtime()
    ids = [expect_invoke(stub, "batch_sa", 0, line) for line in (1, 2, 3)]

    def endpoint(round_: int) -> None:  # the fake endpoint answers after the first poll round
        if round_ == 1:
            put_uri(s3, out_uri(ids[0]), completion("answer 0"))
            put_uri(s3, fail_uri(ids[1]), b'{"message": "CUDA out of memory"}')

    clock = Clock(endpoint)
    lay = Layout.of(BUCKET, "batch_sa")
    with stub:
        run = engine(s3, client, clock, poll_seconds=30, poll_max_seconds=120, deadline_seconds=300)
        results = run.run(lay, "batch_sa", 0, shard_lines(s3, "batch_sa"))
        stub.assert_no_pending_responses()
    assert run.invoked == 3 and clock.rounds == 4  # 30 + 60 + 120 + 120 s > the 300 s deadline
    (ok0, line0), (ok1, line1), (ok2, line2) = results
    assert ok0 and line0 == {"id": request_id("batch_sa", "req-00000"), "custom_id": "req-00000", "error": None,
                             "response": {"status_code": 200, "request_id": ids[0],
                                          "body": json.loads(completion("answer 0"))}}
    assert not ok1 and line1["error"]["code"] == "sagemaker_async_failure"
    assert "CUDA out of memory" in line1["error"]["message"] and ids[1] in line1["error"]["message"]
    assert not ok2 and line2["error"] == {"code": "timeout", "message": f"no result from endpoint {ENDPOINT} for "
                                          f"inference {ids[2]} within 300 s of its invocation"}
    # the request body at its deterministic input key, and the recorded invocation
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=sa.input_key(lay, 0, 2))["Body"].read())
    assert body == shard_lines(s3, "batch_sa")[1]["body"]
    call = get_json(s3, BUCKET, sa.call_key(lay, 0, 2))
    assert (call["inference_id"], call["output_location"], call["failure_location"]) == (
        ids[1], out_uri(ids[1]), fail_uri(ids[1]))


def test_a_rerun_after_a_crash_polls_recorded_invocations_instead_of_invoking_again(aws):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_re", batch_input(3))
    lay = Layout.of(BUCKET, "batch_re")
    client, stub = runtime()
    ids = [expect_invoke(stub, "batch_re", 0, line) for line in (1, 2, 3)]
    stop = threading.Event()
    clock = Clock(lambda n: stop.set() or True)  # the worker dies while it waits for results
    with stub, pytest.raises(Interrupted):
        engine(s3, client, clock, stop).run(lay, "batch_re", 0, shard_lines(s3, "batch_re"))
    assert [get_json(s3, BUCKET, sa.call_key(lay, 0, n))["inference_id"] for n in (1, 2, 3)] == ids
    # the crash window: record 3 was invoked but its record was not written -> invoked again, same InferenceId
    s3.delete_object(Bucket=BUCKET, Key=sa.call_key(lay, 0, 3))
    for iid in ids:
        put_uri(s3, out_uri(iid), completion(iid))
    client2, stub2 = runtime()
    assert expect_invoke(stub2, "batch_re", 0, 3) == ids[2]  # the only call the Stubber allows
    with stub2:
        run = engine(s3, client2, Clock())
        results = run.run(lay, "batch_re", 0, shard_lines(s3, "batch_re"))
        stub2.assert_no_pending_responses()
    assert run.invoked == 1
    assert [(ok, x["custom_id"], x["response"]["request_id"]) for ok, x in results] == [
        (True, f"req-{i:05d}", ids[i]) for i in range(3)]


def test_an_output_that_is_not_a_json_object_and_an_unsupported_endpoint_are_error_lines(aws):
    s3, _sqs, _q, _ = aws
    data = batch_input(1) + json.dumps({"custom_id": "req-00001", "method": "POST", "url": "/v1/embeddings",
                                        "body": {"model": "m", "input": "x"}}).encode() + b"\n"
    lay = Layout.of(BUCKET, "batch_mo")
    s3.put_object(Bucket=BUCKET, Key=lay.shard(0), Body=data)
    client, stub = runtime()
    iid = expect_invoke(stub, "batch_mo", 0, 1)
    put_uri(s3, out_uri(iid), b"[1, 2]")
    with stub:
        run = engine(s3, client, Clock())
        (ok0, l0), (ok1, l1) = run.run(lay, "batch_mo", 0, shard_lines(s3, "batch_mo"))
    assert run.invoked == 1, "no invocation for the embeddings line"
    assert not ok0 and l0["error"]["code"] == "malformed_output" and "a JSON list" in l0["error"]["message"]
    assert not ok1 and l1["error"] == {"code": "unsupported_endpoint", "message": "url '/v1/embeddings': a "
                                       "sagemaker-async backend serves only /v1/chat/completions"}


def test_an_invoke_error_fails_the_shard(aws):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_ie", batch_input(1))
    client, stub = runtime()
    stub.add_client_error("invoke_endpoint_async", service_error_code="ValidationError",
                          service_message="Endpoint genai-test-qwen-async of account 123456789012 not found.",
                          http_status_code=400)
    with stub, pytest.raises(sa.ShardFailed, match="ValidationError.*not found"):
        engine(s3, client, Clock()).run(Layout.of(BUCKET, "batch_ie"), "batch_ie", 0, shard_lines(s3, "batch_ie"))


def test_inference_ids_are_deterministic_and_within_the_api_limits():
    batch_id = "batch_0193a1b2c3d4e5f60718293a4b5c"
    assert sa.inference_id(batch_id, 3, 41) == f"{batch_id}-00003-000041"
    long_id = sa.inference_id("batch_" + "x" * 80, 0, 1)
    assert long_id == sa.inference_id("batch_" + "x" * 80, 0, 1) != sa.inference_id("batch_" + "x" * 80, 0, 2)
    for iid in (long_id, sa.inference_id("batch_\u00e9", 0, 1), sa.inference_id("batch_a", 99999, 50000)):
        assert 1 <= len(iid) <= sa.INFERENCE_ID_MAX and INFERENCE_ID.match(iid), iid


def test_backend_of_a_message_lists_every_problem():
    assert sa.AsyncBackend.from_message({"kind": "sagemaker-async", "endpointName": "e-1"}) == sa.AsyncBackend(
        "e-1", None, 3600)
    with pytest.raises(ValueError) as exc:
        sa.AsyncBackend.from_message({"endpointName": "-bad", "region": "", "invocationTimeoutSeconds": 3601})
    assert str(exc.value) == (
        "backend.endpointName = '-bad': expected a SageMaker endpoint name (1-63 letters, digits and hyphens, "
        "starting with a letter or digit); backend.region = '': expected a Region name or null; "
        "backend.invocationTimeoutSeconds = 3601: expected an integer 1..3600")
    with pytest.raises(TypeError, match=r"backend = 'x': expected an object"):
        sa.AsyncBackend.from_message("x")
    with pytest.raises(sa.ShardFailed, match=r"location 'https://x/y': expected s3://bucket/key"):
        sa.parse_s3_uri("https://x/y")


def test_default_deadline_is_ttl_plus_invocation_timeout_plus_margin():
    assert sa.AsyncSettings().deadline_for(sa.AsyncBackend("e", None, 3600)) == 21600 + 3600 + 600
    assert sa.AsyncSettings(deadline_seconds=90).deadline_for(sa.AsyncBackend("e")) == 90


# -- the worker ---------------------------------------------------------------------------------------------------
def async_worker(aws, client, **kw) -> Worker:
    s3, sqs, q, _ = aws
    cfg = WorkerConfig(queue_url=q, bucket=BUCKET, engine_url="http://127.0.0.1:9/v1", idle_exit_seconds=0.5,
                       engine_start_seconds=0.2, concurrency=1, backend="sagemaker-async",
                       async_settings=sa.AsyncSettings(poll_seconds=0.05, poll_max_seconds=0.05), **kw)
    return Worker(cfg, sqs=sqs, s3=s3, sagemaker_runtime=client)


def test_the_dispatcher_runs_a_sagemaker_async_shard_without_an_engine_and_commits_it(aws):
    s3, sqs, q, _ = aws
    m = submit_batch(s3, sqs, q, "batch_wa", batch_input(4), max_records=2, message_extra={"backend": BACKEND})
    assert m["backend"] == BACKEND
    client, stub = runtime()
    ids = [expect_invoke(stub, "batch_wa", shard, line) for shard, line in ((0, 1), (0, 2), (1, 3), (1, 4))]
    for iid in ids:
        put_uri(s3, out_uri(iid), completion(iid))
    put_uri(s3, fail_uri(ids[3]), b"ignored: the output wins")
    w = async_worker(aws, client)
    with stub:
        assert w.run() == 0  # no engine at engine_url, and no wait for one
        stub.assert_no_pending_responses()
    lay = Layout.of(BUCKET, "batch_wa")
    assert [x["custom_id"] for x in read_lines(s3, lay.out(1))] == ["req-00002", "req-00003"]
    assert get_json(s3, BUCKET, lay.done(1))["completed"] == 2
    reg = w.metrics.registry
    assert reg.get_sample_value("genai_scale_batch_shards_total", {"outcome": "done"}) == 2
    assert reg.get_sample_value("genai_scale_batch_records_total", {"result": "ok"}) == 4
    assert reg.get_sample_value("genai_scale_batch_tokens_total") == 32


def test_a_cluster_shard_on_a_dispatcher_and_a_bad_backend_fail_the_shard(aws):
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_cl", batch_input(1))
    submit_batch(s3, sqs, q, "batch_bb", batch_input(1), message_extra={"backend": {**BACKEND,
                                                                                      "endpointName": "-x"}})
    w = async_worker(aws, runtime()[0], max_receives=1)
    msgs = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=2, VisibilityTimeout=30,
                               AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [w.handle(m) for m in msgs] == ["failed", "failed"]
    reasons = {b: get_json(s3, BUCKET, Layout.of(BUCKET, b).failed(0))["reason"] for b in ("batch_cl", "batch_bb")}
    assert "a cluster shard on a sagemaker-async dispatcher, which has no engine" in reasons["batch_cl"]
    assert "backend.endpointName = '-x'" in reasons["batch_bb"]


def test_worker_config_reads_the_backend_and_async_settings():
    base = {"BATCH_QUEUE_URL": "q", "BATCH_BUCKET": "b"}
    cfg = WorkerConfig.from_env(base)
    assert (cfg.backend, cfg.async_settings) == ("cluster", sa.AsyncSettings())
    cfg = WorkerConfig.from_env({**base, "BATCH_BACKEND": "sagemaker-async", "BATCH_ASYNC_POLL_SECONDS": "2",
                                 "BATCH_ASYNC_POLL_MAX_SECONDS": "30", "BATCH_ASYNC_REQUEST_TTL_SECONDS": "3600",
                                 "BATCH_ASYNC_DEADLINE_SECONDS": "7200"})
    assert cfg.backend == "sagemaker-async"
    assert cfg.async_settings == sa.AsyncSettings(poll_seconds=2, poll_max_seconds=30, request_ttl_seconds=3600,
                                                  deadline_seconds=7200)
    with pytest.raises(SystemExit, match="BATCH_BACKEND = 'bedrock': expected one of cluster, sagemaker-async"):
        WorkerConfig.from_env({**base, "BATCH_BACKEND": "bedrock"})
    with pytest.raises(SystemExit, match=r"BATCH_ASYNC_REQUEST_TTL_SECONDS = 30: expected 60..21600"):
        WorkerConfig.from_env({**base, "BATCH_ASYNC_REQUEST_TTL_SECONDS": "30"})
    with pytest.raises(SystemExit, match="BATCH_ASYNC_POLL_SECONDS = '0': expected a number > 0"):
        WorkerConfig.from_env({**base, "BATCH_ASYNC_POLL_SECONDS": "0"})


def test_a_recorded_call_survives_a_sigterm_release(aws):
    """SIGTERM while polling: the message is released; the next worker polls the recorded invocation."""
    s3, sqs, q, _ = aws
    submit_batch(s3, sqs, q, "batch_st", batch_input(1), message_extra={"backend": BACKEND})
    client, stub = runtime()
    iid = expect_invoke(stub, "batch_st", 0, 1)
    w = async_worker(aws, client)
    msg = sqs.receive_message(QueueUrl=q, VisibilityTimeout=30, AttributeNames=["ApproximateReceiveCount"])
    with stub:
        threading.Timer(0.3, w.stop.set).start()
        assert w.handle(msg["Messages"][0]) == "interrupted"
    put_json(s3, BUCKET, "async-out/" + iid + ".out", json.loads(completion("late")))
    client2, stub2 = runtime()  # no response stubbed: an InvokeEndpointAsync call would fail the test
    with stub2:
        assert async_worker(aws, client2).run() == 0
    assert read_lines(s3, Layout.of(BUCKET, "batch_st").out(0))[0]["response"]["request_id"] == iid


# -- submit: message_extra and the manifest's backend -------------------------------------------------------------
def test_submit_merges_message_extra_into_every_message_and_records_the_backend(aws):
    s3, sqs, q, _ = aws
    m = submit_batch(s3, sqs, q, "batch_mx", batch_input(3), max_records=2, message_extra={"backend": BACKEND},
                     manifest_extra={"tenant": "acme"})
    assert (m["backend"], m["tenant"]) == (BACKEND, "acme")
    assert get_json(s3, BUCKET, Layout.of(BUCKET, "batch_mx").manifest)["backend"] == BACKEND
    got = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10)["Messages"]
    bodies = sorted((json.loads(x["Body"]) for x in got), key=lambda b: b["shard"])
    assert [(b["shard"], b["records"], b["backend"]) for b in bodies] == [(0, 2, BACKEND), (1, 1, BACKEND)]
    assert submit_batch(s3, sqs, q, "batch_cx", batch_input(1))["backend"] == {"kind": "cluster"}
    with pytest.raises(ValueError, match="message_extra keys batchId, shard would replace the shard message's own"):
        submit_batch(s3, sqs, q, "batch_bx", batch_input(1), message_extra={"shard": 9, "batchId": "x"})
