"""Pieces of the SQS-driven workers every queue-fed component shares (batch inference, RAG ingestion). Pure: no
Pulumi, so each component renders the same redrive policy, dead-letter alarm, TLS-only bucket policy, Pod Identity trust and KEDA trigger.
"""

from __future__ import annotations

from typing import Any

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
