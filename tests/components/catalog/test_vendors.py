"""The accelerator-vendor registry: its facts agree with their sources, and a record is all a vendor needs."""

from __future__ import annotations

import dataclasses
import typing

import botocore.session
import pytest

from components import versions
from components.catalog import accelerators, vendors
from components.catalog.vendors import NEURON, NVIDIA, VENDORS, VendorFacts
from components.errors import ArgsError
from components.foundation.gpu_node_group import node_labels, node_taints
from components.foundation.gpu_operator import GpuOperatorArgs, time_slicing_config
from components.foundation.gpu_operator import render_values as gpu_operator_values
from components.foundation.neuron_device_plugin import NeuronDevicePluginArgs
from components.foundation.neuron_device_plugin import render_values as neuron_values
from components.serving.vllm.args import NodeGroupPlacement, VllmModelSettings, VllmServiceArgs, fit_input
from components.serving.vllm.image import CONTEXT_DIR
from components.serving.vllm.manifests import render_manifests

EKS_AMI_TYPES = frozenset(botocore.session.get_session().get_service_model("eks").shape_for("AMITypes").enum)


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_every_ami_type_is_in_the_eks_api(name):
    v = VENDORS[name]
    used = {*v.ami_types.values(), *v.accepted_ami_types_x86, *v.accepted_ami_types_arm}
    assert used - EKS_AMI_TYPES == set()
    assert set(v.ami_types) == set(typing.get_args(vendors.NodeOs))  # an AMI type for every node OS
    assert set(v.ami_types.values()) <= v.accepted_ami_types_x86  # the policy pack accepts what node groups use


def test_node_group_ami_types_are_todays():
    assert NVIDIA.ami_types == {"al2023": "AL2023_x86_64_NVIDIA", "bottlerocket": "BOTTLEROCKET_x86_64_NVIDIA"}
    assert NEURON.ami_types == {"al2023": "AL2023_x86_64_NEURON", "bottlerocket": "BOTTLEROCKET_x86_64"}


def test_vendor_literal_names_exactly_the_registry():
    assert set(typing.get_args(vendors.Vendor)) == set(VENDORS)
    assert all(name == v.name for name, v in VENDORS.items())
    assert accelerators.Vendor is vendors.Vendor


def test_every_catalogue_row_has_a_vendor_whose_families_contain_it():
    for spec in accelerators.CATALOG.values():
        assert spec.family in spec.vendor_facts.instance_families, spec.instance_type
        assert vendors.for_family(spec.family) is spec.vendor_facts
    assert vendors.for_family("m7i") is None
    families = [f for v in VENDORS.values() for f in v.instance_families]
    assert len(families) == len(set(families))  # a family belongs to one vendor


def test_resource_names_are_the_device_plugins():
    # NVIDIA k8s-device-plugin advertises nvidia.com/gpu (MIG mixed: nvidia.com/mig-<profile>); the Neuron device
    # plugin advertises aws.amazon.com/neuron, .../neuroncore and .../neurondevice (AWS Neuron Kubernetes guide)
    assert NVIDIA.pod_resources == ("nvidia.com/gpu",) and NVIDIA.mig_resource_prefix == "nvidia.com/mig-"
    assert NEURON.pod_resources == ("aws.amazon.com/neuron", "aws.amazon.com/neuroncore",
                                    "aws.amazon.com/neurondevice")
    assert vendors.device_resources() == {"nvidia.com/gpu", "aws.amazon.com/neuron"}
    # the device-plugin charts we install tolerate each vendor's taint and select each vendor's nodes
    gpu = gpu_operator_values(GpuOperatorArgs())
    assert gpu["daemonsets"]["tolerations"] == [NVIDIA.toleration()]
    assert f"name: {NVIDIA.device_resource}" in time_slicing_config(2)
    neuron = neuron_values(NeuronDevicePluginArgs())
    assert NEURON.toleration() in neuron["devicePlugin"]["tolerations"]
    assert neuron["devicePlugin"]["nodeSelector"] == NEURON.labels_for("")
    assert NEURON.toleration() == {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}


def test_taint_keys_are_the_device_resources():
    # pods that request a device tolerate its taint by the same name (the EKS and Karpenter GPU convention)
    for v in VENDORS.values():
        assert v.taint() == {"key": v.device_resource, "value": "true", "effect": "NoSchedule"}


def test_image_family_pins_exist():
    for v in VENDORS.values():
        assert isinstance(getattr(versions, v.vllm_base_image), versions.Pin), v.name
        assert getattr(versions, v.vllm_engine_version), v.name
        assert (CONTEXT_DIR / v.vllm_dockerfile).is_file(), v.name


def test_source_and_date_beside_the_data():
    for v in VENDORS.values():
        assert "AMITypes" in v.source and v.checked == "2026-11-23"


def test_unknown_vendor_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown accelerator vendor 'amd'; known: neuron, nvidia"):
        vendors.facts_for("amd")


def test_labels_for_fills_in_the_accelerator():
    assert NVIDIA.labels_for("H100") == {"k8s.amazonaws.com/accelerator": "nvidia-h100"}
    assert NEURON.labels_for("Inferentia2") == {"aws.amazon.com/neuron.present": "true"}


# --- adding a vendor is adding a record -------------------------------------------------------------------------

FAKE = VendorFacts(
    name="acme", display_name="Acme NPU", unit_name="NPU", shards_over="devices",
    ami_types={"al2023": "AL2023_x86_64_STANDARD", "bottlerocket": "BOTTLEROCKET_x86_64"},
    accepted_ami_types_x86=frozenset({"AL2023_x86_64_STANDARD"}), accepted_ami_types_arm=frozenset(),
    instance_families_x86=frozenset({"acme1"}), instance_families_arm=frozenset(),
    device_resource="acme.com/npu", core_resource="acme.com/npu-core", resource_aliases=(),
    taint_key="acme.com/npu", taint_value="present", taint_effect="NoExecute",
    node_labels={"acme.com/npu.product": "acme-{accelerator}"}, discovery_labels={},
    mig_accelerators=frozenset(), mig_config_label=None, mig_resource_prefix=None, time_slicing=False,
    utilization_metric=None, vllm_base_image="VLLM_OPENAI_IMAGE", vllm_engine_version="VLLM",
    vllm_dockerfile="Dockerfile.nvidia", vllm_read_only_root_filesystem=True,
    vllm_env={"ACME_CACHE": "{cache_dir}/acme"},
)


def register_acme(monkeypatch) -> accelerators.AcceleratorSpec:
    """Add :data:`FAKE` to the registry (for this test only) and return an instance type of it."""
    monkeypatch.setitem(VENDORS, "acme", FAKE)
    return accelerators.AcceleratorSpec("acme1.8xlarge", "acme1", "acme", "N1", 4, 65536, 16, 32, 131072, 0)


@pytest.fixture
def acme(monkeypatch):
    return register_acme(monkeypatch)


def test_a_registered_vendor_gets_vllm_pod_resources_and_placement(acme):
    placement = NodeGroupPlacement(name="npu", accelerator=acme, labels=node_labels("npu", acme),
                                   taints=node_taints(acme))
    args = VllmServiceArgs(model=VllmModelSettings(model_id="meta-llama/Llama-3.1-8B-Instruct",
                                                   allow_hub_download=True, tensor_parallel_size=2),
                           placement=placement, image="img", keda=False)
    pod = render_manifests("m", args)["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    # 2 of 4 NPUs: half the node's 32 vCPUs and 128 GiB, 75 % of it to the replica
    assert c["resources"]["requests"] == {"cpu": "12", "memory": "48Gi", "acme.com/npu": "2"}
    assert c["resources"]["limits"] == {"memory": "52Gi", "acme.com/npu": "2"}
    assert pod["tolerations"] == [{"key": "acme.com/npu", "operator": "Equal", "value": "present",
                                   "effect": "NoExecute"}]
    assert pod["nodeSelector"]["acme.com/npu.product"] == "acme-n1"
    assert pod["nodeSelector"]["genai-scale/accelerator-vendor"] == "acme"
    assert {"name": "ACME_CACHE", "value": "/cache/acme"} in c["env"]
    fi = fit_input(args)  # the fit check counts the vendor's units by its record
    assert (fi.unit_name, fi.units_per_node, fi.unit_memory_gib) == ("N1 NPU", 4, 64.0)
    assert args.fit().errors == []


def test_sharing_a_vendor_cannot_do_is_rejected_with_its_name():
    inf2 = accelerators.lookup("inf2.xlarge")
    placement = NodeGroupPlacement(name="inf2", accelerator=inf2, labels=node_labels("inf2", inf2),
                                   taints=node_taints(inf2), time_slicing_replicas=2)
    with pytest.raises(ArgsError, match="gpu_sharing = 'time-sliced': dedicated on Neuron node groups"):
        VllmServiceArgs(model=VllmModelSettings(model_id="Qwen/Qwen2.5-0.5B-Instruct", allow_hub_download=True),
                        placement=placement, image="img", keda=False, gpu_sharing="time-sliced")


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NVIDIA.device_resource = "x"  # type: ignore[misc]
