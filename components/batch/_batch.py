"""Pure parts of :class:`components.batch.batch_inference.BatchInference`: IAM and bucket policy documents, the queue's
redrive policy, the worker pod and the KEDA objects. No Pulumi: the component creates one resource per rendered body
and the tests snapshot them.

The worker pod follows the batch contract (serving/batch): a ``worker`` container (``python -m serving.batch
worker``, the gateway image) and the vLLM engine with the flags a :class:`~components.serving.vllm.service.VllmService`
of the same model renders, bound to 127.0.0.1:8000. The engine is a native sidecar (an init container with
``restartPolicy: Always``, Kubernetes >= 1.29): the worker starts once the engine's startup probe passes, and the Job
completes when the worker exits (a plain second container would keep the Job running forever).
"""

from __future__ import annotations

from typing import Any

from components.queues import redrive_policy as redrive_policy
from components.queues import sqs_trigger as sqs_trigger
from components.queues import trigger_authentication_manifest as _trigger_authentication
from components.serving.vllm.args import PORT, VllmServiceArgs
from components.objects import RESTRICTED, RUN_AS_USER
from components.serving.vllm.manifests import pod_template, weights_policy

BATCH_TAINT = {"key": "genai-scale.io/batch", "value": "true", "effect": "NoSchedule"}
"""Taint of batch capacity (the batch contract): real-time pods never land there."""
BATCH_LABEL = ("genai-scale.io/capacity", "batch")
"""Node label of batch capacity; batch pods select it."""

ENGINE_HOST = "127.0.0.1"
ENGINE_URL = f"http://{ENGINE_HOST}:{PORT}/v1"
"""``BATCH_ENGINE_URL``: the engine in the worker's own pod."""
WORKER_COMMAND = ["python", "-m", "serving.batch", "worker"]
"""The worker's entry point (serving/batch)."""
BATCH_PREFIX = "batches/"
"""Every batch lives under ``batches/<batch_id>/`` in the bucket (the batch contract)."""


def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "batch-worker", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "batch", "app.kubernetes.io/part-of": "genai-scale"}


def worker_policy(*, queue_arn: str, bucket: str, kms_key_arn: str, weights_uri: str | None = None,
                  weights_kms_key_arn: str | None = None) -> dict[str, Any]:
    """Least privilege for a worker: consume the queue, read and write under ``batches/``, use the key; read the
    model weights' prefix when they come from S3."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ConsumeShards", "Effect": "Allow",
         "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes", "sqs:SendMessage"], "Resource": [queue_arn]},
        {"Sid": "ReadWriteBatches", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{BATCH_PREFIX}*"]},
        {"Sid": "ListBatches", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"{BATCH_PREFIX}*"]}}},
        {"Sid": "UseBatchKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": [kms_key_arn]},
    ]
    if weights_uri:
        statements += weights_policy(weights_uri, weights_kms_key_arn)["Statement"]
    return {"Version": "2012-10-17", "Statement": statements}


# --- managed dispatch (SageMaker asynchronous endpoints) ---

ASYNC_BACKEND = "sagemaker-async"
"""``BATCH_BACKEND`` of the dispatcher workers (the batch contract): no local engine, requests go to the endpoints."""
ASYNC_PREFIX = f"{BATCH_PREFIX}sagemaker-async/"
"""Results of the asynchronous endpoints: ``<ASYNC_PREFIX><endpoint key>/output/`` and ``.../failure/``."""


def async_output_uri(bucket: str, endpoint: str) -> str:
    """The ``async_output_s3_uri`` of an endpoint named ``endpoint`` writing to the batches bucket."""
    return f"s3://{bucket}/{ASYNC_PREFIX}{endpoint}/"


def dispatcher_labels(name: str) -> dict[str, str]:
    return {**labels(name), "app.kubernetes.io/name": "batch-dispatcher"}


def dispatcher_policy(*, queue_arn: str, bucket: str, kms_key_arn: str, endpoint_arns: list[str]) -> dict[str, Any]:
    """Least privilege for a dispatcher: consume the dispatch queue, read and write under ``batches/`` (requests
    in, the endpoints' results), use the key, and ``InvokeEndpointAsync`` on the asynchronous endpoints only."""
    statements = worker_policy(queue_arn=queue_arn, bucket=bucket, kms_key_arn=kms_key_arn)["Statement"]
    statements.append({"Sid": "InvokeAsyncEndpoints", "Effect": "Allow", "Action": ["sagemaker:InvokeEndpointAsync"],
                       "Resource": sorted(endpoint_arns)})
    return {"Version": "2012-10-17", "Statement": statements}


def dispatch_submit_policy(*, queue_arn: str, dlq_arn: str) -> dict[str, Any]:
    """What a submitter (the gateway) needs for the dispatch backend: send shards to the dispatch queue and read
    its dead-letter queue (the key is in the gateway's batch statements already)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "DispatchSendShards", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue_arn]},
        {"Sid": "DispatchReadDeadLetters", "Effect": "Allow",
         "Action": ["sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
         "Resource": [dlq_arn]}]}


def dispatcher_env(*, queue_url: Any, bucket: Any, region: Any, visibility_seconds: int,
                   max_receives: int) -> list[dict[str, Any]]:
    """The dispatcher's environment: the worker's, without a local engine, with ``BATCH_BACKEND``."""
    env = [e for e in worker_env(queue_url=queue_url, bucket=bucket, region=region,
                                 visibility_seconds=visibility_seconds, max_receives=max_receives)
           if e["name"] != "BATCH_ENGINE_URL"]
    return [*env, {"name": "BATCH_BACKEND", "value": ASYNC_BACKEND}]


def dispatcher_pod(name: str, *, image: Any, service_account: str, env: list[dict[str, Any]],
                   grace_seconds: int) -> dict[str, Any]:
    """One dispatcher pod: the worker container only (no engine, no accelerator), on the cluster's untainted CPU
    nodes, never restarted in place."""
    return {
        "metadata": {"labels": dispatcher_labels(name)},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": grace_seconds,
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": 0, "fsGroup": 0,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "containers": [worker_container(image=image, env=env)],
            "volumes": [{"name": "worker-tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
        },
    }


def lifecycle_rules(retention_days: int) -> list[dict[str, Any]]:
    """Expire batches ``retention_days`` after they were written; drop unfinished multipart uploads after a day."""
    return [{"id": "expire-batches", "status": "Enabled", "filter": {"prefix": BATCH_PREFIX},
             "expiration": {"days": retention_days},
             "abort_incomplete_multipart_upload": {"days_after_initiation": 1}}]


# --- the worker pod ---

METRICS_PORT = 9090
"""The worker's Prometheus port (``BATCH_METRICS_PORT``), scraped by the monitoring stack's batch PodMonitor."""
METRICS_PORT_NAME = "metrics"
"""Its container port name: the PodMonitor's ``port``."""

def worker_env(*, queue_url: Any, bucket: Any, region: Any, visibility_seconds: int,
               max_receives: int) -> list[dict[str, Any]]:
    """The worker's environment (the batch contract). Credentials come from EKS Pod Identity, never from here."""
    return [{"name": "BATCH_QUEUE_URL", "value": queue_url},
            {"name": "BATCH_BUCKET", "value": bucket},
            {"name": "AWS_REGION", "value": region},
            {"name": "BATCH_ENGINE_URL", "value": ENGINE_URL},
            {"name": "BATCH_VISIBILITY_SECONDS", "value": str(visibility_seconds)},
            {"name": "BATCH_MAX_RECEIVES", "value": str(max_receives)},
            {"name": "BATCH_METRICS_PORT", "value": str(METRICS_PORT)}]


def engine_sidecar(name: str, engine: VllmServiceArgs, *, image: Any, service_account: str) -> tuple[
        dict[str, Any], list[dict[str, Any]]]:
    """The vLLM container of a VllmService of the same model (same image, flags, env, resources, probes), bound to
    the loopback address and run as a native sidecar; and the pod volumes it mounts."""
    pod = pod_template(name, engine, image=image, service_account=service_account, api_key_secret=None)["spec"]
    container = dict(pod["containers"][0])
    args = list(container["args"])
    args[args.index("--host") + 1] = ENGINE_HOST
    container.update(name="engine", args=args, restartPolicy="Always")
    container.pop("lifecycle", None)  # no preStop: nothing routes to a batch engine
    container.pop("readinessProbe", None)  # init containers take no readiness probe
    container["ports"] = [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    return container, pod["volumes"]


def worker_container(*, image: Any, env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "worker", "image": image, "imagePullPolicy": "IfNotPresent", "command": list(WORKER_COMMAND),
        "env": env,
        "ports": [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "worker-tmp", "mountPath": "/tmp"}],
    }


def job_pod(name: str, engine: VllmServiceArgs, *, engine_image: Any, worker_image: Any, service_account: str,
            env: list[dict[str, Any]], grace_seconds: int) -> dict[str, Any]:
    """One worker pod: on batch capacity (the node group's selector and tolerations), never restarted in place (a
    failed shard goes back to the queue), stopped within ``grace_seconds`` (inside the 2-minute spot notice)."""
    sidecar, volumes = engine_sidecar(name, engine, image=engine_image, service_account=service_account)
    placement = engine.placement
    return {
        "metadata": {"labels": labels(name), "annotations": {"kubectl.kubernetes.io/default-container": "worker"}},
        "spec": {
            "serviceAccountName": service_account,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": grace_seconds,
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": 0, "fsGroup": 0,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": dict(placement.labels),
            "tolerations": [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
                            for t in placement.taints],
            "initContainers": [sidecar],
            "containers": [worker_container(image=worker_image, env=env)],
            "volumes": [*volumes, {"name": "worker-tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
        },
    }


# --- KEDA ---

def trigger_authentication_manifest(name: str, namespace: str) -> dict[str, Any]:
    """KEDA authenticates to SQS with its operator's own AWS identity (EKS Pod Identity), no static keys."""
    return _trigger_authentication(name, namespace, labels(name))


def scaled_job_manifest(name: str, namespace: str, *, pod: dict[str, Any], trigger: dict[str, Any],
                        max_parallelism: int, polling_interval_seconds: int, backoff_limit: int,
                        history_limit: int, scaling_strategy: str, job_name: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": job_name or name, "namespace": namespace, "labels": pod["metadata"]["labels"]},
        "spec": {
            "jobTargetRef": {"parallelism": 1, "completions": 1, "backoffLimit": backoff_limit, "template": pod},
            "pollingInterval": polling_interval_seconds,
            "minReplicaCount": 0,
            "maxReplicaCount": max_parallelism,
            "successfulJobsHistoryLimit": history_limit,
            "failedJobsHistoryLimit": history_limit,
            # running Jobs finish their shard when the ScaledJob changes
            "rollout": {"strategy": "gradual"},
            "scalingStrategy": {"strategy": scaling_strategy},
            "triggers": [trigger],
        },
    }
