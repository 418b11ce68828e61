"""The Kubernetes objects of a :class:`components.serving.pools.pool.ModelPool`, and its gateway block. Pure: no Pulumi.

:func:`render_pool` returns every object keyed ``<Kind>/<name>``:

- ``dedicated``, ``mig:`` and ``time-slicing:`` pools: for each model, the objects of a
  :class:`components.serving.vllm.service.VllmService` named ``<pool>-<model>``
  (:func:`components.serving.vllm.manifests.render_manifests` of :meth:`ModelPoolArgs.service_args`), so a pool of
  always-hot engines is rendered exactly as the same engines declared one by one;
- ``dynamic`` pools: one Deployment whose pod runs one vLLM engine container per base model (port 8000 + i, in the
  order the models are declared), each behind the start gate (``serving/vllm/pool_gate.py``: one engine loads at a
  time and sleeps once ready), with ``--enable-sleep-mode``, ``--gpu-memory-utilization`` = the pool's share / hot
  slots, multi-LoRA flags where the model has adapters, ``VLLM_SERVER_DEV_MODE=1`` and (with adapters)
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; a headless Service (``clusterIP: None``, a named port per engine) whose
  DNS name resolves to every ready replica; a NetworkPolicy admitting only the gateway's pods and Prometheus; a PDB;
  a ServiceMonitor scraping every engine; a KEDA ScaledObject on the gateway's held requests
  (``gateway_pool_held_requests``) and the engines' queue (``vllm:num_requests_waiting``).

:func:`gateway_block` renders the gateway's ``pools.<name>`` block (camelCase) for a dynamic pool.
"""

from __future__ import annotations

import math
from typing import Any

from components.serving.pools.args import ENGINE_PROCESS_RAM_GIB, ModelPoolArgs
from components.serving.vllm.args import PORT, render_args
from components.serving.vllm.autoscaling import QUEUE, hpa_behavior, prometheus_trigger
from components.objects import RESTRICTED
from components.serving.vllm.manifests import (CACHE_DIR, compile_cache_mounts, compile_cache_volumes,
                                               engine_env, pod_base, render_manifests)

GATE = "/usr/local/bin/genai-scale-pool-gate"
"""The start gate in the image (``serving/vllm/pool_gate.py``)."""
ENTRYPOINT = "/usr/local/bin/genai-scale-vllm"
"""The image's entrypoint (weights fetch, then ``vllm serve``): the gate's child."""
GATE_DIR = "/gate"
HELD_REQUESTS = "gateway_pool_held_requests"
"""Gateway gauge (serving/gateway/metrics.py) of requests waiting for a cold model, labels ``pool`` and ``model``."""
DNS_REFRESH_SECONDS = 10
"""How often the gateway re-resolves the headless Service (new or gone replicas)."""
API_KEY_SECRET_KEY = "api-key"


# --- names ---

def labels(name: str) -> dict[str, str]:
    return {**selector_labels(name), "app.kubernetes.io/component": "serving", "app.kubernetes.io/part-of": "genai-scale",
            "genai-scale/pool": name}


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm-pool", "app.kubernetes.io/instance": name}


def object_meta(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    return {"name": name, "namespace": args.namespace, "labels": labels(name)}


def engine_service_name(name: str, model: str) -> str:
    """The VllmService-style name of one model of a dedicated/mig/time-slicing pool."""
    return f"{name}-{model}"


def container_name(index: int, model: str) -> str:
    """``e<index>-<model>``: a DNS label, unique in the pod."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in model.lower())
    return f"e{index}-{safe}"[:63].rstrip("-")


def port_name(index: int) -> str:
    return f"engine-{index}"


def api_key_secret_name(name: str) -> str:
    return f"{name}-api-key"


def api_key_env(name: str) -> str:
    """The gateway's environment variable holding the pool's engine key: ``POOL_<NAME>_API_KEY``."""
    return "POOL_" + "".join(ch if ch.isalnum() else "_" for ch in name).upper() + "_API_KEY"


def service_dns(name: str, args: ModelPoolArgs) -> str:
    """The headless Service's name: its A records are the ready replicas' pod IPs."""
    return f"{name}.{args.namespace}.svc.cluster.local"


# --- engines ---

def model_dir(model: str) -> str:
    return f"/models/{model}"


def vllm_args(name: str, args: ModelPoolArgs, model: str) -> list[str]:
    """`vllm serve` arguments of one dynamic-pool engine: the dedicated services' rendering
    (:func:`components.serving.vllm.args.render_args`) on the engine's port, plus sleep mode and, for a model with
    adapters, multi-LoRA (``--enable-lora --max-loras --max-lora-rank --max-cpu-loras``; adapters are loaded at
    runtime by the gateway's pool controller, none at start)."""
    settings = args.model_settings(model)
    path = model_dir(model) if settings.weights_uri else settings.model_id
    out = render_args(settings, served_model_name=model, model_path=path, engine_version=args.engine_version,
                      port=args.engine_ports()[model])
    out.append("--enable-sleep-mode")
    if args.models[model].adapters:
        out += ["--enable-lora", "--max-loras", str(args.max_loras), "--max-lora-rank", str(args.max_lora_rank),
                "--max-cpu-loras", str(args.cpu_loras)]
    return out


def engine_annotations(name: str, args: ModelPoolArgs) -> dict[str, str]:
    """Per-engine fit facts, ``<container>.genai-scale/<key>`` (the ``genai-scale/<key>`` set a VllmService
    Deployment carries, one per container), so the fit check can run from the manifest for each engine."""
    spec = args.placement.accelerator
    out = {"genai-scale/pool": name, "genai-scale/pool-policy": args.policy,
           "genai-scale/node-group": args.placement.name, "genai-scale/instance-type": spec.instance_type,
           "genai-scale/accelerator": spec.accelerator}
    for i, model in enumerate(args.models):
        m, c = args.models[model], container_name(i, model)
        facts = args.facts(model)
        assert facts is not None
        for key, value in {
            "model": m.model_id, "model-parameters-billion": f"{facts.parameters_billion:g}",
            "model-layers": str(facts.layers), "model-attention-heads": str(facts.attention_heads),
            "model-kv-heads": str(facts.kv_heads), "model-head-dim": str(facts.head_dim),
            "model-max-context": str(facts.max_context), "accelerator-count": "1",
            "accelerator-memory-gib": f"{round(spec.memory_gib, 2):g}", "gpu-sharing": "dynamic",
            **({"kv-tokens-per-sequence": str(m.kv_tokens_per_sequence)} if m.kv_tokens_per_sequence else {}),
        }.items():
            out[f"{c}.genai-scale/{key}"] = value
    return out


def engine_container(name: str, args: ModelPoolArgs, index: int, model: str, *, image: Any,
                     api_key_secret: str | None) -> dict[str, Any]:
    spec, settings = args.placement.accelerator, args.model_settings(model)
    port = args.engine_ports()[model]
    env = engine_env(spec.vendor_facts, model_dir=model_dir(model), weights_uri=settings.weights_uri,
                     engine_version=args.engine_version, api_key_secret=api_key_secret,
                     compile_cache_claim=args.compile_cache_claim)
    env += [{"name": "VLLM_SERVER_DEV_MODE", "value": "1"},  # /sleep, /wake_up, /is_sleeping
            {"name": "POOL_GATE_LOCK", "value": f"{GATE_DIR}/start.lock"},
            {"name": "POOL_ENGINE_PORT", "value": str(port)},
            {"name": "POOL_SLEEP_LEVEL", "value": str(args.sleep_level)},
            {"name": "POOL_GATE_TIMEOUT_SECONDS", "value": str(args.startup_timeout_seconds)}]
    if args.models[model].adapters:
        env.append({"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"})  # /v1/load_lora_adapter
    engines = len(args.models)
    cpu = max(1, int(spec.vcpus * 0.75 / engines)) if spec.vcpus else 2
    weights = math.ceil(args.weights_gib(model) * 1.1) if args.sleep_level == 1 else 0
    probe = {"httpGet": {"path": "/health", "port": port_name(index)}}
    period = 10
    # engines start one after another: the last may wait for every other engine's start before its own
    startup_budget = args.startup_timeout_seconds * engines
    return {
        "name": container_name(index, model),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [GATE, ENTRYPOINT],
        "args": vllm_args(name, args, model),
        "env": env,
        "ports": [{"name": port_name(index), "containerPort": port, "protocol": "TCP"}],
        "resources": {
            # one time-slice share of the replica's GPU; host memory: the process, plus (level 1) the weights it
            # holds while asleep, as a limit: the node-level sum is checked by ModelPoolArgs (sleep_level rule)
            "requests": {"cpu": str(cpu), "memory": f"{ENGINE_PROCESS_RAM_GIB}Gi", spec.k8s_resource: "1"},
            "limits": {"memory": f"{ENGINE_PROCESS_RAM_GIB + weights + 2}Gi", spec.k8s_resource: "1"},
        },
        "startupProbe": {**probe, "periodSeconds": period, "timeoutSeconds": 5,
                         "failureThreshold": math.ceil(startup_budget / period)},
        "readinessProbe": {**probe, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(args.pre_stop_seconds)]}}},
        "securityContext": {**RESTRICTED,
                            "readOnlyRootFilesystem": spec.vendor_facts.vllm_read_only_root_filesystem},
        "volumeMounts": [{"name": v, "mountPath": p} for v, p, _ in _volumes(args)]
        + compile_cache_mounts(name, args.compile_cache_claim),
    }


def _volumes(args: ModelPoolArgs) -> list[tuple[str, str, dict[str, Any]]]:
    """Writable paths under a read-only root filesystem, shared by the engines: (volume, mount path, emptyDir)."""
    weights = sum(_weights_gib(args, m) for m in args.models)
    return [("dshm", "/dev/shm", {"medium": "Memory", "sizeLimit": "2Gi"}),
            ("weights", "/models", {"sizeLimit": f"{weights}Gi"}),
            ("cache", CACHE_DIR, {"sizeLimit": "20Gi"}),
            ("tmp", "/tmp", {"sizeLimit": "4Gi"}),
            ("gate", GATE_DIR, {"sizeLimit": "1Mi"})]


def _weights_gib(args: ModelPoolArgs, model: str) -> int:
    """Node-local space for one model's weights (bf16 checkpoint size + 20 %), as the dedicated services size it."""
    facts = args.facts(model)
    return max(10, math.ceil((facts.parameters_billion if facts else 10) * 2e9 / 1024 ** 3 * 1.2))


def grace_period_seconds(args: ModelPoolArgs) -> int:
    """preStop + drain (``--shutdown-timeout``) + 15 s, as for the dedicated services."""
    return args.pre_stop_seconds + args.model_settings(next(iter(args.models))).shutdown_timeout_seconds + 15


def deployment_manifest(name: str, args: ModelPoolArgs, *, image: Any, service_account: str,
                        api_key_secret: str | None) -> dict[str, Any]:
    pod = {
        **pod_base(selector_labels(name), service_account=service_account,
                   grace_seconds=grace_period_seconds(args), placement=args.placement),
        "containers": [engine_container(name, args, i, model, image=image, api_key_secret=api_key_secret)
                       for i, model in enumerate(args.models)],
        "volumes": [{"name": v, "emptyDir": d} for v, _, d in _volumes(args)]
        + compile_cache_volumes(args.compile_cache_claim),
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {**object_meta(name, args), "annotations": engine_annotations(name, args)},
        "spec": {
            "replicas": args.min_replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels(name), "annotations": {
                "kubectl.kubernetes.io/default-container": container_name(0, next(iter(args.models)))}},
                "spec": pod},
        },
    }


def service_manifest(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    """Headless: the gateway resolves it to every ready replica and addresses each (never a LoadBalancer)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": object_meta(name, args),
            "spec": {"type": "ClusterIP", "clusterIP": "None", "selector": selector_labels(name),
                     "ports": [{"name": port_name(i), "port": port, "targetPort": port_name(i), "protocol": "TCP"}
                               for i, port in enumerate(args.engine_ports().values())]}}


def network_policy_manifest(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    """Ingress to the engine ports only from the gateway's pods (in its namespaces) and from Prometheus's namespace:
    the admin endpoints (sleep, wake, adapter loading) are reachable from nothing else."""
    ports = [{"port": p, "protocol": "TCP"} for p in args.engine_ports().values()]
    gateway = {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                                           "values": sorted(args.gateway_namespaces)}]},
               "podSelector": {"matchLabels": {"app.kubernetes.io/name": "genai-gateway"}}}
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.monitoring_namespace}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": object_meta(name, args),
            "spec": {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [gateway], "ports": ports}, {"from": [monitoring], "ports": ports}]}}


def pdb_manifest(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": object_meta(name, args),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}}}


def service_monitor_manifest(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": object_meta(name, args),
            "spec": {"selector": {"matchLabels": selector_labels(name)},
                     "namespaceSelector": {"matchNames": [args.namespace]},
                     "endpoints": [{"port": port_name(i), "path": "/metrics", "interval": "15s",
                                    "scrapeTimeout": "10s"} for i in range(len(args.models))]}}


def held_query(name: str) -> str:
    """Requests the gateway holds for a cold model of this pool."""
    return f'sum({HELD_REQUESTS}{{pool="{name}"}})'


def pool_queue_query(name: str, args: ModelPoolArgs) -> str:
    """Requests waiting in the pool's engines (all replicas, all engines)."""
    return f'sum({QUEUE}{{namespace="{args.namespace}",service="{name}"}})'


def scaled_object_manifest(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    a, server = args.autoscaling, args.prometheus_url
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "pollingInterval": a.polling_interval_seconds,
        "minReplicaCount": args.min_replicas,
        "maxReplicaCount": args.max_replicas,
        "advanced": {"restoreToOriginalReplicaCount": False,
                     "horizontalPodAutoscalerConfig": {"name": f"{name}-hpa", "behavior": hpa_behavior(a)}},
        "triggers": [
            prometheus_trigger("held-requests", server, held_query(name), args.held_requests_per_replica,
                               activation=0),
            prometheus_trigger("queue-depth", server, pool_queue_query(name, args), a.queue_depth_per_replica,
                               activation=0),
        ],
    }
    if args.min_replicas == 0:
        spec["cooldownPeriod"] = a.cooldown_seconds
        spec["initialCooldownPeriod"] = args.startup_timeout_seconds * len(args.models)
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": object_meta(name, args),
            "spec": spec}


# --- IAM ---

def weights_policy(args: ModelPoolArgs) -> dict[str, Any]:
    """Read-only access to the pool's prefixes (base models and adapters) in the models bucket, nothing else."""
    bucket = args.models_bucket
    prefixes = args.weights_prefixes()
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadWeights", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{p}/*" for p in prefixes]},
        {"Sid": "ListWeights", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [v for p in prefixes for v in (f"{p}/*", p)]}}},
    ]
    if args.weights_kms_key_arn:
        statements.append({"Sid": "DecryptWeights", "Effect": "Allow", "Action": ["kms:Decrypt"],
                           "Resource": [args.weights_kms_key_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


# --- everything ---

def render_pool(name: str, args: ModelPoolArgs, *, image: Any | None = None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the pool, keyed ``<Kind>/<name>`` (tests and `genai-scale plan` read these)."""
    if args.parsed_policy.kind != "dynamic":
        out: dict[str, dict[str, Any]] = {}
        for model in args.models:
            svc = engine_service_name(name, model)
            for kind, body in render_manifests(svc, args.service_args(model), image=image).items():
                out[f"{kind}/{svc}"] = body
        return out
    secret = api_key_secret_name(name) if args.api_key else None
    bodies = [
        deployment_manifest(name, args, image=args.image if image is None else image, service_account=name,
                            api_key_secret=secret),
        service_manifest(name, args), network_policy_manifest(name, args), pdb_manifest(name, args),
        service_monitor_manifest(name, args),
    ]
    if args.keda:
        bodies.append(scaled_object_manifest(name, args))
    return {f"{b['kind']}/{b['metadata']['name']}": b for b in bodies}


def upstreams(name: str, args: ModelPoolArgs) -> dict[str, str]:
    """dedicated, mig and time-slicing pools: each model's in-cluster base URL (a plain gateway upstream)."""
    return {model: f"http://{engine_service_name(name, model)}.{args.namespace}.svc.cluster.local:{PORT}"
            for model in args.models}


def gateway_block(name: str, args: ModelPoolArgs, *, models_bucket: str | None = None) -> dict[str, Any]:
    """The gateway's ``pools.<name>`` block (camelCase) of a dynamic pool; ValueError for the other policies (their
    engines are plain upstreams: :func:`upstreams`)."""
    if args.parsed_policy.kind != "dynamic":
        raise ValueError(f"pool {name!r}: policy {args.policy} has no gateway pools block (its engines are always "
                         "hot: route to them as upstreams)")
    bucket = models_bucket or args.models_bucket
    engines: dict[str, Any] = {}
    for model, port in args.engine_ports().items():
        m = args.models[model]
        engine: dict[str, Any] = {"port": port}
        if m.adapters:
            engine["adapters"] = {a: f"s3://{bucket}/{ad.weights_prefix.strip('/')}" for a, ad in m.adapters.items()}
        engine["keepHot"] = m.keep_hot
        engines[model] = engine
    block: dict[str, Any] = {"replicas": {"dns": service_dns(name, args), "refreshSeconds": DNS_REFRESH_SECONDS}}
    if args.api_key:
        block["apiKeyEnv"] = api_key_env(name)
    block.update({
        "engines": engines,
        "hotEnginesPerReplica": args.hot_engines_per_replica,
        "maxLorasPerEngine": args.max_loras,
        "sleepLevel": args.sleep_level,
        "eviction": args.eviction,
        "holdTimeoutSeconds": args.hold_timeout_seconds,
        "loadTimeoutSeconds": args.load_timeout_seconds,
    })
    return block
