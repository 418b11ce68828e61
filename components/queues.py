"""Pieces of the SQS-driven workers every queue-fed component shares (batch inference, RAG ingestion).

The pure functions render the same redrive policy, dead-letter alarm, TLS-only bucket policy, Pod Identity trust and
KEDA trigger for each. The builders below them create the same children under the calling component
(``parent``), named from the names it passes:

- :func:`queue_key`: the component's customer managed key (``<name>-key``, rotation on, a 30-day deletion window),
  unless the caller names one.
- :func:`encrypted_queue`: ``<base>-dlq`` (14-day retention) and ``<base>-queue`` (long polling, a redrive policy to
  the DLQ after ``max_receives`` receives), both KMS-encrypted (a data key reused for 300 s), and the CloudWatch
  alarm ``<base>-dlq-not-empty`` on the DLQ.
- :func:`encrypted_bucket`: ``<name>-bucket`` with SSE-KMS (bucket key on), public access blocked, bucket-owner
  enforced ownership and a TLS-only policy (lifecycle rules are the caller's).
- :func:`pod_identity_role`: ``<base>-role`` trusted by EKS Pod Identity, its policy (``<base>-policy``, or an existing
  policy ARN) attached, and the ``<base>`` association with a namespace's service account.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

DLQ_RETENTION_SECONDS = 14 * 24 * 3600
"""A dead-letter queue keeps poisoned messages for 14 days, the SQS maximum."""
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def redrive_policy(dlq_arn: str, max_receives: int) -> dict[str, Any]:
    """The main queue's ``RedrivePolicy``: a message received ``max_receives`` times moves to the DLQ."""
    return {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}


def pod_identity_trust_policy() -> dict[str, Any]:
    """Trust of a role used through EKS Pod Identity (the agent assumes it and tags the session)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]}


def scaler_policy(*queue_arns: str) -> dict[str, Any]:
    """KEDA's operator reads the queues' depth only (``GetQueueAttributes`` decrypts nothing: no key permission)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadQueueDepth", "Effect": "Allow", "Action": ["sqs:GetQueueAttributes"],
        "Resource": list(queue_arns)}]}


def tls_only_bucket_policy(bucket: str) -> dict[str, Any]:
    """Deny every request to the bucket that does not use TLS."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def dlq_alarm(queue_name: Any, *, description: str, actions: list[str]) -> dict[str, Any]:
    """Inputs of the ``aws.cloudwatch.MetricAlarm`` that fires while a dead-letter queue holds a message (a unit of
    work that failed every allowed receive). SQS publishes ``ApproximateNumberOfMessagesVisible`` per queue every 5
    minutes (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html,
    read 2026-12-06); Prometheus does not see it, so this alarm is the DLQ's alert."""
    return {"namespace": "AWS/SQS", "metric_name": "ApproximateNumberOfMessagesVisible",
            "dimensions": {"QueueName": queue_name}, "statistic": "Maximum", "period": 300,
            "evaluation_periods": 1, "threshold": 0, "comparison_operator": "GreaterThanThreshold",
            "treat_missing_data": "notBreaching", "alarm_description": description,
            "alarm_actions": list(actions), "ok_actions": list(actions)}


def trigger_authentication_manifest(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    """KEDA authenticates to SQS with its operator's own AWS identity (EKS Pod Identity), no static keys."""
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": f"{name}-aws", "namespace": namespace, "labels": labels},
            "spec": {"podIdentity": {"provider": "aws"}}}


def sqs_trigger(name: str, *, queue_url: Any, region: Any, shards_per_job: int, trigger_name: str = "shards") -> dict[
        str, Any]:
    """The ``aws-sqs-queue`` trigger: one replica (or Job) per ``shards_per_job`` messages, visible and in flight (a
    message being worked on still counts), none while the queue is empty. Authenticated by ``<name>-aws``."""
    return {"type": "aws-sqs-queue", "name": trigger_name, "authenticationRef": {"name": f"{name}-aws"},
            "metadata": {"queueURL": queue_url, "queueLength": str(shards_per_job), "activationQueueLength": "0",
                         "awsRegion": region, "scaleOnInFlight": "true"}}


# --- builders: the shared children of a queue-fed component ---

def queue_key(parent: pulumi.Resource, name: str, *, kms_key_arn: Any, description: str,
              tags: dict[str, str]) -> pulumi.Output[str]:
    """``kms_key_arn`` when given; else a new key ``<name>-key`` (rotation on) for the queues and the bucket."""
    if kms_key_arn is not None:
        return pulumi.Output.from_input(kms_key_arn)
    return aws.kms.Key(f"{name}-key", description=description, enable_key_rotation=True, deletion_window_in_days=30,
                       tags=tags, opts=pulumi.ResourceOptions(parent=parent)).arn


def encrypted_queue(parent: pulumi.Resource, base: str, *, key_arn: Any, visibility_timeout_seconds: int,
                    message_retention_seconds: int, max_receives: int, alarm_description: str,
                    alarm_actions: list[str], tags: dict[str, str]) -> tuple[aws.sqs.Queue, aws.sqs.Queue]:
    """The work queue ``<base>-queue`` and its dead-letter queue ``<base>-dlq`` with the alarm
    ``<base>-dlq-not-empty`` (:func:`dlq_alarm`). Returns ``(queue, dead_letter_queue)``."""
    child = pulumi.ResourceOptions(parent=parent)
    dlq = aws.sqs.Queue(f"{base}-dlq", message_retention_seconds=DLQ_RETENTION_SECONDS, kms_master_key_id=key_arn,
                        kms_data_key_reuse_period_seconds=300, tags=tags, opts=child)
    aws.cloudwatch.MetricAlarm(f"{base}-dlq-not-empty", **dlq_alarm(
        dlq.name, description=alarm_description, actions=alarm_actions), tags=tags, opts=child)
    queue = aws.sqs.Queue(
        f"{base}-queue", visibility_timeout_seconds=visibility_timeout_seconds,
        message_retention_seconds=message_retention_seconds, receive_wait_time_seconds=20,
        kms_master_key_id=key_arn, kms_data_key_reuse_period_seconds=300,
        redrive_policy=dlq.arn.apply(lambda arn: json.dumps(redrive_policy(arn, max_receives))),
        tags=tags, opts=child)
    return queue, dlq


def encrypted_bucket(parent: pulumi.Resource, name: str, *, key_arn: Any, tags: dict[str, str]) -> aws.s3.Bucket:
    """``<name>-bucket``: SSE-KMS with ``key_arn``, public access blocked, bucket-owner-enforced ownership, TLS only."""
    child = pulumi.ResourceOptions(parent=parent)
    b = aws.s3.Bucket(f"{name}-bucket", force_destroy=False, tags=tags, opts=child)
    aws.s3.BucketOwnershipControls(f"{name}-bucket", bucket=b.id, rule={"object_ownership": "BucketOwnerEnforced"},
                                   opts=child)
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-bucket", bucket=b.id, block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
        restrict_public_buckets=True, opts=child)
    aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-bucket", bucket=b.id, rules=[{
        "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
        "bucket_key_enabled": True}], opts=child)
    aws.s3.BucketPolicy(f"{name}-bucket", bucket=b.id,
                        policy=b.bucket.apply(lambda n: json.dumps(tls_only_bucket_policy(n))),
                        opts=pulumi.ResourceOptions(parent=parent, depends_on=[block]))
    return b


def pod_identity_role(parent: pulumi.Resource, base: str, *, cluster_name: Any, namespace: str,
                      service_account: str, description: str, tags: dict[str, str], policy: Any = None,
                      policy_arn: Any = None) -> aws.iam.Role:
    """``<base>-role`` for EKS Pod Identity, associated (``<base>``) with ``namespace``/``service_account``; the
    policy document ``policy`` becomes ``<base>-policy``, or ``policy_arn`` (an existing policy) is attached."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(f"{base}-role", assume_role_policy=json.dumps(pod_identity_trust_policy()),
                        description=description, tags=tags, opts=child)
    if policy_arn is None:
        policy_arn = aws.iam.Policy(f"{base}-policy", policy=policy, description=description, tags=tags,
                                    opts=child).arn
    aws.iam.RolePolicyAttachment(f"{base}-attach", role=role.name, policy_arn=policy_arn, opts=child)
    aws.eks.PodIdentityAssociation(base, cluster_name=cluster_name, namespace=namespace,
                                   service_account=service_account, role_arn=role.arn, tags=tags, opts=child)
    return role
