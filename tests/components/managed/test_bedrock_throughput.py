"""BedrockProvisionedThroughput: catalogue validation, protection of committed purchases, profile and invoke policy."""

import json

import pytest

from components.managed import _bedrock as br
from components.managed.bedrock_throughput import BedrockProvisionedThroughput, BedrockProvisionedThroughputArgs
from components.catalog import bedrock_models
from infra.plan import run_program
from tests.kit.plan import errors_of, plan_component

PT = "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput"
PROFILE = "aws:bedrock/inferenceProfile:InferenceProfile"


def args(**kw):
    return BedrockProvisionedThroughputArgs(**{"model_id": "amazon.nova-lite-v1:0:24k", "region": "us-east-1", **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


def plan(**kw):
    return plan_component(lambda: BedrockProvisionedThroughput("bedrock", args(**kw)), stack="prod")


def test_catalogue_rows_are_contextual_variants_with_their_base_ids():
    row = bedrock_models.lookup("amazon.nova-pro-v1:0:300k")
    assert row.base_id == "amazon.nova-pro-v1:0" and row.context_tokens == 300_000 and row.kind == "text"
    assert bedrock_models.variants_of("amazon.nova-lite-v1:0") == ["amazon.nova-lite-v1:0:24k",
                                                                   "amazon.nova-lite-v1:0:300k"]
    assert all(m.pt_regions for m in bedrock_models.MODELS.values())


def test_an_on_demand_id_is_refused_with_the_accepted_variants():
    msg = errors(model_id="amazon.nova-lite-v1:0")
    assert ("model_id = 'amazon.nova-lite-v1:0': a contextual variant id; Provisioned Throughput is bought per "
            "variant: amazon.nova-lite-v1:0:24k, amazon.nova-lite-v1:0:300k") in msg


def test_an_unknown_model_lists_the_catalogue_and_suggests():
    msg = errors(model_id="amazon.nova-lite-v1:0:25k")
    assert "a model id from the Provisioned Throughput catalogue: " in msg
    assert 'did you mean "amazon.nova-lite-v1:0:24k"' in msg


def test_model_units_must_be_positive_and_commitment_is_an_enum():
    msg = errors(model_units=0, commitment="OneYear")
    assert "model_units = 0: expected a number >= 1" in msg
    assert "commitment = 'OneYear': expected one of 'none', 'OneMonth' or 'SixMonths'" in msg


def test_commitment_needs_a_purchase():
    assert "commitment = 'OneMonth': 'none' unless purchase is true" in errors(commitment="OneMonth")


def test_purchase_region_must_offer_the_variant():
    assert "region = 'eu-west-1': a Region where amazon.nova-lite-v1:0:24k can be bought as Provisioned Throughput: " \
           "us-east-1" in errors(region="eu-west-1", purchase=True)


def test_models_without_no_commit_offer_need_a_term():
    msg = errors(model_id="amazon.titan-image-generator-v2:0", purchase=True)
    assert "commitment = 'none': OneMonth or SixMonths" in msg


def test_cross_region_source_must_exist_for_the_model_and_serve_the_region():
    assert "on_demand_source = 'global': 'in-region' or a geography with a system-defined profile for " \
           "amazon.nova-lite-v1:0 (us, eu, apac)" in errors(on_demand_source="global")
    assert "on_demand_source = 'eu': a geography that Region us-east-1 belongs to" in errors(on_demand_source="eu")


def test_provisioned_model_name_fits_the_api_pattern():
    assert br.provisioned_model_name("prod", "bedrock") == "prod-bedrock"
    name = br.provisioned_model_name("a b/c__d-", "x" * 80)
    assert br.PT_NAME.match(name) and len(name) <= 63


def test_on_demand_creates_a_tagged_profile_and_buys_nothing():
    result, c = plan(on_demand_source="us", tags={"team": "ml"})
    assert result.by_type(PT) == []
    profile = result.one(PROFILE)
    assert profile.inputs["modelSource"]["copyFrom"] == \
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
    assert profile.inputs["tags"]["team"] == "ml"
    assert c.provisioned is False and c.provisioned_model_arn is None
    assert result.outputs == {} and c.model_id == "amazon.nova-lite-v1:0:24k"


def test_in_region_profile_copies_the_foundation_model():
    result, _ = plan()
    assert result.one(PROFILE).inputs["modelSource"]["copyFrom"] == \
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"


def test_no_commit_purchase_is_not_protected_and_omits_the_term():
    result, c = plan(purchase=True, model_units=2)
    pt = result.one(PT)
    assert pt.inputs["modelArn"] == "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:24k"
    assert pt.inputs["modelUnits"] == 2
    assert "commitmentDuration" not in pt.inputs
    assert pt.inputs["provisionedModelName"] == "prod-bedrock"
    assert pt.protect is False
    assert c.provisioned and not c.committed


@pytest.mark.parametrize("term", ["OneMonth", "SixMonths"])
def test_committed_purchase_is_protected_against_destroy(term):
    result, c = plan(purchase=True, commitment=term)
    pt = result.one(PT)
    assert pt.inputs["commitmentDuration"] == term
    assert pt.protect is True
    assert c.committed
    # nothing else is protected
    assert [r.name for r in result.resources if r.protect] == ["bedrock-pt"]


def _invoke_doc(result):
    return json.loads(result.one("aws:iam/policy:Policy", "bedrock-invoke").inputs["policy"])


def test_invoke_policy_names_the_provisioned_model_the_profile_and_conditions_the_models():
    result, c = plan(purchase=True, on_demand_source="us")
    pt, profile = result.one(PT), result.one(PROFILE)
    doc = _invoke_doc(result)
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ProvisionedThroughput"]["Resource"] == [pt.outputs["provisionedModelArn"]]
    assert by_sid["ApplicationProfile"]["Resource"] == [profile.outputs["arn"]]
    behind = by_sid["ModelsBehindProfile"]
    assert behind["Resource"] == ["arn:aws:bedrock:*::foundation-model/amazon.nova-lite-v1:0",
                                  "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"]
    assert behind["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile.outputs["arn"]}}
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    assert actions == {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}


def test_model_arn_is_the_provisioned_arn_when_bought_else_the_profile():
    def prog():
        bought = BedrockProvisionedThroughput("bought", args(purchase=True))
        demand = BedrockProvisionedThroughput("demand", args())
        import pulumi
        pulumi.export("bought", bought.model_arn)
        pulumi.export("demand", demand.model_arn)
    result = run_program(prog)
    assert ":provisioned-model/" in result.outputs["bought"]
    assert ":application-inference-profile/" in result.outputs["demand"]


def test_profile_description_matches_the_api_pattern():
    import re
    text = br.profile_description("dev (bedrock)", "amazon.nova-lite-v1:0", "in-region")
    assert re.fullmatch(r"([0-9a-zA-Z:.][ _-]?)+", text)
