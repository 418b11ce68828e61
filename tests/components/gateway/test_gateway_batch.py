"""The gateway's Batch API wiring: the config's ``batch`` block, the least-privilege IAM statements, the batch budget
per tenant, and the rules over the batch inputs."""

from __future__ import annotations

import json
import types

import pulumi
import pytest
import yaml

from components.errors import ArgsError
from components.gateway.gateway import Gateway, TenantSpec, batch_policy_statements, render_config
from infra.plan import run_program
from infra.sections import gateway as section
from serving.gateway.config import parse_config
from tests.components.gateway.test_gateway import CONFIG, _args, _ctx

BUCKET = "genai-batches"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:batch-queue"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:batch-dlq"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/k-1"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/batch-queue"
BATCH = dict(batch_bucket=BUCKET, batch_queue_url=QUEUE_URL, batch_queue_arn=QUEUE_ARN, batch_dlq_arn=DLQ_ARN,
             batch_kms_key_arn=KEY_ARN)

STATEMENTS = [
    {"Sid": "BatchObjects", "Effect": "Allow", "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
     "Resource": ["arn:aws:s3:::genai-batches/files/*", "arn:aws:s3:::genai-batches/batches/*"]},
    {"Sid": "BatchList", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::genai-batches"]},
    {"Sid": "BatchSendShards", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [QUEUE_ARN]},
    {"Sid": "BatchReadDeadLetters", "Effect": "Allow",
     "Action": ["sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], "Resource": [DLQ_ARN]},
    {"Sid": "BatchKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY_ARN]},
]


def test_batch_policy_statements_are_exactly_the_batch_apis_rights():
    assert batch_policy_statements(BUCKET, QUEUE_ARN, DLQ_ARN, KEY_ARN) == STATEMENTS


def _config(r) -> dict:
    return yaml.safe_load(r.one("kubernetes:core/v1:ConfigMap", "gw-config").inputs["data"]["gateway.yaml"])


def test_batch_inputs_render_the_batch_block_and_the_role_policy():
    tenants = {"acme": TenantSpec(tokens_per_minute=1000, batch_tokens_per_day=5_000_000)}
    r = run_program(lambda: Gateway("gw", _args(tenants=tenants, batch_region="us-east-1", **BATCH)))
    doc = _config(r)
    assert doc["batch"] == {"enabled": True, "bucket": BUCKET, "queueUrl": QUEUE_URL, "region": "us-east-1"}
    assert doc["tenants"]["limits"]["acme"] == {"tokensPerMinute": 1000, "batchTokensPerDay": 5_000_000}
    policy = json.loads(r.one("aws:iam/policy:Policy", "gw-irsa-policy").inputs["policy"])
    assert policy == {"Version": "2012-10-17", "Statement": STATEMENTS}
    attached = sorted(a.inputs["policyArn"] for a in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"))
    assert len(attached) == 2 and "arn:aws:iam::123456789012:policy/invoke" in attached  # the invoke policy stays
    doc["tenants"] = {"keys": {"acme": ["0" * 64]}, "limits": doc["tenants"]["limits"]}
    assert parse_config(doc).batch.queue_url == QUEUE_URL  # the gateway's own loader accepts it


def test_batch_statements_join_the_embedding_statement_in_one_policy():
    r = run_program(lambda: Gateway("gw", _args(
        bedrock_embedding_model_arn="arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
        **BATCH)))
    policy = json.loads(r.one("aws:iam/policy:Policy", "gw-irsa-policy").inputs["policy"])
    sids = [s["Sid"] for s in policy["Statement"]]
    assert sids == ["EmbedForSemanticCache", *(s["Sid"] for s in STATEMENTS)]
    assert "region" not in _config(r)["batch"]  # no batch_region: the SDK's


def test_without_batch_inputs_there_is_no_batch_block_and_no_batch_rights():
    r = run_program(lambda: Gateway("gw", _args()))
    assert "batch" not in _config(r)
    assert r.by_type("aws:iam/policy:Policy") == []
    assert "batch" not in yaml.safe_load(render_config(CONFIG, _args(), _args().tenants))


def test_batch_inputs_come_together_with_an_oidc_provider_and_budgets_need_them():
    with pytest.raises(ArgsError) as e:
        _args(batch_bucket=BUCKET, batch_queue_url=QUEUE_URL, invoke_policy_arns=[])
    text = str(e.value)
    for missing in ("batch_queue_arn", "batch_dlq_arn", "batch_kms_key_arn"):
        assert f"{missing} = None: required with the other batch inputs (batch_bucket, batch_queue_url)" in text
    with pytest.raises(ArgsError) as e:
        _args(oidc_provider_arn=None, invoke_policy_arns=[], **BATCH)
    assert "oidc_provider_arn = None: required (with oidc_issuer) with the batch inputs" in str(e.value)
    with pytest.raises(ArgsError) as e:
        _args(tenants={"acme": TenantSpec(batch_tokens_per_day=10)})
    assert "tenants.acme.batch_tokens_per_day = 10: unset without the batch inputs" in str(e.value)


def _cfg(batch: bool, **gateway):
    off = types.SimpleNamespace(enabled=False, models={}, endpoints={})
    cfg = types.SimpleNamespace(gateway=section.GatewaySettings.model_validate({"enabled": True, **gateway}),
                                batch=types.SimpleNamespace(enabled=batch),
                                serving=types.SimpleNamespace(enabled=True, models={"m": {}}), sagemaker=off,
                                bedrock=off, cache=types.SimpleNamespace(enabled=True))
    return cfg


def test_section_rules_over_the_batch_budget():
    budget = {"tenants": {"acme": {"batchTokensPerDay": 100}}}
    text = "\n".join(p.render() for p in section.problems(_cfg(False, **budget)))
    assert "gateway.tenants.acme.batchTokensPerDay = 100: unset without batch (batch.enabled)" in text
    assert section.problems(_cfg(True, **budget)) == []
    nocache = _cfg(True, **budget)
    nocache.cache = types.SimpleNamespace(enabled=False)
    text = "\n".join(p.render() for p in section.problems(nocache))
    assert "gateway.tenants.acme" in text and "need the shared cache" in text


def test_section_takes_the_batch_resources_as_deferred_outputs():
    """The gateway builds before the batch section; the batch section resolves what the gateway's config and role
    need from its BatchInference."""
    def prog():
        ctx = _ctx(bedrock=types.SimpleNamespace(model_arn="arn:aws:bedrock:us-east-1::inference-profile/x",
                                                 invoke_policy_arn="arn:aws:iam::1:policy/br"))
        cfg = types.SimpleNamespace(gateway=section.GatewaySettings.model_validate({"enabled": True}),
                                    batch=types.SimpleNamespace(enabled=True))
        section.build(ctx, cfg)
        assert section.BATCH_WIRING in ctx.extras
        out = pulumi.Output.from_input
        section.resolve_batch_wiring(ctx, types.SimpleNamespace(
            bucket=out(BUCKET), queue_url=out(QUEUE_URL), queue=types.SimpleNamespace(arn=out(QUEUE_ARN)),
            dead_letter_queue=types.SimpleNamespace(arn=out(DLQ_ARN)), kms_key_arn=out(KEY_ARN)))
        assert section.BATCH_WIRING not in ctx.extras
        section.resolve_batch_wiring(ctx, None)  # a second call (or none wired) is a no-op

    r = run_program(prog)
    doc = yaml.safe_load(r.one("kubernetes:core/v1:ConfigMap", "gateway-config").inputs["data"]["gateway.yaml"])
    assert doc["batch"] == {"enabled": True, "bucket": BUCKET, "queueUrl": QUEUE_URL, "region": "us-east-1"}
    policy = json.loads(r.one("aws:iam/policy:Policy", "gateway-irsa-policy").inputs["policy"])
    assert policy["Statement"] == STATEMENTS
