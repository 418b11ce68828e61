"""Fixtures the runtime test folders share: S3 and SQS through moto (helpers in tests/kit/aws.py)."""

from __future__ import annotations

import pytest

from tests.kit.aws import moto_clients, run_moto_server


@pytest.fixture(scope="session")
def moto_server():
    """One moto server (S3 and SQS over HTTP) for the session's tests that run worker processes; yields its URL."""
    yield from run_moto_server()


@pytest.fixture
def moto_aws(monkeypatch):
    """In-process moto for one test: ``(s3, sqs)`` clients with moto's dummy credentials."""
    with moto_clients(monkeypatch) as clients:
        yield clients
