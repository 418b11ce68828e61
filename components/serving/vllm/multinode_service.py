"""MultiNodeVllmService: one served model whose replica spans several nodes, as a LeaderWorkerSet. A sibling of
:class:`~components.serving.vllm.service.VllmService` (same args plus the layout), chosen when the fit check says the
model does not fit one node (:func:`components.serving.vllm.multinode.planned_layout` gives ``nodes`` > 1).

A sibling rather than a mode of VllmService: the workload kind (LeaderWorkerSet instead of Deployment), its
prerequisites (the LWS controller, EFA node groups) and the scale target all differ, and VllmService's objects and
messages stay exactly as they are for the single-node case.

Creates (in the service's namespace, named after the service): a ServiceAccount (IRSA role reading the weights'
prefix, as VllmService), the API-key Secret, with ``hf_token`` the Hugging Face token Secret, a LeaderWorkerSet
(groups of ``nodes`` pods, leader + workers), a ClusterIP Service and a headless replicas Service selecting leaders
only, a PodDisruptionBudget, two NetworkPolicies (leaders' API port from the clients and monitoring; every port
between the set's own pods), a ServiceMonitor and a KEDA ScaledObject on the LeaderWorkerSet's scale subresource.
The rendering, launch mode, restart and startup policies, EFA/NCCL settings and security are described in
:mod:`components.serving.vllm.multinode`.

Defaults: the fit check's layout (the fewest nodes that fit, TP = GPUs per node, PP = nodes), KEDA scaling of groups
(replicas = groups) within ``autoscaling``, restart policy RecreateGroupAfterStart, EFA on every pod, NCCL_DEBUG=INFO,
otherwise VllmService's defaults (probes, drain, caches, API key). Security: VllmService's pod security plus only the
the EFA nodes' locked-memory limit instead of
an added capability, and the group fenced by NetworkPolicies (:mod:`components.serving.vllm.multinode`).

Needs: the LWS controller (:class:`components.serving.lws.LeaderWorkerSetController`; pass its ``release`` in
``after``), an EFA node group of the instance type (``GpuNodeGroupArgs`` with EFA: a cluster placement group in one
AZ, the security group open within itself) and the EFA device plugin on it. Cost: ``nodes`` accelerator nodes per
replica (2 x p5.48xlarge for a 405B BF16 model); quotas: EC2 "Running On-Demand P instances" vCPUs (192 per
p5.48xlarge).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.base import TYPE_PREFIX
from components.foundation.eks_cluster import with_cluster_provider
from components.serving.vllm.args import PORT
from components.serving.vllm.fit import FitReport, Layout
from components.serving.vllm.manifests import served_name
from components.serving.vllm.multinode import MultiNodeVllmServiceArgs, render_multinode_manifests
from components.serving.vllm.service import front_objects, identity_and_secrets


class MultiNodeVllmService(pulumi.ComponentResource):
    """One served model across several nodes. See the module docstring."""

    leader_worker_set: k8s.apiextensions.CustomResource
    """The LeaderWorkerSet (KEDA owns its replica count: the number of groups)."""
    service: k8s.core.v1.Service
    """ClusterIP Service on port 8000, selecting the leaders."""
    scaled_object: k8s.apiextensions.CustomResource | None
    """KEDA ScaledObject (None without keda)."""
    replicas_dns: str | None
    """DNS name of the headless Service listing the ready leaders (None with ``replicas_service`` off)."""
    service_url: str
    """In-cluster base URL, ``http://<name>.<namespace>.svc.cluster.local:8000`` (OpenAI API under ``/v1``)."""
    served_model_name: str
    """The ``model`` clients send."""
    namespace: str
    """Kubernetes namespace of the group's workloads."""
    api_key: pulumi.Output[str] | None
    """The API key (secret Output). None when ``api_key`` is off."""
    api_key_secret_name: str | None
    """Secret (in ``namespace``) holding the key under ``api-key``."""
    layout: Layout
    """Nodes, tensor and pipeline parallel sizes of one replica."""
    fit: FitReport
    """The fit check's numbers for the layout."""
    manifests: dict[str, dict[str, Any]]
    """The rendered objects."""

    def __init__(self, name: str, args: MultiNodeVllmServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}MultiNodeVllmService", name, None, with_cluster_provider(opts, args.cluster))
        self.namespace = args.namespace
        self.served_model_name = served_name(name, args)
        self.service_url = f"http://{name}.{args.namespace}.svc.cluster.local:{PORT}"
        self.layout = args.layout()
        self.fit = args.fit()
        for w in self.fit.warnings:
            pulumi.log.warn(f"MultiNodeVllmService {name}: {w}", resource=self)
        self.manifests = m = render_multinode_manifests(name, args)

        deps, self.api_key, self.api_key_secret_name = identity_and_secrets(self, name, args)
        deps = [*deps, *args.after]

        lws = m["LeaderWorkerSet"]
        self.leader_worker_set = k8s.apiextensions.CustomResource(
            f"{name}-lws", api_version=lws["apiVersion"], kind=lws["kind"], metadata=lws["metadata"],
            spec=lws["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        self.service, self.replicas_dns, self.scaled_object = front_objects(
            self, name, args, m, workload=self.leader_worker_set,
            extra_policies=(("GroupNetworkPolicy", "group-netpol"),))

        self.register_outputs({"service_url": self.service_url, "served_model_name": self.served_model_name})
