"""ModelPool: many base models and LoRA adapters on one node group's GPUs, divided by a policy.

How a pool divides its GPUs, per ``policy`` (and why):

- ``dedicated``: one engine per model per replica, each on whole GPU(s) of its own, no sharing. For a single large or
  latency-critical model: nothing else competes for its memory or compute and nothing has to wake before a request.
  Rendered as one :class:`components.serving.vllm.service.VllmService` per model (``<pool>-<model>``): the pool is a
  convenience over dedicated engines.
- ``mig:<config>`` (``mig:all-1g.10gb``, ``mig:all-3g.40gb``, ``mig:all-balanced``): the GPU operator's MIG manager splits
  the node group's GPUs (node label ``nvidia.com/mig.config=<config>``; the node group must carry that ``migConfig``);
  each model is an always-hot engine on one MIG slice, the smallest slice of the configuration it fits (hardware
  memory and fault isolation). For many small models with steady traffic.
- ``time-slicing:<n>``: the device plugin advertises each GPU n times (the node group's ``timeSlicingReplicas: n``);
  each model is an always-hot engine on one share with ``--gpu-memory-utilization`` = 0.9 / n. There is no memory
  isolation: vLLM's fraction is the only guard. Dev/test and cost-optimised many-small-models.
- ``dynamic``: every replica is ONE pod running one vLLM engine container per base model (port 8000 + i, in the order
  the models are declared), all sharing the replica's GPU through time-slicing of the node group (shares = engines
  per GPU, one GPU per node, so one replica takes a whole node and no other replica's engines share its GPU). Each
  engine runs with ``--enable-sleep-mode`` and ``--gpu-memory-utilization`` = 0.9 / ``hot_engines_per_replica``, so
  any ``hot_engines_per_replica`` engines can be awake at once while the rest sleep (level 1: weights in host RAM,
  wake in seconds; level 2: discarded, wake by reloading). Engines start one at a time and go to sleep once ready (the
  start gate, ``serving/vllm/pool_gate.py``, a file lock on a shared emptyDir), so engines beyond the hot slots never
  hold GPU memory together. A base model with adapters runs multi-LoRA (``--enable-lora --max-loras --max-lora-rank
  --max-cpu-loras``); the gateway's pool controller loads adapters at runtime (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``)
  and sleeps/wakes engines (``VLLM_SERVER_DEV_MODE=1``). For variable traffic per model.

Creates, for ``dynamic``: a ServiceAccount (IRSA role reading only the pool's prefixes of the models bucket: base
models and adapters), a Secret with a random API key (every engine reads it as ``VLLM_API_KEY``), the Deployment, a
headless Service (``clusterIP: None``: its DNS name resolves to every ready replica, so the gateway addresses each
replica and engine port itself), a NetworkPolicy, a PodDisruptionBudget, a ServiceMonitor and a KEDA ScaledObject
(on the gateway's ``gateway_pool_held_requests`` and the engines' ``vllm:num_requests_waiting``). For the other
policies: one VllmService per model (its own role, key, Deployment, Service, ...).

Defaults: ``dynamic``, 1-2 replicas, one hot engine per replica, sleep level 1, 4 adapters per batch (rank <= 16,
16 cached in host RAM), weights from the models bucket, gateway hold 60 s and load timeout 300 s, LRU eviction.
Every model must fit its share of the GPU with its KV cache (:mod:`components.serving.vllm.fit`), and for level-1
sleep the sleeping engines' weights must fit the node's RAM; :meth:`ModelPoolArgs.problems` lists every problem.

Security: the same pod security as VllmService (non-root, all capabilities dropped, no privilege escalation,
RuntimeDefault seccomp, read-only root filesystem, no service-account token, API key only through a Secret). The
admin endpoints the dynamic policy turns on (sleep, wake-up, adapter loading) are reachable only from the gateway's
pods and Prometheus's namespace (NetworkPolicy); the Service is headless ClusterIP, never LoadBalancer, NodePort or
Ingress (the policy pack's ``vllm-admin-endpoints-private`` rule checks it).

Cost drivers: the node group's GPU nodes (dynamic: one node per replica however many models it holds; the other
policies: one GPU, slice or share per model replica), host RAM for level-1 sleep, node-local disk for every model's
weights. Quotas: EC2 "Running On-Demand G and VT / P instances" vCPU quotas for the node group's instance type.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.base import TYPE_PREFIX
from components.foundation.eks_cluster import from_cluster, with_cluster_provider
from components.foundation.irsa import irsa_role
from components.serving.pools import manifests as m
from components.serving.pools.args import ModelPoolArgs
from components.serving.pools.strategy import recommend
from components.serving.vllm.service import VllmService
from components.objects import body, custom_resource


class ModelPool(pulumi.ComponentResource):
    """Models and adapters on a node group's GPUs. See the module docstring for the policies, what it creates,
    defaults, security and cost."""

    policy: str
    """The pool's policy as configured (``dynamic``, ``mig:all-1g.10gb``, ...)."""
    namespace: str
    """Kubernetes namespace of the pool's workloads."""
    manifests: dict[str, dict[str, Any]]
    """The rendered objects, keyed ``<Kind>/<name>`` (:func:`components.serving.pools.manifests.render_pool`)."""
    service_dns: str | None
    """dynamic: the headless Service's DNS name (A records = ready replicas); None for the other policies."""
    gateway_block: dict[str, Any] | None
    """dynamic: the gateway's ``pools.<name>`` block; None for the other policies (their engines are upstreams)."""
    services: dict[str, VllmService]
    """dedicated/mig/time-slicing: the VllmService of each model, by model name; empty for dynamic."""
    api_key: pulumi.Output[str] | None
    """dynamic: the engines' API key (secret Output); None otherwise (each VllmService has its own)."""
    summary: dict[str, Any]
    """What the plan prints: policy, node group, replicas, models with their adapters, the workload's recommendation
    and a warning when the policy differs from it."""

    def __init__(self, name: str, args: ModelPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}ModelPool", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        self.policy, self.namespace = args.policy, args.namespace
        self.manifests = objects = m.render_pool(name, args)
        self.summary = pool_summary(name, args)
        for w in args.warnings():
            pulumi.log.warn(f"ModelPool {name}: {w}", resource=self)
        self.services, self.api_key, self.service_dns, self.gateway_block = {}, None, None, None

        if args.parsed_policy.kind != "dynamic":
            for model in args.models:
                self.services[model] = VllmService(m.engine_service_name(name, model), args.service_args(model),
                                                   opts=child)
            self.register_outputs({"policy": self.policy})
            return

        self.service_dns = m.service_dns(name, args)
        self.gateway_block = m.gateway_block(name, args, models_bucket=args.models_bucket)
        sa_meta = m.object_meta(name, args)
        if args.models_bucket:
            role = irsa_role(f"{name}-weights",
                             oidc_provider_arn=from_cluster(args.oidc_provider_arn, args.cluster, "oidc_provider_arn"),
                             oidc_issuer=from_cluster(args.oidc_issuer, args.cluster, "oidc_issuer"),
                             namespace=args.namespace, service_account=name, policy_document=m.weights_policy(args),
                             tags=args.tags, parent=self,
                             description=f"Model pool {name}: read its models' and adapters' weights from S3")
            sa_meta["annotations"] = {"eks.amazonaws.com/role-arn": role.arn}
        sa = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa_meta, automount_service_account_token=False,
                                        opts=child)
        deps: list[pulumi.Resource] = [sa]
        if args.api_key:
            key = random.RandomPassword(f"{name}-api-key", length=48, special=False, opts=child)
            self.api_key = pulumi.Output.secret(key.result)
            deps.append(k8s.core.v1.Secret(
                f"{name}-api-key", metadata={**m.object_meta(name, args), "name": m.api_key_secret_name(name)},
                type="Opaque", string_data={m.API_KEY_SECRET_KEY: self.api_key}, opts=child))
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", **body(objects[f"Deployment/{name}"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        k8s.core.v1.Service(f"{name}-service", **body(objects[f"Service/{name}"]), opts=child)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", **body(objects[f"PodDisruptionBudget/{name}"]), opts=child)
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", **body(objects[f"NetworkPolicy/{name}"]), opts=child)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        custom_resource(f"{name}-servicemonitor", objects[f"ServiceMonitor/{name}"], opts=after)
        if f"ScaledObject/{name}" in objects:
            custom_resource(f"{name}-scaledobject", objects[f"ScaledObject/{name}"],
                             opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment, *args.after]))
        self.register_outputs({"policy": self.policy, "service_dns": self.service_dns})


def pool_summary(name: str, args: ModelPoolArgs) -> dict[str, Any]:
    """Policy, node group, replicas, models (with adapters), and the workload's recommendation (with a warning when
    the policy differs)."""
    out: dict[str, Any] = {
        "policy": args.policy, "nodeGroup": args.placement.name,
        "replicas": {"min": args.min_replicas, "max": args.max_replicas},
        "models": {n: {"modelId": mm.model_id, "adapters": sorted(mm.adapters), "keepHot": mm.keep_hot}
                   for n, mm in args.models.items()},
        "adapters": sorted(a for mm in args.models.values() for a in mm.adapters),
        "recommendation": None, "warning": None,
    }
    if args.parsed_policy.kind == "dynamic":
        out["hotEnginesPerReplica"] = args.hot_engines_per_replica
        out["sleepLevel"] = args.sleep_level
    if args.workload is not None:
        rec = recommend(args.workload)
        out["recommendation"] = {"workload": rec.workload, "policy": rec.policy, "reason": rec.reason}
        warnings = args.warnings()
        out["warning"] = warnings[0] if warnings else None
    return out
