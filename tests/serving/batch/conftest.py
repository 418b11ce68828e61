"""Fixtures for the batch runtime tests: a stub OpenAI engine on a loopback port (the gateway's stub plus
embeddings and two fault modes), S3 and SQS through moto (in-process, or the session's moto server from
tests/serving/conftest.py for worker processes; the moto helpers are tests/kit/aws.py)."""

from __future__ import annotations

import json
import threading

import orjson
import pytest
import uvicorn

from serving.gateway.stub import StubState, make_stub
from tests.kit.aws import FAKE_CREDS, REGION, make_queue_pair, process_env, run_moto_server  # noqa: F401 (re-exported)
from tests.kit.net import free_port, wait_port  # noqa: F401 (re-exported to the tests of this folder)

BUCKET = "batch-test"
MODEL = "llama-3.1-8b"


def engine_app(state: StubState):
    """The gateway's stub, plus ``/v1/embeddings``; a prompt containing ``POISON`` gets a 200 with a malformed
    body, one containing ``REJECT`` a 400 in OpenAI's error shape."""
    stub = make_stub(state)

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await stub(scope, receive, send)
        raw = b""
        while True:
            msg = await receive()
            raw += msg.get("body", b"")
            if not msg.get("more_body"):
                break

        async def reply(status: int, body: bytes) -> None:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})

        if b"POISON" in raw:
            state.requests += 1
            return await reply(200, b'{"id": "cmpl-x", "choices": [')
        if b"REJECT" in raw:
            state.requests += 1
            return await reply(400, orjson.dumps({"error": {"message": "prompt too long", "type": "invalid_request",
                                                            "code": "context_length_exceeded"}}))
        if scope["path"] == "/v1/embeddings":
            state.requests += 1
            state.completed += 1
            return await reply(200, orjson.dumps({"object": "list", "model": MODEL, "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        return await stub(scope, replay, send)

    return app


class Engine:
    def __init__(self) -> None:
        self.state = StubState(MODEL)
        self.state.chunks = 4
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(engine_app(self.state), host="127.0.0.1", port=self.port,
                                                    log_level="error", access_log=False, lifespan="on",
                                                    loop="asyncio", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def reset(self, delay_ms: float = 0.0) -> None:
        self.state.delay_ms = delay_ms
        self.state.requests = self.state.completed = self.state.tokens_served = 0

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def engine():
    e = Engine()
    yield e
    e.stop()


@pytest.fixture
def stub_engine(engine):
    engine.reset()
    yield engine
    engine.reset()


@pytest.fixture
def aws(moto_aws):
    """In-process moto: (s3, sqs, queue_url, dlq_url) with the DLQ's maxReceiveCount 2."""
    s3, sqs = moto_aws
    return (s3, sqs, *make_queues(s3, sqs, max_receives=2))


def make_queues(s3, sqs, *, max_receives: int, suffix: str = "") -> tuple[str, str]:
    """The batch bucket, queue ``batch<suffix>`` and its DLQ ``batch-dlq<suffix>``."""
    return make_queue_pair(s3, sqs, bucket=BUCKET, name="batch", max_receives=max_receives, suffix=suffix)


def server_env(endpoint: str) -> dict[str, str]:
    """A worker process's environment on the moto server at ``endpoint`` (no inherited ``BATCH_*``)."""
    return process_env(endpoint, "BATCH_")


def batch_input(n: int, *, poison: set[int] = frozenset(), reject: set[int] = frozenset(),
                prefix: str = "req") -> bytes:
    """A valid chat batch of ``n`` lines (custom ids ``req-00000``...); ``poison``/``reject`` line indexes carry the
    engine's fault words."""
    lines = []
    for i in range(n):
        text = "POISON" if i in poison else "REJECT" if i in reject else f"question {i}"
        lines.append({"custom_id": f"{prefix}-{i:05d}", "method": "POST", "url": "/v1/chat/completions",
                      "body": {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": 8}})
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def submit_batch(s3, sqs, queue_url: str, batch_id: str, data: bytes, **kw) -> dict:
    from serving.batch.shards import submit
    from serving.batch.validate import Limits, validate_batch

    records = validate_batch(data, Limits(allowed_models=(MODEL,)))
    return submit(s3, sqs, bucket=BUCKET, queue_url=queue_url, batch_id=batch_id, records=records,
                  input_bytes=data, **kw)


def read_lines(s3, key: str) -> list[dict]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [json.loads(x) for x in body.split(b"\n") if x.strip()]


def assert_exactly_once(s3, manifest: dict, n: int) -> tuple[int, int]:
    """Every custom id of an ``n``-line batch is in output + errors exactly once, in input order in each file;
    returns (output lines, error lines)."""
    out = read_lines(s3, manifest["output_key"])
    err = read_lines(s3, manifest["error_key"])
    ids = [x["custom_id"] for x in out] + [x["custom_id"] for x in err]
    assert sorted(ids) == [f"req-{i:05d}" for i in range(n)], "every custom_id exactly once"
    assert [x["custom_id"] for x in out] == sorted(x["custom_id"] for x in out)
    assert [x["custom_id"] for x in err] == sorted(x["custom_id"] for x in err)
    assert manifest["request_counts"] == {"total": n, "completed": len(out), "failed": len(err)}
    return len(out), len(err)
