"""Stack section: foundation. Network, EKS cluster, accelerator node groups, GPU operator, Neuron plugin, autoscaler."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components import versions
from components.errors import ArgsError
from problems import Problem
from components.foundation.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.foundation.eks_cluster import EksCluster, EksClusterArgs
from components.foundation.gpu_node_group import AcceleratorFacts, GpuNodeGroup, GpuNodeGroupArgs
from components.foundation.gpu_operator import GpuOperator, GpuOperatorArgs
from components.foundation.network import ExistingVpc, Network, NetworkArgs
from components.foundation.neuron_device_plugin import NeuronDevicePlugin, NeuronDevicePluginArgs
from infra.sections.base import BuildContext, SettingsModel, translate


class TargetsSettings(SettingsModel):
    """Load targets of the tier; later components and the capacity model size themselves from these."""

    requests_per_second: float = Field(default=1, gt=0)
    """Sustained requests per second the stack must serve. Default: 1."""
    concurrent_streams: int = Field(default=4, ge=1)
    """Concurrent streaming responses. Default: 4."""
    p95_latency_ms: int = Field(default=5000, ge=50)
    """p95 end-to-end latency SLO in milliseconds. Default: 5000."""
    tokens_per_second: float = Field(default=100, gt=0)
    """Output tokens per second across the stack. Default: 100."""


class ExistingVpcSettings(SettingsModel):
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    """Existing VPC id."""
    private_subnet_ids: list[str] = Field(min_length=1)
    """Existing private subnets."""
    public_subnet_ids: list[str] = Field(default_factory=list)
    """Existing public subnets. Default: none."""
    vpc_cidr: str = "10.0.0.0/16"
    """CIDR of the existing VPC. Default: 10.0.0.0/16."""


class NetworkSettings(SettingsModel):
    cidr_block: str = "10.0.0.0/16"
    """VPC CIDR. Default: 10.0.0.0/16."""
    az_count: int = Field(default=2, ge=1, le=6)
    """Availability Zones. Default: 2."""
    nat_gateways: Literal["none", "single", "per_az"] = "single"
    """NAT gateways: none, single or per_az. Default: single."""
    s3_gateway_endpoint: bool = True
    """S3 gateway endpoint. Default: on."""
    interface_endpoints: list[str] = Field(default_factory=list)
    """Interface endpoints (ecr.api, ecr.dkr, sts, ...). Default: none."""
    existing: ExistingVpcSettings | None = None
    """Adopt an existing VPC instead of creating one. Default: create."""


class ClusterSettings(SettingsModel):
    version: str = versions.KUBERNETES_VERSION
    """Kubernetes minor version. Default: the pinned one."""
    endpoint_public_access: bool = False
    """Public API endpoint (limited to publicAccessCidrs). Default: off."""
    public_access_cidrs: list[str] = Field(default_factory=list)
    """CIDRs allowed to reach a public endpoint. Default: none."""
    log_retention_days: int = Field(default=90, ge=1, le=3653)
    """Control-plane log retention. Default: 90."""
    admin_principal_arns: list[str] = Field(default_factory=list)
    """IAM principals with cluster-admin access entries. Default: none (only the creator)."""
    system_instance_type: str = "m7i.large"
    """System node instance type. Default: m7i.large."""
    system_min_size: int = Field(default=2, ge=1)
    """Fewest system nodes. Default: 2."""
    system_max_size: int = Field(default=4, ge=1)
    """Most system nodes. Default: 4."""


class AcceleratorFactsSettings(SettingsModel):
    vendor: Literal["nvidia", "neuron"]
    accelerator: str
    count: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    neuron_cores: int = Field(default=0, ge=0)
    efa_interfaces: int = Field(default=0, ge=0)


class NodeGroupSettings(SettingsModel):
    """One accelerator node group (the map key is its name)."""

    instance_type: str
    """EC2 instance type (catalogue: inf2.*, g5.*, g6.*, g6e.*, p4d/p4de, p5/p5e/p5en, trn1.*)."""
    min_size: int = Field(default=0, ge=0, le=1000)
    """Fewest nodes. Default: 0."""
    max_size: int = Field(default=2, ge=1, le=1000)
    """Most nodes. Default: 2."""
    desired_size: int | None = Field(default=None, ge=0, le=1000)
    """Nodes at creation. Default: minSize."""
    capacity_type: Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"] = "ON_DEMAND"
    """ON_DEMAND, SPOT or CAPACITY_BLOCK. Default: ON_DEMAND."""
    capacity_reservation_id: str | None = None
    """cr-... of a purchased capacity block (CAPACITY_BLOCK only)."""
    disk_size_gib: int = Field(default=200, ge=20, le=16384)
    """Node volume in GiB. Default: 200."""
    node_os: Literal["al2023", "bottlerocket"] = "al2023"
    """al2023 or bottlerocket. Default: al2023."""
    efa: bool = False
    """EFA interfaces + placement group. Default: off."""
    accelerator: AcceleratorFactsSettings | None = None
    """Accelerator facts for an instance type outside the catalogue."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra node labels. Default: none."""
    mig_config: str | None = None
    """MIG profile set (nvidia.com/mig.config). Default: none."""
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=64)
    """GPU time-slicing replicas. Default: none."""
    scale_down_unneeded_time: str | None = None
    """Per-group autoscaler scale-down delay, e.g. 10m. Default: the autoscaler's."""


class GpuOperatorSettings(SettingsModel):
    enabled: bool = True
    """Install when any NVIDIA node group exists. Default: on."""
    chart_version: str = versions.GPU_OPERATOR.version
    """Chart version. Default: pinned."""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    """MIG strategy. Default: none."""
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=64)
    """Time-slicing replicas per GPU. Default: off."""
    dcgm_exporter: bool = True
    """DCGM exporter. Default: on."""


class NeuronSettings(SettingsModel):
    enabled: bool = True
    """Install when any Neuron node group exists. Default: on."""
    chart_version: str = versions.NEURON_HELM_CHART.version
    """Chart version. Default: pinned."""
    scheduler_extension: bool = True
    """Neuron scheduler extension. Default: on."""


class ClusterAutoscalerSettings(SettingsModel):
    enabled: bool = True
    """Install the cluster autoscaler. Default: on."""
    chart_version: str = versions.CLUSTER_AUTOSCALER_CHART.version
    """Chart version. Default: pinned."""
    expander: Literal["least-waste", "priority", "most-pods", "random", "price"] = "least-waste"
    """Expander. Default: least-waste."""
    scale_down_unneeded_time: str = Field(default="15m", pattern=r"^\d+[smh]$")
    """Scale-down delay for unneeded nodes. Default: 15m."""
    scale_down_delay_after_add: str = Field(default="10m", pattern=r"^\d+[smh]$")
    """Scale-down pause after a scale-up. Default: 10m."""
    scale_down_utilization_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Utilization threshold. Default: 0.5."""


KEYS = {
    "tags": dict[str, str],
    "targets": TargetsSettings,
    "network": NetworkSettings,
    "cluster": ClusterSettings,
    "nodeGroups": dict[str, NodeGroupSettings],
    "gpuOperator": GpuOperatorSettings,
    "neuron": NeuronSettings,
    "clusterAutoscaler": ClusterAutoscalerSettings,
}

_PLACEHOLDER = {"cluster_name": "cluster", "node_role_arn": "role", "subnet_ids": ["subnet"],
                "node_security_group_ids": ["sg"], "vpc_id": "vpc"}


def _node_group_args(name: str, ng: NodeGroupSettings, **wiring) -> GpuNodeGroupArgs:
    return GpuNodeGroupArgs(
        instance_type=ng.instance_type, min_size=ng.min_size, max_size=ng.max_size, desired_size=ng.desired_size,
        capacity_type=ng.capacity_type, capacity_reservation_id=ng.capacity_reservation_id,
        disk_size_gib=ng.disk_size_gib, node_os=ng.node_os, efa=ng.efa,
        accelerator=AcceleratorFacts(**ng.accelerator.model_dump()) if ng.accelerator else None,
        extra_labels=dict(ng.labels), mig_config=ng.mig_config, time_slicing_replicas=ng.time_slicing_replicas,
        scale_down_unneeded_time=ng.scale_down_unneeded_time, **wiring)


def _cluster_args(c: ClusterSettings, **wiring) -> EksClusterArgs:
    return EksClusterArgs(version=c.version, endpoint_public_access=c.endpoint_public_access,
                          public_access_cidrs=list(c.public_access_cidrs), log_retention_days=c.log_retention_days,
                          admin_principal_arns=list(c.admin_principal_arns), system_instance_type=c.system_instance_type,
                          system_min_size=c.system_min_size, system_max_size=c.system_max_size, **wiring)


def problems(cfg) -> list[Problem]:
    """Cross-field rules, checked by building each component's args with placeholder wiring."""
    out: list[Problem] = []
    for name, ng in cfg.node_groups.items():
        try:
            _node_group_args(name, ng, **_PLACEHOLDER)
        except ArgsError as err:
            out.extend(translate(err, f"nodeGroups.{name}"))
        if cfg.gpu_operator.time_slicing_replicas and ng.time_slicing_replicas and \
                ng.time_slicing_replicas != cfg.gpu_operator.time_slicing_replicas:
            out.append(Problem(f"nodeGroups.{name}.timeSlicingReplicas", ng.time_slicing_replicas,
                               f"must match gpuOperator.timeSlicingReplicas ({cfg.gpu_operator.time_slicing_replicas})"))
        if ng.time_slicing_replicas and not cfg.gpu_operator.time_slicing_replicas:
            out.append(Problem(f"nodeGroups.{name}.timeSlicingReplicas", ng.time_slicing_replicas,
                               "time-slicing needs gpuOperator.timeSlicingReplicas set to the same value"))
        if ng.mig_config and cfg.gpu_operator.mig_strategy == "none":
            out.append(Problem(f"nodeGroups.{name}.migConfig", ng.mig_config,
                               "MIG needs gpuOperator.migStrategy single or mixed"))
    try:
        _cluster_args(cfg.cluster, vpc_id="vpc", subnet_ids=["subnet"])
    except ArgsError as err:
        out.extend(translate(err, "cluster"))
    if "team" not in cfg.tags:
        out.append(Problem("tags", dict(cfg.tags), "must include a team tag (cost allocation: team, environment, tier)"))
    return out


def build(ctx: BuildContext, cfg) -> None:
    """Network -> cluster -> node groups -> GPU operator / Neuron plugin -> cluster autoscaler."""
    tags = ctx.tags
    net = cfg.network
    ctx.network = Network("network", NetworkArgs(
        cidr_block=net.cidr_block, az_count=net.az_count, nat_gateways=net.nat_gateways,
        s3_gateway_endpoint=net.s3_gateway_endpoint, interface_endpoints=list(net.interface_endpoints),
        existing=ExistingVpc(**net.existing.model_dump()) if net.existing else None, tags=tags))
    cluster = EksCluster("eks", _cluster_args(cfg.cluster, vpc_id=ctx.network.vpc_id,
                                              subnet_ids=ctx.network.private_subnet_ids, tags=tags))
    ctx.cluster = cluster
    ctx.k8s_provider = cluster.k8s_provider
    import pulumi
    k8s_opts = pulumi.ResourceOptions(provider=cluster.k8s_provider)

    for name, ng in cfg.node_groups.items():
        ctx.node_group_specs[name] = ng
        ctx.node_groups[name] = GpuNodeGroup(name, _node_group_args(
            name, ng, cluster_name=cluster.cluster_name, node_role_arn=cluster.node_role_arn,
            subnet_ids=ctx.network.private_subnet_ids, node_security_group_ids=[cluster.node_security_group_id],
            vpc_id=ctx.network.vpc_id, tags=tags), opts=pulumi.ResourceOptions(depends_on=[cluster]))

    vendors = {g.accelerator.vendor for g in ctx.node_groups.values()}
    go = cfg.gpu_operator
    if go.enabled and "nvidia" in vendors:
        ctx.gpu_operator = GpuOperator("gpu-operator", GpuOperatorArgs(
            chart_version=go.chart_version, mig_strategy=go.mig_strategy, time_slicing_replicas=go.time_slicing_replicas,
            dcgm_exporter=go.dcgm_exporter), opts=k8s_opts)
    if cfg.neuron.enabled and "neuron" in vendors:
        ctx.neuron_plugin = NeuronDevicePlugin("neuron", NeuronDevicePluginArgs(
            chart_version=cfg.neuron.chart_version, scheduler_extension=cfg.neuron.scheduler_extension), opts=k8s_opts)
    ca = cfg.cluster_autoscaler
    if ca.enabled:
        ctx.cluster_autoscaler = ClusterAutoscaler("cluster-autoscaler", ClusterAutoscalerArgs(
            cluster_name=cluster.cluster_name, kubernetes_version=cluster.version, region=ctx.region,
            oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer, chart_version=ca.chart_version,
            expander=ca.expander, scale_down_unneeded_time=ca.scale_down_unneeded_time,
            scale_down_delay_after_add=ca.scale_down_delay_after_add,
            scale_down_utilization_threshold=ca.scale_down_utilization_threshold, tags=tags), opts=k8s_opts)

    ctx.export("clusterName", cluster.cluster_name)
    ctx.export("clusterEndpoint", cluster.endpoint)
    ctx.export("oidcProviderArn", cluster.oidc_provider_arn)
    ctx.export("vpcId", ctx.network.vpc_id)
    ctx.export("privateSubnetIds", ctx.network.private_subnet_ids)
    ctx.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
    ctx.export("nodeGroups", {name: {"instanceType": g.instance_type, "accelerator": g.accelerator.accelerator,
                                     "count": g.accelerator.count, "amiType": g.ami_type,
                                     "capacityType": cfg.node_groups[name].capacity_type,
                                     "minSize": g.min_size, "maxSize": g.max_size, "asgName": g.asg_name}
                              for name, g in ctx.node_groups.items()})
