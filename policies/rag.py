"""Rules for the RAG data plane: Aurora clusters encrypted at rest, no publicly accessible database instance, no
public Qdrant Service, Aurora Serverless v2 that pauses when idle and an embedding service that scales to zero where
the tier requires scale to zero, and a dead-letter queue behind every queue a KEDA ScaledObject consumes (the
ingestion workers). The ingestion queues' encryption is the pack's ``sqs-queue-encrypted`` rule (every SQS queue)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from pulumi_policy import EnforcementLevel, Severity

from policies._props import as_list, get, is_map, json_doc, to_int, truthy
from policies._rule import Rule, Subject, resource_policy, stack_policy

RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCES = {"aws:rds/clusterInstance:ClusterInstance", "aws:rds/instance:Instance"}
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
PUBLIC_SERVICE_TYPES = ("LoadBalancer", "NodePort")
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
QUEUE = "aws:sqs/queue:Queue"
TEI_NAME = "text-embeddings-inference"
"""``app.kubernetes.io/name`` of the embedding service's objects (components/rag/_embedding.py)."""


@resource_policy(Rule(
    id="rds-cluster-encrypted",
    title="RDS/Aurora clusters are encrypted at rest",
    description="Every RDS or Aurora DB cluster must set storageEncrypted: the vector store holds tenants' documents "
                "and their embeddings.",
    concern="security", severity=Severity.HIGH,
    remediation="Set storageEncrypted=True with kmsKeyId a customer managed key (VectorStore creates one). "
                "Encryption cannot be turned on for an existing cluster: restore a snapshot into an encrypted one.",
    checkov=("CKV_AWS_96",),
), types={RDS_CLUSTER})
def rds_cluster_encrypted(s: Subject, cfg: dict) -> Iterable[str]:
    if not truthy(get(s.props, "storageEncrypted")):
        yield "storageEncrypted is not set: the cluster volume, its backups and snapshots are stored unencrypted"


@resource_policy(Rule(
    id="rds-instance-not-public",
    title="Database instances are not publicly accessible",
    description="No RDS or Aurora DB instance may be publicly accessible: the vector store is reached from the "
                "cluster's nodes through private subnets only.",
    concern="security", severity=Severity.HIGH,
    remediation="Set publiclyAccessible=False and place the instance in a DB subnet group of private subnets.",
    checkov=("CKV_AWS_17",),
), types=RDS_INSTANCES)
def rds_instance_not_public(s: Subject, cfg: dict) -> Iterable[str]:
    if truthy(get(s.props, "publiclyAccessible")):
        yield "publiclyAccessible is true: the instance gets a public address reachable from the internet"


def _is_qdrant(props: Any) -> bool:
    chart = str(get(props, "chart") or "")
    return chart.rstrip("/").rsplit("/", 1)[-1] == "qdrant"


@resource_policy(Rule(
    id="qdrant-service-not-public",
    title="No public Qdrant Service",
    description="A Qdrant release must keep its Service ClusterIP and its Ingress off: the vector store's API is "
                "for the gateway and the ingestion workers in the cluster, never the internet.",
    concern="security", severity=Severity.HIGH,
    remediation="Set the release's values service.type: ClusterIP and ingress.enabled: false (VectorStore does); "
                "reach Qdrant from a pod, or with kubectl port-forward.",
), types={HELM_RELEASE})
def qdrant_service_not_public(s: Subject, cfg: dict) -> Iterable[str]:
    if not _is_qdrant(s.props):
        return
    kind = get(s.props, "values.service.type")
    if kind in PUBLIC_SERVICE_TYPES:
        yield f"values.service.type is {kind}: the Qdrant API is exposed outside the cluster"
    if truthy(get(s.props, "values.ingress.enabled")):
        yield "values.ingress.enabled is true: the Qdrant API is exposed through an Ingress"


@resource_policy(Rule(
    id="aurora-scale-to-zero-in-prototype",
    title="Aurora pauses when idle where the tier requires scale to zero",
    description="In a tier that requires scale to zero (tier fact acceleratorsScaleToZero) an Aurora cluster must be "
                "Serverless v2 with a minimum capacity of 0 ACU, so an idle writer pauses and bills storage only.",
    concern="cost", severity=Severity.MEDIUM,
    remediation="Set serverlessv2ScalingConfiguration.minCapacity to 0 (genai-scale:rag.aurora.minAcu: 0, with an "
                "engine version that supports auto-pause) and use db.serverless instances.",
    config={"required": {"type": "boolean", "default": True,
                         "description": "Aurora clusters must scale to 0 ACU (the tier's acceleratorsScaleToZero)."}},
    facts={"required": "acceleratorsScaleToZero"},
    fixed_level=EnforcementLevel.MANDATORY,
), types={RDS_CLUSTER})
def aurora_scale_to_zero(s: Subject, cfg: dict) -> Iterable[str]:
    if not cfg["required"] or not str(get(s.props, "engine") or "").startswith("aurora"):
        return
    scaling = get(s.props, "serverlessv2ScalingConfiguration")
    if scaling is None:
        yield "no serverlessv2ScalingConfiguration: provisioned Aurora instances bill every hour, idle or not"
        return
    low = get(scaling, "minCapacity")
    if low != 0:
        yield f"serverlessv2ScalingConfiguration.minCapacity is {low}: this tier pauses idle databases (0 ACU)"


@resource_policy(Rule(
    id="embedding-service-scale-to-zero",
    title="The embedding service scales to zero where the tier requires it",
    description="In a tier that requires scale to zero (tier fact acceleratorsScaleToZero) the KEDA ScaledObject of "
                "a text-embeddings-inference service must have minReplicaCount 0 and a trigger that wakes it where "
                "no pod reports its queue (the gateway's demand, or a queue).",
    concern="cost", severity=Severity.MEDIUM,
    remediation="Set genai-scale:rag.embedding.autoscaling.minReplicas: 0 (EmbeddingService then adds the gateway's "
                "demand trigger, and the ingestion queue's).",
    config={"required": {"type": "boolean", "default": True,
                         "description": "Embedding services must scale to zero (the tier's acceleratorsScaleToZero)."}},
    facts={"required": "acceleratorsScaleToZero"},
    fixed_level=EnforcementLevel.MANDATORY,
), types={SCALED_OBJECT})
def embedding_scale_to_zero(s: Subject, cfg: dict) -> Iterable[str]:
    labels = get(s.props, "metadata.labels")
    if not cfg["required"] or not is_map(labels) or labels.get("app.kubernetes.io/name") != TEI_NAME:
        return
    low = to_int(get(s.props, "spec.minReplicaCount"))
    if low != 0:
        yield f"spec.minReplicaCount is {low}: this tier keeps no idle embedding replica (minReplicaCount 0)"
    elif len([t for t in as_list(get(s.props, "spec.triggers")) if is_map(t)]) < 2:
        yield "only one trigger: at zero replicas no pod reports te_queue_size, so nothing would wake the service"


@stack_policy(Rule(
    id="scaled-object-queue-has-dlq",
    title="A queue a ScaledObject's workers consume has a dead-letter queue",
    description="Every SQS queue a KEDA ScaledObject's aws-sqs-queue trigger reads (the RAG ingestion workers) must "
                "have a redrive policy to a dead-letter queue with a maxReceiveCount, so a poison document stops "
                "coming back after N receives.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Set the queue's redrivePolicy to {\"deadLetterTargetArn\": <DLQ ARN>, \"maxReceiveCount\": N} "
                "(Ingestion's max_receives).",
))
def scaled_object_dlq(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for so in resources:
        if so.resource_type != SCALED_OBJECT or not any(
                is_map(t) and get(t, "type") == "aws-sqs-queue" for t in as_list(get(so.props, "spec.triggers"))):
            continue
        for q in [d for d in (getattr(so, "dependencies", None) or []) if d.resource_type == QUEUE]:
            policy = json_doc(get(q.props, "redrivePolicy")) or {}
            if not get(policy, "deadLetterTargetArn"):
                yield (f"{q.name}: consumed through ScaledObject {so.name} but has no redrivePolicy with a "
                       "deadLetterTargetArn (poison documents would be retried forever)"), q.urn
            elif (to_int(get(policy, "maxReceiveCount")) or 0) < 1:
                yield f"{q.name}: redrivePolicy has no maxReceiveCount >= 1", q.urn
