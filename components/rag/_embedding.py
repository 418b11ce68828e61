"""Pure parts of :class:`components.rag.embedding_service.EmbeddingService`: the TEI image catalogue, the batching
flags derived from the accelerator and the tier's targets, and the Kubernetes objects. No Pulumi.

Source of the TEI facts: huggingface/text-embeddings-inference at tag v1.9.3 (read 2026-12-06): the README's
"Docker Images" table (one image per GPU architecture, and a CPU image), ``router/src/main.rs`` (flags, their
defaults: ``--max-concurrent-requests`` 512, ``--max-batch-tokens`` 16384, ``--max-client-batch-size`` 32,
``--port`` 3000 but ``PORT=80`` in every image, ``--prometheus-port`` 9000), ``router/src/http/server.rs`` (``/health``,
``/metrics`` and the OpenAI-compatible ``/v1/embeddings`` on the HTTP port) and ``core/src/queue.rs`` (the gauge
``te_queue_size``: requests waiting for a batch).
"""

from __future__ import annotations

import math
from typing import Any

from components.queues import sqs_trigger
from components.serving.vllm.autoscaling import prometheus_trigger
from components.objects import RESTRICTED, RUN_AS_USER

PORT = 8080
"""The HTTP port TEI listens on (``--port``; the images default to 80, which a non-root user cannot bind)."""
MODEL_DIR = "/data/model"
"""Where the init container copies the model from S3 (``--model-id`` is this local path then)."""
HUB_CACHE = "/data"
"""``HUGGINGFACE_HUB_CACHE``: an emptyDir, so a model from the Hugging Face Hub lands there."""
GATEWAY_REQUESTS = "gateway_embedding_requests_total"
"""The gateway's counter of ``POST /v1/embeddings`` requests (serving/gateway/metrics.py; label ``model``: the public
model name), counted also when the upstream has no replica: the demand that wakes the service."""
QUEUE_METRIC = "te_queue_size"
"""TEI's gauge of requests waiting for a batch (core/src/queue.rs)."""
GATEWAY_MAX_BATCH = 64
"""Inputs per request the gateway's micro-batcher sends (the gateway's ``embeddings.batch.maxBatch`` default)."""
HF_TOKEN_KEY = "token"

TEI_ARCH: dict[str, str] = {
    # EC2 accelerator name -> TEI image tag prefix (README "Docker Images", v1.9.3). A100 is the untagged image.
    "T4": "turing", "A100": "", "A10G": "86", "L4": "89", "L40S": "89", "H100": "hopper", "H200": "hopper",
}
CPU = "cpu"


def architecture(accelerator: str | None) -> str | None:
    """The TEI image's architecture for an EC2 accelerator name (None: no TEI image for it); ``cpu`` without one."""
    if accelerator is None:
        return CPU
    return TEI_ARCH.get(accelerator)


def image(repository: str, version: str, arch: str) -> str:
    """``<repository>:<arch>-<major.minor>`` (``<repository>:<major.minor>`` for Ampere 8.0)."""
    minor = ".".join(version.split(".")[:2])
    return f"{repository}:{arch}-{minor}" if arch else f"{repository}:{minor}"


# --- batching flags ---

def derived_max_batch_tokens(memory_gib: float | None) -> int:
    """Tokens in one forward batch. TEI's default (16,384) is sized for a 24 GB GPU; it doubles with each doubling of
    GPU memory (48 GB L40S: 32,768; 80 GB H100: 65,536) so the GPU stays compute bound. On CPU a batch is compute
    bound long before memory runs out, and a smaller batch keeps a lone request's latency down: 4,096."""
    if memory_gib is None:
        return 4096
    return 16384 * 2 ** max(0, round(math.log2(memory_gib / 24)))


def derived_max_concurrent_requests(concurrency_target: int | None) -> int:
    """Requests one replica admits before answering 429: twice the tier's concurrent requests (``targets
    .concurrentStreams``), so one replica absorbs a burst while KEDA adds more; never below TEI's default (512)."""
    return max(512, 2 * (concurrency_target or 0))


# --- names and labels ---

def labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "text-embeddings-inference", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "embeddings", "app.kubernetes.io/part-of": "genai-scale"}


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "text-embeddings-inference", "app.kubernetes.io/instance": name}


def meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(name)}


# --- the pod ---

def tei_args(args: Any, *, model_path: str) -> list[str]:
    f = args.flags()
    out = ["--model-id", model_path, "--port", str(PORT), "--served-model-name", args.served_model_name or
           args.model_id, "--max-batch-tokens", str(f["max_batch_tokens"]),
           "--max-client-batch-size", str(f["max_client_batch_size"]),
           "--max-concurrent-requests", str(f["max_concurrent_requests"]), "--json-output"]
    return out


def sync_container(args: Any, *, image_ref: str) -> dict[str, Any]:
    """Copies the model's S3 prefix into the pod before TEI starts (credentials: the pod's IRSA role)."""
    return {
        "name": "fetch-model", "image": image_ref, "imagePullPolicy": "IfNotPresent",
        "command": ["aws", "s3", "sync", "--only-show-errors", args.weights_uri.rstrip("/") + "/", MODEL_DIR],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "data", "mountPath": HUB_CACHE}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def resources(args: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"cpu": args.cpu, "memory": f"{args.memory_gib:g}Gi"}
    lim: dict[str, Any] = {"memory": f"{args.memory_gib:g}Gi"}
    if args.placement is not None:
        device = args.placement.accelerator.vendor_facts.device_resource
        req[device] = lim[device] = "1"
    return {"requests": req, "limits": lim}


def scheduling(args: Any) -> dict[str, Any]:
    """The node group's labels and taints (a GPU group), or the system nodes (CPU)."""
    if args.placement is None:
        return {"nodeSelector": dict(args.cpu_node_selector)}
    p = args.placement
    return {"nodeSelector": dict(p.labels),
            "tolerations": [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
                            for t in p.taints]}


def pod_template(name: str, args: Any, *, image_ref: Any, sync_image: str, service_account: str,
                 hf_token_secret: str | None) -> dict[str, Any]:
    model_path = MODEL_DIR if args.weights_uri else args.model_id
    env: list[dict[str, Any]] = [{"name": "HUGGINGFACE_HUB_CACHE", "value": HUB_CACHE},
                                 {"name": "HOME", "value": "/tmp"}]
    if hf_token_secret:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token_secret, "key": HF_TOKEN_KEY}}})
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    period = 10
    container = {
        "name": "tei", "image": image_ref, "imagePullPolicy": "IfNotPresent",
        "args": tei_args(args, model_path=model_path), "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": resources(args),
        "startupProbe": {**probe, "periodSeconds": period, "timeoutSeconds": 5,
                         "failureThreshold": math.ceil(args.startup_timeout_seconds / period)},
        "readinessProbe": {**probe, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(args.pre_stop_seconds)]}}},
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "data", "mountPath": HUB_CACHE}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": args.pre_stop_seconds + 30,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": 0, "fsGroup": 0,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        **scheduling(args),
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_labels(name)}}],
        "containers": [container],
        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": f"{args.model_volume_gib}Gi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if args.weights_uri:
        spec["initContainers"] = [sync_container(args, image_ref=sync_image)]
    return {"metadata": {"labels": labels(name), "annotations": {"kubectl.kubernetes.io/default-container": "tei"}},
            "spec": spec}


# --- objects ---

def deployment(name: str, args: Any, **pod: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, args.namespace),
            "spec": {"replicas": args.autoscaling.min_replicas, "revisionHistoryLimit": 3,
                     "selector": {"matchLabels": selector_labels(name)},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": pod_template(name, args, **pod)}}


def service(name: str, args: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, args.namespace),
            "spec": {"type": "ClusterIP", "selector": selector_labels(name),
                     "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}}


def pdb(name: str, args: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(name, args.namespace),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}}}


def network_policy(name: str, args: Any) -> dict[str, Any]:
    """Ingress to the HTTP port only from the gateway's and the ingestion workers' namespaces and monitoring."""
    namespaces = sorted({args.namespace, args.monitoring_namespace, *args.client_namespaces})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(name, args.namespace),
            "spec": {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                         {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}],
                         "ports": [{"port": PORT, "protocol": "TCP"}]}]}}


def service_monitor(name: str, args: Any) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta(name, args.namespace),
            "spec": {"selector": {"matchLabels": selector_labels(name)},
                     "namespaceSelector": {"matchNames": [args.namespace]},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}]}}


def queue_query(namespace: str, service_name: str) -> str:
    """Requests waiting for a batch, all replicas together (series labelled by the ServiceMonitor)."""
    return f'sum({QUEUE_METRIC}{{namespace="{namespace}",service="{service_name}"}})'


def gateway_demand_query(model: str, window: str = "2m") -> str:
    """Embeddings requests per second the gateway receives for this model; drives scale from zero."""
    return f'sum(rate({GATEWAY_REQUESTS}{{model="{model}"}}[{window}]))'


def triggers(name: str, args: Any) -> list[dict[str, Any]]:
    """``te_queue_size`` per replica, and (when it may scale to zero) what wakes it: the gateway's demand, and the
    ingestion queue's depth (the workers call the service directly, not through the gateway)."""
    a = args.autoscaling
    out = [prometheus_trigger("queue-depth", args.prometheus_url, queue_query(args.namespace, name),
                              a.queue_per_replica, activation=0)]
    if a.min_replicas == 0:
        out.append(prometheus_trigger("gateway-demand", args.prometheus_url,
                                      gateway_demand_query(args.gateway_model or args.served_model_name
                                                           or args.model_id), a.scale_from_zero_rps, activation=0))
        if args.wake_queue_url is not None:
            # one replica per 1000 queued documents: the trigger wakes the service, te_queue_size sizes it
            out.append(sqs_trigger(args.wake_queue_auth, queue_url=args.wake_queue_url, region=args.wake_queue_region,
                                   shards_per_job=1000, trigger_name="ingestion-queue"))
    return out


def scaled_object(name: str, args: Any) -> dict[str, Any]:
    a = args.autoscaling
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "pollingInterval": a.polling_interval_seconds,
        "minReplicaCount": a.min_replicas,
        "maxReplicaCount": a.max_replicas,
        "advanced": {"restoreToOriginalReplicaCount": False, "horizontalPodAutoscalerConfig": {
            "name": f"{name}-hpa", "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": a.scale_down_stabilization_seconds, "selectPolicy": "Min",
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]}}}},
        "triggers": triggers(name, args),
    }
    if a.min_replicas == 0:
        spec["cooldownPeriod"] = a.cooldown_seconds
        spec["initialCooldownPeriod"] = args.startup_timeout_seconds
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta(name, args.namespace),
            "spec": spec}


def render(name: str, args: Any, *, image_ref: Any, sync_image: str, service_account: str,
           hf_token_secret: str | None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the service, by kind."""
    out = {"Deployment": deployment(name, args, image_ref=image_ref, sync_image=sync_image,
                                    service_account=service_account, hf_token_secret=hf_token_secret),
           "Service": service(name, args), "PodDisruptionBudget": pdb(name, args),
           "NetworkPolicy": network_policy(name, args), "ServiceMonitor": service_monitor(name, args)}
    if args.keda:
        out["ScaledObject"] = scaled_object(name, args)
    return out
