"""Scheduled floors and capacity facts on the ScaledObject of VllmService and MultiNodeVllmService: KEDA ``cron``
triggers after the others, the ``genai-scale.io/capacity-plan`` annotation, the vendored KEDA CRD, every message."""

from __future__ import annotations

import copy
import json

import pytest

from components import CronFloor
from components.errors import ArgsError
from components.serving.vllm.args import AutoscalingSettings
from components.serving.vllm.manifests import CAPACITY_ANNOTATION, render_manifests
from components.serving.vllm.multinode import render_multinode_manifests
from components.serving.vllm.args import VllmModelSettings, VllmServiceArgs
from components.serving.vllm.multinode import MultiNodeVllmServiceArgs
from tests.kit.vllm import placement
from tests.infra.test_upstream_truth import cr_errors

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
WIRING = dict(image="123456789012.dkr.ecr.us-east-1.amazonaws.com/genai-scale/vllm-nvidia:0.31.0-abc@sha256:00",
              prometheus_url="http://monitoring-prometheus.monitoring.svc.cluster.local:9090",
              oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
              oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/X")
FLOORS = (CronFloor(timezone="Europe/Berlin", start="45 7 * * 1-5", end="0 18 * * 1-5", desired_replicas=4),
          CronFloor(timezone="Europe/Berlin", start="45 21 * * 1-5", end="0 2 * * 2-6", desired_replicas=3))
CAPACITY = {"target": "llama-8b", "peakRps": 10.0, "offPeakRps": 1.0, "replicaRps": 2.5, "sloReachable": True,
            "slo": "TTFT p95 <= 1000 ms", "overRatio": 2.0}


class single:
    """VllmService args as tests/components/serving/vllm/test_service.py builds them (Llama 3.1 8B on g5.2xlarge)."""

    @staticmethod
    def args(**kw) -> VllmServiceArgs:
        model = VllmModelSettings(model_id="meta-llama/Llama-3.1-8B-Instruct", weights_uri="s3://genai-models/llama-8b/",
                                  kv_tokens_per_sequence=1024)
        base = dict(model=model, placement=placement("a10g", "g5.2xlarge"),
                    autoscaling=AutoscalingSettings(min_replicas=1, max_replicas=6, p95_latency_ms=4000,
                                                    tokens_per_second_per_replica=800), **WIRING)
        return VllmServiceArgs(**{**base, **kw})


class mn:
    """A 405B model over two p5.48xlarge nodes, as test_multinode.py builds it."""

    @staticmethod
    def args(**kw) -> MultiNodeVllmServiceArgs:
        model = VllmModelSettings(model_id="meta-llama/Llama-3.1-405B-Instruct",
                                  weights_uri="s3://genai-models/llama-405b/", max_model_len=8192,
                                  tensor_parallel_size=8)
        return MultiNodeVllmServiceArgs(**{"model": model, "placement": placement("p5", "p5.48xlarge"), **WIRING,
                                           **kw})


def scaling(**kw) -> AutoscalingSettings:
    return AutoscalingSettings(**{"min_replicas": 1, "max_replicas": 6, "p95_latency_ms": 4000,
                                  "tokens_per_second_per_replica": 800, "cron_floors": FLOORS, **kw})


@pytest.fixture(scope="module")
def scaled():
    return render_manifests("llama-8b", single.args(autoscaling=scaling(), capacity=CAPACITY))["ScaledObject"]


def test_cron_floors_follow_the_other_triggers(scaled):
    plain = render_manifests("llama-8b", single.args())["ScaledObject"]
    triggers = scaled["spec"]["triggers"]
    assert triggers[:-2] == plain["spec"]["triggers"]
    assert triggers[-2:] == [
        {"type": "cron", "name": "cron-0745-1-5-r4", "metadata": {
            "timezone": "Europe/Berlin", "start": "45 7 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "4"}},
        {"type": "cron", "name": "cron-2145-1-5-r3", "metadata": {
            "timezone": "Europe/Berlin", "start": "45 21 * * 1-5", "end": "0 2 * * 2-6", "desiredReplicas": "3"}}]


def test_capacity_is_compact_json_on_the_scaled_object_only(scaled):
    raw = scaled["metadata"]["annotations"][CAPACITY_ANNOTATION]
    assert raw == json.dumps(CAPACITY, separators=(",", ":"), sort_keys=True)
    assert raw.startswith('{"offPeakRps":1.0,"overRatio":2.0,"peakRps":10.0,')
    assert json.loads(raw) == CAPACITY
    plain = render_manifests("llama-8b", single.args())
    assert "annotations" not in plain["ScaledObject"]["metadata"]
    assert all(CAPACITY_ANNOTATION not in (b["metadata"].get("annotations") or {}) for b in plain.values())


def test_without_floors_or_capacity_nothing_changes():
    a = single.args()
    assert a.autoscaling.cron_floors == () and a.capacity is None
    assert all(t["type"] == "prometheus" for t in render_manifests("llama-8b", a)["ScaledObject"]["spec"]["triggers"])


def test_the_scaled_object_validates_against_the_vendored_keda_crd(scaled):
    assert cr_errors("llama-8b", SCALED_OBJECT, copy.deepcopy(scaled)) == []


def test_multinode_appends_the_same_floors_and_annotation():
    a = mn.args(autoscaling=AutoscalingSettings(min_replicas=0, max_replicas=4, p95_latency_ms=4000,
                                                cron_floors=FLOORS[:1]), capacity=CAPACITY)
    so = render_multinode_manifests("llama-405b", a)["ScaledObject"]
    assert so["spec"]["triggers"][-1]["type"] == "cron"
    assert so["spec"]["triggers"][-1]["metadata"]["desiredReplicas"] == "4"
    assert json.loads(so["metadata"]["annotations"][CAPACITY_ANNOTATION])["target"] == "llama-8b"
    assert cr_errors("llama-405b", SCALED_OBJECT, copy.deepcopy(so)) == []


def _problems(**kw) -> list[tuple[str, str]]:
    with pytest.raises(ArgsError) as err:
        single.args(**kw)
    return [(p.path, p.expected) for p in err.value.problems]


def test_floors_must_lie_between_min_and_max_replicas():
    bad = (CronFloor(start="0 7 * * *", end="0 9 * * *", desired_replicas=8),
           CronFloor(start="0 9 * * *", end="0 11 * * *", desired_replicas=1))
    assert _problems(autoscaling=scaling(cron_floors=bad)) == [
        ("autoscaling.cron_floors[0].desired_replicas", "<= autoscaling.max_replicas (6)"),
        ("autoscaling.cron_floors[1].desired_replicas",
         "> autoscaling.min_replicas (1): a floor at or below the minimum raises nothing")]


def test_floors_need_keda():
    assert ("autoscaling.cron_floors", "none without keda (KEDA's cron triggers hold the floors)") in \
        _problems(autoscaling=scaling(), keda=False)


def test_capacity_must_be_plain_json():
    found = _problems(capacity={"peakRps": float("nan")})
    assert found == [("capacity", "a JSON object of strings, numbers (no NaN or infinity), booleans, null, lists "
                                  "and objects")]
