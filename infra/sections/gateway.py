"""Stack section: gateway. The OpenAI-compatible gateway in front of whatever the earlier sections built.

Routes are derived from the context: one per vLLM service (named after the service; a multi-node model's
``MultiNodeVllmService`` is routed like a ``VllmService``: its URL and headless replicas Service select the groups'
leaders), one per SageMaker endpoint
(``sagemaker-<name>``) and ``bedrock`` for the Bedrock model; with ``bedrockFallback`` the other routes fall back to
Bedrock on 5xx/429/timeouts. Model pools (``ctx.model_pools``): a ``dynamic`` pool becomes a block of the config's
``pools`` (its ``ModelPool.gateway_block``: the headless Service whose A records are the replicas, the engines and
their adapters; the gateway's pool controller wakes, loads and evicts them), and its engines' API key reaches the
gateway pods as the env var the block names; the models of a ``dedicated``, ``mig:`` or ``time-slicing:`` pool are
plain upstreams and routes, as ``serving.models`` get. The cache (``ctx.cache``) backs the exact and semantic caches and the token limiter over
TLS with AUTH; without a cache there is no shared store, so caches are off and tenants must not set request/token
budgets (the section refuses rather than silently not enforcing them). The ALB's ``gateway`` target group, when the
edge section made one, gets a TargetGroupBinding. With the batch section on, the gateway serves the OpenAI Batch and
Files APIs on the batch section's bucket and queue: the batch section builds after the gateway (its workers run the
gateway image), so the gateway takes them as deferred Outputs that the batch section resolves (:func:`batch_wiring`).
The same way it gets the managed batch backends (:func:`batch_backends`, the config's ``batch.backends``): Bedrock
batch (``batch.bedrock``: the service role's ARN, and the submitter policy on the gateway's IRSA role) and every
SageMaker asynchronous endpoint (``sagemaker.endpoints.<name>.mode: async``: no real-time route; the managed-dispatch
queue's URL, and a policy to send to it). A route without a backend runs its batches on the cluster queue.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import pulumi
from pydantic import Field

from components.errors import ArgsError

from problems import Problem
from components.gateway.gateway import Gateway, GatewayArgs
from infra.sections.base import BuildContext, args_from, derive_settings, translate
from infra.sections.rag import gateway_blocks as rag_gateway_blocks
from infra.sections.rag import gateway_secret_env as rag_gateway_secret_env

TITAN_EMBED_V2 = "amazon.titan-embed-text-v2:0"


WIRING = ("cluster", "config", "redis_auth_token", "upstream_api_keys", "target_group_arn", "invoke_policy_arns",
          "bedrock_embedding_model_arn", "oidc_provider_arn", "oidc_issuer", "tags", "depends_on", "service_monitor",
          "monitoring_depends_on", "batch_bucket", "batch_queue_url", "batch_queue_arn", "batch_dlq_arn",
          "batch_kms_key_arn", "batch_region")
"""Args the program supplies from the other sections; never stack config."""

_RUNTIME_DEFAULTS = derive_settings(GatewayArgs, name="_GatewayArgsSettings", exclude=WIRING, module=__name__)


class GatewaySettings(_RUNTIME_DEFAULTS):  # type: ignore[misc, valid-type]
    """The gateway's deployment (derived from GatewayArgs) and the routes' runtime settings."""

    enabled: bool = False
    """Deploy the gateway. Default: off (tier presets turn it on)."""
    tenants: _RUNTIME_DEFAULTS.model_fields["tenants"].annotation = Field(  # type: ignore[name-defined]
        default_factory=lambda: {"default": {}})
    """Tenants (one generated API key each). Default: one tenant ``default`` without budgets."""
    max_tokens: int = Field(4096, gt=0)
    """Per-route max_tokens cap. Default: 4096."""
    max_prompt_tokens: int = Field(32768, gt=0)
    """Per-route prompt cap (tokens). Default: 32768."""
    exact_cache: bool = True
    """Exact cache on every route (deterministic requests only; needs the cache). Default: on."""
    semantic_cache: bool = False
    """Semantic cache on every route (needs the cache). Default: off."""
    semantic_threshold: float = Field(0.9, gt=0, le=1)
    """Semantic similarity threshold. Default: 0.90."""
    embedder: Literal["local", "bedrock"] = "local"
    """Semantic-cache embeddings: local CPU model or Bedrock Titan v2. Default: local."""
    limiter_fail_mode: Literal["closed", "open"] = "closed"
    """When the cache is unreachable: reject (closed) or admit unmetered (open). Default: closed."""
    bedrock_fallback: bool = True
    """Other routes fall back to Bedrock when it is deployed. Default: on."""
    prefix_affinity: bool = True
    """Routes of the vLLM services send requests that share a session key or a prompt prefix to the same replica
    (through the service's headless ``<name>-replicas`` Service), so vLLM's prefix cache serves the shared tokens,
    within a bounded load (a replica over 1.25 x its share passes the request on). Off: least outstanding requests
    over the ClusterIP Service. Default: on (bench/routing/affinity.py: about half the prefill tokens and TTFT)."""


KEYS = {"gateway": GatewaySettings}
"""Top-level `genai-scale:<key>` config keys this section owns, each with its settings model."""


def _v1(url: Any) -> Any:
    return pulumi.Output.from_input(url).apply(lambda u: u.rstrip("/") if u.rstrip("/").endswith("/v1")
                                               else u.rstrip("/") + "/v1")


def upstream_key_env(service: str) -> str:
    """Environment variable holding a vLLM service's API key in the gateway pods."""
    return "VLLM_" + "".join(c if c.isalnum() else "_" for c in service).upper() + "_API_KEY"


def pool_services(ctx: BuildContext) -> dict[str, Any]:
    """The engines of the model pools that are plain upstreams (``dedicated``, ``mig:``, ``time-slicing:`` pools: a
    VllmService per model, always hot), by model name."""
    out: dict[str, Any] = {}
    for _, pool in sorted((ctx.model_pools or {}).items()):
        if not getattr(pool, "gateway_block", None):
            out.update(getattr(pool, "services", None) or {})
    return out


def dynamic_pools(ctx: BuildContext) -> dict[str, Any]:
    """The dynamic pools (the gateway's pool controller drives them), by pool name."""
    return {n: p for n, p in sorted((ctx.model_pools or {}).items()) if getattr(p, "gateway_block", None)}


def upstream_api_keys(ctx: BuildContext) -> dict[str, Any]:
    """Env var -> API key of every vLLM service and dynamic pool that requires one (the gateway authenticates to
    them)."""
    services = {**(ctx.vllm_services or {}), **pool_services(ctx)}
    out = {upstream_key_env(n): svc.api_key for n, svc in sorted(services.items())
           if getattr(svc, "api_key", None) is not None}
    for pool in dynamic_pools(ctx).values():
        env = pool.gateway_block.get("apiKeyEnv")
        if env and getattr(pool, "api_key", None) is not None:
            out[env] = pool.api_key
    return out


def gateway_config(ctx: BuildContext, s: GatewaySettings) -> dict[str, Any]:
    """The gateway config (serving/gateway schema) for this stack; values may be Outputs."""
    upstreams: dict[str, Any] = {}
    routes: dict[str, Any] = {}
    cached = ctx.cache is not None
    cache = {"exact": {"enabled": s.exact_cache and cached},
             "semantic": {"enabled": s.semantic_cache and cached, "threshold": s.semantic_threshold}}

    def route(upstream: str) -> dict[str, Any]:
        return {"targets": [{"upstream": upstream}], "maxTokens": s.max_tokens,
                "maxPromptTokens": s.max_prompt_tokens, "cache": copy.deepcopy(cache)}

    for name, svc in sorted({**(ctx.vllm_services or {}), **pool_services(ctx)}.items()):
        upstreams[f"vllm-{name}"] = {"kind": "openai", "baseUrl": _v1(svc.service_url),
                                     "model": svc.served_model_name}
        if getattr(svc, "api_key", None) is not None:
            upstreams[f"vllm-{name}"]["apiKeyEnv"] = upstream_key_env(name)
        routes[name] = route(f"vllm-{name}")
        if s.prefix_affinity and getattr(svc, "replicas_dns", None):
            upstreams[f"vllm-{name}"]["replicas"] = {"dns": svc.replicas_dns, "port": 8000}
            routes[name]["routing"] = {"strategy": "prefix-affinity"}
    for name, ep in sorted((ctx.sagemaker or {}).items()):
        if is_async(ep):
            continue  # batch only: a backend of batch.backends, never a real-time route
        upstreams[f"sagemaker-{name}"] = {"kind": "sagemaker", "endpointName": ep.endpoint_name,
                                          "region": ctx.region}
        routes[f"sagemaker-{name}"] = route(f"sagemaker-{name}")
    if ctx.bedrock is not None:
        upstreams["bedrock"] = {"kind": "bedrock", "modelId": ctx.bedrock.model_arn, "region": ctx.region}
        if s.bedrock_fallback:
            for r in routes.values():
                r["fallbacks"] = ["bedrock"]
        routes["bedrock"] = route("bedrock")
    cfg: dict[str, Any] = {"upstreams": upstreams, "routes": routes,
                           "limiter": {"enabled": cached, "failMode": s.limiter_fail_mode},
                           "semanticCache": {"embedder": {"kind": s.embedder, "region": ctx.region}}}
    pools = {name: dict(pool.gateway_block) for name, pool in dynamic_pools(ctx).items()}
    if pools:
        cfg["pools"] = pools
    if cached:
        port = pulumi.Output.from_input(ctx.cache.port).apply(str)
        cfg["redis"] = {"url": pulumi.Output.concat("rediss://", ctx.cache.primary_endpoint, ":", port, "/0")}
    return cfg


BATCH_WIRING = "gateway-batch-wiring"
"""``ctx.extras`` key of the resolvers :func:`resolve_batch_wiring` calls once the batch section has built."""
BACKEND_WIRING = "gateway-batch-backend-wiring"
"""``ctx.extras`` key of the deferred Outputs of the managed batch backends (role ARN, dispatch queue, policies)."""
_BEDROCK_KEYS = ("bedrock_role_arn", "bedrock_submit_policy_arn")
_DISPATCH_KEYS = ("dispatch_queue_url", "dispatch_submit_policy_arn")


def is_async(endpoint: Any) -> bool:
    """Whether a SageMaker endpoint of the context is asynchronous (batch only)."""
    return getattr(endpoint, "mode", "real-time") == "async"


def _bedrock_batch(cfg: Any) -> Any:
    """``batch.bedrock`` when Bedrock batch is on, else None."""
    b = getattr(cfg.batch, "bedrock", None)
    return b if cfg.batch.enabled and b is not None and b.enabled else None


def _endpoints(cfg: Any) -> dict[str, Any]:
    return dict(getattr(getattr(cfg, "sagemaker", None), "endpoints", None) or {})


def batch_wiring(ctx: BuildContext, cfg: Any = None) -> dict[str, Any]:
    """Deferred Outputs for the gateway's batch inputs; the batch section resolves them from its BatchInference
    (:func:`resolve_batch_wiring`), so the gateway needs no reordering and the graph has no cycle. With ``cfg``,
    also the managed backends' (kept in ``ctx.extras[BACKEND_WIRING]`` for :func:`batch_backends`)."""
    outputs, resolvers = {}, {}
    keys = ["batch_bucket", "batch_queue_url", "batch_queue_arn", "batch_dlq_arn", "batch_kms_key_arn"]
    if cfg is not None and _bedrock_batch(cfg) is not None:
        keys += _BEDROCK_KEYS
    if cfg is not None and any(getattr(e, "mode", "real-time") == "async" for e in _endpoints(cfg).values()):
        keys += _DISPATCH_KEYS
    for key in keys:
        outputs[key], resolvers[key] = ctx.deferred()
    ctx.extras[BATCH_WIRING] = resolvers
    ctx.extras[BACKEND_WIRING] = {k: outputs.pop(k) for k in (*_BEDROCK_KEYS, *_DISPATCH_KEYS) if k in outputs}
    return {**outputs, "batch_region": ctx.region}


def resolve_batch_wiring(ctx: BuildContext, batch: Any, bedrock: Any = None) -> None:
    """Hand the BatchInference's bucket, queues and key (and the Bedrock batch role's ARN and policy) to the
    gateway's deferred batch inputs (no-op without them)."""
    resolvers = ctx.extras.pop(BATCH_WIRING, None)
    if resolvers is None:
        return
    values = {"batch_bucket": batch.bucket, "batch_queue_url": batch.queue_url, "batch_queue_arn": batch.queue.arn,
              "batch_dlq_arn": batch.dead_letter_queue.arn, "batch_kms_key_arn": batch.kms_key_arn,
              "dispatch_queue_url": getattr(batch, "dispatch_queue_url", None),
              "dispatch_submit_policy_arn": getattr(batch, "dispatch_submit_policy_arn", None),
              "bedrock_role_arn": getattr(bedrock, "role_arn", None),
              "bedrock_submit_policy_arn": getattr(bedrock, "submit_policy_arn", None)}
    for key, resolve in resolvers.items():
        resolve(pulumi.Output.from_input(values[key]))


def batch_backends(ctx: BuildContext, cfg: Any) -> dict[str, Any]:
    """The gateway config's ``batch.backends``: Bedrock batch under ``batch.bedrock.name`` and every async SageMaker
    endpoint under its name (values may be deferred Outputs)."""
    wiring = ctx.extras.get(BACKEND_WIRING, {})
    out: dict[str, Any] = {}
    b = _bedrock_batch(cfg)
    if b is not None:
        out[b.name] = {"kind": "bedrock", "modelId": b.model_id, "roleArn": wiring["bedrock_role_arn"],
                       "region": ctx.region}
    for name, ep in sorted((ctx.sagemaker or {}).items()):
        if cfg.batch.enabled and is_async(ep):
            out[name] = {"kind": "sagemaker-async", "endpointName": ep.endpoint_name, "region": ctx.region,
                         "queueUrl": wiring["dispatch_queue_url"]}
    return out


def batch_backend_policies(ctx: BuildContext) -> dict[str, Any]:
    """Managed policies the gateway's IRSA role gets for the managed backends, keyed by what they allow."""
    wiring = ctx.extras.get(BACKEND_WIRING, {})
    return {key: wiring[arn] for key, arn in (("batch-bedrock", "bedrock_submit_policy_arn"),
                                              ("batch-dispatch", "dispatch_submit_policy_arn")) if arn in wiring}


def problems(cfg) -> list[Problem]:
    """Rules over the settings, checked with the other sections' before anything is built."""
    s = cfg.gateway
    if not s.enabled:
        return []
    out: list[Problem] = []
    serving, managed = cfg.serving, (cfg.sagemaker, cfg.bedrock)
    real_time = [n for n, e in managed[0].endpoints.items() if getattr(e, "mode", "real-time") != "async"]
    if not ((serving.enabled and (serving.models or serving.pools)) or real_time or managed[1].enabled):
        out.append(Problem("gateway.enabled", True, "needs something to route to: a vLLM service (serving.models), "
                           "a real-time SageMaker endpoint (sagemaker.endpoints) or a Bedrock model (bedrock.enabled)",
                           ("serving", "sagemaker", "bedrock")))
    if not cfg.cache.enabled:
        for t, spec in s.tenants.items():
            if spec.requests_per_minute or spec.tokens_per_minute or spec.batch_tokens_per_day:
                out.append(Problem(f"gateway.tenants.{t}", spec.model_dump(by_alias=True, exclude_none=True),
                                   "request/token budgets need the shared cache (cache.enabled) to be enforced "
                                   "across replicas; enable the cache or drop the budgets", ("cache.enabled",)))
        if s.semantic_cache:
            out.append(Problem("gateway.semanticCache", True, "needs the cache (cache.enabled)", ("cache.enabled",)))
    if not cfg.batch.enabled:
        for t, spec in s.tenants.items():
            if spec.batch_tokens_per_day is not None:
                out.append(Problem(f"gateway.tenants.{t}.batchTokensPerDay", spec.batch_tokens_per_day,
                                   "unset without batch (batch.enabled): there is no Batch API to budget",
                                   ("batch.enabled",)))
    try:
        # with batch, placeholders for what the batch section and the cluster supply at build time
        placeholders = {k: "resolved-at-deploy" for k in ("batch_bucket", "batch_queue_url", "batch_queue_arn",
                                                          "batch_dlq_arn", "batch_kms_key_arn", "oidc_provider_arn",
                                                          "oidc_issuer")} if cfg.batch.enabled else {}
        args_from(s, GatewayArgs, config={}, **placeholders)
    except ArgsError as err:
        out.extend(translate(err, "gateway"))
    return out


def _check_schema(cfg: dict[str, Any], tenants: list[str]) -> list[Problem]:
    """Validate the rendered config with the gateway's own loader (Outputs replaced by placeholders)."""
    from serving.gateway.config import parse_config
    from serving.gateway.errors import ConfigError

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, pulumi.Output):
            return "resolved-at-deploy"
        return v

    doc = plain(cfg)
    if isinstance(doc.get("redis", {}).get("url"), str) and doc["redis"]["url"] == "resolved-at-deploy":
        doc["redis"]["url"] = "rediss://resolved-at-deploy:6379/0"
    if "batch" in doc:  # as the component renders it: the batch block's bucket and queue, real-looking wiring
        doc["batch"].update(enabled=True, bucket="resolved-at-deploy",
                            queueUrl="https://sqs.us-east-1.amazonaws.com/123456789012/resolved-at-deploy")
        for backend in doc["batch"].get("backends", {}).values():
            if backend.get("roleArn") == "resolved-at-deploy":
                backend["roleArn"] = "arn:aws:iam::123456789012:role/resolved-at-deploy"
            if backend.get("queueUrl") == "resolved-at-deploy":
                backend["queueUrl"] = "https://sqs.us-east-1.amazonaws.com/123456789012/resolved-at-deploy"
    doc["tenants"] = {"keys": {t: ["0" * 64] for t in tenants}}
    try:
        parse_config(doc)
    except ConfigError as exc:
        return [Problem(f"gateway.config.{p.path}", p.value, p.expected) for p in exc.problems]
    return []


def build(ctx: BuildContext, cfg) -> None:
    """Create the Gateway component from the validated settings and the earlier sections' outputs."""
    s: GatewaySettings = cfg.gateway
    if not s.enabled:
        return None
    gcfg = gateway_config(ctx, s)
    batch_inputs = batch_wiring(ctx, cfg) if cfg.batch.enabled else {}
    backends = batch_backends(ctx, cfg)
    if backends:
        gcfg["batch"] = {"backends": backends}
    rag_blocks, rag_policies = rag_gateway_blocks(ctx, cfg)  # embeddings and rag: deferred, the rag section resolves
    gcfg.update(rag_blocks)
    problems = _check_schema(gcfg, list(s.tenants))  # the settings' own rules ran in problems(cfg), before any build
    if problems:
        raise ArgsError(problems, title="invalid gateway settings")
    policies: dict[str, Any] = {}  # keyed by the route: attachment names stay stable as routes come and go
    if ctx.bedrock is not None:
        policies["bedrock"] = ctx.bedrock.invoke_policy_arn
    for ep_name, ep in sorted((ctx.sagemaker or {}).items()):
        if not is_async(ep):  # the dispatcher workers call the async endpoints, not the gateway
            policies[f"sagemaker-{ep_name}"] = ep.invoke_policy_arn
    policies.update(batch_backend_policies(ctx))
    policies.update(rag_policies)
    target_group = None
    if ctx.alb is not None:
        target_group = (getattr(ctx.alb, "target_groups", None) or {}).get("gateway")
    cluster = ctx.cluster
    embed_arn = (f"arn:aws:bedrock:{ctx.region}::foundation-model/{TITAN_EMBED_V2}"
                 if s.embedder == "bedrock" and s.semantic_cache else None)
    args = args_from(
        s, GatewayArgs, config=gcfg,
        redis_auth_token=getattr(ctx.cache, "auth_token", None) if ctx.cache is not None else None,
        upstream_api_keys={**upstream_api_keys(ctx), **rag_gateway_secret_env(ctx)},
        service_monitor=ctx.monitoring is not None,
        monitoring_depends_on=[ctx.monitoring.release] if ctx.monitoring is not None else [],
        target_group_arn=target_group.arn if target_group is not None else None,
        invoke_policy_arns=policies, bedrock_embedding_model_arn=embed_arn,
        oidc_provider_arn=getattr(cluster, "oidc_provider_arn", None),
        oidc_issuer=getattr(cluster, "oidc_issuer", None),
        tags=ctx.tags, depends_on=[ctx.lb_controller] if ctx.lb_controller is not None else [],
        **batch_inputs,
    )
    opts = pulumi.ResourceOptions(provider=ctx.k8s_provider) if ctx.k8s_provider is not None else None
    gw = Gateway("gateway", args, opts=opts)
    ctx.gateway = gw
    ctx.export("gatewayService", f"{gw.namespace}/{gw.service_name}:8080")
    ctx.export("gatewayApiKeys", pulumi.Output.secret(pulumi.Output.all(**gw.api_keys)))
    if gw.repository_url is not None:
        ctx.export("gatewayImageRepository", gw.repository_url)
    return None
