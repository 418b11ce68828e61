"""SemanticCache: an ElastiCache for Valkey replication group with vector search, for the gateway's semantic cache.

Creates
    A KMS key (rotation on) for data at rest, the auth secret and the slow-log group; a private subnet group; a
    security group admitting 6379 only from the cluster's node security group; a parameter group (``valkey8``/
    ``valkey9``) with the eviction policy and reserved memory; a 64-character auth token from ``random`` (special
    characters limited to the ones AUTH accepts), stored in a Secrets Manager secret as a JSON connection document;
    optionally (``auth="rbac"``) an RBAC user group with the default user disabled and one application user instead
    of the AUTH token; the ``aws.elasticache.ReplicationGroup`` (engine ``valkey``, cluster mode disabled: a primary
    plus ``replicas`` read replicas); and a CloudWatch log group receiving the slow log (JSON).
Defaults
    Valkey 8.2 (the first version with vector search; 9.x raises the index limits), ``cache.t4g.medium``, no replica,
    no failover, daily snapshot kept 1 day (03:00-04:00 UTC), maintenance Sunday 05:00-06:00 UTC, eviction
    ``volatile-lru`` (entries with a TTL - every cache entry should have one - are evicted first; keys without a TTL
    are kept), slow log kept 30 days.
Security posture
    Transit encryption ``required`` (TLS only), at-rest encryption with the customer managed key, authentication by
    generated AUTH token or RBAC user (never a literal; the secret and the token output are Pulumi secrets), private
    subnets, one security-group rule from the nodes.
Cost drivers
    Node hours x (1 + replicas) - the dominant cost; snapshots beyond one free copy of the cluster's size; Secrets
    Manager secret (0.40 USD/month), KMS key (1 USD/month), CloudWatch Logs ingestion.
Quotas
    Nodes per Region, and nodes per replication group (1 primary + up to 5 replicas). Vector search limits per
    engine version (indexes, fields per index, dimensions) are exposed as ``limits``.
Not supported on purpose
    ElastiCache Serverless and engine versions before 8.2 (no vector search), data-tiering node types.
"""

from __future__ import annotations

import json
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import Field

from components import versions

from components.edge import _cache
from components.foundation.eks_cluster import cluster_input_problems, from_cluster
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput, merge_tags
from components.naming import aws_name, current_stack
from problems import Problem

MaxmemoryPolicy = Literal["volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-ttl", "noeviction"]


CLUSTER_INPUTS = {"vpc_id": "vpc_id", "subnet_ids": "subnet_ids", "node_security_group_id": "node_security_group_id"}
"""Args that default from ``cluster`` -> the EksCluster attribute they come from."""


class SemanticCacheArgs(ArgsModel):
    """Typed arguments of :class:`SemanticCache`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` whose nodes use the cache: ``vpc_id``,
    ``subnet_ids`` (its private subnets) and ``node_security_group_id`` default from it (explicit values win).
    Default: none (give those three inputs)."""
    vpc_id: PulumiInput = None
    """VPC of the cache. Default: ``cluster.vpc_id`` (required without ``cluster``)."""
    subnet_ids: PulumiInput = None
    """Private subnets for the subnet group (one per AZ the nodes may use). Default: ``cluster.subnet_ids``
    (required without ``cluster``)."""
    node_security_group_id: PulumiInput = None
    """Security group of the cluster nodes; the only source allowed to reach port 6379. Default:
    ``cluster.node_security_group_id`` (required without ``cluster``)."""
    engine_version: str = versions.VALKEY_ENGINE.version
    """Valkey major.minor with vector search (8.2, 9.0, 9.1). Default: the pinned 8.2."""
    serverless: bool = False
    """Must stay false: vector search runs on node-based clusters only (ElastiCache Serverless has none)."""
    node_type: str = "cache.t4g.medium"
    """Node type. Default: ``cache.t4g.medium`` (prototype-sized; tiers set r7g sizes). Data-tiering types refused."""
    replicas: int = Field(default=0, ge=0, le=5)
    """Read replicas behind the primary (0-5). Default: 0."""
    automatic_failover: bool = False
    """Promote a replica when the primary fails. Needs ``replicas`` >= 1. Default: off."""
    multi_az: bool = False
    """Place replicas in other AZs and fail over across them. Needs ``automatic_failover``. Default: off."""
    auth: Literal["token", "rbac"] = "token"
    """``token``: a generated AUTH token; ``rbac``: a user group with the default user off and one generated
    application user. Default: ``token``."""
    maxmemory_policy: MaxmemoryPolicy = "volatile-lru"
    """Eviction policy when memory is full. Default: ``volatile-lru`` (evict TTL'd entries, keep the rest)."""
    reserved_memory_percent: int = Field(default=25, ge=0, le=100)
    """Memory kept free for the engine (index builds, replication buffers). Default: 25. Burstable micro/small nodes
    need at least 50/30 for vector search."""
    snapshot_retention_days: int = Field(default=1, ge=0, le=35)
    """Daily snapshots kept (0 disables them). Default: 1."""
    snapshot_window: str = "03:00-04:00"
    """Daily UTC snapshot window ``hh24:mi-hh24:mi``. Default: 03:00-04:00."""
    maintenance_window: str = "sun:05:00-sun:06:00"
    """Weekly UTC maintenance window ``ddd:hh24:mi-ddd:hh24:mi``. Default: Sunday 05:00-06:00."""
    slow_log_retention_days: int = Field(default=30, ge=1)
    """Days the slow log is kept in CloudWatch Logs. Default: 30."""
    final_snapshot: bool = False
    """Take a final snapshot when the replication group is deleted. Default: off."""
    apply_immediately: bool = False
    """Apply changes now instead of in the maintenance window. Default: off."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for every taggable child."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = cluster_input_problems(self, CLUSTER_INPUTS, required=CLUSTER_INPUTS)
        if self.serverless:
            out.append(Problem("serverless", True, "false: ElastiCache vector search runs on node-based Valkey 8.2+ "
                               "clusters only, not on Serverless caches"))
        if self.engine_version not in _cache.VECTOR_SEARCH_LIMITS:
            out.append(Problem("engine_version", self.engine_version,
                               "a Valkey version with vector search: " + ", ".join(_cache.VECTOR_SEARCH_LIMITS)
                               + " (vector search needs Valkey >= 8.2)"))
        why = _cache.node_type_problem(self.node_type)
        if why:
            out.append(Problem("node_type", self.node_type, why))
        floor = _cache.min_reserved_memory(self.node_type)
        if floor is not None and self.reserved_memory_percent < floor:
            out.append(Problem("reserved_memory_percent", self.reserved_memory_percent,
                               f">= {floor} on {self.node_type} (vector search on burstable nodes)"))
        if self.automatic_failover and self.replicas < 1:
            out.append(Problem("automatic_failover", True, "false unless replicas >= 1 (nothing to fail over to)"))
        if self.multi_az and not self.automatic_failover:
            out.append(Problem("multi_az", True, "false unless automatic_failover is true"))
        if not _cache.DAILY_WINDOW.match(self.snapshot_window):
            out.append(Problem("snapshot_window", self.snapshot_window, "a UTC range hh24:mi-hh24:mi"))
        if not _cache.WEEKLY_WINDOW.match(self.maintenance_window):
            out.append(Problem("maintenance_window", self.maintenance_window,
                               "a UTC range ddd:hh24:mi-ddd:hh24:mi with ddd in mon..sun"))
        return out


class SemanticCache(pulumi.ComponentResource):
    """The Valkey cache behind the gateway's semantic cache. See the module docstring."""

    replication_group: aws.elasticache.ReplicationGroup
    """The ElastiCache for Valkey replication group (TLS, KMS at rest, AUTH)."""
    primary_endpoint: pulumi.Output[str]
    """Writer endpoint host (TLS on ``port``)."""
    reader_endpoint: pulumi.Output[str]
    """Reader endpoint host, spreading reads over replicas (the primary when there are none)."""
    port: pulumi.Output[int]
    """The port the cache listens on (TLS)."""
    auth_secret_arn: pulumi.Output[str]
    """Secrets Manager secret holding ``{"host","reader_host","port","username","password","tls"}``."""
    auth_token: pulumi.Output[str]
    """The password / AUTH token (a Pulumi secret)."""
    username: str
    """User to authenticate as: ``default`` with an AUTH token, the application user with RBAC."""
    engine_version: str
    """The Valkey engine version (vector search needs 8.2 or newer)."""
    limits: dict[str, int]
    """Vector search limits of the engine version: max_indexes, max_fields_per_index, max_vector_dimensions,
    max_search_timeout_ms."""
    security_group_id: pulumi.Output[str]
    """The cache's security group: it admits the cluster's node security group on the cache port only."""

    def __init__(self, name: str, args: SemanticCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}SemanticCache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = merge_tags(args.tags, {"genai-scale/component": "semantic-cache"})
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))

        key = aws.kms.Key(
            f"{name}-key", description=f"Semantic cache {name}: data at rest, auth secret, slow log",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=pulumi.Output.all(partition.partition, region.region, identity.account_id).apply(
                lambda a: json.dumps(_cache.key_policy(partition=a[0], region=a[1], account=a[2]))),
            tags=tags, opts=child)

        vpc_id, subnet_ids, node_sg = (from_cluster(getattr(args, field), args.cluster, attr)
                                       for field, attr in CLUSTER_INPUTS.items())
        subnets = aws.elasticache.SubnetGroup(f"{name}-subnets", subnet_ids=subnet_ids,
                                              description=f"Private subnets of semantic cache {name}", tags=tags,
                                              opts=child)
        sg = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id,
                                   description=f"Semantic cache {name}: Valkey from the cluster nodes only",
                                   tags=tags, opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-from-nodes", security_group_id=sg.id, ip_protocol="tcp",
                                         from_port=_cache.PORT, to_port=_cache.PORT,
                                         referenced_security_group_id=node_sg,
                                         description="Valkey (TLS) from cluster nodes", tags=tags, opts=child)
        params = aws.elasticache.ParameterGroup(
            f"{name}-params", family=_cache.parameter_family(args.engine_version),
            description=f"Semantic cache {name}",
            parameters=[{"name": "maxmemory-policy", "value": args.maxmemory_policy},
                        {"name": "reserved-memory-percent", "value": str(args.reserved_memory_percent)}],
            tags=tags, opts=child)

        password = random.RandomPassword(f"{name}-auth", length=_cache.AUTH_TOKEN_LENGTH, special=True,
                                         override_special=_cache.AUTH_SPECIALS, min_upper=1, min_lower=1,
                                         min_numeric=1, opts=child)
        user_group_ids = None
        auth_token = None
        if args.auth == "rbac":
            self.username = "genai-scale-app"
            default_user = aws.elasticache.User(
                f"{name}-default-user", user_id=_cache.rbac_id(current_stack(), name, "default"), user_name="default", engine="valkey",
                access_string="off -@all", authentication_mode={"type": "no-password-required"}, tags=tags,
                opts=child)
            app_user = aws.elasticache.User(
                f"{name}-app-user", user_id=_cache.rbac_id(current_stack(), name, "app"), user_name=self.username, engine="valkey",
                access_string="on ~* +@all -@dangerous",
                authentication_mode={"type": "password", "passwords": [password.result]}, tags=tags, opts=child)
            group = aws.elasticache.UserGroup(f"{name}-users", user_group_id=_cache.rbac_id(current_stack(), name, "users"), engine="valkey",
                                              user_ids=[default_user.user_id, app_user.user_id], tags=tags,
                                              opts=child)
            user_group_ids = [group.user_group_id]
        else:
            self.username = "default"
            auth_token = password.result

        slow_log = aws.cloudwatch.LogGroup(f"{name}-slow-log", retention_in_days=args.slow_log_retention_days,
                                           kms_key_id=key.arn, tags=tags, opts=child)
        failover = args.automatic_failover
        rg = aws.elasticache.ReplicationGroup(
            f"{name}-valkey", description=f"genai-scale semantic cache {name}", engine="valkey",
            engine_version=args.engine_version, node_type=args.node_type, cluster_mode="disabled",
            num_cache_clusters=1 + args.replicas, automatic_failover_enabled=failover, multi_az_enabled=args.multi_az,
            port=_cache.PORT, parameter_group_name=params.name, subnet_group_name=subnets.name,
            security_group_ids=[sg.id], transit_encryption_enabled=True, transit_encryption_mode="required",
            at_rest_encryption_enabled=True, kms_key_id=key.arn, auth_token=auth_token, user_group_ids=user_group_ids,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window=args.snapshot_window if args.snapshot_retention_days else None,
            maintenance_window=args.maintenance_window, auto_minor_version_upgrade=True,
            apply_immediately=args.apply_immediately,
            # unique per stack: a second stack (or a re-created cache) must not collide with an old final snapshot
            final_snapshot_identifier=(aws_name("elasticache-snapshot", current_stack(), name, "final")
                                       if args.final_snapshot else None),
            log_delivery_configurations=[{"destination": slow_log.name, "destination_type": "cloudwatch-logs",
                                          "log_format": "json", "log_type": "slow-log"}],
            tags=tags, opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["authToken"]))

        secret = aws.secretsmanager.Secret(f"{name}-auth", description=f"Connection and credentials of semantic "
                                           f"cache {name}", kms_key_id=key.arn, recovery_window_in_days=7,
                                           tags=tags, opts=child)
        document = pulumi.Output.all(rg.primary_endpoint_address, rg.reader_endpoint_address, rg.port,
                                     password.result).apply(
            lambda a: json.dumps(_cache.connection_document(host=a[0], reader_host=a[1], port=int(a[2] or _cache.PORT),
                                                            username=self.username, password=a[3])))
        aws.secretsmanager.SecretVersion(f"{name}-auth", secret_id=secret.id,
                                         secret_string=pulumi.Output.secret(document), opts=child)

        self.replication_group = rg
        self.primary_endpoint = rg.primary_endpoint_address
        self.reader_endpoint = rg.reader_endpoint_address
        self.port = rg.port.apply(lambda p: int(p or _cache.PORT))
        self.auth_secret_arn = secret.arn
        self.auth_token = pulumi.Output.secret(password.result)
        self.engine_version = args.engine_version
        self.limits = dict(_cache.VECTOR_SEARCH_LIMITS[args.engine_version])
        self.security_group_id = sg.id
        self.register_outputs({"primary_endpoint": self.primary_endpoint, "reader_endpoint": self.reader_endpoint,
                               "port": self.port, "auth_secret_arn": secret.arn, "limits": self.limits})
