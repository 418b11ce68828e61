"""GpuNodeGroup under mocks: exact children and key inputs; every validation rule's message."""

import pytest

from components.errors import ArgsError
from components.foundation.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from infra.plan import run_program

WIRING = dict(cluster_name="prod-eks", node_role_arn="arn:aws:iam::123456789012:role/node",
              subnet_ids=["subnet-a", "subnet-b", "subnet-c"])


def plan(**kw):
    args = GpuNodeGroupArgs(**{**WIRING, **kw})
    return run_program(lambda: GpuNodeGroup("gpu", args))


def test_a10g_group_children_and_inputs():
    r = plan(instance_type="g5.2xlarge", max_size=4, capacity_type="SPOT", disk_size_gib=250, tags={"team": "t"})
    assert r.one("genai-scale:index:GpuNodeGroup").name == "gpu"
    ng = r.one("aws:eks/nodeGroup:NodeGroup", "gpu")
    assert ng.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert ng.inputs["capacityType"] == "SPOT"
    assert ng.inputs["instanceTypes"] == ["g5.2xlarge"]
    assert ng.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 0}
    assert ng.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert ng.inputs["labels"]["genai-scale/node-group"] == "gpu"
    assert ng.inputs["subnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert ng.inputs["nodeRepairConfig"] == {"enabled": True}
    assert "scalingConfig.desiredSize" in ng.ignore_changes  # the autoscaler owns desiredSize after creation
    assert ng.inputs["tags"]["team"] == "t"
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-lt")
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    assert lt.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    ebs = lt.inputs["blockDeviceMappings"][0]["ebs"]
    assert ebs["encrypted"] == "true" and ebs["volumeSize"] == 250 and ebs["volumeType"] == "gp3"
    assert ng.inputs["launchTemplate"]["id"] == lt.outputs["id"]
    assert r.by_type("aws:ec2/placementGroup:PlacementGroup") == []


def test_asg_tags_target_the_node_groups_asg_and_do_not_propagate():
    r = plan(instance_type="g5.2xlarge")
    ng = r.one("aws:eks/nodeGroup:NodeGroup")
    asg = ng.outputs["resources"][0]["autoscalingGroups"][0]["name"]
    tags = r.by_type("aws:autoscaling/tag:Tag")
    assert tags and all(t.inputs["autoscalingGroupName"] == asg for t in tags)
    assert all(t.inputs["tag"]["propagateAtLaunch"] is False for t in tags)
    by_key = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in tags}
    assert by_key["k8s.io/cluster-autoscaler/prod-eks"] == "owned"
    assert by_key["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert by_key["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"
    assert by_key["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert all(t.parent == r.one("genai-scale:index:GpuNodeGroup").urn for t in tags)


def test_inferentia_group_uses_neuron_ami_and_taint():
    r = plan(instance_type="inf2.48xlarge")
    ng = r.one("aws:eks/nodeGroup:NodeGroup")
    assert ng.inputs["amiType"] == "AL2023_x86_64_NEURON"
    assert ng.inputs["taints"][0]["key"] == "aws.amazon.com/neuron"
    keys = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in r.by_type("aws:autoscaling/tag:Tag")}
    assert keys["k8s.io/cluster-autoscaler/node-template/resources/aws.amazon.com/neuroncore"] == "24"


def test_efa_and_capacity_block():
    r = plan(instance_type="p5.48xlarge", efa=True, node_security_group_ids=["sg-node"], vpc_id="vpc-1",
             capacity_type="CAPACITY_BLOCK", capacity_reservation_id="cr-0123456789abcdef0")
    ng = r.one("aws:eks/nodeGroup:NodeGroup")
    assert ng.inputs["capacityType"] == "CAPACITY_BLOCK"
    assert "instanceTypes" not in ng.inputs  # capacity blocks take the type from the launch template
    assert ng.inputs["subnetIds"] == ["subnet-a"]  # one AZ
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["instanceType"] == "p5.48xlarge"
    assert lt.inputs["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert lt.inputs["capacityReservationSpecification"]["capacityReservationTarget"]["capacityReservationId"] \
        == "cr-0123456789abcdef0"
    nics = lt.inputs["networkInterfaces"]
    assert len(nics) == 32 and nics[0]["interfaceType"] == "efa"
    efa_sg = r.one("aws:ec2/securityGroup:SecurityGroup", "gpu-efa")
    assert nics[0]["securityGroups"] == ["sg-node", efa_sg.outputs["id"]]
    assert efa_sg.inputs["ingress"][0]["self"] is True and efa_sg.inputs["egress"][0]["self"] is True
    pg = r.one("aws:ec2/placementGroup:PlacementGroup", "gpu-pg")
    assert pg.inputs["strategy"] == "cluster" and lt.inputs["placement"]["groupName"] == pg.outputs["name"]


def test_custom_instance_type_with_facts():
    r = plan(instance_type="g7e.2xlarge",
             accelerator={"vendor": "nvidia", "accelerator": "RTXPRO6000", "count": 1, "memory_gib": 96})
    assert r.one("aws:eks/nodeGroup:NodeGroup").inputs["amiType"] == "AL2023_x86_64_NVIDIA"


@pytest.mark.parametrize("kw, fragment", [
    (dict(instance_type="g5.xlarg"), 'instance_type = \'g5.xlarg\': not in the accelerator catalogue (did you mean "g5.xlarge"?)'),
    (dict(instance_type="g5.xlarge", min_size=3, max_size=2), "min_size = 3: must be <= max_size (2)"),
    (dict(instance_type="g5.xlarge", desired_size=5), "desired_size = 5: must be between min_size (0) and max_size (2)"),
    (dict(instance_type="p5.48xlarge", capacity_type="CAPACITY_BLOCK"),
     "capacity_reservation_id: required when capacity_type is CAPACITY_BLOCK"),
    (dict(instance_type="p5.48xlarge", capacity_reservation_id="cr-0123456789abcdef0"),
     "only used with capacity_type CAPACITY_BLOCK"),
    (dict(instance_type="g5.xlarge", efa=True), "efa = True: g5.xlarge does not support EFA"),
    (dict(instance_type="p5.48xlarge", efa=True), "node_security_group_ids: required when efa is on"),
    (dict(instance_type="g5.xlarge", mig_config="all-1g.10gb"), "A10G GPUs do not support MIG"),
    (dict(instance_type="inf2.xlarge", time_slicing_replicas=4), "time-slicing applies to NVIDIA GPUs only"),
    (dict(instance_type="p5.48xlarge", mig_config="all-1g.10gb", time_slicing_replicas=2),
     "choose MIG or time-slicing, not both"),
    (dict(instance_type="g5.xlarge", disk_size_gib=5), "disk_size_gib = 5: expected a number >= 20"),
    (dict(instance_type="g5.xlarge", capacity_type="RESERVED"), "capacity_type = 'RESERVED': expected one of"),
    (dict(instance_type="g5.xlarge", imds_hop_limit=3), "imds_hop_limit = 3: expected a number <= 2"),
    (dict(instance_type="g5.xlarge", max_sise=3), 'max_sise: unknown key (did you mean "max_size"?)'),
])
def test_validation_messages(kw, fragment):
    with pytest.raises(ArgsError) as exc:
        GpuNodeGroupArgs(**{**WIRING, **kw})
    assert fragment in str(exc.value)
    assert str(exc.value).startswith("invalid GpuNodeGroupArgs:")


def test_all_cross_field_problems_reported_together():
    with pytest.raises(ArgsError) as exc:
        GpuNodeGroupArgs(**WIRING, instance_type="g5.xlarge", min_size=3, max_size=2, efa=True,
                         capacity_type="CAPACITY_BLOCK")
    assert len(exc.value.problems) == 5
    assert "5 problems" in str(exc.value)


def test_args_errors_print_cleanly_under_the_pulumi_engine():
    import pulumi

    with pytest.raises(pulumi.RunError):  # the engine prints RunError messages without a traceback
        GpuNodeGroupArgs(**WIRING, instance_type="g5.xlarge", min_size=3, max_size=2)
    with pytest.raises(ValueError):
        GpuNodeGroupArgs(**WIRING, instance_type="g5.xlarge", min_size=3, max_size=2)


def test_field_errors_do_not_hide_cross_field_rules():
    with pytest.raises(ArgsError) as exc:
        GpuNodeGroupArgs(**WIRING, instance_type="g5.xlarge", min_size=3, max_size=2, disk_size_gib=5, bogus=1)
    text = str(exc.value)
    assert "disk_size_gib = 5: expected a number >= 20" in text
    assert "bogus: unknown key" in text
    assert "min_size = 3: must be <= max_size (2)" in text  # checked although other fields were bad
    assert len(exc.value.problems) == 3


def test_rules_about_a_bad_field_are_not_reported_twice():
    with pytest.raises(ArgsError) as exc:
        GpuNodeGroupArgs(**WIRING, instance_type="g5.xlarge", min_size=3, max_size="lots")
    assert [p.path for p in exc.value.problems] == ["max_size"]  # no "min_size <= max_size (default 2)"
