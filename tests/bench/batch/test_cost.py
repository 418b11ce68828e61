"""bench/batch: the cost functions on hand-computed cases, the seed's worked example, and the CLI's table."""

import subprocess
import sys
from datetime import date

import pytest

from bench.batch import _cost as cost
from bench.batch import cost as cli
from components.catalog import prices
from problems import ProblemsError
from tests.kit import ROOT


def test_busy_hours_and_realtime_on_demand_by_hand():
    # 36,000 requests at 10 req/s = 3,600 s = 1 h busy; at utilisation 0.25 the instance is paid 4 h at $2 = $8
    assert cost.busy_hours(36_000, 10) == pytest.approx(1.0)
    line = cost.realtime_on_demand(36_000, 10, 2.0, 0.25)
    assert (line.usd, line.billed_hours) == (pytest.approx(8.0), pytest.approx(4.0))
    assert line.detail == "36,000 req / 10 req/s / utilisation 0.25 x $2/h"


def test_batch_on_spot_by_hand():
    # 1 h busy / utilisation 0.8 = 1.25 h, x (1 + 0.2 lost) = 1.5 h at $0.5 = $0.75
    line = cost.batch_on_spot(36_000, 10, 0.5, 0.8, 0.2)
    assert (line.usd, line.billed_hours) == (pytest.approx(0.75), pytest.approx(1.5))


def test_lost_work_fraction_by_hand():
    # 0.1 interruptions/h, each losing half of a 1,200 s shard plus a 300 s restart: 0.1 x 900 / 3600 = 0.025
    assert cost.lost_work_fraction(0.1, 1200, 300) == pytest.approx(0.025)
    assert cost.lost_work_fraction(0, 1200, 300) == 0
    # smaller shards lose less
    assert cost.lost_work_fraction(0.1, 300) < cost.lost_work_fraction(0.1, 1200)


def test_sagemaker_async_by_hand():
    # 1 h busy / utilisation 0.8 = 1.25 h, + 2 scale-ups x (300 s start + 600 s idle) = 0.5 h -> 1.75 h at $2 = $3.50
    line = cost.sagemaker_async(36_000, 10, 2.0, 0.8, batches=2, startup_seconds=300, idle_seconds=600)
    assert (line.usd, line.billed_hours) == (pytest.approx(3.5), pytest.approx(1.75))
    assert line.detail == "36,000 req / 10 req/s / utilisation 0.8 + 2 x (300s start + 600s idle) x $2/h"
    # without the scale-up terms it is the busy time only, like batch without interruptions
    assert cost.sagemaker_async(36_000, 10, 2.0, 1.0).billed_hours == pytest.approx(1.0)
    with pytest.raises(ProblemsError) as exc:
        cost.sagemaker_async(1, 1, 1, 1, batches=0, startup_seconds=-1, idle_seconds=-2)
    assert str(exc.value).splitlines()[1:] == ["  - batches = 0: must be >= 1",
                                               "  - startup_seconds = -1: must be >= 0",
                                               "  - idle_seconds = -2: must be >= 0"]


def test_bedrock_tokens_by_hand():
    # 1,000 x (1,000 in x $0.06 + 100 out x $0.24) / 1e6 = 1,000 x 0.000084 = $0.084
    line = cost.bedrock_tokens("b", 1_000, 1_000, 100, 0.06, 0.24)
    assert line.usd == pytest.approx(0.084) and line.billed_hours == 0


def test_seed_example_reproduced_within_its_rounding():
    rt, bt = cost.seed_example()
    # the seed: "~$10" busy, "~$20 effective", "~$0.67", "30x cheaper"
    assert rt.usd * cost.SEED_EXAMPLE["realtime_utilisation"] == pytest.approx(9.72, abs=0.01)
    assert rt.usd == pytest.approx(cost.SEED_STATED["realtime_usd"], rel=0.03)   # 19.44 vs ~20
    assert bt.usd == pytest.approx(cost.SEED_STATED["batch_usd"], abs=0.005)     # 0.667 vs ~0.67
    assert cost.ratio(rt, bt) == pytest.approx(cost.SEED_STATED["ratio"], rel=0.03)  # 29.17 vs 30
    assert cost.ratio(rt, bt) == pytest.approx(175 / 6)  # exactly 5 x (3.5 / 1.2) x 2
    f = cost.seed_ratio_factors()
    assert f["throughput"] * f["price"] * f["idle"] == pytest.approx(cost.ratio(rt, bt))


def test_seed_ratio_falls_with_the_batch_utilisation_and_interruptions_it_leaves_out():
    rt, bt = cost.seed_example(0.9, 0.05)
    assert cost.ratio(rt, bt) == pytest.approx(175 / 6 * 0.9 / 1.05)


def test_every_bad_input_is_listed_with_its_value():
    with pytest.raises(ProblemsError) as exc:
        cost.batch_on_spot(0, -1, 0, 2, -0.1)
    assert str(exc.value).splitlines() == [
        "invalid cost inputs: 5 problems",
        "  - requests = 0: must be >= 1",
        "  - requests_per_second = -1: must be > 0",
        "  - spot_usd_per_hour = 0: must be > 0",
        "  - utilisation = 2: must be > 0 and <= 1",
        "  - interruption_overhead = -0.1: must be >= 0"]
    with pytest.raises(ProblemsError, match="output_tokens = 0: must be >= 1"):
        cost.bedrock_tokens("b", 1, 1, 0, 1, 1)
    with pytest.raises(ProblemsError, match=r"b.usd = 0: must be > 0 to form a ratio"):
        cost.ratio(cost.CostLine("a", 1, 0, ""), cost.CostLine("b", 0, 0, ""))


def test_cli_prints_the_table_ratios_and_seed_example():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "batch" / "cost.py"), "--requests", "1000",
                          "--prompt-tokens", "100", "--output-tokens", "50"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for row in ("real-time, on-demand", "batch, spot", "Bedrock on-demand", "Bedrock batch"):
        assert row in out
    assert "batch on spot vs real-time on demand:" in out and "Bedrock batch vs Bedrock on-demand: 2.0x" in out
    assert "ratio 29.2x (seed: 30x)" in out
    # Bedrock on-demand, nova-lite: 1,000 x (100 x 0.06 + 50 x 0.24) / 1e6 = $0.018
    assert any(line.startswith("Bedrock on-demand") and line.split()[2] == "0.0180" for line in out.splitlines())


def test_cli_numbers_by_hand(capsys):
    # llama-3.1-8b online 4,679 tok/s at 200 output tokens = 23.395 req/s on one H100 = p5.48xlarge / 8 = $6.88/h
    assert cli.main(["--requests", "1000000", "--output-tokens", "200"]) == 0
    out = capsys.readouterr().out
    hours = 1_000_000 / (4679 / 200) / 3600 / 0.5
    assert f"{hours * 6.88:,.2f}" in out  # 163.38


def test_cli_lists_every_bad_argument(capsys):
    code = cli.main(["--requests", "0", "--realtime-utilisation", "2", "--model", "x", "--bedrock-model", "y",
                     "--spot-discount", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines() == [
        "error: invalid arguments: 5 problems",
        "  - --requests = 0: must be >= 1",
        "  - --realtime-utilisation = 2.0: must be > 0 and <= 1",
        "  - --spot-discount = 1.0: must be > 0 and < 1",
        ("  - --model = 'x': a model with online and batch figures: llama-3.1-8b-instruct, "
         "llama-3.3-70b-instruct, seed-example"),
        ("  - --bedrock-model = 'y': a Bedrock model with token prices in us-east-1: amazon.nova-lite-v1:0, "
         "amazon.nova-micro-v1:0, amazon.nova-pro-v1:0, meta.llama3-1-70b-instruct-v1:0, "
         "meta.llama3-1-8b-instruct-v1:0")]


def test_cli_rejects_a_region_without_prices(capsys):
    assert cli.main(["--region", "eu-west-1"]) == 2
    err = capsys.readouterr().err
    assert "--region = 'eu-west-1': a region with a price for p5.48xlarge (priced: us-east-1, us-west-2)" in err
    # us-west-2 has EC2 prices now, but no Nova token price (its one Bedrock token price is Llama 3.1 405B)
    assert cli.main(["--region", "us-west-2"]) == 2
    err = capsys.readouterr().err
    assert "--region" not in err
    assert ("--bedrock-model = 'amazon.nova-lite-v1:0': a Bedrock model with token prices in us-west-2: "
            "meta.llama3-1-405b-instruct-v1:0") in err


def test_cli_leaves_sagemaker_out_when_the_batch_hardware_has_no_hosting_price(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert ("SageMaker async: left out: ml.p5.48xlarge (the batch figure's hardware) has no us-east-1 hosting "
            "price (SageMaker hosting price not found") in out
    assert not any(line.startswith("SageMaker async  ") for line in out.splitlines())
    assert "SageMaker async vs real-time on demand" not in out


def test_cli_sagemaker_async_on_a_given_instance_and_measured_rate_by_hand(capsys):
    assert cli.main(["--sagemaker-instance", "ml.g6e.2xlarge", "--sagemaker-rps", "20"]) == 0
    out = capsys.readouterr().out
    # 1e6 / 20 / 3600 / 0.9 = 15.432 h busy + (300 + 600) / 3600 = 0.25 h; the whole instance at $2.8026/h
    hours = 1_000_000 / 20 / 3600 / 0.9 + 0.25
    row = next(line for line in out.splitlines() if line.startswith("SageMaker async  "))
    assert row.split()[2:4] == [f"{hours * 2.8026:,.2f}", f"{hours:,.2f}"]  # 43.95, 15.68
    assert "SageMaker async on ml.g6e.2xlarge (hosting $2.803/h, no spot price)" in out
    realtime = 1_000_000 / (4679 / 200) / 3600 / 0.5 * 6.88
    assert f"SageMaker async vs real-time on demand: {realtime / (hours * 2.8026):,.1f}x" in out  # 3.7x


def test_cli_sagemaker_on_the_batch_figures_hardware_charges_its_share(capsys, monkeypatch):
    # no ml.p5.48xlarge price is catalogued; with one, the default row is the batch deployment (1 of 8 H100s)
    # at the SageMaker price and the batch figure's rate
    row = prices.InstancePrice(instance_type="ml.p5.48xlarge", region="us-east-1", on_demand_usd_per_hour=80.0,
                               source="https://example.com/test", as_of=date(2026, 1, 1), basis="a test row, not data")
    monkeypatch.setitem(prices.INSTANCE_PRICES, ("ml.p5.48xlarge", "us-east-1"), row)
    hours = 1_000_000 / (13300 / 200) / 3600 / 0.9
    for named in ([], ["--sagemaker-instance", "ml.p5.48xlarge"]):  # naming the figure's own type changes nothing
        assert cli.main(["--sagemaker-startup-seconds", "0", "--sagemaker-idle-seconds", "0", *named]) == 0
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if line.startswith("SageMaker async  "))
        assert line.split()[2] == f"{hours * 80 / 8:,.2f}"
        assert "SageMaker async on ml.p5.48xlarge (hosting $10/h, no spot price)" in out


def test_cli_lists_every_bad_sagemaker_argument(capsys):
    code = cli.main(["--sagemaker-instance", "ml.p4d.24xlarge", "--sagemaker-rps", "0", "--sagemaker-batches", "0",
                     "--sagemaker-startup-seconds", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[:5] == [
        "error: invalid arguments: 4 problems",
        "  - --sagemaker-batches = 0: must be >= 1",
        "  - --sagemaker-rps = 0.0: must be > 0",
        "  - --sagemaker-startup-seconds = -1.0: must be >= 0",
        ("  - --sagemaker-instance = 'ml.p4d.24xlarge': has no hosting price (SageMaker hosting price not found: only "
         "its Training price after the 2025 P4 cut ($25.2513, 2026-09) was quoted, and p4d has no Batch Transform "
         "price to compare); a SageMaker type priced in us-east-1: ml.g5.12xlarge, ml.g5.2xlarge, ml.g5.xlarge, "
         "ml.g6.12xlarge, ml.g6.2xlarge, ml.g6.xlarge, ml.g6e.12xlarge, ml.g6e.2xlarge, ml.g6e.xlarge, "
         "ml.inf2.8xlarge, ml.inf2.xlarge")]
    assert cli.main(["--sagemaker-instance", "ml.g6e.2xlarge"]) == 2
    assert capsys.readouterr().err.splitlines()[1] == (
        "  - --sagemaker-instance = 'ml.g6e.2xlarge': needs --sagemaker-rps (requests/s measured on it): the "
        "llama-3.1-8b-instruct figures are for ml.p5.48xlarge")
    assert cli.main(["--sagemaker-rps", "5"]) == 2
    assert capsys.readouterr().err.splitlines()[1] == (
        "  - --sagemaker-rps = 5.0: only with --sagemaker-instance (the instance it was measured on)")
