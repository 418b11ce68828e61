"""Fault test of a sagemaker-async shard with real dispatcher processes (``BATCH_BACKEND=sagemaker-async``)
against a moto server and a FAKE asynchronous endpoint: a loopback HTTP server that answers botocore's
InvokeEndpointAsync requests (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) and, in a background thread, reads each input
object from S3 and writes its output (or failure) object, standing in for SageMaker. The final output has every
custom_id exactly once, or an error line for it."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from serving.batch.finalize import finalize
from serving.batch.sagemaker_async import parse_s3_uri
from serving.batch.shards import Layout
from tests.serving.batch import test_faults
from tests.serving.batch.conftest import (
    BUCKET,
    FAKE_CREDS,
    REGION,
    assert_exactly_once,
    batch_input,
    free_port,
    make_queues,
    submit_batch,
    wait_port,
)
from tests.serving.batch.test_faults import depth, has, spawn, wait_for

remote = test_faults.remote
"""The fault tests' fixture: (s3, sqs, moto server URL)."""

ENDPOINT = "fake-async"


class FakeAsyncEndpoint:
    """FAKE SageMaker async endpoint: queues each invocation (202 with its S3 output and failure locations), then
    one record at a time after ``delay`` s writes a chat completion, or a failure object for a ``REJECT`` prompt."""

    def __init__(self, s3, *, invoke_latency: float = 0.05, delay: float = 0.1):
        self.s3, self.invoke_latency, self.delay = s3, invoke_latency, delay
        self.invocations: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's name
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                parts = self.path.strip("/").split("/")
                iid = self.headers.get("X-Amzn-SageMaker-Inference-Id")
                if parts[:1] != ["endpoints"] or parts[1:2] != [ENDPOINT] or parts[2:] != ["async-invocations"]:
                    return self.reply(400, {"message": f"no endpoint at {self.path}"}, {})
                time.sleep(fake.invoke_latency)
                with fake.lock:
                    fake.invocations[iid] += 1
                out = f"s3://{BUCKET}/async-out/{iid}.out"
                fail = f"s3://{BUCKET}/async-failures/{iid}-error.out"
                fake.jobs.put((self.headers["X-Amzn-SageMaker-InputLocation"], out, fail))
                self.reply(202, {"InferenceId": iid}, {"X-Amzn-SageMaker-OutputLocation": out,
                                                       "X-Amzn-SageMaker-FailureLocation": fail})

            def reply(self, status: int, body: dict, headers: dict[str, str]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", "content-length": str(len(raw)),
                             "x-amzn-requestid": "fake", **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except OSError:  # the dispatcher was killed while this call was in flight: it never learns the answer
                    pass

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self.process, daemon=True)]
        for t in self.threads:
            t.start()
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def process(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            time.sleep(self.delay)
            src, out, fail = job
            body = json.loads(self.s3.get_object(Bucket=BUCKET, Key=parse_s3_uri(src)[1])["Body"].read())
            text = body["messages"][-1]["content"]
            if "REJECT" in text:
                self.s3.put_object(Bucket=BUCKET, Key=parse_s3_uri(fail)[1], Body=b"model error: prompt rejected")
                continue
            self.s3.put_object(Bucket=BUCKET, Key=parse_s3_uri(out)[1], Body=json.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {text}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}).encode())

    def stop(self) -> None:
        self.jobs.put(None)
        self.server.shutdown()


@pytest.fixture
def fake_endpoint(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION,
                      aws_access_key_id=FAKE_CREDS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=FAKE_CREDS["AWS_SECRET_ACCESS_KEY"])
    fake = FakeAsyncEndpoint(s3)
    yield fake
    fake.stop()


def test_sigkill_mid_sagemaker_async_shard_reruns_without_invoking_recorded_records(remote, fake_endpoint, tmp_path):
    s3, sqs, ep = remote
    q, _ = make_queues(s3, sqs, max_receives=3, suffix="-async-kill")
    backend = {"kind": "sagemaker-async", "endpointName": ENDPOINT, "region": REGION,
               "invocationTimeoutSeconds": 60}
    submit_batch(s3, sqs, q, "batch_akill", batch_input(30, reject={17}), max_records=10,
                 message_extra={"backend": backend})
    common = {"backend": "sagemaker-async", "visibility_seconds": 3, "async_poll_seconds": 0.2,
              "async_poll_max_seconds": 0.5,
              "aws_env": {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_endpoint.url}}
    a = spawn(ep, q, "http://127.0.0.1:9/v1", tmp_path / "a.log", **common)  # no engine: a dispatcher
    lay = Layout.of(BUCKET, "batch_akill")

    def recorded() -> int:
        return len(s3.list_objects_v2(Bucket=BUCKET, Prefix=lay.key("async/calls/00000/")).get("Contents", []))

    wait_for(lambda: recorded() >= 3)
    a.send_signal(signal.SIGKILL)
    assert a.wait(timeout=5) == -signal.SIGKILL
    assert not has(s3, lay.done(0)) and not has(s3, lay.out(0)), "killed mid-shard: nothing committed"
    before = recorded()
    b = spawn(ep, q, "http://127.0.0.1:9/v1", tmp_path / "b.log", **common)
    assert b.wait(timeout=60) == 0, (tmp_path / "b.log").read_text()
    m = finalize(s3, BUCKET, "batch_akill")
    assert m["status"] == "completed"
    counts = assert_exactly_once(s3, m, 30)
    assert counts == (29, 1)
    inv = fake_endpoint.invocations
    twice = sum(c - 1 for c in inv.values())
    assert len(inv) == 30, "every record invoked"
    assert twice <= 2, "only records in flight at the kill (concurrency 2) may be invoked again"
    print(f"\nfault sigkill (sagemaker-async): records 30, output {counts[0]}, errors {counts[1]}, "
          f"invocations {sum(inv.values())} ({twice} repeated; {before} recorded before the kill)")
    assert depth(sqs, q) == (0, 0)
