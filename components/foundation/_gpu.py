"""Pure functions that turn an instance type's accelerator facts into node-group settings.

AMI type, Kubernetes taints and labels, cluster-autoscaler ASG tags for scale-from-zero, and the launch-template
pieces. No Pulumi here: everything is unit-tested directly.
"""

from __future__ import annotations

import base64

import tomli_w
import yaml

from components.catalog.accelerators import EFA_RESOURCE, AcceleratorSpec
from components.catalog.vendors import GPU_OPERATOR_OPERANDS_LABEL, VENDOR_LABEL, NodeOs

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
           extra: dict[str, str] | None = None, time_slicing_replicas: int | None = None,
           node_os: NodeOs = "al2023") -> dict[str, str]:
    """Node labels: node group, accelerator kind/vendor/count, and the ones the autoscaler and device plugins read.
    NVIDIA nodes on Bottlerocket are kept from the GPU operator: the OS ships the driver, the container toolkit and
    the device plugin (time-slicing through its own settings), and the operator's DCGM exporter cannot open NVML there
    without CAP_SYS_ADMIN (bottlerocket-os/bottlerocket#3992); Bottlerocket recommends installing such tools one by
    one rather than through the operator."""
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
    bottlerocket_gpu = node_os == "bottlerocket" and spec.vendor == "nvidia"
    if time_slicing_replicas and vendor.time_slicing and not bottlerocket_gpu:
        # this group's GPUs only (GpuOperatorArgs.node_time_slicing); Bottlerocket: bottlerocket_settings
        out[DEVICE_PLUGIN_CONFIG_LABEL] = time_slicing_config_name(time_slicing_replicas)
    if bottlerocket_gpu:
        out[GPU_OPERATOR_OPERANDS_LABEL] = "false"
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


EBS_THROUGHPUT_MIBPS = 250
"""gp3 throughput of the node volume that holds images and weights (gp3's baseline is 125 MiB/s; 250 halves the time a
large image takes to land). The node groups and the Karpenter node classes use it."""
EBS_IOPS = 3000
"""gp3 IOPS of that volume (gp3's included baseline; it allows up to 750 MiB/s of throughput at 0.25 MiB/s per IOPS)."""


def block_devices(node_os: NodeOs, disk_size_gib: int, *, kms_key_arn: str | None = None,
                  throughput_mibps: int = EBS_THROUGHPUT_MIBPS, iops: int = EBS_IOPS) -> list[dict]:
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


# --- node user data: AL2023 nodeadm NodeConfig (MIME part) or Bottlerocket settings (TOML) ---

NODEADM_CONTENT_TYPE = "application/node.eks.aws"
"""MIME type of a nodeadm NodeConfig part (awslabs/amazon-eks-ami nodeadm docs; EKS merges such parts of a managed
node group's launch-template user data with its own when the group uses an EKS AMI type, not a custom AMI)."""

MIME_BOUNDARY = "//genai-scale-nodeadm//"
"""Fixed so the rendered user data (and the launch template) only changes when the NodeConfig does."""

NODECONFIG_API = "node.eks.aws/v1alpha1"

FAST_PULL_EBS_THROUGHPUT_MIBPS = 600
"""gp3 throughput for a volume that takes parallel image pulls: nodeadm's fast-image-pull notes recommend "at least
600MiB/s" below which pulls may get slower (awslabs/amazon-eks-ami nodeadm/doc/examples.md, "Enabling fast image
pull", v20260724, checked 2026-12-06). Used when the image store sits on EBS (no instance store to stripe)."""

MEMLOCK_BYTES = 2 ** 53
"""Locked-memory limit (RLIMIT_MEMLOCK, soft and hard) of the containers on AL2023 EFA nodes: 8 PiB, in effect no
limit. libfabric/NCCL register (pin) host buffers with the EFA device; a container gets that right from its memlock
limit, not from the IPC_LOCK capability, which never reaches a non-root process's effective set
(kubernetes/kubernetes#56374, open). AL2023's base runtime spec sets only RLIMIT_NOFILE (nodeadm
``base-runtime-spec.json``), so without this the containers keep the small systemd default. Not RLIM_INFINITY
(2**64 - 1): nodeadm merges ``baseRuntimeSpec`` through a JSON round trip into float64 (``util.Merge``), which would
turn it into 2**64, an invalid rlimit; 2**53 survives that exactly. Bottlerocket sets memlock unlimited by itself
when it finds an EFA device (bottlerocket-core-kit, oci-defaults helper, since 2.7.0)."""

NOFILE_RLIMIT = {"type": "RLIMIT_NOFILE", "soft": 65536, "hard": 1048576}
"""nodeadm's own default (``base-runtime-spec.json``), repeated: a ``baseRuntimeSpec`` list replaces the default's."""


def node_config(spec: AcceleratorSpec, *, local_storage: bool, fast_image_pull: bool,
                efa: bool = False) -> dict | None:
    """The nodeadm ``NodeConfig`` (``node.eks.aws/v1alpha1``) an AL2023 node gets, or None when it would be empty:

    - ``spec.instance.localStorage.strategy: RAID0`` where the instance type has instance store (``local_storage``):
      the NVMe disks striped, kubelet's and containerd's storage (and SOCI's) moved onto them, so image layers,
      emptyDirs (weights) and pod logs live on local NVMe instead of the EBS volume;
    - ``spec.featureGates.FastImagePull: true`` (``fast_image_pull``): containerd pulls through the SOCI snapshotter
      in parallel-pull-unpack mode (20 concurrent downloads and 12 unpacks per image, 16 MB chunks: nodeadm's
      ``soci-snapshotter.config.toml``); AMIs from v20250821, instances with at least 4 vCPUs and 7 GiB (every
      accelerator type here); nodeadm calls the gate experimental;
    - with ``efa``, ``spec.containerd.baseRuntimeSpec.process.rlimits``: :data:`MEMLOCK_BYTES` of locked memory."""
    out: dict = {}
    if local_storage and spec.has_instance_store:
        out["instance"] = {"localStorage": {"strategy": "RAID0"}}
    if fast_image_pull:
        out["featureGates"] = {"FastImagePull": True}
    if efa:
        out["containerd"] = {"baseRuntimeSpec": {"process": {"rlimits": [
            dict(NOFILE_RLIMIT), {"type": "RLIMIT_MEMLOCK", "soft": MEMLOCK_BYTES, "hard": MEMLOCK_BYTES}]}}}
    if not out:
        return None
    return {"apiVersion": NODECONFIG_API, "kind": "NodeConfig", "spec": out}


def nodeadm_mime(config: dict) -> str:
    """A NodeConfig as a MIME multi-part document (the form EKS merges with its own for managed node groups and
    Karpenter merges for ``al2023`` EC2NodeClasses)."""
    return (f"MIME-Version: 1.0\n"
            f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"\n'
            f"\n"
            f"--{MIME_BOUNDARY}\n"
            f"Content-Type: {NODEADM_CONTENT_TYPE}\n"
            f"\n"
            f"{yaml.safe_dump(config, sort_keys=False)}"
            f"\n"
            f"--{MIME_BOUNDARY}--\n")


SOCI_PARALLEL_PULL = {"max-concurrent-downloads-per-image": 20, "concurrent-download-chunk-size": "16mb",
                      "max-concurrent-unpacks-per-image": 12, "discard-unpacked-layers": True}
"""Bottlerocket's SOCI parallel-pull-unpack tunables
(``settings.container-runtime-plugins.soci-snapshotter.parallel-pull-unpack``, Bottlerocket >= 1.44.0): the values
nodeadm uses on AL2023 and the AWS karpenter-blueprints ``soci-snapshotter`` blueprint recommends for ECR (20
downloads and 12 unpacks per image, 16 MB chunks, unpacked layers discarded); Bottlerocket's own defaults are 3, 1,
unlimited and false (bottlerocket.dev settings reference, container-runtime-plugins, 1.53.x; checked 2026-12-06)."""

EPHEMERAL_DIRS = ("/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods")
SOCI_DIR = "/var/lib/soci-snapshotter"


def bottlerocket_settings(spec: AcceleratorSpec, *, local_storage: bool, fast_image_pull: bool,
                          time_slicing_replicas: int | None = None) -> dict | None:
    """Bottlerocket settings (TOML user data; EKS merges it with its own, and these keys win) for an accelerator
    node, or None when there is nothing to set:

    - ``fast_image_pull``: the SOCI snapshotter in parallel-pull-unpack mode (no SOCI index needed; Bottlerocket
      >= 1.44.0 Kubernetes variants, NVIDIA ones included) with :data:`SOCI_PARALLEL_PULL`;
    - instance store (``local_storage``): bootstrap commands that stripe the NVMe disks (``apiclient ephemeral-storage
      init``) and bind containerd, kubelet, pod logs and SOCI's store onto them (Bottlerocket >= 1.22.0);
    - ``time_slicing_replicas`` on NVIDIA: the built-in device plugin time-slices each GPU (Bottlerocket >= 1.25.0),
      as the GPU operator's config does on AL2023 (same resource name, requests above one GPU allowed)."""
    settings: dict = {}
    if fast_image_pull:
        settings["container-runtime"] = {"snapshotter": "soci"}
        settings["container-runtime-plugins"] = {"soci-snapshotter": {
            "pull-mode": "parallel-pull-unpack", "parallel-pull-unpack": dict(SOCI_PARALLEL_PULL)}}
    if local_storage and spec.has_instance_store:
        dirs = [*EPHEMERAL_DIRS, *([SOCI_DIR] if fast_image_pull else [])]
        settings["bootstrap-commands"] = {"k8s-ephemeral-storage": {
            "commands": [["apiclient", "ephemeral-storage", "init"],
                         ["apiclient", "ephemeral-storage", "bind", "--dirs", *dirs]],
            "essential": True, "mode": "always"}}
    if time_slicing_replicas and spec.vendor_facts.time_slicing:
        settings["kubelet-device-plugins"] = {"nvidia": {
            "device-sharing-strategy": "time-slicing",
            "time-slicing": {"replicas": time_slicing_replicas, "rename-by-default": False,
                             "fail-requests-greater-than-one": False}}}
    return {"settings": settings} if settings else None


def node_user_data(spec: AcceleratorSpec, node_os: NodeOs, *, local_storage: bool, fast_image_pull: bool,
                   efa: bool = False, time_slicing_replicas: int | None = None) -> str | None:
    """Base64 user data for a managed node group's launch template, or None when there is nothing to say: a nodeadm
    NodeConfig in MIME multi-part form on AL2023 (:func:`node_config`), Bottlerocket settings as TOML
    (:func:`bottlerocket_settings`)."""
    if node_os == "bottlerocket":
        settings = bottlerocket_settings(spec, local_storage=local_storage, fast_image_pull=fast_image_pull,
                                         time_slicing_replicas=time_slicing_replicas)
        return base64.b64encode(tomli_w.dumps(settings).encode()).decode() if settings else None
    config = node_config(spec, local_storage=local_storage, fast_image_pull=fast_image_pull, efa=efa)
    return base64.b64encode(nodeadm_mime(config).encode()).decode() if config else None


def image_store_on_ebs(spec: AcceleratorSpec, *, local_storage: bool) -> bool:
    """Whether image layers land on the EBS volume (no instance store striped for them)."""
    return not (local_storage and spec.has_instance_store)
