"""Shared test setup: run from the repo root; Pulumi's runtime settings are restored by infra.plan.run_program."""

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.kit.vllm"]  # the vllm_parser fixture

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _aws_env():
    # boto3/moto need a region and fake credentials; never real ones in tests.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ.pop("AWS_PROFILE", None)
    yield
