"""Each stack plans offline; each tier has the shape its preset promises; `pulumi up` runs the same program."""

import json

import pulumi
import pytest

from infra import program
from infra.config import ConfigError, read_stack_file, stack_file
from infra.plan import run_program
from tests.stack_plans import planned

def plan(stack):
    return planned(stack)


def accel_groups(result):
    return [r for r in result.by_type("aws:eks/nodeGroup:NodeGroup") if r.name != "eks-system"]


def test_prototype_scales_every_accelerator_group_to_zero():
    result, cfg = plan("dev")
    groups = accel_groups(result)
    assert groups and all(g.inputs["scalingConfig"]["minSize"] == 0 for g in groups)
    assert len(result.by_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len([s for s in result.by_type("aws:ec2/subnet:Subnet") if "private" in s.name]) in (1, 2)
    assert {g.inputs["capacityType"] for g in groups} == {"SPOT"}
    assert cfg.targets.p95_latency_ms == 8000


def test_growth_has_three_azs_and_a_warm_on_demand_minimum():
    result, _ = plan("staging")
    assert len([s for s in result.by_type("aws:ec2/subnet:Subnet") if "private" in s.name]) == 3
    groups = {g.name: g for g in accel_groups(result)}
    assert groups["a10g"].inputs["capacityType"] == "ON_DEMAND"
    assert groups["a10g"].inputs["scalingConfig"]["minSize"] >= 1


def test_scale_has_all_three_accelerator_families_and_nat_per_az():
    result, _ = plan("prod")
    groups = {g.name: g for g in accel_groups(result)}
    types = {g.inputs.get("instanceTypes", [None])[0] for g in groups.values()}
    assert any(t.startswith("inf2.") for t in types)
    assert any(t.startswith("g5.") for t in types)
    assert "p5.48xlarge" in types
    assert groups["h100"].inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert groups["inf2"].inputs["amiType"] == "AL2023_x86_64_NEURON"
    assert len(result.by_type("aws:ec2/natGateway:NatGateway")) == 3
    assert result.one("aws:ec2/placementGroup:PlacementGroup", "h100-pg")
    charts = {r.inputs["chart"] for r in result.by_type("kubernetes:helm.sh/v3:Release")}
    assert {"gpu-operator", "cluster-autoscaler", "oci://public.ecr.aws/neuron/neuron-helm-chart"} <= charts


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_taggable_aws_resource_carries_cost_tags(stack):
    result, cfg = plan(stack)
    untagged = [r.name for r in result.resources if r.type.startswith("aws:") and "tags" in r.inputs
                and not {"team", "environment", "tier"} <= set(r.inputs["tags"] or {})]
    assert untagged == []
    cluster = result.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["tags"]["tier"] == cfg.tier and cluster.inputs["tags"]["environment"] == stack


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_kubernetes_children_use_the_cluster_provider(stack):
    result, _ = plan(stack)
    provider = result.one("pulumi:providers:kubernetes")
    k8s = [r for r in result.resources if r.type.startswith("kubernetes:") and r.custom]
    assert k8s and all(r.provider and r.provider.startswith(provider.urn) for r in k8s)


def test_scale_from_zero_tags_for_every_accelerator_group():
    result, _ = plan("prod")
    tags = result.by_type("aws:autoscaling/tag:Tag")
    for g in accel_groups(result):
        asg = g.outputs["resources"][0]["autoscalingGroups"][0]["name"]
        keys = {t.inputs["tag"]["key"] for t in tags if t.inputs["autoscalingGroupName"] == asg}
        assert "k8s.io/cluster-autoscaler/enabled" in keys and "k8s.io/cluster-autoscaler/prod-eks" in keys
        assert any("/node-template/resources/" in k for k in keys)
        assert any("/node-template/taint/" in k for k in keys)


def test_pulumi_up_path_builds_the_same_resources_as_the_plan():
    """infra/__main__.py reads config from the engine; under the same config it registers the same resources."""
    planned, _ = plan("staging")
    raw = read_stack_file(stack_file("staging"))
    engine = run_program(program.main, stack="staging", config=raw)
    assert [(r.type, r.name) for r in engine.resources] == [(r.type, r.name) for r in planned.resources]


def test_pulumi_up_path_reports_bad_config_as_a_clean_run_error():
    raw = {"aws:region": "us-east-1", "genai-scale:tier": "scale",
           "genai-scale:nodeGroups": {"h100": {"minSize": 5, "maxSize": 1}}}
    with pytest.raises(pulumi.RunError) as exc:
        run_program(program.main, stack="prod", config=raw)
    assert "stacks/Pulumi.prod.yaml: invalid configuration" in str(exc.value)
    assert "genai-scale:nodeGroups.h100.minSize = 5: must be <= maxSize (1)" in str(exc.value)


def test_nothing_is_created_when_config_is_bad(tmp_path):
    p = tmp_path / "Pulumi.x.yaml"
    p.write_text(json.dumps({"config": {"genai-scale:tier": "scale", "genai-scale:network": {"azCount": 0}}}))
    with pytest.raises(ConfigError):
        program.plan_stack(config_file=str(p))


# dev: 36 since it ships without a certificate (no ALB, so not its two aliased client ingress rules); plus the
# autoscaler tags of the batch node groups (12 or 13 per group: GpuNodeGroup aliases every tag to its positional name)
# the managed batch backends' policy attachments on the gateway's IRSA role (batch-bedrock everywhere, batch-dispatch in
# staging) and the RAG ingestion's (rag-ingestion, every stack) get the positional alias irsa_role gives every keyed
# attachment (a name no live stack had: harmless); staging and prod: the model pool's l40s node group's 11 autoscaler
# tags (new, so their positional aliases name nothing live either); prod: the multi-node h100 group's 12 (new too);
# staging and prod: the shared compile cache's EFS CSI role attachment (irsa_role's positional alias, new too)
@pytest.mark.parametrize("stack, count", [("dev", 50), ("staging", 83), ("prod", 136)])
def test_children_once_named_by_position_carry_their_old_name(stack, count):
    """Key-derived child names (issue 12) alias the positional names live stacks have, so `pulumi up` updates them in
    place: autoscaler tags, subnets, route tables and associations, NAT gateways and EIPs, SG rules, attachments."""
    import re

    plan, _ = planned(stack)
    renamed = [r for r in plan.resources if r.alias_names()]
    assert len(renamed) == count
    for r in renamed:
        olds = r.alias_names()
        assert r.name not in olds and all(re.search(r"-\d+$", o) for o in olds), (r.name, olds)
    tags = [r for r in plan.resources if r.type == "aws:autoscaling/tag:Tag"]
    assert tags and all(r.alias_names() for r in tags)  # every autoscaler tag was named by position
