"""Multi-node models in the stack config and the plan: the fit check (or ``nodes``) makes a model a LeaderWorkerSet
group, the LWS controller comes once with it, the gateway routes to it, and every problem is reported at its key."""

from __future__ import annotations

import pytest

from components.serving.vllm.multinode import MultiNodeVllmServiceArgs
from infra.config import ROOT, ConfigError, build_settings, read_stack_file
from infra.sections.serving import _PLACEHOLDER_WIRING, placement_from_settings, service_args
from tests.stack_plans import planned

LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
MODEL_405B = "meta-llama/Llama-3.1-405B-Instruct"


def prod(models: dict | None = None, *, node_groups: dict | None = None, lws: dict | None = None) -> dict:
    """The shipped prod stack file, with serving models (the preset's are kept) and node groups merged in."""
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml")
    serving = dict(raw.get("genai-scale:serving") or {})
    if models is not None:
        serving["models"] = models
    if lws is not None:
        serving["lws"] = lws
    raw["genai-scale:serving"] = serving
    if node_groups is not None:
        raw["genai-scale:nodeGroups"] = node_groups
    return raw


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.prod.yaml")
    return str(exc.value)


def args_of(cfg, name: str):
    m = cfg.serving.models[name]
    placement = placement_from_settings(m.node_group, cfg.node_groups[m.node_group])
    return service_args(name, m, cfg=cfg, placement=placement, bucket="my-models", **_PLACEHOLDER_WIRING)


def big(**over) -> dict:
    return {"nodeGroup": "h100-multinode", "modelId": MODEL_405B, "dtype": "bfloat16", "tensorParallelSize": 8,
            "maxModelLen": 16384, "maxNumSeqs": 32, "kvTokensPerSequence": 4096, "minReplicas": 0,
            "maxReplicas": 1, **over}


def test_the_scale_preset_serves_405b_over_two_p5_with_tp8_pp2():
    cfg = build_settings(prod(), source="prod")
    args = args_of(cfg, "llama-405b")
    assert isinstance(args, MultiNodeVllmServiceArgs)
    lay = args.layout()
    assert (lay.nodes, lay.tensor_parallel_size, lay.pipeline_parallel_size) == (2, 8, 2)
    group = cfg.node_groups["h100-multinode"]
    assert group.instance_type == "p5.48xlarge" and group.efa and group.min_size == 0
    assert cfg.serving.models["llama-405b"].min_replicas == 0  # no idle H100s
    assert not isinstance(args_of(cfg, "llama-70b"), MultiNodeVllmServiceArgs)  # fits one node: VllmService


def test_nodes_given_makes_a_model_multi_node():
    raw = prod({"llama-70b": big(modelId="meta-llama/Llama-3.1-70B-Instruct", nodes=2)})
    args = args_of(build_settings(raw, source="prod"), "llama-70b")
    assert isinstance(args, MultiNodeVllmServiceArgs) and args.layout().nodes == 2


def test_a_multi_node_group_needs_efa_and_room_for_every_replica():
    groups = {"h100-multinode": {"efa": False, "maxSize": 3}}
    text = problems_of(prod({"llama-405b": big(maxReplicas=2)}, node_groups=groups))
    assert ("genai-scale:nodeGroups.h100-multinode.efa = False: true: serving.models.llama-405b is served across 2 "
            "nodes per replica (NCCL over EFA needs the EFA interfaces, a cluster placement group and one AZ)") in text
    assert ("genai-scale:nodeGroups.h100-multinode.maxSize = 3: >= 4: serving.models.llama-405b runs up to "
            "maxReplicas (2) groups of 2 nodes") in text


def test_the_lws_controller_cannot_be_turned_off_under_a_multi_node_model():
    text = problems_of(prod(lws={"enabled": False}))
    assert ("genai-scale:serving.lws.enabled = False: true: serving.models.llama-405b span several nodes per replica "
            "(a LeaderWorkerSet needs the LWS controller)") in text


def test_a_layout_that_cannot_work_is_reported_under_the_model():
    text = problems_of(prod({"llama-405b": big(nodes=2, pipelineParallelSize=4)}))
    assert "genai-scale:serving.models.llama-405b.pipelineParallelSize = 4:" in text
    assert "uses 32 H100 GPU(s) but 2 nodes hold 16; tensorParallelSize x pipelineParallelSize must equal nodes" in text
    assert "pipelineParallelSize 4 must divide the model's 126 layers" in text


def test_too_big_even_for_the_largest_group_gives_the_fits_numbers():
    text = problems_of(prod({"llama-405b": big(maxModelLen=131072, kvTokensPerSequence=131072, maxNumSeqs=256)}))
    assert "genai-scale:serving.models.llama-405b" in text and "does not fit" in text


def test_warm_placeholders_are_refused_for_a_group():
    text = problems_of(prod({"llama-405b": big(warmPoolPlaceholders=1)}))
    assert "genai-scale:serving.models.llama-405b.warmPoolPlaceholders = 1: 0 (placeholders hold single-node " \
           "replicas)" in text


def test_without_efa_on_the_instance_type_a_too_big_model_keeps_the_fit_error():
    # g5.xlarge has no EFA: no multi-node layout is tried, the single-node "does not fit" stands
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml")
    raw["genai-scale:serving"] = {"models": {"big": {"nodeGroup": "a10g", "modelId": MODEL_405B}}}
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="dev")
    assert f"genai-scale:serving.models.big.modelId = '{MODEL_405B}': {MODEL_405B} does not fit" in str(exc.value)


@pytest.fixture(scope="module")
def prod_plan():
    return planned("prod")


def test_the_plan_has_one_lws_controller_the_group_and_a_gateway_route(prod_plan):
    result, cfg = prod_plan
    assert [r.name for r in result.by_type("genai-scale:index:LeaderWorkerSetController")] == ["lws"]
    groups = result.by_type(LWS)
    assert [g.name for g in groups] == ["llama-405b-lws"]
    assert groups[0].get("spec.leaderWorkerTemplate.size") == 2
    assert result.outputs["vllmServices"]["llama-405b"]["layout"] == {
        "nodes": 2, "tensorParallelSize": 8, "pipelineParallelSize": 2}
    gateway = next(r for r in result.by_type("kubernetes:core/v1:ConfigMap") if r.name == "gateway-config")
    text = gateway.get("data")["gateway.yaml"]
    assert "vllm-llama-405b:" in text and "http://llama-405b.genai-serving.svc.cluster.local:8000/v1" in text
    assert "apiKeyEnv: VLLM_LLAMA_405B_API_KEY" in text


def test_no_lws_controller_without_a_multi_node_model():
    for stack in ("dev", "staging"):
        result, _ = planned(stack)
        assert result.by_type("genai-scale:index:LeaderWorkerSetController") == []


def test_the_groups_arguments_parse_with_vllms_parser(prod_plan, vllm_parser):
    result, _ = prod_plan
    lws = result.by_type(LWS)[0]
    env = {"$(LWS_WORKER_INDEX)": "1", "$(LWS_LEADER_ADDRESS)": "llama-405b-0.llama-405b.genai-serving"}
    for role, headless in (("leaderTemplate", False), ("workerTemplate", True)):
        argv = [env.get(a, a) for a in lws.get(f"spec.leaderWorkerTemplate.{role}.spec.containers.0.args")]
        ns = vllm_parser.parse(argv)
        assert (ns.tensor_parallel_size, ns.pipeline_parallel_size, ns.nnodes) == (8, 2, 2)
        assert ns.served_model_name == ["llama-405b"] and bool(ns.headless) is headless


def test_nodes_on_an_instance_type_without_efa_is_reported_at_the_node_group():
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml")  # a10g: g5.xlarge, no EFA
    raw["genai-scale:serving"] = {"models": {"big": {"nodeGroup": "a10g", "modelId": MODEL_405B, "nodes": 2}}}
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="dev")
    text = str(exc.value)
    assert ("genai-scale:nodeGroups.a10g.instanceType = 'g5.xlarge': an EFA-capable instance type, not g5.xlarge "
            "(serving.models.big is served across nodes)") in text
    assert "genai-scale:nodeGroups.a10g.efa = False: true: serving.models.big is served across 2 nodes" in text
