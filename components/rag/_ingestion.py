"""Pure parts of :class:`components.rag.ingestion.Ingestion`: the workers' IAM documents, environment (the ingestion
contract of ``serving/rag``), pod and KEDA ScaledObject. No Pulumi: the component creates one resource per body.
"""

from __future__ import annotations

from typing import Any

from components.objects import RESTRICTED, RUN_AS_USER

DOCS_PREFIX = "rag/docs/"
"""Documents as the gateway stores them: ``rag/docs/<tenant>/<collection>/<doc>.json``."""
FAILED_PREFIX = "rag/failed/"
"""A poison document's reason, written by the worker before its last receive ends."""
WORKER_COMMAND = ["python", "-m", "serving.rag", "worker"]
METRICS_PORT = 9090
"""The worker's Prometheus port (``RAG_METRICS_PORT``; serving/rag/worker.py serves
``genai_scale_rag_documents_total{outcome}``, ``genai_scale_rag_chunks_total`` and ``genai_scale_rag_document_seconds``
there)."""
METRICS_PORT_NAME = "metrics"
"""The container port's name: the readiness probe's and the PodMonitor's ``port``."""
SCRAPE_INTERVAL = "30s"
"""The PodMonitor's interval: the workers are long-running pollers (batch's short-lived Jobs use 15 s)."""


def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "rag-ingestion", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "ingestion", "app.kubernetes.io/part-of": "genai-scale"}


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "rag-ingestion", "app.kubernetes.io/instance": name}


def worker_policy(*, queue_arn: str, bucket: str, kms_key_arns: list[str], db_secret_arn: str | None) -> dict[
        str, Any]:
    """Least privilege for a worker: consume the queue (and send a document interrupted by SIGTERM back to it as a
    new message, so the interruption spends none of its receives), read ``rag/docs/``, write ``rag/failed/``, read
    the store's secret, decrypt with the keys (the queue's and bucket's, the secret's)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ConsumeDocuments", "Effect": "Allow",
         "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes", "sqs:SendMessage"], "Resource": [queue_arn]},
        {"Sid": "ReadDocuments", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{DOCS_PREFIX}*"]},
        {"Sid": "WriteFailures", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{FAILED_PREFIX}*"]},
        {"Sid": "UseKeys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": sorted(set(kms_key_arns))},
    ]
    if db_secret_arn:
        statements.append({"Sid": "ReadStoreSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [db_secret_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def submit_policy(*, queue_arn: str, bucket: str, kms_key_arn: str, db_secret_arn: str | None = None,
                  db_secret_kms_key_arn: str | None = None) -> dict[str, Any]:
    """What the gateway needs: put documents under ``rag/docs/``, read failures, send one message per document,
    encrypt with the key; and, to answer queries, read the store's secret (and decrypt it)."""
    statements: list[dict[str, Any]] = [
        {"Sid": "PutDocuments", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{DOCS_PREFIX}*", f"arn:aws:s3:::{bucket}/{FAILED_PREFIX}*"]},
        {"Sid": "SendDocuments", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue_arn]},
        {"Sid": "UseIngestionKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": [kms_key_arn]}]
    if db_secret_arn:
        statements.append({"Sid": "ReadStoreSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [db_secret_arn]})
    if db_secret_kms_key_arn:
        statements.append({"Sid": "DecryptStoreSecret", "Effect": "Allow", "Action": ["kms:Decrypt"],
                           "Resource": [db_secret_kms_key_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def worker_env(*, queue_url: Any, bucket: Any, region: Any, embed_url: Any, embed_model: str, max_receives: int,
               store: dict[str, Any], tuning: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The worker's environment (the ingestion contract). ``store`` maps ``RAG_STORE``, ``RAG_DB_*`` (or the Qdrant
    variables) to values; ``tuning`` adds ``RAG_VISIBILITY_SECONDS``, ``RAG_EMBED_BATCH``, ``RAG_CHUNK_*``. Credentials
    come from EKS Pod Identity, never from here."""
    env = [{"name": "RAG_QUEUE_URL", "value": queue_url},
           {"name": "RAG_BUCKET", "value": bucket},
           {"name": "AWS_REGION", "value": region},
           {"name": "RAG_EMBED_URL", "value": embed_url},
           {"name": "RAG_EMBED_MODEL", "value": embed_model},
           {"name": "RAG_MAX_RECEIVES", "value": str(max_receives)},
           {"name": "RAG_METRICS_PORT", "value": str(METRICS_PORT)}]
    env += [{"name": k, "value": str(v)} for k, v in (tuning or {}).items()]
    for k, v in store.items():
        env.append({"name": k, "valueFrom": v} if isinstance(v, dict) else {"name": k, "value": v})
    return env


def deployment(name: str, namespace: str, *, image: Any, service_account: str, env: list[dict[str, Any]],
               node_selector: dict[str, str], grace_seconds: int, min_replicas: int) -> dict[str, Any]:
    """The workers: long-running pollers on the untainted CPU nodes; on SIGTERM a worker finishes (or returns) the
    document in hand within ``grace_seconds``."""
    container = {
        "name": "worker", "image": image, "imagePullPolicy": "IfNotPresent", "command": list(WORKER_COMMAND),
        "env": env, "ports": [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
        # ready once its metrics server answers (the worker starts it before taking messages)
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": METRICS_PORT_NAME}, "periodSeconds": 10,
                           "timeoutSeconds": 3, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
            "spec": {"replicas": min_replicas, "revisionHistoryLimit": 3,
                     "selector": {"matchLabels": selector_labels(name)},
                     "template": {"metadata": {"labels": labels(name)}, "spec": {
                         "serviceAccountName": service_account, "automountServiceAccountToken": False,
                         "terminationGracePeriodSeconds": grace_seconds,
                         "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": 0,
                                             "fsGroup": 0, "seccompProfile": {"type": "RuntimeDefault"}},
                         "nodeSelector": dict(node_selector),
                         "containers": [container],
                         "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]}}}}


def pdb(name: str, namespace: str) -> dict[str, Any]:
    """A node drain takes one worker at a time (its document goes back to the queue, or finishes in the grace)."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}}}


def scaled_object(name: str, namespace: str, *, trigger: dict[str, Any], min_replicas: int, max_replicas: int,
                  polling_interval_seconds: int, cooldown_seconds: int) -> dict[str, Any]:
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "pollingInterval": polling_interval_seconds, "cooldownPeriod": cooldown_seconds,
                     "minReplicaCount": min_replicas, "maxReplicaCount": max_replicas,
                     "triggers": [trigger]}}


def pod_monitor(name: str, namespace: str) -> dict[str, Any]:
    """A Prometheus-operator PodMonitor scraping the workers' ``metrics`` port in their own namespace; the pod's
    ``app.kubernetes.io/instance`` (the Ingestion's name) becomes the series' ``app_kubernetes_io_instance`` label."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(name)},
            "spec": {"selector": {"matchLabels": selector_labels(name)},
                     "podTargetLabels": ["app.kubernetes.io/instance"],
                     "podMetricsEndpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics",
                                              "interval": SCRAPE_INTERVAL}]}}
