"""Stack section: foundation. Network, EKS cluster, accelerator node groups, GPU operator, Neuron and EFA device plugins,
autoscaler.

``nodeProvisioner`` picks who brings accelerator nodes: ``managed-node-groups`` (the default: one EKS managed node group
per ``nodeGroups`` entry, scaled by the cluster autoscaler) or ``karpenter`` (the Karpenter controller and one NodePool
per ``nodeGroups`` entry, EC2NodeClasses per accelerator family; no GPU node groups and no cluster autoscaler). The
system node group stays a managed node group either way."""

from __future__ import annotations


from pydantic import ConfigDict, Field
from pydantic_core import core_schema

from components.errors import ArgsError
from problems import Problem
from components.foundation.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.foundation.efa_device_plugin import EfaDevicePlugin, EfaDevicePluginArgs
from components.foundation.eks_cluster import EksCluster, EksClusterArgs
from components.foundation.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.foundation.gpu_operator import GpuOperator, GpuOperatorArgs
from components.foundation.karpenter import Karpenter, KarpenterArgs
from components.foundation.node_pools import DISCOVERY_TAG, KarpenterNodePools, KarpenterNodePoolsArgs, NodePoolSpec
from components.naming import aws_name
from components.foundation.network import Network, NetworkArgs
from components.foundation.neuron_device_plugin import NeuronDevicePlugin, NeuronDevicePluginArgs
from infra.sections.base import BuildContext, SettingsModel, args_from, derive_settings, translate


class TargetsSettings(SettingsModel):
    """Load targets of the tier; later components and the capacity model size themselves from these. Numbers only
    (``true`` is not 1, ``"100"`` not 100), finite."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)

    requests_per_second: float = Field(default=1, gt=0)
    """Requests per second the stack must serve at its daily peak (all serving targets together; capacity.targets
    splits it). Default: 1."""
    concurrent_streams: int = Field(default=4, ge=1)
    """Concurrent streaming responses. Default: 4."""
    p95_latency_ms: int = Field(default=5000, ge=50)
    """p95 end-to-end latency SLO in milliseconds. Default: 5000."""
    tokens_per_second: float = Field(default=100, gt=0)
    """Output tokens per second across the stack. Default: 100."""
    prompt_tokens: int = Field(default=1000, ge=1)
    """Mean prompt tokens per request (with ``tokensPerSecond / requestsPerSecond`` output tokens, the request shape
    capacity is planned for). Default: 1000."""
    ttft_p95_ms: float | None = Field(default=None, gt=0)
    """Time-to-first-token SLO, p95, in milliseconds (capacity planning). Default: none."""
    itl_p95_ms: float | None = Field(default=None, gt=0)
    """Inter-token latency SLO, p95, in milliseconds (capacity planning). Default: none."""


WIRING = ("cluster", "tags")
"""Args the program supplies (the cluster, the stack's cost tags); never stack config."""

NetworkSettings = derive_settings(NetworkArgs, name="NetworkSettings", exclude=(*WIRING, "cluster_name"),
                                  module=__name__)
ClusterSettings = derive_settings(EksClusterArgs, name="ClusterSettings", exclude=(*WIRING, "cluster_name"),
                                  module=__name__)
NodeGroupSettings = derive_settings(GpuNodeGroupArgs, name="NodeGroupSettings", module=__name__,
                                    exclude=(*WIRING, "kubernetes_version"),
                                    doc="One accelerator node group (the map key is its name).")
GpuOperatorSettings = derive_settings(GpuOperatorArgs, name="GpuOperatorSettings", module=__name__,
                                      exclude=(*WIRING, "node_time_slicing"),
                                      extra={"enabled": (bool, Field(default=True, description=(
                                          "Install when any NVIDIA node group exists. Default: on.")))})
NeuronSettings = derive_settings(NeuronDevicePluginArgs, name="NeuronSettings", module=__name__,
                                 exclude=(*WIRING, "kubernetes_version"),
                                 extra={"enabled": (bool, Field(default=True, description=(
                                     "Install when any Neuron node group exists. Default: on.")))})
EfaDevicePluginSettings = derive_settings(
    EfaDevicePluginArgs, name="EfaDevicePluginSettings", module=__name__, exclude=(*WIRING, "extra_taints"),
    extra={"enabled": (bool, Field(default=True, description=(
        "Install when any node group has efa on (managed node groups or Karpenter NodePools). Default: on.")))})
ClusterAutoscalerSettings = derive_settings(
    ClusterAutoscalerArgs, name="ClusterAutoscalerSettings", module=__name__,
    exclude=(*WIRING, "cluster_name", "kubernetes_version", "region", "oidc_provider_arn", "oidc_issuer"),
    extra={"enabled": (bool, Field(default=True, description="Install the cluster autoscaler. Default: on."))})


KarpenterSettings = derive_settings(KarpenterArgs, name="KarpenterSettings", module=__name__,
                                    exclude=(*WIRING, "cluster_name"),
                                    doc="The Karpenter controller (used when nodeProvisioner is karpenter).")

PROVISIONERS = ("managed-node-groups", "karpenter")


class NodeProvisioner(str):
    """Who provisions accelerator nodes: ``managed-node-groups`` (EKS managed node groups + cluster autoscaler) or
    ``karpenter`` (NodePools). Default: managed-node-groups."""

    def __new__(cls, value: str = PROVISIONERS[0]) -> NodeProvisioner:
        return super().__new__(cls, value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        return core_schema.no_info_after_validator_function(cls, core_schema.literal_schema(list(PROVISIONERS)))


RENAMED = {"nodeGroups.*.labels": "extraLabels"}
"""Deprecated config keys -> their new name (accepted with a warning): node-group labels are ``extraLabels`` since
the settings derive from GpuNodeGroupArgs."""

KEYS = {
    "tags": dict[str, str],
    "targets": TargetsSettings,
    "network": NetworkSettings,
    "cluster": ClusterSettings,
    "nodeGroups": dict[str, NodeGroupSettings],
    "gpuOperator": GpuOperatorSettings,
    "neuron": NeuronSettings,
    "efaDevicePlugin": EfaDevicePluginSettings,
    "clusterAutoscaler": ClusterAutoscalerSettings,
    "nodeProvisioner": NodeProvisioner,
    "karpenter": KarpenterSettings,
}

_PLACEHOLDER = {"cluster_name": "cluster", "node_role_arn": "role", "subnet_ids": ["subnet"],
                "node_security_group_ids": ["sg"], "vpc_id": "vpc"}


def _node_group_args(ng, **wiring) -> GpuNodeGroupArgs:
    return args_from(ng, GpuNodeGroupArgs, **wiring)


def node_group_args(ng) -> GpuNodeGroupArgs | None:
    """A node group's args with placeholder wiring, for checks before anything is built; None when they are invalid
    (:func:`problems` reports why)."""
    try:
        return _node_group_args(ng, **_PLACEHOLDER)
    except ArgsError:
        return None


def _cluster_args(c, **wiring) -> EksClusterArgs:
    return args_from(c, EksClusterArgs, **wiring)


def problems(cfg) -> list[Problem]:
    """Cross-field rules, checked by building each component's args with placeholder wiring."""
    out: list[Problem] = []
    for name, ng in cfg.node_groups.items():
        try:
            _node_group_args(ng, **_PLACEHOLDER)
        except ArgsError as err:
            out.extend(translate(err, f"nodeGroups.{name}"))
        if ng.time_slicing_replicas and cfg.gpu_operator.mig_strategy != "none":
            out.append(Problem(f"nodeGroups.{name}.timeSlicingReplicas", ng.time_slicing_replicas,
                               f"time-slicing cannot be combined with gpuOperator.migStrategy "
                               f"{cfg.gpu_operator.mig_strategy!r}", ("gpuOperator.migStrategy",)))
        if ng.mig_config and cfg.gpu_operator.mig_strategy == "none":
            out.append(Problem(f"nodeGroups.{name}.migConfig", ng.mig_config,
                               "MIG needs gpuOperator.migStrategy single or mixed"))
    try:
        _cluster_args(cfg.cluster, vpc_id="vpc", subnet_ids=["subnet"])
    except ArgsError as err:
        out.extend(translate(err, "cluster"))
    if cfg.neuron.enabled:
        try:
            args_from(cfg.neuron, NeuronDevicePluginArgs, kubernetes_version=cfg.cluster.version)
        except ArgsError as err:  # the kube-scheduler tag follows the cluster's version
            out.extend(Problem("cluster.version", p.value, p.expected.replace("set schedulerImageTag",
                                                                              "set neuron.schedulerImageTag"),
                               ("neuron.schedulerExtension",))
                       if p.path == "neuron.kubernetesVersion" else p for p in translate(err, "neuron"))
    if cfg.node_provisioner == "karpenter":
        for name, ng in cfg.node_groups.items():
            if ng.min_size > 0:
                out.append(Problem(f"nodeGroups.{name}.minSize", ng.min_size, "0 with nodeProvisioner karpenter "
                                   "(a NodePool keeps no minimum: Karpenter starts nodes for pending pods)",
                                   ("nodeProvisioner",)))
    if "team" not in cfg.tags:
        out.append(Problem("tags", dict(cfg.tags), "must include a team tag (cost allocation: team, environment, tier)"))
    return out


def build(ctx: BuildContext, cfg) -> None:
    """Network -> cluster -> node groups -> GPU operator / Neuron plugin -> cluster autoscaler."""
    tags = ctx.tags
    net = cfg.network
    karpenter = cfg.node_provisioner == "karpenter"
    # Karpenter's EC2NodeClasses find the private subnets by the discovery tag (the cluster's name is known before
    # the cluster exists: components.naming)
    discovery = {DISCOVERY_TAG: aws_name("eks-cluster", ctx.stack, "eks")} if karpenter else {}
    ctx.network = Network("network", args_from(net, NetworkArgs, tags=tags, private_subnet_tags=discovery))
    cluster = EksCluster("eks", _cluster_args(cfg.cluster, vpc_id=ctx.network.vpc_id,
                                              subnet_ids=ctx.network.private_subnet_ids, tags=tags))
    ctx.cluster = cluster
    ctx.k8s_provider = cluster.k8s_provider
    import pulumi
    k8s_opts = pulumi.ResourceOptions(provider=cluster.k8s_provider)

    if karpenter:
        _build_karpenter(ctx, cfg, cluster, tags)
    else:
        for name, ng in cfg.node_groups.items():
            ctx.node_group_specs[name] = ng
            ctx.node_groups[name] = GpuNodeGroup(name, _node_group_args(
                ng, cluster_name=cluster.cluster_name, node_role_arn=cluster.node_role_arn,
                subnet_ids=ctx.network.private_subnet_ids, node_security_group_ids=[cluster.node_security_group_id],
                vpc_id=ctx.network.vpc_id, tags=tags), opts=pulumi.ResourceOptions(depends_on=[cluster]))

    vendors = {g.accelerator.vendor for g in ctx.node_groups.values()}
    go = cfg.gpu_operator
    # NVIDIA nodes on Bottlerocket bring their own driver, toolkit and device plugin and are labelled out of the
    # GPU operator (components.foundation._gpu.labels): it is installed for the AL2023 ones
    operator_groups = {name for name, g in ctx.node_groups.items()
                       if g.accelerator.vendor == "nvidia" and cfg.node_groups[name].node_os == "al2023"}
    if go.enabled and not operator_groups and "nvidia" in vendors:
        ctx.note("gpuOperator: not installed: every NVIDIA node group runs Bottlerocket, which brings its own driver, "
                 "toolkit and device plugin (no DCGM metrics on those nodes: docs/coldstart.md)")
    if go.enabled and operator_groups:
        shares = sorted({cfg.node_groups[n].time_slicing_replicas for n in operator_groups
                         if cfg.node_groups[n].time_slicing_replicas})
        ctx.gpu_operator = GpuOperator("gpu-operator", args_from(go, GpuOperatorArgs, node_time_slicing=shares),
                                       opts=k8s_opts)
    if cfg.neuron.enabled and "neuron" in vendors:
        ctx.neuron_plugin = NeuronDevicePlugin("neuron", args_from(cfg.neuron, NeuronDevicePluginArgs,
                                                                  kubernetes_version=cluster.version), opts=k8s_opts)
    efa_groups = [ng for ng in cfg.node_groups.values() if ng.efa]
    if cfg.efa_device_plugin.enabled and efa_groups:  # the same plugin for node groups and NodePools (module docs)
        ctx.extras["efa_device_plugin"] = EfaDevicePlugin("efa-device-plugin", args_from(
            cfg.efa_device_plugin, EfaDevicePluginArgs,
            extra_taints=[{"key": t.key, "value": t.value, "effect": t.effect}
                          for ng in efa_groups for t in ng.extra_taints]), opts=k8s_opts)
    ca = cfg.cluster_autoscaler
    if ca.enabled and not karpenter:  # the autoscaler only ever scaled the accelerator node groups
        ctx.cluster_autoscaler = ClusterAutoscaler("cluster-autoscaler", args_from(
            ca, ClusterAutoscalerArgs, cluster_name=cluster.cluster_name, kubernetes_version=cluster.version,
            region=ctx.region, oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer=cluster.oidc_issuer,
            tags=tags), opts=k8s_opts)

    ctx.export("clusterName", cluster.cluster_name)
    ctx.export("clusterEndpoint", cluster.endpoint)
    ctx.export("oidcProviderArn", cluster.oidc_provider_arn)
    ctx.export("vpcId", ctx.network.vpc_id)
    ctx.export("privateSubnetIds", ctx.network.private_subnet_ids)
    ctx.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
    if karpenter:
        ctx.export("nodePools", {name: {"instanceType": g.instance_type, "accelerator": g.accelerator.accelerator,
                                        "count": g.accelerator.count, "maxSize": g.max_size}
                                 for name, g in ctx.node_groups.items()})
        return
    ctx.export("nodeGroups", {name: {"instanceType": g.instance_type, "accelerator": g.accelerator.accelerator,
                                     "count": g.accelerator.count, "amiType": g.ami_type,
                                     "capacityType": cfg.node_groups[name].capacity_type,
                                     "minSize": g.min_size, "maxSize": g.max_size, "asgName": g.asg_name}
                              for name, g in ctx.node_groups.items()})


def peak_windows_by_group(ctx: BuildContext, cfg) -> dict[str, list[tuple[str, str]]]:
    """Node group -> the peak windows (UTC cron schedule, duration) of the cron floors of the models it serves, from
    the capacity section's plan (built first): their NodePool freezes consolidation inside them."""
    from components.capacity.schedule import peak_windows

    plan = ctx.extras.get("capacity")
    if plan is None or not cfg.serving.enabled:
        return {}
    out: dict[str, list] = {}
    for model, floors in plan.floors.items():
        group = cfg.serving.models[model].node_group
        out.setdefault(group, []).extend(floors)
    return {group: peak_windows(floors) for group, floors in out.items() if floors}


def _build_karpenter(ctx: BuildContext, cfg, cluster, tags) -> None:
    """The Karpenter controller, then one NodePool per ``nodeGroups`` entry (same labels and taints as the group)."""
    import pulumi
    k8s_opts = pulumi.ResourceOptions(provider=cluster.k8s_provider, depends_on=[cluster])
    karpenter = Karpenter("karpenter", args_from(cfg.karpenter, KarpenterArgs, cluster=cluster, tags=tags),
                          opts=k8s_opts)
    if not cfg.node_groups:
        return
    peaks = peak_windows_by_group(ctx, cfg)
    pools = {name: NodePoolSpec.from_node_group(_node_group_args(ng, **_PLACEHOLDER)).model_copy(
        update={"peak_windows": peaks.get(name, [])}) for name, ng in cfg.node_groups.items()}
    import pulumi_aws as aws
    # the node security group is EKS's cluster security group (EKS creates it): tag it for discovery as well
    sg_tag = aws.ec2.Tag("karpenter-discovery-node-sg", resource_id=cluster.node_security_group_id,
                         key=DISCOVERY_TAG, value=cluster.cluster_name)
    adopted = cfg.network.existing is not None  # an adopted VPC's subnets carry whatever tags their owner gave them
    placement = None
    if any(ng.efa for ng in cfg.node_groups.values()):  # EFA pools: a cluster placement group, as EFA node groups
        placement = aws.ec2.PlacementGroup("karpenter-efa", strategy="cluster", tags=tags).name
    node_pools = KarpenterNodePools("node-pools", KarpenterNodePoolsArgs(
        pools=pools, cluster_name=cluster.cluster_name, node_role_name=karpenter.node_role_name,
        subnet_ids=ctx.network.private_subnet_ids if adopted else None,
        security_group_ids=None, tags=tags,
        efa_zone=None if adopted else ctx.network.availability_zones.apply(lambda z: z[0] if z else None),
        efa_placement_group=placement),
        opts=pulumi.ResourceOptions(provider=cluster.k8s_provider, depends_on=[karpenter, sg_tag]))
    for name, ng in cfg.node_groups.items():
        ctx.node_group_specs[name] = ng
        ctx.node_groups[name] = node_pools.pools[name]
