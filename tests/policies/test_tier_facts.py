"""Tier facts reach the rules as policy config: every rule that reads one fails or passes as its fact says, whatever
the tier is called; with no tier configured, a tier named by a tag takes the facts the pack ships for it; unknown
facts mean the strict defaults."""

import copy

import pytest
import yaml

from policies.engine import evaluate
from policies._rule import tier_of_props
from policies.pack import pack_config, shipped_tiers
from tests.kit import ROOT
from tests.policies.kit import found, res, run

NG = "aws:eks/nodeGroup:NodeGroup"
PT = "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput"
RG = "aws:elasticache/replicationGroup:ReplicationGroup"
SUBNET = "aws:ec2/subnet:Subnet"


def growth_facts() -> dict:
    return yaml.safe_load((ROOT / "stacks" / "tiers" / "growth" / "tier.yaml").read_text())


def with_fact(path: str, value) -> dict:
    doc = copy.deepcopy(growth_facts())
    *parents, leaf = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    node[leaf] = value
    return doc


def node_group(name="a10g", instance="g5.xlarge", *, min_size=0, max_size=2, tags=None):
    return res(NG, name, {"instanceTypes": [instance], "amiType": "AL2023_x86_64_NVIDIA", "capacityType": "ON_DEMAND",
                          "scalingConfig": {"minSize": min_size, "maxSize": max_size, "desiredSize": min_size},
                          "tags": tags or {}})


def one_zone_cluster():
    sn = [res(SUBNET, f"private-{i}", {"availabilityZone": "us-east-1a"}) for i in range(2)]
    return [*sn, res("aws:eks/cluster:Cluster", "eks", {"vpcConfig": {"subnetIds": ["s0", "s1"]}}, deps=sn)]


def public_alb():
    return [res("aws:lb/loadBalancer:LoadBalancer", "alb", {"loadBalancerType": "application", "internal": False})]


# rule, resources, fact path, value under which the rule fires, value under which it passes
CASES = [
    ("accelerator-scale-to-zero-in-prototype", lambda: [node_group(min_size=1)], "acceleratorsScaleToZero",
     True, False),
    ("bedrock-commitment-outside-scale", lambda: [res(PT, "pt", {"modelUnits": 1, "modelArn": "m"})],
     "bedrock.provisionedThroughput", False, True),
    ("bedrock-commitment-outside-scale",
     lambda: [res(PT, "pt", {"modelUnits": 1, "modelArn": "m", "commitmentDuration": "SixMonths"})],
     "bedrock.commitment", False, True),
    ("on-demand-h100-max-size-cap", lambda: [node_group("h100", "p5.48xlarge", max_size=3)],
     "caps.onDemandH100Nodes", 2, 3),
    ("warm-pool-within-tier",
     lambda: [res("aws:autoscaling/group:Group", "asg", {"warmPool": {"minSize": 3}})], "caps.warmAccelerators", 2, 3),
    ("eks-multi-az", one_zone_cluster, "multiAz.cluster", True, False),
    ("cache-multi-az", lambda: [res(RG, "c", {"numCacheClusters": 1})], "multiAz.cacheReplica", True, False),
    ("cache-automatic-failover", lambda: [res(RG, "c", {"numCacheClusters": 2})], "multiAz.cacheAutoFailover",
     True, False),
    ("alb-waf-on-public", public_alb, "publicAlbWaf", True, False),
]


@pytest.mark.parametrize("rule,resources,path,fires,passes", CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES])
def test_a_rule_follows_its_tier_fact_in_a_tier_of_any_name(rule, resources, path, fires, passes):
    if path == "bedrock.commitment":  # a commitment needs the right to buy throughput at all
        base = with_fact("bedrock.provisionedThroughput", True)
    else:
        base = growth_facts()

    def messages(value):
        doc = copy.deepcopy(base)
        *parents, leaf = path.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[leaf] = value
        return found(evaluate(resources(), config=pack_config("enterprise", facts=doc)), rule)

    assert messages(fires), f"{rule} should fire with {path}={fires!r}"
    assert messages(passes) == []


def test_messages_name_the_tier_of_the_config():
    doc = with_fact("bedrock.provisionedThroughput", False)
    report = evaluate([res(PT, "pt", {"modelUnits": 2, "modelArn": "m"})], config=pack_config("enterprise", facts=doc))
    assert found(report, "bedrock-commitment-outside-scale") == [
        "2 model unit(s) of provisioned throughput in the enterprise tier, billed every hour it exists"]


def test_cost_enforcement_fact_sets_the_level_of_cost_findings():
    ng = [node_group("h100", "p5.48xlarge", max_size=3)]
    for level in ("advisory", "mandatory"):
        report = evaluate(ng, config=pack_config("enterprise", facts=with_fact("policy.costEnforcement", level)))
        assert {v.level for v in report.by_policy("on-demand-h100-max-size-cap")} == {level}


def test_scale_to_zero_stays_mandatory_where_the_tier_asks_for_it():
    doc = with_fact("acceleratorsScaleToZero", True)
    doc["policy"]["costEnforcement"] = "advisory"
    report = evaluate([node_group(min_size=1)], config=pack_config("lean", facts=doc))
    assert {v.level for v in report.by_policy("accelerator-scale-to-zero-in-prototype")} == {"mandatory"}


class TestTierFromTags:
    """No tier configured (`pulumi preview --policy-pack policies` without a config file)."""

    def test_the_pack_knows_the_tiers_it_ships_configs_for(self):
        assert set(shipped_tiers()) >= {"prototype", "growth", "scale"}

    def test_a_shipped_tier_named_by_a_tag_takes_its_facts(self):
        warm = node_group(min_size=1, tags={"tier": "prototype"})
        assert found(run([warm], tier=None), "accelerator-scale-to-zero-in-prototype") == [
            "a10g: g5.xlarge node group has minSize 1, desiredSize 1: accelerators bill while idle"]
        warm_growth = node_group(min_size=1, tags={"tier": "growth"})
        assert found(run([warm_growth], tier=None), "accelerator-scale-to-zero-in-prototype") == []

    def test_caps_of_the_tagged_tier(self):
        h100 = lambda tier: node_group("h100", "p5.48xlarge", max_size=3, tags={"tier": tier})  # noqa: E731
        assert found(run([h100("growth")], tier=None), "on-demand-h100-max-size-cap") == [
            "h100: on-demand p5.48xlarge node group maxSize 3 exceeds the growth tier cap of 2"]
        assert found(run([h100("scale")], tier=None), "on-demand-h100-max-size-cap") == []

    def test_a_value_naming_no_known_tier_is_not_a_tier_and_the_strict_defaults_hold(self):
        # a `tier: frontend` label, or a tier whose config the pack does not ship
        h100 = node_group("h100", "p5.48xlarge", max_size=1, tags={"tier": "frontend"})
        assert found(run([h100], tier=None), "on-demand-h100-max-size-cap") == [
            "h100: on-demand p5.48xlarge node group maxSize 1 exceeds the default tier cap of 0"]

    def test_no_tier_at_all_means_the_strict_defaults(self):
        report = run([node_group(min_size=1), res(RG, "c", {"numCacheClusters": 1}), *public_alb()], tier=None)
        assert found(report, "accelerator-scale-to-zero-in-prototype")
        assert found(report, "cache-multi-az") and found(report, "cache-automatic-failover")
        assert found(report, "alb-waf-on-public")
        assert report.not_applicable == {}

    def test_a_configured_value_that_differs_from_the_default_wins_over_the_tagged_tier(self):
        h100 = node_group("h100", "p5.48xlarge", max_size=6, tags={"tier": "prototype"})
        over = {"on-demand-h100-max-size-cap": {"maxNodes": 8}}
        assert found(run([h100], tier=None, overrides=over), "on-demand-h100-max-size-cap") == []
        assert found(run([h100], tier=None), "on-demand-h100-max-size-cap") == [
            "h100: on-demand p5.48xlarge node group maxSize 6 exceeds the prototype tier cap of 1"]

    def test_tags_and_kubernetes_labels_name_the_tier(self):
        assert tier_of_props({"tags": {"tier": "growth"}}) == "growth"
        assert tier_of_props({"metadata": {"labels": {"genai-scale/tier": "scale"}}}) == "scale"
        assert tier_of_props({"spec": {"template": {"metadata": {"labels": {"tier": "prototype"}}}}}) == "prototype"
        assert tier_of_props({"metadata": {"labels": {"tier": "frontend"}}}) is None
