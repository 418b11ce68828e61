"""Rules for queue-driven batch inference: encrypted queues and buckets, a dead-letter queue behind every queue a KEDA
ScaledJob consumes, batch pods only on batch capacity, batch capacity on spot, and no static AWS keys in pods."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from pulumi_policy import Severity

from policies._props import (WORKLOAD_TYPES, as_list, as_map, container_name, containers, get, is_map, json_doc,
                             peek, pod_template, to_int, truthy)
from policies._rule import Rule, Subject, resource_policy, stack_policy
from policies.security_edge import BUCKET_TYPES

QUEUE = "aws:sqs/queue:Queue"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BATCH_TAINT_KEY = "genai-scale.io/batch"
BATCH_LABEL = ("genai-scale.io/capacity", "batch")
FALLBACK_LABEL = ("genai-scale.io/capacity-fallback", "on-demand")
"""Label of an ON_DEMAND batch node group meant as the fallback when spot capacity is short."""
STATIC_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
BATCH_WORKLOAD_TYPES = WORKLOAD_TYPES | {SCALED_JOB}


def batch_pod(type_token: str, props: Any) -> tuple[Any, Any] | None:
    """``(pod metadata, pod spec)`` of a workload or of a ScaledJob's Job template."""
    if type_token == SCALED_JOB:
        template = get(props, "spec.jobTargetRef.template")
        return (as_map(get(template, "metadata")), as_map(get(template, "spec"))) if is_map(template) else None
    return pod_template(type_token, props)


@resource_policy(Rule(
    id="sqs-queue-encrypted",
    title="SQS queues are encrypted",
    description="Every SQS queue must be encrypted at rest: with a KMS key (kmsMasterKeyId) or SQS-managed keys "
                "(sqsManagedSseEnabled). Batch shards carry tenants' prompts.",
    concern="security", severity=Severity.HIGH,
    remediation="Set kmsMasterKeyId to a customer-managed key (BatchInference creates one) or "
                "sqsManagedSseEnabled=True.",
    checkov=("CKV_AWS_27",),
), types={QUEUE})
def sqs_encrypted(s: Subject, cfg: dict) -> Iterable[str]:
    if not get(s.props, "kmsMasterKeyId") and not truthy(get(s.props, "sqsManagedSseEnabled")):
        yield "neither kmsMasterKeyId nor sqsManagedSseEnabled is set: the queue's messages are stored unencrypted"


def _sqs_triggers(props: Any) -> list[Any]:
    return [t for t in as_list(get(props, "spec.triggers")) if is_map(t) and get(t, "type") == "aws-sqs-queue"]


@stack_policy(Rule(
    id="scaled-job-queue-has-dlq",
    title="A queue a ScaledJob consumes has a dead-letter queue",
    description="Every SQS queue a KEDA ScaledJob's aws-sqs-queue trigger reads must have a redrive policy to a "
                "dead-letter queue with a maxReceiveCount, so a poisoned shard stops coming back after N receives.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Set the queue's redrivePolicy to {\"deadLetterTargetArn\": <DLQ ARN>, \"maxReceiveCount\": N} "
                "(BatchInference's max_receives).",
))
def scaled_job_dlq(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for job in resources:
        if job.resource_type != SCALED_JOB or not _sqs_triggers(job.props):
            continue
        queues = [d for d in (getattr(job, "dependencies", None) or []) if d.resource_type == QUEUE]
        for q in queues:
            policy = json_doc(get(q.props, "redrivePolicy")) or {}
            if not get(policy, "deadLetterTargetArn"):
                yield (f"{q.name}: consumed by ScaledJob {job.name} but has no redrivePolicy with a "
                       "deadLetterTargetArn (poisoned shards would be retried forever)"), q.urn
            elif (to_int(get(policy, "maxReceiveCount")) or 0) < 1:
                yield f"{q.name}: redrivePolicy has no maxReceiveCount >= 1", q.urn


@stack_policy(Rule(
    id="s3-bucket-encrypted",
    title="S3 buckets are encrypted with an explicit configuration",
    description="Every S3 bucket must have a server-side encryption configuration (SSE-KMS or SSE-S3) declared with "
                "it, rather than relying on the account default.",
    concern="security", severity=Severity.HIGH,
    remediation="Add aws.s3.BucketServerSideEncryptionConfiguration(bucket=<bucket id>, rules=[{"
                "\"apply_server_side_encryption_by_default\": {\"sse_algorithm\": \"aws:kms\"}}]).",
    checkov=("CKV_AWS_19",),
))
def s3_encrypted(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    configs = [r for r in resources if r.resource_type == SSE]
    for b in resources:
        if b.resource_type not in BUCKET_TYPES:
            continue
        ids = {v for v in (peek(b.props, "id"), peek(b.props, "bucket")) if v}
        mine = [c for c in configs if b in (getattr(c, "dependencies", None) or []) or peek(c.props, "bucket") in ids]
        algorithms = [get(r, "applyServerSideEncryptionByDefault.sseAlgorithm")
                      for c in mine for r in as_list(get(c.props, "rules"))]
        if not any(algorithms):
            yield f"{b.name}: no server-side encryption configuration for this bucket", b.urn


def _tolerates_batch(pod_spec: Any) -> bool:
    return any(get(t, "key") == BATCH_TAINT_KEY for t in as_list(get(pod_spec, "tolerations")) if is_map(t))


def _selects_batch(pod_spec: Any) -> bool:
    key, value = BATCH_LABEL
    if as_map(get(pod_spec, "nodeSelector")).get(key) == value:
        return True
    terms = as_list(get(pod_spec, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                                  ".nodeSelectorTerms"))
    return bool(terms) and all(
        any(get(e, "key") == key and get(e, "operator") == "In" and as_list(get(e, "values")) == [value]
            for e in as_list(get(t, "matchExpressions"))) for t in terms)


@resource_policy(Rule(
    id="batch-pods-on-batch-capacity",
    title="Batch pods select batch capacity",
    description="A pod that tolerates the batch taint (genai-scale.io/batch) must also select batch nodes "
                "(nodeSelector or a required node affinity on genai-scale.io/capacity=batch), so it never takes "
                "real-time capacity and real-time pods never share its nodes.",
    concern="reliability", severity=Severity.MEDIUM,
    remediation="Add nodeSelector {genai-scale.io/capacity: batch} to the pod (BatchInference does).",
), types=BATCH_WORKLOAD_TYPES)
def batch_pods_on_batch_capacity(s: Subject, cfg: dict) -> Iterable[str]:
    pod = batch_pod(s.type, s.props)
    if pod is not None and _tolerates_batch(pod[1]) and not _selects_batch(pod[1]):
        yield ("the pod tolerates the genai-scale.io/batch taint but does not select genai-scale.io/capacity=batch "
               "nodes (nodeSelector or required node affinity)")


def _labels(props: Any) -> dict[str, Any]:
    return dict(as_map(get(props, "labels")))


@resource_policy(Rule(
    id="batch-node-group-spot",
    title="Batch capacity runs on spot",
    description="A node group tainted for batch (genai-scale.io/batch) must be SPOT; an ON_DEMAND one is allowed "
                "only as the on-demand fallback (labelled genai-scale.io/capacity-fallback=on-demand) and only "
                "where the config allows it.",
    concern="cost", severity=Severity.MEDIUM,
    remediation="Set capacityType SPOT on the batch node group, or label an ON_DEMAND group "
                "genai-scale.io/capacity-fallback=on-demand and name it batch.onDemandFallback.",
    config={"allowOnDemandFallback": {"type": "boolean", "default": True,
                                      "description": "Accept an ON_DEMAND batch group labelled as the fallback."}},
), types={NODE_GROUP})
def batch_node_group_spot(s: Subject, cfg: dict) -> Iterable[str]:
    if not any(get(t, "key") == BATCH_TAINT_KEY for t in as_list(get(s.props, "taints")) if is_map(t)):
        return
    capacity = get(s.props, "capacityType") or "ON_DEMAND"
    if capacity == "SPOT":
        return
    key, value = FALLBACK_LABEL
    if _labels(s.props).get(key) == value and cfg["allowOnDemandFallback"]:
        return
    yield (f"capacityType is {capacity} on a node group tainted for batch: batch runs on SPOT (an ON_DEMAND group "
           f"must be labelled {key}={value}, and the config must allow the fallback)")


@resource_policy(Rule(
    id="pods-no-static-aws-keys",
    title="No static AWS keys in pods",
    description="No container (of a workload or a ScaledJob's Job) may set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
                "or AWS_SESSION_TOKEN in its environment, literally or from a Secret: pods get AWS credentials from "
                "EKS Pod Identity or IRSA.",
    concern="security", severity=Severity.HIGH,
    remediation="Remove the variables and give the pod's service account a role (aws.eks.PodIdentityAssociation, "
                "or the eks.amazonaws.com/role-arn annotation for IRSA).",
), types=BATCH_WORKLOAD_TYPES)
def pods_no_static_keys(s: Subject, cfg: dict) -> Iterable[str]:
    pod = batch_pod(s.type, s.props)
    if pod is None:
        return
    for c in containers(pod[1]):
        for e in as_list(get(c, "env")):
            if is_map(e) and get(e, "name") in STATIC_KEYS:
                yield f"container {container_name(c)} sets {get(e, 'name')} (use Pod Identity or IRSA)"
