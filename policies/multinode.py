"""Rules for multi-node serving (a model served by a group of pods on several nodes, a ``LeaderWorkerSet``).

- ``lws-efa-on-leader-and-workers``: a LeaderWorkerSet whose pods request EFA interfaces (``vpc.amazonaws.com/efa``)
  must request them on the leader template and the worker template. The leader runs the worker template when the
  LWS has no ``leaderTemplate`` (LeaderWorkerSet API, ``leaderWorkerTemplate``); a leader without EFA falls back to
  TCP sockets for its share of NCCL traffic and slows the whole group.
- ``multinode-pods-least-privilege``: the group's containers (leader and workers, init containers too) run without
  ``privileged`` and add no Linux capability: not even ``IPC_LOCK``, which the vLLM docs' RDMA pod spec adds but
  which a non-root process never receives (kubernetes/kubernetes#56374) and which the restricted Pod Security
  Standard refuses; pinning EFA/NCCL buffers needs the node's locked-memory limit instead.
- ``multinode-network-policy``: the traffic between the group's pods (NCCL over EFA, the tensor and pipeline
  parallel exchange) is not encrypted; a NetworkPolicy with an Ingress type must select both leader and worker pods
  of every LeaderWorkerSet, and none of its ingress rules may admit every source (a rule without ``from``).

All judge rendered resource properties only. The LWS controller labels each pod with
``leaderworkerset.sigs.k8s.io/name: <LWS name>`` and ``leaderworkerset.sigs.k8s.io/worker-index`` (``"0"`` on the
leader) besides the template's labels; a NetworkPolicy may select any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import Severity

from policies._props import as_list, as_map, container_name, containers, get, is_map, namespace_of, selector_matches
from policies._rule import Rule, Subject, resource_policy, stack_policy

LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
EFA = "vpc.amazonaws.com/efa"
NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
"""The label the LWS controller puts on every pod of a LeaderWorkerSet (its name)."""
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
"""The label the LWS controller puts on every pod of a group: "0" on the leader (LWS API, v0.x)."""
ALLOWED_CAPABILITIES: frozenset[str] = frozenset()


def templates(props: Mapping[str, Any]) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """``{"leader": (metadata, spec), "worker": (metadata, spec)}`` of a LeaderWorkerSet, or ``{"leader and worker":
    ...}`` when it has no ``leaderTemplate`` (the leader then runs the worker template)."""
    lwt = as_map(get(props, "spec.leaderWorkerTemplate"))
    worker = as_map(get(lwt, "workerTemplate"))
    leader = get(lwt, "leaderTemplate")
    pairs = (("leader", as_map(leader)), ("worker", worker)) if is_map(leader) else (("leader and worker", worker),)
    return {role: (as_map(get(t, "metadata")), as_map(get(t, "spec"))) for role, t in pairs}


def _requests_efa(container: Mapping[str, Any]) -> bool:
    for section in ("requests", "limits"):
        res = as_map(get(container, f"resources.{section}"))
        if EFA in list(res) and str(res[EFA]).strip() not in ("", "0"):
            return True
    return False


def _name(r: Any) -> str:
    return str(get(r.props, "metadata.name") or r.name)


@resource_policy(Rule(
    id="lws-efa-on-leader-and-workers",
    title="EFA requested on the leader and the workers",
    description="A LeaderWorkerSet whose pods request vpc.amazonaws.com/efa must request it on the leader template "
                "and on the worker template (the leader runs the worker template when there is no leaderTemplate).",
    concern="gpu", severity=Severity.HIGH,
    remediation="Render the leader and the workers from one pod template, or request the same "
                "vpc.amazonaws.com/efa count in both (resources.limits and requests).",
), types={LWS})
def lws_efa_both(s: Subject, cfg: dict) -> Iterable[str]:
    roles = {role: any(_requests_efa(c) for c in containers(spec, init=False))
             for role, (_, spec) in templates(s.props).items()}
    if any(roles.values()):
        for role, asks in roles.items():
            if not asks:
                yield (f"the {role} template requests no {EFA} while the other does: its NCCL traffic falls back "
                       "to TCP and slows the whole group")


@resource_policy(Rule(
    id="multinode-pods-least-privilege",
    title="Multi-node pods: not privileged, no added capability",
    description="The containers of a LeaderWorkerSet (leader and workers, init containers too) must not run "
                "privileged and may add no Linux capability (IPC_LOCK included).",
    concern="security", severity=Severity.HIGH,
    remediation="EFA needs the device plugin's resource and a locked-memory limit on the node (genai-scale's EFA "
                "node groups set one), not privileged mode or IPC_LOCK (a non-root process never gets it, and the "
                "restricted Pod Security Standard refuses it): drop securityContext.privileged and every added "
                "capability.",
), types={LWS})
def multinode_least_privilege(s: Subject, cfg: dict) -> Iterable[str]:
    for role, (_, spec) in templates(s.props).items():
        for c in containers(spec):
            sc = as_map(get(c, "securityContext"))
            if get(sc, "privileged") is True:
                yield f"{role} container {container_name(c)} runs privileged"
            extra = sorted({str(x) for x in as_list(get(sc, "capabilities.add"))} - ALLOWED_CAPABILITIES)
            if extra:
                yield (f"{role} container {container_name(c)} adds capabilities {', '.join(extra)} "
                       f"(none may be added: EFA memory registration needs the node's memlock limit)")


def _pod_labels(r: Any, meta: Mapping[str, Any], index: str) -> dict[str, Any]:
    """A group pod's labels: its template's plus those the LWS controller adds (the set's name, the worker index:
    "0" on the leader; "1" stands for any worker)."""
    labels = {k: as_map(get(meta, "labels"))[k] for k in as_map(get(meta, "labels"))}
    labels.update({NAME_LABEL: _name(r), WORKER_INDEX_LABEL: index})
    return labels


def _covers(policy: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    types = [str(t) for t in as_list(get(policy, "spec.policyTypes"))]
    if types and "Ingress" not in types:
        return False
    sel = as_map(get(policy, "spec.podSelector"))
    named = bool(list(as_map(get(sel, "matchLabels")))) or bool(as_list(get(sel, "matchExpressions")))
    return not named or selector_matches(sel, labels)  # an empty podSelector selects every pod of the namespace


@stack_policy(Rule(
    id="multinode-network-policy",
    title="A NetworkPolicy keeps a multi-node group's traffic inside it",
    description="Every LeaderWorkerSet's leader and worker pods must be selected by a NetworkPolicy with an "
                "Ingress type in their namespace, none of whose ingress rules admits every source: the "
                "traffic between the group's pods (NCCL, tensor and pipeline parallel exchange) is not encrypted.",
    concern="security", severity=Severity.HIGH,
    remediation="Add a NetworkPolicy selecting the group's pods (e.g. by leaderworkerset.sigs.k8s.io/name) that "
                "admits the group's own pods and the gateway's namespace on the serving port, and nothing else.",
))
def multinode_network_policy(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    netpols = [r for r in resources if r.resource_type == NETWORK_POLICY]
    for r in resources:
        if r.resource_type != LWS:
            continue
        ns = namespace_of(r.props)
        lwt = as_map(get(r.props, "spec.leaderWorkerTemplate"))
        worker = as_map(get(lwt, "workerTemplate"))
        leader = as_map(get(lwt, "leaderTemplate")) if is_map(get(lwt, "leaderTemplate")) else worker
        pods = {"leader": _pod_labels(r, as_map(get(leader, "metadata")), "0"),
                "worker": _pod_labels(r, as_map(get(worker, "metadata")), "1")}
        covering = {role: [p for p in netpols if namespace_of(p.props) == ns and _covers(p.props, labels)]
                    for role, labels in pods.items()}
        bare = [role for role, found in covering.items() if not found]
        if bare:
            yield (f"{_name(r)}: no NetworkPolicy selects its {' and '.join(bare)} pods: the group's unencrypted "
                   "traffic is open to every pod of the cluster"), r.urn
        for p in dict.fromkeys(p for found in covering.values() for p in found):
            roles = [role for role, found in covering.items() if p in found]
            if any(is_map(rule) and not as_list(get(rule, "from")) for rule in as_list(get(p.props, "spec.ingress"))):
                yield (f"{_name(r)}: NetworkPolicy {p.name} selects its {' and '.join(roles)} pods with an ingress "
                       "rule without 'from', which admits every source"), r.urn
