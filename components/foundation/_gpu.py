"""Pure functions that turn an instance type's accelerator facts into node-group settings.

AMI type, Kubernetes taints and labels, cluster-autoscaler ASG tags for scale-from-zero, and the launch-template
pieces. No Pulumi here: everything is unit-tested directly.
"""

from __future__ import annotations

from typing import Literal

from components.catalog.accelerators import (
    EFA_RESOURCE,
    NEURON_RESOURCE,
    NEURONCORE_RESOURCE,
    NVIDIA_RESOURCE,
    AcceleratorSpec,
)

NodeOs = Literal["al2023", "bottlerocket"]

# EKS AMI types (EKS API `amiType`), per the AWS EKS accelerated-AMI page (checked 2026-11):
# AL2023 x86_64 NVIDIA and Bottlerocket aws-k8s-nvidia serve p/g NVIDIA families; AL2023 x86_64 Neuron and the
# standard Bottlerocket variant serve inf1/inf2/trn1/trn2.
AMI_TYPES: dict[tuple[str, NodeOs], str] = {
    ("nvidia", "al2023"): "AL2023_x86_64_NVIDIA",
    ("nvidia", "bottlerocket"): "BOTTLEROCKET_x86_64_NVIDIA",
    ("neuron", "al2023"): "AL2023_x86_64_NEURON",
    ("neuron", "bottlerocket"): "BOTTLEROCKET_x86_64",
}
NVIDIA_AMI_TYPES = frozenset({"AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA",
                              "BOTTLEROCKET_ARM_64_NVIDIA"})
NEURON_AMI_TYPES = frozenset({"AL2023_x86_64_NEURON", "BOTTLEROCKET_x86_64"})

NODE_GROUP_LABEL = "genai-scale/node-group"
ACCELERATOR_LABEL = "genai-scale/accelerator"
VENDOR_LABEL = "genai-scale/accelerator-vendor"
COUNT_LABEL = "genai-scale/accelerator-count"
# Cluster autoscaler reads this label to know a node will bring a GPU before the device plugin advertises it
# (kubernetes/autoscaler cloudprovider/aws README, "GPU node groups").
CA_GPU_LABEL = "k8s.amazonaws.com/accelerator"
NEURON_PRESENT_LABEL = "aws.amazon.com/neuron.present"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
EFA_PRESENT_LABEL = "vpc.amazonaws.com/efa.present"

CA_PREFIX = "k8s.io/cluster-autoscaler"


def ami_type(spec: AcceleratorSpec, node_os: NodeOs = "al2023") -> str:
    """The EKS AMI type for an accelerator and OS: NVIDIA drivers for GPUs, the Neuron driver for Inferentia/Trainium."""
    return AMI_TYPES[(spec.vendor, node_os)]


def taints(spec: AcceleratorSpec) -> list[dict[str, str]]:
    """Kubernetes taints that keep non-accelerator pods off the node (``key=value:effect``)."""
    key = NVIDIA_RESOURCE if spec.vendor == "nvidia" else NEURON_RESOURCE
    return [{"key": key, "value": "true", "effect": "NoSchedule"}]


_EKS_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def eks_taints(k8s_taints: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same taints in the EKS API form (effect ``NO_SCHEDULE``)."""
    return [{"key": t["key"], "value": t["value"], "effect": _EKS_EFFECT[t["effect"]]} for t in k8s_taints]


def labels(name: str, spec: AcceleratorSpec, *, efa: bool = False, mig_config: str | None = None,
           extra: dict[str, str] | None = None) -> dict[str, str]:
    """Node labels: node group, accelerator kind/vendor/count, and the ones the autoscaler and device plugins read."""
    out = {
        NODE_GROUP_LABEL: name,
        ACCELERATOR_LABEL: spec.accelerator.lower(),
        VENDOR_LABEL: spec.vendor,
        COUNT_LABEL: str(spec.count),
    }
    if spec.vendor == "nvidia":
        out[CA_GPU_LABEL] = f"nvidia-{spec.accelerator.lower()}"
        if mig_config:
            out[MIG_CONFIG_LABEL] = mig_config
    else:
        out[NEURON_PRESENT_LABEL] = "true"
    if efa:
        out[EFA_PRESENT_LABEL] = "true"
    out.update(extra or {})
    return out


def extended_resources(spec: AcceleratorSpec, *, efa: bool = False,
                       time_slicing_replicas: int | None = None) -> dict[str, str]:
    """Extended resources one node advertises once its device plugins run."""
    if spec.vendor == "nvidia":
        gpus = spec.count * (time_slicing_replicas or 1)
        res = {NVIDIA_RESOURCE: str(gpus)}
    else:
        res = {NEURON_RESOURCE: str(spec.count), NEURONCORE_RESOURCE: str(spec.neuron_cores)}
    if efa:
        res[EFA_RESOURCE] = str(spec.efa_interfaces)
    return res


def autoscaler_tags(cluster_name: str | None, spec: AcceleratorSpec, node_labels: dict[str, str],
                    node_taints: list[dict[str, str]], *, disk_size_gib: int, efa: bool = False,
                    time_slicing_replicas: int | None = None,
                    scale_down_unneeded_time: str | None = None) -> dict[str, str]:
    """Tags for the node group's Auto Scaling group so cluster-autoscaler can scale it up from zero.

    With zero nodes the autoscaler cannot see a node's labels, taints or extended resources; it reads them from
    these ASG tags (kubernetes/autoscaler cloudprovider/aws README, "Auto-Discovery Setup" and "Scaling a node group
    to 0"). EKS does not copy node-group labels or tags to the ASG, so they are written here.
    """
    tpl = f"{CA_PREFIX}/node-template"
    tags = {f"{CA_PREFIX}/enabled": "true"}
    if cluster_name is not None:  # None: the caller adds the owner tag itself (the name is not known yet)
        tags[f"{CA_PREFIX}/{cluster_name}"] = "owned"
    for res, amount in extended_resources(spec, efa=efa, time_slicing_replicas=time_slicing_replicas).items():
        tags[f"{tpl}/resources/{res}"] = amount
    tags[f"{tpl}/resources/ephemeral-storage"] = f"{disk_size_gib}Gi"
    for key, value in node_labels.items():
        tags[f"{tpl}/label/{key}"] = value
    for t in node_taints:
        tags[f"{tpl}/taint/{t['key']}"] = f"{t['value']}:{t['effect']}"
    if scale_down_unneeded_time:
        tags[f"{tpl}/autoscaling-options/scaledownunneededtime"] = scale_down_unneeded_time
    return dict(sorted(tags.items()))


def block_devices(node_os: NodeOs, disk_size_gib: int, *, kms_key_arn: str | None = None,
                  throughput_mibps: int = 250, iops: int = 3000) -> list[dict]:
    """Encrypted gp3 root (AL2023) or data (Bottlerocket) volume sized for images and model weights."""
    ebs = {"volumeSize": disk_size_gib, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true",
           "iops": iops, "throughput": throughput_mibps}
    if kms_key_arn:
        ebs["kmsKeyId"] = kms_key_arn
    if node_os == "bottlerocket":
        os_volume = {"volumeSize": 4, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}
        if kms_key_arn:
            os_volume["kmsKeyId"] = kms_key_arn
        return [{"deviceName": "/dev/xvda", "ebs": os_volume}, {"deviceName": "/dev/xvdb", "ebs": ebs}]
    return [{"deviceName": "/dev/xvda", "ebs": ebs}]


def efa_interfaces(spec: AcceleratorSpec, security_group_ids: list) -> list[dict]:
    """One EFA interface per network card (the first on device index 0), as the EFA docs lay them out."""
    out = []
    for card in range(spec.efa_interfaces):
        out.append({
            "deviceIndex": 0 if card == 0 else 1,
            "networkCardIndex": card,
            "interfaceType": "efa",
            "deleteOnTermination": "true",
            "securityGroups": security_group_ids,
        })
    return out
