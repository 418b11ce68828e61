"""S3 and SQS through moto for the queue workers' tests (batch, RAG ingestion, the gateway's batch and collection
APIs): moto's dummy credentials, in-process moto clients, a moto server for tests that run worker processes, a queue
with its dead-letter queue, and the environment of a worker process pointed at the moto server.

The fixtures built on these are in ``tests/serving/conftest.py`` (``moto_server``, ``moto_aws``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tests.kit.net import free_port, wait_port

REGION = "us-east-1"
FAKE_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
"""moto's documented dummy credentials (never real ones)."""


@contextmanager
def moto_clients(monkeypatch) -> Iterator[tuple[object, object]]:
    """In-process moto (``mock_aws``) with the dummy credentials: yields ``(s3, sqs)`` clients of :data:`REGION`."""
    import boto3
    from moto import mock_aws

    for k, v in FAKE_CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("s3", region_name=REGION), boto3.client("sqs", region_name=REGION)


def make_queue_pair(s3, sqs, *, bucket: str, name: str, max_receives: int, suffix: str = "") -> tuple[str, str]:
    """The bucket (kept if it exists), queue ``<name><suffix>`` and its dead-letter queue ``<name>-dlq<suffix>``
    (maxReceiveCount ``max_receives``); returns ``(queue_url, dlq_url)``."""
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    q = sqs.create_queue(QueueName=f"{name}{suffix}", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    return q, dlq


class RefusingSend:
    """An SQS client whose ``send_message`` is refused (a role without ``sqs:SendMessage``); every other call goes to
    ``inner``."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def send_message(self, **kw):
        raise RuntimeError("AccessDenied: sqs:SendMessage")

    def __getattr__(self, name):
        return getattr(self.inner, name)


def run_moto_server() -> Iterator[str]:
    """A moto server (S3 and SQS over HTTP) on a free loopback port: yields its URL, stops it afterwards."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_port(port)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def process_env(endpoint: str, prefix: str) -> dict[str, str]:
    """This process's environment without ``AWS_*`` and ``<prefix>*`` variables, plus the dummy credentials, the
    moto server's ``endpoint`` and :data:`REGION`: what a worker process started by a test runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", prefix))}
    env.update(FAKE_CREDS, AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION)
    return env
