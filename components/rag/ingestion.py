"""Ingestion: the RAG data plane's document queue and the workers that chunk, embed and upsert, scaled by KEDA on the
queue's depth.

Creates
  - ``aws.kms.Key`` ``<name>-key`` (rotation on) unless ``kms_key_arn`` names one: it encrypts the queues and the bucket.
  - ``aws.sqs.Queue`` ``<name>-dlq`` (14-day retention) and ``<name>-queue`` (one message per document, visibility
    timeout ``visibility_timeout_seconds``, a redrive policy moving a document received ``max_receives`` times to the
    dead-letter queue), both KMS-encrypted; ``aws.cloudwatch.MetricAlarm`` ``<name>-dlq-not-empty`` on the DLQ
    (actions ``alarm_actions``), the same alarm as the batch queues (:func:`components.queues.dlq_alarm`).
  - unless ``bucket_name`` names one, ``aws.s3.Bucket`` ``<name>-bucket`` for the documents (``rag/docs/``) and the
    poison documents' reasons (``rag/failed/``): SSE-KMS with the key, public access blocked, bucket-owner-enforced
    ownership, a TLS-only policy, versioning off, no expiry (the documents are the source a collection is rebuilt
    from). Its own bucket, not the batch bucket: batches expire after days and exist only where batch is on, while
    documents are kept for as long as their collection lives.
  - ``aws.iam.Role`` ``<name>-worker-role`` for EKS Pod Identity (``aws.eks.PodIdentityAssociation``
    ``<name>-worker``): consume the queue (and send a document interrupted by SIGTERM back to it), read
    ``rag/docs/``, write ``rag/failed/``, read the vector store's secret, decrypt with the keys; ``aws.iam.Policy``
    ``<name>-submit`` for the gateway (put documents, send messages, read the store's secret) and ``<name>-scaler``
    (``sqs:GetQueueAttributes`` for KEDA's operator); with ``keda_identity`` a role ``<name>-scaler-role``
    associated with KEDA's operator service account (one association per service account: where another component
    owns it, attach ``scaler_policy_arn`` to that role instead).
  - Kubernetes: the namespace (``create_namespace``), the workers' ServiceAccount, a KEDA ``TriggerAuthentication``
    (``podIdentity.provider: aws``), a Deployment running ``python -m serving.rag worker`` (the gateway image) with the
    ingestion contract's environment (ready once its metrics port answers), a PodDisruptionBudget, a
    ``ScaledObject`` on the ``aws-sqs-queue`` trigger and, with ``pod_monitor``, a Prometheus-operator ``PodMonitor``
    ``<name>`` scraping the workers' ``metrics`` port (9090) every 30 s.

Why a ScaledObject over a Deployment (and not a ScaledJob as batch uses): a document takes seconds, so a Job per
message would spend more time starting than working; pollers that KEDA adds with the queue's depth and removes (to
zero) when it is empty do the same with one start. At-least-once delivery is safe: re-ingesting a document replaces
its chunks.

Defaults: scale to zero (no worker while the queue is empty), at most 4 workers, one per 10 queued or in-flight
documents, a 300 s visibility timeout, 3 receives before the DLQ, a 30 s grace period, the untainted system nodes.

Security: no static AWS keys (Pod Identity for the workers and KEDA), least-privilege roles, KMS on the queues and the
bucket, TLS-only bucket, non-root read-only containers with every capability dropped, no service-account token.

Cost drivers: worker CPU hours while documents are queued, embedding calls (the EmbeddingService), S3 storage of the
documents, SQS requests (KEDA polls every ``polling_interval_seconds``), the KMS key ($1/month).
Quotas: SQS in-flight messages per queue (120,000); EKS Pod Identity associations per cluster (5,000).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import queues
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import from_cluster, with_cluster_provider
from components.rag import _ingestion, _store
from problems import Problem

DOCS_PREFIX = _ingestion.DOCS_PREFIX
FAILED_PREFIX = _ingestion.FAILED_PREFIX


class IngestionArgs(ArgsModel):
    """Arguments of :class:`Ingestion`."""

    worker_image: PulumiInput
    """The image holding ``serving/rag`` (the gateway image)."""
    embed_url: PulumiInput
    """OpenAI-compatible base URL of the embedding service (``RAG_EMBED_URL``), e.g. the EmbeddingService's."""
    embed_model: str = Field(min_length=1)
    """The model name the workers send (``RAG_EMBED_MODEL``)."""
    embed_batch: int = Field(default=64, ge=1, le=4096)
    """Chunks per embedding request (``RAG_EMBED_BATCH``); at most the embedding service's
    ``max_client_batch_size``. Default: 64."""
    chunk_max_tokens: int = Field(default=256, ge=8, le=8192)
    """Chunk size in tokens (``RAG_CHUNK_MAX_TOKENS``; the gateway's ``rag.chunk.maxTokens``). Default: 256."""
    chunk_overlap_tokens: int = Field(default=32, ge=0, le=4096)
    """Tokens a chunk repeats from the previous one (``RAG_CHUNK_OVERLAP_TOKENS``). Default: 32."""
    store: Literal["pgvector", "qdrant"] = "pgvector"
    """The vector store's kind (``RAG_STORE``). Default: pgvector."""
    db_host: PulumiInput = None
    """Aurora writer endpoint (``RAG_DB_HOST``); required for pgvector."""
    db_port: int = Field(default=5432, ge=1, le=65535)
    """``RAG_DB_PORT``. Default: 5432."""
    db_name: str = "vectors"
    """``RAG_DB_NAME``. Default: vectors (the VectorStore's database)."""
    db_user: str = "genai_admin"
    """``RAG_DB_USER``. Default: genai_admin (the VectorStore's master user)."""
    db_secret_arn: PulumiInput = None
    """Secrets Manager ARN of the database password (``RAG_DB_SECRET_ARN``); required for pgvector."""
    db_secret_kms_key_arn: PulumiInput = None
    """KMS key of that secret (the workers decrypt it). Default: none (an AWS managed key)."""
    qdrant_url: PulumiInput = None
    """Qdrant REST URL (``RAG_QDRANT_URL``); required for qdrant."""
    qdrant_api_key_secret: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                                              max_length=253)
    """Kubernetes Secret (key ``api-key``, in ``namespace``) of the Qdrant API key: the workers' ``RAG_QDRANT_API_KEY``
    comes from it through a ``secretKeyRef``, never as a literal; required for qdrant (VectorStore's
    ``api_key_secret_name``)."""
    namespace: str = Field(default="genai-rag", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """Kubernetes namespace of the workers. Default: genai-rag."""
    create_namespace: bool = True
    """Create ``namespace`` (Pod Security ``restricted``). Off: it exists. Default: on."""
    min_replicas: int = Field(default=0, ge=0, le=1000)
    """Fewest workers. Default: 0 (none while the queue is empty)."""
    max_replicas: int = Field(default=4, ge=1, le=1000)
    """Most workers. Default: 4."""
    documents_per_replica: int = Field(default=10, ge=1, le=10_000)
    """Queued or in-flight documents per worker (the trigger's ``queueLength``). Default: 10."""
    polling_interval_seconds: int = Field(default=30, ge=5, le=600)
    """How often KEDA reads the queue depth. Default: 30."""
    cooldown_seconds: int = Field(default=300, ge=30, le=86_400)
    """Idle time before the last worker goes. Default: 300."""
    visibility_timeout_seconds: int = Field(default=300, ge=30, le=43_200)
    """How long a received document stays hidden; keep it above a document's run time. Default: 300."""
    max_receives: int = Field(default=3, ge=1, le=1000)
    """Receives of a document before it moves to the DLQ (``RAG_MAX_RECEIVES``). Default: 3."""
    message_retention_seconds: int = Field(default=4 * 24 * 3600, ge=60, le=1_209_600)
    """How long a queued document waits before SQS drops it. Default: 4 days."""
    termination_grace_seconds: int = Field(default=30, ge=5, le=600)
    """Grace after SIGTERM for the document in hand. Default: 30."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where the workers run. Default: the system node group."""
    bucket_name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
    """An existing bucket for the documents (its encryption and access are yours). Default: one created here."""
    kms_key_arn: PulumiInput = None
    """KMS key of the queues and the bucket. Default: a key created here (rotation on)."""
    region: PulumiInput = None
    """AWS Region of the queue (``AWS_REGION``, the trigger's ``awsRegion``). Default: the provider's."""
    alarm_actions: list[str] = Field(default_factory=list)
    """Actions (e.g. SNS topic ARNs) of the DLQ alarm. Default: none (the alarm shows in CloudWatch)."""
    pod_monitor: bool = True
    """A Prometheus-operator ``PodMonitor`` scraping the workers' ``metrics`` port (needs the operator's CRDs: put the
    monitoring release in ``after``). Off where no Prometheus operator runs. Default: on."""
    keda_identity: bool = True
    """Associate ``<name>-scaler-role`` with KEDA's operator service account. Off where another component owns that
    association (attach ``scaler_policy_arn`` to its role). Default: on."""
    keda_namespace: str = "keda"
    """Namespace of KEDA's operator. Default: keda."""
    keda_service_account: str = "keda-operator"
    """KEDA's operator service account. Default: keda-operator."""
    cluster_name: PulumiInput = None
    """EKS cluster of the Pod Identity associations. Default: ``cluster.cluster_name``."""
    cluster: PulumiInput = None
    """The EksCluster: ``cluster_name`` and the Kubernetes provider default from it. Default: none."""
    after: list[Any] = Field(default_factory=list)
    """Resources the Kubernetes children wait for (the namespace, the KEDA release). Default: none."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for every AWS resource."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.min_replicas > self.max_replicas:
            out.append(Problem("min_replicas", self.min_replicas, f"<= max_replicas ({self.max_replicas})",
                               ("max_replicas",)))
        if self.chunk_overlap_tokens * 2 > self.chunk_max_tokens:
            out.append(Problem("chunk_overlap_tokens", self.chunk_overlap_tokens,
                               f"<= half of chunk_max_tokens ({self.chunk_max_tokens})", ("chunk_max_tokens",)))
        if self.store == "pgvector":
            for f in ("db_host", "db_secret_arn"):
                if getattr(self, f) is None:
                    out.append(Problem(f, None, "given for store pgvector (the workers connect to Aurora)", ("store",)))
        else:
            if self.qdrant_url is None:
                out.append(Problem("qdrant_url", None, "given for store qdrant", ("store",)))
            if self.qdrant_api_key_secret is None:
                out.append(Problem("qdrant_api_key_secret", None, "given for store qdrant (the workers read the API "
                                   "key from that Secret, never from a literal)", ("store",)))
        if self.cluster is None and self.cluster_name is None:
            out.append(Problem("cluster_name", None, "given, or a cluster (the Pod Identity associations need it)",
                               ("cluster",)))
        return out

    def store_env(self) -> dict[str, Any]:
        if self.store == "pgvector":
            return {"RAG_STORE": "pgvector", "RAG_DB_HOST": self.db_host, "RAG_DB_PORT": str(self.db_port),
                    "RAG_DB_NAME": self.db_name, "RAG_DB_USER": self.db_user, "RAG_DB_SECRET_ARN": self.db_secret_arn}
        return {"RAG_STORE": "qdrant", "RAG_QDRANT_URL": self.qdrant_url,
                "RAG_QDRANT_API_KEY": {"secretKeyRef": {"name": self.qdrant_api_key_secret,
                                                         "key": _store.API_KEY_SECRET_KEY}}}


class Ingestion(pulumi.ComponentResource):
    """The document queue and its workers. See the module docstring for what it creates, defaults, security and cost."""

    queue: aws.sqs.Queue
    """The document queue (one message per document)."""
    dead_letter_queue: aws.sqs.Queue
    """Documents received ``max_receives`` times."""
    queue_url: pulumi.Output[str]
    """URL of the document queue (``RAG_QUEUE_URL``, the gateway's ``rag.queueUrl``)."""
    bucket: pulumi.Output[str]
    """Name of the documents bucket (``RAG_BUCKET``, the gateway's ``rag.bucket``)."""
    kms_key_arn: pulumi.Output[str]
    """ARN of the key of the queues and the bucket (submitters need ``kms:GenerateDataKey``)."""
    worker_role_arn: pulumi.Output[str]
    """The workers' IAM role."""
    submit_policy_arn: pulumi.Output[str]
    """Policy for the gateway: put documents and send messages; read the store's secret to answer queries."""
    scaler_policy_arn: pulumi.Output[str]
    """Policy letting KEDA's operator read the queue's depth."""
    scaled_object: k8s.apiextensions.CustomResource
    """The KEDA ScaledObject of the workers."""
    namespace: str
    """Namespace of the workers."""

    def __init__(self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}Ingestion", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.namespace = args.namespace
        region = args.region if args.region is not None else aws.get_region_output(opts=pulumi.InvokeOutputOptions(
            parent=self)).region
        cluster_name = from_cluster(args.cluster_name, args.cluster, "cluster_name")
        key_arn = queues.queue_key(self, name, kms_key_arn=args.kms_key_arn, tags=tags,
                                   description=f"genai-scale RAG ingestion {name}: queues and documents")
        self.kms_key_arn = key_arn
        self.queue, self.dead_letter_queue = queues.encrypted_queue(
            self, name, key_arn=key_arn, visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=args.message_retention_seconds, max_receives=args.max_receives,
            alarm_actions=args.alarm_actions, tags=tags,
            alarm_description="genai-scale RAG ingestion: a document failed every allowed receive and is in the "
                              f"dead-letter queue (its reason is under {FAILED_PREFIX} of the documents bucket)")
        self.queue_url = self.queue.url
        self.bucket = pulumi.Output.from_input(args.bucket_name) if args.bucket_name is not None else \
            queues.encrypted_bucket(self, name, key_arn=key_arn, tags=tags).bucket

        keys = [key_arn, *([args.db_secret_kms_key_arn] if args.db_secret_kms_key_arn is not None else [])]
        worker_doc = pulumi.Output.all(self.queue.arn, self.bucket, args.db_secret_arn, *keys).apply(
            lambda a: json.dumps(_ingestion.worker_policy(queue_arn=a[0], bucket=a[1], db_secret_arn=a[2],
                                                          kms_key_arns=list(a[3:]))))
        sa_name = f"{name}-worker"
        role = queues.pod_identity_role(
            self, f"{name}-worker", policy=worker_doc, cluster_name=cluster_name, namespace=args.namespace,
            service_account=sa_name, tags=tags,
            description=f"RAG ingestion workers of {name}: consume documents, read the store secret")
        self.worker_role_arn = role.arn
        self.submit_policy_arn = aws.iam.Policy(
            f"{name}-submit", description=f"Submit documents to RAG ingestion {name}", tags=tags, opts=child,
            policy=pulumi.Output.all(self.queue.arn, self.bucket, key_arn, args.db_secret_arn,
                                     args.db_secret_kms_key_arn).apply(lambda a: json.dumps(
                _ingestion.submit_policy(queue_arn=a[0], bucket=a[1], kms_key_arn=a[2], db_secret_arn=a[3],
                                         db_secret_kms_key_arn=a[4])))).arn
        scaler_doc = self.queue.arn.apply(lambda arn: json.dumps(queues.scaler_policy(arn)))
        scaler = aws.iam.Policy(f"{name}-scaler", policy=scaler_doc, tags=tags, opts=child,
                                description=f"KEDA operator: read the depth of RAG ingestion queue {name}")
        self.scaler_policy_arn = scaler.arn
        scaler_deps: list[pulumi.Resource] = []
        if args.keda_identity:
            scaler_deps.append(queues.pod_identity_role(
                self, f"{name}-scaler", policy_arn=scaler.arn, cluster_name=cluster_name,
                namespace=args.keda_namespace, service_account=args.keda_service_account, tags=tags,
                description=f"KEDA operator: read the depth of RAG ingestion queue {name}"))

        deps: list[pulumi.Resource] = []
        if args.create_namespace:
            deps.append(k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.namespace, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}, opts=child))
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[*deps, *args.after])
        sa = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata={"name": sa_name, "namespace": args.namespace,
                                                                "labels": _ingestion.labels(name)},
                                        automount_service_account_token=False, opts=after_ns)
        env = _ingestion.worker_env(queue_url=self.queue_url, bucket=self.bucket, region=region,
                                    embed_url=args.embed_url, embed_model=args.embed_model,
                                    max_receives=args.max_receives, store=args.store_env(),
                                    tuning={"RAG_VISIBILITY_SECONDS": args.visibility_timeout_seconds,
                                            "RAG_EMBED_BATCH": args.embed_batch,
                                            "RAG_CHUNK_MAX_TOKENS": args.chunk_max_tokens,
                                            "RAG_CHUNK_OVERLAP_TOKENS": args.chunk_overlap_tokens})
        dep = _ingestion.deployment(name, args.namespace, image=args.worker_image, service_account=sa_name, env=env,
                                    node_selector=args.node_selector, grace_seconds=args.termination_grace_seconds,
                                    min_replicas=args.min_replicas)
        deployment = k8s.apps.v1.Deployment(f"{name}-deployment", metadata=dep["metadata"], spec=dep["spec"],
                                            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa, *deps],
                                                                        ignore_changes=["spec.replicas"]))
        budget = _ingestion.pdb(name, args.namespace)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata=budget["metadata"], spec=budget["spec"], opts=after_ns)
        auth = queues.trigger_authentication_manifest(name, args.namespace, _ingestion.labels(name))
        auth_res = _custom(f"{name}-trigger-auth", auth, pulumi.ResourceOptions(
            parent=self, depends_on=[*deps, *args.after, *scaler_deps]))
        trigger = queues.sqs_trigger(name, queue_url=self.queue_url, region=region,
                                     shards_per_job=args.documents_per_replica, trigger_name="documents")
        self.scaled_object = _custom(f"{name}-scaledobject", _ingestion.scaled_object(
            name, args.namespace, trigger=trigger, min_replicas=args.min_replicas, max_replicas=args.max_replicas,
            polling_interval_seconds=args.polling_interval_seconds, cooldown_seconds=args.cooldown_seconds),
            pulumi.ResourceOptions(parent=self, depends_on=[deployment, auth_res, *args.after]))
        if args.pod_monitor:
            _custom(f"{name}-podmonitor", _ingestion.pod_monitor(name, args.namespace),
                    pulumi.ResourceOptions(parent=self, depends_on=[*deps, *args.after]))
        self.register_outputs({"queue_url": self.queue_url, "bucket": self.bucket})


def _custom(resource_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> Any:
    return k8s.apiextensions.CustomResource(resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
