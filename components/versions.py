"""Every pinned version in one place: Helm charts, container images, engine versions.

Each entry carries where it was checked and when. Components take versions as args with these as defaults, and the
stack settings are derived from those args, so a stack overrides a version where the component takes it, e.g.
``genai-scale:gpuOperator.chartVersion``, ``genai-scale:clusterAutoscaler.imageTag``,
``genai-scale:alb.lbController.chartVersion`` (validated like every other key). There is no separate
``genai-scale:versions`` map: a version belongs to the component that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    """A pinned artefact: chart or image coordinates, version, and where/when it was checked."""

    name: str
    version: str
    repository: str = ""
    source: str = ""
    checked: str = ""


# --- foundation (EKS, node groups, operators, autoscaler) ---
KUBERNETES_VERSION = "1.35"
"""EKS Kubernetes minor version: released on EKS 2026-01-28, standard support until 2027-03-27 (endoflife.date/amazon-eks
and the EKS "Kubernetes versions" page, checked 2026-11-23)."""

EKS_ADDONS: dict[str, dict[str, str]] = {
    # add-on name -> Kubernetes minor -> add-on version. Seen pinned for 1.35 in public EKS configurations (2026);
    # confirm with `aws eks describe-addon-versions --kubernetes-version 1.35 --addon-name <name>` before upgrading.
    "vpc-cni": {"1.34": "v1.20.5-eksbuild.1", "1.35": "v1.21.1-eksbuild.3"},
    "coredns": {"1.34": "v1.12.4-eksbuild.1", "1.35": "v1.13.2-eksbuild.1"},
    "kube-proxy": {"1.34": "v1.34.1-eksbuild.2", "1.35": "v1.35.0-eksbuild.2"},
    "eks-pod-identity-agent": {"1.34": "v1.3.10-eksbuild.2", "1.35": "v1.3.10-eksbuild.3"},
    "aws-ebs-csi-driver": {"1.34": "v1.54.0-eksbuild.1", "1.35": "v1.62.0-eksbuild.1"},
    # metrics-server is an EKS *community* add-on (EKS user guide "Community add-ons" / "View resource usage with the
    # Kubernetes Metrics Server": add-on name metrics-server, namespace kube-system). v0.8.1-eksbuild.5 pinned for
    # 1.31-1.35 and v0.8.1-eksbuild.6 "in the compatibility list for K8s 1.35" in public EKS configurations
    # (string search, checked 2026-12-05).
    "metrics-server": {"1.34": "v0.8.1-eksbuild.5", "1.35": "v0.8.1-eksbuild.6"},
}

EFS_CSI_DRIVER_ADDON: dict[str, str] = {
    # Kubernetes minor -> aws-efs-csi-driver EKS add-on version, installed by SharedCacheFileSystem (not by EksCluster,
    # hence not in EKS_ADDONS). v3.3.0-eksbuild.1: "latest version" in zalando-incubator/kubernetes-on-aws PR 11666
    # (2026-07-15), the bump from v3.2.0-eksbuild.1 in ministryofjustice/modernisation-platform-environments PR 17347
    # (2026-06-24), and pinned beside aws-ebs-csi-driver v1.62.0-eksbuild.1 (our 1.35 pin) and kube-proxy
    # v1.36.0-eksbuild.7 in a public EKS configuration (string search, checked 2026-12-06): one build serves 1.34 to
    # 1.36. Confirm with `aws eks describe-addon-versions --addon-name aws-efs-csi-driver --kubernetes-version 1.35`.
    "1.34": "v3.3.0-eksbuild.1",
    "1.35": "v3.3.0-eksbuild.1",
}

GPU_OPERATOR = Pin("gpu-operator", "v26.7.1", "https://helm.ngc.nvidia.com/nvidia",
                   "NVIDIA GPU operator platform-support page (26.7.x supported) and the chart index "
                   "(gpu-operator-v26.7.1.tgz)", "2026-11-23")
NEURON_HELM_CHART = Pin("neuron-helm-chart", "1.3.0", "oci://public.ecr.aws/neuron",
                        "aws-neuron/neuron-helm-charts; version used by awslabs/ai-on-eks", "2026-11-23")
EFA_DEVICE_PLUGIN_CHART = Pin("aws-efa-k8s-device-plugin", "v0.5.30", "https://aws.github.io/eks-charts",
                              "aws/eks-charts stable/aws-efa-k8s-device-plugin/Chart.yaml at commit bfe91c4b "
                              "(2026-07-21; the chart has no tag) and the repository index (gh-pages, "
                              "aws-efa-k8s-device-plugin-v0.5.30.tgz created 2026-08-03), the newest version",
                              "2026-12-06")
EFA_DEVICE_PLUGIN_IMAGE = Pin("aws-efa-k8s-device-plugin", "v0.5.20",
                              "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin",
                              "values.yaml image.tag (and appVersion) of chart v0.5.30", "2026-12-06")
"""EFA Kubernetes device plugin (advertises ``vpc.amazonaws.com/efa``); its values are vendored in
tests/upstream/aws-efa-k8s-device-plugin/."""
CLUSTER_AUTOSCALER_CHART = Pin("cluster-autoscaler", "9.58.0", "https://kubernetes.github.io/autoscaler",
                               "kubernetes/autoscaler chart releases (cluster-autoscaler-chart-9.58.0, 2026-07)",
                               "2026-11-23")
KARPENTER_CHART = Pin("karpenter", "1.14.1", "oci://public.ecr.aws/karpenter",
                      "aws/karpenter-provider-aws tag v1.14.1 (bde00654, 2026-08-20), the newest 1.x release tag; "
                      "charts/karpenter and pkg/apis/crds (NodePool, EC2NodeClass, NodeClaim at karpenter.sh/v1 and "
                      "karpenter.k8s.aws/v1); controller IAM policies from the getting-started cloudformation.yaml",
                      "2026-12-06")
KARPENTER_CRD_CHART = "karpenter-crd"
"""The chart that installs only Karpenter's CRDs, published beside ``karpenter`` at the same version (same repository,
same tag): installed as its own release so a controller upgrade updates the CRDs and never deletes them."""
KUBE_SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler"
"""Image of the second kube-scheduler (``my-scheduler``) the Neuron chart runs when its scheduler extension is on."""
KUBE_SCHEDULER_IMAGE_TAGS: dict[str, str] = {
    # Kubernetes minor -> kube-scheduler tag; a scheduler must not be older than the control plane it serves (the
    # chart's own default, v1.28.5-eks-1-28-latest in neuron-helm-chart 1.0.0, is far behind 1.35). Source:
    # `kubeadm config images list` for v1.34.1 and v1.35.0 (registry.k8s.io/kube-scheduler), checked 2026-12-05.
    "1.34": "v1.34.1",
    "1.35": "v1.35.0",
}

CLUSTER_AUTOSCALER_IMAGE_TAGS: dict[str, str] = {
    # Kubernetes minor -> cluster-autoscaler image tag (registry.k8s.io/autoscaling/cluster-autoscaler); the
    # autoscaler's minor must match the cluster's. Source: kubernetes/k8s.io image promotions (1.32.5, 1.33.3,
    # 1.34.2) and kubernetes/autoscaler PR 9193 (1.35.0), checked 2026-11-23.
    "1.32": "v1.32.5",
    "1.33": "v1.33.3",
    "1.34": "v1.34.2",
    "1.35": "v1.35.0",
}

# --- edge and managed inference (ALB, LB controller, cache, SageMaker, Bedrock) ---
LB_CONTROLLER_CHART = Pin(
    "aws-load-balancer-controller", "3.5.0", repository="https://aws.github.io/eks-charts",
    source="kubernetes-sigs/aws-load-balancer-controller helm/aws-load-balancer-controller/Chart.yaml at tag v3.5.0 "
           "(cut 2026-08-03)", checked="2026-11")
LB_CONTROLLER_IMAGE = Pin(
    "aws-load-balancer-controller", "v3.5.0", repository="public.ecr.aws/eks/aws-load-balancer-controller",
    source="values.yaml image.tag of chart 3.5.0", checked="2026-11")
VALKEY_ENGINE = Pin(
    "valkey", "8.2", repository="elasticache",
    source="ElastiCache vector-search.html: vector search needs Valkey 8.2 on node-based clusters", checked="2026-11")
LMI_RELEASE = Pin(
    "djl-inference", "28", repository="763104351884.dkr.ecr.<region>.amazonaws.com/djl-inference",
    source="aws/deep-learning-containers docs/src/data/djl-inference/0.36-lmi28.0.0-gpu.yml (PR #6471, 2026-07-31); "
           "tag 0.36.0-lmi28.0.0-cu130, vLLM 0.26.0", checked="2026-11")
NEURON_VLLM_IMAGE = Pin(
    "huggingface-vllm-inference-neuronx", "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04",
    repository="763104351884.dkr.ecr.<region>.amazonaws.com/huggingface-vllm-inference-neuronx",
    source="AWS Neuron DLC tables; sagemaker-python-sdk image_uri_config/huggingface-vllm-neuronx.json (Regions)",
    checked="2026-11")

# --- serving (vLLM images, KEDA, monitoring) ---
VLLM = Pin(
    "vllm", "0.31.0", repository="docker.io/vllm/vllm-openai",
    source="PyPI vllm 0.31.0 (declares torch==2.13.0; its serve parser is what tests/serving parse arguments with); "
           "image tag v0.31.0 of vllm/vllm-openai is pulled by several public deployments (string search, 2026-11); "
           "v0.32/v0.33 tags were not confirmed", checked="2026-11")
"""vLLM engine version: the NVIDIA image tag is ``v<version>``; scripts/setup.d/30-vllm.sh installs this version's parser."""

VLLM_OPENAI_IMAGE = Pin(
    "vllm-openai", f"v{VLLM.version}", repository="docker.io/vllm/vllm-openai",
    source="vLLM docs/deployment/docker.md (official OpenAI-server image on Docker Hub)", checked="2026-11")
"""Base of serving/vllm/Dockerfile.nvidia (passed as the VLLM_BASE_IMAGE build argument)."""

VLLM_NEURON_DLC = Pin(
    "pytorch-inference-vllm-neuronx", "0.13.0-neuronx-py312-sdk2.28.0-ubuntu24.04",
    repository="public.ecr.aws/neuron/pytorch-inference-vllm-neuronx",
    source="AWS Neuron DLC (Neuron SDK 2.28.0, 2026-02-26; vLLM 0.13.0), tag seen in public EKS inf2 templates. "
           "(uncertain) the SDK 2.31+ vLLM DLCs document Trn2/Trn3 only, so Inferentia2 stays on this SDK 2.28 image",
    checked="2026-11")
"""Base of serving/vllm/Dockerfile.neuron. Its engine is vLLM 0.13.0: flags newer than that are not rendered for it."""

VLLM_NEURON_ENGINE_VERSION = "0.13.0"
"""vLLM version inside :data:`VLLM_NEURON_DLC` (the first part of its tag)."""

PAUSE_IMAGE = Pin(
    "pause", "3.10", repository="registry.k8s.io/pause",
    source="kubernetes/kubernetes build/pause (registry.k8s.io/pause:3.10, used by kubeadm 1.31+)", checked="2026-11")
"""Container of the warm-pool placeholder pods (does nothing; holds the accelerator)."""

KEDA_CHART = Pin(
    "keda", "2.21.1", repository="https://kedacore.github.io/charts",
    source="kedacore/charts release v2.21.1 (Chart 2.21.1, App 2.21.1)", checked="2026-11")

KUBE_PROMETHEUS_STACK_CHART = Pin(
    "kube-prometheus-stack", "82.4.3", repository="https://prometheus-community.github.io/helm-charts",
    source="vllm-project/production-stack helm/Chart.yaml dependency (commit a6c01db0, 2026-08-05)", checked="2026-11")

LWS_CHART = Pin(
    "lws", "0.10.0", repository="oci://registry.k8s.io/lws/charts",
    source="kubernetes-sigs/lws tag v0.10.0 (commit 2161f38f, 2026-08-11): site/content/en/docs/installation "
           "(`helm install lws oci://registry.k8s.io/lws/charts/lws --version=0.10.0 -n lws-system`), chart "
           "charts/lws (appVersion v0.10.0; CRDs under crds/ since v0.8.0)", checked="2026-12-06")
"""LeaderWorkerSet controller chart (multi-node serving); the CRD it ships is vendored in tests/upstream/lws/."""
LWS_IMAGE = Pin(
    "lws", "v0.10.0", repository="registry.k8s.io/lws/lws",
    source="kubernetes-sigs/lws v0.10.0 charts/lws/values.yaml image.manager.repository (its tag defaults to `main`, "
           "so the release tag is set explicitly)", checked="2026-12-06")

# --- gateway ---
GATEWAY_IMAGE = Pin(
    "genai-scale-gateway", "0.1.0", repository="",
    source="built from serving/gateway/Dockerfile and pushed to the ECR repository the Gateway component creates "
           "(tag = <this version>-<digest of the image context>); the base image is pinned in the Dockerfile", checked="2026-11")
GATEWAY_BASE_IMAGE = Pin(
    "python", "3.11.14-slim-bookworm", repository="docker.io/library/python",
    source="Docker Official Images python tags (3.11 slim on Debian 12, matching the CI machine)", checked="2026-11")

# --- RAG data plane (vector store) ---
AURORA_POSTGRESQL_ENGINE = Pin(
    "aurora-postgresql", "16.8", repository="rds",
    source="Aurora User Guide 'Scaling to Zero ACUs with automatic pause and resume' (min 0 ACU needs Aurora "
           "PostgreSQL 16.3, 15.7, 14.12 or 13.15 at least); AWS What's New 2023-10 (pgvector 0.5.0 with HNSW from "
           "Aurora PostgreSQL 15.4/14.9/13.12); AWS Database Blog 2025-05 (pgvector 0.8.0 on Aurora PostgreSQL). "
           "(uncertain) the pgvector release inside 16.8 was not read: confirm with `aws rds "
           "describe-db-engine-versions --engine aurora-postgresql --engine-version 16.8` and "
           "`SELECT extversion FROM pg_extension WHERE extname = 'vector'`", checked="2026-12")
"""Engine of the VectorStore's Aurora cluster: Serverless v2 with a 0 ACU minimum (auto-pause) and pgvector HNSW."""

QDRANT_CHART = Pin(
    "qdrant", "1.19.0", repository="https://qdrant.github.io/qdrant-helm",
    source="qdrant/qdrant-helm tag qdrant-1.19.0 (commit a7aeeb71, 2026-08-13; Chart 1.19.0, appVersion v1.19.0)",
    checked="2026-12")

# --- RAG data plane (embedding service) ---
TEI = Pin(
    "text-embeddings-inference", "1.9.3", repository="ghcr.io/huggingface/text-embeddings-inference",
    source="huggingface/text-embeddings-inference tag v1.9.3 (commit 06670157, 2026-03-23): README 'Docker Images' "
           "table (tags cpu-1.9, 86-1.9, 89-1.9, hopper-1.9), router/src/main.rs (flags and defaults), Dockerfile "
           "and Dockerfile-cuda (ENV PORT=80, ENTRYPOINT text-embeddings-router)", checked="2026-12-06")
"""Text Embeddings Inference. Image tags carry the minor (``<arch>-1.9``), which follows the latest 1.9 patch."""

AWS_CLI_IMAGE = Pin(
    "aws-cli", "2.36.44", repository="public.ecr.aws/aws-cli/aws-cli",
    source="aws/aws-cli release 2.36.44: its changelog entry .changes/2.36.44.json (api-change lightsail, batch, "
           "invoicing, mediaconvert, s3, ecs) in the aws/aws-cli repository (stored commit 503a49be), a release "
           "between 2.36.7 (tag, 2026-07-23) and 2.37.0, so before today; the AWS CLI v2 image on ECR Public "
           "(public.ecr.aws/aws-cli/aws-cli, also amazon/aws-cli on Docker Hub) is tagged with every release version",
    checked="2026-12-06")
"""Init container of the EmbeddingService that copies the model from the models bucket (``aws s3 sync``)."""
