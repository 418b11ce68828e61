"""The Kubernetes objects of a :class:`components.serving.vllm.service.VllmService`, rendered from its args. Pure: no Pulumi.

:func:`render_manifests` returns every object by kind; the component creates one resource per entry, and the tests
snapshot them. Besides the bodies (Deployment, Service, PodDisruptionBudget, NetworkPolicy, ServiceMonitor, KEDA
ScaledObject, warm-pool PriorityClass and placeholder Deployment) this module holds what they are derived from:

- GPU sharing: the extended resources one replica asks for (whole GPUs, a time-slice, a MIG slice, Neuron devices),
  its share of the node's CPU and memory, and the fit-check input (:func:`fit_input`) for the chosen accelerators;
- placement: node selector and tolerations from the node group, so pods and placeholders never drift from it;
- the weights' IAM policy document (read-only on the S3 prefix).

The autoscaling signals (metric names, PromQL, HPA behaviour) live in :mod:`components.serving.vllm.autoscaling`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from components import versions
from components.capacity.schedule import cron_triggers
from components.catalog.vendors import NEURON, VendorFacts
from components.objects import RESTRICTED, RUN_AS_GROUP, RUN_AS_USER
from components.serving.vllm.args import (PORT, STREAMER, NodeGroupPlacement, VllmServiceArgs, devices_requested,
                                          engine_drains, fit_input, render_args, streamer_concurrency)
from components.serving.vllm.autoscaling import (banded_trigger, gateway_demand_query, gpu_util_query, hpa_behavior,
                                          latency_p95_ms_query, prometheus_trigger, queue_query, replicas_query,
                                          tokens_query)


MODEL_DIR = "/models/weights"
CACHE_DIR = "/cache"
COMPILE_CACHE_DIR = "/compile-cache"
"""Mount path of the shared compile-cache claim (``compile_cache_claim``): ``VLLM_CACHE_ROOT`` and the vendor's
compiled-artefact directories live there, in a sub-directory per service."""
COMPILE_CACHE_VOLUME = "compile-cache"


PLACEHOLDER_PRIORITY = -10
"""Below every serving pod (default priority 0), so the scheduler preempts placeholders first."""


# --- names and labels ---

def served_name(name: str, args: VllmServiceArgs) -> str:
    return args.model.served_model_name or name


def object_meta(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """``metadata`` of the service's namespaced objects: its name, namespace and labels."""
    return {"name": name, "namespace": args.namespace, "labels": labels(name, served_name(name, args))}


def labels(name: str, served_model_name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "serving", "app.kubernetes.io/part-of": "genai-scale",
            "genai-scale/model": _label_value(served_model_name)}


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": name}


def _label_value(v: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in v)[:63]
    return out.strip("-_.") or "model"


# --- accelerators: GPU sharing, node share, fit-check input, placement ---

def accelerator_request(args: VllmServiceArgs) -> dict[str, str]:
    """Extended resources one replica requests (and limits to): the vendor's device resource, or one MIG slice."""
    vendor = args.placement.accelerator.vendor_facts
    if args.gpu_sharing == "mig" and args.mig_strategy == "mixed" and vendor.mig_resource_prefix:
        return {f"{vendor.mig_resource_prefix}{args.mig_profile}": "1"}
    if args.gpu_sharing in ("mig", "time-sliced"):
        return {vendor.device_resource: "1"}
    return {vendor.device_resource: str(devices_requested(args))}


def node_share(args: VllmServiceArgs) -> float:
    """Share of one node's CPU and memory that goes with one replica's accelerators."""
    spec = args.placement.accelerator
    if spec.shards_over_cores:
        return devices_requested(args) / spec.count
    if args.gpu_sharing == "time-sliced":
        return 1 / (spec.count * (args.placement.time_slicing_replicas or 1))
    if args.gpu_sharing == "mig":
        compute_slices = int((args.mig_profile or "1g").split("g", 1)[0])
        return compute_slices / (7 * spec.count)
    return args.model.tensor_parallel_size / spec.count


def shm_gib(args: VllmServiceArgs) -> float:
    return args.shm_size_gib or float(min(2 * args.model.tensor_parallel_size, 16))


def container_resources(args: VllmServiceArgs) -> dict[str, dict[str, str]]:
    """Requests and limits: the accelerators, and 75 % of their share of the node's CPU and memory (the rest is for
    the node's daemons). Memory is limited (plus the memory-backed /dev/shm); CPU is not (no throttling)."""
    spec, share = args.placement.accelerator, node_share(args)
    cpu = max(1, int(spec.vcpus * share * 0.75)) if spec.vcpus else 2
    mem = max(4, int(spec.memory_gib_host * share * 0.75)) if spec.memory_gib_host else 16
    accel = accelerator_request(args)
    return {"requests": {"cpu": str(cpu), "memory": f"{mem}Gi", **accel},
            "limits": {"memory": f"{mem + math.ceil(shm_gib(args))}Gi", **accel}}


def tolerations(placement: NodeGroupPlacement) -> list[dict[str, str]]:
    return [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]}
            for t in placement.taints]


def pod_base(selector: dict[str, str], *, service_account: str, grace_seconds: int, placement: NodeGroupPlacement,
             scheduler: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pod spec fields every vLLM pod shares (single-node services and model pools): its ServiceAccount without a
    mounted token, the grace period, a non-root restricted security context, the node group's placement (and
    ``scheduler``, e.g. the Neuron scheduler), and zones spread one replica at a time among the pods ``selector``
    matches."""
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": grace_seconds,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_GROUP, "fsGroup": 0,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        **scheduling(placement),
        **(scheduler or {}),
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector}}],
    }


def scheduling(placement: NodeGroupPlacement) -> dict[str, Any]:
    """Node selector and tolerations of the node group; serving pods and warm-pool placeholders share them."""
    return {"nodeSelector": dict(placement.labels), "tolerations": tolerations(placement)}


def scheduler(args: VllmServiceArgs) -> dict[str, str]:
    """``schedulerName`` of the Neuron scheduler extension for Neuron pods, when the service was given one (the
    extension then places every Neuron pod of the service, placeholders included); else nothing (the default)."""
    if args.neuron_scheduler and args.placement.accelerator.vendor == NEURON.name:
        return {"schedulerName": args.neuron_scheduler}
    return {}


HF_TOKEN_KEY = "token"
"""Key of the Hugging Face token in the ``<name>-hf-token`` Secret."""


def hf_token_secret_name(name: str) -> str:
    return f"{name}-hf-token"


SECRET_SOURCE_ANNOTATION = "genai-scale.io/secret-source"
"""Annotation on a Secret naming where its value comes from (``secretsmanager:<id>`` or ``pulumi-config:<key>``)."""


def hf_token_metadata(meta: dict[str, Any], name: str, source: str | None) -> dict[str, Any]:
    """Metadata of the ``<name>-hf-token`` Secret: the service's labels, and the token's source when known."""
    out = {**meta, "name": hf_token_secret_name(name)}
    if source:
        out["annotations"] = {**meta.get("annotations", {}), SECRET_SOURCE_ANNOTATION: source}
    return out


# --- the serving pod ---

def annotations(args: VllmServiceArgs) -> dict[str, str]:
    """Self-describing Deployment: what the fit check (and the policy pack) needs besides the container args."""
    fi = fit_input(args)
    out = {
        "genai-scale/model": args.model.model_id,
        "genai-scale/model-parameters-billion": f"{fi.facts.parameters_billion:g}",
        "genai-scale/model-layers": str(fi.facts.layers),
        "genai-scale/model-attention-heads": str(fi.facts.attention_heads),
        "genai-scale/model-kv-heads": str(fi.facts.kv_heads),
        "genai-scale/model-head-dim": str(fi.facts.head_dim),
        "genai-scale/model-max-context": str(fi.facts.max_context),
        "genai-scale/node-group": args.placement.name,
        "genai-scale/instance-type": args.placement.instance_type,
        "genai-scale/accelerator": args.placement.accelerator.accelerator,
        "genai-scale/accelerator-count": str(fi.units_per_node),
        "genai-scale/accelerator-memory-gib": f"{fi.unit_memory_gib:g}",
        "genai-scale/gpu-sharing": args.gpu_sharing if args.gpu_sharing != "mig" else f"mig-{args.mig_profile}",
    }
    if fi.time_slicing_replicas:
        out["genai-scale/time-slicing-replicas"] = str(fi.time_slicing_replicas)
    if args.model.kv_tokens_per_sequence:
        out["genai-scale/kv-tokens-per-sequence"] = str(args.model.kv_tokens_per_sequence)
    return out


def grace_period_seconds(args: VllmServiceArgs) -> int:
    """preStop + drain (``--shutdown-timeout``) + 15 s for the process to exit."""
    return args.pre_stop_seconds + args.model.shutdown_timeout_seconds + 15


def streams_weights(args: VllmServiceArgs) -> bool:
    """Whether vLLM streams the weights from S3 itself (no download step, no ``/models`` volume)."""
    return args.model.load_format == STREAMER and args.model.weights_uri is not None


def vllm_args(name: str, args: VllmServiceArgs) -> list[str]:
    if streams_weights(args):
        return render_args(args.model, served_model_name=served_name(name, args), model_path=args.model.weights_uri,
                           engine_version=args.engine_version, streamer_threads=streamer_concurrency(args))
    model_path = MODEL_DIR if args.model.weights_uri else args.model.model_id
    return render_args(args.model, served_model_name=served_name(name, args), model_path=model_path,
                       engine_version=args.engine_version)


def compile_cache_dir(claim: str | None) -> str:
    """Where compiled artefacts go: the shared claim's mount with ``claim``, else the pod's ``/cache`` emptyDir."""
    return COMPILE_CACHE_DIR if claim else CACHE_DIR


def engine_env(vendor: VendorFacts, *, model_dir: str, weights_uri: str | None, engine_version: str,
               api_key_secret: str | None, stream_weights: bool = False,
               compile_cache_claim: str | None = None) -> list[dict[str, Any]]:
    """Environment of a vLLM engine container: caches under ``/cache``, no usage stats, where the entrypoint puts the
    weights (``MODEL_DIR``) and fetches them from (``MODEL_SOURCE``; left out with ``stream_weights``: vLLM reads
    ``weights_uri`` itself), the vendor's variables, drain in the entrypoint for engines older than
    ``--shutdown-timeout``, and the API key from its Secret (shared with model pools). With ``compile_cache_claim``,
    ``VLLM_CACHE_ROOT`` (torch.compile, Inductor and Triton caches) and the vendor's ``{compile_cache_dir}`` paths
    (Neuron compiled graphs) are on the shared claim's mount instead; downloads (``HF_HOME``) stay on ``/cache``."""
    compiled = compile_cache_dir(compile_cache_claim)
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": CACHE_DIR},
        {"name": "XDG_CACHE_HOME", "value": CACHE_DIR},
        {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
        {"name": "VLLM_CACHE_ROOT", "value": f"{compiled}/vllm"},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
        {"name": "MODEL_DIR", "value": model_dir},
    ]
    if weights_uri and not stream_weights:
        env.append({"name": "MODEL_SOURCE", "value": weights_uri})
    elif not weights_uri:
        env.append({"name": "HF_HUB_OFFLINE", "value": "0"})
    env += [{"name": k, "value": v.replace("{compile_cache_dir}", compiled).replace("{cache_dir}", CACHE_DIR)}
            for k, v in vendor.vllm_env.items()]
    if not engine_drains(engine_version):
        # the engine predates --shutdown-timeout: the entrypoint drains before passing SIGTERM on
        env.append({"name": "GENAI_SCALE_DRAIN_IN_ENTRYPOINT", "value": "1"})
    if api_key_secret:
        env.append({"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": api_key_secret, "key": "api-key"}}})
    return env


DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
"""Karpenter's pod annotation: the node is not disrupted voluntarily (consolidation, drift) while the pod runs."""


def pod_template(name: str, args: VllmServiceArgs, *, image: Any, service_account: str,
                 api_key_secret: str | None, hf_token_secret: str | None = None) -> dict[str, Any]:
    """The serving pod: probes on /health, preStop + drain, /dev/shm in memory, caches on emptyDirs (compile caches on
    the shared claim, when ``compile_cache_claim`` names one)."""
    vendor = args.placement.accelerator.vendor_facts
    env = engine_env(vendor, model_dir=MODEL_DIR, weights_uri=args.model.weights_uri,
                     engine_version=args.engine_version, api_key_secret=api_key_secret,
                     stream_weights=streams_weights(args), compile_cache_claim=args.compile_cache_claim)
    if hf_token_secret:
        # huggingface_hub reads HF_TOKEN (gated models, rate limits); the value stays in the Secret
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": hf_token_secret, "key": HF_TOKEN_KEY}}})
    # writable paths under a read-only root filesystem: (volume, mount path, emptyDir)
    # (with the streamer the weights go from S3 to GPU memory: no /models copy)
    volumes = [("dshm", "/dev/shm", {"medium": "Memory", "sizeLimit": f"{shm_gib(args):g}Gi"}),
               *([] if streams_weights(args) else
                 [("weights", "/models", {"sizeLimit": f"{weights_volume_gib(args)}Gi"})]),
               ("cache", CACHE_DIR, {"sizeLimit": "20Gi"}),
               ("tmp", "/tmp", {"sizeLimit": "4Gi"})]
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    period = 10
    container = {
        "name": "vllm",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/local/bin/genai-scale-vllm"],
        "args": vllm_args(name, args),
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": container_resources(args),
        "startupProbe": {**probe, "periodSeconds": period, "timeoutSeconds": 5,
                         "failureThreshold": math.ceil(args.startup_timeout_seconds / period)},
        "readinessProbe": {**probe, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(args.pre_stop_seconds)]}}},
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": vendor.vllm_read_only_root_filesystem},
        "volumeMounts": [{"name": volume, "mountPath": path} for volume, path, _ in volumes]
        + compile_cache_mounts(name, args.compile_cache_claim),
    }
    pod: dict[str, Any] = {
        **pod_base(selector_labels(name), service_account=service_account,
                   grace_seconds=grace_period_seconds(args), placement=args.placement, scheduler=scheduler(args)),
        "containers": [container],
        "volumes": [{"name": volume, "emptyDir": empty_dir} for volume, _, empty_dir in volumes]
        + compile_cache_volumes(args.compile_cache_claim),
    }
    annotations = {"kubectl.kubernetes.io/default-container": "vllm"}
    if args.do_not_disrupt:
        annotations[DO_NOT_DISRUPT] = "true"
    return {"metadata": {"labels": labels(name, served_name(name, args)), "annotations": annotations},
            "spec": pod}


def compile_cache_mounts(subpath: str, claim: str | None) -> list[dict[str, Any]]:
    """The shared compile-cache claim at :data:`COMPILE_CACHE_DIR`, in the sub-directory ``subpath`` (the service or
    pool name: replicas of one service share their artefacts, services never see each other's). None without a
    claim."""
    return [{"name": COMPILE_CACHE_VOLUME, "mountPath": COMPILE_CACHE_DIR, "subPath": subpath}] if claim else []


def compile_cache_volumes(claim: str | None) -> list[dict[str, Any]]:
    """The pod volume of the shared compile-cache claim (none without one)."""
    return [{"name": COMPILE_CACHE_VOLUME, "persistentVolumeClaim": {"claimName": claim}}] if claim else []


def weights_volume_gib(args: VllmServiceArgs) -> int:
    """Node-local space for the weights: the checkpoint's bf16 size (quantized checkpoints are smaller) + 20 %."""
    facts = args.model.facts()
    size = (facts.parameters_billion if facts else 10) * 2e9 / 1024 ** 3
    return max(10, math.ceil(size * 1.2))


# --- objects ---

def deployment_manifest(name: str, args: VllmServiceArgs, *, image: Any, service_account: str,
                        api_key_secret: str | None, hf_token_secret: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {**object_meta(name, args), "annotations": annotations(args)},
        "spec": {
            "replicas": args.autoscaling.min_replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(name)},
            # a new replica must be ready before an old one goes: accelerators are scarce, so surge by one
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod_template(name, args, image=image, service_account=service_account,
                                     api_key_secret=api_key_secret, hf_token_secret=hf_token_secret),
        },
    }


def service_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": object_meta(name, args),
            "spec": {"type": "ClusterIP", "selector": selector_labels(name),
                     "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}}


def replicas_service_name(name: str) -> str:
    """The headless Service that lists the replicas one by one (``VllmServiceArgs.replicas_service``)."""
    return f"{name}-replicas"


def replicas_service_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """Headless: DNS answers with one A record per ready pod (not-ready pods are left out), no virtual IP. Its own
    ``app.kubernetes.io/name`` keeps it out of the ServiceMonitor's selector (each pod is scraped once)."""
    meta = object_meta(name, args)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {**meta, "name": replicas_service_name(name),
                         "labels": {**meta["labels"], "app.kubernetes.io/name": "vllm-replicas"}},
            "spec": {"type": "ClusterIP", "clusterIP": "None", "selector": selector_labels(name),
                     "publishNotReadyAddresses": False,
                     "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}}


def pdb_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": object_meta(name, args),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(name)}}}


def service_monitor_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": object_meta(name, args),
            "spec": {"selector": {"matchLabels": selector_labels(name)},
                     "namespaceSelector": {"matchNames": [args.namespace]},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}]}}


def network_policy_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """Ingress to the serving port only from the service's namespace, the client namespaces and monitoring."""
    namespaces = sorted({args.namespace, args.monitoring_namespace, *args.client_namespaces})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": object_meta(name, args),
            "spec": {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                         {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}],
                         "ports": [{"port": PORT, "protocol": "TCP"}]}]}}


def triggers(name: str, args: VllmServiceArgs, *, replicas: str | None = None,
             utilization: Callable[..., str] = gpu_util_query) -> list[dict[str, Any]]:
    """The KEDA Prometheus triggers, then the ``cron`` floors; the HPA follows the one that wants the most replicas.
    ``replicas``: the PromQL count the banded triggers scale in proportion to (default: the Deployment's replicas);
    ``utilization(namespace, name, metric=...)``: the pods' mean GPU utilization (default: the Deployment's pods). A
    multi-node service counts its groups and its LeaderWorkerSet's pods."""
    a, ns, served, server = args.autoscaling, args.namespace, served_name(name, args), args.prometheus_url
    replicas = replicas or replicas_query(ns, name)
    out = [prometheus_trigger("queue-depth", server, queue_query(ns, served), a.queue_depth_per_replica,
                              activation=0)]
    if a.p95_latency_ms:
        out.append(banded_trigger(f"p95-{a.latency_signal}-latency", server,
                                  latency_p95_ms_query(ns, served, a.latency_signal), upper=a.p95_latency_ms,
                                  lower=a.p95_latency_ms / 2, replicas=replicas))
    if a.tokens_per_second_per_replica:
        out.append(prometheus_trigger("tokens-per-second", server, tokens_query(ns, served),
                                      round(a.tokens_per_second_per_replica * a.target_utilization, 2), activation=0))
    metric = args.placement.utilization_metric  # None on nodes without an exporter: no trigger
    if a.gpu_utilization_up_percent and metric:
        out.append(banded_trigger("gpu-utilization", server, utilization(ns, name, metric=metric),
                                  upper=a.gpu_utilization_up_percent, lower=a.gpu_utilization_down_percent,
                                  replicas=replicas))
    if a.min_replicas == 0:
        out.append(prometheus_trigger("gateway-demand", server,
                                      gateway_demand_query(args.gateway_upstream or f"vllm-{name}"),
                                      a.scale_from_zero_rps, activation=0))
    return out + cron_triggers(a.cron_floors)


CAPACITY_ANNOTATION = "genai-scale.io/capacity-plan"
"""ScaledObject annotation: the capacity facts the caller computed (``VllmServiceArgs.capacity``, see
:mod:`components.capacity.facts`), compact JSON; the policy pack compares them with ``spec.minReplicaCount`` /
``spec.maxReplicaCount``. (Not ``genai-scale.io/capacity``: that is the batch node groups' label.)"""


def scaled_object_metadata(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """The ScaledObject's metadata: the service's, plus the capacity annotation when ``args.capacity`` is set."""
    meta = object_meta(name, args)
    if args.capacity is not None:
        meta["annotations"] = {CAPACITY_ANNOTATION: json.dumps(args.capacity, separators=(",", ":"),
                                                               sort_keys=True, allow_nan=False)}
    return meta


def scaled_object_manifest(name: str, args: VllmServiceArgs, *, target: dict[str, str] | None = None,
                           trigger_list: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The KEDA ScaledObject of a vLLM workload: ``target`` (default: the Deployment ``name``; a LeaderWorkerSet for
    a multi-node service) between the autoscaling bounds, with the HPA behaviour and ``trigger_list`` (default:
    :func:`triggers`)."""
    a = args.autoscaling
    spec: dict[str, Any] = {
        "scaleTargetRef": target or {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "pollingInterval": a.polling_interval_seconds,
        "minReplicaCount": a.min_replicas,
        "maxReplicaCount": a.max_replicas,
        "advanced": {"restoreToOriginalReplicaCount": False,
                     "horizontalPodAutoscalerConfig": {"name": f"{name}-hpa", "behavior": hpa_behavior(a)}},
        "triggers": triggers(name, args) if trigger_list is None else trigger_list,
    }
    if a.min_replicas == 0:
        # scale to zero only after this much idle time, and never before the first replica could have loaded
        spec["cooldownPeriod"] = a.cooldown_seconds
        spec["initialCooldownPeriod"] = args.startup_timeout_seconds
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": scaled_object_metadata(name, args),
            "spec": spec}


# --- warm pool ---

def placeholder_names(name: str) -> tuple[str, str]:
    """(PriorityClass name, placeholder Deployment name)."""
    return f"{name}-warm-pool", f"{name}-warm"


def priority_class_manifest(name: str) -> dict[str, Any]:
    pc, _ = placeholder_names(name)
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": pc, "labels": {"app.kubernetes.io/part-of": "genai-scale",
                                                "app.kubernetes.io/component": "warm-pool"}},
            "value": PLACEHOLDER_PRIORITY, "globalDefault": False, "preemptionPolicy": "Never",
            "description": f"Warm-pool placeholders for {name}: evicted first when a serving pod needs the node."}


def placeholder_manifest(name: str, args: VllmServiceArgs) -> dict[str, Any]:
    """pause pods that request exactly one replica's resources on the same node group."""
    pc, deploy = placeholder_names(name)
    sel = {"app.kubernetes.io/name": "vllm-warm-pool", "app.kubernetes.io/instance": name}
    res = container_resources(args)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": deploy, "namespace": args.namespace,
                     "labels": {**sel, "app.kubernetes.io/component": "warm-pool",
                                "app.kubernetes.io/part-of": "genai-scale"},
                     "annotations": {"genai-scale/warm-pool-for": name}},
        "spec": {
            "replicas": args.warm_pool_placeholders,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": {**sel, "app.kubernetes.io/component": "warm-pool"}},
                "spec": {
                    "priorityClassName": pc,
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65535,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    **scheduling(args.placement),
                    **scheduler(args),
                    "containers": [{
                        "name": "placeholder",
                        "image": f"{versions.PAUSE_IMAGE.repository}:{versions.PAUSE_IMAGE.version}",
                        "resources": {"requests": dict(res["requests"]),
                                      "limits": {k: v for k, v in res["limits"].items() if k != "memory"}},
                        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
                    }],
                },
            },
        },
    }


# --- IAM (the IRSA role of the service account) ---

def weights_policy(weights_uri: str, kms_key_arn: str | None = None) -> dict[str, Any]:
    """Read-only access to the weights prefix (and decrypt with its KMS key, if any)."""
    bucket, _, prefix = weights_uri[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/")
    objects = f"arn:aws:s3:::{bucket}/{prefix}/*" if prefix else f"arn:aws:s3:::{bucket}/*"
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadWeights", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [objects]},
        {"Sid": "ListWeights", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         **({"Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}}} if prefix else {})},
    ]
    if kms_key_arn:
        statements.append({"Sid": "DecryptWeights", "Effect": "Allow", "Action": ["kms:Decrypt"],
                           "Resource": [kms_key_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def render_manifests(name: str, args: VllmServiceArgs, *, image: Any | None = None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the service, by kind (tests and `genai-scale plan` read these)."""
    sa = name
    secret = f"{name}-api-key" if args.api_key else None
    out = {
        "Deployment": deployment_manifest(name, args, image=args.image if image is None else image,
                                          service_account=sa, api_key_secret=secret,
                                          hf_token_secret=hf_token_secret_name(name) if args.hf_token is not None
                                          else None),
        "Service": service_manifest(name, args),
        **({"ReplicasService": replicas_service_manifest(name, args)} if args.replicas_service else {}),
        "PodDisruptionBudget": pdb_manifest(name, args),
        "NetworkPolicy": network_policy_manifest(name, args),
        "ServiceMonitor": service_monitor_manifest(name, args),
    }
    if args.keda:
        out["ScaledObject"] = scaled_object_manifest(name, args)
    if args.warm_pool_placeholders:
        out["PriorityClass"] = priority_class_manifest(name)
        out["PlaceholderDeployment"] = placeholder_manifest(name, args)
    return out
