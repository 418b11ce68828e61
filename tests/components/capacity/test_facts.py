"""Capacity facts: what a planned vLLM service's ScaledObject carries, and the verdicts judged again from the facts and
the replica bounds alone (genai-scale capacity --program); numbers hand-computed."""

from __future__ import annotations

import pytest

from components.capacity.facts import capacity_facts, judge
from components.capacity.model import Demand, Slo, TargetReport, TargetSpec


def facts(**kw) -> dict:
    base = {"target": "chat", "peakRps": 10.0, "offPeakRps": 2.0, "replicaRps": 2.5, "sloReachable": True,
            "slo": "TTFT p95 <= 1000 ms", "overRatio": 2.0, "availabilityReplicas": 0, "minReplicas": 1,
            "maxReplicas": 8}
    return {**base, **kw}


def rules(f: dict) -> list[str]:
    return [x.rule for x in judge(f)]


def test_within_bounds_is_fine():
    # peak 10 / 2.5 = 4 replicas <= max 8; min 1 x 2.5 = 2.5 <= 2 x off-peak 2 = 4
    assert rules(facts()) == ["fine"]


def test_max_below_peak_names_the_numbers_and_the_replicas_needed():
    (x,) = judge(facts(maxReplicas=3))  # 3 x 2.5 = 7.5 < 10 -> ceil(10 / 2.5) = 4
    assert (x.verdict, x.rule) == ("under-provisioned", "max-below-peak")
    assert x.number == "max 3 replicas x 2.5 req/s = 7.5 req/s < peak 10 req/s"
    assert x.advice == "raise maxReplicas to 4"


def test_an_unreachable_slo_is_under_provisioned_whatever_the_bounds():
    (x,) = judge(facts(sloReachable=False, replicaRps=None))
    assert x.rule == "slo-unreachable" and "TTFT p95 <= 1000 ms" in x.number


def test_min_above_off_peak_and_the_availability_floor():
    # min 4 x 2.5 = 10 > 2 x 2 = 4, and off-peak needs ceil(2 / 2.5) = 1 -> lower to 1
    (x,) = judge(facts(minReplicas=4))
    assert (x.rule, x.advice) == ("min-above-off-peak", "lower minReplicas to 1")
    # a multi-AZ tier keeps 2: min 2 is then fine, min 4 is lowered to 2
    assert rules(facts(minReplicas=2, availabilityReplicas=2)) == ["fine"]
    assert judge(facts(minReplicas=4, availabilityReplicas=2))[0].advice == "lower minReplicas to 2"


def test_malformed_facts_are_a_finding_not_a_crash():
    (x,) = judge({"target": "chat", "error": "genai-scale.io/capacity-plan is not JSON"})
    assert (x.verdict, x.rule) == ("unknown", "facts-malformed")
    (x,) = judge({"peakRps": "ten", "maxReplicas": 1, "replicaRps": 1})
    assert (x.rule, x.number) == ("facts-malformed", "not a number: peakRps = 'ten'")


def test_capacity_facts_of_a_report():
    spec = TargetSpec(name="chat", kind="vllm", model="m", region="us-east-1", availability_replicas=2)
    demand = Demand(peak_requests_per_second=10, off_peak_requests_per_second=2, prompt_tokens=100,
                    output_tokens=200, slo=Slo(ttft_p95_ms=1000, e2e_p95_ms=9000))
    report = TargetReport(target=spec, demand=demand, profile=None, operating_point=None,
                          replica_requests_per_second=2.5, replicas_at_peak=4, replicas_at_off_peak=1,
                          nodes_at_peak=4, nodes_at_min=1, usd_per_hour_at_min=1, usd_per_hour_at_peak=4,
                          usd_per_million_output_tokens=0.5, findings=())
    f = capacity_facts(report, over_ratio=3)
    assert f == {"target": "chat", "peakRps": 10, "offPeakRps": 2, "replicaRps": 2.5, "sloReachable": None,
                 "slo": "TTFT p95 <= 1000 ms, end-to-end p95 <= 9000 ms", "overRatio": 3,
                 "availabilityReplicas": 2}
    with pytest.raises(ValueError, match="has no demand"):
        capacity_facts(report.model_copy(update={"demand": None}))
