"""EmbeddingService (TEI) under mocks: image per architecture, batching flags, the Kubernetes objects (checked against
the Kubernetes 1.35 schema and the vendored KEDA and Prometheus operator CRDs), and every validation message."""

from __future__ import annotations

import json

import kubernetes_validate
import pulumi
import pytest

from components import versions
from components.rag import _embedding
from components.rag.embedding_service import EmbeddingAutoscaling, EmbeddingService, EmbeddingServiceArgs
from infra.plan import jsonable
from tests.infra.test_k8s_schema import SCHEMA_VERSION
from tests.infra.test_upstream_truth import cr_errors
from tests.kit.plan import errors_of, plan_component
from tests.kit.vllm import placement

PROM = "http://monitoring-prometheus.monitoring.svc.cluster.local:9090"
OIDC = dict(oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
            oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/X")
SO = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SM = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"


def args(**kw) -> EmbeddingServiceArgs:
    return EmbeddingServiceArgs(**{"prometheus_url": PROM, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


def rendered(name="embeddings", **kw):
    a = args(**kw)
    return _embedding.render(name, a, image_ref=a.image_ref(), sync_image="aws-cli:x", service_account=name,
                             hf_token_secret=None)


# --- image and flags ---

@pytest.mark.parametrize("instance_type, tag", [
    ("g5.xlarge", "86-1.9"), ("g6.xlarge", "89-1.9"), ("g6e.xlarge", "89-1.9"), ("p5.48xlarge", "hopper-1.9")])
def test_the_image_follows_the_gpu_architecture(instance_type, tag):
    a = args(placement=placement("gpu", instance_type))
    assert a.image_ref() == f"ghcr.io/huggingface/text-embeddings-inference:{tag}"


def test_without_a_node_group_the_cpu_image_runs_on_the_system_nodes():
    a = args()
    assert a.image_ref() == "ghcr.io/huggingface/text-embeddings-inference:cpu-1.9"
    pod = rendered()["Deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"genai-scale/node-group": "system"}
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert versions.TEI.version == "1.9.3"


def test_an_explicit_image_wins():
    assert args(image="registry/tei:mine").image_ref() == "registry/tei:mine"


@pytest.mark.parametrize("instance_type, tokens", [
    (None, 4096), ("g5.xlarge", 16384), ("g6.xlarge", 16384), ("g6e.xlarge", 32768), ("p5.48xlarge", 65536)])
def test_max_batch_tokens_follows_gpu_memory(instance_type, tokens):
    a = args(placement=placement("gpu", instance_type) if instance_type else None)
    assert a.flags()["max_batch_tokens"] == tokens


def test_concurrency_follows_the_tier_target_and_flags_are_rendered():
    assert args().flags() == {"max_batch_tokens": 4096, "max_client_batch_size": 64, "max_concurrent_requests": 512}
    assert args(concurrency_target=5000).flags()["max_concurrent_requests"] == 10000
    c = rendered(concurrency_target=400, max_batch_tokens=8192)["Deployment"]["spec"]["template"]["spec"][
        "containers"][0]
    argv = c["args"]
    assert argv[argv.index("--max-batch-tokens") + 1] == "8192"
    assert argv[argv.index("--max-client-batch-size") + 1] == "64"
    assert argv[argv.index("--max-concurrent-requests") + 1] == "800"
    assert argv[argv.index("--port") + 1] == "8080"
    assert argv[argv.index("--model-id") + 1] == "BAAI/bge-base-en-v1.5"


# --- the pod ---

def test_gpu_pod_requests_one_gpu_and_tolerates_the_group():
    pod = rendered(placement=placement("a10g", "g5.xlarge"))["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"]["genai-scale/node-group"] == "a10g"
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]


def test_model_from_the_bucket_is_synced_by_an_init_container():
    pod = rendered(weights_uri="s3://genai-models/bge-base", **OIDC)["Deployment"]["spec"]["template"]["spec"]
    init = pod["initContainers"][0]
    assert init["command"] == ["aws", "s3", "sync", "--only-show-errors", "s3://genai-models/bge-base/", "/data/model"]
    argv = pod["containers"][0]["args"]
    assert argv[argv.index("--model-id") + 1] == "/data/model"
    assert argv[argv.index("--served-model-name") + 1] == "BAAI/bge-base-en-v1.5"


def test_pod_is_restricted_and_probed_on_health_with_a_startup_budget():
    pod = rendered(startup_timeout_seconds=600)["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] == 600
    assert c["readinessProbe"]["httpGet"]["path"] == c["livenessProbe"]["httpGet"]["path"] == "/health"


def test_network_policy_admits_clients_and_monitoring_only():
    np = rendered(client_namespaces=["genai-gateway", "genai-rag-workers"])["NetworkPolicy"]["spec"]
    values = np["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert values == ["genai-gateway", "genai-rag", "genai-rag-workers", "monitoring"]
    assert np["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


# --- KEDA ---

def test_scaled_object_scales_on_te_queue_size():
    so = rendered()["ScaledObject"]["spec"]
    assert [t["name"] for t in so["triggers"]] == ["queue-depth"]
    q = so["triggers"][0]["metadata"]
    assert q["query"] == 'sum(te_queue_size{namespace="genai-rag",service="embeddings"})'
    assert (q["threshold"], q["activationThreshold"], q["serverAddress"]) == ("32", "0", PROM)
    assert (so["minReplicaCount"], so["maxReplicaCount"]) == (1, 2)
    assert "cooldownPeriod" not in so


def test_scale_to_zero_adds_the_gateway_demand_trigger():
    so = rendered(autoscaling=EmbeddingAutoscaling(min_replicas=0, max_replicas=3),
                  gateway_model="bge-base", wake_queue_url="https://sqs/q", wake_queue_region="us-east-1",
                  wake_queue_auth="rag-ingest")["ScaledObject"]["spec"]
    assert [t["name"] for t in so["triggers"]] == ["queue-depth", "gateway-demand", "ingestion-queue"]
    assert so["triggers"][1]["metadata"]["query"] == \
        'sum(rate(gateway_embedding_requests_total{model="bge-base"}[2m]))'
    sqs = so["triggers"][2]
    assert (sqs["type"], sqs["authenticationRef"], sqs["metadata"]["activationQueueLength"]) == (
        "aws-sqs-queue", {"name": "rag-ingest-aws"}, "0")
    assert (so["minReplicaCount"], so["cooldownPeriod"], so["initialCooldownPeriod"]) == (0, 600, 900)


def test_without_keda_no_scaled_object():
    assert "ScaledObject" not in rendered(keda=False, prometheus_url=None)


# --- the component under mocks ---

@pytest.fixture(scope="module")
def plan():
    def build():
        svc = EmbeddingService("embeddings", args(
            placement=placement("a10g", "g5.xlarge"), weights_uri="s3://genai-models/bge-base/",
            hf_token=pulumi.Output.secret("hf_x"), autoscaling=EmbeddingAutoscaling(min_replicas=0), **OIDC))
        pulumi.export("url", svc.service_url)
        return svc
    return plan_component(build)


def test_component_creates_every_object(plan):
    result, svc = plan
    types = sorted(r.type for r in result.resources if r.custom)
    for t in ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:ServiceAccount", "kubernetes:core/v1:Secret",
              "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget",
              "kubernetes:networking.k8s.io/v1:NetworkPolicy", SM, SO, "aws:iam/role:Role"):
        assert t in types, t
    assert result.outputs["url"] == "http://embeddings.genai-rag.svc:8080/v1"
    assert svc.flags["max_batch_tokens"] == 16384
    sa = result.one("kubernetes:core/v1:ServiceAccount").inputs
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]
    policy = json.loads(result.one("aws:iam/policy:Policy").inputs["policy"])
    assert policy["Statement"][0]["Resource"] == ["arn:aws:s3:::genai-models/bge-base/*"]


def test_builtin_objects_match_the_kubernetes_schema(plan):
    result, _ = plan
    checked = 0
    for r in result.resources:
        if r.custom and r.type.startswith("kubernetes:") and r.type not in (SO, SM):
            body = jsonable(r.inputs, reveal_secrets=True)
            body.setdefault("metadata", {}).setdefault("name", r.name)
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
            checked += 1
    assert checked == 7


def test_custom_resources_match_the_vendored_crds_and_a_wrong_field_is_caught(plan):
    result, _ = plan
    for token in (SO, SM):
        r = result.one(token)
        body = jsonable(r.inputs, reveal_secrets=True)
        assert cr_errors(r.name, token, body) == []
    bad = jsonable(result.one(SO).inputs, reveal_secrets=True)
    bad["spec"]["minReplicaCount"] = "zero"
    assert any("minReplicaCount: 'zero' is not of type 'integer'" in e for e in cr_errors("x", SO, bad))


# --- validation: every message ---

def test_an_accelerator_without_a_tei_image_is_an_error():
    msg = errors(placement=placement("inf2", "inf2.xlarge"))
    assert "placement = 'inf2': a node group with a GPU TEI has an image for (A100, A10G, H100, H200, L4, L40S, T4), " \
           "or none for the CPU image; its accelerator is Inferentia2" in msg


def test_a_batch_smaller_than_the_input_is_an_error():
    assert "max_batch_tokens = 256: >= max_input_tokens (512): TEI truncates every longer input to the batch" in \
        errors(max_batch_tokens=256)


def test_min_above_max_replicas_is_an_error():
    assert "autoscaling.min_replicas = 3: <= autoscaling.max_replicas (2)" in \
        errors(autoscaling=EmbeddingAutoscaling(min_replicas=3, max_replicas=2))


def test_scale_to_zero_needs_keda():
    assert "autoscaling.min_replicas = 0: >= 1 without keda (nothing would wake the service)" in \
        errors(autoscaling=EmbeddingAutoscaling(min_replicas=0), keda=False, prometheus_url=None)


def test_a_wake_queue_needs_its_trigger_authentication():
    assert "wake_queue_auth = None: given with wake_queue_region when wake_queue_url is (KEDA reads the queue " \
           "through that TriggerAuthentication)" in errors(wake_queue_url="https://sqs/q")


def test_keda_needs_prometheus():
    assert "prometheus_url = None: a Prometheus URL: the KEDA triggers query it" in errors(prometheus_url=None)


def test_weights_from_s3_need_the_oidc_inputs():
    assert "oidc_provider_arn = None: given with oidc_issuer, or a cluster: the model's S3 role needs them" in \
        errors(weights_uri="s3://genai-models/bge")


def test_a_bad_weights_uri_is_an_error():
    assert "weights_uri" in errors(weights_uri="https://bucket/x")
