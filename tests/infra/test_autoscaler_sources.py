"""Every autoscaler in the shipped plans has its metric source in the same plan.

An autoscaler whose metric source is missing does not fail: it never gets a metric and stays at its minimum (the
gateway's CPU HorizontalPodAutoscaler did, before EksCluster installed metrics-server). So for all three stacks:

- a HorizontalPodAutoscaler with a ``Resource``/``ContainerResource`` metric (and a KEDA ``cpu``/``memory`` trigger)
  needs metrics-server (the EKS add-on, or a ``metrics-server`` Helm release): the ``metrics.k8s.io`` API;
- an HPA with an ``External`` metric needs an external metrics provider: KEDA's metrics API server (the ``keda``
  release);
- a KEDA ScaledObject needs the ``keda`` release; its ``prometheus`` triggers' ``serverAddress`` must be the
  Prometheus Service of a kube-prometheus-stack release in the plan, and a trigger's ``authenticationRef`` a
  TriggerAuthentication (or ClusterTriggerAuthentication) in the plan;
- every HPA's and ScaledObject's ``scaleTargetRef`` names a Deployment or StatefulSet of the plan, in its namespace.

The checker is pure (a list of recorded resources in, problems out) and is shown to fail on mutated plans.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Iterable
from urllib.parse import urlparse

import pytest

from infra.plan import RecordedResource
from tests.stack_plans import planned

STACKS = ("dev", "staging", "prod")

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
TRIGGER_AUTH = "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"
CLUSTER_TRIGGER_AUTH = "kubernetes:keda.sh/v1alpha1:ClusterTriggerAuthentication"
RELEASE = "kubernetes:helm.sh/v3:Release"
ADDON = "aws:eks/addon:Addon"
WORKLOADS = {"Deployment": "kubernetes:apps/v1:Deployment", "StatefulSet": "kubernetes:apps/v1:StatefulSet",
             # the multi-node services' groups (its CRD has the scale subresource KEDA's HPA uses)
             "LeaderWorkerSet": "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"}

PROMETHEUS_PORT = 9090
"""kube-prometheus-stack's ``prometheus.service.port`` default (values.yaml)."""


def _chart(r: RecordedResource) -> str:
    """A release's chart name (``oci://.../neuron-helm-chart`` -> ``neuron-helm-chart``)."""
    return str(r.inputs.get("chart", "")).rstrip("/").rsplit("/", 1)[-1]


def _namespace(r: RecordedResource) -> str:
    return (r.inputs.get("metadata") or {}).get("namespace") or "default"


def _releases(resources: Iterable[RecordedResource], chart: str) -> list[RecordedResource]:
    return [r for r in resources if r.type == RELEASE and _chart(r) == chart]


def has_metrics_server(resources: list[RecordedResource]) -> bool:
    """The ``metrics.k8s.io`` API: the EKS metrics-server add-on or a metrics-server Helm release."""
    return any(r.type == ADDON and r.inputs.get("addonName") == "metrics-server" for r in resources) or \
        bool(_releases(resources, "metrics-server"))


def prometheus_hosts(resources: list[RecordedResource]) -> set[tuple[str, int]]:
    """(host, port) of the Prometheus Service of every kube-prometheus-stack release with Prometheus on.

    The chart names the Service ``<fullname>-prometheus`` in the release namespace; ``fullname`` is
    ``fullnameOverride``, else the release name (with the chart name appended unless it holds it), cut to 26
    characters (the chart's ``kube-prometheus-stack.fullname`` template)."""
    out: set[tuple[str, int]] = set()
    for rel in _releases(resources, "kube-prometheus-stack"):
        values = rel.inputs.get("values") or {}
        prom = values.get("prometheus") or {}
        if prom.get("enabled") is False:
            continue
        name = rel.inputs.get("name") or rel.name
        chart = values.get("nameOverride") or "kube-prometheus-stack"
        fullname = values.get("fullnameOverride") or (name if chart in name else f"{name}-{chart}")
        svc, ns = f"{fullname[:26].rstrip('-')}-prometheus", rel.inputs.get("namespace") or "default"
        port = int((prom.get("service") or {}).get("port") or PROMETHEUS_PORT)
        for host in (svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"):
            out.add((host, port))
    return out


def _target_problems(where: str, namespace: str, ref: dict[str, Any], resources: list[RecordedResource]) -> list[str]:
    kind, name = ref.get("kind", "Deployment"), ref.get("name")
    token = WORKLOADS.get(kind)
    if token is None:
        return [f"{where}: scaleTargetRef kind {kind!r} is not a Deployment, StatefulSet or LeaderWorkerSet"]
    found = [r for r in resources if r.type == token and _namespace(r) == namespace
             and (r.inputs.get("metadata") or {}).get("name") == name]
    return [] if found else [f"{where}: scaleTargetRef {kind} {namespace}/{name} is not in the plan"]


def autoscaler_source_problems(resources: list[RecordedResource]) -> list[str]:
    """Every autoscaler whose metric source or target is not in ``resources``, one line each."""
    out: list[str] = []
    metrics_server = has_metrics_server(resources)
    keda = bool(_releases(resources, "keda"))
    prometheus = prometheus_hosts(resources)
    auths = {(r.type, _namespace(r) if r.type == TRIGGER_AUTH else "", (r.inputs.get("metadata") or {}).get("name"))
             for r in resources if r.type in (TRIGGER_AUTH, CLUSTER_TRIGGER_AUTH)}
    for hpa in (r for r in resources if r.type == HPA):
        spec, ns = hpa.inputs.get("spec") or {}, _namespace(hpa)
        where = f"HorizontalPodAutoscaler {ns}/{(hpa.inputs.get('metadata') or {}).get('name')}"
        types = {m.get("type") for m in spec.get("metrics") or []}
        if types & {"Resource", "ContainerResource"} and not metrics_server:
            out.append(f"{where}: Resource metrics need metrics-server (metrics.k8s.io), which the plan does not run")
        if "External" in types and not keda:
            out.append(f"{where}: External metrics need an external metrics provider (KEDA's metrics API server)")
        out += _target_problems(where, ns, spec.get("scaleTargetRef") or {}, resources)
    for so in (r for r in resources if r.type == SCALED_OBJECT):
        spec, ns = so.inputs.get("spec") or {}, _namespace(so)
        where = f"ScaledObject {ns}/{(so.inputs.get('metadata') or {}).get('name')}"
        if not keda:
            out.append(f"{where}: needs KEDA (the keda release), which the plan does not run")
        for t in spec.get("triggers") or []:
            name, meta = t.get("name") or t.get("type"), t.get("metadata") or {}
            if t.get("type") in ("cpu", "memory") and not metrics_server:
                out.append(f"{where}: trigger {name} ({t['type']}) needs metrics-server, which the plan does not run")
            if t.get("type") == "prometheus":
                url = urlparse(str(meta.get("serverAddress", "")))
                if (url.hostname, url.port or (443 if url.scheme == "https" else 80)) not in prometheus:
                    out.append(f"{where}: trigger {name} queries {meta.get('serverAddress')!r}, not a Prometheus the "
                               f"plan runs ({', '.join(sorted(f'{h}:{p}' for h, p in prometheus)) or 'none'})")
            ref = t.get("authenticationRef")
            if ref:
                kind = CLUSTER_TRIGGER_AUTH if ref.get("kind") == "ClusterTriggerAuthentication" else TRIGGER_AUTH
                if (kind, ns if kind == TRIGGER_AUTH else "", ref.get("name")) not in auths:
                    out.append(f"{where}: trigger {name} authenticationRef {ref.get('name')!r} is not a "
                               f"{kind.rsplit(':', 1)[-1]} of the plan")
        out += _target_problems(where, ns, spec.get("scaleTargetRef") or {}, resources)
    return out


def _resources(stack: str) -> list[RecordedResource]:
    result, _ = planned(stack)
    return list(result.resources)


def _edited(r: RecordedResource, edit) -> RecordedResource:
    inputs = copy.deepcopy(r.inputs)
    edit(inputs)
    return dataclasses.replace(r, inputs=inputs)


@pytest.mark.parametrize("stack", STACKS)
def test_every_autoscaler_has_its_metric_source_in_the_plan(stack):
    resources = _resources(stack)
    assert [r for r in resources if r.type in (HPA, SCALED_OBJECT)], f"{stack}: expected autoscalers to check"
    assert autoscaler_source_problems(resources) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_gateway_cpu_autoscaler_has_metrics_server(stack):
    resources = _resources(stack)
    hpas = [r for r in resources if r.type == HPA]
    cpu = [h for h in hpas if any(m.get("type") == "Resource" for m in h.inputs["spec"].get("metrics", []))]
    assert cpu, f"{stack}: the gateway's HPA scales on CPU"
    addon = [r for r in resources if r.type == ADDON and r.inputs.get("addonName") == "metrics-server"]
    assert len(addon) == 1 and addon[0].inputs["addonVersion"].startswith("v0.8.")
    # probe: the same plan without metrics-server fails the check, naming every CPU autoscaler
    without = [r for r in resources if r not in addon]
    problems = autoscaler_source_problems(without)
    assert problems and all("metrics-server" in p for p in problems)
    assert {p.split(":", 1)[0] for p in problems} == {
        f"HorizontalPodAutoscaler {_namespace(h)}/{h.inputs['metadata']['name']}" for h in cpu}


def test_a_metrics_server_helm_release_counts_too():
    resources = [r for r in _resources("prod")
                 if not (r.type == ADDON and r.inputs.get("addonName") == "metrics-server")]
    chart = RecordedResource(urn="urn:x", type=RELEASE, name="metrics-server", parent=None, custom=True,
                             inputs={"chart": "metrics-server", "namespace": "kube-system", "values": {}})
    assert autoscaler_source_problems([*resources, chart]) == []


def test_keda_prometheus_auth_and_target_mutations_fail():
    resources = _resources("prod")
    so = next(r for r in resources if r.type == SCALED_OBJECT)
    others = [r for r in resources if r is not so]
    where = f"ScaledObject {_namespace(so)}/{so.inputs['metadata']['name']}"

    no_keda = [r for r in resources if not (r.type == RELEASE and _chart(r) == "keda")]
    assert f"{where}: needs KEDA (the keda release), which the plan does not run" in \
        autoscaler_source_problems(no_keda)

    def elsewhere(inputs):
        inputs["spec"]["triggers"][0]["metadata"]["serverAddress"] = "http://prometheus.other.svc:9090"
    problems = autoscaler_source_problems([*others, _edited(so, elsewhere)])
    assert any(p.startswith(f"{where}: trigger queue-depth queries 'http://prometheus.other.svc:9090', not a "
                            "Prometheus the plan runs (monitoring-prometheus.monitoring.svc.cluster.local:9090")
               for p in problems), problems

    no_prometheus = [r for r in resources if not (r.type == RELEASE and _chart(r) == "kube-prometheus-stack")]
    assert any("not a Prometheus the plan runs (none)" in p for p in autoscaler_source_problems(no_prometheus))

    def with_auth(inputs):
        inputs["spec"]["triggers"][0]["authenticationRef"] = {"name": "prom-auth"}
    problems = autoscaler_source_problems([*others, _edited(so, with_auth)])
    assert f"{where}: trigger queue-depth authenticationRef 'prom-auth' is not a TriggerAuthentication of the plan" \
        in problems
    auth = RecordedResource(urn="urn:auth", type=TRIGGER_AUTH, name="prom-auth", parent=None, custom=True,
                            inputs={"metadata": {"name": "prom-auth", "namespace": _namespace(so)}, "spec": {}})
    assert autoscaler_source_problems([*others, _edited(so, with_auth), auth]) == []

    def retarget(inputs):
        inputs["spec"]["scaleTargetRef"]["name"] = "no-such-deployment"
    assert f"{where}: scaleTargetRef Deployment {_namespace(so)}/no-such-deployment is not in the plan" in \
        autoscaler_source_problems([*others, _edited(so, retarget)])


def test_external_metric_hpa_needs_keda():
    resources = [r for r in _resources("prod") if not (r.type == RELEASE and _chart(r) == "keda")]
    hpa = next(r for r in resources if r.type == HPA)

    def external(inputs):
        inputs["spec"]["metrics"] = [{"type": "External", "external": {
            "metric": {"name": "s0-prometheus"}, "target": {"type": "AverageValue", "averageValue": "5"}}}]
    problems = autoscaler_source_problems([*(r for r in resources if r is not hpa), _edited(hpa, external)])
    assert any("External metrics need an external metrics provider (KEDA's metrics API server)" in p
               for p in problems)
