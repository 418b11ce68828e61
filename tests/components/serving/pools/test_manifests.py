"""Rendered pool objects: vLLM's own parser accepts every engine's arguments, the objects match the Kubernetes 1.35
schema and the vendored KEDA / Prometheus operator CRDs, and each policy renders what the contract says."""

from __future__ import annotations

import kubernetes_validate
import pytest

from components.serving.pools.args import ModelPoolArgs, PoolAdapter, PoolModel
from components.serving.pools.manifests import (api_key_env, container_name, gateway_block, render_pool, upstreams,
                                                vllm_args, weights_policy)
from components.serving.vllm.manifests import render_manifests
from tests.infra.test_k8s_schema import SCHEMA_VERSION
from tests.infra.test_upstream_truth import cr_errors
from tests.kit.vllm import placement

LLAMA, QWEN, SMALL = "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"
CRDS = {"ScaledObject": "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "ServiceMonitor": "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"}


def dynamic(**kw) -> ModelPoolArgs:
    base = dict(
        models={"llama-8b": PoolModel(model_id=LLAMA, max_model_len=8192, adapters={
                    "support-en": PoolAdapter(weights_prefix="adapters/support-en"),
                    "support-de": PoolAdapter(weights_prefix="adapters/support-de", rank=8)}),
                "qwen-7b": PoolModel(model_id=QWEN, max_model_len=8192, keep_hot=True)},
        placement=placement("l40s", "g6e.2xlarge", time_slicing_replicas=2), image="registry/vllm:v1",
        models_bucket="my-models", prometheus_url="http://prometheus:9090", oidc_provider_arn="arn:oidc",
        oidc_issuer="oidc.example/id")
    return ModelPoolArgs(**{**base, **kw})


POLICIES = {
    "dynamic": dynamic,
    "dedicated": lambda: dynamic(policy="dedicated", models={"qwen-7b": PoolModel(model_id=QWEN, max_model_len=8192)}),
    "time-slicing": lambda: dynamic(policy="time-slicing:2", placement=placement("a10g", "g5.2xlarge",
                                                                                 time_slicing_replicas=2),
                                    models={"a": PoolModel(model_id=SMALL), "b": PoolModel(model_id=SMALL)}),
    "mig": lambda: dynamic(policy="mig:all-balanced", mig_strategy="mixed",
                           placement=placement("h100", "p5.48xlarge", mig_config="all-balanced"),
                           models={"small": PoolModel(model_id=SMALL),
                                   "llama": PoolModel(model_id=LLAMA, max_model_len=8192)}),
}


def validate(objects: dict) -> int:
    checked = 0
    for key, body in objects.items():
        kind = body["kind"]
        if kind in CRDS:
            assert cr_errors(key, CRDS[kind], body) == []
        else:
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
        checked += 1
    return checked


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_matches_the_kubernetes_schema_and_crds(policy):
    assert validate(render_pool("pool", POLICIES[policy]())) >= 5


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_engines_arguments_parse_with_vllm(vllm_parser, policy):
    a = POLICIES[policy]()
    for key, body in render_pool("pool", a).items():
        if body["kind"] == "Deployment":
            for c in body["spec"]["template"]["spec"]["containers"]:
                ns = vllm_parser.parse(c["args"])
                assert ns.served_model_name[0] in a.models


def test_dynamic_engines_args_snapshot_and_meaning(vllm_parser):
    a = dynamic()
    argv = vllm_args("shared", a, "llama-8b")
    assert argv[:2] == ["/models/llama-8b", "--served-model-name"]
    assert argv[-8:] == ["--enable-sleep-mode", "--enable-lora", "--max-loras", "4", "--max-lora-rank", "16",
                         "--max-cpu-loras", "16"]
    ns = vllm_parser.parse(argv)
    assert (ns.port, ns.gpu_memory_utilization, ns.enable_sleep_mode) == (8000, 0.9, True)
    assert (ns.enable_lora, ns.max_loras, ns.max_lora_rank, ns.max_cpu_loras) == (True, 4, 16, 16)
    assert ns.lora_modules is None  # adapters load at runtime, through the pool controller
    qwen = vllm_parser.parse(vllm_args("shared", a, "qwen-7b"))
    assert (qwen.port, qwen.enable_sleep_mode, bool(qwen.enable_lora)) == (8001, True, False)
    assert "--enable-lora" not in vllm_args("shared", a, "qwen-7b")


def test_hot_slots_divide_the_gpu_memory(vllm_parser):
    a = dynamic(hot_engines_per_replica=2, models={"a": PoolModel(model_id=SMALL), "b": PoolModel(model_id=SMALL)})
    assert vllm_parser.parse(vllm_args("p", a, "b")).gpu_memory_utilization == 0.45


def test_dynamic_pod_one_engine_per_model_behind_the_gate():
    a = dynamic(sleep_level=2)
    objects = render_pool("shared", a)
    assert sorted(objects) == ["Deployment/shared", "NetworkPolicy/shared", "PodDisruptionBudget/shared",
                               "ScaledObject/shared", "Service/shared", "ServiceMonitor/shared"]
    pod = objects["Deployment/shared"]["spec"]["template"]["spec"]
    llama, qwen = pod["containers"]
    assert [c["name"] for c in pod["containers"]] == ["e0-llama-8b", "e1-qwen-7b"]
    assert llama["command"] == ["/usr/local/bin/genai-scale-pool-gate", "/usr/local/bin/genai-scale-vllm"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in llama["env"]}
    assert env["VLLM_SERVER_DEV_MODE"] == "1" and env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert (env["POOL_ENGINE_PORT"], env["POOL_SLEEP_LEVEL"], env["POOL_GATE_LOCK"]) == ("8000", "2", "/gate/start.lock")
    assert env["MODEL_SOURCE"] == f"s3://my-models/{LLAMA}/" and env["MODEL_DIR"] == "/models/llama-8b"
    assert env["VLLM_API_KEY"] == {"secretKeyRef": {"name": "shared-api-key", "key": "api-key"}}
    qenv = {e["name"]: e.get("value") for e in qwen["env"]}
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in qenv and qenv["POOL_ENGINE_PORT"] == "8001"
    assert llama["ports"] == [{"name": "engine-0", "containerPort": 8000, "protocol": "TCP"}]
    assert llama["resources"]["requests"]["nvidia.com/gpu"] == "1"  # one time-slice share each
    assert llama["startupProbe"]["failureThreshold"] == 2 * 1200 // 10  # the second engine waits for the first
    assert {"name": "gate", "emptyDir": {"sizeLimit": "1Mi"}} in pod["volumes"]


def test_level_one_sleep_memory_limit_holds_the_weights():
    pod = render_pool("p", dynamic())["Deployment/p"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["memory"] == "23Gi"  # 4 + ceil(15.0 x 1.1) + 2
    pod2 = render_pool("p", dynamic(sleep_level=2))["Deployment/p"]["spec"]["template"]["spec"]
    assert pod2["containers"][0]["resources"]["limits"]["memory"] == "6Gi"


def test_same_pod_security_as_the_dedicated_services():
    pod = render_pool("p", dynamic())["Deployment/p"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 0, "fsGroup": 0,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    for c in pod["containers"]:
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "readOnlyRootFilesystem": True}
    assert pod["nodeSelector"]["genai-scale/node-group"] == "l40s"
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in \
        pod["tolerations"]


def test_headless_service_with_a_named_port_per_engine():
    svc = render_pool("p", dynamic())["Service/p"]["spec"]
    assert svc["clusterIP"] == "None" and svc["type"] == "ClusterIP"
    assert svc["ports"] == [{"name": "engine-0", "port": 8000, "targetPort": "engine-0", "protocol": "TCP"},
                            {"name": "engine-1", "port": 8001, "targetPort": "engine-1", "protocol": "TCP"}]


def test_network_policy_admits_only_the_gateway_pods_and_monitoring():
    spec = render_pool("p", dynamic())["NetworkPolicy/p"]["spec"]
    gateway, monitoring = spec["ingress"]
    assert gateway["from"] == [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["genai-gateway"]}]},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "genai-gateway"}}}]
    assert monitoring["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert gateway["ports"] == [{"port": 8000, "protocol": "TCP"}, {"port": 8001, "protocol": "TCP"}]


def test_scaled_object_scales_on_held_requests_and_the_engines_queue():
    so = render_pool("p", dynamic(min_replicas=0))["ScaledObject/p"]["spec"]
    held, queue = so["triggers"]
    assert held["metadata"]["query"] == 'sum(gateway_pool_held_requests{pool="p"})'
    assert held["metadata"]["threshold"] == "4" and held["metadata"]["activationThreshold"] == "0"
    assert queue["metadata"]["query"] == 'sum(vllm:num_requests_waiting{namespace="genai-serving",service="p"})'
    assert (so["minReplicaCount"], so["maxReplicaCount"], so["initialCooldownPeriod"]) == (0, 2, 2400)
    assert "ScaledObject/p" not in render_pool("p", dynamic(keda=False))


def test_service_monitor_scrapes_every_engine():
    eps = render_pool("p", dynamic())["ServiceMonitor/p"]["spec"]["endpoints"]
    assert [e["port"] for e in eps] == ["engine-0", "engine-1"]


def test_per_engine_fit_annotations():
    ann = render_pool("p", dynamic())["Deployment/p"]["metadata"]["annotations"]
    assert ann["e0-llama-8b.genai-scale/model"] == LLAMA
    assert ann["e1-qwen-7b.genai-scale/model-layers"] == "28"
    assert ann["genai-scale/pool-policy"] == "dynamic"


def test_weights_role_limited_to_the_pools_prefixes():
    doc = weights_policy(dynamic())
    assert doc["Statement"][0]["Resource"] == [
        "arn:aws:s3:::my-models/Qwen/Qwen2.5-7B-Instruct/*", "arn:aws:s3:::my-models/adapters/support-de/*",
        "arn:aws:s3:::my-models/adapters/support-en/*", f"arn:aws:s3:::my-models/{LLAMA}/*"]
    assert doc["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][:2] == ["Qwen/Qwen2.5-7B-Instruct/*",
                                                                             "Qwen/Qwen2.5-7B-Instruct"]


def test_non_dynamic_policies_render_the_dedicated_services_objects():
    a = POLICIES["time-slicing"]()
    objects = render_pool("p", a)
    assert objects["Deployment/p-a"] == render_manifests("p-a", a.service_args("a"))["Deployment"]
    assert "ScaledObject/p-b" in objects and "Service/p-b" in objects
    mig = render_pool("p", POLICIES["mig"]())
    res = mig["Deployment/p-llama"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert res["nvidia.com/mig-3g.40gb"] == "1"
    assert upstreams("p", a) == {"a": "http://p-a.genai-serving.svc.cluster.local:8000",
                                 "b": "http://p-b.genai-serving.svc.cluster.local:8000"}


def test_gateway_block():
    assert gateway_block("shared-l40s", dynamic(), models_bucket="my-models") == {
        "replicas": {"dns": "shared-l40s.genai-serving.svc.cluster.local", "refreshSeconds": 10},
        "apiKeyEnv": "POOL_SHARED_L40S_API_KEY",
        "engines": {
            "llama-8b": {"port": 8000, "adapters": {"support-en": "s3://my-models/adapters/support-en",
                                                    "support-de": "s3://my-models/adapters/support-de"},
                         "keepHot": False},
            "qwen-7b": {"port": 8001, "keepHot": True},
        },
        "hotEnginesPerReplica": 1, "maxLorasPerEngine": 4, "sleepLevel": 1, "eviction": "lru",
        "holdTimeoutSeconds": 60, "loadTimeoutSeconds": 300,
    }
    assert "apiKeyEnv" not in gateway_block("p", dynamic(api_key=False), models_bucket="b")
    assert api_key_env("a.b-c") == "POOL_A_B_C_API_KEY"
    with pytest.raises(ValueError, match="policy dedicated has no gateway pools block"):
        gateway_block("p", POLICIES["dedicated"](), models_bucket="b")


def test_container_names_are_dns_labels():
    assert container_name(3, "qwen2.5-7b") == "e3-qwen2-5-7b"


def _as_resources(objects: dict) -> list[dict]:
    from tests.policies.kit import res
    out = []
    for body in objects.values():
        group = "core/v1" if body["apiVersion"] == "v1" else body["apiVersion"]
        out.append(res(f"kubernetes:{group}:{body['kind']}", body["metadata"]["name"],
                       {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}))
    return out


def test_policy_pack_checks_each_engines_fit_and_the_admin_endpoints():
    from tests.policies.kit import violations
    objects = render_pool("shared", dynamic())
    for rule in ("vllm-model-fits-accelerators", "vllm-admin-endpoints-private", "serving-readiness-probe"):
        assert violations(_as_resources(objects), rule) == [], rule
    ann = objects["Deployment/shared"]["metadata"]["annotations"]
    ann["e1-qwen-7b.genai-scale/accelerator-memory-gib"] = "10"  # as if the engine sat on a 10 GiB GPU
    [found] = violations(_as_resources(objects), "vllm-model-fits-accelerators")
    assert found.startswith("container e1-qwen-7b: ") and "does not fit" in found
