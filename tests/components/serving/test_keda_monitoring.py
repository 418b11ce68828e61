"""Keda and Monitoring components under mocks: pinned charts, values, dashboards and alerts as resources."""

from __future__ import annotations

import json

from components import versions
from components.serving.keda import Keda, KedaArgs
from components.serving.monitoring import Monitoring, MonitoringArgs, prometheus_url, render_values
from infra.plan import run_program


def test_keda_release_is_pinned_and_sized():
    result = run_program(lambda: Keda("keda", KedaArgs(high_availability=True)))
    rel = result.one("kubernetes:helm.sh/v3:Release", "keda")
    assert rel.inputs["chart"] == "keda"
    assert rel.inputs["version"] == versions.KEDA_CHART.version == "2.21.1"
    assert rel.inputs["repositoryOpts"] == {"repo": "https://kedacore.github.io/charts"}
    assert rel.inputs["namespace"] == "keda"
    assert rel.get("values.operator.replicaCount") == 2
    assert rel.get("values.nodeSelector") == {"genai-scale/node-group": "system"}
    ns = result.one("kubernetes:core/v1:Namespace", "keda-ns")
    assert ns.urn in rel.dependencies


def test_monitoring_release_dashboards_alerts_and_dcgm():
    def program():
        mon = Monitoring("monitoring", MonitoringArgs(p95_latency_ms=2500, storage_gib=100))
        assert mon.prometheus_url == "http://monitoring-prometheus.monitoring.svc.cluster.local:9090"
    result = run_program(program)
    rel = result.one("kubernetes:helm.sh/v3:Release", "monitoring")
    assert rel.inputs["chart"] == "kube-prometheus-stack"
    assert rel.inputs["version"] == versions.KUBE_PROMETHEUS_STACK_CHART.version
    values = rel.inputs["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False  # picks up the vLLM ServiceMonitors
    assert spec["ruleSelectorNilUsesHelmValues"] is False
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert values["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    dash = result.one("kubernetes:core/v1:ConfigMap", "monitoring-dashboard-vllm-serving")
    assert dash.get("metadata.labels.grafana_dashboard") == "1"
    assert json.loads(dash.inputs["data"]["vllm-serving.json"])["uid"] == "genai-scale-vllm"
    rules = result.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "monitoring-serving-alerts")
    exprs = [r.get("expr") for g in rules.get("spec.groups") for r in g["rules"]]
    assert "model:vllm_e2e_latency_seconds:p95_5m > 2.5" in exprs
    assert rel.urn in rules.dependencies  # the CRD comes with the release
    dcgm = result.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "monitoring-dcgm")
    assert dcgm.get("spec.endpoints.0.honorLabels") is True
    secret = result.one("kubernetes:core/v1:Secret", "monitoring-grafana-admin")
    assert "password" not in json.dumps(secret.inputs).replace("admin-password", "")


def test_monitoring_defaults_keep_data_off_disk():
    values = render_values(MonitoringArgs(), grafana_secret="s")
    assert "storageSpec" not in values["prometheus"]["prometheusSpec"]
    assert values["prometheus"]["prometheusSpec"]["retention"] == "15d"
    assert prometheus_url(MonitoringArgs(namespace="obs")) == "http://monitoring-prometheus.obs.svc.cluster.local:9090"


def test_monitoring_batch_dashboard_alerts_and_scrapes():
    result = run_program(lambda: Monitoring("monitoring", MonitoringArgs()))
    rel = result.one("kubernetes:helm.sh/v3:Release", "monitoring")
    dash = result.one("kubernetes:core/v1:ConfigMap", "monitoring-dashboard-batch-inference")
    assert dash.get("metadata.name") == "dashboard-batch-inference"
    assert dash.get("metadata.labels.grafana_dashboard") == "1"
    assert json.loads(dash.inputs["data"]["batch-inference.json"])["uid"] == "genai-scale-batch"
    rules = result.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "monitoring-batch-alerts")
    assert rules.get("metadata.name") == "genai-scale-batch"
    assert {r.get("alert") for g in rules.get("spec.groups") for r in g["rules"]} >= {
        "BatchQueueNotDraining", "BatchShardsFailing", "BatchScalerErrors"}
    pods = result.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "monitoring-batch-workers")
    assert pods.get("spec.selector.matchLabels") == {"app.kubernetes.io/component": "batch",
                                                      "app.kubernetes.io/part-of": "genai-scale"}
    assert pods.get("spec.namespaceSelector") == {"any": True}
    assert pods.get("spec.podMetricsEndpoints") == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert pods.get("spec.podTargetLabels") == ["app.kubernetes.io/instance"]
    keda = result.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "monitoring-keda")
    assert keda.get("spec.selector.matchLabels") == {"app.kubernetes.io/name": "keda-operator"}
    assert keda.get("spec.endpoints") == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    for cr in (rules, pods, keda):
        assert rel.urn in cr.dependencies  # the CRDs come with the release


def test_monitoring_without_batch_or_keda_leaves_them_out():
    result = run_program(lambda: Monitoring("monitoring", MonitoringArgs(batch=False, scrape_keda=False)))
    names = {r.name for r in result.resources}
    assert "monitoring-dashboard-vllm-serving" in names
    assert not names & {"monitoring-dashboard-batch-inference", "monitoring-batch-alerts", "monitoring-batch-workers",
                        "monitoring-keda"}
