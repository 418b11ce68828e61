"""The gateway serves the Batch API of every tier's batch section: its config names the batch queue and bucket the
plan creates, and its IRSA policy has the Batch API's least-privilege statements on them."""

from __future__ import annotations

import json

import pytest
import yaml

from components.gateway.gateway import batch_policy_statements
from tests.stack_plans import planned

STACKS = ["dev", "staging", "prod"]


def _arn(result, name: str) -> str:
    return result.one("aws:sqs/queue:Queue", name).outputs["arn"]


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_config_and_policy_name_the_batch_resources(stack):
    result, cfg = planned(stack)
    assert cfg.batch.enabled
    doc = yaml.safe_load(result.one("kubernetes:core/v1:ConfigMap", "gateway-config").inputs["data"]["gateway.yaml"])
    queue = result.one("aws:sqs/queue:Queue", "batch-queue")
    bucket = result.one("aws:s3/bucket:Bucket", "batch-bucket")
    doc["batch"].pop("backends")  # the managed backends: tests/infra/sections/test_batch_backends.py
    assert doc["batch"] == {"enabled": True, "bucket": result.outputs["batchBucket"],
                            "queueUrl": result.outputs["batchQueueUrl"], "region": cfg.region}
    assert doc["batch"]["queueUrl"] == queue.outputs["url"]
    assert doc["batch"]["bucket"] == bucket.outputs["bucket"]
    key = result.one("aws:kms/key:Key", "batch-key").outputs["arn"]
    policy = json.loads(result.one("aws:iam/policy:Policy", "gateway-irsa-policy").inputs["policy"])
    assert policy["Statement"] == batch_policy_statements(doc["batch"]["bucket"], _arn(result, "batch-queue"),
                                                          _arn(result, "batch-dlq"), key)
    limits = doc["tenants"]["limits"]["default"]
    assert limits["batchTokensPerDay"] == cfg.gateway.tenants["default"].batch_tokens_per_day


def test_batch_budgets_grow_with_the_tier():
    budgets = [planned(s)[1].gateway.tenants["default"].batch_tokens_per_day for s in STACKS]
    assert budgets == sorted(budgets) and budgets[0] < budgets[-1]
