"""The batch dashboard and alert rules: every dashboard query parses (promtool), every metric the batch dashboard and
alerts read is one the workers emit or an exporter of the stack (KEDA's operator, kube-state-metrics) provides, and
promtool evaluates the queries and alerts on synthetic series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.serving import monitoring
from serving.batch.worker import Metrics
from tests.kit import ROOT

DASHBOARDS = ROOT / "serving" / "monitoring" / "dashboards"
BATCH_DASHBOARD = DASHBOARDS / monitoring.BATCH_DASHBOARD
NS, SJ = "genai-batch", "batch"
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")

KEDA_OPERATOR_METRICS = {"keda_scaler_metrics_value", "keda_scaler_metrics_latency_seconds", "keda_scaler_active",
                         "keda_scaler_detail_errors_total", "keda_scaled_job_errors_total"}
"""Metrics of KEDA's operator with the labels namespace, metric, scaledObject (a ScaledJob's name too), scaler,
triggerIndex and type ("scaledjob"). Source: kedacore/keda pkg/metricscollector/prommetrics.go (read 2026-12)."""
KUBE_STATE_METRICS = {"kube_job_owner", "kube_job_status_active", "kube_job_status_failed", "kube_pod_status_phase"}
"""kube-state-metrics 2.18 (the kube-state-metrics 7.2.0 chart in kube-prometheus-stack 82.4.3), jobs and pods
collectors (on by default). Source: kubernetes/kube-state-metrics docs/metrics/workload/{job,pod}-metrics.md."""


def worker_metrics() -> set[str]:
    """The sample names of the batch worker's metrics (counters ``_total``, histograms ``_bucket/_sum/_count``)."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def batch_dashboard() -> dict:
    return json.loads(BATCH_DASHBOARD.read_text())


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables filled in (every namespace and ScaledJob, a 5-minute rate window)."""
    return expr.replace("$__rate_interval", "5m").replace("$namespace", ".*").replace("$scaledjob", ".*")


def dashboard_exprs(path: Path) -> list[str]:
    return [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p.get("targets", [])]


def alert_exprs() -> list[str]:
    return [r["expr"] for g in monitoring.batch_alert_rules()["groups"] for r in g["rules"]]


def test_batch_dashboard_shape_and_signals():
    dash = batch_dashboard()
    assert dash["uid"] == "genai-scale-batch" and dash["editable"] is False
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "scaledjob"):
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variables[name]["allValue"] == ".*"  # worker panels work before KEDA's metric has a value
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in dash["panels"])
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    titles = " ".join(p["title"] for p in dash["panels"])
    for words in ("Queue depth", "Workers", "records per second", "tokens per second", "Shard outcomes",
                  "Shard duration"):
        assert words in titles, words
    exprs = " ".join(dashboard_exprs(BATCH_DASHBOARD))
    for needle in ('keda_scaler_metrics_value{type="scaledjob"', "kube_job_status_active", "kube_job_owner",
                   "genai_scale_batch_records_total", "genai_scale_batch_tokens_total",
                   "genai_scale_batch_shards_total", "histogram_quantile(0.95, sum by (le) (rate("
                   "genai_scale_batch_shard_seconds_bucket"):
        assert needle in exprs, needle


def test_every_metric_of_the_batch_dashboard_and_alerts_is_emitted():
    known = worker_metrics() | KEDA_OPERATOR_METRICS | KUBE_STATE_METRICS
    assert {"genai_scale_batch_shards_total", "genai_scale_batch_records_total", "genai_scale_batch_tokens_total",
            "genai_scale_batch_shard_seconds_bucket"} <= known
    recorded = {r["record"] for g in monitoring.batch_alert_rules()["groups"] for r in g["rules"] if "record" in r}
    used: set[str] = set()
    for expr in dashboard_exprs(BATCH_DASHBOARD) + alert_exprs():
        names = set(SELECTOR.findall(expr))
        assert names or any(r in expr for r in recorded), f"no metric selector in {expr!r}"
        used |= names
    assert sorted(used - known) == []
    worker_used = {m for m in used if m.startswith("genai_scale_batch_")}
    assert worker_used == worker_metrics() - {"genai_scale_batch_shard_seconds_sum",
                                              "genai_scale_batch_shard_seconds_count"}


promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run make setup")


def run_promtool(tmp_path: Path, *args: str, files: dict[str, dict]) -> subprocess.CompletedProcess:
    for name, content in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
    return subprocess.run(["promtool", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)


@promtool
@pytest.mark.parametrize("dashboard", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_every_dashboard_query_parses(tmp_path, dashboard):
    exprs = dashboard_exprs(DASHBOARDS / dashboard)
    rules = {"groups": [{"name": "parse", "rules": [
        {"record": f"parse:query_{i}", "expr": grafana_to_promql(e)} for i, e in enumerate(exprs)]}]}
    proc = run_promtool(tmp_path, "check", "rules", "rules.yaml", files={"rules.yaml": rules})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


@promtool
def test_a_query_that_does_not_parse_fails_the_check(tmp_path):
    rules = {"groups": [{"name": "parse", "rules": [{"record": "parse:bad", "expr": "sum by (le (rate(x[5m]))"}]}]}
    proc = run_promtool(tmp_path, "check", "rules", "rules.yaml", files={"rules.yaml": rules})
    assert proc.returncode != 0


def keda_depth(values: str, scaled_job: str = SJ) -> dict:
    return {"series": f'keda_scaler_metrics_value{{namespace="{NS}",scaledObject="{scaled_job}",scaler="shards",'
                      f'metric="s0-aws-sqs-genai-dev-{scaled_job}-queue",triggerIndex="0",type="scaledjob"}}',
            "values": values}


def worker_series(metric: str, labels: str, values: str) -> dict:
    return {"series": f'{metric}{{namespace="{NS}",app_kubernetes_io_instance="{SJ}",pod="{SJ}-abc-x1"'
                      f'{"," + labels if labels else ""}}}', "values": values}


@promtool
def test_dashboard_queries_on_synthetic_series(tmp_path):
    exprs = {p["title"]: [grafana_to_promql(t["expr"]) for t in p["targets"]] for p in batch_dashboard()["panels"]}
    series = [
        keda_depth("7x15"),
        # two running Jobs of the ScaledJob, one Job of something else; a pod waiting for spot capacity
        {"series": f'kube_job_status_active{{namespace="{NS}",job_name="{SJ}-abc"}}', "values": "1x15"},
        {"series": f'kube_job_status_active{{namespace="{NS}",job_name="{SJ}-def"}}', "values": "1x15"},
        {"series": f'kube_job_status_active{{namespace="{NS}",job_name="manual"}}', "values": "1x15"},
        *[{"series": f'kube_job_owner{{namespace="{NS}",job_name="{SJ}-{j}",owner_kind="ScaledJob",'
                     f'owner_name="{SJ}",owner_is_controller="true"}}', "values": "1x15"} for j in ("abc", "def")],
        {"series": f'kube_pod_status_phase{{namespace="{NS}",pod="{SJ}-ghi-x",phase="Pending"}}', "values": "1x15"},
        worker_series("genai_scale_batch_records_total", 'result="ok"', "0+120x15"),      # 2 records/s
        worker_series("genai_scale_batch_records_total", 'result="error"', "0+6x15"),     # 0.1 records/s
        worker_series("genai_scale_batch_tokens_total", "", "0+6000x15"),                 # 100 tokens/s
        worker_series("genai_scale_batch_shards_total", 'outcome="done"', "0+2x15"),
        # every shard took between 60 and 120 s
        *[worker_series("genai_scale_batch_shard_seconds_bucket", f'le="{le}"', f"0+{n}x15")
          for le, n in (("30", 0), ("60", 0), ("120", 2), ("+Inf", 2))],
    ]
    depth, = exprs["Queue depth (shards queued + in flight)"]
    running, pending = exprs["Workers (running Jobs' pods, pending pods)"]
    records, = exprs["Throughput: records per second"]
    tokens, = exprs["Throughput: tokens per second"]
    outcomes, = exprs["Shard outcomes"]
    p50, p95 = exprs["Shard duration (p50/p95)"]
    at = "10m"

    def case(expr: str, samples: list[tuple[str, float]]) -> dict:
        return {"expr": expr, "eval_time": at, "exp_samples": [{"labels": lab, "value": v} for lab, v in samples]}

    tests = [{"interval": "1m", "input_series": series, "promql_expr_test": [
        case(depth, [(f'{{namespace="{NS}",scaledObject="{SJ}"}}', 7)]),
        case(running, [(f'{{namespace="{NS}",owner_name="{SJ}"}}', 2)]),
        case(pending, [(f'{{namespace="{NS}"}}', 1)]),
        case(records, [('{result="ok"}', 2), ('{result="error"}', 0.1)]),
        case(tokens, [("{}", 100)]),
        case(outcomes, [('{outcome="done"}', 10)]),
        case(p50, [("{}", 90)]),
        case(p95, [("{}", 117)]),
    ]}]
    proc = run_promtool(tmp_path, "test", "rules", "test.yaml", files={
        "test.yaml": {"rule_files": [], "evaluation_interval": "1m", "tests": tests}})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@promtool
def test_batch_alerts_fire_on_synthetic_series(tmp_path):
    stuck = keda_depth("5x90")                          # 5 shards, never shrinking
    draining = keda_depth("80-1x90", scaled_job="big")  # a long batch that drains one shard a minute
    failing = worker_series("genai_scale_batch_shards_total", 'outcome="failed"', "1+1x90")
    errors = {"series": f'keda_scaler_detail_errors_total{{namespace="{NS}",scaledObject="{SJ}",scaler="shards",'
                        f'metric="s0-aws-sqs-q",triggerIndex="0",type="scaledjob"}}', "values": "0+1x90"}
    tests = [{
        "interval": "1m", "input_series": [stuck, draining, failing, errors],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "BatchQueueNotDraining", "exp_alerts": []},  # not for 30 min yet
            {"eval_time": "45m", "alertname": "BatchQueueNotDraining", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "namespace": NS, "scaledObject": SJ},
                "exp_annotations": {
                    "summary": f"{SJ}: batch queue not draining",
                    "description": f"5 shards are queued or in flight for ScaledJob {NS}/{SJ} and the queue has not "
                                   "shrunk for 30 minutes: no worker runs (spot capacity, vCPU quota, "
                                   "maxReplicaCount) or every shard fails and goes back to the queue. Check the Jobs "
                                   f"and pending pods in {NS} and the dead-letter queue."}}]},
            {"eval_time": "30m", "alertname": "BatchShardsFailing", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "namespace": NS, "app_kubernetes_io_instance": SJ},
                "exp_annotations": {
                    "summary": f"{SJ}: batch shards keep failing",
                    "description": f"Workers in {NS} failed 30 shards in the last 30 minutes (engine unreachable or "
                                   "malformed answers). A shard that fails on its last allowed receive goes to the "
                                   "dead-letter queue and its records become shard_failed error lines; read the "
                                   "worker logs."}}]},
            {"eval_time": "25m", "alertname": "BatchScalerErrors", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "namespace": NS, "scaledObject": SJ},
                "exp_annotations": {
                    "summary": f"{SJ}: KEDA cannot read the batch queue",
                    "description": f"KEDA's scaler for ScaledJob {NS}/{SJ} keeps failing: no worker starts. Check "
                                   "the scaler role's sqs:GetQueueAttributes and the KEDA operator's Pod Identity "
                                   "association."}}]},
        ],
    }, {
        # an empty queue, idle workers: nothing fires
        "interval": "1m", "input_series": [keda_depth("0x90"),
                                           worker_series("genai_scale_batch_shards_total", 'outcome="failed"', "3x90")],
        "alert_rule_test": [{"eval_time": "80m", "alertname": a, "exp_alerts": []}
                            for a in ("BatchQueueNotDraining", "BatchShardsFailing", "BatchScalerErrors")],
    }]
    proc = run_promtool(tmp_path, "test", "rules", "test.yaml", files={
        "rules.yaml": monitoring.batch_alert_rules(),
        "test.yaml": {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}})
    assert proc.returncode == 0, proc.stdout + proc.stderr
