"""Rules for model pools (components/serving/pools): vLLM's admin endpoints stay inside the pod network, and KEDA
never scales on a vLLM metric that no longer exists.

- ``vllm-admin-endpoints-private``: a container with ``VLLM_SERVER_DEV_MODE=1`` (sleep, wake-up and collective RPC
  endpoints) or ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (runtime adapter load/unload) exposes endpoints that change
  what the engine serves. vLLM reads the first with ``bool(int(...))`` and the second as ``1``/``true`` (any case)
  (vllm/envs.py, vLLM 0.31). Its pods must be selected only by ClusterIP or headless Services (no LoadBalancer or
  NodePort Service, no Ingress routing to a Service that selects them), and a NetworkPolicy must select them with
  every ingress rule naming the namespaces or pods it admits (no empty ``from``, no ``{}`` selector, no ipBlock).
- ``keda-no-removed-vllm-metrics``: ``vllm:gpu_cache_usage_perc`` was deprecated (vllm-project/vllm#18354) and
  removed (#29330); its successor is ``vllm:kv_cache_usage_perc``. A ScaledObject querying the removed name reads
  nothing and never scales on KV-cache pressure.

Both judge rendered resource properties only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import Severity

from policies._props import (
    as_list,
    as_map,
    containers,
    get,
    is_map,
    namespace_of,
    pod_template,
    selector_matches,
)
from policies._rule import Rule, Subject, resource_policy, stack_policy

SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PUBLIC_SERVICE_TYPES = ("LoadBalancer", "NodePort")

REMOVED_VLLM_METRICS = {"vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc"}
"""Removed vLLM metric -> its successor (vllm-project/vllm#18354 deprecated, #29330 removed; read 2026-12)."""


def _env_value(container: Mapping[str, Any], name: str) -> str | None:
    for e in as_list(get(container, "env")):
        if is_map(e) and get(e, "name") == name:
            value = get(e, "value")
            return None if value is None else str(value)
    return None


def admin_flags(container: Mapping[str, Any]) -> list[str]:
    """The admin switches a container turns on, as ``NAME=value``, parsed as vLLM parses them."""
    out = []
    dev = _env_value(container, "VLLM_SERVER_DEV_MODE")
    try:
        if dev is not None and int(dev.strip()) != 0:
            out.append(f"VLLM_SERVER_DEV_MODE={dev}")
    except ValueError:
        pass
    lora = _env_value(container, "VLLM_ALLOW_RUNTIME_LORA_UPDATING")
    if lora is not None and lora.strip().lower() in ("1", "true"):
        out.append(f"VLLM_ALLOW_RUNTIME_LORA_UPDATING={lora}")
    return out


def _selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A Service's plain selector map selects pods carrying every one of its labels (an empty one selects none)."""
    sel = as_map(selector)
    keys = list(sel)
    return bool(keys) and all(k in list(labels) and labels[k] == sel[k] for k in keys)


def _label_selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A NetworkPolicy ``podSelector``: matchLabels plus expressions; an empty selector selects every pod."""
    return not _named(selector) or selector_matches(as_map(selector), labels)


def _named(selector: Any) -> bool:
    sel = as_map(selector)
    return bool(list(as_map(get(sel, "matchLabels")))) or bool(as_list(get(sel, "matchExpressions")))


def _open_peers(rule: Mapping[str, Any]) -> str | None:
    """Why an ingress rule admits more than named namespaces or pods (None when it names them)."""
    peers = as_list(get(rule, "from"))
    if not peers:
        return "an ingress rule without 'from' admits every source"
    for p in peers:
        if get(p, "ipBlock") is not None:
            return f"an ingress rule admits ipBlock {get(p, 'ipBlock.cidr')}"
        has_ns, has_pod = get(p, "namespaceSelector") is not None, get(p, "podSelector") is not None
        if not has_ns and not has_pod:
            return "an ingress rule has an empty 'from' peer"
        if has_ns and not _named(get(p, "namespaceSelector")):
            return "an ingress rule admits every namespace (namespaceSelector: {})"
        if has_pod and not has_ns and not _named(get(p, "podSelector")):
            return "an ingress rule admits every pod of the namespace (podSelector: {})"
    return None


def _ingress_services(props: Mapping[str, Any]) -> set[str]:
    names = {get(props, "spec.defaultBackend.service.name")}
    for rule in as_list(get(props, "spec.rules")):
        for path in as_list(get(rule, "http.paths")):
            names.add(get(path, "backend.service.name"))
    return {str(n) for n in names if n}


def _ingress_policy(props: Mapping[str, Any]) -> bool:
    types = [str(t) for t in as_list(get(props, "spec.policyTypes"))]
    return not types or "Ingress" in types


@stack_policy(Rule(
    id="vllm-admin-endpoints-private",
    title="vLLM admin endpoints reachable from named pods only",
    description="A container with VLLM_SERVER_DEV_MODE=1 (sleep/wake-up endpoints) or "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True (runtime adapter loading) must be selected only by ClusterIP or "
                "headless Services (no LoadBalancer/NodePort Service, no Ingress to it), and a NetworkPolicy must "
                "limit its ingress to named namespaces or pods.",
    concern="security", severity=Severity.HIGH,
    remediation="Serve the pool through a headless ClusterIP Service and a NetworkPolicy whose ingress rules name the "
                "gateway's namespace and pods (ModelPool renders both); never publish it through a LoadBalancer, "
                "NodePort or Ingress. Clients reach the models through the gateway, which alone calls the admin "
                "endpoints.",
))
def vllm_admin_private(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    services = [r for r in resources if r.resource_type == SERVICE]
    ingresses = [r for r in resources if r.resource_type == INGRESS]
    netpols = [r for r in resources if r.resource_type == NETWORK_POLICY]
    for r in resources:
        pod = pod_template(r.resource_type, r.props)
        if pod is None:
            continue
        flags = [f for c in containers(pod[1]) for f in admin_flags(c)]
        if not flags:
            continue
        who = f"{r.name} ({', '.join(dict.fromkeys(flags))})"
        ns, labels = namespace_of(r.props), as_map(get(pod[0], "labels"))
        selecting = [s for s in services
                     if namespace_of(s.props) == ns and _selects(get(s.props, "spec.selector"), labels)]
        for s in selecting:
            kind = get(s.props, "spec.type") or "ClusterIP"
            if kind in PUBLIC_SERVICE_TYPES:
                yield f"{who}: Service {s.name} of type {kind} exposes the admin endpoints outside the cluster", r.urn
        names = {str(get(s.props, "metadata.name") or s.name) for s in selecting}
        for ing in ingresses:
            hit = sorted(_ingress_services(ing.props) & names) if namespace_of(ing.props) == ns else []
            if hit:
                yield f"{who}: Ingress {ing.name} routes to Service {hit[0]}, which selects its pods", r.urn
        covering = [p for p in netpols if namespace_of(p.props) == ns and _ingress_policy(p.props)
                    and _label_selector_matches(get(p.props, "spec.podSelector"), labels)]
        if not covering:
            yield (f"{who}: no NetworkPolicy selects its pods: every pod of the cluster can call the admin "
                   "endpoints"), r.urn
        for p in covering:
            for rule in as_list(get(p.props, "spec.ingress")):
                why = _open_peers(as_map(rule))
                if why:
                    yield f"{who}: NetworkPolicy {p.name}: {why}", r.urn


@resource_policy(Rule(
    id="keda-no-removed-vllm-metrics",
    title="KEDA triggers use current vLLM metrics",
    description="A ScaledObject's triggers must not query a vLLM metric that vLLM has removed "
                "(vllm:gpu_cache_usage_perc): the query returns nothing and the trigger never fires.",
    concern="reliability", severity=Severity.MEDIUM,
    remediation="Query vllm:kv_cache_usage_perc (its successor), or vllm:num_requests_waiting for queue depth.",
), types={SCALED_OBJECT})
def keda_removed_metrics(s: Subject, cfg: dict) -> Iterable[str]:
    for i, t in enumerate(as_list(get(s.props, "spec.triggers"))):
        query = str(get(t, "metadata.query") or "")
        for old, new in REMOVED_VLLM_METRICS.items():
            if old in query:
                yield (f"trigger {get(t, 'name') or i} queries {old}, which vLLM removed (its successor is {new}): "
                       f"it reads nothing and never scales")
