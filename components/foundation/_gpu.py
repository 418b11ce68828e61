"""Pure functions that turn an instance type's accelerator facts into node-group settings.

AMI type, Kubernetes taints and labels, cluster-autoscaler ASG tags for scale-from-zero, and the launch-template
pieces. No Pulumi here: everything is unit-tested directly.
"""

from __future__ import annotations

import base64

from components.catalog.accelerators import EFA_RESOURCE, AcceleratorSpec
from components.catalog.vendors import VENDOR_LABEL, NodeOs

NODE_GROUP_LABEL = "genai-scale/node-group"
ACCELERATOR_LABEL = "genai-scale/accelerator"
COUNT_LABEL = "genai-scale/accelerator-count"
EFA_PRESENT_LABEL = "vpc.amazonaws.com/efa.present"

CA_PREFIX = "k8s.io/cluster-autoscaler"

DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
"""Node label naming the NVIDIA device plugin's config (a key of the GPU operator's config map) for that node."""


def time_slicing_config_name(replicas: int) -> str:
    """The device-plugin config a node group with ``timeSlicingReplicas: replicas`` selects by its node label."""
    return f"time-slicing-{replicas}"


def ami_type(spec: AcceleratorSpec, node_os: NodeOs = "al2023") -> str:
    """The EKS AMI type for an accelerator and OS: the vendor's driver stack (NVIDIA, Neuron) on that OS."""
    return spec.vendor_facts.ami_type(node_os)


def taints(spec: AcceleratorSpec) -> list[dict[str, str]]:
    """Kubernetes taints that keep non-accelerator pods off the node (``key=value:effect``)."""
    return [spec.vendor_facts.taint()]


_EKS_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def eks_taints(k8s_taints: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same taints in the EKS API form (effect ``NO_SCHEDULE``)."""
    return [{"key": t["key"], "value": t["value"], "effect": _EKS_EFFECT[t["effect"]]} for t in k8s_taints]


def labels(name: str, spec: AcceleratorSpec, *, efa: bool = False, mig_config: str | None = None,
           extra: dict[str, str] | None = None, time_slicing_replicas: int | None = None) -> dict[str, str]:
    """Node labels: node group, accelerator kind/vendor/count, and the ones the autoscaler and device plugins read."""
    vendor = spec.vendor_facts
    out = {
        NODE_GROUP_LABEL: name,
        ACCELERATOR_LABEL: spec.accelerator.lower(),
        VENDOR_LABEL: spec.vendor,
        COUNT_LABEL: str(spec.count),
        **vendor.labels_for(spec.accelerator),
    }
    if mig_config and vendor.mig_config_label:
        out[vendor.mig_config_label] = mig_config
    if efa:
        out[EFA_PRESENT_LABEL] = "true"
    if time_slicing_replicas and vendor.time_slicing:  # this group's GPUs only (GpuOperatorArgs.node_time_slicing)
        out[DEVICE_PLUGIN_CONFIG_LABEL] = time_slicing_config_name(time_slicing_replicas)
    out.update(extra or {})
    return out


def extended_resources(spec: AcceleratorSpec, *, efa: bool = False,
                       time_slicing_replicas: int | None = None) -> dict[str, str]:
    """Extended resources one node advertises once its device plugins run: every device (times the time-slicing
    replicas, where the vendor time-slices), and every core where the device plugin advertises cores too."""
    vendor = spec.vendor_facts
    shares = (time_slicing_replicas or 1) if vendor.time_slicing else 1
    res = {vendor.device_resource: str(spec.count * shares)}
    if vendor.core_resource:
        res[vendor.core_resource] = str(spec.neuron_cores)
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


# --- node-local NVMe: AL2023 nodeadm NodeConfig in the launch template's user data ---

NODEADM_CONTENT_TYPE = "application/node.eks.aws"
"""MIME type of a nodeadm NodeConfig part (awslabs/amazon-eks-ami nodeadm docs; EKS merges such parts of a managed
node group's launch-template user data with its own when the group uses an EKS AMI type, not a custom AMI)."""

MIME_BOUNDARY = "//genai-scale-nodeadm//"
"""Fixed so the rendered user data (and the launch template) only changes when the NodeConfig does."""


def local_storage_node_config(strategy: str = "RAID0") -> str:
    """nodeadm ``NodeConfig`` (``node.eks.aws/v1alpha1``) that stripes the instance-store NVMe disks
    (``spec.instance.localStorage.strategy``) and moves kubelet's and containerd's storage onto them: image layers,
    emptyDirs (the vLLM caches, weights) and pod logs then live on local NVMe instead of the EBS root volume."""
    return ("apiVersion: node.eks.aws/v1alpha1\n"
            "kind: NodeConfig\n"
            "spec:\n"
            "  instance:\n"
            "    localStorage:\n"
            f"      strategy: {strategy}\n")


def node_user_data(spec: AcceleratorSpec, node_os: NodeOs, *, local_storage: bool = True) -> str | None:
    """Base64 MIME multi-part user data for the launch template, or None when there is nothing to say: only AL2023
    nodes (nodeadm) whose instance type has instance store get the RAID0 NodeConfig; Bottlerocket is configured
    through its own settings, and EBS-only types (inf2) have nothing to stripe."""
    if not local_storage or node_os != "al2023" or not spec.has_instance_store:
        return None
    body = (f"MIME-Version: 1.0\n"
            f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"\n'
            f"\n"
            f"--{MIME_BOUNDARY}\n"
            f"Content-Type: {NODEADM_CONTENT_TYPE}\n"
            f"\n"
            f"{local_storage_node_config()}"
            f"\n"
            f"--{MIME_BOUNDARY}--\n")
    return base64.b64encode(body.encode()).decode()
