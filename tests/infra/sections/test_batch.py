"""The batch section in every tier: the queue and its DLQ (encrypted), the ScaledJob with pod identity on tainted spot
capacity, the outputs, the tier sizes, and the config rules' messages."""

from __future__ import annotations

import json

import pytest

from infra.config import ROOT, ConfigError, build_settings, read_stack_file
from infra.sections import SECTIONS, batch
from tests.stack_plans import planned

STACKS = {"dev": "prototype", "staging": "growth", "prod": "scale"}
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def cluster_job(result):
    return next(j for j in result.by_type(SCALED_JOB) if j.name == "batch-scaledjob")


def job_pod(result) -> dict:
    return cluster_job(result).inputs["spec"]["jobTargetRef"]["template"]["spec"]


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_tier_has_encrypted_queues_a_scaled_job_and_tainted_spot_capacity(stack):
    result, cfg = planned(stack)
    queues = {q.name: q.inputs for q in result.by_type("aws:sqs/queue:Queue") if q.name.startswith("batch-")}
    dispatch = {"batch-dispatch-queue", "batch-dispatch-dlq"} if stack == "staging" else set()
    assert set(queues) == {"batch-queue", "batch-dlq"} | dispatch  # staging: the async endpoint's dispatch queues
    assert all(q["kmsMasterKeyId"] for q in queues.values())
    assert json.loads(queues["batch-queue"]["redrivePolicy"])["maxReceiveCount"] == cfg.batch.max_receives
    job = cluster_job(result).inputs["spec"]
    assert job["triggers"][0]["type"] == "aws-sqs-queue"
    assert job["maxReplicaCount"] == cfg.batch.max_parallelism and job["minReplicaCount"] == 0
    assert result.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "batch-trigger-auth").inputs["spec"] == {
        "podIdentity": {"provider": "aws"}}
    assert len([a for a in result.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if a.name.startswith("batch-")]) == 2 + len(dispatch) // 2
    groups = {g.name: g.inputs for g in result.by_type(NODE_GROUP)}
    for name in cfg.batch.node_groups:
        g = groups[name]
        assert g["capacityType"] == "SPOT" and g["scalingConfig"]["minSize"] == 0
        assert {"key": "genai-scale.io/batch", "value": "true", "effect": "NO_SCHEDULE"} in g["taints"]
        assert g["labels"]["genai-scale.io/capacity"] == "batch"
    pod = job_pod(result)
    assert pod["nodeSelector"]["genai-scale.io/capacity"] == "batch"
    assert "genai-scale/node-group" not in pod["nodeSelector"] or len(cfg.batch.node_groups) == 1
    assert set(result.outputs) >= {"batchQueueUrl", "batchBucket"}
    assert result.outputs["batchQueueUrl"].startswith("https://sqs.")


def test_the_worker_runs_the_gateway_image_and_the_engine_the_models_image():
    result, _ = planned("dev")
    pod = job_pod(result)
    gateway = next(d for d in result.by_type("kubernetes:apps/v1:Deployment") if d.name.startswith("gateway"))
    assert pod["containers"][0]["image"] == gateway.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
    vllm = next(d for d in result.by_type("kubernetes:apps/v1:Deployment") if d.name == "llama-8b-deployment")
    engine = pod["initContainers"][0]
    service = vllm.inputs["spec"]["template"]["spec"]["containers"][0]
    assert engine["image"] == service["image"]
    assert engine["args"][engine["args"].index("--served-model-name") + 1] == "llama-8b"


def test_tier_sizes_prototype_small_scale_larger_with_diverse_spot_and_an_on_demand_fallback():
    proto, growth, scale = (planned(s)[1].batch for s in STACKS)
    assert proto.max_parallelism <= 2 and proto.on_demand_fallback is None
    assert proto.max_parallelism < growth.max_parallelism < scale.max_parallelism
    _, cfg = planned("prod")
    types = {cfg.node_groups[n].instance_type for n in scale.node_groups}
    assert len(types) >= 3
    fb = cfg.node_groups[scale.on_demand_fallback]
    assert fb.capacity_type == "ON_DEMAND" and fb.extra_labels["genai-scale.io/capacity-fallback"] == "on-demand"
    result, _ = planned("prod")
    pod = job_pod(result)
    assert "genai-scale/node-group" not in pod["nodeSelector"]  # any of the batch groups may take the pod


@pytest.mark.parametrize("stack", list(STACKS))
def test_batch_groups_scale_up_from_zero_for_pods_that_tolerate_the_batch_taint(stack):
    """The cluster autoscaler's node-template tags carry the batch taint and label, so a pending worker pod (which
    tolerates and selects them) brings a batch group up from zero."""
    result, cfg = planned(stack)
    tags = {t.name: t.inputs["tag"] for t in result.by_type("aws:autoscaling/tag:Tag")}
    for name in cfg.batch.node_groups:
        taint = tags[f"{name}-ca-taint-genai-scale.io-batch"]
        assert (taint["key"], taint["value"]) == ("k8s.io/cluster-autoscaler/node-template/taint/genai-scale.io/batch",
                                                  "true:NoSchedule")
        label = tags[f"{name}-ca-label-genai-scale.io-capacity"]
        assert label["value"] == "batch"


def test_batch_builds_after_the_gateway_and_the_managed_endpoints():
    from infra.sections import gateway, managed
    assert SECTIONS.index(batch) > SECTIONS.index(gateway) > SECTIONS.index(managed)


def with_batch(batch_cfg: dict, stack: str = "dev", **more) -> dict:
    raw = read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    raw["genai-scale:batch"] = batch_cfg
    raw.update(more)
    return raw


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.dev.yaml")
    return str(exc.value)


def test_unknown_model_and_node_group_are_named_with_the_choices():
    text = problems_of(with_batch({"model": "qwen", "nodeGroups": ["h200"]}))
    assert "genai-scale:batch.model = 'qwen': a model of serving.models (llama-8b)" in text
    assert "genai-scale:batch.nodeGroups[0] = 'h200': a node group of nodeGroups (a10g, batch-a10g, inf2)" in text


def test_a_batch_node_group_must_be_spot():
    ng = {"batch-a10g": {"capacityType": "ON_DEMAND"}}
    text = problems_of(with_batch({}, **{"genai-scale:nodeGroups": ng}))
    assert ("genai-scale:nodeGroups.batch-a10g.capacityType = 'ON_DEMAND': SPOT for a batch node group (name an "
            "ON_DEMAND group as batch.onDemandFallback)") in text


def test_the_on_demand_fallback_must_be_on_demand_and_labelled():
    text = problems_of(with_batch({"onDemandFallback": "a10g"}, **{
        "genai-scale:nodeGroups": {"a10g": {"capacityType": "ON_DEMAND"}}}))
    assert "genai-scale:nodeGroups.a10g.extraLabels = {}: genai-scale.io/capacity-fallback: on-demand" in text
    text = problems_of(with_batch({"onDemandFallback": "batch-a10g", "nodeGroups": ["batch-a10g"]}))
    assert "genai-scale:nodeGroups.batch-a10g.capacityType = 'SPOT': ON_DEMAND for the batch on-demand fallback" \
        in text


def test_a_node_group_without_the_batch_taint_and_label_is_refused():
    text = problems_of(with_batch({"nodeGroups": ["a10g"]}, **{
        "genai-scale:nodeGroups": {"a10g": {"capacityType": "SPOT"}}}))
    assert "genai-scale:batch.nodeGroups.labels" in text and "batch capacity: a node group labelled " \
        "genai-scale.io/capacity=batch" in text
    assert "batch capacity: a node group tainted genai-scale.io/batch=true:NoSchedule" in text


def test_batch_needs_keda_and_the_gateway():
    text = problems_of(with_batch({}, **{"genai-scale:gateway": {"enabled": False}}))
    assert "genai-scale:gateway.enabled = False: true with batch.enabled (the workers run the gateway image)" in text


def test_component_bounds_are_config_bounds():
    text = problems_of(with_batch({"terminationGraceSeconds": 300, "maxParallelism": 0}))
    assert "genai-scale:batch.terminationGraceSeconds = 300" in text
    assert "genai-scale:batch.maxParallelism = 0" in text


def test_the_worker_image_carries_serving_batch():
    """The ScaledJob runs ``python -m serving.batch worker`` in the gateway image: its context must hold the package."""
    from components.gateway.gateway import context_files
    assert "serving/batch/worker.py" in context_files()
    assert "COPY serving/batch" in (ROOT / "serving" / "gateway" / "Dockerfile").read_text()
