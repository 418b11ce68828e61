"""Pure node-group logic: AMI types, taints, labels, autoscaler scale-from-zero tags, volumes, EFA interfaces."""

from components.foundation import _gpu
from components.catalog.accelerators import lookup

A10G, H100, INF2 = lookup("g5.2xlarge"), lookup("p5.48xlarge"), lookup("inf2.24xlarge")


def test_ami_type_follows_the_accelerator():
    assert _gpu.ami_type(A10G) == "AL2023_x86_64_NVIDIA"
    assert _gpu.ami_type(A10G, "bottlerocket") == "BOTTLEROCKET_x86_64_NVIDIA"
    assert _gpu.ami_type(INF2) == "AL2023_x86_64_NEURON"
    assert _gpu.ami_type(INF2, "bottlerocket") == "BOTTLEROCKET_x86_64"


def test_taints_per_vendor_in_both_forms():
    assert _gpu.taints(A10G) == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert _gpu.taints(INF2) == [{"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}]
    assert _gpu.eks_taints(_gpu.taints(INF2)) == [{"key": "aws.amazon.com/neuron", "value": "true",
                                                   "effect": "NO_SCHEDULE"}]


def test_labels_name_the_group_and_accelerator():
    labels = _gpu.labels("a10g", A10G)
    assert labels["genai-scale/node-group"] == "a10g"
    assert labels["genai-scale/accelerator"] == "a10g"
    assert labels["genai-scale/accelerator-count"] == "1"
    assert labels["k8s.amazonaws.com/accelerator"] == "nvidia-a10g"  # CA: no double scale-up before the plugin
    neuron = _gpu.labels("inf2", INF2)
    assert neuron["aws.amazon.com/neuron.present"] == "true" and "k8s.amazonaws.com/accelerator" not in neuron
    assert _gpu.labels("h100", H100, efa=True, mig_config="all-1g.10gb")["nvidia.com/mig.config"] == "all-1g.10gb"


def test_autoscaler_tags_snapshot_and_rules(snapshot):
    labels, taints = _gpu.labels("h100", H100, efa=True), _gpu.taints(H100)
    tags = _gpu.autoscaler_tags("prod-eks", H100, labels, taints, disk_size_gib=1000, efa=True,
                                scale_down_unneeded_time="15m")
    assert tags == snapshot
    tpl = "k8s.io/cluster-autoscaler/node-template"
    assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert tags["k8s.io/cluster-autoscaler/prod-eks"] == "owned"
    assert tags[f"{tpl}/resources/nvidia.com/gpu"] == "8"
    assert tags[f"{tpl}/resources/vpc.amazonaws.com/efa"] == "32"
    assert tags[f"{tpl}/resources/ephemeral-storage"] == "1000Gi"
    assert tags[f"{tpl}/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert tags[f"{tpl}/label/genai-scale/node-group"] == "h100"
    assert tags[f"{tpl}/autoscaling-options/scaledownunneededtime"] == "15m"
    # every label and taint the node will carry is announced, so a pending pod's selectors match at zero nodes
    assert all(tags[f"{tpl}/label/{k}"] == v for k, v in labels.items())


def test_autoscaler_tags_for_neuron_announce_devices_and_cores():
    tags = _gpu.autoscaler_tags("c", INF2, _gpu.labels("inf2", INF2), _gpu.taints(INF2), disk_size_gib=200)
    tpl = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{tpl}/resources/aws.amazon.com/neuron"] == "6"
    assert tags[f"{tpl}/resources/aws.amazon.com/neuroncore"] == "12"
    assert tags[f"{tpl}/taint/aws.amazon.com/neuron"] == "true:NoSchedule"
    assert f"{tpl}/resources/nvidia.com/gpu" not in tags


def test_time_slicing_multiplies_advertised_gpus():
    tags = _gpu.autoscaler_tags("c", A10G, {}, [], disk_size_gib=100, time_slicing_replicas=4)
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"


def test_owner_tag_left_to_caller_when_cluster_name_unknown():
    tags = _gpu.autoscaler_tags(None, A10G, {}, [], disk_size_gib=100)
    assert not any(k.count("/") == 1 and k.endswith("owned") for k in tags)
    assert "k8s.io/cluster-autoscaler/enabled" in tags and len([k for k in tags if "/node-template/" not in k]) == 1


def test_block_devices_are_encrypted_gp3():
    (root,) = _gpu.block_devices("al2023", 300)
    assert root["deviceName"] == "/dev/xvda"
    assert root["ebs"]["encrypted"] == "true" and root["ebs"]["volumeType"] == "gp3" and root["ebs"]["volumeSize"] == 300
    os_vol, data = _gpu.block_devices("bottlerocket", 300, kms_key_arn="arn:k")
    assert data["deviceName"] == "/dev/xvdb" and data["ebs"]["volumeSize"] == 300 and data["ebs"]["kmsKeyId"] == "arn:k"
    assert os_vol["ebs"]["encrypted"] == "true"


def test_efa_interfaces_one_per_card():
    nics = _gpu.efa_interfaces(H100, ["sg-1"])
    assert len(nics) == 32 and all(n["interfaceType"] == "efa" for n in nics)
    assert nics[0]["deviceIndex"] == 0 and nics[1]["deviceIndex"] == 1 and nics[31]["networkCardIndex"] == 31


def test_vendor_specific_labels_and_resources_come_from_the_vendor_registry():
    from components.catalog.vendors import NEURON, NVIDIA

    # MIG and time-slicing only where the vendor's record has them
    assert "nvidia.com/mig.config" not in _gpu.labels("inf2", INF2, mig_config="all-1g.10gb")
    assert _gpu.extended_resources(INF2, time_slicing_replicas=4) == {"aws.amazon.com/neuron": "6",
                                                                       "aws.amazon.com/neuroncore": "12"}
    for spec, vendor in ((A10G, NVIDIA), (INF2, NEURON)):
        assert _gpu.taints(spec) == [vendor.taint()]
        assert _gpu.ami_type(spec) == vendor.ami_types["al2023"]
        assert vendor.labels_for(spec.accelerator).items() <= _gpu.labels("g", spec).items()
        assert _gpu.labels("g", spec)["genai-scale/accelerator-vendor"] == vendor.name


def test_a_registered_vendor_gets_node_group_settings(monkeypatch):
    from tests.components.catalog.test_vendors import register_acme

    acme = register_acme(monkeypatch)  # a third vendor: one record in the registry, nothing else
    assert _gpu.ami_type(acme, "bottlerocket") == "BOTTLEROCKET_x86_64"
    assert _gpu.taints(acme) == [{"key": "acme.com/npu", "value": "present", "effect": "NoExecute"}]
    assert _gpu.eks_taints(_gpu.taints(acme)) == [{"key": "acme.com/npu", "value": "present", "effect": "NO_EXECUTE"}]
    labels = _gpu.labels("npu", acme, mig_config="ignored")
    assert labels == {"genai-scale/node-group": "npu", "genai-scale/accelerator": "n1",
                      "genai-scale/accelerator-vendor": "acme", "genai-scale/accelerator-count": "4",
                      "acme.com/npu.product": "acme-n1"}  # no MIG label: the vendor has no MIG manager
    # time-slicing replicas do not multiply devices the vendor cannot time-slice; cores are advertised too
    assert _gpu.extended_resources(acme, time_slicing_replicas=4) == {"acme.com/npu": "4", "acme.com/npu-core": "16"}
    tags = _gpu.autoscaler_tags("c", acme, labels, _gpu.taints(acme), disk_size_gib=100)
    tpl = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{tpl}/resources/acme.com/npu"] == "4" and tags[f"{tpl}/taint/acme.com/npu"] == "present:NoExecute"
    assert tags[f"{tpl}/label/acme.com/npu.product"] == "acme-n1"
    assert acme.k8s_resource == "acme.com/npu" and acme.parallel_units == 4 and not acme.mig_capable
