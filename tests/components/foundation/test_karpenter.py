"""Karpenter and KarpenterNodePools: CRD validity, the upstream IAM policy, the build under mocks, every message."""

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from components import versions
from components.errors import ArgsError
from components.foundation.gpu_node_group import GpuNodeGroupArgs, NodeTaint
from components.foundation.karpenter import (EVENT_RULES, Karpenter, KarpenterArgs, controller_policy, queue_policy,
                                             render_values)
from components.foundation.node_pools import (DO_NOT_DISRUPT, KarpenterNodePools, KarpenterNodePoolsArgs,
                                              NodePoolSpec, render_node_class, render_node_pool, seconds,
                                              serving_pod_disruption)
from infra.plan import jsonable, run_program
from tests.infra.test_upstream_truth import _in_defaults, cr_errors, leaf_paths

UPSTREAM = Path(__file__).resolve().parents[2] / "upstream" / "karpenter"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
CR = "cr-0123456789abcdef0"

POOLS = {
    "inf2": NodePoolSpec(instance_types=["inf2.xlarge", "inf2.8xlarge"], max_nodes=4),
    "l40s": NodePoolSpec(instance_types=["g6e.xlarge", "g6e.2xlarge"], capacity_types=["spot", "on-demand"],
                         extra_taints=[NodeTaint(key="example.com/team", value="ml")]),
    "h100": NodePoolSpec(instance_types=["p5.48xlarge"], capacity_types=["reserved", "on-demand"],
                         capacity_reservation_ids=[CR], efa=True, disk_size_gib=1000),
}


def _messages(fn):
    with pytest.raises(ArgsError) as err:
        fn()
    return [(p.path, p.expected) for p in err.value.problems]


# --- rendering against the vendored CRDs ------------------------------------------------------------------------------

@pytest.mark.parametrize("pool", sorted(POOLS))
def test_rendered_node_pool_validates_against_the_vendored_crd(pool):
    body = render_node_pool(pool, POOLS[pool], "pools-nvidia")
    assert cr_errors(pool, NODEPOOL, body) == []


def test_rendered_node_class_validates_against_the_vendored_crd():
    for kw in ({}, {"subnet_ids": ["subnet-1", "subnet-2"], "security_group_ids": ["sg-1"],
                    "capacity_reservation_ids": [CR], "kms_key_arn": "arn:aws:kms:us-east-1:1:key/k"}):
        body = render_node_class("pools-nvidia", role="node-role", cluster_name="c", **kw)
        assert cr_errors("pools-nvidia", NODECLASS, body) == []


def test_a_field_the_crd_does_not_know_is_caught():
    body = render_node_pool("inf2", POOLS["inf2"], "x")
    body["spec"]["disruption"]["consolidateAfterSeconds"] = 600
    assert any("'consolidateAfterSeconds' was unexpected" in e for e in cr_errors("inf2", NODEPOOL, body))


def test_node_pool_for_inference():
    spec = render_node_pool("h100", POOLS["h100"], "pools-nvidia")["spec"]
    tmpl = spec["template"]["spec"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["reserved", "on-demand"]} in \
        tmpl["requirements"]
    assert {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["p5.48xlarge"]} in \
        tmpl["requirements"]
    assert tmpl["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert spec["template"]["metadata"]["labels"]["genai-scale/node-group"] == "h100"
    assert spec["template"]["metadata"]["labels"]["vpc.amazonaws.com/efa.present"] == "true"
    assert spec["limits"] == {"nvidia.com/gpu": "16", "cpu": "384"}  # 2 x p5.48xlarge: 8 GPUs, 192 vCPUs
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m", "budgets": [
        {"nodes": "1"}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 8 * * mon-fri", "duration": "10h"}]}
    assert tmpl["terminationGracePeriod"] == "1h" and tmpl["expireAfter"] == "720h"
    neuron = render_node_pool("inf2", POOLS["inf2"], "pools-neuron")["spec"]
    # 4 nodes x the largest type (inf2.8xlarge: 1 device, 32 vCPUs)
    assert neuron["limits"] == {"aws.amazon.com/neuron": "4", "cpu": "128"}
    assert neuron["template"]["spec"]["taints"][0]["key"] == "aws.amazon.com/neuron"
    assert len(render_node_pool("l40s", POOLS["l40s"], "x")["spec"]["template"]["spec"]["taints"]) == 2
    no_freeze = NodePoolSpec(instance_types=["g5.xlarge"], freeze_schedule=None)
    assert render_node_pool("a", no_freeze, "x")["spec"]["disruption"]["budgets"] == [{"nodes": "1"}]


def test_node_class_selects_accelerated_ami_imdsv2_encrypted_volumes():
    spec = render_node_class("n", role="r", cluster_name="c", capacity_reservation_ids=[CR])["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert spec["metadataOptions"]["httpTokens"] == "required" and spec["metadataOptions"][
        "httpPutResponseHopLimit"] == 1
    assert spec["blockDeviceMappings"][0]["ebs"]["encrypted"] is True
    assert spec["blockDeviceMappings"][0]["ebs"]["volumeType"] == "gp3"
    assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [
        {"tags": {"karpenter.sh/discovery": "c"}}]
    assert spec["capacityReservationSelectorTerms"] == [{"id": CR}]
    assert "capacityReservationSelectorTerms" not in render_node_class("n", role="r", cluster_name="c")["spec"]


def test_from_node_group_keeps_the_group_config():
    ng = GpuNodeGroupArgs(cluster_name="c", node_role_arn="r", subnet_ids=["s"], instance_type="p5.48xlarge",
                          capacity_type="CAPACITY_BLOCK", capacity_reservation_id=CR, max_size=3, disk_size_gib=900,
                          extra_labels={"team": "ml"})
    spec = NodePoolSpec.from_node_group(ng)
    assert (spec.instance_types, spec.capacity_types, spec.capacity_reservation_ids) == (
        ["p5.48xlarge"], ["reserved"], [CR])
    assert (spec.max_nodes, spec.disk_size_gib, spec.extra_labels) == (3, 900, {"team": "ml"})
    spot = GpuNodeGroupArgs(cluster_name="c", node_role_arn="r", subnet_ids=["s"], instance_type="g5.xlarge",
                            capacity_type="SPOT")
    assert NodePoolSpec.from_node_group(spot, consolidate_after="5m").capacity_types == ["spot"]


def test_serving_pod_disruption_helper():
    assert serving_pod_disruption(600, POOLS["h100"]) == {
        "annotations": {DO_NOT_DISRUPT: "true"}, "terminationGracePeriodSeconds": 600}
    assert seconds("1h30m") == 5400
    with pytest.raises(ValueError) as err:
        serving_pod_disruption(7200, POOLS["h100"])
    assert str(err.value) == ("termination_grace_seconds = 7200: must be <= the NodePool's terminationGracePeriod 1h "
                              "(3600 s)")
    with pytest.raises(ValueError) as err:
        serving_pod_disruption(0)
    assert str(err.value) == "termination_grace_seconds = 0: must be >= 1"


# --- every validation message -----------------------------------------------------------------------------------------

def _pools(**spec):
    return lambda: KarpenterNodePoolsArgs(cluster_name="c", node_role_name="r", pools={"p": NodePoolSpec(**spec)})


@pytest.mark.parametrize("spec, expected", [
    ({"instance_types": ["g5.xlarge", "inf2.xlarge"]},
     [("pools.p.instance_types", "instance types of one accelerator vendor (got neuron, nvidia): a pool has one taint "
                                 "and one EC2NodeClass")]),
    ({"instance_types": ["g5.xlarge"], "efa": True},
     [("pools.p.instance_types[0]", "an instance type with EFA (efa is on)")]),
    ({"instance_types": ["g5.xlarge"], "capacity_types": ["reserved"]},
     [("pools.p.capacity_reservation_ids", "required when capacity_types has reserved (the cr-... ids of the "
                                           "on-demand reservations or capacity blocks)")]),
    ({"instance_types": ["g5.xlarge"], "capacity_reservation_ids": [CR]},
     [("pools.p.capacity_reservation_ids", "only used when capacity_types has reserved (got ['on-demand'])")]),
    ({"instance_types": ["g5.xlarge"], "capacity_types": ["reserved"], "capacity_reservation_ids": ["cr-x"]},
     [("pools.p.capacity_reservation_ids[0]", "a capacity reservation id cr-<8-17 hex>")]),
    ({"instance_types": ["g5.xlarge"], "capacity_types": ["spot", "spot"]},
     [("pools.p.capacity_types", "each capacity type once")]),
    ({"instance_types": ["g5.xlarge"], "freeze_schedule": "weekdays"},
     [("pools.p.freeze_schedule", "a cron schedule of five fields (e.g. '0 8 * * mon-fri') or @daily/@weekly/...")]),
    ({"instance_types": ["g5.xlarge"], "consolidation_policy": "Balanced", "consolidate_after": "Never"},
     [("pools.p.consolidate_after", "a duration: consolidation_policy Balanced never runs with Never")]),
    ({"instance_types": ["g5.xlarge"], "extra_taints": [NodeTaint(key="nvidia.com/gpu")]},
     [("pools.p.extra_taints[0].key", "another key: the pool already carries the accelerator's taint of that key")]),
])
def test_pool_rule_messages(spec, expected):
    assert _messages(_pools(**spec)) == expected


def test_unknown_instance_type_and_bad_pool_name():
    found = _messages(lambda: KarpenterNodePoolsArgs(cluster_name="c", node_role_name="r", pools={
        "Big_Pool": NodePoolSpec(instance_types=["g5.xlarge"]), "p": NodePoolSpec(instance_types=["g5.xlarge", "g9"])}))
    assert found[0] == ("pools.Big_Pool", "a pool name of lowercase letters, digits and '-' (a Kubernetes object name "
                                          "and label value), at most 63 characters")
    assert found[1][0] == "pools.p.instance_types[1]"
    assert found[1][1].startswith("an instance type of the accelerator catalogue")


def test_karpenter_args_messages():
    assert _messages(lambda: KarpenterArgs()) == [("cluster_name", "required (or pass cluster=EksCluster)")]
    assert ("node_selector", "a node selector that keeps the controller off the nodes it launches (e.g. "
            "genai-scale/node-group: system)") in _messages(lambda: KarpenterArgs(cluster_name="c", node_selector={}))


# --- upstream IAM policy, queue and rules -----------------------------------------------------------------------------

class _CfnLoader(yaml.SafeLoader):
    pass


for _tag in ("!Sub", "!GetAtt", "!Ref"):
    _CfnLoader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node)
                               if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node))


def _cfn():
    return yaml.load((UPSTREAM / "iam-v1.14.1" / "cloudformation.yaml").read_text(), Loader=_CfnLoader)["Resources"]


def test_controller_policy_is_the_upstream_policy():
    res = _cfn()
    subs = {"${AWS::Partition}": "aws", "${AWS::Region}": "us-east-1", "${AWS::AccountId}": "123456789012",
            "${ClusterName}": "c", "${KarpenterNodeRole.Arn}": "arn:aws:iam::123456789012:role/node",
            "${KarpenterInterruptionQueue.Arn}": "arn:aws:sqs:us-east-1:123456789012:q"}
    upstream = []
    for key in ("NodeLifecyclePolicy", "IAMIntegrationPolicy", "EKSIntegrationPolicy", "InterruptionPolicy",
                "ResourceDiscoveryPolicy"):  # ZonalShiftPolicy serves settings.enableZonalShift (off)
        text = res[key]["Properties"]["PolicyDocument"]
        for a, b in subs.items():
            text = text.replace(a, b)
        upstream += json.loads(text)["Statement"]
    ours = controller_policy(partition="aws", region="us-east-1", account_id="123456789012", cluster_name="c",
                             node_role_arn=subs["${KarpenterNodeRole.Arn}"],
                             queue_arn=subs["${KarpenterInterruptionQueue.Arn}"])
    assert ours["Statement"] == upstream
    assert render_values(KarpenterArgs(cluster_name="c"), cluster_name="c", queue_name="q")["settings"].get(
        "enableZonalShift", False) is False
    assert "ZonalShiftPolicy" in res  # the statement left out is still upstream: re-check when re-vendoring


def test_queue_policy_and_rules_are_the_upstream_ones():
    res = _cfn()
    stmt = queue_policy("arn:q")["Statement"]
    up = res["KarpenterInterruptionQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert stmt[0]["Principal"] == up[0]["Principal"] and stmt[0]["Action"] == up[0]["Action"]
    assert stmt[1]["Effect"] == "Deny" and up[1]["Condition"]["Bool"]["aws:SecureTransport"] is False
    rules = sorted(json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
                   for r in res.values() if r["Type"] == "AWS::Events::Rule")
    assert rules == sorted(json.dumps(p, sort_keys=True) for p in EVENT_RULES.values())


def test_chart_values_exist_in_the_vendored_chart():
    defaults = yaml.safe_load((UPSTREAM / versions.KARPENTER_CHART.version / "values.yaml").read_text())
    values = render_values(KarpenterArgs(cluster_name="c"), cluster_name="c", queue_name="q")
    paths = [p for p in leaf_paths(values) if not p[:1] == ("nodeSelector",) and p[:2] != ("controller", "resources")]
    assert [p for p in paths if not _in_defaults(defaults, p)] == []


# --- the components under mocks ---------------------------------------------------------------------------------------

def _program():
    k = Karpenter("karpenter", KarpenterArgs(cluster_name="c", tags={"team": "ml"}))
    KarpenterNodePools("pools", KarpenterNodePoolsArgs(cluster_name="c", node_role_name=k.node_role_name, pools=POOLS,
                                                       subnet_ids=["subnet-1"], security_group_ids=["sg-1"]),
                       opts=pulumi.ResourceOptions(depends_on=[k]))


@pytest.fixture(scope="module")
def built():
    return run_program(_program)


def test_karpenter_builds(built):
    q = built.one("aws:sqs/queue:Queue", "karpenter-interruptions")
    assert q.inputs["sqsManagedSseEnabled"] is True and q.inputs["messageRetentionSeconds"] == 300
    policy = json.loads(built.one("aws:sqs/queuePolicy:QueuePolicy", "karpenter-interruptions").inputs["policy"])
    assert policy["Statement"][0]["Principal"]["Service"] == ["events.amazonaws.com", "sqs.amazonaws.com"]
    rules = built.by_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules) == [
        "AWS Health Event", "EC2 Capacity Reservation Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation", "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning"]
    assert len(built.by_type("aws:cloudwatch/eventTarget:EventTarget")) == len(EVENT_RULES)
    assert built.one("aws:eks/accessEntry:AccessEntry", "karpenter-node").inputs["type"] == "EC2_LINUX"
    assert built.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-controller").inputs[
        "serviceAccount"] == "karpenter"
    doc = json.loads(built.one("aws:iam/policy:Policy", "karpenter-controller-policy").inputs["policy"])
    assert any(s["Sid"] == "AllowScopedDeletion" for s in doc["Statement"])
    rel = built.one("kubernetes:helm.sh/v3:Release", "karpenter").inputs
    assert rel["chart"] == "oci://public.ecr.aws/karpenter/karpenter" and rel["version"] == "1.14.1"
    assert rel["skipCrds"] is True
    assert rel["values"]["settings"]["clusterName"] == "c"
    assert rel["values"]["settings"]["interruptionQueue"].startswith("karpenter-interruptions")
    crd = built.one("kubernetes:helm.sh/v3:Release", "karpenter-crd").inputs
    assert crd["chart"] == "oci://public.ecr.aws/karpenter/karpenter-crd" and crd["version"] == "1.14.1"
    assert not [r for r in built.resources if "termination-handler" in r.name]


def test_node_pools_build_and_validate(built):
    pools = built.by_type(NODEPOOL)
    classes = built.by_type(NODECLASS)
    assert sorted(p.name for p in pools) == ["pools-h100", "pools-inf2", "pools-l40s"]
    # the EFA pool (h100) gets its own class: the placement group must not confine the other NVIDIA pools
    assert sorted(c.name for c in classes) == ["pools-neuron", "pools-nvidia", "pools-nvidia-efa"]
    for r in pools + classes:
        assert cr_errors(r.name, r.type, jsonable(r.inputs, reveal_secrets=True)) == []
    efa = built.one(NODECLASS, "pools-nvidia-efa").inputs["spec"]
    assert efa["capacityReservationSelectorTerms"] == [{"id": CR}]
    assert efa["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "1000Gi"  # the family's largest pool
    assert efa["subnetSelectorTerms"] == [{"id": "subnet-1"}]
    assert efa["role"].startswith("karpenter-node")
    assert "placementGroupSelector" not in efa  # none given here (the stack gives one: tests/infra)
    assert "capacityReservationSelectorTerms" not in built.one(NODECLASS, "pools-nvidia").inputs["spec"]
    assert "capacityReservationSelectorTerms" not in built.one(NODECLASS, "pools-neuron").inputs["spec"]
    h100 = built.one(NODEPOOL, "pools-h100").inputs
    assert h100["metadata"]["name"] == "h100"
    assert h100["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "pools-nvidia-efa"


def test_node_classes_put_instance_store_in_raid0_where_every_type_has_it():
    from components.foundation.node_pools import NodePoolSpec, all_have_instance_store

    gpu = NodePoolSpec(instance_types=["g5.2xlarge", "g6e.2xlarge"])
    neuron = NodePoolSpec(instance_types=["inf2.8xlarge"])
    assert all_have_instance_store([gpu]) and not all_have_instance_store([neuron])
    assert render_node_class("n", role="r", cluster_name="c", instance_store_raid0=True)["spec"][
        "instanceStorePolicy"] == "RAID0"
    assert "instanceStorePolicy" not in render_node_class("n", role="r", cluster_name="c")["spec"]


def test_an_efa_pool_is_pinned_to_one_zone_and_its_class_selects_the_placement_group():
    from components.foundation.node_pools import NodePoolSpec, family_of, in_zone, render_node_pool

    spec = NodePoolSpec(instance_types=["p5.48xlarge"], efa=True)
    assert family_of(spec) == "nvidia-efa" and family_of(NodePoolSpec(instance_types=["g5.xlarge"])) == "nvidia"
    body = render_node_pool("h100", spec, "pools-nvidia-efa")["spec"]
    pinned = in_zone(body, "us-east-1a")
    assert pinned["template"]["spec"]["requirements"][-1] == {
        "key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}
    assert in_zone(body, None) is body and "topology.kubernetes.io/zone" not in str(body)  # the input is not changed
    assert render_node_class("n", role="r", cluster_name="c", placement_group="pg-a")["spec"][
        "placementGroupSelector"] == {"name": "pg-a"}
    assert "placementGroupSelector" not in render_node_class("n", role="r", cluster_name="c")["spec"]
