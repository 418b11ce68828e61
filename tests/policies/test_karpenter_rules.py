"""The Karpenter rules (policies/karpenter.py): a passing and a failing case for each, with its message, and the
rendered NodePools of KarpenterNodePools passing them."""

from __future__ import annotations

import copy

import pytest

from components.foundation.node_pools import NodePoolSpec, render_node_pool
from policies.karpenter import pool_vendors
from policies.pack import RULES
from tests.policies.kit import res, violations

TAINTED = "karpenter-accelerator-pools-tainted"
LIMITED = "karpenter-pools-limited"
BUDGETS = "karpenter-disruption-budgets"
NTH = "karpenter-no-termination-handler"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _pool(name="h100", spec=None):
    body = render_node_pool(name, spec or NodePoolSpec(instance_types=["p5.48xlarge"]), "pools-nvidia")
    return res(NODEPOOL, name, {k: body[k] for k in ("metadata", "spec")})


def _release(name, chart, values=None):
    return res(RELEASE, name, {"chart": chart, "version": "1", "namespace": "kube-system", "values": values or {}})


def test_the_rules_are_registered():
    assert {TAINTED, LIMITED, BUDGETS, NTH} <= set(RULES)


@pytest.mark.parametrize("types", [["p5.48xlarge"], ["g6e.xlarge", "g6e.2xlarge"], ["inf2.xlarge"], ["g5.xlarge"]])
def test_rendered_pools_pass(types):
    pool = _pool("p", NodePoolSpec(instance_types=types))
    for rule in (TAINTED, LIMITED, BUDGETS):
        assert violations([pool], rule) == []


def test_vendor_from_instance_types_and_families():
    assert pool_vendors({"spec": {"template": {"spec": {"requirements": [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6e", "inf2", "m7i"]}]}}}}) == [
        "neuron", "nvidia"]
    assert pool_vendors({"spec": {"template": {"spec": {"requirements": [
        {"key": "node.kubernetes.io/instance-type", "operator": "NotIn", "values": ["p5.48xlarge"]}]}}}}) == []


def test_untainted_accelerator_pool_fails():
    pool = _pool()
    pool["inputs"]["spec"]["template"]["spec"]["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    assert violations([pool], TAINTED) == [
        "the pool may launch nvidia instances but its nodes lack the nvidia.com/gpu:NoSchedule taint: any pending pod "
        "can bring up or land on an accelerator node"]
    soft = _pool()
    soft["inputs"]["spec"]["template"]["spec"]["taints"][0]["effect"] = "PreferNoSchedule"
    assert len(violations([soft], TAINTED)) == 1
    cpu = _pool()
    cpu["inputs"]["spec"]["template"]["spec"]["requirements"][0]["values"] = ["m7i.large"]
    cpu["inputs"]["spec"]["template"]["spec"]["taints"] = []
    assert violations([cpu], TAINTED) == []


def test_pool_without_limits_fails():
    pool = _pool()
    del pool["inputs"]["spec"]["limits"]
    assert violations([pool], LIMITED) == [
        "spec.limits is not set: Karpenter launches as many nodes as pending pods ask for"]
    cpu_only = _pool()
    cpu_only["inputs"]["spec"]["limits"] = {"cpu": "384"}
    assert violations([cpu_only], LIMITED) == [
        "spec.limits has no nvidia.com/gpu: the pool may launch nvidia instances without bound (limits: cpu)"]


def test_pool_without_budgets_fails():
    pool = _pool()
    pool["inputs"]["spec"]["disruption"] = {"consolidationPolicy": "WhenEmpty"}
    assert violations([pool], BUDGETS) == [
        "spec.disruption.budgets is not set: Karpenter's default lets it disrupt 10% of the nodes at once"]


def test_termination_handler_beside_the_interruption_queue_fails():
    karpenter = _release("karpenter", "oci://public.ecr.aws/karpenter/karpenter",
                         {"settings": {"clusterName": "c", "interruptionQueue": "q"}})
    nth = _release("nth", "aws-node-termination-handler")
    assert violations([karpenter, nth], NTH) == [
        "nth: aws-node-termination-handler runs beside Karpenter release karpenter, which handles interruptions from "
        "queue q"]
    assert violations([karpenter], NTH) == []
    no_queue = copy.deepcopy(karpenter)
    no_queue["inputs"]["values"]["settings"].pop("interruptionQueue")
    assert violations([no_queue, nth], NTH) == []
