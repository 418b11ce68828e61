"""ModelPool under Pulumi mocks: every child of a dynamic pool, VllmServices for the other policies, the summary."""

from __future__ import annotations

import json

import components
from components.serving.pools.args import ModelPoolArgs, PoolAdapter, PoolModel
from components.serving.pools.pool import ModelPool
from infra.plan import run_program
from tests.kit.vllm import placement

LLAMA, QWEN, SMALL = "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"


def args(**kw) -> ModelPoolArgs:
    base = dict(
        models={"llama-8b": PoolModel(model_id=LLAMA, max_model_len=8192,
                                      adapters={"support-en": PoolAdapter(weights_prefix="adapters/support-en")}),
                "qwen-7b": PoolModel(model_id=QWEN, max_model_len=8192)},
        placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=2), image="registry/vllm:v1",
        models_bucket="genai-models", prometheus_url="http://prometheus:9090",
        oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X", oidc_issuer="oidc.example/id/X",
        workload="latency-critical")
    return ModelPoolArgs(**{**base, **kw})


def test_exported_from_components():
    assert components.ModelPool is ModelPool and components.ModelPoolArgs is ModelPoolArgs
    assert components.PoolModel is PoolModel and components.PoolAdapter is PoolAdapter


def test_dynamic_pool_registers_every_child():
    seen = {}

    def program():
        pool = ModelPool("shared", args())
        seen["pool"] = pool
    result = run_program(program)
    pool = seen["pool"]
    parent = result.one("genai-scale:index:ModelPool", "shared")
    assert sorted(r.name for r in result.children_of(parent.urn)) == sorted([
        "shared-weights-role", "shared-weights-policy", "shared-weights-attach", "shared-sa", "shared-api-key",
        "shared-api-key", "shared-deployment", "shared-service", "shared-pdb", "shared-netpol",
        "shared-servicemonitor", "shared-scaledobject"])
    dep = result.one("kubernetes:apps/v1:Deployment", "shared-deployment")
    assert dep.ignore_changes == ["spec.replicas"]
    assert [c["name"] for c in dep.get("spec.template.spec.containers")] == ["e0-llama-8b", "e1-qwen-7b"]
    assert result.one("kubernetes:core/v1:Service", "shared-service").get("spec.clusterIP") == "None"
    so = result.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "shared-scaledobject")
    assert dep.urn in so.dependencies
    doc = json.loads(result.one("aws:iam/policy:Policy", "shared-weights-policy").inputs["policy"])
    assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::genai-models/Qwen/Qwen2.5-7B-Instruct/*",
                                               "arn:aws:s3:::genai-models/adapters/support-en/*",
                                               f"arn:aws:s3:::genai-models/{LLAMA}/*"]
    assert pool.service_dns == "shared.genai-serving.svc.cluster.local"
    assert pool.gateway_block["engines"]["llama-8b"]["adapters"] == {
        "support-en": "s3://genai-models/adapters/support-en"}
    assert pool.services == {} and pool.api_key is not None
    assert pool.summary["policy"] == "dynamic" and pool.summary["adapters"] == ["support-en"]
    assert pool.summary["recommendation"]["policy"] == "dedicated"
    assert pool.summary["warning"].startswith("policy dynamic differs from the recommendation for workload "
                                              "latency-critical")


def test_time_slicing_pool_is_one_vllm_service_per_model():
    seen = {}

    def program():
        seen["pool"] = ModelPool("small", args(
            policy="time-slicing:2", workload=None, placement=placement("a10g", "g5.2xlarge", time_slicing_replicas=2),
            models={"a": PoolModel(model_id=SMALL), "b": PoolModel(model_id=SMALL)}))
    result = run_program(program)
    pool = seen["pool"]
    parent = result.one("genai-scale:index:ModelPool", "small")
    assert sorted(r.name for r in result.children_of(parent.urn)) == ["small-a", "small-b"]
    assert sorted(pool.services) == ["a", "b"]
    assert pool.services["a"].service_url == "http://small-a.genai-serving.svc.cluster.local:8000"
    assert pool.services["a"].served_model_name == "a"
    assert (pool.gateway_block, pool.service_dns, pool.summary["recommendation"]) == (None, None, None)
    args_ = result.one("kubernetes:apps/v1:Deployment", "small-a-deployment").get(
        "spec.template.spec.containers.0.args")
    assert args_[args_.index("--gpu-memory-utilization") + 1] == "0.45"
