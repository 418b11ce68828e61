"""GpuOperator: the NVIDIA GPU operator (Helm) configured for EKS accelerated AMIs.

Creates
  - ``kubernetes:helm.sh/v3:Release`` ``<name>`` of NVIDIA's ``gpu-operator`` chart (pinned, NVIDIA's Helm repo)
    in namespace ``gpu-operator``.
  - with time-slicing: a ``ConfigMap`` ``<name>-time-slicing`` with the device-plugin sharing config: ``any`` for
    every GPU node (``time_slicing_replicas``), and ``time-slicing-<n>`` for the node groups that time-slice on their
    own (``node_time_slicing``: nodes labelled ``nvidia.com/device-plugin.config=time-slicing-<n>``, which
    GpuNodeGroup sets from its ``time_slicing_replicas``); the other nodes then get ``none`` (whole GPUs).

EKS AL2023/Bottlerocket NVIDIA AMIs ship the driver and the container toolkit, so both are disabled in the operator
(enabling them makes the validator crash-loop on EKS AMIs: NVIDIA/gpu-operator#528, awslabs/amazon-eks-ami#1892).
The operator brings the device plugin (AL2023 needs one), GPU feature discovery, the DCGM exporter (GPU utilization
for autoscaling) and, when asked, the MIG manager. Its DaemonSets tolerate the ``nvidia.com/gpu`` taint.

Defaults: device plugin, GFD and DCGM exporter on; MIG strategy ``none``; no time-slicing.
Security: runs privileged DaemonSets on GPU nodes only (the operator's design); operator pod on system nodes.
Cost drivers: none beyond the nodes. Quotas: none.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import with_cluster_provider
from components.catalog.vendors import NVIDIA
from components.foundation import _gpu
from problems import Problem

GPU_TOLERATION = NVIDIA.toleration()
"""Tolerates the taint of NVIDIA node groups (components.catalog.vendors)."""
TIME_SLICING_KEY = "any"
NO_SHARING_KEY = "none"
"""Device-plugin config of the nodes that keep whole GPUs when only some node groups time-slice."""


class GpuOperatorArgs(ArgsModel):
    """Arguments of :class:`GpuOperator`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none. Default: none (pass the provider in ``opts``)."""
    namespace: str = "gpu-operator"
    """Namespace of the release. Default: gpu-operator."""
    chart_version: str = versions.GPU_OPERATOR.version
    """Chart version. Default: the pinned version."""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    """How MIG devices are exposed: ``none``, ``single`` (``nvidia.com/gpu``) or ``mixed``
    (``nvidia.com/mig-<profile>``). Default: none."""
    time_slicing_replicas: int | None = Field(default=None, ge=2, le=64)
    """Share each GPU of every NVIDIA node among this many pods by time-slicing (no memory isolation). Default: off."""
    node_time_slicing: list[int] = Field(default_factory=list)
    """Share counts of node groups that time-slice their own GPUs (their ``time_slicing_replicas``): a device-plugin
    config ``time-slicing-<n>`` each, chosen by the node label GpuNodeGroup sets; nodes without it keep whole GPUs
    (or ``time_slicing_replicas``). Default: none."""
    dcgm_exporter: bool = True
    """Run the DCGM exporter (GPU utilization metrics for autoscaling and dashboards). Default: on."""
    service_monitor: bool = False
    """Create a Prometheus ServiceMonitor for the DCGM exporter (needs the Prometheus operator CRDs). Default: off."""
    device_plugin: bool = True
    """Run the NVIDIA device plugin (needed on AL2023 NVIDIA AMIs; Bottlerocket ships its own). Default: on."""
    system_node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where the operator's own pod runs. Default: the system node group."""

    def problems(self) -> list[Problem]:
        if self.time_slicing_replicas and self.mig_strategy != "none":
            return [Problem("time_slicing_replicas", self.time_slicing_replicas,
                            f"time-slicing cannot be combined with MIG strategy {self.mig_strategy!r}")]
        bad = [n for n in self.node_time_slicing if not 2 <= n <= 64]
        if bad:
            return [Problem("node_time_slicing", bad, "share counts from 2 to 64")]
        if self.node_time_slicing and self.mig_strategy != "none":
            return [Problem("node_time_slicing", self.node_time_slicing,
                            f"time-slicing cannot be combined with MIG strategy {self.mig_strategy!r}")]
        return []


def device_plugin_configs(args: GpuOperatorArgs) -> tuple[dict[str, str], str | None]:
    """The time-slicing ConfigMap's data and the default config's key (``({}, None)`` without time-slicing)."""
    data: dict[str, str] = {}
    if args.time_slicing_replicas:
        data[TIME_SLICING_KEY] = time_slicing_config(args.time_slicing_replicas)
    elif args.node_time_slicing:
        data[NO_SHARING_KEY] = yaml.safe_dump({"version": "v1", "flags": {"migStrategy": "none"}}, sort_keys=False)
    for n in sorted(set(args.node_time_slicing)):
        data[_gpu.time_slicing_config_name(n)] = time_slicing_config(n)
    default = TIME_SLICING_KEY if args.time_slicing_replicas else (NO_SHARING_KEY if data else None)
    return data, default


def time_slicing_config(replicas: int) -> str:
    """Device-plugin sharing config (NVIDIA GPU sharing docs): every GPU advertised ``replicas`` times."""
    return yaml.safe_dump({"version": "v1", "flags": {"migStrategy": "none"},
                           "sharing": {"timeSlicing": {"resources": [{"name": NVIDIA.device_resource,
                                                                      "replicas": replicas}]}}},
                          sort_keys=False)


def render_values(args: GpuOperatorArgs, *, time_slicing_config_map: str | None = None) -> dict[str, Any]:
    """Helm values of the gpu-operator chart for EKS NVIDIA AMIs."""
    device_plugin: dict[str, Any] = {"enabled": args.device_plugin}
    if time_slicing_config_map:
        device_plugin["config"] = {"name": time_slicing_config_map, "default": device_plugin_configs(args)[1]}
    values: dict[str, Any] = {
        "operator": {"nodeSelector": dict(args.system_node_selector)},
        "daemonsets": {"tolerations": [dict(GPU_TOLERATION)]},
        "driver": {"enabled": False},
        "toolkit": {"enabled": False},
        "devicePlugin": device_plugin,
        "gfd": {"enabled": True},
        "nfd": {"enabled": True},
        "dcgm": {"enabled": False},
        "dcgmExporter": {"enabled": args.dcgm_exporter,
                         "serviceMonitor": {"enabled": args.service_monitor and args.dcgm_exporter,
                                            "interval": "15s"}},
        "mig": {"strategy": args.mig_strategy},
        "migManager": {"enabled": args.mig_strategy != "none",
                       "config": {"default": "all-disabled"}},
        "nodeStatusExporter": {"enabled": False},
        "gds": {"enabled": False},
        "vgpuManager": {"enabled": False},
        "vgpuDeviceManager": {"enabled": False},
        "sandboxDevicePlugin": {"enabled": False},
        "vfioManager": {"enabled": False},
        "ccManager": {"enabled": False},
    }
    return values


class GpuOperator(pulumi.ComponentResource):
    """NVIDIA GPU operator for EKS NVIDIA AMIs. See the module docstring."""

    release: k8s.helm.v3.Release
    """The Helm release."""
    values: dict[str, Any]
    """Rendered Helm values."""
    mig_strategy: str
    """The MIG strategy the operator runs with (``none``, ``single`` or ``mixed``): how pods request MIG slices."""
    time_slicing_replicas: int | None
    """GPU time-slicing replicas per GPU configured on the device plugin; None when time-slicing is off."""

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}GpuOperator", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        self.mig_strategy, self.time_slicing_replicas = args.mig_strategy, args.time_slicing_replicas
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}, opts=child)
        deps: list[pulumi.Resource] = [ns]
        cm_name = None
        data, _ = device_plugin_configs(args)
        if data:
            cm_name = "time-slicing-config"
            deps.append(k8s.core.v1.ConfigMap(
                f"{name}-time-slicing", metadata={"name": cm_name, "namespace": args.namespace},
                data=data,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[ns])))
        self.values = render_values(args, time_slicing_config_map=cm_name)
        self.release = k8s.helm.v3.Release(
            name, chart=versions.GPU_OPERATOR.name, version=args.chart_version,
            repository_opts={"repo": versions.GPU_OPERATOR.repository}, namespace=args.namespace,
            values=self.values, atomic=True, cleanup_on_fail=True, timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps))
        self.register_outputs({"values": self.values})
