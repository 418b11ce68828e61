"""The multi-node serving rules (policies/multinode.py): a passing and a failing case for each, with its message."""

from __future__ import annotations

import copy

from policies.pack import RULES
from tests.policies.kit import res, violations

EFA_RULE = "lws-efa-on-leader-and-workers"
PRIV = "multinode-pods-least-privilege"
NETPOL_RULE = "multinode-network-policy"
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
LABELS = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "llama-405b"}


def _template(efa=True, caps=(), privileged=None, role="worker"):
    resources = {"nvidia.com/gpu": "8", **({"vpc.amazonaws.com/efa": "32"} if efa else {})}
    sc = {"capabilities": {"drop": ["ALL"], **({"add": list(caps)} if caps else {})}}
    if privileged is not None:
        sc["privileged"] = privileged
    return {"metadata": {"labels": {**LABELS, "role": role}}, "spec": {"containers": [{
        "name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "securityContext": sc,
        "resources": {"limits": dict(resources), "requests": dict(resources)}}]}}


def _lws(leader=None, worker=None, name="llama-405b", ns="genai-serving"):
    lwt = {"size": 2, "workerTemplate": worker if worker is not None else _template()}
    if leader is not None:
        lwt["leaderTemplate"] = leader
    return res(LWS, name, {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
                           "metadata": {"name": name, "namespace": ns},
                           "spec": {"replicas": 1, "leaderWorkerTemplate": lwt}})


def _netpol(selector=None, ingress=None, types=("Ingress",), ns="genai-serving"):
    peers = [{"podSelector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-405b"}}}]
    return res(NETPOL, "llama-405b-group", {"metadata": {"name": "llama-405b-group", "namespace": ns}, "spec": {
        "podSelector": selector if selector is not None else {
            "matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-405b"}},
        "policyTypes": list(types), "ingress": ingress if ingress is not None else [{"from": peers}]}})


def test_the_rules_are_registered():
    assert {EFA_RULE, PRIV, NETPOL_RULE} <= set(RULES)


class TestEfaOnLeaderAndWorkers:
    def test_one_template_for_both_passes(self):
        assert violations([_lws()], EFA_RULE) == []

    def test_both_templates_requesting_efa_pass(self):
        assert violations([_lws(leader=_template(role="leader"))], EFA_RULE) == []

    def test_no_efa_anywhere_is_not_this_rules_business(self):
        assert violations([_lws(leader=_template(efa=False), worker=_template(efa=False))], EFA_RULE) == []

    def test_a_leader_without_efa_fails(self):
        assert violations([_lws(leader=_template(efa=False, role="leader"))], EFA_RULE) == [
            "the leader template requests no vpc.amazonaws.com/efa while the other does: its NCCL traffic falls "
            "back to TCP and slows the whole group"]

    def test_workers_without_efa_fail(self):
        found = violations([_lws(leader=_template(role="leader"), worker=_template(efa=False))], EFA_RULE)
        assert len(found) == 1 and found[0].startswith("the worker template requests no vpc.amazonaws.com/efa")

    def test_a_zero_count_is_no_request(self):
        t = _template(role="leader")
        t["spec"]["containers"][0]["resources"] = {"limits": {"vpc.amazonaws.com/efa": "0"}}
        assert len(violations([_lws(leader=t)], EFA_RULE)) == 1


class TestLeastPrivilege:
    def test_ipc_lock_only_passes(self):
        assert violations([_lws(leader=_template(role="leader"))], PRIV) == []

    def test_privileged_fails(self):
        assert violations([_lws(worker=_template(privileged=True))], PRIV) == [
            "leader and worker container vllm runs privileged"]

    def test_extra_capabilities_fail(self):
        assert violations([_lws(leader=_template(caps=("IPC_LOCK", "SYS_ADMIN", "NET_ADMIN"), role="leader"))],
                          PRIV) == ["leader container vllm adds capabilities IPC_LOCK, NET_ADMIN, SYS_ADMIN (none may "
                                    "be added: EFA memory registration needs the node's memlock limit)"]

    def test_ipc_lock_alone_fails(self):
        """The vLLM docs' RDMA pod spec adds IPC_LOCK; a non-root engine never gets it and restricted PSS refuses it."""
        assert violations([_lws(worker=_template(caps=("IPC_LOCK",)))], PRIV) == [
            "leader and worker container vllm adds capabilities IPC_LOCK (none may be added: EFA memory registration "
            "needs the node's memlock limit)"]

    def test_init_containers_are_judged(self):
        t = _template()
        t["spec"]["initContainers"] = [{"name": "setup", "image": "busybox:1.36",
                                        "securityContext": {"privileged": True}}]
        assert violations([_lws(worker=t)], PRIV) == ["leader and worker container setup runs privileged"]


class TestNetworkPolicy:
    def test_a_policy_selecting_the_group_passes(self):
        assert violations([_lws(leader=_template(role="leader")), _netpol()], NETPOL_RULE) == []

    def test_a_policy_selecting_by_template_labels_passes(self):
        assert violations([_lws(), _netpol(selector={"matchLabels": dict(LABELS)})], NETPOL_RULE) == []

    def test_no_policy_fails(self):
        assert violations([_lws()], NETPOL_RULE) == [
            "llama-405b: no NetworkPolicy selects its leader and worker pods: the group's unencrypted traffic is "
            "open to every pod of the cluster"]

    def test_a_policy_selecting_only_the_workers_fails_for_the_leader(self):
        found = violations([_lws(leader=_template(role="leader")),
                            _netpol(selector={"matchLabels": {"role": "worker"}})], NETPOL_RULE)
        assert found == ["llama-405b: no NetworkPolicy selects its leader pods: the group's unencrypted traffic is "
                         "open to every pod of the cluster"]

    def test_a_policy_in_another_namespace_or_egress_only_does_not_count(self):
        assert len(violations([_lws(), _netpol(ns="other")], NETPOL_RULE)) == 1
        assert len(violations([_lws(), _netpol(types=("Egress",))], NETPOL_RULE)) == 1

    def test_an_ingress_rule_without_from_fails(self):
        assert violations([_lws(), _netpol(ingress=[{"ports": [{"port": 8000}]}])], NETPOL_RULE) == [
            "llama-405b: NetworkPolicy llama-405b-group selects its leader and worker pods with an ingress rule "
            "without 'from', which admits every source"]

    def test_rules_judge_only_leaderworkersets(self):
        other = copy.deepcopy(_netpol())
        assert violations([other], NETPOL_RULE) == []


def test_the_shipped_405b_group_passes_and_fires_when_mutated():
    from infra.tiers import pack_config_for
    from policies.engine import evaluate
    from tests.policies.kit import dropped, mutated
    from tests.stack_plans import planned

    resources = planned("prod")[0].resources

    def found(rs, rule):
        return [v.message for v in evaluate(list(rs), config=pack_config_for("scale")).by_policy(rule)]

    assert [found(resources, r) for r in (EFA_RULE, PRIV, NETPOL_RULE)] == [[], [], []]

    def worker(i):
        return i["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]

    def no_worker_efa(i):
        for section in ("requests", "limits"):
            worker(i)["resources"][section].pop("vpc.amazonaws.com/efa")
    assert found(mutated(resources, "llama-405b-lws", no_worker_efa, type_=LWS), EFA_RULE) == [
        "the worker template requests no vpc.amazonaws.com/efa while the other does: its NCCL traffic falls back to "
        "TCP and slows the whole group"]
    admin = mutated(resources, "llama-405b-lws", lambda i: worker(i)["securityContext"]["capabilities"].update(
        add=["IPC_LOCK", "SYS_ADMIN"]), type_=LWS)
    assert found(admin, PRIV) == ["worker container vllm adds capabilities IPC_LOCK, SYS_ADMIN (none may be added: "
                                  "EFA memory registration needs the node's memlock limit)"]
    assert found(dropped(resources, "llama-405b-group-netpol"), NETPOL_RULE) == [
        "llama-405b: no NetworkPolicy selects its worker pods: the group's unencrypted traffic is open to every pod "
        "of the cluster"]
