"""What a vLLM service's autoscaler measures, and how fast it moves. Pure: no Pulumi.

- Metric names: the ones the pinned vLLM exports (tests/serving checks them against its source), the DCGM exporter's
  GPU utilization, kube-state-metrics' replica count and the gateway's per-upstream request counter.
- PromQL builders for the KEDA Prometheus triggers (and the dashboards' tests): queue depth, generated tokens per
  second, p95 latency, GPU utilization, and :func:`banded_replicas_query`, which turns an up/down band on a signal
  (latency against the SLO, GPU utilization 70/30 %) into a wanted replica count.
- The HPA ``behavior`` (fast up, slow down) and the shape of one KEDA Prometheus trigger.

:mod:`components.serving.vllm.manifests` puts these into the ScaledObject of :class:`components.serving.vllm.service.VllmService`.
"""

from __future__ import annotations

from typing import Any

from components.catalog.vendors import NVIDIA
from components.serving.vllm.args import AutoscalingSettings

# vLLM 0.31 metric names (vllm/v1/metrics/loggers.py; labels model_name, engine). Counters get _total on /metrics,
# histograms _bucket/_sum/_count.
QUEUE = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
GENERATION_TOKENS = "vllm:generation_tokens_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
E2E_LATENCY = "vllm:e2e_request_latency_seconds"
TTFT = "vllm:time_to_first_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
# DCGM exporter default counter (NVIDIA/dcgm-exporter etc/default-counters.csv): GPU utilization in percent; the
# vendor registry holds it (components.catalog.vendors), the default of gpu_util_query.
GPU_UTIL = NVIDIA.utilization_metric or ""
# kube-state-metrics (part of kube-prometheus-stack)
DEPLOYMENT_REPLICAS = "kube_deployment_status_replicas"
# gateway (serving/gateway/metrics.py): attempts per upstream, counted even when the upstream has no replicas
GATEWAY_UPSTREAM_REQUESTS = "gateway_upstream_requests_total"

LATENCY_METRICS = {"e2e": E2E_LATENCY, "ttft": TTFT}


def selector(namespace: str, served_model_name: str) -> str:
    return f'namespace="{namespace}",model_name="{served_model_name}"'


def queue_query(namespace: str, served_model_name: str) -> str:
    """Requests waiting for a batch slot, all replicas together."""
    return f"sum({QUEUE}{{{selector(namespace, served_model_name)}}})"


def tokens_query(namespace: str, served_model_name: str, window: str = "2m") -> str:
    """Generated tokens per second, all replicas together."""
    return f"sum(rate({GENERATION_TOKENS}{{{selector(namespace, served_model_name)}}}[{window}]))"


def latency_p95_ms_query(namespace: str, served_model_name: str, signal: str = "e2e", window: str = "5m") -> str:
    """p95 of end-to-end latency (or time to first token) in milliseconds over ``window``; empty without traffic."""
    metric = LATENCY_METRICS[signal]
    return (f"(histogram_quantile(0.95, sum by (le) (rate({metric}_bucket{{{selector(namespace, served_model_name)}}}"
            f"[{window}]))) * 1000) > 0")


def gpu_util_query(namespace: str, deployment: str, window: str = "5m", *, metric: str = GPU_UTIL) -> str:
    """Mean GPU utilization (percent) of the deployment's pods over ``window``; empty when no pod runs.

    ``metric`` is the vendor's per-pod utilization series (``VendorFacts.utilization_metric``), DCGM's by default.

    The DCGM exporter labels series with the workload's pod; behind a ServiceMonitor without honorLabels those labels
    become ``exported_namespace``/``exported_pod``, so both spellings are matched. The pod pattern is the
    Deployment's (``<name>-<replicaset>-<pod>``), which leaves out the warm-pool placeholders (``<name>-warm-...``).
    """
    pods = f"{deployment}-[a-z0-9]+-[a-z0-9]+"
    return (f'avg(avg_over_time({metric}{{exported_namespace="{namespace}",exported_pod=~"{pods}"}}[{window}]) '
            f'or avg_over_time({metric}{{namespace="{namespace}",pod=~"{pods}"}}[{window}])) > 0')


def replicas_query(namespace: str, deployment: str) -> str:
    return f'sum({DEPLOYMENT_REPLICAS}{{namespace="{namespace}",deployment="{deployment}"}})'


def banded_replicas_query(signal: str, *, upper: float, lower: float, replicas: str) -> str:
    """Wanted replicas = replicas x min(max(signal / upper, 1), signal / lower); 0 when the signal is absent."""
    if not 0 < lower < upper:
        raise ValueError(f"need 0 < lower ({lower}) < upper ({upper})")
    return (f"(clamp_max(clamp_min(({signal}) / {upper:g}, 1), scalar({signal}) / {lower:g}) * scalar({replicas}))"
            f" or vector(0)")


def gateway_demand_query(upstream: str, window: str = "2m") -> str:
    """Requests per second the gateway sends (or tries to send) to this upstream; drives scale from zero."""
    return f'sum(rate({GATEWAY_UPSTREAM_REQUESTS}{{upstream="{upstream}"}}[{window}]))'


def hpa_behavior(a: AutoscalingSettings) -> dict[str, Any]:
    """Fast up (no window; double or add N pods a minute), slow down (long window; one pod per period)."""
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60},
                                 {"type": "Pods", "value": a.scale_up_pods_per_minute, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": a.scale_down_stabilization_seconds, "selectPolicy": "Min",
                      "policies": [{"type": "Pods", "value": a.scale_down_pods_per_period,
                                    "periodSeconds": a.scale_down_period_seconds}]},
    }


def prometheus_trigger(trigger_name: str, server: Any, query: str, threshold: float,
                       metric_type: str = "AverageValue", activation: float | None = None) -> dict[str, Any]:
    """One KEDA ``prometheus`` trigger; series that are absent count as no demand (``ignoreNullValues``)."""
    meta: dict[str, Any] = {"serverAddress": server, "query": query, "threshold": f"{threshold:g}",
                            "ignoreNullValues": "true"}
    if activation is not None:
        meta["activationThreshold"] = f"{activation:g}"
    return {"type": "prometheus", "name": trigger_name, "metricType": metric_type, "metadata": meta}


def banded_trigger(trigger_name: str, server: Any, signal: str, *, upper: float, lower: float,
                   replicas: str) -> dict[str, Any]:
    """A trigger that wants replicas in proportion to ``signal`` above ``upper`` and fewer below ``lower``;
    ``replicas`` is the PromQL count of what scales (:func:`replicas_query` for a Deployment, the leader pods of a
    LeaderWorkerSet)."""
    return prometheus_trigger(trigger_name, server, banded_replicas_query(
        signal, upper=upper, lower=lower, replicas=replicas), 1)
