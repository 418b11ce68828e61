"""The price catalogue: every row sourced and dated, every planned instance type priced or listed as unpriced."""

from collections import Counter
from datetime import date

import pytest
import yaml
from pydantic import ValidationError

from components.catalog import accelerators, bedrock_models, prices, throughput
from tests.kit import ROOT
from tests.stack_plans import planned

STACKS = ("dev", "staging", "prod")


def _rows():
    return [*prices.INSTANCE_PRICES.values(), *prices.TOKEN_PRICES.values(), prices.SPOT,
            *prices.CAPACITY_BLOCKS.values(), *prices.PROVISIONED_PRICES.values(), *prices.SPOT_OBSERVED.values()]


def test_every_row_has_a_source_a_date_and_a_basis():
    rows = _rows()
    assert len(prices.INSTANCE_PRICES) >= 20 and len(prices.TOKEN_PRICES) >= 3 and len(prices.CAPACITY_BLOCKS) >= 3
    refreshed = [*prices.REFRESHED.on_demand, *prices.REFRESHED.spot]
    for row in rows:
        assert row.source.startswith(("https://", "seed ")), row
        # hand-kept rows were read by CHECKED; a refresh stamps the day it ran
        latest = date.today() if row in refreshed else date.fromisoformat(prices.CHECKED)
        assert date(2024, 1, 1) <= row.as_of <= latest, row
        assert len(row.basis) >= 10, row


@pytest.mark.parametrize("model", [prices.InstancePrice, prices.CapacityBlockPrice, prices.ProvisionedPrice,
                                   prices.SpotObservation, prices.TokenPrice, prices.SpotRange])
def test_a_row_without_source_or_date_is_refused(model):
    for name in ("source", "as_of", "basis"):
        assert model.model_fields[name].is_required(), (model.__name__, name)
    with pytest.raises(ValidationError) as exc:
        model.model_validate({})
    missing = {e["loc"][0] for e in exc.value.errors() if e["type"] == "missing"}
    assert {"source", "as_of", "basis"} <= missing


def test_keys_match_rows_and_ec2_rows_name_the_offer_version():
    for (itype, region), row in prices.INSTANCE_PRICES.items():
        assert (row.instance_type, row.region) == (itype, region)
        if row.source == prices.EC2_OFFER_FILE:
            assert prices.EC2_OFFER_VERSION in row.basis
    for (model, region), row in prices.TOKEN_PRICES.items():
        assert (row.model_id, row.region) == (model, region)


def test_token_prices_belong_to_catalogued_bedrock_models_and_batch_is_half():
    for row in prices.TOKEN_PRICES.values():
        assert row.model_id in prices.bedrock_base_ids(), row.model_id
        # the Bedrock pricing page: batch is 50% below on-demand
        assert row.batch_input_per_mtok == pytest.approx(row.on_demand_input_per_mtok / 2)
        assert row.batch_output_per_mtok == pytest.approx(row.on_demand_output_per_mtok / 2)


def test_priced_accelerated_types_are_in_the_accelerator_catalogue():
    for itype, _ in prices.INSTANCE_PRICES:
        if not itype.startswith("m7i."):
            assert accelerators.lookup(itype.removeprefix("ml.")) is not None, itype


def test_no_row_is_listed_twice():
    # INSTANCE_PRICES is a dict built from the rows: a second row for the same key would silently replace the first
    counts = Counter((r.instance_type, r.region) for r in prices._INSTANCE_ROWS)
    assert [key for key, n in counts.items() if n > 1] == []
    assert len(prices.HAND_KEPT_PRICES) == len(prices._INSTANCE_ROWS)
    assert set(prices.INSTANCE_PRICES) == set(prices.HAND_KEPT_PRICES) | {
        (r.instance_type, r.region) for r in prices.REFRESHED.on_demand}


def _sagemaker_rows():
    return [r for r in prices.HAND_KEPT_PRICES.values() if r.instance_type.startswith("ml.")]


def test_sagemaker_rows_name_the_sagemaker_offer_file_and_both_inference_components():
    rows = _sagemaker_rows()
    assert {r.instance_type for r in rows} >= {
        "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.12xlarge", "ml.g6.xlarge", "ml.g6.2xlarge", "ml.g6.12xlarge",
        "ml.g6e.xlarge", "ml.g6e.2xlarge", "ml.g6e.12xlarge", "ml.inf2.xlarge", "ml.inf2.8xlarge"}
    for r in rows:
        assert r.source == prices.SAGEMAKER_OFFER_FILE and r.region == "us-east-1", r
        assert "USE1-Host" in r.basis and "USE1-AsyncInf" in r.basis, r


def test_sagemaker_prices_carry_a_premium_over_their_ec2_instance():
    # every sourced pair is 1.2x-1.4x; a row equal to (or below) the EC2 price is the copying mistake some
    # third-party tables make (ml.inf2.8xlarge at 1.968, ml.g6e.12xlarge at 10.49)
    for r in _sagemaker_rows():
        ec2 = prices.HAND_KEPT_PRICES[(r.instance_type.removeprefix("ml."), r.region)].on_demand_usd_per_hour
        assert 1.15 <= r.on_demand_usd_per_hour / ec2 <= 1.45, (r.instance_type, r.on_demand_usd_per_hour, ec2)


def test_us_west_2_rows_are_sourced_separately_and_equal_us_east_1():
    west = [r for r in prices.HAND_KEPT_PRICES.values() if r.region == "us-west-2"]
    assert {r.instance_type for r in west} >= {"g5.xlarge", "g5.2xlarge", "g5.12xlarge", "inf2.xlarge",
                                                "inf2.8xlarge", "p5.48xlarge"}
    for r in west:
        assert r.source == prices.VANTAGE + r.instance_type and "us-west-2" in r.basis, r
        east = prices.HAND_KEPT_PRICES[(r.instance_type, "us-east-1")].on_demand_usd_per_hour
        assert r.on_demand_usd_per_hour == pytest.approx(east, abs=1e-5), r.instance_type
    # the CPU system nodes have no us-west-2 source: absent, not copied
    assert ("m7i.large", "us-west-2") not in prices.HAND_KEPT_PRICES


def _tier_instance_types() -> set[str]:
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "instanceType" and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted((ROOT / "stacks" / "tiers").glob("*/*.yaml")):
        walk(yaml.safe_load(path.read_text()))
    return found


def test_every_instance_type_in_the_tier_presets_is_priced_or_listed_as_unpriced():
    # read from the presets themselves, so it holds even when the plan cannot be built
    used = _tier_instance_types()
    assert {t for t in used if t.startswith("ml.")}, "no ml.* type found: the walk would pass vacuously"
    missing = {t for t in used if (t, "us-east-1") not in prices.INSTANCE_PRICES and t not in prices.UNPRICED}
    assert missing == set()
    for t in used:
        if t.startswith("ml."):
            assert (t, "us-east-1") in prices.INSTANCE_PRICES, f"{t}: the planned SageMaker types are all priced"


def test_known_prices():
    def hand(itype, region="us-east-1"):
        return prices.HAND_KEPT_PRICES[(itype, region)].on_demand_usd_per_hour

    assert hand("g5.xlarge") == 1.006
    assert hand("ml.g6e.2xlarge") == 2.8026  # USE1-Host = USE1-AsyncInf
    assert hand("ml.g5.xlarge") == 1.408  # not the 1.21 one blog gives
    assert hand("g6e.12xlarge", "us-west-2") == 10.49264
    assert hand("p5.48xlarge") == 55.04  # after the June 2025 P5 cut
    assert prices.spot_usd_per_hour("g5.xlarge") == pytest.approx(prices.on_demand("g5.xlarge").on_demand_usd_per_hour
                                                                  * 0.30)
    assert prices.SPOT.kind == "typical-discount" and prices.SPOT.ceiling == 0.90


def _planned_instance_types(stack: str) -> set[str]:
    found: set[str] = set()

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in ("instanceType", "instanceTypes"):
            found.add(value)

    for r in planned(stack)[0].resources:
        walk(r.inputs)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_planned_instance_type_is_priced_or_listed_as_unpriced(stack):
    region = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]["aws:region"]
    used = _planned_instance_types(stack)
    assert used, "the plan walk found no instance types: the test would pass vacuously"
    missing = {t for t in used if (t, region) not in prices.INSTANCE_PRICES and t not in prices.UNPRICED}
    assert missing == set(), f"{stack}: add a sourced price or an UNPRICED reason for {sorted(missing)}"


def test_unpriced_lists_only_types_that_have_no_price():
    assert prices.UNPRICED
    for itype, why in prices.UNPRICED.items():
        assert not [r for t, r in prices.INSTANCE_PRICES if t == itype] and why


def test_throughput_instance_types_are_priced():
    for f in throughput.FIGURES:
        assert (f.instance_type, "us-east-1") in prices.INSTANCE_PRICES, f.instance_type


def test_lookup_errors_name_the_value_and_what_exists():
    with pytest.raises(prices.PriceNotFound) as exc:
        prices.on_demand("ml.p4d.24xlarge")
    assert "instance_type ('ml.p4d.24xlarge') has no on-demand price for region 'us-east-1'" in str(exc.value)
    assert "SageMaker hosting price not found" in str(exc.value) and "ml.g6e.2xlarge" in str(exc.value)
    with pytest.raises(prices.PriceNotFound) as exc:
        prices.on_demand("m7i.large", "us-west-2")
    assert "region 'us-west-2'; priced there: g5.12xlarge" in str(exc.value)
    assert "m7i" not in str(exc.value).split("priced there: ")[1]
    with pytest.raises(prices.PriceNotFound, match="no prices are catalogued for that region"):
        prices.on_demand("g5.xlarge", "eu-west-1")
    with pytest.raises(prices.PriceNotFound, match=r"model \('anthropic.claude-v2:1'\) has no Bedrock token price"):
        prices.tokens("anthropic.claude-v2:1")


def test_validation_messages():
    base = {"instance_type": "g5.xlarge", "region": "us-east-1", "on_demand_usd_per_hour": 1.0,
            "source": "https://example.com/x", "as_of": date(2026, 1, 1), "basis": "a test row, not data"}
    prices.InstancePrice(**base)
    with pytest.raises(ValidationError, match=r"source \('aws pricing page'\) must be an https:// URL or a seed"):
        prices.InstancePrice(**{**base, "source": "aws pricing page"})
    with pytest.raises(ValidationError, match="greater than 0"):
        prices.InstancePrice(**{**base, "on_demand_usd_per_hour": 0})
    with pytest.raises(ValidationError, match="should match pattern"):
        prices.InstancePrice(**{**base, "instance_type": "G5 xlarge"})
    with pytest.raises(ValidationError, match=r"region\n  String should match pattern"):
        prices.InstancePrice(**{**base, "region": "mars-1"})
    prices.InstancePrice(**{**base, "region": "eu-west-1"})  # a refresh may store any Region
    with pytest.raises(ValidationError, match="at least 10 characters"):
        prices.InstancePrice(**{**base, "basis": "x"})
    with pytest.raises(ValidationError, match="less than 1"):
        prices.SpotReference(kind="typical-discount", discount=1.0, ceiling=0.9, source="seed 003 §4.5",
                             as_of=date(2026, 1, 1), basis="a test row, not data")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        prices.InstancePrice(**{**base, "spot": 0.3})


def test_throughput_rows_are_sourced_and_convert_tokens_to_requests():
    for f in throughput.FIGURES:
        assert f.source.startswith(("https://", "seed ")), f
    assert set(throughput.models()) == {"seed-example", "llama-3.1-8b-instruct", "llama-3.3-70b-instruct"}
    assert throughput.figure("seed-example", "batch").requests_per_second(999) == 500
    assert throughput.figure("llama-3.1-8b-instruct", "batch").requests_per_second(200) == pytest.approx(66.5)
    with pytest.raises(throughput.FigureNotFound, match=r"model \('x'\) has no online throughput figure; known: "):
        throughput.figure("x", "online")
    with pytest.raises(ValueError, match=r"output_tokens \(0\) must be >= 1"):
        throughput.figure("seed-example", "online").requests_per_second(0)
    with pytest.raises(ValidationError, match=r"source \('nvidia'\) must be an https:// URL or a seed reference"):
        throughput.Throughput(model="m", accelerator="A100", accelerators=1, instance_type="p4d.24xlarge",
                              mode="batch", unit="requests_per_second", value=1, source="nvidia",
                              as_of=date(2026, 1, 1))


def test_spot_range_without_history_is_the_documented_discount_range(monkeypatch):
    # pin the hand-kept g5.xlarge row and no stored history, whatever a refresh wrote
    key = ("g5.xlarge", "us-east-1")
    monkeypatch.setitem(prices.INSTANCE_PRICES, key, prices.HAND_KEPT_PRICES[key])
    monkeypatch.delitem(prices.SPOT_OBSERVED, key, raising=False)
    got = prices.spot_range("g5.xlarge")
    assert got.kind == "typical-discount" and got.source == prices.SEED_BATCH and got.on_demand_usd_per_hour == 1.006
    assert got.low_usd_per_hour == pytest.approx(0.1006)  # 1.006 x (1 - 0.90): AWS's "up to 90%" ceiling
    assert got.typical_usd_per_hour == pytest.approx(0.3018)  # 1.006 x (1 - 0.70): the seed's "70% cheaper"
    assert got.high_usd_per_hour == 1.006  # the default maximum spot price is the on-demand price
    assert "no spot history stored" in got.basis and "not an observed price" in got.basis
    assert prices.spot_usd_per_hour("g5.xlarge") == pytest.approx(got.typical_usd_per_hour)
    with pytest.raises(prices.PriceNotFound, match=r"'ml.g5.xlarge'\) is a SageMaker type: SageMaker inference has "
                                                   r"no spot price"):
        prices.spot_range("ml.g5.xlarge")
    with pytest.raises(prices.PriceNotFound, match=r"no on-demand price for region 'eu-west-1'"):
        prices.spot_range("g5.xlarge", "eu-west-1")


def test_capacity_blocks_match_the_page_and_the_accelerator_catalogue():
    p5 = prices.capacity_block("p5.48xlarge")
    assert p5 is not None and p5.usd_per_instance_hour == 39.33 and p5.accelerators == 8
    assert p5.usd_per_accelerator_hour == pytest.approx(4.916, abs=1e-3)  # the page's "$4.916" per GPU-hour
    assert p5.source == prices.CAPACITY_BLOCKS_PRICING_PAGE and p5.as_of == date(2024, 12, 31)
    assert prices.capacity_block("p4d.24xlarge", "us-west-2").usd_per_instance_hour == 14.75
    assert prices.capacity_block("g5.xlarge") is None
    assert prices.capacity_block("p4d.24xlarge", "us-east-1") is None  # offered in us-east-2 and us-west-2 only
    for (itype, region), row in prices.CAPACITY_BLOCKS.items():
        assert (row.instance_type, row.region) == (itype, region)
        assert row.accelerators == accelerators.lookup(itype).count, itype
        stated = float(row.basis.rsplit("states $", 1)[1].split(" ")[0])
        assert row.usd_per_accelerator_hour == pytest.approx(stated, abs=1e-3), itype
        # a capacity block costs less per hour than on demand where both are catalogued
        od = prices.INSTANCE_PRICES.get((itype, region))
        assert od is None or row.usd_per_instance_hour < od.on_demand_usd_per_hour, itype


def _preset_bedrock_models() -> set[str]:
    return {yaml.safe_load(path.read_text())["bedrock"]["modelId"]
            for path in sorted((ROOT / "stacks" / "tiers").glob("*/managed.yaml"))}


def test_every_bedrock_model_is_priced_or_listed_with_a_reason():
    assert _preset_bedrock_models() == {"amazon.nova-lite-v1:0:24k"}
    for model_id in bedrock_models.MODELS:
        priced = [k for k in prices.PROVISIONED_PRICES if k[0] == model_id]
        assert priced or prices.PROVISIONED_UNPRICED.get(model_id), model_id
    for (model_id, region, commitment), row in prices.PROVISIONED_PRICES.items():
        assert (row.model_id, row.region, row.commitment) == (model_id, region, commitment)
        assert model_id in bedrock_models.MODELS and model_id not in prices.PROVISIONED_UNPRICED


def test_provisioned_prices_and_their_reasons():
    # the scale preset buys one model unit of Nova Lite 24k for a month: no source gives that price
    scale = yaml.safe_load((ROOT / "stacks" / "tiers" / "scale" / "managed.yaml").read_text())["bedrock"]
    term = prices.COMMITMENT_FROM_API[scale["commitment"]]
    assert (scale["modelId"], term) == ("amazon.nova-lite-v1:0:24k", "1month")
    assert prices.bedrock_provisioned(scale["modelId"], "us-east-1", term) is None
    assert set(prices.COMMITMENT_FROM_API.values()) == {"none", "1month", "6month"}
    why = prices.provisioned_unpriced_reason("amazon.nova-lite-v1:0:24k", "us-east-1", "1month")
    assert why.startswith("no primary or clearly quoted per-model-unit hourly price found")
    assert prices.provisioned_unpriced_reason("amazon.nova-lite-v1:0:24k", "us-west-2", "6month") == (
        "amazon.nova-lite-v1:0:24k cannot be bought as Provisioned Throughput in us-west-2 (only us-east-1)")
    assert prices.provisioned_unpriced_reason("amazon.titan-image-generator-v2:0", "us-east-1", "none") == (
        "amazon.titan-image-generator-v2:0 is not offered without a commitment")
    with pytest.raises(prices.PriceNotFound, match=r"model \('amazon.nova-lite-v1:0'\) is not in the Bedrock "
                                                   r"Provisioned Throughput catalogue; known: amazon.nova-2-lite"):
        prices.bedrock_provisioned("amazon.nova-lite-v1:0", "us-east-1", "none")


def test_sagemaker_and_bedrock_token_lookups():
    assert prices.sagemaker("ml.g6.2xlarge", "us-east-1") == prices.on_demand("ml.g6.2xlarge")
    with pytest.raises(prices.PriceNotFound, match=r"'g6.2xlarge'\) is not a SageMaker instance type"):
        prices.sagemaker("g6.2xlarge", "us-east-1")
    with pytest.raises(prices.PriceNotFound, match="SageMaker hosting price not found"):
        prices.sagemaker("ml.p5.48xlarge", "us-east-1")
    # a contextual variant is priced as its base model
    assert prices.bedrock_tokens("amazon.nova-lite-v1:0:24k", "us-east-1") == prices.tokens("amazon.nova-lite-v1:0")
    assert prices.bedrock_tokens("amazon.nova-pro-v1:0", "us-east-1").on_demand_output_per_mtok == 3.20
    with pytest.raises(prices.PriceNotFound, match=r"model \('amazon.nova-2-lite-v1:0'\) has no Bedrock token"):
        prices.bedrock_tokens("amazon.nova-2-lite-v1:0:256k", "us-east-1")


def test_new_row_validation_messages():
    src = {"source": "https://example.com/x", "as_of": date(2026, 1, 1), "basis": "a test row, not data"}
    with pytest.raises(ValidationError, match=r"low_usd_per_hour \(0.5\) <= typical_usd_per_hour \(0.3\) <= "
                                              r"high_usd_per_hour \(1.0\) must hold"):
        prices.SpotRange(instance_type="g5.xlarge", region="us-east-1", kind="observed", low_usd_per_hour=0.5,
                         typical_usd_per_hour=0.3, high_usd_per_hour=1.0, on_demand_usd_per_hour=1.0, **src)
    obs = {"instance_type": "g5.xlarge", "region": "us-east-1", "availability_zones": ("us-east-1a",),
           "window_start": date(2026, 1, 2), "window_end": date(2026, 1, 1), "samples": 1,
           "min_usd_per_hour": 0.2, "average_usd_per_hour": 0.3, "max_usd_per_hour": 0.4, **src}
    with pytest.raises(ValidationError, match=r"window_start \(2026-01-02\) must be <= window_end \(2026-01-01\)"):
        prices.SpotObservation(**obs)
    with pytest.raises(ValidationError, match="should match pattern"):
        prices.SpotObservation(**{**obs, "window_start": date(2026, 1, 1), "instance_type": "ml.g5.xlarge"})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        prices.CapacityBlockPrice(instance_type="p5.48xlarge", region="us-east-1", usd_per_instance_hour=39.33,
                                  accelerators=0, **src)
    with pytest.raises(ValidationError, match="Input should be 'none', '1month' or '6month'"):
        prices.ProvisionedPrice(model_id="amazon.nova-lite-v1:0:24k", region="us-east-1", commitment="OneMonth",
                                usd_per_model_unit_per_hour=20, **src)


# --- Bedrock on-demand models of open weights ------------------------------------------------------------------------

LLAMA_31 = {  # on-demand id -> (Region, $/1M input = output, usage type in the offer file)
    "meta.llama3-1-8b-instruct-v1:0": ("us-east-1", 0.22, "USE1-Llama3-1-8B"),
    "meta.llama3-1-70b-instruct-v1:0": ("us-east-1", 0.72, "USE1-Llama3-1-70B"),
    "meta.llama3-1-405b-instruct-v1:0": ("us-west-2", 2.40, "USW2-Llama3-1-405B"),
}


def test_llama_token_rows_name_their_regions_offer_file_and_usage_type():
    for model_id, (region, usd, usage) in LLAMA_31.items():
        row = prices.tokens(model_id, region)
        assert (row.on_demand_input_per_mtok, row.on_demand_output_per_mtok) == (usd, usd), model_id
        assert (row.batch_input_per_mtok, row.batch_output_per_mtok) == (usd / 2, usd / 2), model_id
        assert row.source == ("https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonBedrock/current/"
                              f"{region}/index.json")
        assert row.as_of == date(2026, 6, 11) and usage in row.basis and "not fetched by this project" in row.basis
    # 405B has no us-east-1 on-demand price (only batch SKUs there): a lookup says so, naming what is priced
    with pytest.raises(prices.PriceNotFound, match=r"model \('meta.llama3-1-405b-instruct-v1:0'\) has no Bedrock "
                                                   r"token price for region 'us-east-1'; priced there: amazon"):
        prices.tokens("meta.llama3-1-405b-instruct-v1:0", "us-east-1")


def test_on_demand_catalogue_ids_are_token_price_keys_and_sourced():
    assert set(bedrock_models.ON_DEMAND) <= prices.bedrock_base_ids()
    assert {m for m, _ in prices.TOKEN_PRICES} <= prices.bedrock_base_ids()
    for model_id, row in bedrock_models.ON_DEMAND.items():
        assert row.model_id == model_id and row.source.startswith(
            "https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-"), model_id
        assert any(m == model_id for m, _ in prices.TOKEN_PRICES), f"{model_id} has no token price"


def test_every_mapped_hugging_face_model_is_priced_where_the_stacks_run():
    assert bedrock_models.HF_TO_BEDROCK == {
        "meta-llama/Llama-3.1-8B-Instruct": "meta.llama3-1-8b-instruct-v1:0",
        "meta-llama/Llama-3.1-70B-Instruct": "meta.llama3-1-70b-instruct-v1:0",
    }
    regions = {yaml.safe_load((ROOT / "stacks" / f"Pulumi.{s}.yaml").read_text())["config"]["aws:region"]
               for s in STACKS}
    assert regions == {"us-east-1"}
    for hf, model_id in bedrock_models.HF_TO_BEDROCK.items():
        assert bedrock_models.on_demand_for(hf, "us-east-1") == model_id  # through the us. profile
        assert (model_id, "us-east-1") in prices.TOKEN_PRICES, model_id


def test_on_demand_for_follows_regions_profiles_and_end_of_life():
    llama = "meta-llama/Llama-3.1-8B-Instruct"
    assert bedrock_models.on_demand_for(llama, "us-west-2") == "meta.llama3-1-8b-instruct-v1:0"  # in-Region
    assert bedrock_models.on_demand_for(llama, "eu-west-1") is None  # no eu. profile, not in-Region there
    assert bedrock_models.on_demand_for("meta-llama/Llama-3.1-405B-Instruct", "us-west-2") is None  # end of life
    assert bedrock_models.ON_DEMAND["meta.llama3-1-405b-instruct-v1:0"].end_of_life == "2026-07-07"
    assert bedrock_models.on_demand_for("Qwen/Qwen2.5-7B-Instruct", "us-east-1") is None


def _served_models() -> set[str]:
    """Every Hugging Face model id the tier presets serve as a generative model (``modelId`` / ``model`` values of the
    form org/name in serving.yaml and managed.yaml: the targets the where-to-run table compares; rag.yaml's embedding
    model is not one)."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("modelId", "model") and isinstance(v, str) and "/" in v:
                    found.add(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    tiers = ROOT / "stacks" / "tiers"
    for path in [*tiers.glob("*/serving.yaml"), *tiers.glob("*/managed.yaml")]:
        walk(yaml.safe_load(path.read_text()))
    return found


def test_every_served_open_model_is_mapped_or_says_why_not():
    served = _served_models()
    assert {"meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3"} <= served
    assert not set(bedrock_models.HF_TO_BEDROCK) & set(bedrock_models.HF_WITHOUT_BEDROCK)
    missing = served - set(bedrock_models.HF_TO_BEDROCK) - set(bedrock_models.HF_WITHOUT_BEDROCK)
    assert missing == set(), f"served models with neither a Bedrock mapping nor a reason: {sorted(missing)}"
    assert "v0.2 weights, not v0.3" in bedrock_models.HF_WITHOUT_BEDROCK["mistralai/Mistral-7B-Instruct-v0.3"]
