"""compare(): the where-to-run table, its numbers and its order, against hand computations.

Prices are fixed by the conftest fixture (g5.xlarge $1/h, g6e.xlarge $2.5/h, p5.48xlarge $15/h, ml.g5.xlarge
$1.4/h; spot typical 0.3 x, low 0.1 x, high 1 x on-demand); profiles are conftest's hand-built A10G/L40S/H100 rows.
Demand: peak 10 req/s, off-peak 2, 1000 prompt / 200 output tokens, TTFT p95 <= 500 ms.
"""

from __future__ import annotations

import pytest

from components.capacity import Demand, Slo
from components.capacity.compare import MONTH_HOURS, compare, fewest_devices

from .conftest import A10G, H100, L40S, MODEL_8B

DEMAND = Demand(peak_requests_per_second=10, off_peak_requests_per_second=2, prompt_tokens=1000, output_tokens=200,
                slo=Slo(ttft_p95_ms=500))
CANDIDATES = ["g5.xlarge", "g6e.xlarge", "p5.48xlarge"]


def test_fewest_devices_that_fit():
    # 8B bf16: 8.03e9 x 2 B = 14.96 GiB + 1.5 runtime + KV of one 1200-token sequence fits 22.35 GiB x 0.9
    assert fewest_devices(MODEL_8B, 8.03, "g5.xlarge", "bf16", 1200) == 1
    # 70B bf16: 131.5 GiB of weights; TP4 on g5.12xlarge holds 4 x 20.1 = 80.5 GiB (no); TP8 160.9 GiB (yes)
    assert fewest_devices("meta-llama/Llama-3.3-70B-Instruct", 70.6, "g5.12xlarge", "bf16", 1200) is None
    assert fewest_devices("meta-llama/Llama-3.3-70B-Instruct", 70.6, "g5.48xlarge", "bf16", 1200) == 8
    # a model without catalogue facts: 13e9 x 2 B = 24.21 GiB; TP1 24.21 + 1.5 > 20.12; TP2 24.21 + 3 <= 40.23
    assert fewest_devices("example/13b", 13, "g5.12xlarge", "bf16", 1200) == 2
    # fp8 halves the weights: 13.0 GiB + 1.5 <= 20.12 on one A10G
    assert fewest_devices("example/13b", 13, "g5.12xlarge", "fp8", 1200) == 1
    # Inferentia2 shards over NeuronCores (16 GiB each): 14.96 + 1.5 > 14.4, so 2 cores
    assert fewest_devices(MODEL_8B, 8.03, "inf2.xlarge", "bf16", 1200) == 2
    assert fewest_devices(MODEL_8B, 8.03, "x9.unknown", "bf16", 1200) is None


def test_compare_numbers_and_order(fixed_prices):
    rows = compare(MODEL_8B, 8.03, DEMAND, region="us-east-1", batch_share=0.5, profiles=[A10G, L40S, H100],
                   candidates=CANDIDATES)
    assert [(o.where, o.instance_type) for o in rows] == [
        ("vllm", "g5.xlarge"),  # SLO holds, $1,460/month
        ("vllm", "g6e.xlarge"),  # SLO holds, $1,825/month
        ("sagemaker", "ml.g5.xlarge"),  # SLO holds, $2,044/month
        ("vllm", "p5.48xlarge"),  # SLO holds at a larger TP (estimated profile): $40k/month
        ("batch", "p5.48xlarge"),  # no real-time SLO (unknown), $30.80/month
    ]
    g5, g6e, sm, p5, batch = rows
    # half the volume is batch: online peak 5, off-peak 1, mean (5 + 1) / 2 = 3 req/s
    # A10G: 500 tok/s / 200 x 0.8 = 2 req/s per replica; peak ceil(5 / 2) = 3 nodes x $1
    assert (g5.devices, g5.replicas, g5.usd_per_hour) == (1, 3, pytest.approx(3.0))
    assert g5.usd_per_month == pytest.approx(2 * 1.0 * MONTH_HOURS)  # ceil(3 / 2) = 2 nodes x $1 x 730 h = 1460
    assert g5.usd_per_million_output_tokens == pytest.approx(3 / 3.6)  # $3/h / (5 x 200 x 3600) x 1e6
    assert g5.slo_holds is True
    # L40S: 1600 / 200 x 0.8 = 6.4 req/s; peak ceil(5 / 6.4) = 1 node x $2.5; month 1 x 2.5 x 730 = 1825
    assert (g6e.replicas, g6e.usd_per_hour, g6e.usd_per_month) == (1, pytest.approx(2.5), pytest.approx(1825))
    # SageMaker ml.g5.xlarge: 3 instances x $1.4 = $4.2/h; month 2 x 1.4 x 730 = 2044
    assert (sm.replicas, sm.usd_per_hour, sm.usd_per_month) == (3, pytest.approx(4.2), pytest.approx(2044))
    # batch: 0.5 x mean(10, 2) = 3 req/s x 86,400 = 259,200 requests/day within 24 h = 3 req/s, priced by the work
    # at the plateau: H100 10,000 / 200 x 0.8 = 40 req/s per replica, a replica-hour 15 x 0.3 / 8 = $0.5625 ->
    # 0.5625 / (40 x 200 x 3600) x 1e6 = $0.01953 per 1M (A10G: 0.3 / (3.2 x 200 x 3600) x 1e6 = $0.1302)
    assert (batch.replicas, batch.usd_per_hour) == (1, pytest.approx(4.5))  # while it runs: one node x 15 x 0.3
    assert batch.usd_per_million_output_tokens == pytest.approx(0.5625 / 28.8)
    # a month: 259,200 x 200 tokens a day x $0.01953 per 1M = $1.0125/day x 730 / 24 = $30.80
    assert batch.usd_per_month == pytest.approx(1.0125 * MONTH_HOURS / 24)
    assert batch.slo_holds is None
    assert batch.note.startswith("50% of the volume (259200 requests/day) on spot within 24 h; spot $1.50-$15.00/h")
    # H100 at TP 1 (the hand-made profile): TTFT 2000 ms at concurrency 1 > 500 ms; the larger sizes of the node (TP
    # 2, 4, 8: no hand-made profile, so the catalogue's estimate) meet it, and the cheapest of them is the row
    assert p5.slo_holds is True and p5.devices > 1 and "(estimated)" in p5.note
    tp1 = compare(MODEL_8B, 8.03, DEMAND, region="us-east-1", profiles=[H100], candidates=["p5.48xlarge"])
    assert any(o.note.startswith("at concurrency 1 one replica has TTFT 2000 ms (p95) vs SLO TTFT p95 <= 500 ms")
               for o in tp1) or all(o.devices > 1 for o in tp1 if o.where == "vllm")


def test_compare_without_batch_share_carries_the_whole_volume(fixed_prices):
    rows = compare(MODEL_8B, 8.03, DEMAND, region="us-east-1", profiles=[A10G], candidates=["g5.xlarge"])
    assert [o.where for o in rows] == ["vllm", "sagemaker"]
    # peak ceil(10 / 2) = 5 nodes x $1; mean (10 + 2) / 2 = 6 -> 3 nodes x $1 x 730
    assert rows[0].usd_per_hour == pytest.approx(5.0) and rows[0].usd_per_month == pytest.approx(2190)


def test_unpriced_candidate_sorts_last_in_its_group(fixed_prices):
    rows = compare(MODEL_8B, 8.03, DEMAND, region="us-east-1", profiles=[A10G], candidates=["g5.2xlarge",
                                                                                              "g5.xlarge"])
    assert [(o.instance_type, o.usd_per_month is None) for o in rows] == [
        ("g5.xlarge", False), ("ml.g5.xlarge", False), ("g5.2xlarge", True)]
    assert rows[-1].note.endswith("; no price")


def test_compare_bedrock_on_demand():
    # amazon.nova-lite-v1:0: $0.06 in / $0.24 out per 1M tokens; per request (1000 x 0.06 + 200 x 0.24) / 1e6
    # = 108e-6 USD; peak 10 req/s x 3600 = $3.888/h; month at the mean 6 req/s: 108e-6 x 6 x 3600 x 730 = $1702.94
    rows = compare("amazon.nova-lite-v1:0", 1, DEMAND, region="us-east-1", candidates=[])
    assert len(rows) == 1
    o = rows[0]
    assert (o.where, o.model_id, o.slo_holds) == ("bedrock-on-demand", "amazon.nova-lite-v1:0", None)
    assert o.usd_per_hour == pytest.approx(3.888)
    assert o.usd_per_month == pytest.approx(108e-6 * 6 * 3600 * 730)
    assert o.usd_per_million_output_tokens == pytest.approx(0.54)
    assert "720000 tokens/min" in o.note  # 10 x 1200 x 60
    # an open model mapped to a Bedrock one by the caller
    assert compare(MODEL_8B, 8.03, DEMAND, region="us-east-1", candidates=[],
                   bedrock_model="amazon.nova-lite-v1:0")[0].usd_per_hour == pytest.approx(3.888)


def test_compare_over_the_catalogue_runs_offline():
    rows = compare(MODEL_8B, 8.03, DEMAND, region="us-east-1")
    types = {o.instance_type for o in rows if o.where == "vllm"}
    assert {"g5.xlarge", "g6e.xlarge", "p5.48xlarge"} <= types
    groups = [0 if o.slo_holds is True else 1 if o.slo_holds is None else 2 for o in rows]
    assert groups == sorted(groups)


def test_batch_share_must_be_a_share():
    with pytest.raises(ValueError, match=r"batch_share \(1.5\) must be between 0 and 1"):
        compare(MODEL_8B, 8.03, DEMAND, region="us-east-1", batch_share=1.5)
