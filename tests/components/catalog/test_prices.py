"""The price catalogue: every row sourced and dated, every planned instance type priced or listed as unpriced."""

from collections import Counter
from datetime import date

import pytest
import yaml
from pydantic import ValidationError

from components.catalog import accelerators, prices, throughput
from tests.kit import ROOT
from tests.stack_plans import planned

STACKS = ("dev", "staging", "prod")


def _rows():
    return [*prices.INSTANCE_PRICES.values(), *prices.TOKEN_PRICES.values(), prices.SPOT]


def test_every_row_has_a_source_a_date_and_a_basis():
    rows = _rows()
    assert len(prices.INSTANCE_PRICES) >= 20 and len(prices.TOKEN_PRICES) >= 3
    for row in rows:
        assert row.source.startswith(("https://", "seed ")), row
        assert date(2024, 1, 1) <= row.as_of <= date.fromisoformat(prices.CHECKED), row
        assert len(row.basis) >= 10, row


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
    assert len(prices.INSTANCE_PRICES) == len(prices._INSTANCE_ROWS)


def _sagemaker_rows():
    return [r for r in prices.INSTANCE_PRICES.values() if r.instance_type.startswith("ml.")]


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
        ec2 = prices.on_demand(r.instance_type.removeprefix("ml."), r.region).on_demand_usd_per_hour
        assert 1.15 <= r.on_demand_usd_per_hour / ec2 <= 1.45, (r.instance_type, r.on_demand_usd_per_hour, ec2)


def test_us_west_2_rows_are_sourced_separately_and_equal_us_east_1():
    west = [r for r in prices.INSTANCE_PRICES.values() if r.region == "us-west-2"]
    assert {r.instance_type for r in west} >= {"g5.xlarge", "g5.2xlarge", "g5.12xlarge", "inf2.xlarge",
                                                "inf2.8xlarge", "p5.48xlarge"}
    for r in west:
        assert r.source == prices.VANTAGE + r.instance_type and "us-west-2" in r.basis, r
        east = prices.on_demand(r.instance_type).on_demand_usd_per_hour
        assert r.on_demand_usd_per_hour == pytest.approx(east, abs=1e-5), r.instance_type
    # the CPU system nodes have no us-west-2 source: absent, not copied
    assert ("m7i.large", "us-west-2") not in prices.INSTANCE_PRICES


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
    assert prices.on_demand("g5.xlarge").on_demand_usd_per_hour == 1.006
    assert prices.on_demand("ml.g6e.2xlarge").on_demand_usd_per_hour == 2.8026  # USE1-Host = USE1-AsyncInf
    assert prices.on_demand("ml.g5.xlarge").on_demand_usd_per_hour == 1.408  # not the 1.21 one blog gives
    assert prices.on_demand("g6e.12xlarge", "us-west-2").on_demand_usd_per_hour == 10.49264
    assert prices.on_demand("p5.48xlarge").on_demand_usd_per_hour == 55.04  # after the June 2025 P5 cut
    assert prices.spot_usd_per_hour("g5.xlarge") == pytest.approx(1.006 * 0.30)
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
    with pytest.raises(ValidationError, match="Input should be 'us-east-1' or 'us-west-2'"):
        prices.InstancePrice(**{**base, "region": "mars-1"})
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
