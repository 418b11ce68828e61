"""Accelerator vendors: everything the stack derives from who makes an instance's accelerator, in one record each.

Node groups (AMI type, taints, labels, autoscaler hints, advertised resources), workloads (the resources a vLLM pod
requests, its tolerations, the vLLM image family, GPU sharing), the managed-inference images and the policy pack all
read these records; none of them branches on a vendor's name. Adding a vendor is adding a record to :data:`VENDORS`
(and its name to :data:`Vendor`).

Sources, checked 2026-11-23:
- AMI types: the EKS API ``AMITypes`` enum (botocore's ``eks`` service model; tests/components/catalog/test_vendors.py
  checks every string against the installed model) and the AWS EKS user guide "Use EKS-optimized accelerated AMIs"
  (https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html): AL2023 NVIDIA and Bottlerocket
  ``aws-k8s-nvidia`` variants serve the p/g NVIDIA families; AL2023 Neuron and the standard Bottlerocket variant
  (which ships the Neuron driver) serve inf1/inf2/trn1/trn2. Instance families per variant come from the same page.
- Device resources: NVIDIA k8s-device-plugin (``nvidia.com/gpu``; MIG ``mixed`` strategy ``nvidia.com/mig-<profile>``)
  and the AWS Neuron "Kubernetes environment setup" guide (``aws.amazon.com/neuron``, ``aws.amazon.com/neuroncore``,
  ``aws.amazon.com/neurondevice``).
- Node labels: kubernetes/autoscaler ``cloudprovider/aws`` README, "GPU node groups" (``k8s.amazonaws.com/accelerator``
  tells the autoscaler a node brings a GPU before the device plugin advertises it); NVIDIA GPU feature discovery
  (``nvidia.com/gpu.present``); the NVIDIA MIG manager (``nvidia.com/mig.config``).
- MIG: NVIDIA MIG user guide, supported GPUs. GPU utilization: NVIDIA dcgm-exporter ``etc/default-counters.csv``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Vendor = Literal["nvidia", "neuron"]
"""Names of the vendors in :data:`VENDORS` (a test keeps the two equal)."""

NodeOs = Literal["al2023", "bottlerocket"]
"""Node operating systems an accelerator node group can run."""

SOURCE = ("EKS API AMITypes (botocore eks model), AWS EKS accelerated-AMI user guide, NVIDIA k8s-device-plugin and "
          "GPU feature discovery, AWS Neuron Kubernetes setup guide, kubernetes/autoscaler cloudprovider/aws README")
CHECKED = "2026-11-23"

VENDOR_LABEL = "genai-scale/accelerator-vendor"
GPU_OPERATOR_OPERANDS_LABEL = "nvidia.com/gpu.deploy.operands"
"""The NVIDIA GPU operator's switch for all its operands on a node; ``"false"`` (set on Bottlerocket NVIDIA nodes,
which bring their own driver, toolkit and device plugin) keeps driver, toolkit, device plugin, GFD, DCGM exporter,
validator and MIG manager off it: such nodes export no DCGM metrics. The operator honours a non-empty value set
before it sees the node (NVIDIA/gpu-operator ``controllers/state_manager.go``, v26.7.0, checked 2026-12-06)."""
"""Node label every accelerator node group carries with its vendor's name."""

ACCELERATOR_PLACEHOLDER = "{accelerator}"
"""Stands for the lower-cased accelerator model (``a10g``, ``h100``) in a node-label value template."""


@dataclass(frozen=True)
class VendorFacts:
    """One accelerator vendor: its node images, device resources, taint, labels, GPU sharing and vLLM image family."""

    name: str
    """Registry key and the value of the ``genai-scale/accelerator-vendor`` node label."""
    display_name: str
    """How messages name the vendor's instances, e.g. "NVIDIA GPU"."""
    unit_name: str
    """What one tensor-parallel shard runs on, in messages: "GPU", "NeuronCore"."""
    shards_over: Literal["devices", "cores"]
    """Whether a model shards over whole devices (GPUs) or over the cores of a device (NeuronCores)."""
    ami_types: dict[str, str]
    """EKS AMI type (``amiType``) per node OS for x86_64 instances."""
    accepted_ami_types_x86: frozenset[str]
    """Every EKS AMI type that carries the vendor's driver for x86_64 instances (the policy pack accepts these)."""
    accepted_ami_types_arm: frozenset[str]
    """The same for arm64 instances (empty: the vendor has no arm64 instances)."""
    instance_families_x86: frozenset[str]
    """EC2 instance families with the vendor's accelerators, x86_64."""
    instance_families_arm: frozenset[str]
    """The same, arm64 (Graviton / Grace hosts)."""
    device_resource: str
    """Extended resource of one whole device; pods request it, the node group's taint is keyed on it."""
    core_resource: str | None
    """Extended resource of one core of a device, when the device plugin advertises cores too."""
    resource_aliases: tuple[str, ...]
    """Other names the device plugin advertises the same devices under (recognised, never requested)."""
    taint_key: str
    taint_value: str
    taint_effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]
    node_labels: dict[str, str]
    """Labels the device plugin or the cluster autoscaler read; ``{accelerator}`` in a value is the accelerator model."""
    discovery_labels: dict[str, str]
    """Labels the vendor's own node-feature discovery puts on nodes (a pod selecting one targets the vendor)."""
    mig_accelerators: frozenset[str]
    """Accelerator models that support MIG partitioning (empty: no MIG)."""
    mig_config_label: str | None
    """Node label the MIG manager reads the wanted MIG profile set from."""
    mig_resource_prefix: str | None
    """Extended resource of one MIG slice under the ``mixed`` strategy, followed by the profile (``3g.40gb``)."""
    time_slicing: bool
    """Whether the device plugin can share one device among pods by time-slicing."""
    utilization_metric: str | None
    """Per-pod device-utilization metric the autoscaler may scale on (None: none exported)."""
    vllm_base_image: str
    """Name of the pin in ``components.versions`` of the upstream vLLM image a workload on this vendor builds on."""
    vllm_engine_version: str
    """Name of the pin in ``components.versions`` holding the vLLM version inside that image."""
    vllm_dockerfile: str
    """Dockerfile in serving/vllm that builds the serving image."""
    vllm_read_only_root_filesystem: bool
    """Whether the serving container runs with a read-only root filesystem."""
    vllm_env: dict[str, str] = field(default_factory=dict)
    """Extra environment of the serving container; ``{cache_dir}`` is the container's writable cache directory
    (the pod's emptyDir), ``{compile_cache_dir}`` where compiled artefacts are kept (the shared compile-cache claim's
    mount when the service has one, else the same emptyDir)."""
    sagemaker_engine: Literal["lmi", "neuron-vllm"] = "lmi"
    """Serving image family for SageMaker endpoints (components.catalog.lmi_images)."""
    source: str = SOURCE
    checked: str = CHECKED

    def __hash__(self) -> int:  # the dict fields are not hashable; the name identifies a record
        return hash(self.name)

    def ami_type(self, node_os: NodeOs) -> str:
        """The EKS AMI type for this vendor's x86_64 nodes on ``node_os``."""
        return self.ami_types[node_os]

    @property
    def instance_families(self) -> frozenset[str]:
        return self.instance_families_x86 | self.instance_families_arm

    @property
    def pod_resources(self) -> tuple[str, ...]:
        """Every extended resource that gives a pod this vendor's devices: device, core, aliases."""
        return (self.device_resource, *((self.core_resource,) if self.core_resource else ()), *self.resource_aliases)

    def taint(self) -> dict[str, str]:
        """The node taint (Kubernetes form) that keeps pods without the device off the vendor's nodes."""
        return {"key": self.taint_key, "value": self.taint_value, "effect": self.taint_effect}

    def toleration(self) -> dict[str, str]:
        """A toleration of :meth:`taint` for any value (what device plugins and node agents use)."""
        return {"key": self.taint_key, "operator": "Exists", "effect": self.taint_effect}

    def labels_for(self, accelerator: str) -> dict[str, str]:
        """:attr:`node_labels` with the accelerator model filled in."""
        return {k: v.replace(ACCELERATOR_PLACEHOLDER, accelerator.lower()) for k, v in self.node_labels.items()}

    def mig_capable(self, accelerator: str) -> bool:
        return accelerator in self.mig_accelerators


NVIDIA = VendorFacts(
    name="nvidia", display_name="NVIDIA GPU", unit_name="GPU", shards_over="devices",
    ami_types={"al2023": "AL2023_x86_64_NVIDIA", "bottlerocket": "BOTTLEROCKET_x86_64_NVIDIA"},
    accepted_ami_types_x86=frozenset({"AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA",
                                      "BOTTLEROCKET_x86_64_NVIDIA_FIPS", "AL2_x86_64_GPU"}),
    accepted_ami_types_arm=frozenset({"AL2023_ARM_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA",
                                      "BOTTLEROCKET_ARM_64_NVIDIA_FIPS"}),
    instance_families_x86=frozenset({"p6-b300", "p6-b200", "p5", "p5e", "p5en", "p4d", "p4de", "p3", "p3dn",
                                     "g7e", "gr6", "g6", "g6e", "g6f", "gr6f", "g5", "g4dn"}),
    instance_families_arm=frozenset({"p6e-gb200", "p6e-gb300", "g5g"}),
    device_resource="nvidia.com/gpu", core_resource=None, resource_aliases=(),
    taint_key="nvidia.com/gpu", taint_value="true", taint_effect="NoSchedule",
    node_labels={"k8s.amazonaws.com/accelerator": f"nvidia-{ACCELERATOR_PLACEHOLDER}"},
    discovery_labels={"nvidia.com/gpu.present": "true"},
    mig_accelerators=frozenset({"A100", "H100", "H200"}), mig_config_label="nvidia.com/mig.config",
    mig_resource_prefix="nvidia.com/mig-", time_slicing=True, utilization_metric="DCGM_FI_DEV_GPU_UTIL",
    vllm_base_image="VLLM_OPENAI_IMAGE", vllm_engine_version="VLLM", vllm_dockerfile="Dockerfile.nvidia",
    vllm_read_only_root_filesystem=True, sagemaker_engine="lmi",
)

NEURON = VendorFacts(
    name="neuron", display_name="Neuron", unit_name="NeuronCore", shards_over="cores",
    ami_types={"al2023": "AL2023_x86_64_NEURON", "bottlerocket": "BOTTLEROCKET_x86_64"},
    accepted_ami_types_x86=frozenset({"AL2023_x86_64_NEURON", "BOTTLEROCKET_x86_64", "BOTTLEROCKET_x86_64_FIPS",
                                      "AL2_x86_64_GPU"}),
    accepted_ami_types_arm=frozenset(),
    instance_families_x86=frozenset({"inf1", "inf2", "trn1", "trn1n", "trn2"}),  # trn1n: network-optimised trn1
    instance_families_arm=frozenset(),
    device_resource="aws.amazon.com/neuron", core_resource="aws.amazon.com/neuroncore",
    resource_aliases=("aws.amazon.com/neurondevice",),
    taint_key="aws.amazon.com/neuron", taint_value="true", taint_effect="NoSchedule",
    node_labels={"aws.amazon.com/neuron.present": "true"},  # NeuronDevicePlugin's default nodeSelector
    discovery_labels={},
    mig_accelerators=frozenset(), mig_config_label=None, mig_resource_prefix=None, time_slicing=False,
    utilization_metric=None,
    vllm_base_image="VLLM_NEURON_DLC", vllm_engine_version="VLLM_NEURON_ENGINE_VERSION",
    vllm_dockerfile="Dockerfile.neuron",
    vllm_read_only_root_filesystem=False,  # as first released: the Neuron DLC runs with a writable root filesystem
    # compiled graphs (many minutes to build) go with the compile caches: onto the shared cache when there is one
    vllm_env={"NEURON_COMPILED_ARTIFACTS": "{compile_cache_dir}/neuron-compiled"},
    sagemaker_engine="neuron-vllm",
)

VENDORS: dict[str, VendorFacts] = {v.name: v for v in (NVIDIA, NEURON)}
"""Every vendor, by name."""


def facts_for(vendor: str) -> VendorFacts:
    """The record of a vendor; a ``KeyError`` naming the known vendors for any other name."""
    try:
        return VENDORS[vendor]
    except KeyError:
        raise KeyError(f"unknown accelerator vendor {vendor!r}; known: {', '.join(sorted(VENDORS))}") from None


def for_family(family: str) -> VendorFacts | None:
    """The vendor whose accelerators an EC2 instance family carries (``g5`` -> NVIDIA), or None (CPU family)."""
    return next((v for v in VENDORS.values() if family in v.instance_families), None)


def device_resources() -> frozenset[str]:
    """The whole-device extended resources of every vendor (what a pod's accelerator count is made of)."""
    return frozenset(v.device_resource for v in VENDORS.values())


def export() -> dict[str, dict[str, Any]]:
    """Every record as plain JSON data (sets as sorted lists): what the policy pack carries when published alone."""
    def plain(value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {name: {k: plain(v) for k, v in asdict(v).items()} for name, v in VENDORS.items()}


def dumps() -> str:
    """:func:`export` as the text of ``policies/vendors.json``."""
    return json.dumps(export(), indent=1) + "\n"


if __name__ == "__main__":  # python -m components.catalog.vendors > policies/vendors.json
    print(dumps(), end="")
