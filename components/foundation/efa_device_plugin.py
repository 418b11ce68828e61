"""EfaDevicePlugin: the AWS EFA Kubernetes device plugin (Helm) on the nodes that have EFA interfaces.

Creates ``kubernetes:helm.sh/v3:Release`` ``<name>`` of ``aws-efa-k8s-device-plugin`` (pinned, from
https://aws.github.io/eks-charts) in ``kube-system``: a DaemonSet that advertises each node's EFA interfaces as the
extended resource ``vpc.amazonaws.com/efa``, which multi-node vLLM pods request on the leader and on every worker
(without it those pods stay Pending). The DaemonSet is selected onto nodes labelled
``vpc.amazonaws.com/efa.present=true`` (GpuNodeGroup and the Karpenter NodePools set it when ``efa`` is on); the chart's
own node affinity further limits it to EFA-capable instance types (its ``supportedInstanceLabels``) and keeps it off EKS
Auto Mode nodes. It tolerates the
accelerator taints (``nvidia.com/gpu``, ``aws.amazon.com/neuron``), ``CriticalAddonsOnly`` (the chart adds it) and any
``extra_taints`` given (the EFA node groups' own extra taints).

Device plugin, not the EFA DRA driver: the EKS user guide ("Manage EFA devices on Amazon EKS", checked 2026-12-06)
recommends the EFA DRA driver (DRANET) for new deployments on Kubernetes >= 1.34 with managed or self-managed node
groups, but says the DRA driver is not supported with Karpenter (or EKS Auto Mode), where the device plugin is the way;
the device plugin stays supported on managed node groups too. A stack picks ``managed-node-groups`` or ``karpenter`` per
tier, and the serving pods request ``vpc.amazonaws.com/efa`` as an extended resource (a DRA driver would need
ResourceClaims instead), so the stack uses the device plugin on both paths: one mechanism, one pod spec.

Defaults: chart and image tag pinned (components.versions), EFA nodes only, accelerator taints tolerated, the chart's
resource requests (10m CPU, 20 MiB).
Security: the chart runs the plugin privileged as root with ``hostNetwork`` and host paths for the kubelet's device-plugin
socket and ``/dev/infiniband`` (what a device plugin needs); it runs only on EFA nodes and mounts no service account
token. The image comes from the EKS ECR account (602401143452, us-west-2, the chart's default); nodes pull it with their
node role.
Cost drivers: none beyond the nodes (one small pod per EFA node). Quotas: none.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.catalog.accelerators import EFA_RESOURCE
from components.catalog.vendors import VENDORS
from components.foundation._gpu import EFA_PRESENT_LABEL
from components.foundation.eks_cluster import with_cluster_provider
from components.foundation.gpu_node_group import NodeTaint

ACCELERATOR_TOLERATIONS = [v.toleration() for v in VENDORS.values()]
"""Tolerates every accelerator vendor's node taint (components.catalog.vendors): EFA nodes are GPU or Neuron nodes."""


class EfaDevicePluginArgs(ArgsModel):
    """Arguments of :class:`EfaDevicePlugin`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none. Default: none (pass the provider in ``opts``)."""
    namespace: str = "kube-system"
    """Namespace of the release. Default: kube-system (the EKS docs install it there)."""
    chart_version: str = versions.EFA_DEVICE_PLUGIN_CHART.version
    """Chart version. Default: the pinned version."""
    image_tag: str = versions.EFA_DEVICE_PLUGIN_IMAGE.version
    """Tag of the device plugin image (the chart's ``image.tag``). Default: the pinned tag (the chart's appVersion)."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {EFA_PRESENT_LABEL: "true"})
    """Nodes the device plugin runs on (the chart's ``nodeSelector``). Default: nodes labelled as EFA nodes by
    GpuNodeGroup and the Karpenter NodePools (``vpc.amazonaws.com/efa.present=true``)."""
    extra_taints: list[NodeTaint] = Field(default_factory=list)
    """More node taints to tolerate besides the accelerators' own (one toleration per key, any value). Default: none."""


def tolerations(args: EfaDevicePluginArgs) -> list[dict[str, str]]:
    """The accelerator taints' tolerations, then one per extra taint key (deduplicated by key and effect)."""
    out = [dict(t) for t in ACCELERATOR_TOLERATIONS]
    seen = {(t["key"], t["effect"]) for t in out}
    for t in args.extra_taints:
        if (t.key, t.effect) not in seen:
            seen.add((t.key, t.effect))
            out.append({"key": t.key, "operator": "Exists", "effect": t.effect})
    return out


def render_values(args: EfaDevicePluginArgs) -> dict[str, Any]:
    """Helm values of the aws-efa-k8s-device-plugin chart (keys of its values.yaml)."""
    return {
        "image": {"tag": args.image_tag},
        "nodeSelector": dict(args.node_selector),
        "tolerations": tolerations(args),
    }


class EfaDevicePlugin(pulumi.ComponentResource):
    """AWS EFA Kubernetes device plugin. See the module docstring."""

    release: k8s.helm.v3.Release
    """The ``aws-efa-k8s-device-plugin`` Helm release."""
    values: dict[str, Any]
    """The Helm values the release was rendered with (what ``render_values(args)`` returned)."""
    resource_name: str
    """The extended resource the plugin advertises and pods request (``vpc.amazonaws.com/efa``)."""

    def __init__(self, name: str, args: EfaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}EfaDevicePlugin", name, None, with_cluster_provider(opts, args.cluster))
        self.values = render_values(args)
        self.resource_name = EFA_RESOURCE
        self.release = k8s.helm.v3.Release(
            name, chart=versions.EFA_DEVICE_PLUGIN_CHART.name, version=args.chart_version,
            repository_opts={"repo": versions.EFA_DEVICE_PLUGIN_CHART.repository}, namespace=args.namespace,
            values=self.values, atomic=True, cleanup_on_fail=True, timeout=600,
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"values": self.values, "resource_name": self.resource_name})
