"""nodeProvisioner: karpenter in the program: the example stack plans NodePools and EC2NodeClasses for inf2, g5/g6e
and p5 that validate against the vendored CRDs and pass the policy pack; the shipped tiers stay on managed node
groups; the config rules report key path, value and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, load
from infra.plan import jsonable
from infra.program import plan_stack
from infra.tiers import pack_config_for
from policies.engine import evaluate
from tests.infra.test_upstream_truth import cr_errors

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "stacks" / "examples" / "Pulumi.karpenter.yaml"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


@pytest.fixture(scope="module")
def example():
    return plan_stack(config_file=str(EXAMPLE))


def test_example_plans_node_pools_for_inf2_g5_g6e_and_p5(example):
    plan, cfg = example
    assert cfg.node_provisioner == "karpenter"
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.by_type(NODEPOOL)}
    types = {t for spec in pools.values() for req in spec["template"]["spec"]["requirements"]
             if req["key"] == "node.kubernetes.io/instance-type" for t in req["values"]}
    families = {t.split(".")[0] for t in types}
    assert {"inf2", "g5", "g6e", "p5"} <= families
    assert sorted(r.name for r in plan.by_type(NODECLASS)) == ["node-pools-neuron", "node-pools-nvidia",
                                                                "node-pools-nvidia-efa"]
    # no GPU managed node groups and no cluster autoscaler: the system group only
    assert [r.name for r in plan.by_type("aws:eks/nodeGroup:NodeGroup")] == ["eks-system"]
    releases = {r.name for r in plan.by_type("kubernetes:helm.sh/v3:Release")}
    assert "cluster-autoscaler" not in releases and {"karpenter", "karpenter-crd"} <= releases
    assert not [r for r in plan.resources if "termination-handler" in r.name]


def test_example_custom_resources_validate_against_the_vendored_crds(example):
    plan, _ = example
    crs = plan.by_type(NODEPOOL) + plan.by_type(NODECLASS)
    assert [e for r in crs for e in cr_errors(r.name, r.type, jsonable(r.inputs, reveal_secrets=True))] == []


def test_example_serving_lands_on_the_pools(example):
    plan, _ = example
    pools = {r.inputs["metadata"]["name"] for r in plan.by_type(NODEPOOL)}
    selected = {d.inputs["spec"]["template"]["spec"].get("nodeSelector", {}).get("genai-scale/node-group")
                for d in plan.by_type("kubernetes:apps/v1:Deployment")} - {None, "system"}
    assert selected and selected <= pools


def test_example_passes_the_policy_pack(example):
    plan, cfg = example
    report = evaluate(plan.resources, config=pack_config_for(cfg.tier))
    assert [(v.policy, v.message) for v in report.violations] == []


def test_insecure_node_class_mutations_are_caught(example):
    """Karpenter launches the nodes from the EC2NodeClass: IMDSv1 or an unencrypted volume there fails the pack as it
    would on a launch template."""
    from tests.policies.kit import mutated

    plan, cfg = example

    def weaken(inputs):
        inputs["spec"]["metadataOptions"]["httpTokens"] = "optional"
        inputs["spec"]["blockDeviceMappings"][0]["ebs"]["encrypted"] = False
    bad = mutated(plan.resources, "node-pools-nvidia-efa", weaken, type_=NODECLASS)
    report = evaluate(bad, config=pack_config_for(cfg.tier))
    assert sorted((v.policy, v.resource_name) for v in report.violations) == [
        ("ebs-encrypted", "node-pools-nvidia-efa"), ("imdsv2-required", "node-pools-nvidia-efa")]


def test_every_tier_defaults_to_managed_node_groups():
    for stack in ("dev", "staging", "prod"):
        _, _, cfg = load(stack=stack)
        assert cfg.node_provisioner == "managed-node-groups"


def _error(tmp_path, extra: dict) -> str:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["config"].update(extra)
    p = tmp_path / "Pulumi.k.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as exc:
        load(config_file=p)
    return str(exc.value)


def test_min_size_with_karpenter_is_reported(tmp_path):
    text = _error(tmp_path, {"genai-scale:nodeGroups": {"a10g": {"minSize": 1}, "h100": {"instanceType": "p5.48xlarge",
                                                                                         "minSize": 0}}})
    assert ("genai-scale:nodeGroups.a10g.minSize = 1: 0 with nodeProvisioner karpenter (a NodePool keeps no minimum: "
            "Karpenter starts nodes for pending pods)") in text


def test_unknown_provisioner_is_reported(tmp_path):
    text = _error(tmp_path, {"genai-scale:nodeProvisioner": "auto-mode"})
    assert "genai-scale:nodeProvisioner = 'auto-mode'" in text
    assert "'managed-node-groups' or 'karpenter'" in text


def test_on_karpenter_serving_pods_are_not_disrupted_and_elsewhere_they_carry_no_annotation(example):
    result, _ = example
    vllm = [d for d in result.by_type("kubernetes:apps/v1:Deployment")
            if d.get("spec.template.metadata.labels", {}).get("app.kubernetes.io/name") == "vllm"]
    assert vllm
    for d in vllm:
        pod = d.get("spec.template")
        assert pod["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true", d.name
        assert pod["spec"]["terminationGracePeriodSeconds"] <= 3600  # within the NodePools' terminationGracePeriod
    from tests.stack_plans import planned

    dev, _ = planned("dev")
    assert not [d for d in dev.by_type("kubernetes:apps/v1:Deployment")
                if "karpenter.sh/do-not-disrupt" in (d.get("spec.template.metadata.annotations") or {})]


def test_nodes_find_subnets_and_the_security_group_by_the_discovery_tag(example):
    plan, _ = example
    cluster = plan.one("aws:eks/cluster:Cluster", "eks").inputs["name"]
    for r in plan.by_type(NODECLASS):
        spec = r.inputs["spec"]
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [
            {"tags": {"karpenter.sh/discovery": cluster}}]
    private = [s for s in plan.by_type("aws:ec2/subnet:Subnet") if "-private-" in s.name]
    assert private and all(s.inputs["tags"]["karpenter.sh/discovery"] == cluster for s in private)
    assert all("karpenter.sh/discovery" not in s.inputs["tags"] for s in plan.by_type("aws:ec2/subnet:Subnet")
               if "-public-" in s.name)
    (tag,) = plan.by_type("aws:ec2/tag:Tag")
    assert (tag.inputs["key"], tag.inputs["value"]) == ("karpenter.sh/discovery", cluster)


def test_efa_pools_get_their_own_node_class_a_placement_group_and_one_zone(example):
    plan, cfg = example
    (pg,) = plan.by_type("aws:ec2/placementGroup:PlacementGroup")
    assert pg.inputs["strategy"] == "cluster"
    classes = {r.name: r.inputs["spec"] for r in plan.by_type(NODECLASS)}
    assert classes["node-pools-nvidia-efa"]["placementGroupSelector"]["name"].startswith("karpenter-efa")
    assert all("placementGroupSelector" not in c for n, c in classes.items() if not n.endswith("-efa"))
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.by_type(NODEPOOL)}
    for name, ng in cfg.node_groups.items():
        zones = [q for q in pools[name]["template"]["spec"]["requirements"] if q["key"] == "topology.kubernetes.io/zone"]
        assert (len(zones) == 1 and len(zones[0]["values"]) == 1) if ng.efa else not zones
        cls = pools[name]["template"]["spec"]["nodeClassRef"]["name"]
        assert cls.endswith("-efa") == ng.efa
