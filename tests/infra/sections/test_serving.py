"""The serving section in every tier: resources in the plan, every service's vLLM arguments parsed by vLLM's own
parser, the tier behaviour (scale to zero, warm minimum, warm pools), and the config rules' messages."""

from __future__ import annotations

import pytest

from components.catalog.accelerators import lookup
from infra import program
from infra.config import ROOT, ConfigError, build_settings, read_stack_file
from infra.plan import run_program
from tests.stack_plans import planned

STACKS = {"dev": "prototype", "staging": "growth", "prod": "scale"}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


def stack_config(stack: str) -> dict:
    """The shipped stack file's config mapping."""
    return read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")


@pytest.fixture(scope="module")
def plans():
    return {stack: planned(stack) for stack in STACKS}


def vllm_deployments(result):
    return [d for d in result.by_type(DEPLOYMENT)
            if d.get("metadata.labels", {}).get("app.kubernetes.io/name") == "vllm"]


def vllm_scaled_objects(result):
    """The ScaledObjects of the vLLM services (the rag section adds its own: the embedding service's, the workers')."""
    services = {r.urn for r in result.by_type("genai-scale:index:VllmService")}
    return [so for so in result.by_type(SCALED_OBJECT) if so.parent in services]


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_tier_has_images_services_autoscalers_and_monitoring(plans, stack):
    result, cfg = plans[stack]
    assert cfg.tier == STACKS[stack]
    multi_node = {r.name for r in result.by_type("genai-scale:index:MultiNodeVllmService")}  # tests/infra/*multinode*
    names = set(cfg.serving.models) - multi_node
    assert {r.name for r in result.by_type("genai-scale:index:VllmService")} == names
    assert {d.name for d in vllm_deployments(result)} == {f"{n}-deployment" for n in names}
    assert {r.name for r in vllm_scaled_objects(result)} == {f"{n}-scaledobject" for n in names}
    vendors = {lookup(cfg.node_groups[m.node_group].instance_type).vendor for m in cfg.serving.models.values()}
    images = {r.name for r in result.by_type("genai-scale:index:VllmImage")}
    assert images == {f"vllm-{v}" for v in vendors}
    image_urns = {r.urn for r in result.by_type("genai-scale:index:VllmImage")}
    assert len([b for b in result.by_type("docker-build:index:Image") if b.parent in image_urns]) == len(images)
    releases = {r.inputs["chart"] for r in result.by_type("kubernetes:helm.sh/v3:Release")}
    assert {"keda", "kube-prometheus-stack"} <= releases
    assert result.outputs["vllmServices"].keys() == names | multi_node


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_service_in_every_tier_parses_with_vllms_parser(plans, stack, vllm_parser):
    result, cfg = plans[stack]
    deployments = vllm_deployments(result)
    assert deployments
    for d in deployments:
        name = d.name.removesuffix("-deployment")
        container = d.get("spec.template.spec.containers.0")
        ns = vllm_parser.parse(container["args"])
        model = cfg.serving.models[name]
        assert ns.served_model_name == [model.served_model_name or name]
        assert ns.tensor_parallel_size == model.tensor_parallel_size
        assert ns.max_model_len == model.max_model_len
        assert ns.shutdown_timeout == model.shutdown_timeout_seconds > 0


def test_prototype_scales_to_zero_with_no_warm_pool(plans):
    result, _ = plans["dev"]
    for so in vllm_scaled_objects(result):
        assert so.get("spec.minReplicaCount") == 0
        assert [t["name"] for t in so.get("spec.triggers")][-1] == "gateway-demand"
    assert result.by_type("kubernetes:scheduling.k8s.io/v1:PriorityClass") == []
    assert not [d for d in result.by_type(DEPLOYMENT) if d.name.endswith("-warm")]


def test_growth_keeps_a_warm_minimum(plans):
    result, cfg = plans["staging"]
    for so in vllm_scaled_objects(result):
        assert so.get("spec.minReplicaCount") >= 1
    warm = [d for d in result.by_type(DEPLOYMENT) if d.name.endswith("-warm")]
    assert [d.get("spec.replicas") for d in warm] == [1]


def test_scale_sizes_warm_pools_from_config(plans):
    result, cfg = plans["prod"]
    warm = {d.name.removesuffix("-warm"): d.get("spec.replicas") for d in result.by_type(DEPLOYMENT)
            if d.name.endswith("-warm")}
    assert warm == {n: m.warm_pool_placeholders for n, m in cfg.serving.models.items() if m.warm_pool_placeholders}
    assert len(result.by_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")) == len(warm)
    latency = [t for so in vllm_scaled_objects(result) for t in so.get("spec.triggers")
               if t["name"] == "p95-e2e-latency"]
    assert latency and all("/ 16000" in t["metadata"]["query"] for t in latency)  # targets.p95LatencyMs of scale


def test_context_carries_services_keda_and_monitoring():
    raw = stack_config("staging")
    cfg = build_settings(raw, source="staging")
    seen = {}

    def prog():
        ctx = program.build_stack(cfg, "staging")
        seen["ctx"] = ctx
    run_program(prog, stack="staging", config=raw)
    ctx = seen["ctx"]
    svc = ctx.vllm_services["llama-8b"]
    assert svc.service_url == "http://llama-8b.genai-serving.svc.cluster.local:8000"
    assert svc.served_model_name == "llama-8b"
    assert svc.api_key_secret_name == "llama-8b-api-key"
    assert ctx.keda is not None and ctx.monitoring is not None
    assert ctx.monitoring.prometheus_url.startswith("http://monitoring-prometheus.monitoring.svc")


def with_serving(serving: dict, monitoring: dict | None = None, stack: str = "dev") -> dict:
    raw = stack_config(stack)
    raw["genai-scale:serving"] = serving
    if monitoring is not None:
        raw["genai-scale:monitoring"] = monitoring
    return raw


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.dev.yaml")
    return str(exc.value)


def test_unknown_node_group_is_named_with_the_choices():
    text = problems_of(with_serving({"models": {"llama-8b": {"nodeGroup": "h200"}}}))
    assert "genai-scale:serving.models.llama-8b.nodeGroup = 'h200': a node group of nodeGroups (a10g, batch-a10g, inf2)" \
        in text


def test_model_too_big_for_its_node_group_is_a_config_error():
    text = problems_of(with_serving({"models": {"big": {"nodeGroup": "a10g",
                                                        "modelId": "meta-llama/Llama-3.1-70B-Instruct"}}}))
    assert "genai-scale:serving.models.big.modelId = 'meta-llama/Llama-3.1-70B-Instruct': " \
           "meta-llama/Llama-3.1-70B-Instruct does not fit" in text
    assert "capacity 20.1 GiB (1 x A10G GPU of the 1 on one g5.xlarge" in text


def test_replica_and_sharing_rules_use_config_names():
    text = problems_of(with_serving({"models": {"x": {
        "nodeGroup": "a10g", "modelId": "Qwen/Qwen2.5-0.5B-Instruct", "weightsPrefix": "qwen", "minReplicas": 3,
        "maxReplicas": 1, "gpuSharing": "mig", "autoscaling": {"gpuUtilizationDownPercent": 90}}}}))
    assert "serving.models.x.minReplicas = 3: <= maxReplicas (1)" in text
    assert "serving.models.x.autoscaling.gpuUtilizationDownPercent = 90.0: < gpuUtilizationUpPercent (70)" in text
    assert "serving.models.x.migProfile = None: required with gpuSharing mig" in text
    assert "genai-scale:gpuOperator.migStrategy = 'none': single or mixed with gpuSharing mig" in text


def test_warm_capacity_beyond_the_node_group_is_rejected():
    text = problems_of(with_serving({"models": {"llama-8b": {"minReplicas": 1, "warmPoolPlaceholders": 2}}}))
    assert ("serving.models.llama-8b.warmPoolPlaceholders = 2: minReplicas (1) + placeholders hold 3 "
            "accelerator(s), more than node group 'a10g' can have (2 x 1)") in text


def test_keda_needs_monitoring():
    text = problems_of(with_serving({"enabled": True}, monitoring={"enabled": False}))
    assert "genai-scale:serving.keda.enabled = True: needs monitoring.enabled (the triggers query Prometheus)" in text


def test_unknown_key_in_a_model_is_reported():
    text = problems_of(with_serving({"models": {"llama-8b": {"maxModelLength": 4096}}}))
    assert "serving.models.llama-8b.maxModelLength" in text and "unknown key" in text
