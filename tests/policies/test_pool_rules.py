"""The model-pool rules (policies/pools.py): a passing and a failing case for each, with its message."""

from __future__ import annotations

import pytest

from policies.pack import RULES
from policies.pools import admin_flags
from tests.policies.kit import res, violations, with_

ADMIN = "vllm-admin-endpoints-private"
METRICS = "keda-no-removed-vllm-metrics"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
LABELS = {"app.kubernetes.io/name": "vllm-pool", "app.kubernetes.io/instance": "shared"}


def _pool(env=({"name": "VLLM_SERVER_DEV_MODE", "value": "1"},), labels=LABELS, ns="genai-serving"):
    return res(DEPLOYMENT, "shared", {"metadata": {"name": "shared", "namespace": ns}, "spec": {"template": {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "llama-8b", "image": "vllm/vllm-openai:v0.11.0", "env": list(env)}]}}}})


def _service(type_=None, selector=LABELS, name="shared"):
    spec = {"selector": dict(selector), "clusterIP": "None", "ports": [{"port": 8000}]}
    if type_:
        spec.pop("clusterIP")
        spec["type"] = type_
    return res(SERVICE, name, {"metadata": {"name": name, "namespace": "genai-serving"}, "spec": spec})


def _netpol(ingress=None, selector=LABELS, name="shared"):
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "genai-gateway"}},
              "podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]
    return res(NETPOL, name, {"metadata": {"name": name, "namespace": "genai-serving"}, "spec": {
        "podSelector": {"matchLabels": dict(selector)}, "policyTypes": ["Ingress"],
        "ingress": ingress if ingress is not None else [{"from": peers, "ports": [{"port": 8000}]}]}})


def test_the_rules_are_registered():
    assert {ADMIN, METRICS} <= set(RULES)


@pytest.mark.parametrize(("env", "flags"), [
    ({"VLLM_SERVER_DEV_MODE": "1"}, ["VLLM_SERVER_DEV_MODE=1"]),
    ({"VLLM_SERVER_DEV_MODE": "0"}, []),
    ({"VLLM_SERVER_DEV_MODE": "yes"}, []),  # vLLM would fail to parse it: not on
    ({"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}, ["VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"]),
    ({"VLLM_ALLOW_RUNTIME_LORA_UPDATING": " 1 "}, ["VLLM_ALLOW_RUNTIME_LORA_UPDATING= 1 "]),
    ({"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "false"}, []),
])
def test_admin_flags_are_read_as_vllm_reads_them(env, flags):
    assert admin_flags({"env": [{"name": k, "value": v} for k, v in env.items()]}) == flags


def test_a_pool_behind_a_headless_service_and_a_named_network_policy_passes():
    assert violations([_pool(), _service(), _netpol()], ADMIN) == []


def test_an_engine_without_admin_switches_is_not_judged():
    assert violations([_pool(env=()), _service("LoadBalancer")], ADMIN) == []


def test_a_load_balancer_service_fires():
    found = violations([_pool(), _service(), _service("LoadBalancer", name="public"), _netpol()], ADMIN)
    assert found == ["shared (VLLM_SERVER_DEV_MODE=1): Service public of type LoadBalancer exposes the admin "
                     "endpoints outside the cluster"]


def test_a_node_port_service_fires_for_the_lora_switch():
    pool = _pool(env=({"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"},))
    found = violations([pool, _service("NodePort"), _netpol()], ADMIN)
    assert found == ["shared (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): Service shared of type NodePort exposes the "
                     "admin endpoints outside the cluster"]


def test_a_service_of_another_selector_or_namespace_does_not_count():
    other = _service("LoadBalancer", selector={"app.kubernetes.io/name": "other"}, name="other")
    elsewhere = with_(_service("LoadBalancer", name="elsewhere"), "inputs.metadata.namespace", "default")
    assert violations([_pool(), _service(), other, elsewhere, _netpol()], ADMIN) == []


def test_an_ingress_to_the_pool_service_fires():
    ingress = res(INGRESS, "pool-ingress", {"metadata": {"name": "pool-ingress", "namespace": "genai-serving"},
                                            "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {
                                                "service": {"name": "shared", "port": {"number": 8000}}}}]}}]}})
    found = violations([_pool(), _service(), _netpol(), ingress], ADMIN)
    assert found == ["shared (VLLM_SERVER_DEV_MODE=1): Ingress pool-ingress routes to Service shared, which selects "
                     "its pods"]


def test_no_network_policy_fires():
    assert violations([_pool(), _service()], ADMIN) == [
        "shared (VLLM_SERVER_DEV_MODE=1): no NetworkPolicy selects its pods: every pod of the cluster can call the "
        "admin endpoints"]


def test_an_egress_only_or_other_pods_network_policy_does_not_count():
    egress = with_(_netpol(), "inputs.spec.policyTypes", ["Egress"])
    other = _netpol(selector={"app.kubernetes.io/name": "other"}, name="other")
    assert len(violations([_pool(), _service(), egress, other], ADMIN)) == 1


@pytest.mark.parametrize(("ingress", "why"), [
    ([{}], "an ingress rule without 'from' admits every source"),
    ([{"from": [{}]}], "an ingress rule has an empty 'from' peer"),
    ([{"from": [{"namespaceSelector": {}}]}], "an ingress rule admits every namespace (namespaceSelector: {})"),
    ([{"from": [{"podSelector": {}}]}], "an ingress rule admits every pod of the namespace (podSelector: {})"),
    ([{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}], "an ingress rule admits ipBlock 0.0.0.0/0"),
])
def test_an_open_ingress_rule_fires(ingress, why):
    assert violations([_pool(), _service(), _netpol(ingress)], ADMIN) == [
        f"shared (VLLM_SERVER_DEV_MODE=1): NetworkPolicy shared: {why}"]


def test_a_namespace_wide_network_policy_with_named_peers_passes():
    assert violations([_pool(), _service(), with_(_netpol(), "inputs.spec.podSelector", {})], ADMIN) == []


def _scaled_object(query):
    return res(SCALED_OBJECT, "shared", {"metadata": {"name": "shared", "namespace": "genai-serving"}, "spec": {
        "scaleTargetRef": {"name": "shared"}, "triggers": [
            {"type": "prometheus", "name": "kv-cache", "metadata": {"query": query, "threshold": "0.8"}}]}})


def test_a_scaled_object_on_current_metrics_passes():
    assert violations([_scaled_object('max(vllm:kv_cache_usage_perc{namespace="genai-serving"})')], METRICS) == []


def test_a_scaled_object_on_the_removed_kv_metric_fires():
    found = violations([_scaled_object('max(vllm:gpu_cache_usage_perc{namespace="genai-serving"})')], METRICS)
    assert found == ["trigger kv-cache queries vllm:gpu_cache_usage_perc, which vLLM removed (its successor is "
                     "vllm:kv_cache_usage_perc): it reads nothing and never scales"]


def test_the_shipped_pool_passes_and_fires_when_published_or_unfenced():
    from infra.tiers import pack_config_for
    from policies.engine import evaluate
    from tests.policies.kit import dropped, mutated
    from tests.stack_plans import planned

    resources = planned("staging")[0].resources

    def found(rs):
        return [v.message for v in evaluate(list(rs), config=pack_config_for("growth")).by_policy(ADMIN)]

    assert found(resources) == []
    public = mutated(resources, "shared-l40s-service", lambda i: i["spec"].update(type="LoadBalancer"), type_=SERVICE)
    assert found(public) == [
        "shared-l40s-deployment (VLLM_SERVER_DEV_MODE=1, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): Service "
        "shared-l40s-service of type LoadBalancer exposes the admin endpoints outside the cluster"]
    assert found(dropped(resources, "shared-l40s-netpol")) == [
        "shared-l40s-deployment (VLLM_SERVER_DEV_MODE=1, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): no NetworkPolicy "
        "selects its pods: every pod of the cluster can call the admin endpoints"]
