"""Monitoring: kube-prometheus-stack (Prometheus operator, Prometheus, Alertmanager, Grafana, kube-state-metrics,
node exporter) as one pinned Helm release, with the vLLM dashboards and alert rules from serving/monitoring.

Creates the namespace, a random Grafana admin password in a Secret, the release, one ConfigMap per dashboard JSON
(picked up by Grafana's dashboard sidecar), a PrometheusRule with the serving alerts (SLO breach, queue growth, KV
cache pressure, preemptions, GPU XID errors; the latency threshold is the tier's p95 target), and a ServiceMonitor
for the GPU operator's DCGM exporter (GPU utilization for the dashboards and the autoscaler).

Batch (``batch``, on by default): the batch dashboard (queue depth, running workers, throughput, shard outcomes and
durations), a PrometheusRule with the batch alerts (queue not draining, shards failing, KEDA scaler errors) and a
PodMonitor scraping the batch worker pods (labels ``app.kubernetes.io/component=batch``,
``app.kubernetes.io/part-of=genai-scale``, in any namespace) on their container port named ``metrics``. The queue
depth comes from KEDA: ``scrape_keda`` adds a ServiceMonitor for KEDA's operator (``keda_scaler_metrics_value`` is the
depth its ``aws-sqs-queue`` scaler read; the chart only annotates the Service, which this Prometheus ignores). The
dead-letter queue's depth is a CloudWatch metric, not scraped here.

Defaults: 15 days of retention on an emptyDir (``storage_gib`` puts it on a gp3 volume), Prometheus selects every
ServiceMonitor/PrometheusRule in the cluster, Grafana without persistence (dashboards are provisioned), everything on
the system node group; the node exporter also tolerates the accelerator taints (node metrics from GPU/Neuron nodes).
Security: Grafana admin password generated (secret Output, never a literal), Grafana and Prometheus are ClusterIP
only (reach them with ``kubectl port-forward``), the chart's non-root pods. Cost drivers: Prometheus memory (grows
with series: ~2-4 GiB for a small cluster), the optional gp3 volume. Quotas: none.
Give ``cluster=<EksCluster>`` and its Kubernetes provider is used when ``opts`` names none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml
from pydantic import Field

from components import versions
from components.catalog.vendors import VENDORS
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import with_cluster_provider

ASSETS = Path(__file__).resolve().parents[2] / "serving" / "monitoring"
"""serving/monitoring: dashboards/*.json and alerts/*.yaml (read as files; components never import serving)."""

FULLNAME = "monitoring"
"""``fullnameOverride`` of the release: services are ``monitoring-prometheus``, ``monitoring-alertmanager``."""

P95_PLACEHOLDER = "__P95_LATENCY_SECONDS__"
BATCH_DASHBOARD = "batch-inference.json"
"""The batch dashboard (provisioned with ``batch``)."""
BATCH_POD_LABELS = {"app.kubernetes.io/component": "batch", "app.kubernetes.io/part-of": "genai-scale"}
"""Labels of the batch worker pods (components.batch renders them) that the PodMonitor selects."""
BATCH_METRICS_PORT_NAME = "metrics"
"""Name of the worker container's metrics port (the worker serves ``BATCH_METRICS_PORT``)."""
KEDA_OPERATOR_LABELS = {"app.kubernetes.io/name": "keda-operator"}
"""Labels of the keda chart's operator Service (its ``metrics`` port serves the operator's Prometheus metrics)."""
ACCELERATOR_TOLERATIONS = [v.toleration() for v in VENDORS.values()]


class MonitoringArgs(ArgsModel):
    """Arguments of :class:`Monitoring`."""

    namespace: str = "monitoring"
    """Namespace of the release (created). Default: monitoring."""
    chart_version: str = versions.KUBE_PROMETHEUS_STACK_CHART.version
    """kube-prometheus-stack chart version. Default: the pinned version."""
    retention_days: int = Field(default=15, ge=1, le=3650)
    """Days Prometheus keeps samples. Default: 15."""
    storage_gib: int | None = Field(default=None, ge=10, le=16384)
    """gp3 volume for Prometheus data. Default: none (emptyDir; data is lost when the pod moves)."""
    storage_class: str = "gp3"
    """StorageClass of that volume. Default: gp3."""
    grafana: bool = True
    """Run Grafana with the provisioned dashboards. Default: on."""
    alertmanager: bool = True
    """Run Alertmanager (routes are configured separately). Default: on."""
    p95_latency_ms: float = Field(default=4000, gt=0)
    """The tier's p95 end-to-end latency target, used by the SLO-breach alert. Default: 4000."""
    scrape_dcgm: bool = True
    """Scrape the GPU operator's DCGM exporter (GPU utilization). Default: on."""
    gpu_operator_namespace: str = "gpu-operator"
    """Namespace of the GPU operator's DCGM exporter. Default: gpu-operator."""
    batch: bool = True
    """Batch monitoring: the batch dashboard, the batch alert rules and a PodMonitor of the batch worker pods.
    Default: on (the PodMonitor selects nothing where no batch worker runs)."""
    scrape_keda: bool = True
    """Scrape KEDA's operator through a ServiceMonitor (any namespace): the batch queue depth and scaler errors.
    Default: on (it selects nothing where KEDA is not installed)."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where Prometheus, Grafana and the operator run. Default: the system node group."""
    prometheus_memory: str = Field(default="2Gi", pattern=r"^\d+Gi$")
    """Prometheus memory request (and the limit is twice it). Default: 2Gi."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to install into: its Kubernetes provider is used when
    ``opts`` names none. Default: none (the provider comes from ``opts``)."""


def render_values(args: MonitoringArgs, *, grafana_secret: str) -> dict[str, Any]:
    """Helm values of kube-prometheus-stack."""
    ns = dict(args.node_selector)
    mem = args.prometheus_memory
    spec: dict[str, Any] = {
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "retention": f"{args.retention_days}d",
        "nodeSelector": ns,
        "resources": {"requests": {"cpu": "250m", "memory": mem},
                      "limits": {"memory": f"{int(mem.rstrip('Gi')) * 2}Gi" if mem.endswith("Gi") else mem}},
    }
    if args.storage_gib:
        spec["storageSpec"] = {"volumeClaimTemplate": {"spec": {
            "storageClassName": args.storage_class, "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{args.storage_gib}Gi"}}}}}
    return {
        "fullnameOverride": FULLNAME,
        "prometheus": {"prometheusSpec": spec},
        "alertmanager": {"enabled": args.alertmanager, "alertmanagerSpec": {"nodeSelector": ns}},
        "prometheusOperator": {"nodeSelector": ns},
        "kube-state-metrics": {"nodeSelector": ns},
        "prometheus-node-exporter": {"tolerations": list(ACCELERATOR_TOLERATIONS)},
        "grafana": {
            "enabled": args.grafana,
            "fullnameOverride": "grafana",
            "nodeSelector": ns,
            "admin": {"existingSecret": grafana_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            "persistence": {"enabled": False},
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1",
                                       "searchNamespace": "ALL"}},
        },
    }


def dashboards(directory: Path = ASSETS / "dashboards", *, batch: bool = True) -> dict[str, str]:
    """Dashboard file name -> JSON text (validated as JSON here); without ``batch``, the batch dashboard is left out."""
    out = {}
    for path in sorted(directory.glob("*.json")):
        if path.name == BATCH_DASHBOARD and not batch:
            continue
        text = path.read_text()
        json.loads(text)
        out[path.name] = text
    return out


def alert_rules(p95_latency_ms: float, path: Path = ASSETS / "alerts" / "vllm-alerts.yaml") -> dict[str, Any]:
    """The PrometheusRule spec (``groups``) with the tier's latency target filled in."""
    text = path.read_text().replace(P95_PLACEHOLDER, f"{p95_latency_ms / 1000:g}")
    return yaml.safe_load(text)


def batch_alert_rules(path: Path = ASSETS / "alerts" / "batch-alerts.yaml") -> dict[str, Any]:
    """The PrometheusRule spec (``groups``) of the batch alerts."""
    return yaml.safe_load(path.read_text())


def prometheus_url(args: MonitoringArgs) -> str:
    return f"http://{FULLNAME}-prometheus.{args.namespace}.svc.cluster.local:9090"


def dcgm_service_monitor(args: MonitoringArgs) -> dict[str, Any]:
    """Scrape the DCGM exporter keeping its pod/namespace labels (they name the GPU's workload pod)."""
    return {"selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}},
            "namespaceSelector": {"matchNames": [args.gpu_operator_namespace]},
            "endpoints": [{"port": "gpu-metrics", "path": "/metrics", "interval": "15s", "honorLabels": True}]}


def batch_pod_monitor() -> dict[str, Any]:
    """Scrape the batch worker pods in any namespace on their ``metrics`` port. Workers are short-lived Jobs, hence the
    15 s interval; the pod's ``app.kubernetes.io/instance`` (the BatchInference, also the ScaledJob's name) becomes the
    ``app_kubernetes_io_instance`` label the dashboard filters on."""
    return {"selector": {"matchLabels": dict(BATCH_POD_LABELS)}, "namespaceSelector": {"any": True},
            "podTargetLabels": ["app.kubernetes.io/instance"],
            "podMetricsEndpoints": [{"port": BATCH_METRICS_PORT_NAME, "path": "/metrics", "interval": "15s"}]}


def keda_service_monitor() -> dict[str, Any]:
    """Scrape KEDA's operator Service (port ``metrics``, 8080) at KEDA's default 30 s polling interval."""
    return {"selector": {"matchLabels": dict(KEDA_OPERATOR_LABELS)}, "namespaceSelector": {"any": True},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}]}


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack with the serving dashboards and alerts. See the module docstring."""

    release: k8s.helm.v3.Release
    """The Helm release (custom resources of the Prometheus operator wait for it)."""
    namespace: str
    """Namespace of the release."""
    prometheus_url: str
    """In-cluster Prometheus URL (KEDA's Prometheus triggers query it)."""
    grafana_admin_password: pulumi.Output[str]
    """Grafana admin password (secret)."""
    values: dict[str, Any]
    """Rendered Helm values."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}Monitoring", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = args.namespace
        self.prometheus_url = prometheus_url(args)
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}, opts=child)  # node exporter needs host access
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        pw = random.RandomPassword(f"{name}-grafana-admin", length=32, special=False, opts=child)
        self.grafana_admin_password = pulumi.Output.secret(pw.result)
        secret_name = "grafana-admin"
        secret = k8s.core.v1.Secret(f"{name}-grafana-admin", metadata={"name": secret_name, "namespace": args.namespace},
                                    type="Opaque", string_data={"admin-user": "admin",
                                                                "admin-password": self.grafana_admin_password},
                                    opts=after_ns)
        self.values = render_values(args, grafana_secret=secret_name)
        self.release = k8s.helm.v3.Release(
            name, name="kube-prometheus-stack", chart=versions.KUBE_PROMETHEUS_STACK_CHART.name,
            version=args.chart_version, repository_opts={"repo": versions.KUBE_PROMETHEUS_STACK_CHART.repository},
            namespace=args.namespace, values=self.values, atomic=True, cleanup_on_fail=True, timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, secret]))
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        if args.grafana:
            for file, text in dashboards(batch=args.batch).items():
                stem = file.removesuffix(".json")
                k8s.core.v1.ConfigMap(f"{name}-dashboard-{stem}", metadata={
                    "name": f"dashboard-{stem}", "namespace": args.namespace,
                    "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": "genai-scale"}},
                    data={file: text}, opts=after_ns)
        k8s.apiextensions.CustomResource(
            f"{name}-serving-alerts", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            metadata={"name": "genai-scale-serving", "namespace": args.namespace,
                      "labels": {"app.kubernetes.io/part-of": "genai-scale"}},
            spec=alert_rules(args.p95_latency_ms), opts=after_release)
        if args.scrape_dcgm:
            k8s.apiextensions.CustomResource(
                f"{name}-dcgm", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata={"name": "dcgm-exporter", "namespace": args.namespace,
                          "labels": {"app.kubernetes.io/part-of": "genai-scale"}},
                spec=dcgm_service_monitor(args), opts=after_release)
        part_of = {"app.kubernetes.io/part-of": "genai-scale"}
        if args.batch:
            k8s.apiextensions.CustomResource(
                f"{name}-batch-alerts", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
                metadata={"name": "genai-scale-batch", "namespace": args.namespace, "labels": part_of},
                spec=batch_alert_rules(), opts=after_release)
            k8s.apiextensions.CustomResource(
                f"{name}-batch-workers", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
                metadata={"name": "batch-workers", "namespace": args.namespace, "labels": part_of},
                spec=batch_pod_monitor(), opts=after_release)
        if args.scrape_keda:
            k8s.apiextensions.CustomResource(
                f"{name}-keda", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata={"name": "keda-operator", "namespace": args.namespace, "labels": part_of},
                spec=keda_service_monitor(), opts=after_release)
        self.register_outputs({"prometheus_url": self.prometheus_url})
