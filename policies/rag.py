"""Rules for the RAG vector store: Aurora clusters encrypted at rest, no publicly accessible database instance, no
public Qdrant Service, and Aurora Serverless v2 that pauses when idle where the tier requires scale to zero."""

from __future__ import annotations

from typing import Any, Iterable

from pulumi_policy import EnforcementLevel, Severity

from policies._props import get, truthy
from policies._rule import Rule, Subject, resource_policy

RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCES = {"aws:rds/clusterInstance:ClusterInstance", "aws:rds/instance:Instance"}
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
PUBLIC_SERVICE_TYPES = ("LoadBalancer", "NodePort")


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
