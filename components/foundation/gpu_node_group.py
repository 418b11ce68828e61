"""GpuNodeGroup: an EKS managed node group of GPU or Inferentia/Trainium instances that scales from zero.

Creates
  - ``aws.ec2.LaunchTemplate`` ``<name>-lt``: IMDSv2 required (hop limit 1 by default: pods use IRSA, not the node
    role), encrypted gp3 volume sized for images and model weights, EFA interfaces when ``efa`` is on, the capacity
    reservation and ``capacity-block`` market for CAPACITY_BLOCK, cost tags on instances and volumes.
  - ``aws.eks.NodeGroup`` ``<name>``: AMI type derived from the accelerator (NVIDIA or Neuron), taints and labels,
    capacity type, rolling update settings, node auto-repair; ``scalingConfig.desiredSize`` is ignored after creation
    so ``pulumi up`` never fights the cluster autoscaler.
  - ``aws.autoscaling.Tag`` ``<name>-ca-<n>``: one per cluster-autoscaler tag on the group's Auto Scaling group
    (not propagated to instances). EKS does not copy node-group labels, taints or tags to the ASG; without these a
    pending GPU pod cannot bring a group up from zero.
  - with ``efa``: ``aws.ec2.PlacementGroup`` ``<name>-pg`` (cluster strategy) and ``aws.ec2.SecurityGroup``
    ``<name>-efa`` (all traffic within the group, as EFA requires), and the group is pinned to one subnet (one AZ).

Defaults: ON_DEMAND, min 0 / max 2 (scales to zero when idle), AL2023 accelerated AMI, 200 GiB gp3.
Security: IMDSv2 only, no SSH access, encrypted volumes (account EBS key unless ``kms_key_arn``).
Cost drivers: instance hours (GPU instances cost $1-$100+/h each), EBS volume per node.
Quotas: EC2 "Running On-Demand G and VT instances" / "P instances" / "Inf instances" vCPU quotas (and the Spot
equivalents) per Region; capacity blocks must be purchased beforehand.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field

from components.foundation import _gpu
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from problems import Problem, did_you_mean, missing
from components.catalog import accelerators as catalog
from components.catalog.accelerators import AcceleratorSpec

CapacityType = Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"]


class AcceleratorFacts(BaseModel):
    """Accelerator facts for an instance type outside the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    vendor: Literal["nvidia", "neuron"]
    """Who makes the accelerator: ``nvidia`` (GPU) or ``neuron`` (Inferentia/Trainium)."""
    accelerator: str = Field(min_length=1)
    """Accelerator model, e.g. ``L40S`` or ``Inferentia2``."""
    count: int = Field(ge=1, le=64)
    """GPUs or Neuron devices per instance."""
    memory_gib: float = Field(gt=0, le=1024)
    """Memory per GPU or Neuron device, in GiB."""
    neuron_cores: int = Field(default=0, ge=0)
    """NeuronCores per instance (Neuron only). Default: 0."""
    efa_interfaces: int = Field(default=0, ge=0)
    """Maximum EFA interfaces. Default: 0 (no EFA)."""


class GpuNodeGroupArgs(ArgsModel):
    """Arguments of :class:`GpuNodeGroup`."""

    cluster_name: PulumiInput
    """Name of the EKS cluster the group joins."""
    node_role_arn: PulumiInput
    """IAM role the nodes run as (``EksCluster.node_role_arn``)."""
    subnet_ids: PulumiInput
    """Private subnets the nodes may start in. With ``efa`` the first one is used (one AZ)."""
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
    node_os: Literal["al2023", "bottlerocket"] = "al2023"
    """Node OS: ``al2023`` (EKS AL2023 accelerated AMI) or ``bottlerocket``. Default: al2023."""
    efa: bool = False
    """Attach EFA interfaces, a cluster placement group and pin to one AZ. Default: off."""
    node_security_group_ids: PulumiInput = None
    """Security groups for EFA interfaces (the cluster's node security group). Default: none (required with efa)."""
    vpc_id: PulumiInput = None
    """VPC of the cluster, for the EFA security group. Default: none (required with efa)."""
    extra_labels: dict[str, str] = Field(default_factory=dict)
    """More Kubernetes node labels. Default: none."""
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
        out: list[Problem] = []
        spec = catalog.lookup(self.instance_type)
        if spec is None and self.accelerator is None:
            out.append(Problem("instance_type", self.instance_type,
                               "not in the accelerator catalogue" + did_you_mean(self.instance_type, catalog.CATALOG)
                               + "; give its accelerator facts (accelerator: vendor, accelerator, count, memory_gib)"))
        if self.min_size > self.max_size:
            out.append(Problem("min_size", self.min_size, f"must be <= max_size ({self.max_size})"))
        if self.desired_size is not None and not (self.min_size <= self.desired_size <= self.max_size):
            out.append(Problem("desired_size", self.desired_size,
                               f"must be between min_size ({self.min_size}) and max_size ({self.max_size})"))
        if self.capacity_type == "CAPACITY_BLOCK" and not self.capacity_reservation_id:
            out.append(missing("capacity_reservation_id", "required when capacity_type is CAPACITY_BLOCK "
                               "(the cr-... id of the purchased capacity block)"))
        if self.capacity_reservation_id and self.capacity_type != "CAPACITY_BLOCK":
            out.append(Problem("capacity_reservation_id", self.capacity_reservation_id,
                               f"only used with capacity_type CAPACITY_BLOCK (got {self.capacity_type})"))
        resolved = self.spec() if (spec or self.accelerator) else None
        if resolved is not None:
            if self.efa and not resolved.efa_supported:
                out.append(Problem("efa", True, f"{self.instance_type} does not support EFA"))
            if self.efa and self.node_security_group_ids is None:
                out.append(missing("node_security_group_ids", "required when efa is on"))
            if self.efa and self.vpc_id is None:
                out.append(missing("vpc_id", "required when efa is on"))
            if self.mig_config and not resolved.mig_capable:
                out.append(Problem("mig_config", self.mig_config,
                                   f"{resolved.accelerator} GPUs do not support MIG (A100, H100, H200 do)"))
            if self.time_slicing_replicas and resolved.vendor != "nvidia":
                out.append(Problem("time_slicing_replicas", self.time_slicing_replicas,
                                   "time-slicing applies to NVIDIA GPUs only"))
            if self.mig_config and self.time_slicing_replicas:
                out.append(Problem("time_slicing_replicas", self.time_slicing_replicas,
                                   "choose MIG or time-slicing, not both"))
        return out

    def spec(self) -> AcceleratorSpec:
        """Resolved accelerator facts (catalogue entry, or the facts given)."""
        if self.accelerator is not None:
            a = self.accelerator
            return catalog.custom(self.instance_type, vendor=a.vendor, accelerator=a.accelerator, count=a.count,
                                  memory_gib=a.memory_gib, neuron_cores=a.neuron_cores,
                                  efa_interfaces=a.efa_interfaces)
        spec = catalog.lookup(self.instance_type)
        assert spec is not None  # guaranteed by problems()
        return spec


def node_labels(name: str, spec: AcceleratorSpec, *, efa: bool = False, mig_config: str | None = None,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The Kubernetes labels every node of group ``name`` carries (what :attr:`GpuNodeGroup.labels` holds): node group,
    accelerator kind, vendor and count, the labels the autoscaler and device plugins read, then ``extra``."""
    return _gpu.labels(name, spec, efa=efa, mig_config=mig_config, extra=extra)


def node_taints(spec: AcceleratorSpec) -> list[dict[str, str]]:
    """The Kubernetes taints every node of a group with this accelerator carries (what :attr:`GpuNodeGroup.taints`
    holds): the vendor's device taint, so only pods that request the device land there."""
    return _gpu.taints(spec)


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
    accelerator: AcceleratorSpec
    """Accelerator facts of the instance type."""
    ami_type: str
    labels: dict[str, str]
    """Kubernetes labels every node carries (select pods onto the group with these)."""
    taints: list[dict[str, str]]
    """Kubernetes taints every node carries (pods need matching tolerations)."""
    min_size: int
    max_size: int
    node_group_name: pulumi.Output[str]
    asg_name: pulumi.Output[str]
    """Name of the Auto Scaling group EKS created for the group."""

    def __init__(self, name: str, args: GpuNodeGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}GpuNodeGroup", name, None, opts)
        spec = args.spec()
        self.instance_type = args.instance_type
        self.accelerator = spec
        self.ami_type = _gpu.ami_type(spec, args.node_os)
        self.labels = _gpu.labels(name, spec, efa=args.efa, mig_config=args.mig_config, extra=args.extra_labels)
        self.taints = _gpu.taints(spec)
        self.min_size, self.max_size = args.min_size, args.max_size
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        subnet_ids = _first(args.subnet_ids) if args.efa else args.subnet_ids

        self.placement_group = None
        self.efa_security_group = None
        lt_extra: dict = {}
        if args.efa:
            self.efa_security_group = aws.ec2.SecurityGroup(
                f"{name}-efa", description=f"EFA traffic between the nodes of {name}", vpc_id=args.vpc_id,
                ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True,
                          "description": "EFA: all traffic from the group itself"}],
                egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True,
                         "description": "EFA: all traffic to the group itself"}],
                tags={**tags, "Name": f"{name}-efa"}, opts=child)
            self.placement_group = aws.ec2.PlacementGroup(f"{name}-pg", strategy="cluster", tags=tags, opts=child)
            sgs = pulumi.Output.all(pulumi.Output.from_input(args.node_security_group_ids),
                                    self.efa_security_group.id).apply(lambda a: [*a[0], a[1]])
            lt_extra["network_interfaces"] = _gpu.efa_interfaces(spec, sgs)
            lt_extra["placement"] = {"group_name": self.placement_group.name}
        if args.capacity_type == "CAPACITY_BLOCK":
            lt_extra["instance_market_options"] = {"market_type": "capacity-block"}
            lt_extra["capacity_reservation_specification"] = {
                "capacity_reservation_target": {"capacity_reservation_id": args.capacity_reservation_id}}
            lt_extra["instance_type"] = args.instance_type

        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"genai-scale {name}: {args.instance_type} ({spec.accelerator} x{spec.count})",
            update_default_version=True,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required",
                              "http_put_response_hop_limit": args.imds_hop_limit, "instance_metadata_tags": "disabled"},
            block_device_mappings=_gpu.block_devices(args.node_os, args.disk_size_gib, kms_key_arn=args.kms_key_arn),
            tag_specifications=[{"resource_type": "instance", "tags": {**tags, "genai-scale/node-group": name}},
                                {"resource_type": "volume", "tags": {**tags, "genai-scale/node-group": name}}],
            tags=tags,
            **lt_extra,
            opts=child,
        )

        desired = args.desired_size if args.desired_size is not None else args.min_size
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=subnet_ids,
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
        owner_key = pulumi.Output.from_input(args.cluster_name).apply(lambda c: f"{_gpu.CA_PREFIX}/{c}")
        self.asg_tags = [
            aws.autoscaling.Tag(f"{name}-ca-{i}", autoscaling_group_name=self.asg_name,
                                tag={"key": key, "value": value, "propagate_at_launch": False}, opts=child)
            for i, (key, value) in enumerate([(owner_key, "owned"), *static.items()])
        ]

        self.register_outputs({
            "node_group_name": self.node_group_name,
            "asg_name": self.asg_name,
            "ami_type": self.ami_type,
            "labels": self.labels,
        })
