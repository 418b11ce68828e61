"""NeuronDevicePlugin: AWS's Neuron Helm chart (device plugin and scheduler extension) on Neuron nodes only.

Creates ``kubernetes:helm.sh/v3:Release`` ``<name>`` of ``oci://public.ecr.aws/neuron/neuron-helm-chart`` (pinned)
in ``kube-system``. The device plugin advertises ``aws.amazon.com/neuron``, ``aws.amazon.com/neuroncore`` and
``aws.amazon.com/neurondevice``; it tolerates the ``aws.amazon.com/neuron`` taint and is selected onto nodes labelled
``aws.amazon.com/neuron.present=true`` (GpuNodeGroup sets it). The scheduler extension allocates contiguous
NeuronCores for pods that set ``schedulerName: my-scheduler``.

Defaults: device plugin and scheduler extension on, node problem detector off.
Security: device plugin runs privileged on Neuron nodes only. Cost drivers: none beyond the nodes. Quotas: none.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import with_cluster_provider
from components.catalog.vendors import NEURON

NEURON_TOLERATION = NEURON.toleration()
"""Tolerates the taint of Neuron node groups (components.catalog.vendors)."""


class NeuronDevicePluginArgs(ArgsModel):
    """Arguments of :class:`NeuronDevicePlugin`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none. Default: none (pass the provider in ``opts``)."""
    namespace: str = "kube-system"
    """Namespace of the release. Default: kube-system."""
    chart_version: str = versions.NEURON_HELM_CHART.version
    """Chart version. Default: the pinned version."""
    scheduler_extension: bool = True
    """Install the Neuron scheduler extension (contiguous NeuronCore allocation). Default: on."""
    node_selector: dict[str, str] = Field(default_factory=lambda: NEURON.labels_for(""))
    """Nodes the device plugin runs on. Default: nodes labelled as Neuron nodes by GpuNodeGroup."""


def render_values(args: NeuronDevicePluginArgs) -> dict[str, Any]:
    """Helm values of the Neuron chart."""
    return {
        "devicePlugin": {"enabled": True, "nodeSelector": dict(args.node_selector),
                         "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}, dict(NEURON_TOLERATION)]},
        "scheduler": {"enabled": args.scheduler_extension},
        "npd": {"enabled": False},
    }


class NeuronDevicePlugin(pulumi.ComponentResource):
    """AWS Neuron device plugin and scheduler extension. See the module docstring."""

    release: k8s.helm.v3.Release
    """The ``neuron-helm-chart`` Helm release (device plugin, and the scheduler extension when on)."""
    values: dict[str, Any]
    """The Helm values the release was rendered with (what ``render_values(args)`` returned)."""

    def __init__(self, name: str, args: NeuronDevicePluginArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}NeuronDevicePlugin", name, None, with_cluster_provider(opts, args.cluster))
        self.values = render_values(args)
        self.release = k8s.helm.v3.Release(
            name, chart=f"{versions.NEURON_HELM_CHART.repository}/{versions.NEURON_HELM_CHART.name}",
            version=args.chart_version, namespace=args.namespace, values=self.values, atomic=True,
            cleanup_on_fail=True, timeout=600, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"values": self.values})
