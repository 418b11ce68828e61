"""Prometheus metrics of the gateway (one registry per app so tests and several apps in a process don't collide)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as _Counter
from prometheus_client import Gauge as _Gauge
from prometheus_client import Histogram as _Histogram

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _MemoLabels:
    """``labels(*values)`` remembered per value tuple: the request path calls it several times per request, and
    prometheus_client validates and locks on every call. The label sets here are bounded by the config (routes,
    tenants, upstreams, status codes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._memo: dict[tuple, Any] = {}

    def labels(self, *values: Any, **kw: Any):  # type: ignore[override]
        if kw:
            return super().labels(*values, **kw)  # type: ignore[misc]
        child = self._memo.get(values)
        if child is None:
            child = self._memo[values] = super().labels(*values)  # type: ignore[misc]
        return child


class Counter(_MemoLabels, _Counter):
    pass


class Gauge(_MemoLabels, _Gauge):
    pass


class Histogram(_MemoLabels, _Histogram):
    pass


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("gateway_requests_total", "Requests by route, tenant and HTTP status.",
                                ["route", "tenant", "status"], registry=r)
        self.latency = Histogram("gateway_request_duration_seconds", "Time to the last byte of the response.",
                                 ["route", "stream"], buckets=_LATENCY, registry=r)
        self.ttft = Histogram("gateway_time_to_first_token_seconds", "Time to the first streamed content chunk.",
                              ["route"], buckets=_LATENCY, registry=r)
        self.tokens = Counter("gateway_tokens_total", "Tokens by tenant, route and direction (in = prompt, "
                              "out = completion), as reported by the upstream.",
                              ["tenant", "model", "direction"], registry=r)
        self.cache = Counter("gateway_cache_lookups_total", "Cache lookups by kind and result.",
                             ["kind", "result"], registry=r)
        self.cache_errors = Counter("gateway_cache_errors_total", "Cache store failures (the request went upstream).",
                                    ["kind", "op"], registry=r)
        self.limiter_rejections = Counter("gateway_limiter_rejections_total", "Requests rejected by limits.",
                                          ["tenant", "limit"], registry=r)
        self.limiter_errors = Counter("gateway_limiter_errors_total", "Limiter store failures, by fail mode taken.",
                                      ["mode"], registry=r)
        self.limiter_underestimates = Counter("gateway_limiter_underestimates_total",
                                              "Requests whose reported usage exceeded the reservation.",
                                              ["route"], registry=r)
        self.upstream_requests = Counter("gateway_upstream_requests_total", "Upstream attempts by outcome.",
                                         ["upstream", "outcome"], registry=r)
        self.upstream_errors = Counter("gateway_upstream_errors_total", "Failed upstream attempts by reason.",
                                       ["upstream", "reason"], registry=r)
        self.retries = Counter("gateway_retries_total", "Re-attempts on another upstream of the same route.",
                               ["route"], registry=r)
        self.fallbacks = Counter("gateway_fallbacks_total", "Attempts that went to a fallback upstream.",
                                 ["route", "upstream"], registry=r)
        self.retry_budget_exhausted = Counter("gateway_retry_budget_exhausted_total",
                                              "Failures not retried because the retry budget was spent.",
                                              ["route"], registry=r)
        self.escalations = Counter("gateway_cascade_escalations_total", "Cascade escalations by route and reason.",
                                   ["route", "reason"], registry=r)
        self.circuit_open = Gauge("gateway_circuit_open", "1 while an upstream's circuit breaker is open.",
                                  ["upstream"], registry=r)
        self.outstanding = Gauge("gateway_upstream_outstanding_requests", "In-flight requests per upstream.",
                                 ["upstream"], registry=r)
        self.stream_incomplete = Counter("gateway_stream_incomplete_total",
                                         "Streams that ended without [DONE] or a finish reason, or broke mid-way "
                                         "(the client got an error event; nothing was cached).",
                                         ["route", "reason"], registry=r)
        self.slow_clients = Counter("gateway_slow_clients_total",
                                    "Connections closed because the client sent its headers or body too slowly, or "
                                    "headers that were too large.", ["phase"], registry=r)
        self.inflight = Gauge("gateway_inflight_requests", "Requests being served.", registry=r)
        self.embedding_requests = Counter("gateway_embedding_requests_total",
                                          "POST /v1/embeddings requests by model, tenant and HTTP status.",
                                          ["model", "tenant", "status"], registry=r)
        self.embedding_inputs = Counter("gateway_embedding_inputs_total",
                                        "Texts in answered embeddings requests, by model, tenant and source "
                                        "(cache: the vector cache; embedded: the model).",
                                        ["model", "tenant", "source"], registry=r)
        self.embedding_batch_size = Histogram("gateway_embedding_batch_size",
                                              "Texts per embedder call of the micro-batcher, by model.", ["model"],
                                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
                                              registry=r)
        self.embedding_latency = Histogram("gateway_embedding_duration_seconds",
                                           "Time to answer a POST /v1/embeddings request, by model.", ["model"],
                                           buckets=_LATENCY, registry=r)
        # model pools (serving/gateway/pools.py): every gateway exports the pool's shared state as it last read it
        self.pool_state = Gauge("gateway_pool_model_state", "Replicas of a pool on which a model is in a state: hot "
                                "(engine awake, adapter loaded on an awake engine), warm (asleep, weights kept at "
                                "level 1; adapter loaded on a sleeping engine), cold (not loaded, asleep at level 2, "
                                "or unknown).", ["pool", "model", "state"], registry=r)
        self.pool_wakes = Counter("gateway_pool_wakes_total", "Engine wakes (POST /wake_up) by outcome.",
                                  ["pool", "model", "outcome"], registry=r)
        self.pool_loads = Counter("gateway_pool_loads_total", "LoRA adapter loads (POST /v1/load_lora_adapter) by "
                                  "outcome.", ["pool", "model", "outcome"], registry=r)
        self.pool_evictions = Counter("gateway_pool_evictions_total", "Engines put to sleep and adapters unloaded to "
                                      "make room, by the model evicted.", ["pool", "model"], registry=r)
        self.pool_load_seconds = Histogram("gateway_pool_load_seconds", "Time of one wake or adapter load, by op "
                                           "(wake, load).", ["pool", "model", "op"], buckets=_LATENCY, registry=r)
        self.pool_held = Gauge("gateway_pool_held_requests", "Requests waiting for a pool model to wake or load (the "
                               "pool's KEDA trigger).", ["pool", "model"], registry=r)
        self.pool_hold_seconds = Histogram("gateway_pool_hold_seconds", "How long a request waited for its pool model "
                                           "(held requests only, served or not).", ["pool", "model"],
                                           buckets=_LATENCY, registry=r)
