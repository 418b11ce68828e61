"""GpuNodeGroup: an EKS managed node group of GPU or Inferentia/Trainium instances that scales from zero.

Creates
  - ``aws.ec2.LaunchTemplate`` ``<name>-lt``: IMDSv2 required (hop limit 1 by default: pods use IRSA, not the node
    role), encrypted gp3 volume sized for images and model weights, EFA interfaces when ``efa`` is on, the capacity
    reservation and ``capacity-block`` market for CAPACITY_BLOCK, cost tags on instances and volumes; on AL2023 with
    instance store (``local_nvme``), user data with a nodeadm NodeConfig striping the NVMe disks (RAID0) for kubelet
    and containerd (docs/coldstart.md).
  - ``aws.eks.NodeGroup`` ``<name>``: AMI type derived from the accelerator (NVIDIA or Neuron), taints and labels,
    capacity type, rolling update settings, node auto-repair; ``scalingConfig.desiredSize`` is ignored after creation
    so ``pulumi up`` never fights the cluster autoscaler.
  - ``aws.autoscaling.Tag`` ``<name>-ca-<key>``: one per cluster-autoscaler tag on the group's Auto Scaling group
    (not propagated to instances). EKS does not copy node-group labels, taints or tags to the ASG; without these a
    pending GPU pod cannot bring a group up from zero. Each is named after its tag key (:func:`autoscaler_tag_suffix`:
    ``k8s.io/cluster-autoscaler/`` and ``node-template/`` dropped, other characters than letters, digits, ``.``,
    ``_``, ``-`` written ``-``): ``<name>-ca-owned`` (the ``k8s.io/cluster-autoscaler/<cluster>`` owner tag),
    ``<name>-ca-enabled``, ``<name>-ca-resources-nvidia.com-gpu``, ``<name>-ca-label-genai-scale-node-group``,
    ``<name>-ca-taint-nvidia.com-gpu``, ... so adding a label or taint never renames another tag's resource. They were
    ``<name>-ca-<i>`` by position before and carry that name as an alias (existing stacks update in place).
  - with ``efa``: ``aws.ec2.PlacementGroup`` ``<name>-pg`` (cluster strategy) and ``aws.ec2.SecurityGroup``
    ``<name>-efa`` (all traffic within the group, as EFA requires), and the group is pinned to one subnet (one AZ).

Give ``cluster=<EksCluster>`` and the cluster name, node role, subnets, Kubernetes version and (for EFA) the node security
group and VPC come from it; explicit inputs still win.

Defaults: ON_DEMAND, min 0 / max 2 (scales to zero when idle), AL2023 accelerated AMI, 200 GiB gp3, the accelerator's
own taint only (``extra_taints`` adds more).
Security: IMDSv2 only, no SSH access, encrypted volumes (account EBS key unless ``kms_key_arn``).
Cost drivers: instance hours (GPU instances cost $1-$100+/h each), EBS volume per node.
Quotas: EC2 "Running On-Demand G and VT instances" / "P instances" / "Inf instances" vCPU quotas (and the Spot
equivalents) per Region; capacity blocks must be purchased beforehand.
"""

from __future__ import annotations

import re
from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field

from components.foundation import _gpu
from components.foundation._names import duplicates, name_part, renamed
from components.foundation.eks_cluster import cluster_input_problems, from_cluster
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from problems import Problem, did_you_mean, missing
from components.catalog import accelerators as catalog
from components.catalog.accelerators import AcceleratorFacts, AcceleratorSpec
from components.catalog.vendors import NodeOs

CapacityType = Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"]
TaintEffect = Literal["NoSchedule", "NoExecute", "PreferNoSchedule"]

# Taint syntax: Kubernetes qualified names (key: optional DNS-subdomain prefix and "/", then a name; value: a label
# value), limited by the EKS API to 63 characters for the key and the value (EKS API Reference, "Taint"; Kubernetes
# "Labels and Selectors", syntax and character set; checked 2026-11).
_TAINT_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_TAINT_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
EKS_TAINT_MAX = 63


class NodeTaint(BaseModel):
    """A Kubernetes node taint, ``key=value:effect``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    key: str
    """Taint key: an optional DNS-subdomain prefix and ``/``, then letters, digits, ``-``, ``_``, ``.`` (starting and
    ending alphanumeric); 63 characters at most (the EKS limit), e.g. ``dedicated`` or ``example.com/team``."""
    value: str = ""
    """Taint value: up to 63 letters, digits, ``-``, ``_``, ``.`` (starting and ending alphanumeric). Default: empty."""
    effect: TaintEffect = "NoSchedule"
    """``NoSchedule``, ``NoExecute`` or ``PreferNoSchedule``. Default: NoSchedule."""


class GpuNodeGroupArgs(ArgsModel):
    """Arguments of :class:`GpuNodeGroup`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` the group joins. ``cluster_name``, ``node_role_arn``,
    ``subnet_ids``, ``kubernetes_version``, ``node_security_group_ids`` and ``vpc_id`` default from it (explicit values
    win). Default: none (give those inputs explicitly)."""
    cluster_name: PulumiInput = None
    """Name of the EKS cluster the group joins. Default: ``cluster.cluster_name`` (required without ``cluster``)."""
    node_role_arn: PulumiInput = None
    """IAM role the nodes run as. Default: ``cluster.node_role_arn`` (required without ``cluster``)."""
    subnet_ids: PulumiInput = None
    """Private subnets the nodes may start in. With ``efa`` the first one is used (one AZ). Default:
    ``cluster.subnet_ids`` (required without ``cluster``)."""
    kubernetes_version: str | None = Field(default=None, pattern=r"^1\.\d{2}$")
    """Kubernetes minor version of the nodes, e.g. ``1.35``. Default: ``cluster.version`` with ``cluster`` (the nodes
    follow control-plane upgrades); without it, unset (EKS starts the group at the cluster's version)."""
    instance_type: str = Field(min_length=1)
    """EC2 instance type, e.g. ``g5.2xlarge``. Must be in the accelerator catalogue unless ``accelerator`` is given."""
    accelerator: AcceleratorFacts | None = None
    """Accelerator facts for an instance type outside the catalogue. Default: taken from the catalogue."""
    min_size: int = Field(default=0, ge=0, le=1000)
    """Fewest nodes. Default: 0, so an idle group costs nothing."""
    max_size: int = Field(default=2, ge=1, le=1000)
    """Most nodes the autoscaler may start. Default: 2."""
    desired_size: int | None = Field(default=None, ge=0, le=1000)
    """Nodes at creation; the autoscaler owns it afterwards. Default: ``min_size``."""
    capacity_type: CapacityType = "ON_DEMAND"
    """``ON_DEMAND``, ``SPOT`` or ``CAPACITY_BLOCK`` (needs ``capacity_reservation_id``). Default: ON_DEMAND."""
    capacity_reservation_id: str | None = Field(default=None, pattern=r"^cr-[0-9a-f]{8,17}$")
    """EC2 capacity reservation (``cr-...``) of a purchased capacity block. Default: none."""
    disk_size_gib: int = Field(default=200, ge=20, le=16384)
    """Size of the encrypted gp3 volume for images and model weights, in GiB. Default: 200."""
    node_os: NodeOs = "al2023"
    """Node OS: ``al2023`` (EKS AL2023 accelerated AMI) or ``bottlerocket``. Default: al2023."""
    efa: bool = False
    """Attach EFA interfaces, a cluster placement group and pin to one AZ; on AL2023 the containers also get a
    locked-memory limit large enough for EFA memory registration (:data:`components.foundation._gpu.MEMLOCK_BYTES`).
    Default: off."""
    fast_image_pull: bool = True
    """Pull images with the SOCI snapshotter in parallel-pull-unpack mode: layers download in parallel chunks and
    unpack concurrently (the vLLM image is 12-13 GB pulled). AL2023: nodeadm's ``FastImagePull`` feature gate
    (AMI v20250821 or later; nodeadm calls it experimental); Bottlerocket: the SOCI settings (1.44.0 or later). Needs
    no SOCI index in the image. Where the image store is on EBS (no instance store), the volume gets 600 MiB/s of
    gp3 throughput, as nodeadm recommends. EKS gives a managed node group the newest AMI release of its Kubernetes
    version at creation and on version updates; a group held on an older release must turn this off, since an older
    nodeadm or Bottlerocket refuses a setting it does not know. Default: on."""
    local_nvme: bool = True
    """On AL2023 nodes whose instance type has instance store (catalogue ``instance_store_gb``: g5, g6, g6e, p4d, p5,
    trn1; not inf2), stripe the NVMe disks as RAID0 through nodeadm (``spec.instance.localStorage.strategy``) and
    put kubelet and containerd storage on them: image layers unpack, and emptyDirs (vLLM compile caches, downloaded
    weights) live, on local NVMe rather than the EBS volume (on Bottlerocket through ``apiclient ephemeral-storage``
    bootstrap commands). The disks are wiped when the instance stops. Default: on (ignored on EBS-only types)."""
    node_security_group_ids: PulumiInput = None
    """Security groups for EFA interfaces (the cluster's node security group). Default: ``[cluster.node_security_group_id]``
    with ``cluster``, else none (required with efa)."""
    vpc_id: PulumiInput = None
    """VPC of the cluster, for the EFA security group. Default: ``cluster.vpc_id`` with ``cluster``, else none
    (required with efa)."""
    extra_labels: dict[str, str] = Field(default_factory=dict)
    """More Kubernetes node labels. Default: none."""
    extra_taints: list[NodeTaint] = Field(default_factory=list)
    """More Kubernetes node taints, besides the accelerator's own (``nvidia.com/gpu`` or ``aws.amazon.com/neuron``);
    they go on the node group, :attr:`GpuNodeGroup.taints` and the autoscaler's node-template tags (so pending pods
    that tolerate them still scale the group up from zero). One taint per key. Default: none."""
    mig_config: str | None = None
    """MIG profile set for the GPU operator's MIG manager (label ``nvidia.com/mig.config``). Default: MIG off."""
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=64)
    """GPU time-slicing replicas per GPU, as configured on the GPU operator. Default: no time-slicing."""
    max_unavailable_percentage: int = Field(default=33, ge=1, le=100)
    """Share of nodes replaced at once during updates. Default: 33."""
    imds_hop_limit: int = Field(default=1, ge=1, le=2)
    """IMDSv2 response hop limit: 1 keeps pods off the node role; 2 lets pods reach IMDS. Default: 1."""
    kms_key_arn: PulumiInput = None
    """KMS key for the EBS volumes. Default: the account's EBS key (still encrypted)."""
    scale_down_unneeded_time: str | None = Field(default=None, pattern=r"^\d+[smh]$")
    """Per-group cluster-autoscaler scale-down delay (e.g. ``15m``). Default: the autoscaler's global setting."""
    node_repair: bool = True
    """EKS node auto-repair of unhealthy nodes. Default: on."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation and other tags for every taggable child. Default: none."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = cluster_input_problems(
            self, {"cluster_name": "cluster_name", "node_role_arn": "node_role_arn", "subnet_ids": "subnet_ids",
                   **({"node_security_group_ids": "node_security_group_id", "vpc_id": "vpc_id"} if self.efa else {})},
            required=("cluster_name", "node_role_arn", "subnet_ids"))
        out += self._taint_problems()
        spec = catalog.lookup(self.instance_type)
        if spec is None and self.accelerator is None:
            out.append(Problem("instance_type", self.instance_type,
                               "not in the accelerator catalogue" + did_you_mean(self.instance_type, catalog.CATALOG)
                               + "; give its accelerator facts (accelerator: vendor, accelerator, count, memory_gib)"))
        if self.min_size > self.max_size:
            out.append(Problem("min_size", self.min_size, f"must be <= max_size ({self.max_size})", ("max_size",)))
        if self.desired_size is not None and not (self.min_size <= self.desired_size <= self.max_size):
            out.append(Problem("desired_size", self.desired_size,
                               f"must be between min_size ({self.min_size}) and max_size ({self.max_size})",
                               ("min_size", "max_size")))
        if self.capacity_type == "CAPACITY_BLOCK" and not self.capacity_reservation_id:
            out.append(missing("capacity_reservation_id", "required when capacity_type is CAPACITY_BLOCK "
                               "(the cr-... id of the purchased capacity block)", ("capacity_type",)))
        if self.capacity_reservation_id and self.capacity_type != "CAPACITY_BLOCK":
            out.append(Problem("capacity_reservation_id", self.capacity_reservation_id,
                               f"only used with capacity_type CAPACITY_BLOCK (got {self.capacity_type})",
                               ("capacity_type",)))
        resolved = self.spec() if (spec or self.accelerator) else None
        if resolved is not None:
            if self.efa and not resolved.efa_supported:
                out.append(Problem("efa", True, f"{self.instance_type} does not support EFA", ("instance_type",)))
            if self.efa and self.node_security_group_ids is None and self.cluster is None:
                out.append(missing("node_security_group_ids", "required when efa is on (or pass cluster=EksCluster)",
                                   ("efa", "cluster")))
            if self.efa and self.vpc_id is None and self.cluster is None:
                out.append(missing("vpc_id", "required when efa is on (or pass cluster=EksCluster)", ("efa", "cluster")))
            out += self._tag_name_problems(resolved)
            if self.mig_config and not resolved.mig_capable:
                out.append(Problem("mig_config", self.mig_config,
                                   f"{resolved.accelerator} GPUs do not support MIG (A100, H100, H200 do)",
                                   ("instance_type",)))
            if self.time_slicing_replicas and not resolved.time_slicing_supported:
                out.append(Problem("time_slicing_replicas", self.time_slicing_replicas,
                                   "time-slicing applies to NVIDIA GPUs only", ("instance_type",)))
            if self.mig_config and self.node_os == "bottlerocket":
                out.append(Problem("mig_config", self.mig_config,
                                   "MIG with the GPU operator's MIG manager needs node_os al2023 (Bottlerocket "
                                   "partitions GPUs through its own settings, which genai-scale does not render)",
                                   ("node_os",)))
            if self.mig_config and self.time_slicing_replicas:
                out.append(Problem("time_slicing_replicas", self.time_slicing_replicas,
                                   "choose MIG or time-slicing, not both", ("mig_config",)))
        return out

    def _taint_problems(self) -> list[Problem]:
        out: list[Problem] = []
        spec = catalog.lookup(self.instance_type) if self.accelerator is None else self.spec()
        own = {t["key"]: t for t in _gpu.taints(spec)} if spec is not None else {}
        first: dict[str, int] = {}
        for i, t in enumerate(self.extra_taints):
            if len(t.key) > EKS_TAINT_MAX or not _TAINT_KEY.match(t.key):
                out.append(Problem(f"extra_taints[{i}].key", t.key, "a taint key: an optional DNS-subdomain prefix and "
                                   "'/', then letters, digits, '-', '_', '.' starting and ending alphanumeric; at most "
                                   f"{EKS_TAINT_MAX} characters (EKS), e.g. example.com/dedicated"))
            if len(t.value) > EKS_TAINT_MAX or not _TAINT_VALUE.match(t.value):
                out.append(Problem(f"extra_taints[{i}].value", t.value, "empty, or up to 63 letters, digits, '-', '_', "
                                   "'.' starting and ending alphanumeric"))
            if t.key in own:
                o = own[t.key]
                out.append(Problem(f"extra_taints[{i}].key", t.key,
                                   f"another key: the node group already carries the accelerator's taint "
                                   f"{o['key']}={o['value']}:{o['effect']}", ("instance_type",)))
            elif t.key in first:
                out.append(Problem(f"extra_taints[{i}].key", t.key,
                                   f"one taint per key (extra_taints[{first[t.key]}] has it already; the autoscaler's "
                                   "node-template tag holds one taint per key)", (f"extra_taints[{first[t.key]}]",)))
            else:
                first[t.key] = i
        return out

    def _tag_name_problems(self, spec: AcceleratorSpec) -> list[Problem]:
        """Extra labels or taints whose autoscaler tag would get the child name of another tag."""
        taints = _gpu.taints(spec) + [t.model_dump() for t in self.extra_taints]
        group_labels = _gpu.labels("group", spec, efa=self.efa, mig_config=self.mig_config, node_os=self.node_os,
                                   time_slicing_replicas=self.time_slicing_replicas, extra=self.extra_labels)
        keys = list(_gpu.autoscaler_tags(None, spec, group_labels,
                                         taints, disk_size_gib=self.disk_size_gib, efa=self.efa,
                                         time_slicing_replicas=self.time_slicing_replicas,
                                         scale_down_unneeded_time=self.scale_down_unneeded_time))
        template = f"{_gpu.CA_PREFIX}/node-template/"
        where = {f"{template}label/{k}": f"extra_labels.{k}" for k in self.extra_labels}
        where.update({f"{template}taint/{t.key}": f"extra_taints[{i}].key" for i, t in enumerate(self.extra_taints)})
        out = []
        for suffix, idx in duplicates([autoscaler_tag_suffix(k) for k in keys]).items():
            clash = [keys[i] for i in idx]
            for key in clash:
                if key in where:
                    others = ", ".join(k.removeprefix(template) for k in clash if k != key)
                    out.append(Problem(where[key], key.removeprefix(template).split("/", 1)[1],
                                       f"a key whose autoscaler tag resource name (<group>-ca-{suffix}) differs from "
                                       f"that of {others}: names write '/' and characters other than letters, digits, "
                                       "'.', '_', '-' as '-'"))
        return out

    def spec(self) -> AcceleratorSpec:
        """Resolved accelerator facts (catalogue entry, or the facts given)."""
        if self.accelerator is not None:
            return self.accelerator.spec(self.instance_type)
        spec = catalog.lookup(self.instance_type)
        assert spec is not None  # guaranteed by problems()
        return spec


def node_labels(name: str, spec: AcceleratorSpec, *, efa: bool = False, mig_config: str | None = None,
                extra: dict[str, str] | None = None, time_slicing_replicas: int | None = None,
                node_os: NodeOs = "al2023") -> dict[str, str]:
    """The Kubernetes labels every node of group ``name`` carries (what :attr:`GpuNodeGroup.labels` holds): node group,
    accelerator kind, vendor and count, the labels the autoscaler and device plugins read (with time-slicing, the
    device-plugin config of this group's share count), then ``extra``."""
    return _gpu.labels(name, spec, efa=efa, mig_config=mig_config, extra=extra,
                       time_slicing_replicas=time_slicing_replicas, node_os=node_os)


def node_taints(spec: AcceleratorSpec, extra: list[NodeTaint] | None = None) -> list[dict[str, str]]:
    """The Kubernetes taints every node of a group with this accelerator carries (what :attr:`GpuNodeGroup.taints`
    holds): the vendor's device taint, so only pods that request the device land there, then ``extra``."""
    return _gpu.taints(spec) + [t.model_dump() for t in extra or []]


OWNER_TAG_SUFFIX = "owned"
"""Child-name suffix of the ``k8s.io/cluster-autoscaler/<cluster>=owned`` tag (its key holds the cluster name, which
is only known once the cluster exists)."""


def autoscaler_tag_suffix(key: str) -> str:
    """The part of an autoscaler tag's child name ``<group>-ca-<suffix>`` that comes from its key: the key without
    ``k8s.io/cluster-autoscaler/`` and ``node-template/``, through :func:`name_part` (``/`` and other characters than
    letters, digits, ``.``, ``_``, ``-`` become ``-``). ``.../enabled`` -> ``enabled``,
    ``.../node-template/label/genai-scale/node-group`` -> ``label-genai-scale-node-group``,
    ``.../node-template/resources/nvidia.com/gpu`` -> ``resources-nvidia.com-gpu``."""
    rest = key.removeprefix(f"{_gpu.CA_PREFIX}/").removeprefix("node-template/")
    return name_part(rest)


def autoscaler_tag_children(name: str, static_tags: dict[str, str]) -> list[tuple[str, str, str | None, str]]:
    """``(child name, old positional name, key, value)`` of every autoscaler tag of group ``name``: the owner tag first
    (key None: it holds the cluster name), then ``static_tags`` in their order (:func:`_gpu.autoscaler_tags` sorts them
    by key). The old name is the one the tag had when children were named by position (``<name>-ca-<i>``)."""
    out: list[tuple[str, str, str | None, str]] = [(f"{name}-ca-{OWNER_TAG_SUFFIX}", f"{name}-ca-0", None, "owned")]
    for i, (key, value) in enumerate(static_tags.items(), start=1):
        out.append((f"{name}-ca-{autoscaler_tag_suffix(key)}", f"{name}-ca-{i}", key, value))
    return out


def _first(ids):
    return pulumi.Output.from_input(ids).apply(lambda xs: [xs[0]])


class GpuNodeGroup(pulumi.ComponentResource):
    """An accelerator node group that the cluster autoscaler can scale from zero. See the module docstring."""

    node_group: aws.eks.NodeGroup
    """The EKS managed node group."""
    launch_template: aws.ec2.LaunchTemplate
    """Launch template with IMDSv2, encrypted volumes and (optionally) EFA and the capacity reservation."""
    asg_tags: list[aws.autoscaling.Tag]
    """Cluster-autoscaler tags on the group's Auto Scaling group."""
    placement_group: aws.ec2.PlacementGroup | None
    """Cluster placement group (EFA only)."""
    efa_security_group: aws.ec2.SecurityGroup | None
    """Security group letting the group's EFA interfaces talk to each other (EFA only)."""
    instance_type: str
    """EC2 instance type of the nodes."""
    accelerator: AcceleratorSpec
    """Accelerator facts of the instance type."""
    ami_type: str
    """EKS AMI type of the nodes (the accelerator's driver stack on the chosen OS)."""
    labels: dict[str, str]
    """Kubernetes labels every node carries (select pods onto the group with these)."""
    taints: list[dict[str, str]]
    """Kubernetes taints every node carries (pods need matching tolerations)."""
    min_size: int
    """Fewest nodes."""
    max_size: int
    """Most nodes the autoscaler may start."""
    node_group_name: pulumi.Output[str]
    """Name of the EKS node group."""
    asg_name: pulumi.Output[str]
    """Name of the Auto Scaling group EKS created for the group."""

    def __init__(self, name: str, args: GpuNodeGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}GpuNodeGroup", name, None, opts)
        cluster = args.cluster
        cluster_name = from_cluster(args.cluster_name, cluster, "cluster_name")
        node_role_arn = from_cluster(args.node_role_arn, cluster, "node_role_arn")
        vpc_id = from_cluster(args.vpc_id, cluster, "vpc_id")
        sg_ids = args.node_security_group_ids
        if sg_ids is None and getattr(cluster, "node_security_group_id", None) is not None:
            sg_ids = [cluster.node_security_group_id]
        spec = args.spec()
        self.instance_type = args.instance_type
        self.accelerator = spec
        self.ami_type = _gpu.ami_type(spec, args.node_os)
        self.labels = _gpu.labels(name, spec, efa=args.efa, mig_config=args.mig_config, extra=args.extra_labels,
                                  time_slicing_replicas=args.time_slicing_replicas, node_os=args.node_os)
        self.taints = node_taints(spec, args.extra_taints)
        self.min_size, self.max_size = args.min_size, args.max_size
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        subnet_ids = from_cluster(args.subnet_ids, cluster, "subnet_ids")
        subnet_ids = _first(subnet_ids) if args.efa else subnet_ids

        self.placement_group = None
        self.efa_security_group = None
        lt_extra: dict = {}
        if args.efa:
            self.efa_security_group = aws.ec2.SecurityGroup(
                f"{name}-efa", description=f"EFA traffic between the nodes of {name}", vpc_id=vpc_id,
                ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True,
                          "description": "EFA: all traffic from the group itself"}],
                egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True,
                         "description": "EFA: all traffic to the group itself"}],
                tags={**tags, "Name": f"{name}-efa"}, opts=child)
            self.placement_group = aws.ec2.PlacementGroup(f"{name}-pg", strategy="cluster", tags=tags, opts=child)
            sgs = pulumi.Output.all(pulumi.Output.from_input(sg_ids),
                                    self.efa_security_group.id).apply(lambda a: [*a[0], a[1]])
            lt_extra["network_interfaces"] = _gpu.efa_interfaces(spec, sgs)
            lt_extra["placement"] = {"group_name": self.placement_group.name}
        if args.capacity_type == "CAPACITY_BLOCK":
            lt_extra["instance_market_options"] = {"market_type": "capacity-block"}
            lt_extra["capacity_reservation_specification"] = {
                "capacity_reservation_target": {"capacity_reservation_id": args.capacity_reservation_id}}
            lt_extra["instance_type"] = args.instance_type

        user_data = _gpu.node_user_data(spec, args.node_os, local_storage=args.local_nvme,
                                        fast_image_pull=args.fast_image_pull, efa=args.efa,
                                        time_slicing_replicas=args.time_slicing_replicas)
        throughput = (_gpu.FAST_PULL_EBS_THROUGHPUT_MIBPS
                      if args.fast_image_pull and _gpu.image_store_on_ebs(spec, local_storage=args.local_nvme)
                      else None)
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"genai-scale {name}: {args.instance_type} ({spec.accelerator} x{spec.count})",
            update_default_version=True,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required",
                              "http_put_response_hop_limit": args.imds_hop_limit, "instance_metadata_tags": "disabled"},
            block_device_mappings=_gpu.block_devices(args.node_os, args.disk_size_gib, kms_key_arn=args.kms_key_arn,
                                                     **({"throughput_mibps": throughput} if throughput else {})),
            **({"user_data": user_data} if user_data else {}),
            tag_specifications=[{"resource_type": "instance", "tags": {**tags, "genai-scale/node-group": name}},
                                {"resource_type": "volume", "tags": {**tags, "genai-scale/node-group": name}}],
            tags=tags,
            **lt_extra,
            opts=child,
        )

        desired = args.desired_size if args.desired_size is not None else args.min_size
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=cluster_name,
            node_role_arn=node_role_arn,
            subnet_ids=subnet_ids,
            version=from_cluster(args.kubernetes_version, cluster, "version"),
            ami_type=self.ami_type,
            capacity_type=args.capacity_type,
            instance_types=None if args.capacity_type == "CAPACITY_BLOCK" else [args.instance_type],
            scaling_config={"min_size": args.min_size, "max_size": args.max_size, "desired_size": desired},
            update_config={"max_unavailable_percentage": args.max_unavailable_percentage},
            launch_template={"id": self.launch_template.id, "version": self.launch_template.latest_version.apply(str)},
            labels=self.labels,
            taints=_gpu.eks_taints(self.taints),
            node_repair_config={"enabled": args.node_repair},
            tags={**tags, "genai-scale/node-group": name},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )
        self.node_group_name = self.node_group.node_group_name
        self.asg_name = self.node_group.resources.apply(
            lambda rs: rs[0]["autoscaling_groups"][0]["name"] if rs and rs[0].get("autoscaling_groups") else "")

        static = _gpu.autoscaler_tags(None, spec, self.labels, self.taints, disk_size_gib=args.disk_size_gib,
                                      efa=args.efa, time_slicing_replicas=args.time_slicing_replicas,
                                      scale_down_unneeded_time=args.scale_down_unneeded_time)
        owner_key = pulumi.Output.from_input(cluster_name).apply(lambda c: f"{_gpu.CA_PREFIX}/{c}")
        self.asg_tags = [
            aws.autoscaling.Tag(child_name, autoscaling_group_name=self.asg_name,
                                tag={"key": owner_key if key is None else key, "value": value,
                                     "propagate_at_launch": False},
                                opts=renamed(self, old_name, child_name))
            for child_name, old_name, key, value in autoscaler_tag_children(name, static)
        ]

        self.register_outputs({
            "node_group_name": self.node_group_name,
            "asg_name": self.asg_name,
            "ami_type": self.ami_type,
            "labels": self.labels,
        })
