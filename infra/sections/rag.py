"""Stack section: rag. The RAG data plane's vector store: Aurora PostgreSQL Serverless v2 with pgvector (default) or
Qdrant on the cluster, sized from the expected workload.

Config key ``rag`` (camelCase in YAML): ``enabled``; ``backend`` (``aurora-pgvector`` or ``qdrant``); ``workload``
(``vectors``, ``dimensions``, ``qps``, ``qpsPerInstance``, ``metadataBytes``, ``hnswM``, ``hnswEfConstruction``,
``efSearch``); ``aurora`` (``minAcu``, ``maxAcu``, ``secondsUntilAutoPause``, ``readers``, ``engineVersion``,
``backupRetentionDays``, ``deletionProtection``, ``finalSnapshot``, ``performanceInsights``, ...); ``qdrant``
(``replicas``, ``replicationFactor``, ``shardNumber``, ``vectorsPerShard``, ``memoryGib``, ``storageGib``,
``chartVersion``, ...). Every key is a :class:`~components.rag.vector_store.VectorStoreArgs` field; the defaults are
the component's. The network (VPC, private subnets, node security group) and the Kubernetes provider come from the
cluster.

A workload that cannot fit the configured capacity (100M 1,024-d vectors on a 4 ACU prototype) is a config error that
names the limit and by how much it is exceeded. The plan prints the sizing (output ``vectorStoreSizing``).

Outputs: ``vectorStoreEndpoint``, ``vectorStoreReaderEndpoint``, ``vectorStoreSizing``,
``vectorStoreCollectionSettings`` (what the runtime creates collections with: the HNSW parameters, or Qdrant's
``shard_number`` and ``replication_factor``) and, for Aurora, ``vectorStoreSecretArn`` (the RDS-managed master secret). See docs/reference/vector-store.md.
"""

from __future__ import annotations

import pulumi
from pydantic import Field

from components.errors import ArgsError
from components.rag.vector_store import VectorStore, VectorStoreArgs
from problems import Problem
from infra.sections.base import BuildContext, args_from, derive_settings, translate

RagSettings = derive_settings(
    VectorStoreArgs, name="RagSettings", module=__name__, exclude=("tags",),
    doc="The RAG vector store: Aurora PostgreSQL Serverless v2 with pgvector, or Qdrant on the cluster.",
    extra={"enabled": (bool, Field(default=False, description="Build the vector store. Default: off (tier presets "
                                                              "turn it on)."))})

KEYS = {"rag": RagSettings}
"""Top-level `genai-scale:<key>` config keys this section owns."""

_PLACEHOLDER = {"vpc_id": "vpc", "subnet_ids": ["subnet"], "node_security_group_id": "sg"}


def problems(cfg) -> list[Problem]:
    """The component's rules (engine version, ACU range, and the sizing against the configured capacity)."""
    if not cfg.rag.enabled:
        return []
    try:
        args_from(cfg.rag, VectorStoreArgs, **_PLACEHOLDER)
    except ArgsError as err:
        return translate(err, "rag")
    return []


def build(ctx: BuildContext, cfg) -> None:
    """One VectorStore in the cluster's VPC (Aurora) or on the cluster (Qdrant)."""
    if not cfg.rag.enabled:
        return
    k8s_opts = pulumi.ResourceOptions(provider=ctx.k8s_provider) if ctx.k8s_provider else None
    store = VectorStore("vector-store", args_from(cfg.rag, VectorStoreArgs, cluster=ctx.cluster, tags=ctx.tags),
                        opts=k8s_opts)
    ctx.extras["vector-store"] = store
    ctx.export("vectorStoreSizing", store.sizing)
    ctx.export("vectorStoreCollectionSettings", store.collection_settings)
    ctx.export("vectorStoreEndpoint", store.endpoint)
    ctx.export("vectorStoreReaderEndpoint", store.reader_endpoint)
    if store.secret_arn is not None:
        ctx.export("vectorStoreSecretArn", store.secret_arn)
