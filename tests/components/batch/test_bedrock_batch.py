"""BedrockBatchServiceRole: the model ids Bedrock batch takes, the service role's trust (confused-deputy conditions)
and least-privilege policy on the batch prefix, and the submitter's policy (PassRole to Bedrock only)."""

from __future__ import annotations

import json

import pytest

from components import BedrockBatchServiceRole, BedrockBatchServiceRoleArgs
from components.batch import _bedrock_batch as bb
from components.errors import ArgsError
from infra.plan import run_program

KEY = "arn:aws:kms:us-east-1:123456789012:key/k"
WHERE = {"partition": "aws", "region": "us-east-1", "account": "123456789012"}


def args(**over) -> BedrockBatchServiceRoleArgs:
    return BedrockBatchServiceRoleArgs(**{"model_id": "us.amazon.nova-lite-v1:0", "bucket": "batches-bkt",
                                          "kms_key_arn": KEY, "region": "us-east-1", **over})


@pytest.mark.parametrize("model_id", ["amazon.nova-lite-v1:0", "us.amazon.nova-pro-v1:0", "eu.amazon.nova-micro-v1:0",
                                      "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
                                      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"])
def test_base_ids_profiles_and_their_arns_are_batch_models(model_id):
    assert bb.model_id_problem(model_id) is None


def test_a_provisioned_throughput_variant_names_the_base_id_and_profile():
    assert bb.model_id_problem("amazon.nova-lite-v1:0:24k") == (
        "a base model id or cross-Region profile id, not the Provisioned Throughput variant: use "
        "amazon.nova-lite-v1:0 or us.amazon.nova-lite-v1:0")


def test_a_provisioned_model_arn_is_refused():
    expected = bb.model_id_problem("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc")
    assert expected is not None and expected.endswith(
        "not a provisioned-model ARN (Provisioned Throughput serves real-time requests only)")


def test_an_unknown_or_non_text_model_lists_the_choices():
    expected = bb.model_id_problem("amazon.titan-embed-text-v1:2")
    assert expected is not None and expected.startswith("a text model Bedrock batch inference takes: ")
    assert "us.amazon.nova-lite-v1:0" in expected and "amazon.titan-embed" not in expected


def test_the_args_report_a_bad_model_id_at_its_field():
    with pytest.raises(ArgsError) as exc:
        args(model_id="amazon.nova-lite-v1:0:24k")
    [p] = exc.value.problems
    assert p.path == "model_id" and p.value == "amazon.nova-lite-v1:0:24k"


def test_the_trust_names_the_account_and_its_jobs_only():
    [st] = bb.trust_policy(**WHERE)["Statement"]
    assert st["Principal"] == {"Service": "bedrock.amazonaws.com"} and st["Action"] == "sts:AssumeRole"
    assert st["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnEquals": {"aws:SourceArn": "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/*"}}


def test_the_service_role_reads_inputs_writes_outputs_and_invokes_only_through_a_profile():
    doc = bb.service_role_policy(**WHERE, bucket="bkt", kms_key_arn=KEY, model_id="us.amazon.nova-lite-v1:0")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ReadInput"]["Resource"] == ["arn:aws:s3:::bkt/batches/*/bedrock/input/*"]
    assert by_sid["ReadInput"]["Action"] == ["s3:GetObject"]
    assert by_sid["WriteOutput"]["Resource"] == ["arn:aws:s3:::bkt/batches/*/bedrock/output/*"]
    assert by_sid["WriteOutput"]["Action"] == ["s3:PutObject"]
    assert by_sid["ListBatches"]["Condition"]["StringLike"] == {"s3:prefix": ["batches/*"]}
    assert all(by_sid[s]["Condition"]["StringEquals"] == {"aws:ResourceAccount": "123456789012"}
               for s in ("ReadInput", "WriteOutput", "ListBatches"))
    assert by_sid["BatchKeyThroughS3"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert by_sid["InvokeThroughProfile"]["Resource"] == [
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
        "arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0"]
    base = bb.service_role_policy(**WHERE, bucket="bkt", kms_key_arn=KEY, model_id="amazon.nova-lite-v1:0")
    assert "InvokeThroughProfile" not in {s["Sid"] for s in base["Statement"]}
    assert not any("*" == a or a.endswith(":*") for s in doc["Statement"] for a in s["Action"])


def test_the_submitter_creates_jobs_on_the_model_and_passes_the_role_to_bedrock_only():
    doc = bb.submit_policy(**WHERE, role_arn="arn:aws:iam::123456789012:role/r", model_id="amazon.nova-lite-v1:0")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    jobs = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/*"
    assert by_sid["CreateJobs"] == {"Sid": "CreateJobs", "Effect": "Allow",
                                    "Action": ["bedrock:CreateModelInvocationJob"],
                                    "Resource": [jobs, "arn:aws:bedrock:us-east-1::foundation-model/"
                                                       "amazon.nova-lite-v1:0"]}
    assert by_sid["ManageJobs"]["Action"] == ["bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"]
    assert by_sid["ManageJobs"]["Resource"] == [jobs] and by_sid["TagJobsOnCreate"]["Resource"] == [jobs]
    assert by_sid["PassServiceRole"] == {
        "Sid": "PassServiceRole", "Effect": "Allow", "Action": ["iam:PassRole"],
        "Resource": ["arn:aws:iam::123456789012:role/r"],
        "Condition": {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}}


@pytest.fixture(scope="module")
def plan():
    return run_program(lambda: BedrockBatchServiceRole("bb", args()))


def test_the_component_creates_the_role_its_policy_and_the_submit_policy(plan):
    assert sorted((r.type, r.name) for r in plan.resources) == [
        ("aws:iam/policy:Policy", "bb-policy"), ("aws:iam/policy:Policy", "bb-submit"),
        ("aws:iam/role:Role", "bb-role"), ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "bb-attach"),
        ("genai-scale:index:BedrockBatchServiceRole", "bb")]
    role = plan.one("aws:iam/role:Role")
    [st] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    policies = {p.name: json.loads(p.inputs["policy"]) for p in plan.by_type("aws:iam/policy:Policy")}
    assert policies["bb-policy"]["Statement"][0]["Resource"] == ["arn:aws:s3:::batches-bkt/batches/*/bedrock/input/*"]
    pass_role = next(s for s in policies["bb-submit"]["Statement"] if s["Sid"] == "PassServiceRole")
    assert pass_role["Resource"][0].startswith("arn:aws:iam::123456789012:role/bb-role")
