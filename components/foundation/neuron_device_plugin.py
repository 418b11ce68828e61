"""NeuronDevicePlugin: AWS's Neuron Helm chart (device plugin, and the scheduler extension when asked) on Neuron nodes.

Creates ``kubernetes:helm.sh/v3:Release`` ``<name>`` of ``oci://public.ecr.aws/neuron/neuron-helm-chart`` (pinned)
in ``kube-system``. The device plugin advertises ``aws.amazon.com/neuron``, ``aws.amazon.com/neuroncore`` and
``aws.amazon.com/neurondevice``; it tolerates the ``aws.amazon.com/neuron`` taint and is selected onto nodes labelled
``aws.amazon.com/neuron.present=true`` (GpuNodeGroup sets it).

The scheduler extension (``scheduler_extension``) runs the chart's extender and a second kube-scheduler,
``my-scheduler`` (:data:`SCHEDULER_NAME`, the chart's ``scheduler.customScheduler.fullnameOverride``), whose image
tag follows the cluster's Kubernetes minor (:data:`components.versions.KUBE_SCHEDULER_IMAGE_TAGS`; the chart's own
default is a 1.28 build). AWS's Neuron docs ("Neuron scheduler extension") call it required for pods that request
more than one NeuronCore or device: it gives such a pod directly connected (contiguous) devices. A pod that takes one
device, or every device of its node, needs no topology choice; that is what the shipped tiers run (TP 2 on the two
NeuronCores of one Inferentia2 device), so the extension is off by default and its two Deployments cost nothing.
VllmService sets ``schedulerName: my-scheduler`` on its Neuron pods when it is on, and refuses a replica that takes
more than one but not all of a node's devices without it.

Defaults: device plugin on, scheduler extension off, node problem detector off.
Security: device plugin runs privileged on Neuron nodes only; the extension's schedulers run on the system nodes.
Cost drivers: none beyond the nodes. Quotas: none.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import from_cluster, with_cluster_provider
from problems import Problem
from components.catalog.vendors import NEURON

NEURON_TOLERATION = NEURON.toleration()
"""Tolerates the taint of Neuron node groups (components.catalog.vendors)."""

SCHEDULER_NAME = "my-scheduler"
"""``schedulerName`` of pods the extension places: the chart's second scheduler, ``scheduler.customScheduler.
fullnameOverride`` (neuron-helm-chart values.yaml; its KubeSchedulerConfiguration profile is named after it)."""

SYSTEM_NODES = {"genai-scale/node-group": "system"}
"""Where the extension's two Deployments run: the cluster's untainted CPU system nodes (EksCluster labels them)."""


class NeuronDevicePluginArgs(ArgsModel):
    """Arguments of :class:`NeuronDevicePlugin`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none, and its version picks the kube-scheduler tag. Default: none (pass the provider in ``opts``)."""
    namespace: str = "kube-system"
    """Namespace of the release. Default: kube-system."""
    chart_version: str = versions.NEURON_HELM_CHART.version
    """Chart version. Default: the pinned version."""
    scheduler_extension: bool = False
    """Install the Neuron scheduler extension and its ``my-scheduler`` (directly connected devices for pods that take
    more than one but not all of a node's Neuron devices). Default: off (one device, or a whole node, per pod needs no
    topology choice; VllmService asks for the extension when a replica needs it)."""
    kubernetes_version: str | None = Field(default=None, pattern=r"^1\.\d{2}$")
    """Kubernetes minor of the cluster, which picks the kube-scheduler image tag. Default: the cluster's (from
    ``cluster``), else the pinned version."""
    scheduler_image_tag: str | None = None
    """Tag of ``registry.k8s.io/kube-scheduler`` for ``my-scheduler``. Default: the pinned tag for the cluster's
    Kubernetes minor (a scheduler older than the control plane is not supported)."""
    node_selector: dict[str, str] = Field(default_factory=lambda: NEURON.labels_for(""))
    """Nodes the device plugin runs on. Default: nodes labelled as Neuron nodes by GpuNodeGroup."""


    def problems(self) -> list[Problem]:
        version = self.resolved_kubernetes_version()
        if self.scheduler_extension and self.scheduler_image_tag is None and \
                version not in versions.KUBE_SCHEDULER_IMAGE_TAGS:
            return [Problem("kubernetes_version", version,
                            "a Kubernetes minor with a pinned kube-scheduler tag for the scheduler extension: "
                            + ", ".join(versions.KUBE_SCHEDULER_IMAGE_TAGS) + " (or set scheduler_image_tag)",
                            ("cluster",) if self.kubernetes_version is None else ())]
        return []

    def resolved_kubernetes_version(self) -> str:
        """``kubernetes_version``, else the cluster's version, else the pinned version."""
        return from_cluster(self.kubernetes_version, self.cluster, "version") or versions.KUBERNETES_VERSION


def render_values(args: NeuronDevicePluginArgs) -> dict[str, Any]:
    """Helm values of the Neuron chart."""
    scheduler: dict[str, Any] = {"enabled": args.scheduler_extension}
    if args.scheduler_extension:
        tag = args.scheduler_image_tag or versions.KUBE_SCHEDULER_IMAGE_TAGS[args.resolved_kubernetes_version()]
        scheduler.update({
            # (uncertain) chart 1.0.0 selected the extender onto node-role.kubernetes.io/master nodes, which EKS has
            # not; 1.10.0 selects none. Both are the chart's maps rendered whole, so this selects the system nodes.
            "nodeSelector": dict(SYSTEM_NODES),
            "customScheduler": {"enabled": True, "fullnameOverride": SCHEDULER_NAME, "nodeSelector": dict(SYSTEM_NODES),
                                "image": {"repository": versions.KUBE_SCHEDULER_IMAGE, "tag": tag}},
        })
    return {
        "devicePlugin": {"enabled": True, "nodeSelector": dict(args.node_selector),
                         "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}, dict(NEURON_TOLERATION)]},
        "scheduler": scheduler,
        "npd": {"enabled": False},
    }


class NeuronDevicePlugin(pulumi.ComponentResource):
    """AWS Neuron device plugin and scheduler extension. See the module docstring."""

    release: k8s.helm.v3.Release
    """The ``neuron-helm-chart`` Helm release (device plugin, and the scheduler extension when on)."""
    values: dict[str, Any]
    """The Helm values the release was rendered with (what ``render_values(args)`` returned)."""
    scheduler_name: str | None
    """``schedulerName`` for pods the scheduler extension should place (``my-scheduler``); None when it is off."""

    def __init__(self, name: str, args: NeuronDevicePluginArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}NeuronDevicePlugin", name, None, with_cluster_provider(opts, args.cluster))
        self.values = render_values(args)
        self.scheduler_name = SCHEDULER_NAME if args.scheduler_extension else None
        self.release = k8s.helm.v3.Release(
            name, chart=f"{versions.NEURON_HELM_CHART.repository}/{versions.NEURON_HELM_CHART.name}",
            version=args.chart_version, namespace=args.namespace, values=self.values, atomic=True,
            cleanup_on_fail=True, timeout=600, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"values": self.values, "scheduler_name": self.scheduler_name})
