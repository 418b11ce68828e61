"""Multi-node vLLM: one replica across several nodes as a LeaderWorkerSet group. Args and pure rendering, no Pulumi.

A model that does not fit one node (a 405B model in BF16 on p5.48xlarge) is served by a group of ``nodes`` pods, one
per node, each taking every GPU of its node: tensor parallelism inside a node (NVLink), pipeline parallelism across
nodes (EFA), the vLLM docs' rule ``TP = GPUs per node, PP = nodes`` (vLLM ``docs/serving/parallelism_scaling.md``).
The layout comes from :func:`components.serving.vllm.fit.plan_layout` unless ``nodes`` is given.

Launch mode: vLLM's native multi-node flags, not Ray. The pinned engine's ``vllm serve`` parser (0.31.0, checked
with tests/kit/vllm.py) has ``--nnodes``, ``--node-rank``, ``--master-addr``, ``--master-port`` and ``--headless``:
the leader (node rank 0) runs the API server, each worker runs ``--headless`` with its rank from
``LWS_WORKER_INDEX`` and the leader's address from ``LWS_LEADER_ADDRESS`` (both injected by LWS). Why not Ray: no
Ray head/GCS ports and dashboard to open and secure, no dependence on the example script
``examples/online_serving/multi-node-serving.sh`` being present in the image, and one process model on every
pod; the Ray path is what older AWS examples use (vLLM 0.8.x had no native multi-node flags).

LeaderWorkerSet (``leaderworkerset.x-k8s.io/v1``, LWS v0.10.0 field names):

- ``leaderWorkerTemplate.size`` = nodes; leader and worker templates come from one pod template
  (:func:`components.serving.vllm.manifests.pod_template`) and differ only in the worker's ``--headless`` flag
  and in the probes (readiness, startup and liveness on the leader only: a headless worker serves no HTTP);
- ``restartPolicy`` ``RecreateGroupAfterStart`` by default: like ``RecreateGroupOnPodRestart`` (a group whose pod
  restarts is recreated whole, since NCCL ranks cannot rejoin) but only once every pod of the group has started,
  so a group does not recreate itself in a loop while a large image pulls (kubernetes-sigs/lws PR 725; an enum
  value since v0.9.0);
- ``startupPolicy`` ``LeaderCreated``: workers start with the leader; ``LeaderReady`` would deadlock, since the
  leader only becomes ready once the workers have joined;
- the Service (and the headless replicas Service) select leaders only (``leaderworkerset.sigs.k8s.io/worker-index:
  "0"``); the KEDA ScaledObject targets the LeaderWorkerSet's scale subresource (replicas = groups).

EFA and NCCL: every pod (leader and workers) requests the node's EFA interfaces (``vpc.amazonaws.com/efa``, count
from the accelerator catalogue) and a memory-backed ``/dev/shm``, with the libfabric/NCCL environment of
:func:`efa_env`. No ``IPC_LOCK`` capability, although the vLLM docs' GPUDirect RDMA pod spec adds it: the engine runs
as a non-root user, whose process never gets added capabilities in its effective set (kubernetes/kubernetes#56374),
and the serving namespace enforces the restricted Pod Security Standard, which admits no added capability but
``NET_BIND_SERVICE`` (a pod with IPC_LOCK would be refused). What registering EFA memory needs is a large
locked-memory limit: the EFA nodes give their containers one (AL2023: nodeadm ``baseRuntimeSpec``,
:data:`components.foundation._gpu.MEMLOCK_BYTES`; Bottlerocket: set by the OS when it finds an EFA device).

Security: as :class:`~components.serving.vllm.service.VllmService` (non-root, no privilege escalation, all
capabilities dropped, RuntimeDefault seccomp, no service-account token: the restricted standard) plus two
NetworkPolicies: the group's pods accept any port from pods of the same LeaderWorkerSet only (the inter-node traffic
is unencrypted and, per the vLLM docs, "can be exploited to execute arbitrary code"), and the leader's API port
accepts the client namespaces (the gateway) and monitoring only. The EFA node group's security group allows all
traffic within itself (components/foundation/gpu_node_group.py).

Cost: ``nodes`` whole accelerator nodes per replica (2 x p5.48xlarge for a 405B BF16 model), each idle while any
group member is missing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from components.catalog.accelerators import EFA_RESOURCE
from components.serving.vllm.args import PORT, VllmServiceArgs, fit_input
from components.serving.vllm.fit import MAX_NODES, FitInput, FitReport, Layout, check_fit, plan_layout
from components.serving.vllm.manifests import (annotations, hf_token_secret_name, object_meta, pdb_manifest,
                                               pod_template, replicas_service_manifest, selector_labels,
                                               service_manifest, service_monitor_manifest, vllm_args)
from components.serving.vllm.manifests import scaled_object_manifest as single_node_scaled_object
from components.serving.vllm.manifests import triggers as single_node_triggers
from problems import Problem

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"
LWS_KIND = "LeaderWorkerSet"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
"""Label LWS puts on every pod of a group: "0" on the leader (lws ``api/leaderworkerset/v1``, v0.10.0)."""
LEADER_SELECTOR = {WORKER_INDEX_LABEL: "0"}

RestartPolicy = Literal["RecreateGroupAfterStart", "RecreateGroupOnPodRestart"]

GPUDIRECT_RDMA_FAMILIES = frozenset({"p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6e-gb200"})
"""Instance families whose EFA supports GPUDirect RDMA (RDMA read), where ``FI_EFA_USE_DEVICE_RDMA=1`` applies.
Source: Amazon EC2 user guide, "Elastic Fabric Adapter - supported instance types" (RDMA read column) and "Get started
with EFA and NCCL" (p4d/p5 examples set FI_EFA_USE_DEVICE_RDMA=1), checked 2026-12; g5/g6/g6e EFA has no GPUDirect
RDMA (eks-blueprints multi-node-vllm on g6e sets NCCL_NET_GDR_LEVEL=0)."""


class MultiNodeVllmServiceArgs(VllmServiceArgs):
    """Arguments of :class:`~components.serving.vllm.multinode_service.MultiNodeVllmService`: those of
    :class:`~components.serving.vllm.args.VllmServiceArgs` plus the group layout and the LWS policies."""

    nodes: int | None = Field(default=None, ge=2, le=MAX_NODES)
    """Nodes per replica. Default: chosen by the fit check (the fewest nodes that fit, with TP = GPUs per node and
    PP = nodes). Given: ``model.tensor_parallel_size`` x ``pipeline_parallel_size`` must fill them."""
    pipeline_parallel_size: int | None = Field(default=None, ge=1, le=64)
    """Pipeline stages, with ``nodes`` given. Default: ``nodes``."""
    restart_policy: RestartPolicy = "RecreateGroupAfterStart"
    """LWS group restart policy. Default: RecreateGroupAfterStart (no recreate loop while the image pulls)."""
    efa: bool = True
    """Request the node's EFA interfaces on every pod and set the libfabric/NCCL environment. Default: on (the
    instance type must support EFA)."""
    nccl_debug: str = Field(default="INFO", pattern=r"^(VERSION|WARN|INFO|TRACE)$")
    """``NCCL_DEBUG``: INFO logs the transport at start (``via NET/Libfabric`` good, ``via NET/Socket`` = TCP
    fallback). Default: INFO."""

    def planned(self) -> tuple[FitInput, FitReport]:
        """The fit check's input for the group layout and its report."""
        fi = fit_input(self)
        if self.nodes is None:
            return plan_layout(fi)
        pp = self.pipeline_parallel_size or self.nodes
        chosen = replace(fi, nodes=self.nodes, pipeline_parallel_size=pp)
        return chosen, check_fit(chosen)

    def layout(self) -> Layout:
        """Nodes, tensor and pipeline parallel sizes of one replica."""
        return self.planned()[0].layout

    def fit(self) -> FitReport:
        return self.planned()[1]

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        spec = self.placement.accelerator
        if self.pipeline_parallel_size is not None and self.nodes is None:
            out.append(Problem("pipeline_parallel_size", self.pipeline_parallel_size, "only with nodes given",
                               ("nodes",)))
        if spec.shards_over_cores:
            out.append(Problem("placement", spec.instance_type,
                               "an NVIDIA GPU instance type (multi-node Neuron serving is not supported)"))
        if self.gpu_sharing != "dedicated":
            out.append(Problem("gpu_sharing", self.gpu_sharing, "dedicated (a group takes whole nodes)"))
        if self.efa and not spec.efa_supported:
            out.append(Problem("efa", True, f"an EFA-capable instance type, not {spec.instance_type} (or efa off)"))
        if self.warm_pool_placeholders:
            out.append(Problem("warm_pool_placeholders", self.warm_pool_placeholders,
                               "0 (placeholders hold single-node replicas)"))
        if out:
            return out
        found = super().problems()
        if not found and self.nodes is None and not self.layout().multi_node:
            found.append(Problem("nodes", None, f"a model that does not fit one {spec.instance_type}: "
                                 f"{self.model.model_id} fits one node, serve it with VllmService"))
        fit = self.fit()
        n = len(fit.errors)
        if not n or len(found) < n:
            return found
        # VllmServiceArgs.problems ends with one problem per fit error, in order: point the layout's own errors at
        # the setting they are about
        pp = self.layout().pipeline_parallel_size
        head, tail = found[:-n], found[-n:]
        return head + [Problem("pipeline_parallel_size", pp, p.expected, ("nodes", "model.tensor_parallel_size"))
                       if i in fit.pipeline_errors else p for i, p in enumerate(tail)]


def planned_layout(args: VllmServiceArgs) -> Layout:
    """The layout the fit check picks for single-node args: ``nodes`` 1 when the model fits one node (serve it with
    VllmService), else the fewest nodes that fit (serve it with MultiNodeVllmService)."""
    return plan_layout(fit_input(args))[0].layout


# --- group pieces ---

def layout_args(args: MultiNodeVllmServiceArgs) -> MultiNodeVllmServiceArgs:
    """``args`` with ``model.tensor_parallel_size`` set to the layout's (what one pod of the group takes), unvalidated:
    the pod template, resources and /dev/shm then size one pod to its TP shards."""
    tp = args.layout().tensor_parallel_size
    return args.model_copy(update={"model": args.model.model_copy(update={"tensor_parallel_size": tp})})


def group_args(name: str, args: MultiNodeVllmServiceArgs, *, worker: bool) -> list[str]:
    """``vllm serve`` arguments of a group member: the single-node arguments at the layout's TP, plus
    ``--pipeline-parallel-size`` and the native multi-node flags; workers add ``--headless``. ``$(VAR)`` is expanded
    by Kubernetes from the LWS-injected environment."""
    lay = args.layout()
    out = vllm_args(name, layout_args(args)) + [
        "--pipeline-parallel-size", str(lay.pipeline_parallel_size),
        "--nnodes", str(lay.nodes),
        "--node-rank", "$(LWS_WORKER_INDEX)",
        "--master-addr", "$(LWS_LEADER_ADDRESS)",
    ]
    return out + ["--headless"] if worker else out


def efa_env(instance_type: str, nccl_debug: str = "INFO") -> list[dict[str, str]]:
    """libfabric/NCCL environment for NCCL over EFA (through the aws-ofi-nccl plugin in the image).

    Sources: Amazon EC2 user guide "Get started with EFA and NCCL for ML workloads" (FI_PROVIDER=efa,
    FI_EFA_USE_DEVICE_RDMA=1 on p4d/p5, NCCL_DEBUG=INFO to see the transport); aws-ofi-nccl README (FI_EFA_FORK_SAFE=1
    when the process forks after registering memory, as vLLM's worker processes do); checked 2026-12.
    """
    env = [{"name": "FI_PROVIDER", "value": "efa"},
           {"name": "FI_EFA_FORK_SAFE", "value": "1"}]
    if instance_type.split(".", 1)[0] in GPUDIRECT_RDMA_FAMILIES:
        env.append({"name": "FI_EFA_USE_DEVICE_RDMA", "value": "1"})
    else:
        # no GPUDirect RDMA on this EFA: NCCL must stage through host memory (eks-blueprints multi-node-vllm, g6e)
        env.append({"name": "NCCL_NET_GDR_LEVEL", "value": "0"})
    env.append({"name": "NCCL_DEBUG", "value": nccl_debug})
    return env


def member_template(name: str, args: MultiNodeVllmServiceArgs, *, worker: bool, image: Any, service_account: str,
                    api_key_secret: str | None, hf_token_secret: str | None) -> dict[str, Any]:
    """The pod template of a leader or a worker: the single-node template at the layout's TP, with the group's
    arguments, EFA, the node's private address as ``VLLM_HOST_IP`` and no zone spreading (a group stays in
    the EFA node group's single AZ and placement group)."""
    tpl = pod_template(name, layout_args(args), image=image, service_account=service_account,
                       api_key_secret=api_key_secret, hf_token_secret=hf_token_secret)
    spec = tpl["spec"]
    spec.pop("topologySpreadConstraints", None)
    c = spec["containers"][0]
    c["args"] = group_args(name, args, worker=worker)
    # vLLM docs: bind the inter-node traffic to the private network address
    c["env"] = [*c["env"], {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    if args.efa:
        spec_ = args.placement.accelerator
        count = str(spec_.efa_interfaces)
        c["resources"] = {"requests": {**c["resources"]["requests"], EFA_RESOURCE: count},
                          "limits": {**c["resources"]["limits"], EFA_RESOURCE: count}}
        c["env"] = [*c["env"], *efa_env(spec_.instance_type, args.nccl_debug)]
    if worker:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            c.pop(probe)
        c.pop("ports")
    tpl["metadata"]["labels"] = {**tpl["metadata"]["labels"],
                                 "genai-scale/lws-role": "worker" if worker else "leader"}
    return tpl


def group_annotations(args: MultiNodeVllmServiceArgs) -> dict[str, str]:
    """The single-node fit annotations plus the layout, so the policy pack can re-check the group's fit."""
    lay = args.layout()
    return {**annotations(layout_args(args)), "genai-scale/nodes": str(lay.nodes),
            "genai-scale/tensor-parallel-size": str(lay.tensor_parallel_size),
            "genai-scale/pipeline-parallel-size": str(lay.pipeline_parallel_size)}


# --- objects ---

def leader_worker_set_manifest(name: str, args: MultiNodeVllmServiceArgs, *, image: Any, service_account: str,
                               api_key_secret: str | None, hf_token_secret: str | None = None) -> dict[str, Any]:
    member = {"image": image, "service_account": service_account, "api_key_secret": api_key_secret,
              "hf_token_secret": hf_token_secret}
    return {
        "apiVersion": LWS_API_VERSION, "kind": LWS_KIND,
        "metadata": {**object_meta(name, args), "annotations": group_annotations(args)},
        "spec": {
            "replicas": args.autoscaling.min_replicas,
            "startupPolicy": "LeaderCreated",
            # a new group must be ready before an old one goes (as VllmService: surge by one)
            "rolloutStrategy": {"type": "RollingUpdate",
                                "rollingUpdateConfiguration": {"maxUnavailable": 0, "maxSurge": 1}},
            "leaderWorkerTemplate": {
                "size": args.layout().nodes,
                "restartPolicy": args.restart_policy,
                "leaderTemplate": member_template(name, args, worker=False, **member),
                "workerTemplate": member_template(name, args, worker=True, **member),
            },
        },
    }


def leader_service_manifest(name: str, args: MultiNodeVllmServiceArgs) -> dict[str, Any]:
    out = service_manifest(name, args)
    out["spec"]["selector"] = {**out["spec"]["selector"], **LEADER_SELECTOR}
    return out


def leader_replicas_service_manifest(name: str, args: MultiNodeVllmServiceArgs) -> dict[str, Any]:
    out = replicas_service_manifest(name, args)
    out["spec"]["selector"] = {**out["spec"]["selector"], **LEADER_SELECTOR}
    return out


def group_network_policy_manifest(name: str, args: MultiNodeVllmServiceArgs) -> dict[str, Any]:
    """Every pod of the set accepts any port from pods of the same LeaderWorkerSet (NCCL, the multi-node control
    channel), and nothing else through this policy."""
    meta = object_meta(name, args)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {**meta, "name": f"{name}-group"},
            "spec": {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {
                         **selector_labels(name), LWS_NAME_LABEL: name}}}]}]}}


def leader_network_policy_manifest(name: str, args: MultiNodeVllmServiceArgs) -> dict[str, Any]:
    """The leaders' API port accepts the client namespaces (the gateway) and monitoring only."""
    namespaces = sorted({args.monitoring_namespace, *args.client_namespaces})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": object_meta(name, args),
            "spec": {"podSelector": {"matchLabels": {**selector_labels(name), **LEADER_SELECTOR}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                         {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}],
                         "ports": [{"port": PORT, "protocol": "TCP"}]}]}}


def group_pods_pattern(name: str) -> str:
    """Pod names of the set: leaders ``<name>-<group>``, workers ``<name>-<group>-<worker>``."""
    return f"{name}-[0-9]+(-[0-9]+)?"


def groups_query(namespace: str, name: str) -> str:
    """Running groups: the leader pods (kube-state-metrics ``kube_pod_info``; LWS has no replicas series)."""
    return f'count(kube_pod_info{{namespace="{namespace}",pod=~"{name}-[0-9]+"}})'


def gpu_util_query(namespace: str, name: str, metric: str, window: str = "5m") -> str:
    pods = group_pods_pattern(name)
    return (f'avg(avg_over_time({metric}{{exported_namespace="{namespace}",exported_pod=~"{pods}"}}[{window}]) '
            f'or avg_over_time({metric}{{namespace="{namespace}",pod=~"{pods}"}}[{window}])) > 0')


def triggers(name: str, args: MultiNodeVllmServiceArgs) -> list[dict[str, Any]]:
    """VllmService's triggers, with the banded ones counting groups (leader pods) instead of Deployment replicas; the
    ``cron`` floors count groups too."""
    return single_node_triggers(name, args, replicas=groups_query(args.namespace, name), utilization=gpu_util_query)


def scaled_object_manifest(name: str, args: MultiNodeVllmServiceArgs) -> dict[str, Any]:
    """KEDA ScaledObject on the LeaderWorkerSet's scale subresource (replicas = groups)."""
    return single_node_scaled_object(name, args, target={"apiVersion": LWS_API_VERSION, "kind": LWS_KIND,
                                                         "name": name}, trigger_list=triggers(name, args))


def render_multinode_manifests(name: str, args: MultiNodeVllmServiceArgs, *,
                               image: Any | None = None) -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of the multi-node service, by kind."""
    secret = f"{name}-api-key" if args.api_key else None
    out = {
        "LeaderWorkerSet": leader_worker_set_manifest(
            name, args, image=args.image if image is None else image, service_account=name, api_key_secret=secret,
            hf_token_secret=hf_token_secret_name(name) if args.hf_token is not None else None),
        "Service": leader_service_manifest(name, args),
        **({"ReplicasService": leader_replicas_service_manifest(name, args)} if args.replicas_service else {}),
        "PodDisruptionBudget": pdb_manifest(name, args),
        "NetworkPolicy": leader_network_policy_manifest(name, args),
        "GroupNetworkPolicy": group_network_policy_manifest(name, args),
        "ServiceMonitor": service_monitor_manifest(name, args),
    }
    if args.keda:
        out["ScaledObject"] = scaled_object_manifest(name, args)
    return out
