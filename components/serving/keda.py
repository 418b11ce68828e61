"""Keda: the KEDA operator (pinned Helm release), which turns ScaledObjects into HPAs with Prometheus triggers.

Creates a namespace and the ``keda`` chart release (kedacore/charts, version pinned in components/versions.py).
Defaults: one operator and one metrics-server replica (two of each with ``high_availability``), operator pods on the
system node group. Security: the chart's non-root, read-only-root-filesystem pods; no cloud credentials (the
Prometheus scaler talks to the in-cluster Prometheus only). Cost drivers: two small pods (~0.2 vCPU, ~0.5 GiB) per
replica. Quotas: none. Give ``cluster=<EksCluster>`` and its Kubernetes provider is used when ``opts`` names none.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import with_cluster_provider


class KedaArgs(ArgsModel):
    """Arguments of :class:`Keda`."""

    namespace: str = "keda"
    """Namespace of the release (created). Default: keda."""
    chart_version: str = versions.KEDA_CHART.version
    """Chart version. Default: the pinned version."""
    high_availability: bool = False
    """Two replicas of the operator and the metrics API server. Default: one of each."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where KEDA's pods run. Default: the system node group."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none. Default: none (the provider comes from ``opts``)."""


def render_values(args: KedaArgs) -> dict[str, Any]:
    """Helm values of the keda chart."""
    replicas = 2 if args.high_availability else 1
    return {
        "operator": {"replicaCount": replicas},
        "metricsServer": {"replicaCount": replicas},
        "webhooks": {"replicaCount": replicas},
        "nodeSelector": dict(args.node_selector),
        "resources": {
            "operator": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "metricServer": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "webhooks": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        },
        "podDisruptionBudget": {"operator": {"minAvailable": 1}} if args.high_availability else {},
        "prometheus": {"operator": {"enabled": True}, "metricServer": {"enabled": True}},
    }


class Keda(pulumi.ComponentResource):
    """KEDA operator release. See the module docstring."""

    release: k8s.helm.v3.Release
    """The Helm release (ScaledObjects wait for it)."""
    namespace: str
    """Namespace of the release."""
    values: dict[str, Any]
    """Rendered Helm values."""

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}Keda", name, None, with_cluster_provider(opts, args.cluster))
        self.namespace = args.namespace
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}, opts=pulumi.ResourceOptions(parent=self))
        self.values = render_values(args)
        self.release = k8s.helm.v3.Release(
            name, chart=versions.KEDA_CHART.name, version=args.chart_version,
            repository_opts={"repo": versions.KEDA_CHART.repository}, namespace=args.namespace, values=self.values,
            atomic=True, cleanup_on_fail=True, timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]))
        self.register_outputs({"namespace": self.namespace})
