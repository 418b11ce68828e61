"""Stack section: rag. The RAG data plane: the vector store (Aurora PostgreSQL Serverless v2 with pgvector, or Qdrant
on the cluster) sized from the expected workload, the embedding service (text-embeddings-inference) and the ingestion
queue with its workers.

Config key ``rag`` (camelCase in YAML): ``enabled``; ``backend`` (``aurora-pgvector`` or ``qdrant``); ``workload``
(``vectors``, ``dimensions``, ``qps``, ``qpsPerInstance``, ``metadataBytes``, ``hnswM``, ``hnswEfConstruction``,
``efSearch``); ``aurora`` (``minAcu``, ``maxAcu``, ``secondsUntilAutoPause``, ``readers``, ``engineVersion``,
``backupRetentionDays``, ``deletionProtection``, ``finalSnapshot``, ``performanceInsights``, ...); ``qdrant``
(``replicas``, ``replicationFactor``, ``shardNumber``, ``vectorsPerShard``, ``memoryGib``, ``storageGib``,
``chartVersion``, ...). Every key is a :class:`~components.rag.vector_store.VectorStoreArgs` field; the defaults are
the component's. The network (VPC, private subnets, node security group) and the Kubernetes provider come from the
cluster.

``rag.embedding`` (an :class:`~components.rag.embedding_service.EmbeddingServiceArgs` without its wiring):
``enabled``, ``nodeGroup`` (a ``nodeGroups`` name whose GPU runs TEI; unset: the CPU image on the system nodes),
``weightsPrefix`` (the model's prefix in ``serving.modelsBucket``; unset: TEI downloads it from the Hugging Face Hub),
``modelId``, ``gatewayModel``, the batching flags, ``autoscaling`` (``minReplicas`` 0 scales to zero: the gateway's
demand and the ingestion queue wake it). ``--max-concurrent-requests`` follows ``targets.concurrentStreams``.
``rag.ingestion`` (an :class:`~components.rag.ingestion.IngestionArgs` without its wiring): ``enabled``, replicas,
``documentsPerReplica``, visibility, ``maxReceives``, chunking, ``alarmActions``; the workers run the gateway image
against the embedding service and the store: Aurora (its writer endpoint and RDS-managed secret) or Qdrant (its
Service's REST URL, the API key from VectorStore's Secret through a secretKeyRef: Qdrant and the workers share
``rag.embedding.namespace``, and the gateway's namespace must be one of ``rag.qdrant.clientNamespaces``). A PodMonitor
scrapes the workers' metrics port.

With the gateway on, its config gains ``embeddings`` (the TEI model under ``gatewayModel``) and ``rag`` (the store,
the documents bucket and queue, chunking): the gateway builds first, so those values are deferred Outputs this section
resolves (:func:`gateway_blocks`), as the batch section does for the Batch API. On Qdrant the gateway's pods get the
API key as ``RAG_QDRANT_API_KEY`` from the gateway's upstream-keys Secret (:func:`gateway_secret_env`).

A workload that cannot fit the configured capacity (100M 1,024-d vectors on a 4 ACU prototype) is a config error that
names the limit and by how much it is exceeded. The plan prints the sizing (output ``vectorStoreSizing``).

Outputs: ``vectorStoreEndpoint``, ``vectorStoreReaderEndpoint``, ``vectorStoreSizing``,
``vectorStoreCollectionSettings`` (what the runtime creates collections with: the HNSW parameters, or Qdrant's
``shard_number`` and ``replication_factor``) and, for Aurora, ``vectorStoreSecretArn`` (the RDS-managed master secret);
``embeddingService`` (URL, model, image, flags, replicas) and ``ragIngestion`` (queue URL, bucket). See
docs/reference/vector-store.md, embedding-service.md and ingestion.md.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components.errors import ArgsError
from components.rag.embedding_service import EmbeddingService, EmbeddingServiceArgs
from components.rag.ingestion import Ingestion, IngestionArgs
from components.rag.vector_store import VectorStore, VectorStoreArgs, qdrant_url
from components.serving.vllm.args import placement_from_node_group
from problems import Problem
from infra.sections.base import BuildContext, args_from, derive_settings, translate

EMBEDDING_NAME = "embeddings"
"""The embedding service's Kubernetes name (Service ``embeddings``)."""
INGESTION_NAME = "rag-ingest"

EmbeddingSettings = derive_settings(
    EmbeddingServiceArgs, name="EmbeddingSettings", module=__name__,
    exclude=("placement", "weights_uri", "weights_kms_key_arn", "concurrency_target", "keda", "client_namespaces",
             "create_namespace", "wake_queue_auth", "after", "tags"),
    doc="The embedding service: text-embeddings-inference on a GPU node group or the CPU image.",
    extra={
        "enabled": (bool, Field(default=False, description="Run the embedding service. Default: off (tier presets "
                                                           "turn it on).")),
        "node_group": (str | None, Field(default=None, description=(
            "A ``nodeGroups`` name whose GPU runs TEI (its architecture picks the image). Default: none, the CPU "
            "image on the system nodes."))),
        "weights_prefix": (str | None, Field(default=None, pattern=r"^[A-Za-z0-9._\-/]+$", description=(
            "The model's prefix in ``serving.modelsBucket`` (upload it with ``aws s3 sync``). Default: none, TEI "
            "downloads ``modelId`` from the Hugging Face Hub."))),
    })

IngestionSettings = derive_settings(
    IngestionArgs, name="IngestionSettings", module=__name__,
    exclude=("embed_model", "store", "db_port", "db_name", "db_user", "qdrant_api_key_secret",
             "namespace", "create_namespace", "pod_monitor", "keda_identity", "keda_namespace", "keda_service_account",
             "node_selector", "embed_batch", "after", "tags"),
    doc="The ingestion queue (SQS + DLQ, KMS) and its workers, scaled by KEDA on the queue's depth.",
    extra={"enabled": (bool, Field(default=False, description="Build the ingestion queue and workers (needs the "
                                                              "vector store and the embedding service). Default: off."))})

RagSettings = derive_settings(
    VectorStoreArgs, name="RagSettings", module=__name__, exclude=("tags",),
    doc="The RAG data plane: the vector store (Aurora PostgreSQL Serverless v2 with pgvector, or Qdrant on the "
        "cluster), the embedding service and the ingestion workers.",
    extra={"enabled": (bool, Field(default=False, description="Build the vector store. Default: off (tier presets "
                                                              "turn it on).")),
           "embedding": (EmbeddingSettings, Field(default_factory=EmbeddingSettings, description=(
               "The embedding service (TEI). Default: off."))),
           "ingestion": (IngestionSettings, Field(default_factory=IngestionSettings, description=(
               "The ingestion queue and workers. Default: off.")))})

KEYS = {"rag": RagSettings}
"""Top-level `genai-scale:<key>` config keys this section owns."""

_PLACEHOLDER = {"vpc_id": "vpc", "subnet_ids": ["subnet"], "node_security_group_id": "sg"}
_EMBEDDING_PLACEHOLDER = {"prometheus_url": "http://prometheus:9090", "oidc_provider_arn": "arn", "oidc_issuer": "i"}
_INGESTION_PLACEHOLDER = {"worker_image": "image", "embed_url": "http://embeddings:8080/v1", "embed_model": "m",
                          "cluster_name": "cluster"}
_STORE_PLACEHOLDER = {"secret_arn": "arn", "kms_key_arn": None, "api_key_secret_name": "vector-store-api-key"}
GATEWAY_WIRING = "gateway-rag-wiring"
"""``ctx.extras`` key of the resolvers :func:`resolve_gateway_wiring` calls once this section has built."""
_WIRING_KEYS = ("bucket", "queue_url", "submit_policy_arn", "db_host", "db_reader_host", "db_secret_arn",
                "qdrant_api_key")
STORE_NAME = "vector-store"
"""The VectorStore's name (Qdrant's release and Service are named after it)."""
QDRANT_API_KEY_ENV = "RAG_QDRANT_API_KEY"
"""The env var holding the Qdrant API key in the gateway's pods (the gateway's ``rag.store.apiKeyEnv``) and the
workers' (from the Qdrant API key's Secret, never a literal)."""
GATEWAY_SECRET_ENV = "gateway-rag-secret-env"
"""``ctx.extras`` key of the env var -> secret value the gateway's pods need for the rag block
(:func:`gateway_secret_env`)."""


def problems(cfg) -> list[Problem]:
    """The components' rules (engine version, ACU range, the sizing; TEI's architecture and flags; the ingestion
    queue) and what they need from other sections."""
    r = cfg.rag
    out: list[Problem] = []
    if r.enabled:
        try:
            args_from(r, VectorStoreArgs, **_PLACEHOLDER)
        except ArgsError as err:
            out += translate(err, "rag")
    if r.embedding.enabled:
        out += _embedding_problems(cfg)
    if r.ingestion.enabled:
        if not r.embedding.enabled:
            out.append(Problem("rag.ingestion.enabled", True, "needs rag.embedding.enabled (the workers embed "
                               "through the embedding service)", ("rag.embedding.enabled",)))
        if not r.enabled:
            out.append(Problem("rag.ingestion.enabled", True, "needs rag.enabled (the workers upsert into the vector "
                               "store)", ("rag.enabled",)))
        elif r.backend == "qdrant":
            out += _qdrant_ingestion_problems(cfg)
        if not cfg.gateway.enabled:
            out.append(Problem("rag.ingestion.enabled", True, "needs gateway.enabled (the workers run the gateway "
                               "image, and the gateway queues the documents)", ("gateway.enabled",)))
        try:
            args_from(r.ingestion, IngestionArgs, **_INGESTION_PLACEHOLDER,
                      **_store_wiring(r, "host", **_STORE_PLACEHOLDER))
        except ArgsError as err:
            out += translate(err, "rag.ingestion")
    return out


def _qdrant_ingestion_problems(cfg) -> list[Problem]:
    """The workers run in ``rag.embedding.namespace`` and read the Qdrant API key from the Secret VectorStore keeps
    beside Qdrant (a secretKeyRef reaches its own namespace only); the gateway's pods must pass Qdrant's
    NetworkPolicy."""
    r, out = cfg.rag, []
    if r.qdrant.namespace != r.embedding.namespace:
        out.append(Problem("rag.qdrant.namespace", r.qdrant.namespace, f"rag.embedding.namespace "
                           f"({r.embedding.namespace}) with ingestion on the qdrant backend (the workers run there and "
                           "read the Qdrant API key Secret of that namespace)", ("rag.embedding.namespace",)))
    gateway_ns = cfg.gateway.namespace
    if gateway_ns not in {r.qdrant.namespace, *r.qdrant.client_namespaces}:
        out.append(Problem("rag.qdrant.clientNamespaces", list(r.qdrant.client_namespaces),
                           f"to include the gateway's namespace ({gateway_ns}): with ingestion on, the gateway "
                           "creates and queries collections in Qdrant", ("gateway.namespace",)))
    return out


def _store_wiring(r, endpoint: Any, **store: Any) -> dict[str, Any]:
    """The IngestionArgs that point the workers at the vector store: the Aurora writer and its RDS-managed secret, or
    the Qdrant Service's REST URL and the Secret holding its API key."""
    if r.backend == "qdrant":
        return {"store": "qdrant", "qdrant_url": qdrant_url(STORE_NAME, r.qdrant.namespace),
                "qdrant_api_key_secret": store["api_key_secret_name"]}
    return {"store": "pgvector", "db_host": endpoint, "db_name": r.aurora.database_name,
            "db_user": r.aurora.master_username, "db_secret_arn": store["secret_arn"],
            "db_secret_kms_key_arn": store["kms_key_arn"]}


def _embedding_problems(cfg) -> list[Problem]:
    e, out = cfg.rag.embedding, []
    node_groups = getattr(cfg, "node_groups", {}) or {}
    placement = None
    if e.node_group is not None:
        if e.node_group not in node_groups:
            return [*out, Problem("rag.embedding.nodeGroup", e.node_group, "a node group of nodeGroups "
                                  f"({', '.join(sorted(node_groups)) or 'none defined'})",
                                  (f"nodeGroups.{e.node_group}",))]
        from infra.sections.serving import placement_from_settings
        placement = placement_from_settings(e.node_group, node_groups[e.node_group])
        if placement is None:
            return out  # the foundation section reports the node group's own problems
    if not (cfg.serving.keda.enabled and cfg.monitoring.enabled):
        out.append(Problem("rag.embedding.enabled", True, "needs serving.keda.enabled and monitoring.enabled (KEDA "
                           "scales the service on a Prometheus metric)", ("serving.keda.enabled", "monitoring.enabled")))
    try:
        _embedding_args(cfg, placement=placement, weights_uri=None, **_EMBEDDING_PLACEHOLDER)
    except ArgsError as err:
        out += translate(err, "rag.embedding", {"placement": "node_group"})
    return out


def _embedding_args(cfg, **wiring: Any) -> EmbeddingServiceArgs:
    targets = getattr(cfg, "targets", None)
    defaults = {"concurrency_target": getattr(targets, "concurrent_streams", None),
                "client_namespaces": sorted({cfg.gateway.namespace, cfg.rag.embedding.namespace}),
                "create_namespace": False, "keda": True}
    return args_from(cfg.rag.embedding, EmbeddingServiceArgs, **{**defaults, **wiring})


# --- the gateway's embeddings and rag blocks (deferred: the gateway builds first) ---

def gateway_blocks(ctx: BuildContext, cfg) -> tuple[dict[str, Any], dict[str, Any]]:
    """The gateway config's ``embeddings`` and ``rag`` blocks (values of this section are deferred Outputs), and the
    managed policies the gateway's role needs for them; ``({}, {})`` while the embedding service is off."""
    r = getattr(cfg, "rag", None)  # absent in a program that builds the gateway section alone
    if r is None or not r.embedding.enabled:
        return {}, {}
    svc = _embedding_args(cfg, **_EMBEDDING_PLACEHOLDER, placement=None)
    model = gateway_model(r.embedding)
    blocks: dict[str, Any] = {"embeddings": {
        "enabled": True,
        "models": {model: {"kind": "openai", "baseUrl": service_url(r.embedding.namespace),
                           "model": svc.served_model_name or svc.model_id}},
        "cache": {"enabled": ctx.cache is not None},
        "batch": {"maxBatch": r.embedding.max_client_batch_size}}}
    if not r.ingestion.enabled:
        return blocks, {}
    outputs, resolvers = {}, {}
    for key in _WIRING_KEYS:
        outputs[key], resolvers[key] = ctx.deferred()
    ctx.extras[GATEWAY_WIRING] = resolvers
    if r.backend == "qdrant":
        # the URL is known from config (a plain value the gateway's schema check reads); the key comes later
        store = {"kind": "qdrant", "url": qdrant_url(STORE_NAME, r.qdrant.namespace), "apiKeyEnv": QDRANT_API_KEY_ENV}
        ctx.extras[GATEWAY_SECRET_ENV] = {QDRANT_API_KEY_ENV: outputs["qdrant_api_key"]}
    else:
        store = {"kind": "pgvector", "host": outputs["db_host"], "port": 5432, "dbname": r.aurora.database_name,
                 "secretArn": outputs["db_secret_arn"], "region": ctx.region,
                 "readerHost": outputs["db_reader_host"]}  # reads (queries, RAG retrieval) on the readers
    blocks["rag"] = {
        "enabled": True,
        "store": store,
        "embeddingModel": model, "bucket": outputs["bucket"], "queueUrl": outputs["queue_url"], "region": ctx.region,
        "chunk": {"maxTokens": r.ingestion.chunk_max_tokens, "overlapTokens": r.ingestion.chunk_overlap_tokens}}
    return blocks, {"rag-ingestion": outputs["submit_policy_arn"]}


def gateway_secret_env(ctx: BuildContext) -> dict[str, Any]:
    """Env var -> secret value the gateway's pods need for its ``rag`` block (the Qdrant API key, deferred: the store
    builds after the gateway); empty for Aurora (the gateway reads the RDS secret itself). Call after
    :func:`gateway_blocks`; the gateway keeps them in its upstream-keys Secret, as it does the vLLM API keys."""
    return dict(ctx.extras.get(GATEWAY_SECRET_ENV) or {})


def resolve_gateway_wiring(ctx: BuildContext, ingestion: Ingestion, store: VectorStore) -> None:
    resolvers = ctx.extras.pop(GATEWAY_WIRING, None)
    if resolvers is None:
        return
    values = {"bucket": ingestion.bucket, "queue_url": ingestion.queue_url,
              "submit_policy_arn": ingestion.submit_policy_arn, "db_host": store.endpoint,
              "db_reader_host": store.reader_endpoint,
              "db_secret_arn": store.secret_arn, "qdrant_api_key": store.api_key}
    for key, resolve in resolvers.items():
        resolve(pulumi.Output.from_input(values[key]))


def gateway_model(e) -> str:
    """The public name the gateway serves the embedding model under: ``gatewayModel``, or the model id's last part."""
    return e.gateway_model or e.model_id.rsplit("/", 1)[-1].lower()


def service_url(namespace: str) -> str:
    return f"http://{EMBEDDING_NAME}.{namespace}.svc:8080/v1"


# --- build ---

def build(ctx: BuildContext, cfg) -> None:
    """The VectorStore in the cluster's VPC (Aurora) or on the cluster (Qdrant); the embedding service; the ingestion
    queue and workers (their values handed to the gateway's deferred config)."""
    try:
        _build(ctx, cfg)
    finally:
        # a build error must surface, not leave the gateway's config waiting for values that never come
        for resolve in (ctx.extras.pop(GATEWAY_WIRING, None) or {}).values():
            resolve(pulumi.Output.from_input(None))


def _build(ctx: BuildContext, cfg) -> None:
    r = cfg.rag
    k8s_opts = pulumi.ResourceOptions(provider=ctx.k8s_provider) if ctx.k8s_provider else None
    store = None
    if r.enabled:
        store = VectorStore(STORE_NAME, args_from(r, VectorStoreArgs, cluster=ctx.cluster, tags=ctx.tags),
                            opts=k8s_opts)
        ctx.extras["vector-store"] = store
        ctx.export("vectorStoreSizing", store.sizing)
        ctx.export("vectorStoreCollectionSettings", store.collection_settings)
        ctx.export("vectorStoreEndpoint", store.endpoint)
        ctx.export("vectorStoreReaderEndpoint", store.reader_endpoint)
        if store.secret_arn is not None:
            ctx.export("vectorStoreSecretArn", store.secret_arn)
    if not r.embedding.enabled:
        return
    e = r.embedding
    after: list[Any] = [x.release for x in (ctx.keda, ctx.monitoring) if x is not None]
    qdrant_ns = (store is not None and r.backend == "qdrant" and r.qdrant.create_namespace
                 and r.qdrant.namespace == e.namespace)
    if qdrant_ns:
        after.append(store)
    else:
        after.append(k8s.core.v1.Namespace("rag-ns", metadata={"name": e.namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}, opts=k8s_opts))
    ingestion = None
    if r.ingestion.enabled and store is not None:
        ingestion = _build_ingestion(ctx, cfg, store, after, k8s_opts)
    _build_embedding(ctx, cfg, ingestion, after, k8s_opts)
    if ingestion is not None:
        resolve_gateway_wiring(ctx, ingestion, store)


def _build_embedding(ctx: BuildContext, cfg, ingestion: Ingestion | None, after: list[Any], k8s_opts) -> None:
    from infra.sections.serving import bucket_name

    e = cfg.rag.embedding
    placement = None
    if e.node_group is not None:
        spec = ctx.node_group_specs.get(e.node_group)
        placement = placement_from_node_group(ctx.node_groups[e.node_group],
                                              time_slicing_replicas=getattr(spec, "time_slicing_replicas", None))
    weights = f"s3://{bucket_name(cfg, ctx.stack)}/{e.weights_prefix.strip('/')}/" if e.weights_prefix else None
    wake: dict[str, Any] = {}
    if ingestion is not None:
        wake = {"wake_queue_url": ingestion.queue_url, "wake_queue_region": ctx.region,
                "wake_queue_auth": INGESTION_NAME}
    cluster = ctx.cluster
    args = _embedding_args(
        cfg, placement=placement, weights_uri=weights, prometheus_url=ctx.monitoring.prometheus_url,
        oidc_provider_arn=getattr(cluster, "oidc_provider_arn", None), oidc_issuer=getattr(cluster, "oidc_issuer", None),
        after=after, tags=ctx.tags, gateway_model=gateway_model(e), **wake)
    svc = EmbeddingService(EMBEDDING_NAME, args, opts=k8s_opts)
    ctx.extras["embedding-service"] = svc
    ctx.export("embeddingService", {"url": svc.service_url, "model": gateway_model(e), "image": svc.image,
                                    "nodeGroup": e.node_group or "system (CPU)", "flags": svc.flags,
                                    "minReplicas": e.autoscaling.min_replicas,
                                    "maxReplicas": e.autoscaling.max_replicas})


def _build_ingestion(ctx: BuildContext, cfg, store: VectorStore, after: list[Any], k8s_opts) -> Ingestion:
    r = cfg.rag
    batch = ctx.extras.get("batch")
    scaler_role = getattr(batch, "scaler_role", None)
    image = ctx.gateway.image
    wiring = _store_wiring(r, store.endpoint, secret_arn=store.secret_arn, kms_key_arn=store.kms_key_arn,
                           api_key_secret_name=store.api_key_secret_name)
    args = args_from(
        r.ingestion, IngestionArgs, worker_image=image, embed_url=service_url(r.embedding.namespace),
        embed_model=r.embedding.served_model_name or r.embedding.model_id,
        embed_batch=r.embedding.max_client_batch_size, **wiring, namespace=r.embedding.namespace,
        create_namespace=False, keda_identity=scaler_role is None, cluster=ctx.cluster, region=ctx.region,
        after=after, tags=ctx.tags)
    ing = Ingestion(INGESTION_NAME, args, opts=k8s_opts)
    if scaler_role is not None:
        # KEDA's operator has one Pod Identity association (the batch section's): its role also reads this queue
        aws.iam.RolePolicyAttachment(f"{INGESTION_NAME}-keda-scaler", role=scaler_role.name,
                                     policy_arn=ing.scaler_policy_arn)
    ctx.extras["rag-ingestion"] = ing
    ctx.export("ragIngestion", {"queueUrl": ing.queue_url, "bucket": ing.bucket})
    return ing
