"""The vector-store rules (policies/rag.py): each stays quiet on the shipped plans and fires on a mutation of a real
plan, with its message; plus small passing and failing resources."""

from __future__ import annotations

import pytest

from infra.tiers import pack_config_for
from policies.engine import evaluate
from policies.pack import RULES
from tests.policies.kit import mutated, res, violations
from tests.stack_plans import planned

RULE_IDS = ("rds-cluster-encrypted", "rds-instance-not-public", "qdrant-service-not-public",
            "aurora-scale-to-zero-in-prototype")
CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def plan(request):
    result, cfg = planned(request.param)
    return result.resources, cfg.tier


def found(resources, tier, policy):
    report = evaluate(list(resources), config=pack_config_for(tier))
    return [(v.resource_name, v.message) for v in report.by_policy(policy)]


def test_the_rules_are_registered_and_the_shipped_plans_pass(plan):
    assert set(RULE_IDS) <= set(RULES)
    resources, tier = plan
    assert any(r.type == CLUSTER for r in resources)  # every tier plans the vector store
    report = evaluate(list(resources), config=pack_config_for(tier))
    assert [v for v in report.violations if v.policy in RULE_IDS] == []


def test_an_unencrypted_cluster_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "vector-store-aurora", lambda i: i.update(storageEncrypted=False), type_=CLUSTER)
    assert found(bad, tier, "rds-cluster-encrypted") == [
        ("vector-store-aurora", "storageEncrypted is not set: the cluster volume, its backups and snapshots are stored "
                                "unencrypted")]


def test_a_public_instance_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "vector-store-writer", lambda i: i.update(publiclyAccessible=True), type_=INSTANCE)
    assert found(bad, tier, "rds-instance-not-public") == [
        ("vector-store-writer", "publiclyAccessible is true: the instance gets a public address reachable from the "
                                "internet")]


def test_prototype_requires_a_zero_acu_minimum_and_the_other_tiers_do_not():
    resources = planned("dev")[0].resources
    raised = mutated(resources, "vector-store-aurora",
                     lambda i: i["serverlessv2ScalingConfiguration"].update(minCapacity=0.5), type_=CLUSTER)
    assert found(raised, "prototype", "aurora-scale-to-zero-in-prototype") == [
        ("vector-store-aurora", "serverlessv2ScalingConfiguration.minCapacity is 0.5: this tier pauses idle databases "
                                "(0 ACU)")]
    provisioned = mutated(resources, "vector-store-aurora", lambda i: i.pop("serverlessv2ScalingConfiguration"),
                          type_=CLUSTER)
    assert found(provisioned, "prototype", "aurora-scale-to-zero-in-prototype") == [
        ("vector-store-aurora", "no serverlessv2ScalingConfiguration: provisioned Aurora instances bill every hour, "
                                "idle or not")]
    prod = planned("prod")[0].resources
    assert found(prod, "scale", "aurora-scale-to-zero-in-prototype") == []  # minAcu 2 is fine where not required


def _qdrant_release(**values):
    base = {"replicaCount": 3, "config": {"cluster": {"enabled": True}}, "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False}, "apiKey": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "api-key"}}}}
    return res(RELEASE, "vector-store-qdrant", {"chart": "qdrant", "version": "1.19.0",
                                                "values": {**base, **values}})


def test_a_clusterip_qdrant_release_passes():
    assert violations([_qdrant_release()], "qdrant-service-not-public") == []


@pytest.mark.parametrize("kind", ["LoadBalancer", "NodePort"])
def test_a_public_qdrant_service_fires(kind):
    assert violations([_qdrant_release(service={"type": kind})], "qdrant-service-not-public") == [
        f"values.service.type is {kind}: the Qdrant API is exposed outside the cluster"]


def test_a_qdrant_ingress_fires_and_other_charts_are_not_judged():
    assert violations([_qdrant_release(ingress={"enabled": True})], "qdrant-service-not-public") == [
        "values.ingress.enabled is true: the Qdrant API is exposed through an Ingress"]
    other = res(RELEASE, "web", {"chart": "nginx", "version": "1.0.0", "values": {"service": {"type": "NodePort"}}})
    assert violations([other], "qdrant-service-not-public") == []


def test_small_resources_pass_and_fail():
    ok = res(CLUSTER, "c", {"engine": "aurora-postgresql", "storageEncrypted": True,
                            "serverlessv2ScalingConfiguration": {"minCapacity": 0, "maxCapacity": 4}})
    assert violations([ok], "rds-cluster-encrypted") == []
    assert violations([ok], "aurora-scale-to-zero-in-prototype", tier="prototype") == []
    assert violations([res(CLUSTER, "c", {"engine": "aurora-postgresql"})], "rds-cluster-encrypted")
    assert violations([res(INSTANCE, "i", {"publiclyAccessible": False})], "rds-instance-not-public") == []


# --- the embedding service and the ingestion queue ---

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
QUEUE = "aws:sqs/queue:Queue"
TEI_LABELS = {"app.kubernetes.io/name": "text-embeddings-inference"}


def test_the_new_rules_pass_on_every_shipped_plan(plan):
    resources, tier = plan
    assert any(r.name == "embeddings-scaledobject" for r in resources)  # every tier has the embedding service
    report = evaluate(list(resources), config=pack_config_for(tier))
    assert [v for v in report.violations if v.policy in (
        "embedding-service-scale-to-zero", "scaled-object-queue-has-dlq", "sqs-queue-encrypted")] == []


def test_prototype_embedding_service_must_scale_to_zero_and_the_scale_tier_need_not():
    resources = planned("dev")[0].resources
    raised = mutated(resources, "embeddings-scaledobject", lambda i: i["spec"].update(minReplicaCount=1),
                     type_=SCALED_OBJECT)
    assert found(raised, "prototype", "embedding-service-scale-to-zero") == [
        ("embeddings-scaledobject", "spec.minReplicaCount is 1: this tier keeps no idle embedding replica "
                                    "(minReplicaCount 0)")]
    prod = planned("prod")[0].resources
    assert found(prod, "scale", "embedding-service-scale-to-zero") == []  # min 2 is fine where not required


def test_an_embedding_service_at_zero_without_a_wake_trigger_fires():
    lone = res(SCALED_OBJECT, "e", {"metadata": {"labels": TEI_LABELS}, "spec": {
        "minReplicaCount": 0, "triggers": [{"type": "prometheus", "metadata": {"query": "te_queue_size"}}]}})
    assert violations([lone], "embedding-service-scale-to-zero", tier="prototype") == [
        "only one trigger: at zero replicas no pod reports te_queue_size, so nothing would wake the service"]
    other = res(SCALED_OBJECT, "x", {"metadata": {"labels": {"app.kubernetes.io/name": "vllm"}},
                                     "spec": {"minReplicaCount": 3}})
    assert violations([other], "embedding-service-scale-to-zero", tier="prototype") == []


def test_the_ingestion_queue_without_a_dlq_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "rag-ingest-queue", lambda i: i.pop("redrivePolicy"), type_=QUEUE)
    assert ("rag-ingest-queue", "rag-ingest-queue: consumed through ScaledObject rag-ingest-scaledobject but has no "
            "redrivePolicy with a deadLetterTargetArn (poison documents would be retried forever)") in \
        found(bad, tier, "scaled-object-queue-has-dlq")


def test_a_queue_redriven_without_max_receives_fires_and_one_with_it_passes():
    q = res(QUEUE, "q", {"redrivePolicy": '{"deadLetterTargetArn": "arn:dlq"}'})
    so = res(SCALED_OBJECT, "so", {"spec": {"triggers": [{"type": "aws-sqs-queue"}]}}, deps=[q])
    assert violations([q, so], "scaled-object-queue-has-dlq") == ["q: redrivePolicy has no maxReceiveCount >= 1"]
    good = res(QUEUE, "q", {"redrivePolicy": '{"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 3}'})
    assert violations([good, res(SCALED_OBJECT, "so", {"spec": {"triggers": [{"type": "aws-sqs-queue"}]}},
                                 deps=[good])], "scaled-object-queue-has-dlq") == []


def test_an_unencrypted_ingestion_queue_fires(plan):
    resources, tier = plan
    bad = mutated(resources, "rag-ingest-queue", lambda i: i.pop("kmsMasterKeyId"), type_=QUEUE)
    assert ("rag-ingest-queue", "neither kmsMasterKeyId nor sqsManagedSseEnabled is set: the queue's messages are "
            "stored unencrypted") in found(bad, tier, "sqs-queue-encrypted")
