"""The capacity rules (policies/capacity.py): each passes and fails on a hand-made ScaledObject with hand-computed
numbers; a malformed annotation is a finding naming the key, never a crash; the level of each rule is a tier fact;
the shipped stacks pass, and a real plan's ScaledObject given an annotation fires."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from infra.tiers import TierError, load_tier, pack_config_for
from policies.capacity import ANNOTATION, LEVEL_FACTS, num, read_annotation, replicas_for
from policies.engine import evaluate
from policies.pack import RULES, TierFactsError, fact_schemas, pack_config
from tests.kit import ROOT
from tests.policies.kit import found, mutated, res, run
from tests.stack_plans import planned

SO = "kubernetes:keda.sh/v1alpha1:ScaledObject"
MAX = "capacity-max-below-peak"
SLO = "capacity-slo-unreachable"
MIN = "capacity-min-above-off-peak"
RULE_IDS = (MAX, SLO, MIN)

FACTS = {"target": "chat", "peakRps": 40, "offPeakRps": 1.5, "replicaRps": 2.5, "sloReachable": True,
         "slo": "TTFT p95 <= 1000 ms", "overRatio": 2}
"""A plan every rule passes with replicas 1..16: peak 40 / 2.5 = 16 replicas, off-peak 1.5 / 2.5 -> 1 replica."""


def scaled_object(*, min_replicas=1, max_replicas=16, annotation=None, **facts):
    """A ScaledObject with the capacity annotation: ``annotation`` as given (a raw value), else FACTS with ``facts``
    replaced (a value of ``...`` drops the key)."""
    spec = {"scaleTargetRef": {"name": "chat"}, "triggers": []}
    if min_replicas is not None:
        spec["minReplicaCount"] = min_replicas
    if max_replicas is not None:
        spec["maxReplicaCount"] = max_replicas
    if annotation is None:
        doc = {k: v for k, v in {**FACTS, **facts}.items() if v is not ...}
        annotation = json.dumps(doc)
    meta = {"name": "chat", "namespace": "genai-serving", "annotations": {ANNOTATION: annotation}}
    return res(SO, "chat-scaledobject", {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                         "metadata": meta, "spec": spec})


def capacity_findings(resources, *, tier="scale", config=None):
    report = evaluate(list(resources), config=config if config is not None else pack_config_for(tier))
    return {rid: found(report, rid) for rid in RULE_IDS if found(report, rid)}


def one(rule, so, tier="scale"):
    return found(run([so], tier=tier), rule)


def test_the_rules_are_registered_with_a_level_fact_each():
    assert set(RULE_IDS) <= set(RULES) and set(LEVEL_FACTS) == set(RULE_IDS)
    assert all(fact_schemas()[path] == {"enum": ["advisory", "mandatory"]} for path in LEVEL_FACTS.values())


def test_the_rules_read_the_annotation_the_components_write():
    from components.serving.vllm.manifests import CAPACITY_ANNOTATION

    assert ANNOTATION == CAPACITY_ANNOTATION  # the pack, published alone, cannot import components


def test_a_plan_that_fits_passes():
    assert capacity_findings([scaled_object()]) == {}


class TestMaxBelowPeak:
    def test_max_below_peak_fails_with_the_numbers_and_the_replicas_needed(self):
        # 8 x 2.5 = 20 req/s < 40 req/s; ceil(40 / 2.5) = 16
        assert one(MAX, scaled_object(max_replicas=8)) == [
            "chat: maxReplicaCount 8 x 2.5 req/s per replica = 20 req/s < peak 40 req/s: the peak needs 16 replicas "
            "(ceil(40 / 2.5)); raise maxReplicaCount to 16"]

    def test_exactly_the_peak_passes_one_below_fails(self):
        assert one(MAX, scaled_object(max_replicas=16)) == []  # 16 x 2.5 = 40
        assert one(MAX, scaled_object(max_replicas=15)) == [  # 15 x 2.5 = 37.5
            "chat: maxReplicaCount 15 x 2.5 req/s per replica = 37.5 req/s < peak 40 req/s: the peak needs 16 "
            "replicas (ceil(40 / 2.5)); raise maxReplicaCount to 16"]

    def test_an_unset_max_is_kedas_default_of_100(self):
        # 100 x 2.5 = 250 < 300; ceil(300 / 2.5) = 120
        assert one(MAX, scaled_object(max_replicas=None, peakRps=300)) == [
            "chat: maxReplicaCount unset (KEDA default 100) x 2.5 req/s per replica = 250 req/s < peak 300 req/s: "
            "the peak needs 120 replicas (ceil(300 / 2.5)); raise maxReplicaCount to 120"]
        assert one(MAX, scaled_object(max_replicas=None, peakRps=250)) == []

    def test_float_noise_does_not_ask_for_an_extra_replica(self):
        # 1.1 / 0.1 is 11.000000000000002 in floating point: 11 replicas carry 1.1 req/s
        assert replicas_for(1.1, 0.1) == 11
        assert one(MAX, scaled_object(max_replicas=11, peakRps=1.1, replicaRps=0.1, offPeakRps=0)) == []

    def test_unknown_demand_or_throughput_is_not_judged(self):
        assert one(MAX, scaled_object(max_replicas=1, peakRps=None)) == []
        assert one(MAX, scaled_object(max_replicas=1, replicaRps=None)) == []

    def test_the_message_names_the_annotations_target(self):
        # the message names the annotation's target, not the resource's logical name
        [msg] = one(MAX, scaled_object(max_replicas=1, target="llama-70b"))
        assert msg.startswith("llama-70b: maxReplicaCount 1 x 2.5 req/s")


class TestSloUnreachable:
    def test_an_unreachable_slo_fails_naming_it(self):
        assert one(SLO, scaled_object(sloReachable=False)) == [
            "chat: the SLO (TTFT p95 <= 1000 ms) cannot be met: the capacity plan finds no concurrency at which one "
            "replica meets it, and more replicas do not shorten the latency of a request"]

    def test_a_reachable_or_unknown_slo_passes(self):
        assert one(SLO, scaled_object(sloReachable=True)) == []
        assert one(SLO, scaled_object(sloReachable=None, slo=None)) == []

    def test_an_unnamed_slo_is_said_to_be_unnamed(self):
        assert one(SLO, scaled_object(sloReachable=False, slo=None)) == [
            "chat: the SLO (not named in the annotation) cannot be met: the capacity plan finds no concurrency at "
            "which one replica meets it, and more replicas do not shorten the latency of a request"]


class TestMinAboveOffPeak:
    def test_min_far_above_off_peak_fails_with_the_numbers(self):
        # 4 x 2.5 = 10 req/s > 2 x 1.5 = 3 req/s; ceil(1.5 / 2.5) = 1 replica off-peak, and 4 > 1
        assert one(MIN, scaled_object(min_replicas=4)) == [
            "chat: minReplicaCount 4 x 2.5 req/s per replica = 10 req/s > 2 x off-peak 1.5 req/s = 3 req/s: "
            "off-peak needs 1 replica (ceil(1.5 / 2.5)); lower minReplicaCount to 1"]

    def test_replicas_kept_for_availability_are_not_too_many(self):
        # a multi-AZ tier keeps 2: min 2 passes (5 req/s > 3 req/s but 2 <= 2); min 4 is lowered to 2, not 1
        assert one(MIN, scaled_object(min_replicas=2, availabilityReplicas=2)) == []
        assert one(MIN, scaled_object(min_replicas=4, availabilityReplicas=2)) == [
            "chat: minReplicaCount 4 x 2.5 req/s per replica = 10 req/s > 2 x off-peak 1.5 req/s = 3 req/s: "
            "off-peak needs 1 replica (ceil(1.5 / 2.5), 2 kept for availability); lower minReplicaCount to 2"]
        assert one(MIN, scaled_object(min_replicas=4, availabilityReplicas=-1))[0].startswith(
            "annotation genai-scale.io/capacity-plan: availabilityReplicas = -1: expected a whole number >= 0")

    def test_within_the_ratio_passes(self):
        assert one(MIN, scaled_object(min_replicas=1)) == []  # 2.5 <= 3
        assert one(MIN, scaled_object(min_replicas=2, overRatio=4)) == []  # 5 <= 4 x 1.5 = 6

    def test_the_replicas_off_peak_needs_are_never_too_many(self):
        # off-peak 10 req/s, 3 req/s per replica, ratio 1: 4 replicas (12 req/s > 10 req/s) are what 10 req/s needs
        # (ceil(10 / 3) = 4), so 4 passes; 5 (15 req/s) fails
        fits = dict(offPeakRps=10, replicaRps=3, overRatio=1, peakRps=30)
        assert one(MIN, scaled_object(min_replicas=4, **fits)) == []
        assert one(MIN, scaled_object(min_replicas=5, **fits)) == [
            "chat: minReplicaCount 5 x 3 req/s per replica = 15 req/s > 1 x off-peak 10 req/s = 10 req/s: off-peak "
            "needs 4 replicas (ceil(10 / 3)); lower minReplicaCount to 4"]

    def test_any_off_peak_demand_needs_one_replica(self):
        # 1e-9 req/s rounds to 0 replicas, but a demand above zero needs one: min 1 passes
        assert replicas_for(1e-9, 2.5) == 1 and replicas_for(0, 2.5) == 0
        assert one(MIN, scaled_object(min_replicas=1, offPeakRps=1e-9)) == []

    def test_no_off_peak_demand_and_a_warm_replica_fails(self):
        assert one(MIN, scaled_object(min_replicas=1, offPeakRps=0)) == [
            "chat: minReplicaCount 1 x 2.5 req/s per replica = 2.5 req/s > 2 x off-peak 0 req/s = 0 req/s: off-peak "
            "needs 0 replicas (ceil(0 / 2.5)); lower minReplicaCount to 0"]
        assert one(MIN, scaled_object(min_replicas=None, offPeakRps=0)) == []  # KEDA's default minimum: 0

    def test_unknown_values_are_not_judged(self):
        for key in ("offPeakRps", "replicaRps", "overRatio"):
            assert one(MIN, scaled_object(min_replicas=9, **{key: None})) == [], key


class TestMalformedAnnotation:
    EXPECTED = "a JSON object with target, peakRps, offPeakRps, replicaRps, sloReachable, slo, overRatio"

    def test_not_json_is_a_finding_of_every_rule(self):
        got = capacity_findings([scaled_object(annotation="{peakRps: 40")])
        reason = "Expecting property name enclosed in double quotes at character 1"
        assert got == {
            MAX: [f"annotation {ANNOTATION} is not JSON ({reason}): expected {self.EXPECTED}; peak capacity "
                  "not judged"],
            SLO: [f"annotation {ANNOTATION} is not JSON ({reason}): expected {self.EXPECTED}; the SLO not judged"],
            MIN: [f"annotation {ANNOTATION} is not JSON ({reason}): expected {self.EXPECTED}; off-peak capacity "
                  "not judged"]}

    def test_not_an_object(self):
        got = capacity_findings([scaled_object(annotation="[40, 2.5]")])
        assert got[SLO] == [f"annotation {ANNOTATION} = [40, 2.5]: expected {self.EXPECTED}; the SLO not judged"]
        assert set(got) == set(RULE_IDS)

    def test_a_wrong_type_names_the_key_value_and_expectation_in_the_rules_that_read_it(self):
        got = capacity_findings([scaled_object(peakRps="forty")])
        assert got == {MAX: [f'annotation {ANNOTATION}: peakRps = "forty": expected a number >= 0 (requests/s at '
                             'peak) or null; peak capacity not judged']}
        got = capacity_findings([scaled_object(replicaRps=True)])
        assert set(got) == {MAX, MIN}
        assert got[MIN] == [f"annotation {ANNOTATION}: replicaRps = true: expected a number > 0 (requests/s one "
                            "replica serves) or null; off-peak capacity not judged"]

    @pytest.mark.parametrize("key,value,rules", [
        ("replicaRps", 0, {MAX, MIN}), ("offPeakRps", -1, {MIN}), ("overRatio", 0.5, {MIN}),
        ("sloReachable", "no", {SLO}), ("slo", 1000, {SLO}), ("target", "", set(RULE_IDS)),
        ("peakRps", float("nan"), {MAX}),
    ])
    def test_each_key_is_checked(self, key, value, rules):
        got = capacity_findings([scaled_object(**{key: value})])
        assert set(got) == rules
        assert all(len(msgs) == 1 and f": {key} = " in msgs[0] for msgs in got.values())

    def test_a_missing_key_is_named(self):
        got = capacity_findings([scaled_object(sloReachable=...)])
        assert got == {SLO: [f"annotation {ANNOTATION}: key sloReachable is missing: expected true, false or null; "
                             "the SLO not judged"]}

    def test_an_annotation_that_is_not_a_string(self):
        got = capacity_findings([scaled_object(annotation={"peakRps": 40})])
        assert got[MAX] == [f'annotation {ANNOTATION} = {{"peakRps": 40}}: expected a string holding '
                            f"{self.EXPECTED}; peak capacity not judged"]

    def test_a_long_value_is_cut_in_the_message(self):
        got = capacity_findings([scaled_object(slo=["x" * 200])])
        [msg] = got[SLO]
        assert msg.startswith(f'annotation {ANNOTATION}: slo = ["{"x" * 75}...: expected a string')

    def test_unknown_keys_are_ignored(self):
        assert capacity_findings([scaled_object(nodesAtPeak=4)]) == {}


def test_no_annotation_no_finding():
    so = scaled_object(min_replicas=50, max_replicas=1)
    bare = copy.deepcopy(so)
    del bare["inputs"]["metadata"]["annotations"]
    other = copy.deepcopy(so)
    other["inputs"]["metadata"]["annotations"] = {"autoscaling.keda.sh/paused": "true"}
    assert read_annotation(bare["inputs"]) is None
    assert capacity_findings([bare, other]) == {}


def test_numbers_in_messages():
    assert [num(x) for x in (40, 2.5, 37.5, 0.0125, 1e-5, 123456.0, 1 / 3)] == [
        "40", "2.5", "37.5", "0.0125", "0.00001", "123456", "0.3333"]


# --- levels -----------------------------------------------------------------------------------------------------------

def failing_everything():
    return [scaled_object(min_replicas=4, max_replicas=8, sloReachable=False)]


def levels(config):
    report = evaluate(failing_everything(), config=config)
    return {rid: {v.level for v in report.by_policy(rid)} for rid in RULE_IDS}


def test_levels_follow_the_shipped_tiers():
    assert levels(pack_config_for("scale")) == {MAX: {"advisory"}, SLO: {"mandatory"}, MIN: {"advisory"}}
    for tier in ("growth", "prototype"):
        assert levels(pack_config_for(tier)) == {r: {"advisory"} for r in RULE_IDS}, tier


def test_without_tier_facts_the_rules_are_advisory():
    assert levels(pack_config(None)) == {r: {"advisory"} for r in RULE_IDS}
    assert levels({}) == {r: {"advisory"} for r in RULE_IDS}  # no pack config at all: the registered level


def growth_doc():
    return yaml.safe_load((ROOT / "stacks" / "tiers" / "growth" / "tier.yaml").read_text())


@pytest.mark.parametrize("rule", RULE_IDS)
def test_each_rules_level_is_its_own_tier_fact(rule):
    doc = growth_doc()
    doc["policy"]["capacity"][LEVEL_FACTS[rule].rsplit(".", 1)[-1]] = "mandatory"
    got = levels(pack_config("enterprise", facts=doc))
    assert got == {r: {"mandatory" if r == rule else "advisory"} for r in RULE_IDS}


def test_the_cost_level_does_not_move_the_capacity_rules():
    doc = growth_doc()
    doc["policy"]["costEnforcement"] = "advisory"
    assert levels(pack_config("lean", facts=doc))[MIN] == {"advisory"}
    doc["policy"]["costEnforcement"] = "mandatory"
    assert levels(pack_config("lean", facts=doc))[MIN] == {"advisory"}


def test_an_override_wins_over_the_tier_fact():
    cfg = pack_config_for("scale", overrides={SLO: "advisory", MAX: "mandatory"})
    assert levels(cfg) == {MAX: {"mandatory"}, SLO: {"advisory"}, MIN: {"advisory"}}


def test_the_level_facts_are_required_and_checked():
    doc = growth_doc()
    del doc["policy"]["capacity"]["maxBelowPeak"]
    doc["policy"]["capacity"]["sloUnreachable"] = "strict"
    with pytest.raises(TierFactsError) as err:
        pack_config("growth", facts=doc)
    text = str(err.value)
    assert "  - policy.capacity.maxBelowPeak: required (a tier fact the policy pack reads)" in text
    assert "  - policy.capacity.sloUnreachable = 'strict': 'strict' is not one of ['advisory', 'mandatory']" in text


def test_the_tier_file_loader_checks_the_level_facts(tmp_path):
    shutil.copytree(ROOT / "stacks" / "tiers" / "growth", tmp_path / "lean")
    path = tmp_path / "lean" / "tier.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["policy"]["capacity"]["sloUnreachable"] = "strict"
    del doc["policy"]["capacity"]["minAboveOffPeak"]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TierError) as err:
        load_tier("lean", tmp_path)
    text = str(err.value)
    assert "policy.capacity.sloUnreachable" in text and "'advisory' or 'mandatory'" in text
    assert "policy.capacity.minAboveOffPeak" in text


# --- the shipped stacks -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def plan(request):
    result, cfg = planned(request.param)
    return result.resources, cfg.tier


def test_the_shipped_stacks_capacity_annotations_are_well_formed(plan):
    # what the program renders is what the rules read: no shipped ScaledObject's annotation is malformed (whether its
    # verdicts are accepted is the stack's business: docs/policies.md, "Deliberate advisory findings")
    resources, tier = plan
    annotated = [r for r in resources if r.type == SO and read_annotation(r.inputs) is not None]
    assert {r.name: dict(read_annotation(r.inputs).problems) for r in annotated} == {r.name: {} for r in annotated}
    messages = [m for msgs in capacity_findings(resources, tier=tier).values() for m in msgs]
    assert [m for m in messages if m.startswith(f"annotation {ANNOTATION}")] == []


def test_a_real_scaled_object_with_a_capacity_plan_is_judged(plan):
    resources, tier = plan
    so = next(r for r in resources if r.type == SO and r.inputs["metadata"]["namespace"] == "genai-serving")
    hi, lo = int(so.inputs["spec"]["maxReplicaCount"]), int(so.inputs["spec"].get("minReplicaCount", 0))
    # a peak one replica more than max carries, an unreachable SLO, no off-peak demand below a warm minimum
    facts = {**FACTS, "target": "llama", "replicaRps": 2, "peakRps": 2 * hi + 1, "offPeakRps": 0,
             "sloReachable": False}

    def annotate(inputs):
        inputs["metadata"].setdefault("annotations", {})[ANNOTATION] = json.dumps(facts)
        inputs["spec"]["minReplicaCount"] = max(lo, 1)

    report = evaluate(mutated(resources, so.name, annotate, type_=SO), config=pack_config_for(tier))
    got = {v.policy: (v.level, v.message) for v in report.violations if v.urn == so.urn and v.policy in RULE_IDS}
    need = hi + 1  # ceil((2 hi + 1) / 2)
    slo_level = "mandatory" if tier == "scale" else "advisory"
    assert got == {
        MAX: ("advisory", f"llama: maxReplicaCount {hi} x 2 req/s per replica = {2 * hi} req/s < peak {2 * hi + 1} "
                          f"req/s: the peak needs {need} replicas (ceil({2 * hi + 1} / 2)); raise maxReplicaCount "
                          f"to {need}"),
        SLO: (slo_level, "llama: the SLO (TTFT p95 <= 1000 ms) cannot be met: the capacity plan finds no concurrency "
                         "at which one replica meets it, and more replicas do not shorten the latency of a request"),
        MIN: ("advisory", f"llama: minReplicaCount {max(lo, 1)} x 2 req/s per replica = {2 * max(lo, 1)} req/s > 2 x "
                          "off-peak 0 req/s = 0 req/s: off-peak needs 0 replicas (ceil(0 / 2)); lower "
                          "minReplicaCount to 0")}


def test_replicas_kept_for_availability_are_not_over_provisioned():
    from components.serving.vllm.manifests import CAPACITY_ANNOTATION
    from policies.capacity import ANNOTATION

    assert ANNOTATION == CAPACITY_ANNOTATION == "genai-scale.io/capacity-plan"
