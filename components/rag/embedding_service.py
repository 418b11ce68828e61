"""EmbeddingService: Hugging Face text-embeddings-inference (TEI) on the cluster, the RAG data plane's embedder.

Creates (in ``namespace``, named after the service): the namespace (Pod Security ``restricted``; ``create_namespace``),
a ServiceAccount (with ``weights_uri`` an IRSA role that may only read that S3 prefix), with ``hf_token`` a Secret
``<name>-hf-token`` (TEI reads ``HF_TOKEN``), a Deployment, a ClusterIP Service (``http://<name>.<namespace>.svc:8080``,
OpenAI-compatible ``/v1/embeddings``), a PodDisruptionBudget, a NetworkPolicy, a Prometheus ServiceMonitor and a KEDA
ScaledObject.

Image: ``ghcr.io/huggingface/text-embeddings-inference:<arch>-1.9`` with the architecture of the node group's GPU (86
for A10G, 89 for L4/L40S, hopper for H100/H200, turing for T4, the untagged image for A100), or ``cpu-1.9`` without a
node group (the pods then run on the system nodes). An accelerator TEI has no image for (Inferentia2, Trainium) is an
error. Model: copied from ``weights_uri`` (the models bucket) by an ``aws s3 sync`` init container into an emptyDir,
or, without it, downloaded by TEI from the Hugging Face Hub.

Batching flags (TEI v1.9.3's defaults in brackets), each overridable: ``--max-batch-tokens`` [16,384] from the GPU's
memory (16,384 per 24 GB, doubling with each doubling: 32,768 on L40S, 65,536 on H100; 4,096 on CPU, where a batch is
compute bound early); ``--max-client-batch-size`` [32] = the gateway micro-batcher's batch (64), so one gateway batch
is one request; ``--max-concurrent-requests`` [512] = twice the tier's concurrent requests (``targets
.concurrentStreams``), at least 512. ``max_batch_tokens`` below the model's input length is an error (TEI would
truncate every longer input).

Autoscaling (KEDA): a Prometheus trigger on TEI's ``te_queue_size`` (requests waiting for a batch) per replica and,
when ``autoscaling.min_replicas`` is 0, the gateway's demand for the model (``gateway_embedding_requests_total``) and,
with ``wake_queue_url``, the ingestion queue's depth, which wake the service from zero where no pod exists to report
its queue (as a VllmService's gateway trigger does).

Defaults: one replica (1-2), 2 CPUs and 8 GiB per replica plus one GPU on a GPU node group, a 15-minute startup budget
(image pull and model load), 15 s preStop delay, the model ``BAAI/bge-base-en-v1.5`` from the Hub.

Security: non-root, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root
filesystem (model and /tmp on emptyDirs), no service-account token mounted; ingress only from ``client_namespaces``
(the gateway's and the ingestion workers'), the service's own namespace and monitoring; the S3 role reads the model
prefix only; the Hub token only through a Secret.

Cost drivers: the GPU (or CPU) node hours of the replicas (none while scaled to zero). Quotas: the EC2 vCPU quota of
the node group's instance family ("Running On-Demand G and VT instances", ...).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import from_cluster, with_cluster_provider
from components.foundation.irsa import irsa_role
from components.rag import _embedding
from components.serving.vllm.args import NodeGroupPlacement
from components.serving.vllm.manifests import weights_policy
from components.objects import body, custom_resource
from problems import Problem

NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
PORT = _embedding.PORT


class EmbeddingAutoscaling(BaseModel):
    """How KEDA scales the embedding service."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    min_replicas: int = Field(default=1, ge=0, le=1000)
    """Fewest replicas. 0 scales to zero when idle (the gateway's demand wakes it). Default: 1."""
    max_replicas: int = Field(default=2, ge=1, le=1000)
    """Most replicas. Default: 2."""
    queue_per_replica: int = Field(default=32, ge=1, le=100_000)
    """Target of ``te_queue_size`` (requests waiting for a batch) per replica. Default: 32 (half a gateway batch)."""
    scale_from_zero_rps: float = Field(default=1000, gt=0)
    """Gateway requests per second per replica of the wake-up trigger; any demand wakes one replica. Default: 1000."""
    polling_interval_seconds: int = Field(default=15, ge=5, le=600)
    """How often KEDA queries Prometheus. Default: 15."""
    cooldown_seconds: int = Field(default=600, ge=30, le=86_400)
    """Idle time before scaling to zero (min_replicas 0 only). Default: 600."""
    scale_down_stabilization_seconds: int = Field(default=300, ge=0, le=3600)
    """Window the HPA looks back before removing a replica. Default: 300."""


class EmbeddingServiceArgs(ArgsModel):
    """Arguments of :class:`EmbeddingService`."""

    model_id: str = Field(default="BAAI/bge-base-en-v1.5", min_length=1)
    """Hugging Face model id (the Hub source when ``weights_uri`` is unset). Default: BAAI/bge-base-en-v1.5 (768-d)."""
    served_model_name: str | None = None
    """The ``model`` clients send. Default: ``model_id``."""
    weights_uri: str | None = Field(default=None, pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
    """``s3://bucket/prefix`` of the model files (the models bucket). Default: none, TEI downloads from the Hub."""
    weights_kms_key_arn: str | None = None
    """KMS key of the weights' objects, when a customer managed key encrypts them. Default: none."""
    max_input_tokens: int = Field(default=512, ge=1, le=131_072)
    """The model's maximum input length in tokens (512 for BERT-style models). Default: 512."""
    placement: NodeGroupPlacement | None = None
    """The GPU node group (see :func:`~components.serving.vllm.args.placement_from_node_group`). Default: none, the
    CPU image on the system nodes."""
    cpu_node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Node selector of the CPU image (no ``placement``). Default: the system node group."""
    image: PulumiInput = None
    """Full image reference. Default: the pinned TEI image for the placement's architecture (or CPU)."""
    image_version: str = Field(default=versions.TEI.version, pattern=r"^\d+\.\d+(\.\d+)?$")
    """TEI version; the image tag carries its major.minor. Default: the pin (1.9.3)."""
    max_batch_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    """``--max-batch-tokens``. Default: derived from the GPU's memory (see the module docstring)."""
    max_client_batch_size: int = Field(default=_embedding.GATEWAY_MAX_BATCH, ge=1, le=4096)
    """``--max-client-batch-size``: inputs per request. Default: 64, the gateway micro-batcher's batch."""
    max_concurrent_requests: int | None = Field(default=None, ge=1, le=100_000)
    """``--max-concurrent-requests``. Default: derived from ``concurrency_target`` (at least 512)."""
    concurrency_target: int | None = Field(default=None, ge=1)
    """The tier's concurrent requests (``targets.concurrentStreams``). Default: none (TEI's 512)."""
    cpu: str = Field(default="2", pattern=r"^\d+(\.\d+)?m?$")
    """CPU request per replica. Default: 2."""
    memory_gib: float = Field(default=8.0, gt=0, le=2048)
    """Memory request and limit per replica in GiB. Default: 8."""
    model_volume_gib: int = Field(default=10, ge=1, le=1000)
    """Size limit of the emptyDir holding the model. Default: 10."""
    namespace: str = Field(default="genai-rag", pattern=NAMESPACE, max_length=63)
    """Kubernetes namespace. Default: genai-rag."""
    create_namespace: bool = True
    """Create ``namespace`` (Pod Security ``restricted``). Off: it exists. Default: on."""
    autoscaling: EmbeddingAutoscaling = Field(default_factory=EmbeddingAutoscaling)
    """KEDA scaling (replicas, queue target, wake-up). Default: 1-2 replicas."""
    keda: bool = True
    """Create the KEDA ScaledObject (KEDA must be installed). Default: on."""
    prometheus_url: PulumiInput = None
    """Prometheus the triggers query. Required with ``keda``."""
    gateway_model: str | None = None
    """The public model name the gateway serves this service under (label ``model`` of
    ``gateway_embedding_requests_total``, the wake-up trigger's demand). Default: ``served_model_name``."""
    wake_queue_url: PulumiInput = None
    """An SQS queue whose messages also wake the service from zero (the ingestion queue: its workers call the
    service directly). Default: none."""
    wake_queue_region: PulumiInput = None
    """Region of ``wake_queue_url``."""
    wake_queue_auth: str | None = None
    """Name prefix of the KEDA TriggerAuthentication ``<prefix>-aws`` in ``namespace`` that reads that queue (the
    Ingestion component's name)."""
    client_namespaces: list[str] = Field(default_factory=lambda: ["genai-gateway"])
    """Namespaces admitted to the port (the gateway's and the ingestion workers'). Default: genai-gateway."""
    monitoring_namespace: str = "monitoring"
    """Prometheus's namespace, admitted to scrape. Default: monitoring."""
    startup_timeout_seconds: int = Field(default=900, ge=60, le=7200)
    """Startup probe budget: image pull, model copy and load. Default: 900."""
    pre_stop_seconds: int = Field(default=15, ge=0, le=300)
    """preStop delay, so the Service stops routing before TEI stops. Default: 15."""
    hf_token: PulumiInput = None
    """Hugging Face token for gated models (a Pulumi secret), kept in a Secret. Default: none."""
    oidc_provider_arn: PulumiInput = None
    """OIDC provider of the IRSA role (``weights_uri``). Default: from ``cluster``."""
    oidc_issuer: PulumiInput = None
    """OIDC issuer URL of the IRSA role. Default: from ``cluster``."""
    cluster: PulumiInput = None
    """The EksCluster: OIDC inputs and the Kubernetes provider default from it. Default: none."""
    after: list[Any] = Field(default_factory=list)
    """Resources the Kubernetes children wait for (the namespace, the KEDA and Prometheus operator releases).
    Default: none."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags of the IAM role."""

    def architecture(self) -> str | None:
        return _embedding.architecture(self.placement.accelerator.accelerator if self.placement else None)

    def image_ref(self) -> Any:
        if self.image is not None:
            return self.image
        return _embedding.image(versions.TEI.repository, self.image_version, self.architecture() or "")

    def flags(self) -> dict[str, int]:
        """The batching flags, given or derived."""
        memory = self.placement.accelerator.memory_gib if self.placement else None
        return {"max_batch_tokens": self.max_batch_tokens or _embedding.derived_max_batch_tokens(memory),
                "max_client_batch_size": self.max_client_batch_size,
                "max_concurrent_requests": self.max_concurrent_requests
                or _embedding.derived_max_concurrent_requests(self.concurrency_target)}

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.placement is not None and self.architecture() is None:
            acc = self.placement.accelerator.accelerator
            out.append(Problem("placement", self.placement.name, f"a node group with a GPU TEI has an image for "
                               f"({', '.join(sorted(_embedding.TEI_ARCH))}), or none for the CPU image; its "
                               f"accelerator is {acc}"))
        batch = self.flags()["max_batch_tokens"]
        if batch < self.max_input_tokens:
            out.append(Problem("max_batch_tokens", batch, f">= max_input_tokens ({self.max_input_tokens}): TEI "
                               "truncates every longer input to the batch", ("max_input_tokens",)))
        a = self.autoscaling
        if a.min_replicas > a.max_replicas:
            out.append(Problem("autoscaling.min_replicas", a.min_replicas,
                               f"<= autoscaling.max_replicas ({a.max_replicas})", ("autoscaling.max_replicas",)))
        if a.min_replicas == 0 and not self.keda:
            out.append(Problem("autoscaling.min_replicas", 0, ">= 1 without keda (nothing would wake the service)",
                               ("keda",)))
        if self.wake_queue_url is not None and (self.wake_queue_auth is None or self.wake_queue_region is None):
            out.append(Problem("wake_queue_auth", self.wake_queue_auth, "given with wake_queue_region when "
                               "wake_queue_url is (KEDA reads the queue through that TriggerAuthentication)",
                               ("wake_queue_url", "wake_queue_region")))
        if self.keda and self.prometheus_url is None:
            out.append(Problem("prometheus_url", None, "a Prometheus URL: the KEDA triggers query it", ("keda",)))
        if self.weights_uri and self.cluster is None and (self.oidc_provider_arn is None or self.oidc_issuer is None):
            out.append(Problem("oidc_provider_arn", self.oidc_provider_arn, "given with oidc_issuer, or a cluster: "
                               "the model's S3 role needs them", ("weights_uri", "cluster", "oidc_issuer")))
        return out


class EmbeddingService(pulumi.ComponentResource):
    """TEI on the cluster. See the module docstring for what it creates, defaults, security and cost."""

    deployment: k8s.apps.v1.Deployment
    """The TEI Deployment (KEDA owns its replica count)."""
    service: k8s.core.v1.Service
    """ClusterIP Service on port 8080."""
    scaled_object: k8s.apiextensions.CustomResource | None
    """KEDA ScaledObject (None without keda)."""
    service_url: str
    """OpenAI-compatible base URL, ``http://<name>.<namespace>.svc:8080/v1`` (``POST /embeddings``)."""
    served_model_name: str
    """The ``model`` clients send."""
    image: Any
    """The image the pods run."""
    flags: dict[str, int]
    """The batching flags rendered (``max_batch_tokens``, ``max_client_batch_size``, ``max_concurrent_requests``)."""
    manifests: dict[str, dict[str, Any]]
    """The rendered Kubernetes objects by kind."""

    def __init__(self, name: str, args: EmbeddingServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}EmbeddingService", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        self.served_model_name = args.served_model_name or args.model_id
        self.service_url = f"http://{name}.{args.namespace}.svc:{PORT}/v1"
        self.image = args.image_ref()
        self.flags = args.flags()
        hf_secret = f"{name}-hf-token" if args.hf_token is not None else None
        self.manifests = m = _embedding.render(
            name, args, image_ref=self.image, service_account=name, hf_token_secret=hf_secret,
            sync_image=f"{versions.AWS_CLI_IMAGE.repository}:{versions.AWS_CLI_IMAGE.version}")

        deps: list[pulumi.Resource] = []
        if args.create_namespace:
            deps.append(k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.namespace, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}, opts=child))
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[*deps, *args.after])
        sa_meta = _embedding.meta(name, args.namespace)
        if args.weights_uri:
            role = irsa_role(f"{name}-weights",
                             oidc_provider_arn=from_cluster(args.oidc_provider_arn, args.cluster, "oidc_provider_arn"),
                             oidc_issuer=from_cluster(args.oidc_issuer, args.cluster, "oidc_issuer"),
                             namespace=args.namespace, service_account=name,
                             policy_document=weights_policy(args.weights_uri, args.weights_kms_key_arn),
                             tags=args.tags, parent=self, description=f"TEI {name}: read the model from S3")
            sa_meta["annotations"] = {"eks.amazonaws.com/role-arn": role.arn}
        deps.append(k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=sa_meta, automount_service_account_token=False,
                                               opts=after_ns))
        if hf_secret:
            deps.append(k8s.core.v1.Secret(
                hf_secret, metadata={**_embedding.meta(name, args.namespace), "name": hf_secret}, type="Opaque",
                string_data={_embedding.HF_TOKEN_KEY: pulumi.Output.secret(args.hf_token)}, opts=after_ns))
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", **body(m["Deployment"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        self.service = k8s.core.v1.Service(f"{name}-service", **body(m["Service"]), opts=after_ns)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", **body(m["PodDisruptionBudget"]), opts=after_ns)
        k8s.networking.v1.NetworkPolicy(f"{name}-netpol", **body(m["NetworkPolicy"]), opts=after_ns)
        custom_resource(f"{name}-servicemonitor", m["ServiceMonitor"],
                pulumi.ResourceOptions(parent=self, depends_on=[*deps[:1], *args.after]))
        self.scaled_object = None
        if "ScaledObject" in m:
            self.scaled_object = custom_resource(f"{name}-scaledobject", m["ScaledObject"],
                                         pulumi.ResourceOptions(parent=self, depends_on=[self.deployment, *args.after]))
        self.register_outputs({"service_url": self.service_url, "served_model_name": self.served_model_name})
