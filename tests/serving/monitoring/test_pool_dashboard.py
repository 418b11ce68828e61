"""The model-pools dashboard queries only metrics the gateway exports, and shows every pool signal the issue asks for
(state, held requests, wakes, loads, evictions, their durations) plus prefix-affinity routing."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from serving.gateway.metrics import Metrics
from serving.gateway.routing import Router
from tests.kit import ROOT

DASHBOARD = ROOT / "serving" / "monitoring" / "dashboards" / "model-pools.json"
GATEWAY_METRIC = re.compile(r"\bgateway_[a-z0-9_]+")


def exported_names() -> set[str]:
    """Sample names the gateway exposes (metrics.py and the router's own counter)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    registry: CollectorRegistry = Metrics().registry
    return {fam.name + sfx for fam in registry.collect() for sfx in suffixes.get(fam.type, ("",))}


def exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_the_dashboard_is_valid_and_read_only():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "genai-scale-pools" and dash["editable"] is False
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource", "pool", "model"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_every_pool_metric_queried_is_exported_by_the_gateway():
    used = {m for e in exprs() for m in GATEWAY_METRIC.findall(e)}
    pool_used = {m for m in used if m.startswith("gateway_pool_")}
    assert {"gateway_pool_model_state", "gateway_pool_held_requests", "gateway_pool_wakes_total",
            "gateway_pool_loads_total", "gateway_pool_evictions_total", "gateway_pool_load_seconds_bucket",
            "gateway_pool_hold_seconds_bucket"} <= pool_used
    missing = sorted(pool_used - exported_names())
    assert missing == [], f"not exported by serving/gateway/metrics.py: {missing}"


def test_the_affinity_counter_queried_is_the_routers():
    assert any("gateway_routing_affinity_total" in e for e in exprs())
    src = (ROOT / "serving" / "gateway" / "routing.py").read_text()
    assert '"gateway_routing_affinity_total"' in src and Router is not None
