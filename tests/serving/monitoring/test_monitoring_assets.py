"""Dashboards, alert rules and autoscaling queries: metric names exist in the pinned vLLM, and promtool evaluates
the alerts and the KEDA queries on synthetic series."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.serving import monitoring
from components.serving.vllm.autoscaling import (banded_replicas_query, gateway_demand_query, gpu_util_query,
                                          latency_p95_ms_query, queue_query, replicas_query, tokens_query)
from components.serving.vllm.manifests import render_manifests
from tests.kit import ROOT

DASHBOARD = ROOT / "serving" / "monitoring" / "dashboards" / "vllm-serving.json"
ALERTS = ROOT / "serving" / "monitoring" / "alerts" / "vllm-alerts.yaml"
NS, MODEL, DEPLOY = "genai-serving", "llama-8b", "llama-8b"
VLLM_METRIC = re.compile(r"vllm:[a-z0-9_]+")


def vllm_metric_source() -> str:
    spec = importlib.util.find_spec("vllm")
    assert spec and spec.submodule_search_locations, "vllm is not installed (make setup)"
    root = Path(list(spec.submodule_search_locations)[0])
    return "".join(p.read_text() for p in (root / "v1" / "metrics").glob("*.py"))


def base_name(metric: str) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        if metric.endswith(suffix) and metric != "vllm:iteration_tokens_total":
            return metric[: -len(suffix)]
    return metric


def used_metric_names() -> set[str]:
    from tests.components.serving.vllm.test_service import args
    texts = [DASHBOARD.read_text(), ALERTS.read_text(), json.dumps(render_manifests("llama-8b", args()))]
    return {m for t in texts for m in VLLM_METRIC.findall(t)}


def test_every_vllm_metric_we_query_exists_in_the_pinned_version():
    source = vllm_metric_source()
    used = used_metric_names()
    assert {"vllm:num_requests_waiting", "vllm:e2e_request_latency_seconds_bucket",
            "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
            "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total"} <= used
    missing = sorted(m for m in used if f'"{base_name(m)}"' not in source)
    assert missing == [], f"not exported by the installed vLLM: {missing}"


def test_renamed_metrics_are_not_used():
    # deprecated in vLLM 0.9 and later removed; dashboards that still use them show nothing
    used = used_metric_names()
    assert not used & {"vllm:gpu_cache_usage_perc", "vllm:gpu_prefix_cache_hit_rate",
                       "vllm:time_per_output_token_seconds_bucket"}


def test_dashboard_shows_the_required_signals():
    dash = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for needle in ("histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,",
                   "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
                   "vllm:e2e_request_latency_seconds_bucket", "vllm:num_requests_waiting",
                   "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total",
                   "DCGM_FI_DEV_GPU_UTIL", "kube_deployment_status_replicas_available"):
        assert needle in exprs, needle
    assert dash["uid"] == "genai-scale-vllm" and dash["editable"] is False


def test_alert_rules_fill_in_the_tier_target():
    spec = monitoring.alert_rules(2500)
    rules = {r.get("alert") or r.get("record"): r for g in spec["groups"] for r in g["rules"]}
    assert rules["VllmLatencySloBreach"]["expr"] == "model:vllm_e2e_latency_seconds:p95_5m > 2.5"
    assert {"VllmQueueGrowing", "VllmKvCacheNearlyFull", "VllmPreemptions", "GpuXidError"} <= set(rules)
    assert monitoring.P95_PLACEHOLDER not in json.dumps(spec)


promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool missing: run make setup")


def run_promtool(tmp_path: Path, tests: list[dict], rules: dict | None = None) -> subprocess.CompletedProcess:
    files = []
    if rules is not None:
        (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
        files = ["rules.yaml"]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"rule_files": files, "evaluation_interval": "1m",
                                                         "tests": tests}))
    return subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)


def hist(metric: str, per_minute: dict[str, int], minutes: int = 15) -> list[dict]:
    """Cumulative histogram bucket counters growing by ``per_minute`` (le -> requests with latency <= le)."""
    return [{"series": f'{metric}_bucket{{namespace="{NS}",model_name="{MODEL}",pod="p1",le="{le}"}}',
             "values": f"0+{n}x{minutes}"} for le, n in per_minute.items()]


REPLICAS = {"series": f'kube_deployment_status_replicas{{namespace="{NS}",deployment="{DEPLOY}"}}',
            "values": "3x15"}
SLOW = {"1": 0, "5": 0, "10": 60, "+Inf": 60}      # every request in (5 s, 10 s]: p95 = 9.75 s
MEDIUM = {"1": 0, "5": 60, "10": 60, "+Inf": 60}    # every request in (1 s, 5 s]: p95 = 4.8 s


def latency_demand(slo_ms: float) -> str:
    return banded_replicas_query(latency_p95_ms_query(NS, MODEL), upper=slo_ms, lower=slo_ms / 2,
                                 replicas=replicas_query(NS, DEPLOY))


@promtool
def test_keda_queries_on_synthetic_series(tmp_path):
    gpu_series = [
        {"series": f'DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{NS}",exported_pod="{DEPLOY}-7d9f8-abcde",gpu="0"}}',
         "values": "90x15"},
        {"series": f'DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{NS}",exported_pod="{DEPLOY}-7d9f8-fghij",gpu="0"}}',
         "values": "90x15"},
        # a warm-pool placeholder holds a GPU at 0 % and must not pull the mean down
        {"series": f'DCGM_FI_DEV_GPU_UTIL{{exported_namespace="{NS}",exported_pod="{DEPLOY}-warm-5c4b-xyz12",gpu="0"}}',
         "values": "0x15"},
    ]
    waiting = [{"series": f'vllm:num_requests_waiting{{namespace="{NS}",model_name="{MODEL}",pod="{p}"}}',
                "values": f"{v}x15"} for p, v in (("a", 10), ("b", 4))]
    waiting.append({"series": f'vllm:num_requests_waiting{{namespace="{NS}",model_name="other",pod="c"}}',
                    "values": "100x15"})
    tokens = [{"series": f'vllm:generation_tokens_total{{namespace="{NS}",model_name="{MODEL}",pod="a"}}',
               "values": "0+6000x15"}]  # 100 tokens/s
    gateway = [{"series": 'gateway_upstream_requests_total{upstream="vllm-llama-8b",outcome="error"}',
                "values": "0+60x15"}]  # 1 request/s while the service has no replica
    at = "10m"
    tests = [
        {"interval": "1m", "input_series": waiting,
         "promql_expr_test": [{"expr": queue_query(NS, MODEL), "eval_time": at, "exp_samples": [{"labels": "{}", "value": 14}]}]},
        {"interval": "1m", "input_series": tokens,
         "promql_expr_test": [{"expr": tokens_query(NS, MODEL), "eval_time": at, "exp_samples": [{"labels": "{}", "value": 100}]}]},
        {"interval": "1m", "input_series": gateway,
         "promql_expr_test": [{"expr": gateway_demand_query("vllm-llama-8b"), "eval_time": at,
                               "exp_samples": [{"labels": "{}", "value": 1}]}]},
        # latency above the SLO: replicas grow in proportion (3 x 9750 / 4000)
        {"interval": "1m", "input_series": hist("vllm:e2e_request_latency_seconds", SLOW) + [REPLICAS],
         "promql_expr_test": [{"expr": latency_demand(4000), "eval_time": at,
                               "exp_samples": [{"labels": "{}", "value": 3 * 9750 / 4000}]}]},
        # inside the band (between half the SLO and the SLO): hold the 3 replicas
        {"interval": "1m", "input_series": hist("vllm:e2e_request_latency_seconds", MEDIUM) + [REPLICAS],
         "promql_expr_test": [{"expr": latency_demand(6000), "eval_time": at,
                               "exp_samples": [{"labels": "{}", "value": 3}]}]},
        # below half the SLO: shrink (3 x 4800 / 10000)
        {"interval": "1m", "input_series": hist("vllm:e2e_request_latency_seconds", MEDIUM) + [REPLICAS],
         "promql_expr_test": [{"expr": latency_demand(20000), "eval_time": at,
                               "exp_samples": [{"labels": "{}", "value": 3 * 4800 / 10000}]}]},
        # no traffic: no demand from the latency trigger (0, not NaN)
        {"interval": "1m", "input_series": hist("vllm:e2e_request_latency_seconds", {"1": 0, "+Inf": 0}) + [REPLICAS],
         "promql_expr_test": [{"expr": latency_demand(4000), "eval_time": at,
                               "exp_samples": [{"labels": "{}", "value": 0}]}]},
        # GPU 90 % > 70 %: 3 x 90 / 70 (the placeholder's 0 % is left out)
        {"interval": "1m", "input_series": gpu_series + [REPLICAS],
         "promql_expr_test": [{"expr": banded_replicas_query(gpu_util_query(NS, DEPLOY), upper=70, lower=30,
                                                             replicas=replicas_query(NS, DEPLOY)),
                               "eval_time": at, "exp_samples": [{"labels": "{}", "value": 90 / 70 * 3}]}]},
    ]
    proc = run_promtool(tmp_path, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@promtool
def test_alerts_fire_on_synthetic_series(tmp_path):
    waiting = {"series": f'vllm:num_requests_waiting{{namespace="{NS}",model_name="{MODEL}",pod="a"}}',
               "values": "20+5x30"}
    kv = {"series": f'vllm:kv_cache_usage_perc{{namespace="{NS}",model_name="{MODEL}",pod="a"}}', "values": "0.97x30"}
    tests = [{
        "interval": "1m",
        "input_series": hist("vllm:e2e_request_latency_seconds", SLOW, minutes=30) + [waiting, kv],
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "VllmLatencySloBreach", "exp_alerts": [{
                "exp_labels": {"severity": "critical", "namespace": NS, "model_name": MODEL},
                "exp_annotations": {
                    "summary": f"{MODEL}: p95 end-to-end latency above the SLO",
                    "description": f"p95 latency of {MODEL} in {NS} is 9.75s (target 4 s) for 10 minutes. Check "
                                   "the queue depth and whether the autoscaler is at its maximum replicas or waiting "
                                   "for accelerator nodes."}}]},
            {"eval_time": "5m", "alertname": "VllmLatencySloBreach", "exp_alerts": []},  # not for 10 min yet
            {"eval_time": "25m", "alertname": "VllmQueueGrowing", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "namespace": NS, "model_name": MODEL},
                "exp_annotations": {
                    "summary": f"{MODEL}: request queue keeps growing",
                    "description": f"145 requests wait for {MODEL} and the queue has grown for 10 minutes: demand "
                                   "exceeds the replicas the autoscaler can add (max replicas, node group max size, "
                                   "or GPU capacity)."}}]},
            {"eval_time": "15m", "alertname": "VllmKvCacheNearlyFull", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "namespace": NS, "model_name": MODEL},
                "exp_annotations": {
                    "summary": f"{MODEL}: KV cache above 95 %",
                    "description": f"KV cache of {MODEL} is 97% full: requests get preempted and recomputed. Lower "
                                   "max_num_seqs or add replicas."}}]},
        ],
    }]
    proc = run_promtool(tmp_path, tests, rules=monitoring.alert_rules(4000))
    assert proc.returncode == 0, proc.stdout + proc.stderr
