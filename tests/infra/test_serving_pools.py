"""serving.pools in the stack config: every rule's message at its config key, names unique across the stack, the
summary the plan prints (policy, models, adapters, recommendation, warning)."""

from __future__ import annotations

import pytest

from components.serving.pools.strategy import recommend
from infra.config import ROOT, ConfigError, build_settings, read_stack_file
from infra.sections.serving import pool_summary


def staging(serving: dict | None = None, **keys) -> dict:
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.staging.yaml")
    if serving is not None:
        raw["genai-scale:serving"] = serving
    raw.update({f"genai-scale:{k}": v for k, v in keys.items()})
    return raw


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.staging.yaml")
    return str(exc.value)


def pool(**over) -> dict:
    base = {"nodeGroup": "l40s-pool", "policy": "dynamic", "workload": "variable-traffic", "minReplicas": 1,
            "maxReplicas": 2, "models": {
                "base-a": {"modelId": "meta-llama/Llama-3.1-8B-Instruct", "maxModelLen": 8192,
                           "kvTokensPerSequence": 2048,
                           "adapters": {"tuned-a": {"weightsPrefix": "adapters/tuned-a", "rank": 16}}},
                "base-b": {"modelId": "Qwen/Qwen2.5-7B-Instruct", "maxModelLen": 8192, "kvTokensPerSequence": 2048}}}
    return {**base, **over}


def test_the_shipped_pool_validates_and_keeps_its_settings():
    cfg = build_settings(staging(), source="staging")
    p = cfg.serving.pools["shared-l40s"]
    assert p.policy == "dynamic" and p.node_group == "l40s-pool" and p.workload == "variable-traffic"
    assert list(p.models) == ["llama3-8b", "qwen-7b"]
    assert list(p.models["llama3-8b"].adapters) == ["support-en", "sql-assist", "summarize"]
    assert cfg.node_groups["l40s-pool"].time_slicing_replicas == len(p.models)


def test_an_unknown_node_group_is_named_with_the_choices():
    text = problems_of(staging({"pools": {"x": pool(nodeGroup="l4")}}))
    assert ("genai-scale:serving.pools.x.nodeGroup = 'l4': a node group of nodeGroups (a10g, batch-a10g, "
            "batch-a10g-2x, inf2, l40s-pool)") in text


def test_pool_args_problems_are_reported_at_their_config_keys():
    bad = pool(maxLoraRank=8)
    text = problems_of(staging({"pools": {"x": bad}}))
    assert "genai-scale:serving.pools.x.models.base-a.adapters.tuned-a.rank = 16: <= maxLoraRank (8)" in text


def test_a_dynamic_pool_needs_one_share_per_engine_on_its_node_group():
    groups = {"l40s-pool": {"timeSlicingReplicas": 4}}
    text = problems_of(staging({"pools": {"shared-l40s": None, "x": pool()}}, nodeGroups=groups))
    assert ("genai-scale:serving.pools.x.policy = 'dynamic': node group 'l40s-pool' to have timeSlicingReplicas 2 (one "
            "share per engine of a replica; it has 4)") in text


def test_a_mig_policy_without_the_mig_strategy_is_reported_at_the_gpu_operator():
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml")
    raw["genai-scale:nodeGroups"] = {"h100": {"migConfig": "all-3g.40gb"}}
    raw["genai-scale:serving"] = {"pools": {"m": pool(nodeGroup="h100", policy="mig:all-3g.40gb",
                                                      workload="many-small-models")}}
    text = problems_of(raw)
    assert "genai-scale:gpuOperator.migStrategy = 'none': single or mixed with a mig: policy" in text


def test_a_bad_policy_text_lists_the_forms():
    text = problems_of(staging({"pools": {"x": pool(policy="sliced")}}))
    assert "genai-scale:serving.pools.x.policy = 'sliced': one of dedicated, mig:<profile>" in text


def test_names_are_unique_across_models_pools_and_routes():
    models = pool()["models"]
    clash = {"llama-8b": models["base-a"], "base-c": {**models["base-b"], "adapters": {
        "support-en": {"weightsPrefix": "adapters/x"}}}}
    text = problems_of(staging({"pools": {"x": pool(models=clash)}}, nodeGroups={"l40s-pool": {"maxSize": 4}}))
    assert ("genai-scale:serving.pools.x.models.llama-8b = 'llama-8b': a name unique across serving.models, "
            "serving.pools and the gateway's routes (clients send it as model; already serving.models.llama-8b)") in text
    assert ("genai-scale:serving.pools.x.models.base-c.adapters.support-en = 'support-en': a name unique across "
            "serving.models, serving.pools and the gateway's routes (clients send it as model; already "
            "serving.pools.shared-l40s.models.llama3-8b.adapters.support-en)") in text


def test_a_dynamic_pool_fits_its_node_group_and_needs_the_gateway():
    raw = staging({"pools": {"shared-l40s": None, "x": pool(maxReplicas=5)}}, gateway={"enabled": False})
    text = problems_of(raw)
    assert ("genai-scale:serving.pools.x.maxReplicas = 5: <= node group 'l40s-pool''s maxSize (2): a dynamic "
            "replica takes every share of its node's GPU") in text
    assert ("genai-scale:serving.pools.x.policy = 'dynamic': needs the gateway (gateway.enabled): its pool "
            "controller wakes, loads and evicts the pool's models") in text


def test_every_problem_is_listed_at_once():
    text = problems_of(staging({"pools": {"x": pool(nodeGroup="l4"), "y": pool(maxLoraRank=8),
                                          "z": pool(policy="sliced")}}))
    assert "serving.pools.x.nodeGroup = 'l4'" in text and "serving.pools.z.policy = 'sliced'" in text
    assert "serving.pools.y.models.base-a.adapters.tuned-a.rank = 16" in text
    assert "serving.pools.y.models.base-a = 'base-a': a name unique" in text  # x declared it first


def test_the_summary_carries_the_recommendation_and_warns_when_the_policy_differs():
    cfg = build_settings(staging(), source="staging")
    p = cfg.serving.pools["shared-l40s"]
    out = pool_summary("shared-l40s", p, service_dns="shared-l40s.genai-serving.svc.cluster.local")
    assert out == {"policy": "dynamic", "nodeGroup": "l40s-pool", "minReplicas": 1, "maxReplicas": 2,
                   "workload": "variable-traffic",
                   "models": {"llama3-8b": {"modelId": "meta-llama/Llama-3.1-8B-Instruct",
                                            "adapters": ["support-en", "sql-assist", "summarize"]},
                              "qwen-7b": {"modelId": "Qwen/Qwen2.5-7B-Instruct", "adapters": []}},
                   "recommendation": {"policy": "dynamic", "reason": recommend("variable-traffic").reason},
                   "warning": None, "serviceDns": "shared-l40s.genai-serving.svc.cluster.local"}
    latency = pool_summary("x", p.model_copy(update={"workload": "latency-critical"}))
    assert latency["recommendation"]["policy"] == "dedicated"
    assert latency["warning"].startswith("policy dynamic differs from the recommendation for workload "
                                         "latency-critical (dedicated)")
    assert pool_summary("x", p.model_copy(update={"workload": None}))["recommendation"] is None


def test_the_staging_plan_builds_the_pool_and_wires_the_gateway_to_it():
    import yaml

    from tests.stack_plans import planned

    result, _ = planned("staging")
    assert result.one("genai-scale:index:ModelPool").name == "shared-l40s"
    config = yaml.safe_load(result.named("gateway-config").inputs["data"]["gateway.yaml"])
    block = config["pools"]["shared-l40s"]
    assert block["replicas"]["dns"] == "shared-l40s.genai-serving.svc.cluster.local"
    assert list(block["engines"]) == ["llama3-8b", "qwen-7b"] and block["apiKeyEnv"] == "POOL_SHARED_L40S_API_KEY"
    assert "llama3-8b" not in config["routes"]  # the pool controller serves it, not a plain route
    gateway = result.named("gateway-deployment").get("spec.template.spec.containers")[0]
    env = {e["name"]: e.get("valueFrom") for e in gateway["env"]}
    assert env["POOL_SHARED_L40S_API_KEY"] == {"secretKeyRef": {"name": "gateway-upstream-keys",
                                                                "key": "POOL_SHARED_L40S_API_KEY"}}
    assert result.outputs["modelPools"]["shared-l40s"]["recommendation"]["policy"] == "dynamic"
    # the pool's node group time-slices its own GPU; the GPU operator leaves the other groups' GPUs whole
    operator = result.one("kubernetes:helm.sh/v3:Release", "gpu-operator")
    assert operator.get("values.devicePlugin.config") == {"name": "time-slicing-config", "default": "none"}
    labels = result.one("aws:eks/nodeGroup:NodeGroup", "l40s-pool").get("labels")
    assert labels["nvidia.com/device-plugin.config"] == "time-slicing-2"
    assert "nvidia.com/device-plugin.config" not in result.one("aws:eks/nodeGroup:NodeGroup", "a10g").get("labels")


def test_the_human_plan_prints_each_pool_and_warns_when_the_policy_differs():
    from infra.cli import pool_lines

    cfg = build_settings(staging(), source="staging")
    p = cfg.serving.pools["shared-l40s"]
    lines = pool_lines({"shared-l40s": pool_summary("shared-l40s", p),
                        "fast": pool_summary("fast", p.model_copy(update={"workload": "latency-critical"}))})
    assert lines[:6] == ["", "Model pools", "  shared-l40s: policy dynamic on node group l40s-pool, replicas 1-2",
                         "    llama3-8b: meta-llama/Llama-3.1-8B-Instruct; adapters: support-en, sql-assist, summarize",
                         "    qwen-7b: Qwen/Qwen2.5-7B-Instruct",
                         "    recommended for workload variable-traffic: dynamic"]
    assert "    recommended for workload latency-critical: dedicated" in lines
    assert [line for line in lines if "warning" in line] == [
        "    warning: " + pool_summary("fast", p.model_copy(update={"workload": "latency-critical"}))["warning"]]
    assert pool_lines(None) == [] and pool_lines({}) == []


def test_models_of_an_always_hot_pool_are_plain_upstreams_and_routes():
    import asyncio
    from types import SimpleNamespace

    from infra.sections.base import BuildContext

    asyncio.set_event_loop(asyncio.new_event_loop())  # Outputs need a loop; an earlier asyncio.run leaves none
    from infra.sections.gateway import GatewaySettings, gateway_config, upstream_api_keys

    svc = SimpleNamespace(service_url="http://p-m.genai-serving.svc.cluster.local:8000", served_model_name="m",
                          api_key="key")
    ctx = BuildContext(stack="s", tier="growth", region="us-east-1", tags={})
    ctx.model_pools = {"p": SimpleNamespace(gateway_block=None, services={"m": svc})}
    cfg = gateway_config(ctx, GatewaySettings())
    assert cfg["routes"]["m"]["targets"] == [{"upstream": "vllm-m"}] and "pools" not in cfg
    assert cfg["upstreams"]["vllm-m"]["apiKeyEnv"] == "VLLM_M_API_KEY"
    assert upstream_api_keys(ctx) == {"VLLM_M_API_KEY": "key"}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_shipped_pools_engines_parse_with_vllms_parser(stack, vllm_parser):
    from tests.stack_plans import planned

    result, cfg = planned(stack)
    p = cfg.serving.pools["shared-l40s"]
    containers = result.named("shared-l40s-deployment").get("spec.template.spec.containers")
    assert len(containers) == len(p.models) >= 2  # at least two base models share the GPU
    for i, (c, (name, m)) in enumerate(zip(containers, p.models.items())):
        ns = vllm_parser.parse(c["args"])
        assert ns.served_model_name == [name] and ns.port == 8000 + i and ns.enable_sleep_mode
        assert ns.max_model_len == m.max_model_len
        assert bool(ns.enable_lora) == bool(m.adapters)
        if m.adapters:
            assert ns.max_loras == p.max_loras and ns.max_lora_rank == p.max_lora_rank
            assert len(m.adapters) >= 3  # a base model with several adapters
