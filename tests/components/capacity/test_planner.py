"""plan_target: every verdict and number against a hand computation (the arithmetic is in the comments).

Profiles and prices come from conftest: A10G at TTFT <= 500 ms runs concurrency 8 at 500 output tokens/s, so with
200 output tokens per request and headroom 0.8 one replica carries 500 / 200 x 0.8 = 2 req/s; g5.xlarge costs $1/h.
"""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from components.capacity import (
    Demand,
    PoolMember,
    Slo,
    TargetSpec,
    plan_target,
    sum_demands,
)
from components.capacity.planner import RULES
from components.catalog import prices

from .conftest import A10G, H100, MODEL_8B, point, profile

SLO = Slo(ttft_p95_ms=500)


def spec(**kw) -> TargetSpec:
    base = {"name": "chat", "kind": "vllm", "model": MODEL_8B, "params_billion": 8.03, "instance_type": "g5.xlarge",
            "min_replicas": 1, "max_replicas": 8, "region": "us-east-1"}
    return TargetSpec(**{**base, **kw})


def demand(peak: float = 10, off: float = 2, **kw) -> Demand:
    return Demand(peak_requests_per_second=peak, off_peak_requests_per_second=off, prompt_tokens=1000,
                  output_tokens=200, slo=kw.pop("slo", SLO), **kw)


def rules(report) -> list[str]:
    return [f.rule for f in report.findings]


def test_fine_target_numbers_and_cost(fixed_prices):
    r = plan_target(spec(), demand(), profiles=[A10G])
    assert r.operating_point.concurrency == 8
    assert r.replica_requests_per_second == pytest.approx(2.0)  # 500 / 200 x 0.8
    assert r.replicas_at_peak == 5  # ceil(10 / 2)
    assert r.replicas_at_off_peak == 1  # ceil(2 / 2)
    assert (r.nodes_at_peak, r.nodes_at_min) == (5, 1)  # 5 / 1 per node; min 1 replica
    assert r.usd_per_hour_at_min == pytest.approx(1.0)  # 1 node x $1
    assert r.usd_per_hour_at_peak == pytest.approx(5.0)  # 5 nodes x $1
    # $5/h / (10 req/s x 200 tokens x 3600 s) x 1e6 = 5 / 7.2e6 x 1e6 = 0.69444
    assert r.usd_per_million_output_tokens == pytest.approx(5 / 7.2)
    assert rules(r) == ["fine"] and r.verdict == "fine" and r.slo_reachable is True
    assert r.findings[0].number == ("chat: peak 10 req/s needs 5 of max 8 replicas (2 req/s each); min 1 carries "
                                    "2 req/s vs off-peak 2 req/s")


def test_headroom_is_one_argument(fixed_prices):
    r = plan_target(spec(), demand(), profiles=[A10G], headroom=0.5)
    assert r.replica_requests_per_second == pytest.approx(1.25)  # 500 / 200 x 0.5
    assert r.replicas_at_peak == 8  # ceil(10 / 1.25)


def test_max_below_peak(fixed_prices):
    r = plan_target(spec(min_replicas=2, max_replicas=8), demand(peak=40, off=4), profiles=[A10G])
    assert r.replicas_at_peak == 20  # ceil(40 / 2)
    f = r.findings[0]
    assert (f.verdict, f.rule, f.mandatory) == ("under-provisioned", "max-below-peak", False)
    assert f.number == "chat: max 8 replicas x 2 req/s = 16 req/s < peak 40 req/s"
    assert f.advice == "raise maxReplicas to 20"
    assert r.verdict == "under-provisioned"
    # cost at peak is the need: 20 nodes x $1
    assert r.usd_per_hour_at_peak == pytest.approx(20.0)


def test_slo_unreachable_names_the_slo_and_the_number(fixed_prices):
    r = plan_target(spec(), demand(slo=Slo(ttft_p95_ms=50, itl_p95_ms=30)), profiles=[A10G],
                    mandatory_rules=frozenset({"slo-unreachable"}))
    assert r.operating_point is None and r.replica_requests_per_second is None and r.replicas_at_peak is None
    assert r.slo_reachable is False
    f = r.findings[0]
    assert (f.verdict, f.rule, f.mandatory) == ("under-provisioned", "slo-unreachable", True)
    # the latency at concurrency 1 (TTFT 100 ms, ITL 20 ms) against the SLO
    assert f.number.startswith("chat: at concurrency 1 one replica has TTFT 100 ms, ITL 20 ms (p95) vs SLO "
                               "TTFT p95 <= 50 ms, ITL p95 <= 30 ms")
    assert "larger accelerator" in f.advice and "relax the SLO" in f.advice
    assert r.mandatory is True
    assert r.usd_per_hour_at_peak is None and r.usd_per_hour_at_min == pytest.approx(1.0)


def test_end_to_end_bound(fixed_prices):
    # 101 output tokens: end-to-end = TTFT + 100 x ITL; 1100 ms up to concurrency 10 (ITL 10 ms), then ITL grows
    # 3 ms per request in flight (10 -> 40 ms from c=10 to c=20): 1100 + 300 x (c - 10) <= 2000 -> c = 13,
    # throughput 1000 + 3 x 20 = 1060 tok/s
    flat = profile("A10G", point(1, 100, 100, 10), point(10, 1000, 100, 10), point(20, 1200, 100, 40))
    d = Demand(peak_requests_per_second=10, off_peak_requests_per_second=2, prompt_tokens=1000, output_tokens=101,
               slo=Slo(e2e_p95_ms=2000))
    r = plan_target(spec(), d, profiles=[flat])
    assert r.operating_point.concurrency == 13
    assert r.operating_point.output_tokens_per_second == pytest.approx(1060)
    # 1100 ms at concurrency 1 > 1000 ms
    r = plan_target(spec(), d.model_copy(update={"slo": Slo(e2e_p95_ms=1000)}), profiles=[flat])
    assert r.findings[0].number.startswith("chat: at concurrency 1 one replica has end-to-end 1100 ms for 101 output "
                                           "tokens (p95) vs SLO end-to-end p95 <= 1000 ms")


def test_min_above_off_peak(fixed_prices):
    r = plan_target(spec(min_replicas=4), demand(peak=10, off=0.5), profiles=[A10G])
    f = r.findings[0]
    assert (f.verdict, f.rule) == ("over-provisioned", "min-above-off-peak")
    # min 4 x 2 = 8 req/s > 2 x 0.5 = 1 req/s, and off-peak needs ceil(0.5 / 2) = 1 replica < 4
    assert f.number == ("chat: min 4 replicas x 2 req/s = 8 req/s > 2 x off-peak 0.5 req/s = 1 req/s (off-peak "
                        "needs 1)")
    assert f.advice == "lower minReplicas to 1"
    assert r.usd_per_hour_at_min == pytest.approx(4.0)  # 4 nodes x $1


def test_min_above_zero_off_peak_suggests_scale_to_zero(fixed_prices):
    r = plan_target(spec(min_replicas=2), demand(peak=10, off=0), profiles=[A10G])
    assert r.findings[0].advice.startswith("lower minReplicas to 0 (scale to zero")


def test_min_within_over_ratio_is_fine(fixed_prices):
    # min 1 x 2 = 2 req/s, not > 2 x 1.5 = 3 req/s
    assert rules(plan_target(spec(), demand(off=1.5), profiles=[A10G])) == ["fine"]


def test_idle_warm_pool(fixed_prices):
    r = plan_target(spec(warm_placeholders=2), demand(off=1.5), profiles=[A10G])
    assert rules(r) == ["idle-warm-pool"]
    f = r.findings[0]
    assert f.verdict == "over-provisioned"
    # min 1 replica x 2 req/s = 2 >= off-peak 1.5
    assert f.number == ("chat: 2 warm placeholder(s) held while min 1 replicas x 2 req/s = 2 req/s already carry "
                        "off-peak 1.5 req/s")
    assert r.nodes_at_min == 3  # 1 replica + 2 placeholders, 1 per node
    assert r.usd_per_hour_at_min == pytest.approx(3.0)


def test_warm_pool_needed_when_min_does_not_carry_off_peak(fixed_prices):
    # min 1 x 2 = 2 req/s < off-peak 3 req/s: the placeholders are not idle
    assert "idle-warm-pool" not in rules(plan_target(spec(warm_placeholders=1), demand(off=3), profiles=[A10G]))


def test_node_group_min_raises_nodes_at_min(fixed_prices):
    r = plan_target(spec(node_group="a10g", node_min=3, node_max=10), demand(), profiles=[A10G])
    assert r.nodes_at_min == 3  # max(1 replica -> 1 node, node group min 3)
    assert r.nodes_at_peak == 5


def test_multi_node_replicas_and_node_max(fixed_prices):
    h100_pp2 = profile("H100", point(1, 40, 200, 25), point(16, 400, 800, 50), model="big/405b", params=405, tp=8,
                       pp=2)
    s = spec(model="big/405b", params_billion=405, instance_type="p5.48xlarge", tensor_parallel=8,
             pipeline_parallel=2, devices_per_replica=16, replicas_per_node=1, nodes_per_replica=2, min_replicas=1,
             max_replicas=4, node_group="h100", node_min=0, node_max=4)
    r = plan_target(s, demand(peak=3, off=0.5, slo=Slo(ttft_p95_ms=1000)), profiles=[h100_pp2])
    assert r.operating_point.concurrency == 16
    assert r.replica_requests_per_second == pytest.approx(1.6)  # 400 / 200 x 0.8
    assert r.replicas_at_peak == 2  # ceil(3 / 1.6)
    assert r.nodes_at_peak == 4  # ceil(2 / 1) x 2 nodes per replica
    assert r.nodes_at_min == 2  # 1 replica x 2 nodes
    assert r.usd_per_hour_at_peak == pytest.approx(60.0)  # 4 x $15
    r = plan_target(s.model_copy(update={"node_max": 3}), demand(peak=3, off=0.5, slo=Slo(ttft_p95_ms=1000)),
                    profiles=[h100_pp2])
    f = next(f for f in r.findings if f.rule == "node-max-below-need")
    assert f.verdict == "under-provisioned"
    assert f.number == "chat: 2 replicas need 4 nodes (2 nodes per replica) > h100 max 3"
    assert f.advice == "raise h100's maxSize to 4"


def test_replicas_per_node_packs(fixed_prices):
    r = plan_target(spec(instance_type="g5.12xlarge", replicas_per_node=4), demand(), profiles=[A10G])
    assert r.nodes_at_peak == 2  # ceil(5 replicas / 4 per node)
    assert r.usd_per_hour_at_peak == pytest.approx(8.0)  # 2 x $4


def test_missing_price_is_unknown_not_a_crash(fixed_prices):
    r = plan_target(spec(region="eu-north-1"), demand(), profiles=[A10G])
    assert r.usd_per_hour_at_peak is None and r.usd_per_hour_at_min is None
    assert r.usd_per_million_output_tokens is None
    assert rules(r) == ["fine", "price-missing"] and r.verdict == "unknown"
    f = r.findings[1]
    assert "g5.xlarge" in f.number and "eu-north-1" in f.number
    assert f.advice == "add a on-demand price for g5.xlarge in eu-north-1 (genai-scale prices refresh)"
    r = plan_target(spec(capacity_type="capacity-block"), demand(), profiles=[A10G])
    assert r.findings[-1].number == "chat: no Capacity Block price for g5.xlarge in us-east-1"


def test_real_catalogue_price_is_used():
    # no fixture: the catalogue's g5.xlarge on-demand price x 5 nodes
    r = plan_target(spec(), demand(), profiles=[A10G])
    assert r.usd_per_hour_at_peak == pytest.approx(5 * prices.on_demand("g5.xlarge").on_demand_usd_per_hour)


def test_spot_range(fixed_prices):
    r = plan_target(spec(capacity_type="spot"), demand(), profiles=[A10G])
    assert r.usd_per_hour_at_peak == pytest.approx(1.5)  # 5 nodes x 0.3 x $1
    assert r.usd_per_hour_at_peak_range == pytest.approx((0.5, 5.0))  # 5 x 0.1, 5 x 1.0


def test_pool_sums_demands_on_the_largest_profile(fixed_prices):
    a = demand(peak=2, off=1, slo=Slo(ttft_p95_ms=800))
    b = Demand(peak_requests_per_second=3, off_peak_requests_per_second=0.5, prompt_tokens=500, output_tokens=100,
               slo=Slo(ttft_p95_ms=500, itl_p95_ms=60, e2e_p95_ms=9000))
    total = sum_demands([a, b])
    assert total.peak_requests_per_second == 5 and total.off_peak_requests_per_second == 1.5
    assert total.prompt_tokens == 700  # (2 x 1000 + 3 x 500) / 5
    assert total.output_tokens == 140  # (2 x 200 + 3 x 100) / 5
    assert total.slo == Slo(ttft_p95_ms=500, itl_p95_ms=60, e2e_p95_ms=9000)  # the strictest of each
    s = spec(kind="pool", model="pool-a", params_billion=None, pool_members=(
        PoolMember(model="small/1b", params_billion=1.24), PoolMember(model=MODEL_8B, params_billion=8.03)))
    r = plan_target(s, total, profiles=[A10G])
    assert r.profile == A10G  # the 8B member's profile
    # 500 tok/s / 140 tokens x 0.8 = 2.857 req/s; ceil(5 / 2.857) = ceil(1.75) = 2
    assert r.replica_requests_per_second == pytest.approx(500 / 140 * 0.8)
    assert r.replicas_at_peak == 2
    assert any(n.startswith("pool (small/1b, meta-llama/Llama-3.1-8B-Instruct): the members' demands summed, planned "
                            "on the largest model's profile (meta-llama/Llama-3.1-8B-Instruct, 8.03B)")
               for n in r.notes)


def test_batch_deadline_on_spot(fixed_prices):
    s = spec(kind="batch", name="nightly", min_replicas=0, max_replicas=4)
    assert s.capacity_type == "spot"  # batch defaults to spot
    d = demand(peak=1, off=0, batch_requests_per_day=72000, batch_deadline_hours=4)
    r = plan_target(s, d, profiles=[A10G])
    # no SLO for batch: the plateau, 800 tok/s at concurrency 16
    assert r.operating_point.concurrency == 16
    assert r.replica_requests_per_second == pytest.approx(3.2)  # 800 / 200 x 0.8
    # 72,000 requests / (4 h x 3600 s) = 5 req/s; ceil(5 / 3.2) = 2 replicas
    assert (r.replicas_at_peak, r.replicas_at_off_peak, r.nodes_at_peak, r.nodes_at_min) == (2, 0, 2, 0)
    assert r.usd_per_hour_at_peak == pytest.approx(0.6)  # 2 nodes x 0.3 x $1
    assert r.usd_per_hour_at_peak_range == pytest.approx((0.2, 2.0))
    # a batch job stops when the volume is done: priced by the work, $0.3 per replica-hour at 3.2 req/s,
    # 0.3 / (3.2 x 200 x 3600) x 1e6 = 0.3 / 2.304 = $0.1302 per 1M output tokens (not the 2 rounded-up replicas)
    assert r.usd_per_million_output_tokens == pytest.approx(0.3 / 2.304)
    # 72,000 / 3.2 req/s / 3600 = 6.25 replica-hours x $0.3 = $1.875/day
    assert any("72000 requests/day within 4 h = 5 req/s on 2 replica(s); the work takes 6.25 replica-hours a day "
               "= $1.88/day" in n for n in r.notes)
    assert rules(r) == ["fine"]
    # the deadline halved: 10 req/s needs ceil(10 / 3.2) = 4 replicas; max 3 is short
    r = plan_target(s.model_copy(update={"max_replicas": 3}), d.model_copy(update={"batch_deadline_hours": 2}),
                    profiles=[A10G])
    assert r.replicas_at_peak == 4 and r.findings[0].advice == "raise maxReplicas to 4"


def test_batch_without_volume_is_unknown(fixed_prices):
    r = plan_target(spec(kind="batch", min_replicas=0), demand(), profiles=[A10G])
    assert r.findings[0].rule == "no-demand" and r.verdict == "unknown"


def test_sagemaker_instances_are_replicas(fixed_prices):
    r = plan_target(spec(kind="sagemaker", instance_type="ml.g5.xlarge"), demand(), profiles=[A10G])
    assert r.profile == A10G  # accelerator from g5.xlarge
    assert r.nodes_at_peak == 5 and r.usd_per_hour_at_peak == pytest.approx(7.0)  # 5 instances x $1.4


def test_no_profile_and_no_demand_are_unknown(fixed_prices):
    r = plan_target(spec(params_billion=None), demand())
    assert rules(r) == ["profile-missing"] and r.slo_reachable is None
    assert r.findings[0].number == "chat: no throughput profile: params_billion is not given"
    r = plan_target(spec(), None, profiles=[A10G])
    assert rules(r) == ["no-demand"] and r.replicas_at_peak is None
    assert r.usd_per_hour_at_min == pytest.approx(1.0)


def test_notes_for_a_far_request_shape_and_latency_stat(fixed_prices):
    mean = profile("A10G", point(1, 100, 100, 20), point(8, 500, 400, 40), latency_stat="mean")
    d = Demand(peak_requests_per_second=10, off_peak_requests_per_second=2, prompt_tokens=3000, output_tokens=1000,
               slo=SLO)
    notes = plan_target(spec(), d, profiles=[mean]).notes
    assert notes[0].startswith("prompts of 3000 tokens are over 2x the profile's 1000")
    assert notes[1].startswith("outputs of 1000 tokens are far from the profile's 200")
    assert notes[2].startswith("the profile's latencies are mean")


def test_bedrock_on_demand_cost_from_token_prices():
    s = spec(kind="bedrock-on-demand", model="amazon.nova-lite-v1:0", params_billion=None, instance_type=None)
    r = plan_target(s, demand())
    t = prices.bedrock_tokens("amazon.nova-lite-v1:0")
    assert (t.on_demand_input_per_mtok, t.on_demand_output_per_mtok) == (0.06, 0.24)
    # per request (1000 x 0.06 + 200 x 0.24) / 1e6 = 108e-6; x 10 req/s x 3600 = $3.888/h; off-peak 2 -> $0.7776/h
    assert r.usd_per_hour_at_peak == pytest.approx(3.888)
    assert r.usd_per_hour_at_min == pytest.approx(0.7776)
    assert r.usd_per_million_output_tokens == pytest.approx(0.54)  # 0.24 + 0.06 x 1000 / 200
    assert rules(r) == ["fine"] and r.nodes_at_min == 0
    assert r.notes[0].startswith("Bedrock on-demand: peak needs 720000 tokens/min")  # 10 x 1200 x 60
    r = plan_target(s.model_copy(update={"model": "example.unpriced-v1:0"}), demand())
    assert rules(r) == ["fine", "price-missing"] and r.usd_per_hour_at_peak is None


@pytest.fixture
def unit_price(monkeypatch):
    row = prices.ProvisionedPrice(model_id="amazon.nova-lite-v1:0:24k", region="us-east-1", commitment="none",
                                  usd_per_model_unit_per_hour=20.0, source="https://example.com/test-prices",
                                  as_of=date(2026, 12, 6), basis="fixed test price, not a real one")
    monkeypatch.setattr(prices, "bedrock_provisioned", lambda m, region="us-east-1", commitment="none": row)


def provisioned(units: int, tpm: float | None = 60000) -> TargetSpec:
    return spec(kind="bedrock-provisioned", model="amazon.nova-lite-v1:0:24k", params_billion=None,
                instance_type=None, model_units=units, tokens_per_minute_per_unit=tpm)


def test_bedrock_provisioned_units_against_peak(unit_price):
    # peak 10 req/s x 1200 tokens x 60 = 720,000 tokens/min / 60,000 per unit = 12 units
    r = plan_target(provisioned(4), demand())
    f = r.findings[0]
    assert (f.verdict, f.rule, f.advice) == ("under-provisioned", "max-below-peak", "raise modelUnits to 12")
    assert f.number == ("chat: peak 10 req/s x 1200 tokens x 60 = 720000 tokens/min needs 12 unit(s) of 60000 "
                        "tokens/min; 4 bought")
    assert r.usd_per_hour_at_min == r.usd_per_hour_at_peak == pytest.approx(80.0)  # 4 units x $20
    # peak 1 req/s: 72,000 tokens/min -> ceil(1.2) = 2 units; 4 bought
    r = plan_target(provisioned(4), demand(peak=1, off=0.5))
    f = r.findings[0]
    assert (f.verdict, f.rule, f.advice) == ("over-provisioned", "committed-above-demand",
                                             "lower modelUnits to 2 at the end of the commitment term")
    assert rules(plan_target(provisioned(2), demand(peak=1, off=0.5))) == ["fine"]


def test_bedrock_provisioned_unknown_throughput_and_price():
    r = plan_target(provisioned(4, tpm=None), demand())
    assert rules(r) == ["committed-above-demand", "price-missing"]
    assert [f.verdict for f in r.findings] == ["unknown", "unknown"]
    # the catalogue's reason (no Provisioned Throughput price is sourced today)
    assert r.findings[1].number == ("chat: " + prices.provisioned_unpriced_reason("amazon.nova-lite-v1:0:24k"))
    assert r.usd_per_hour_at_peak is None


def test_bedrock_provisioned_on_an_on_demand_id_names_the_variants():
    s = provisioned(1).model_copy(update={"model": "amazon.nova-lite-v1:0"})
    f = plan_target(s, demand()).findings[-1]
    assert f.rule == "price-missing"
    assert f.number == ("chat: amazon.nova-lite-v1:0 is an on-demand model id; Provisioned Throughput is bought and "
                        "priced per contextual variant (amazon.nova-lite-v1:0:24k, amazon.nova-lite-v1:0:300k)")
    assert f.advice == "name the contextual variant bought (amazon.nova-lite-v1:0:24k)"


def test_node_max_counts_packed_replicas(fixed_prices):
    s = spec(instance_type="g5.12xlarge", replicas_per_node=4, node_group="a10g", node_max=1)
    f = next(f for f in plan_target(s, demand(), profiles=[A10G]).findings if f.rule == "node-max-below-need")
    assert f.number == "chat: 5 replicas need 2 nodes (4 replicas per node) > a10g max 1"  # ceil(5 / 4) = 2


def test_verdict_is_the_worst_finding(fixed_prices):
    r = plan_target(spec(min_replicas=4, max_replicas=4, region="eu-north-1"), demand(peak=40, off=0.5),
                    profiles=[A10G])
    assert rules(r) == ["max-below-peak", "min-above-off-peak", "price-missing"]
    assert r.verdict == "under-provisioned"


def test_argument_errors_name_the_value():
    with pytest.raises(ValueError) as e:
        plan_target(spec(), demand(), headroom=1.5, over_ratio=0.5, mandatory_rules=frozenset({"nope"}))
    assert str(e.value) == ("headroom (1.5) must be in (0, 1]; over_ratio (0.5) must be >= 1; mandatory_rules (nope) "
                            "must be rule ids: " + ", ".join(RULES))


def test_slo_unreachable_uses_h100_profile(fixed_prices):
    r = plan_target(spec(instance_type="p5.48xlarge"), demand(), profiles=[H100])
    assert r.findings[0].number.startswith("chat: at concurrency 1 one replica has TTFT 2000 ms (p95) vs SLO TTFT "
                                           "p95 <= 500 ms (H100 x TP 1, bf16, measured)")


def test_model_validation_messages():
    with pytest.raises(ValidationError, match=r"off_peak_requests_per_second \(5\) must be <= "
                                              r"peak_requests_per_second \(4\)"):
        demand(peak=4, off=5)
    with pytest.raises(ValidationError) as e:
        spec(min_replicas=5, max_replicas=2, node_min=3, node_max=1, nodes_per_replica=2, replicas_per_node=2)
    msg = str(e.value)
    assert "min_replicas (5) must be <= max_replicas (2)" in msg
    assert "node_min (3) must be <= node_max (1)" in msg
    assert "replicas_per_node (2) must be 1 when nodes_per_replica (2) > 1" in msg
    assert Slo().describe() == "none"


def test_every_exported_name_resolves():
    import components.capacity as capacity

    for name in capacity.__all__:
        assert getattr(capacity, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        capacity.nope  # noqa: B018


def test_warm_placeholders_hold_their_nodes_at_peak_too(fixed_prices):
    # SLO point 500 tok/s / 200 x 0.8 = 2 req/s; peak 10 -> 5 replicas, plus 2 placeholders = 7 g5.xlarge nodes x $1
    r = plan_target(spec(max_replicas=8, warm_placeholders=2), demand(), profiles=[A10G])
    assert (r.replicas_at_peak, r.nodes_at_peak, r.usd_per_hour_at_peak) == (5, 7, pytest.approx(7.0))
    assert r.usd_per_hour_at_min <= r.usd_per_hour_at_peak  # min 1 + 2 placeholders = 3 nodes


def test_a_one_token_answer_has_no_inter_token_latency_to_judge():
    from components.capacity.model import Slo
    from components.capacity.planner import operating_point

    tight = Slo(ttft_p95_ms=500, itl_p95_ms=1)  # no A10G point has ITL <= 1 ms
    assert operating_point(A10G, tight, 200) is None
    assert operating_point(A10G, tight, 1).concurrency == 8  # TTFT <= 500 ms: concurrency 8 (400 ms), 500 tok/s
