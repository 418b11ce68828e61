"""VllmService: one served model on the vLLM OpenAI-compatible server, on a GPU or Inferentia2 node group.

Creates (all in the service's namespace, named after the service): a ServiceAccount (with an IRSA role that may only
read the weights' S3 prefix), a Secret holding a random API key (vLLM reads it as ``VLLM_API_KEY``), with ``hf_token``
a Secret ``<name>-hf-token`` holding the Hugging Face token (vLLM reads it as ``HF_TOKEN``), a Deployment, a
ClusterIP Service, a headless Service ``<name>-replicas`` listing the ready pods one by one (for prefix-affinity
routing; ``replicas_service``), a PodDisruptionBudget, a NetworkPolicy, a Prometheus ServiceMonitor, a KEDA ScaledObject (with
HPA ``behavior``), and, when ``warm_pool_placeholders`` > 0, a PriorityClass below the serving pods plus a placeholder
Deployment of ``pause`` pods that hold accelerator nodes warm (a burst preempts them and is served in seconds, while the
cluster autoscaler brings a node up for the evicted placeholder).

Defaults: one replica (KEDA keeps 1-2), weights fetched from S3 at start, prefix caching on, 60 s drain on SIGTERM
(``--shutdown-timeout``) after a 15 s preStop delay, a 20-minute startup budget for image pull and model load.
The model must fit: :mod:`components.serving.vllm.fit` runs at construction and a model that does not fit the node
group's accelerators is an error naming the need and the capacity; far too much hardware is a warning.
On Neuron nodes, ``neuron_scheduler`` (the Neuron scheduler extension's ``my-scheduler``) is set as the pods'
``schedulerName``; a replica on more than one but not all of a node's devices requires it.
Give ``cluster=<EksCluster>`` (in the args) and the OIDC provider of the weights' IRSA role comes from it (explicit
inputs win), and its Kubernetes provider when ``opts`` names none.

Security: non-root user, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root
filesystem on the NVIDIA image (writable caches are emptyDirs), no service-account token mounted, API key from a
Secret (never an argument), the Hugging Face token likewise only through a Secret, ingress only from the listed client
namespaces and monitoring (vLLM's ``/metrics`` and ``/invocations`` are not behind its API key), IRSA limited to
``s3:GetObject``/``s3:ListBucket`` on the weights prefix.

Cost drivers: accelerator nodes (the replicas x tensor parallel size GPUs/NeuronCores, plus warm placeholders, which
keep a node running while idle), the node's ephemeral storage for the weights. Quotas: EC2 "Running On-Demand G and
VT / P / Inf instances" vCPU quotas for the node group's instance type.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.base import TYPE_PREFIX
from components.foundation.eks_cluster import from_cluster, with_cluster_provider
from components.foundation.irsa import irsa_role
from components.serving.vllm.args import PORT, VllmServiceArgs
from components.serving.vllm.fit import FitReport
from components.serving.vllm.manifests import (HF_TOKEN_KEY, hf_token_metadata, object_meta, render_manifests,
                                                replicas_service_name, served_name, weights_policy)
from components.objects import body, custom_resource

# --- component ---

class VllmService(pulumi.ComponentResource):
    """One served model on vLLM. See the module docstring for what it creates, defaults, security and cost."""

    deployment: k8s.apps.v1.Deployment
    """The serving Deployment (KEDA owns its replica count)."""
    service: k8s.core.v1.Service
    """ClusterIP Service on port 8000."""
    scaled_object: k8s.apiextensions.CustomResource | None
    """KEDA ScaledObject (None without keda)."""
    placeholders: k8s.apps.v1.Deployment | None
    """Warm-pool placeholder Deployment (None without placeholders)."""
    replicas_dns: str | None
    """DNS name of the headless Service listing the ready replicas one by one (None with ``replicas_service`` off).
    """
    service_url: str
    """In-cluster base URL, ``http://<name>.<namespace>.svc.cluster.local:8000`` (OpenAI API under ``/v1``)."""
    served_model_name: str
    """The ``model`` clients send."""
    namespace: str
    """Kubernetes namespace of the service's workloads."""
    api_key: pulumi.Output[str] | None
    """The API key (secret Output), for clients such as the gateway. None when ``api_key`` is off."""
    api_key_secret_name: str | None
    """Secret (in ``namespace``) holding the key under ``api-key``."""
    fit: FitReport
    """The fit check's numbers and warnings."""
    manifests: dict[str, dict[str, Any]]
    """The rendered objects (image left as given)."""

    def __init__(self, name: str, args: VllmServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}VllmService", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = args.namespace
        self.served_model_name = served_name(name, args)
        self.service_url = f"http://{name}.{args.namespace}.svc.cluster.local:{PORT}"
        self.fit = args.fit()
        for w in self.fit.warnings:
            pulumi.log.warn(f"VllmService {name}: {w}", resource=self)
        self.manifests = m = render_manifests(name, args)

        deps, self.api_key, self.api_key_secret_name = identity_and_secrets(self, name, args)

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", **body(m["Deployment"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        self.service, self.replicas_dns, self.scaled_object = front_objects(self, name, args, m,
                                                                            workload=self.deployment)
        self.placeholders = None
        if "PlaceholderDeployment" in m:
            pc = m["PriorityClass"]
            prio = k8s.scheduling.v1.PriorityClass(
                f"{name}-warm-pool", metadata=pc["metadata"], value=pc["value"], global_default=False,
                preemption_policy=pc["preemptionPolicy"], description=pc["description"], opts=child)
            self.placeholders = k8s.apps.v1.Deployment(
                f"{name}-warm", **body(m["PlaceholderDeployment"]),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[prio]))

        self.register_outputs({"service_url": self.service_url, "served_model_name": self.served_model_name})


def front_objects(owner: pulumi.Resource, name: str, args: VllmServiceArgs, m: dict[str, dict[str, Any]], *,
                  workload: pulumi.Resource, extra_policies: tuple[tuple[str, str], ...] = ()
                  ) -> tuple[k8s.core.v1.Service, str | None, k8s.apiextensions.CustomResource | None]:
    """What fronts a vLLM workload, created under ``owner`` from its rendered manifests ``m``: the Service, the
    headless replicas Service, the PodDisruptionBudget, the NetworkPolicy (then ``extra_policies``: (manifest key,
    name suffix) of more NetworkPolicies), the ServiceMonitor and the KEDA ScaledObject (after ``workload``). Returns
    (the Service, the replicas' DNS name or None, the ScaledObject or None). VllmService and MultiNodeVllmService
    share it."""
    child = pulumi.ResourceOptions(parent=owner)
    service = k8s.core.v1.Service(f"{name}-service", **body(m["Service"]), opts=child)
    replicas_dns = None
    if "ReplicasService" in m:
        k8s.core.v1.Service(f"{name}-replicas", **body(m["ReplicasService"]), opts=child)
        replicas_dns = f"{replicas_service_name(name)}.{args.namespace}.svc.cluster.local"
    k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", **body(m["PodDisruptionBudget"]), opts=child)
    k8s.networking.v1.NetworkPolicy(f"{name}-netpol", **body(m["NetworkPolicy"]), opts=child)
    for key, suffix in extra_policies:
        k8s.networking.v1.NetworkPolicy(f"{name}-{suffix}", **body(m[key]), opts=child)
    custom_resource(f"{name}-servicemonitor", m["ServiceMonitor"],
                     opts=pulumi.ResourceOptions(parent=owner, depends_on=list(args.after)))
    scaled_object = None
    if "ScaledObject" in m:
        scaled_object = custom_resource(f"{name}-scaledobject", m["ScaledObject"], opts=pulumi.ResourceOptions(
            parent=owner, depends_on=[workload, *args.after]))
    return service, replicas_dns, scaled_object


def identity_and_secrets(owner: pulumi.Resource, name: str, args: VllmServiceArgs
                         ) -> tuple[list[pulumi.Resource], pulumi.Output[str] | None, str | None]:
    """What a vLLM workload's pods run as and read, created under ``owner``: the ServiceAccount ``name`` (no token
    mounted) with an IRSA role that may only read the weights' prefix, the API key Secret ``<name>-api-key`` (a random
    48-character key, a Pulumi secret) and the Hugging Face token Secret. Returns (the resources the workload must
    wait for, the API key or None, its Secret's name or None). VllmService and MultiNodeVllmService share it."""
    child = pulumi.ResourceOptions(parent=owner)
    sa_meta = object_meta(name, args)
    if args.model.weights_uri:
        role = irsa_role(f"{name}-weights",
                         oidc_provider_arn=from_cluster(args.oidc_provider_arn, args.cluster, "oidc_provider_arn"),
                         oidc_issuer=from_cluster(args.oidc_issuer, args.cluster, "oidc_issuer"),
                         namespace=args.namespace, service_account=name,
                         policy_document=weights_policy(args.model.weights_uri, args.weights_kms_key_arn),
                         tags=args.tags, parent=owner, description=f"vLLM {name}: read model weights from S3")
        sa_meta["annotations"] = {"eks.amazonaws.com/role-arn": role.arn}
    sa = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa_meta, automount_service_account_token=False,
                                    opts=child)
    deps: list[pulumi.Resource] = [sa]
    api_key, secret_name = None, None
    if args.api_key:
        key = random.RandomPassword(f"{name}-api-key", length=48, special=False, opts=child)
        api_key = pulumi.Output.secret(key.result)
        secret_name = f"{name}-api-key"
        deps.append(k8s.core.v1.Secret(
            f"{name}-api-key", metadata={**object_meta(name, args), "name": secret_name},
            type="Opaque", string_data={"api-key": api_key}, opts=child))
    if args.hf_token is not None:
        deps.append(k8s.core.v1.Secret(
            f"{name}-hf-token", metadata=hf_token_metadata(object_meta(name, args), name, args.hf_token_source),
            type="Opaque", string_data={HF_TOKEN_KEY: pulumi.Output.secret(args.hf_token)}, opts=child))
    return deps, api_key, secret_name
