"""VectorStore: the RAG data plane's vector store, Aurora PostgreSQL Serverless v2 with pgvector (default) or Qdrant on
the cluster (opt-in for high QPS), sized from the expected workload.

Creates
  - ``backend="aurora-pgvector"``: an ``aws.kms.Key`` ``<name>-key`` (rotation on; unless ``kms_key_arn`` names one)
    encrypting the cluster volume, the master-user secret and Performance Insights; an ``aws.rds.SubnetGroup``
    ``<name>-subnets`` over the cluster's private subnets; an ``aws.ec2.SecurityGroup`` ``<name>-sg`` with one ingress
    rule, 5432 from the cluster's node security group (no egress rule: the database opens no connection); the
    ``aws.rds.Cluster`` ``<name>-aurora`` (engine ``aurora-postgresql``, Serverless v2 scaling ``aurora.min_acu`` -
    ``aurora.max_acu``, auto-pause after ``aurora.seconds_until_auto_pause`` when the minimum is 0, IAM database
    authentication, the master password generated and kept in Secrets Manager by RDS, CloudWatch export of the
    PostgreSQL log) with an ``aws.rds.ClusterParameterGroup`` ``<name>-params`` requiring TLS;
    ``aws.rds.ClusterInstance`` ``<name>-writer`` and ``<name>-reader-<n>`` (``db.serverless``, never
    publicly accessible).
  - ``backend="qdrant"``: a ``random.RandomPassword`` API key (unless ``api_key`` is given), the namespace (Pod
    Security ``restricted``), a Kubernetes Secret holding the key, the pinned ``qdrant`` chart release (cluster mode,
    ``qdrant.replicas`` pods spread over nodes, a gp3 volume each on the stack's encrypted class, ClusterIP Service
    only) and a NetworkPolicy (REST/gRPC from the client namespaces, p2p between Qdrant pods only).

Defaults: the Aurora backend, sized for 1M vectors of 1,024 dimensions; 0-4 ACU with auto-pause after 300 s (the
prototype shape: the paused writer costs storage only); no reader; 7 days of backups; Performance Insights kept 7 days;
no deletion protection and no final snapshot (tiers that keep data turn both on). Qdrant: 3 nodes, replication 2,
one shard per 10M vectors (the seed's layout), 8 GiB and 50 GiB of disk per node. The sizing (``sizing``) is checked at
construction: a workload that cannot fit (100M 1,024-d vectors on a 4 ACU prototype) is an error that names the limit
and by how much it is exceeded.

Security: private subnets only, a security group admitting PostgreSQL from the cluster's nodes only, storage and
secrets encrypted with the customer managed key, no literal password (RDS-managed master secret; applications connect
with IAM database authentication), TLS required (``rds.force_ssl`` 1 in the cluster parameter group). Qdrant: API
key from a Pulumi secret through a Kubernetes Secret, ClusterIP only, a NetworkPolicy, the chart's non-root
read-only pods.

Cost drivers: ACU-hours of the writer and readers (0 while paused), storage GB-months and I/O, backups beyond the
volume's size, Performance Insights beyond 7 days, the KMS key ($1/month). Qdrant: the nodes' memory (every vector
times the replication factor, in RAM) and gp3 volumes.
Quotas: DB clusters and instances per Region (RDS quotas), 15 readers per cluster, 256 ACU per instance; Qdrant: the
EBS volumes per node and the gp3 storage quota.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput, merge_tags
from components.foundation.eks_cluster import (GP3_STORAGE_CLASS, cluster_input_problems, from_cluster,
                                               with_cluster_provider)
from components.naming import current_stack
from components.rag import _sizing, _store
from problems import Problem

Backend = Literal["aurora-pgvector", "qdrant"]
Distance = Literal["Cosine", "Dot", "Euclid"]
NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CLUSTER_INPUTS = {"vpc_id": "vpc_id", "subnet_ids": "subnet_ids", "node_security_group_id": "node_security_group_id"}
"""Args that default from ``cluster`` -> the EksCluster attribute they come from (the Aurora backend needs them)."""
PI_RETENTION_DAYS = (7, *range(31, 732, 31))
"""Performance Insights retention: 7 days (free) or a multiple of 31 up to 731 (RDS API)."""


class _Settings(BaseModel):
    """Nested settings: validated as part of :class:`VectorStoreArgs`, whose errors carry their path."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, validate_default=True)


class VectorWorkload(_Settings):
    """What the store must hold and serve; the sizing derives memory, storage and capacity from it."""

    vectors: int = Field(default=1_000_000, ge=1, le=100_000_000_000)
    """Expected vectors (chunks) over every collection. Default: 1,000,000."""
    dimensions: int = Field(default=1024, ge=1, le=16_000)
    """Dimensions of each vector (the embedding model's output). Default: 1,024."""
    qps: float = Field(default=10.0, gt=0)
    """Expected peak queries per second. Default: 10."""
    qps_per_instance: float | None = Field(default=None, gt=0)
    """Queries per second one Aurora instance serves at the target latency, as measured (bench/rag). Set it and
    ``aurora.readers`` must cover ``qps``. Default: none (readers are not derived from QPS)."""
    metadata_bytes: int = Field(default=1024, ge=0, le=1_048_576)
    """Average bytes of a row besides the vector (chunk text, ids, metadata). Default: 1,024."""
    hnsw_m: int = Field(default=16, ge=2, le=100)
    """HNSW ``m`` (neighbours per layer; pgvector allows 2-100). Default: 16 (pgvector's)."""
    hnsw_ef_construction: int = Field(default=64, ge=4, le=1000)
    """HNSW ``ef_construction`` (build-time candidate list). Default: 64 (pgvector's)."""
    ef_search: int = Field(default=40, ge=1, le=1000)
    """``hnsw.ef_search`` the runtime queries with (recall versus latency). Default: 40 (pgvector's)."""


class AuroraVectorSettings(_Settings):
    """The Aurora PostgreSQL Serverless v2 cluster of the ``aurora-pgvector`` backend."""

    engine_version: str = versions.AURORA_POSTGRESQL_ENGINE.version
    """Aurora PostgreSQL ``major.minor``: must ship pgvector HNSW, and take a 0 ACU minimum when ``min_acu`` is 0.
    Default: the pinned version."""
    min_acu: float = Field(default=0.0, ge=0, le=256)
    """Least capacity per instance, in 0.5 ACU steps; 0 pauses an idle instance. Default: 0."""
    max_acu: float = Field(default=4.0, ge=1, le=256)
    """Most capacity per instance, in 0.5 ACU steps (1-256). Must hold the HNSW index in shared buffers (see the
    sizing). Default: 4."""
    seconds_until_auto_pause: int = Field(default=300, ge=300, le=86_400)
    """Idle seconds before an instance pauses (with ``min_acu`` 0; AWS allows 300-86,400). Default: 300."""
    readers: int = Field(default=0, ge=0, le=15)
    """Reader instances behind the reader endpoint (0-15). Default: 0."""
    database_name: str = Field(default="vectors", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
    """Database created with the cluster. Default: vectors."""
    master_username: str = Field(default="genai_admin", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
    """Master user (its password is generated and kept in Secrets Manager by RDS). Default: genai_admin."""
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    """Days of automated backups (1-35). Default: 7."""
    backup_window: str = Field(default="03:00-04:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    """Daily UTC backup window. Default: 03:00-04:00."""
    maintenance_window: str = Field(default="sun:05:00-sun:06:00", pattern=(
        r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$"))
    """Weekly UTC maintenance window. Default: Sunday 05:00-06:00."""
    deletion_protection: bool = False
    """Refuse to delete the cluster. Default: off (tiers that keep data turn it on)."""
    final_snapshot: bool = False
    """Take a final snapshot when the cluster is deleted. Default: off."""
    performance_insights: bool = True
    """Performance Insights on every instance (encrypted with the key). Default: on."""
    performance_insights_retention_days: int = 7
    """Days Performance Insights keeps data: 7 (free) or a multiple of 31 up to 731. Default: 7."""


class QdrantSettings(_Settings):
    """The Qdrant cluster of the ``qdrant`` backend."""

    chart_version: str = versions.QDRANT_CHART.version
    """Version of the qdrant chart. Default: the pinned version."""
    namespace: str = Field(default="genai-rag", pattern=NAMESPACE, max_length=63)
    """Namespace of the release. Default: genai-rag."""
    create_namespace: bool = True
    """Create ``namespace`` (Pod Security ``restricted``). Off: it exists. Default: on."""
    replicas: int = Field(default=3, ge=1, le=100)
    """Qdrant nodes (pods). Default: 3 (the seed's)."""
    replication_factor: int = Field(default=2, ge=1, le=100)
    """Copies of each shard; at most ``replicas``. Default: 2 (the seed's)."""
    shard_number: int | None = Field(default=None, ge=1, le=1000)
    """Shards per collection. Default: one per ``vectors_per_shard`` vectors."""
    vectors_per_shard: int = Field(default=_sizing.DEFAULT_VECTORS_PER_SHARD, ge=1)
    """Vectors per shard when ``shard_number`` is not set. Default: 10,000,000 (the seed's)."""
    distance: Distance = "Cosine"
    """Distance of the collections. Default: Cosine."""
    memory_gib: float = Field(default=8.0, gt=0, le=1024)
    """Memory request and limit of each node. Default: 8."""
    cpu: str = Field(default="2", pattern=r"^\d+(\.\d+)?m?$")
    """CPU request of each node. Default: 2."""
    storage_gib: int = Field(default=50, ge=1, le=16_384)
    """Persistent volume of each node. Default: 50."""
    storage_class: str = GP3_STORAGE_CLASS
    """StorageClass of the volumes. Default: the cluster's encrypted gp3 class."""
    client_namespaces: list[str] = Field(default_factory=lambda: ["genai-gateway"])
    """Namespaces whose pods may reach the REST and gRPC ports. Default: the gateway's."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus (may scrape the metrics on the REST port). Default: monitoring."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where the Qdrant pods run. Default: the system node group."""


class VectorStoreArgs(ArgsModel):
    """Arguments of :class:`VectorStore`."""

    backend: Backend = "aurora-pgvector"
    """``aurora-pgvector`` (Aurora PostgreSQL Serverless v2 with pgvector) or ``qdrant`` (on the cluster).
    Default: aurora-pgvector."""
    workload: VectorWorkload = Field(default_factory=VectorWorkload)
    """Expected vectors, dimensions and QPS, and the HNSW parameters. Default: 1M 1,024-d vectors at 10 QPS."""
    aurora: AuroraVectorSettings = Field(default_factory=AuroraVectorSettings)
    """The Aurora cluster (``aurora-pgvector``). Default: 0-4 ACU, auto-pause, no reader."""
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    """The Qdrant cluster (``qdrant``). Default: 3 nodes, replication 2."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` whose pods use the store: ``vpc_id``,
    ``subnet_ids`` and ``node_security_group_id`` default from it, and its Kubernetes provider is used when ``opts``
    names none. Default: none."""
    vpc_id: PulumiInput = None
    """VPC of the Aurora cluster. Default: ``cluster.vpc_id`` (required for aurora-pgvector without ``cluster``)."""
    subnet_ids: PulumiInput = None
    """Private subnets of the DB subnet group. Default: ``cluster.subnet_ids``."""
    node_security_group_id: PulumiInput = None
    """The only source admitted on 5432. Default: ``cluster.node_security_group_id``."""
    kms_key_arn: PulumiInput = None
    """KMS key of the cluster volume, the master secret and Performance Insights. Default: a key created here."""
    api_key: PulumiInput = None
    """Qdrant API key (a Pulumi secret). Default: a generated 48-character key."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for every AWS resource."""

    def sizing(self) -> _sizing.PgvectorSizing | _sizing.QdrantSizing:
        """Memory, storage and capacity of the workload on the chosen backend, with every limit it breaks."""
        w = self.workload
        if self.backend == "qdrant":
            q = self.qdrant
            return _sizing.size_qdrant(
                vectors=w.vectors, dimensions=w.dimensions, metadata_bytes=w.metadata_bytes, nodes=q.replicas,
                replication_factor=q.replication_factor, shard_number=q.shard_number,
                vectors_per_shard=q.vectors_per_shard, node_memory_gib=q.memory_gib, node_storage_gib=q.storage_gib)
        a = self.aurora
        return _sizing.size_pgvector(
            vectors=w.vectors, dimensions=w.dimensions, metadata_bytes=w.metadata_bytes, m=w.hnsw_m, qps=w.qps,
            qps_per_instance=w.qps_per_instance, min_acu=a.min_acu, max_acu=a.max_acu, readers=a.readers)

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.backend == "aurora-pgvector":
            out += cluster_input_problems(self, CLUSTER_INPUTS, required=CLUSTER_INPUTS)
            out += _aurora_problems(self.aurora)
        out += self.sizing().problems
        return out


def _aurora_problems(a: AuroraVectorSettings) -> list[Problem]:
    out: list[Problem] = []
    for field_name in ("min_acu", "max_acu"):
        value = getattr(a, field_name)
        if value * 2 != int(value * 2):
            out.append(Problem(f"aurora.{field_name}", value, "a multiple of 0.5 ACU"))
    if a.min_acu > a.max_acu:
        out.append(Problem("aurora.min_acu", a.min_acu, f"<= aurora.max_acu ({a.max_acu:g})", ("aurora.max_acu",)))
    if _store.parse_version(a.engine_version) is None:
        out.append(Problem("aurora.engine_version", a.engine_version, "an Aurora PostgreSQL major.minor such as 16.8"))
    else:
        if not _store.supports_hnsw(a.engine_version):
            out.append(Problem("aurora.engine_version", a.engine_version,
                               "a version with pgvector HNSW indexes (pgvector 0.5.0: 15.4, 14.9, 13.12 or later)"))
        if a.min_acu == 0 and not _store.supports_auto_pause(a.engine_version):
            out.append(Problem("aurora.min_acu", 0.0, "> 0 on this engine version, or an engine version with "
                               "auto-pause (16.3, 15.7, 14.12, 13.15 or later)", ("aurora.engine_version",)))
    if a.performance_insights and a.performance_insights_retention_days not in PI_RETENTION_DAYS:
        out.append(Problem("aurora.performance_insights_retention_days", a.performance_insights_retention_days,
                           "7, or a multiple of 31 up to 731"))
    return out


def qdrant_host(name: str, namespace: str) -> str:
    """Cluster DNS name of the Service of the Qdrant a VectorStore ``name`` runs in ``namespace`` (the chart names it
    after the release: ``name``, plus ``-qdrant`` unless the name holds ``qdrant``). Known before anything is built,
    so clients (the gateway's config, the ingestion workers) can be configured with it."""
    return f"{name}{'' if 'qdrant' in name else '-qdrant'}.{namespace}.svc.cluster.local"


def qdrant_url(name: str, namespace: str) -> str:
    """Qdrant's REST URL (in-cluster HTTP; its NetworkPolicy admits the client namespaces only)."""
    return f"http://{qdrant_host(name, namespace)}:{_store.QDRANT_HTTP_PORT}"


class VectorStore(pulumi.ComponentResource):
    """The RAG vector store. See the module docstring for what it creates, defaults, security and cost."""

    backend: str
    """``aurora-pgvector`` or ``qdrant``."""
    endpoint: pulumi.Output[str]
    """Writer endpoint (Aurora) or the Qdrant Service's cluster DNS name."""
    reader_endpoint: pulumi.Output[str]
    """Reader endpoint spreading reads over the readers (Aurora; the writer when there are none), or the Qdrant
    Service (every Qdrant node serves reads)."""
    port: int
    """5432 (Aurora) or 6333 (Qdrant REST)."""
    secret_arn: pulumi.Output[str] | None
    """Secrets Manager secret of the master user, managed by RDS (Aurora); None for Qdrant."""
    api_key_secret_name: str | None
    """Kubernetes Secret (key ``api-key``) holding the Qdrant API key; None for Aurora."""
    kms_key_arn: pulumi.Output[str] | None
    """The key of the Aurora volume and its master secret (readers of the secret need ``kms:Decrypt``); None for
    Qdrant."""
    security_group_id: pulumi.Output[str] | None
    """The Aurora cluster's security group (5432 from the nodes only); None for Qdrant."""
    sizing: dict[str, float | int]
    """The workload's sizing (memory, storage, ACU or shards) as the plan prints it."""
    cluster: aws.rds.Cluster | None
    """The Aurora DB cluster; None for Qdrant."""
    release: k8s.helm.v3.Release | None
    """The qdrant Helm release; None for Aurora."""
    values: dict | None
    """Rendered Helm values of the qdrant release; None for Aurora."""
    api_key: pulumi.Output[str] | None
    """The Qdrant API key (a Pulumi secret); None for Aurora."""
    collection_settings: dict
    """What the runtime creates each collection with: HNSW parameters (pgvector) or the Qdrant collection body with
    ``shard_number`` and ``replication_factor``."""

    def __init__(self, name: str, args: VectorStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}VectorStore", name, None, with_cluster_provider(opts, args.cluster))
        self.backend = args.backend
        self.sizing = args.sizing().summary()
        self.secret_arn = self.security_group_id = self.api_key = self.kms_key_arn = None
        self.api_key_secret_name = self.cluster = self.release = self.values = None
        tags = merge_tags(args.tags, {"genai-scale/component": "vector-store"})
        w = args.workload
        if args.backend == "aurora-pgvector":
            self.collection_settings = _store.pgvector_index_settings(
                hnsw_m=w.hnsw_m, hnsw_ef_construction=w.hnsw_ef_construction, ef_search=w.ef_search)
            self._aurora(name, args, tags)
        else:
            sizing = args.sizing()
            self.collection_settings = _store.collection_config(
                dimensions=w.dimensions, shard_number=sizing.shard_number,
                replication_factor=args.qdrant.replication_factor, distance=args.qdrant.distance, hnsw_m=w.hnsw_m,
                hnsw_ef_construction=w.hnsw_ef_construction)
            self._qdrant(name, args)
        self.register_outputs({"endpoint": self.endpoint, "reader_endpoint": self.reader_endpoint,
                               "sizing": self.sizing})

    def _aurora(self, name: str, args: VectorStoreArgs, tags: dict[str, str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        a = args.aurora
        if args.kms_key_arn is None:
            key_arn = aws.kms.Key(f"{name}-key", description=f"Vector store {name}: Aurora storage, secret, insights",
                                  enable_key_rotation=True, deletion_window_in_days=30, tags=tags, opts=child).arn
        else:
            key_arn = pulumi.Output.from_input(args.kms_key_arn)
        self.kms_key_arn = key_arn
        vpc_id, subnet_ids, node_sg = (from_cluster(getattr(args, f), args.cluster, attr)
                                       for f, attr in CLUSTER_INPUTS.items())
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=subnet_ids,
                                      description=f"Private subnets of vector store {name}", tags=tags, opts=child)
        sg = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id,
                                   description=f"Vector store {name}: PostgreSQL from the cluster nodes only",
                                   tags=tags, opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-from-nodes", security_group_id=sg.id, ip_protocol="tcp",
                                         from_port=_store.PORT, to_port=_store.PORT,
                                         referenced_security_group_id=node_sg,
                                         description="PostgreSQL from cluster nodes", tags=tags, opts=child)
        params = aws.rds.ClusterParameterGroup(
            f"{name}-params", family=_store.parameter_family(a.engine_version),
            description=f"Vector store {name}: TLS only", parameters=[{"name": "rds.force_ssl", "value": "1"}],
            tags=tags, opts=child)
        cluster = aws.rds.Cluster(
            f"{name}-aurora", db_cluster_parameter_group_name=params.name, engine="aurora-postgresql",
            engine_mode="provisioned", engine_version=a.engine_version,
            database_name=a.database_name, master_username=a.master_username, manage_master_user_password=True,
            master_user_secret_kms_key_id=key_arn, storage_encrypted=True, kms_key_id=key_arn,
            iam_database_authentication_enabled=True, db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[sg.id], port=_store.PORT,
            serverlessv2_scaling_configuration=_store.scaling_configuration(a.min_acu, a.max_acu,
                                                                            a.seconds_until_auto_pause),
            backup_retention_period=a.backup_retention_days, preferred_backup_window=a.backup_window,
            preferred_maintenance_window=a.maintenance_window, copy_tags_to_snapshot=True,
            deletion_protection=a.deletion_protection, skip_final_snapshot=not a.final_snapshot,
            final_snapshot_identifier=(_store.final_snapshot_id(current_stack(), name) if a.final_snapshot
                                       else None),
            enabled_cloudwatch_logs_exports=["postgresql"], apply_immediately=False, tags=tags, opts=child)
        instance = {"cluster_identifier": cluster.id, "instance_class": "db.serverless", "engine": cluster.engine,
                    "engine_version": cluster.engine_version, "db_subnet_group_name": subnets.name,
                    "publicly_accessible": False, "auto_minor_version_upgrade": True,
                    "performance_insights_enabled": a.performance_insights,
                    "performance_insights_kms_key_id": key_arn if a.performance_insights else None,
                    "performance_insights_retention_period": (a.performance_insights_retention_days
                                                              if a.performance_insights else None),
                    "tags": tags}
        aws.rds.ClusterInstance(f"{name}-writer", promotion_tier=0, **instance, opts=child)
        for i in range(a.readers):
            aws.rds.ClusterInstance(f"{name}-reader-{i + 1}", promotion_tier=_store.reader_promotion_tier(i),
                                    **instance, opts=child)
        self.cluster = cluster
        self.endpoint = cluster.endpoint
        self.reader_endpoint = cluster.reader_endpoint
        self.port = _store.PORT
        self.secret_arn = cluster.master_user_secrets.apply(lambda s: s[0]["secret_arn"] if s else None)
        self.security_group_id = sg.id

    def _qdrant(self, name: str, args: VectorStoreArgs) -> None:
        q = args.qdrant
        child = pulumi.ResourceOptions(parent=self)
        if args.api_key is None:
            api_key = random.RandomPassword(f"{name}-api-key", length=48, special=False, opts=child).result
        else:
            api_key = pulumi.Output.secret(args.api_key)
        deps: list[pulumi.Resource] = []
        if q.create_namespace:
            deps.append(k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": q.namespace, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}, opts=child))
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=deps)
        secret_name = f"{name}-api-key"
        secret = k8s.core.v1.Secret(
            f"{name}-api-key", metadata={"name": secret_name, "namespace": q.namespace}, type="Opaque",
            string_data={_store.API_KEY_SECRET_KEY: pulumi.Output.secret(api_key)}, opts=after_ns)
        values = _store.render_qdrant_values(replicas=q.replicas, storage_gib=q.storage_gib,
                                             storage_class=q.storage_class, memory_gib=q.memory_gib, cpu=q.cpu,
                                             api_key_secret=secret_name, node_selector=q.node_selector)
        release = k8s.helm.v3.Release(
            f"{name}-qdrant", name=name, chart=versions.QDRANT_CHART.name, version=q.chart_version,
            repository_opts={"repo": versions.QDRANT_CHART.repository}, namespace=q.namespace, values=values,
            atomic=True, cleanup_on_fail=True, timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*deps, secret]))
        policy = _store.qdrant_network_policy(name=f"{name}-qdrant", release=name, namespace=q.namespace,
                                              client_namespaces=q.client_namespaces,
                                              monitoring_namespace=q.monitoring_namespace)
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", metadata=policy["metadata"], spec=policy["spec"],
                                        opts=after_ns)
        service = qdrant_host(name, q.namespace)
        self.release = release
        self.values = values
        self.endpoint = pulumi.Output.from_input(service)
        self.reader_endpoint = self.endpoint
        self.port = _store.QDRANT_HTTP_PORT
        self.api_key_secret_name = secret_name
        self.api_key = pulumi.Output.secret(api_key)
