"""Reliability rules: availability zones, cache failover, serving probes, disruption budgets, graceful drain,
load-balancer deregistration and autoscaler bounds.

The availability-zone and failover rules check what the stack's tier requires (tier facts ``multiAz.*``, read from the
policy config; see ``policies._rule``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import Severity

from policies._accel import ACCELERATOR_RESOURCES, accelerator_for
from policies._props import (
    SERVING_WORKLOAD_TYPES,
    as_list,
    as_map,
    cli_flag,
    container_argv,
    container_name,
    containers,
    get,
    namespace_of,
    peek,
    pod_template,
    selector_matches,
    to_int,
    truthy,
)
from policies._rule import Rule, Subject, resource_policy, stack_policy

SUBNET = "aws:ec2/subnet:Subnet"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE = "kubernetes:core/v1:Service"
TARGET_GROUP_TYPES = frozenset({"aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"})
TARGET_GROUP_BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
ACCEL_RESOURCES = ACCELERATOR_RESOURCES
DEFAULT_GRACE_SECONDS = 30  # Kubernetes default terminationGracePeriodSeconds
DEFAULT_DEREGISTRATION_DELAY = 300  # ELBv2 target group default deregistration_delay.timeout_seconds


def _deps(r: Any, type_token: str) -> list[Any]:
    return [d for d in (getattr(r, "dependencies", None) or []) if getattr(d, "resource_type", None) == type_token]


def _zones(subnets: Sequence[Any]) -> set[str]:
    return {str(get(s.props, "availabilityZone") or get(s.props, "availabilityZoneId"))
            for s in subnets if get(s.props, "availabilityZone") or get(s.props, "availabilityZoneId")}


def _node_group_instance_types(ng: Any) -> list[str]:
    types = [str(t) for t in as_list(get(ng.props, "instanceTypes"))]
    if not types:
        for lt in _deps(ng, LAUNCH_TEMPLATE):
            if get(lt.props, "instanceType"):
                types.append(str(get(lt.props, "instanceType")))
    return types


@stack_policy(Rule(
    id="eks-multi-az",
    title="Cluster and system nodes span several AZs where the tier requires it",
    description="In a tier that requires it (tier fact multiAz.cluster), the EKS cluster's subnets and every CPU "
                "node group's subnets must span at least two availability zones.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Give the cluster and the system node group private subnets in two or more AZs (Network with "
                "az_count >= 2). Accelerator groups may stay in one AZ (EFA placement groups, capacity blocks).",
    config={"required": {"type": "boolean", "default": True,
                         "description": "The cluster must span several AZs (the tier's multiAz.cluster)."},
            "minZones": {"type": "integer", "minimum": 2, "default": 2,
                         "description": "Distinct AZs required."}},
    facts={"required": "multiAz.cluster"},
))
def eks_multi_az(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if not cfg["required"]:
        return
    need = cfg["minZones"]
    for r in resources:
        if r.resource_type == EKS_CLUSTER:
            subnets = _deps(r, SUBNET)
            ids = {str(i) for i in as_list(get(r.props, "vpcConfig.subnetIds"))}
            zones = _zones(subnets)
            n = len(zones) if subnets else len(ids)
            what = f"AZs {sorted(zones)}" if subnets else f"{len(ids)} subnet(s) (AZs unknown)"
            if n < need:
                yield f"{r.name}: cluster subnets span {what}; need >= {need} AZs", r.urn
        elif r.resource_type == NODE_GROUP:
            if any(accelerator_for(t) for t in _node_group_instance_types(r)):
                continue
            subnets = _deps(r, SUBNET)
            if subnets and len(_zones(subnets)) < need:
                yield (f"{r.name}: CPU node group subnets span AZs {sorted(_zones(subnets))}; need >= {need} so "
                       "CoreDNS and the operators survive an AZ outage"), r.urn
            elif not subnets and len(as_list(get(r.props, "subnetIds"))) < need:
                yield f"{r.name}: CPU node group has {len(as_list(get(r.props, 'subnetIds')))} subnet(s); need >= {need} AZs", r.urn


def _cache_nodes(props: Mapping[str, Any]) -> int:
    n = to_int(get(props, "numCacheClusters"))
    if n is not None:
        return n
    replicas = to_int(get(props, "replicasPerNodeGroup"))
    return 1 + (replicas or 0)


@stack_policy(Rule(
    id="cache-multi-az",
    title="Cache has a replica in another AZ where the tier requires it",
    description="In a tier that requires it (tier fact multiAz.cacheReplica) the ElastiCache replication group "
                "must have at least one replica and its subnet group must span two or more AZs.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Set numCacheClusters >= 2 (or replicasPerNodeGroup >= 1) and a subnet group over private subnets in "
                "two or more AZs.",
    config={"required": {"type": "boolean", "default": True,
                         "description": "The cache must keep a replica in another AZ (the tier's "
                                        "multiAz.cacheReplica)."}},
    facts={"required": "multiAz.cacheReplica"},
))
def cache_multi_az(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if not cfg["required"]:
        return
    for r in resources:
        if r.resource_type != REPLICATION_GROUP:
            continue
        nodes = _cache_nodes(r.props)
        if nodes < 2:
            yield f"{r.name}: {nodes} cache node(s): one AZ or node failure loses the cache", r.urn
            continue
        for sg in _deps(r, CACHE_SUBNET_GROUP):
            subnets = _deps(sg, SUBNET)
            zones = _zones(subnets)
            if subnets and len(zones) < 2:
                yield f"{r.name}: subnet group {sg.name} spans only AZs {sorted(zones)}", r.urn
            elif not subnets and len(as_list(get(sg.props, "subnetIds"))) < 2:
                yield f"{r.name}: subnet group {sg.name} has fewer than two subnets", r.urn


@resource_policy(Rule(
    id="cache-automatic-failover",
    title="Cache fails over automatically across AZs where the tier requires it",
    description="In a tier that requires it (tier fact multiAz.cacheAutoFailover) the replication group must have "
                "automatic failover and Multi-AZ on.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Set automaticFailoverEnabled=true and multiAzEnabled=true (needs numCacheClusters >= 2).",
    checkov=("CKV2_AWS_50",),
    config={"required": {"type": "boolean", "default": True,
                         "description": "The cache must fail over automatically (the tier's "
                                        "multiAz.cacheAutoFailover)."}},
    facts={"required": "multiAz.cacheAutoFailover"},
), types={REPLICATION_GROUP})
def cache_failover(s: Subject, cfg: dict) -> Iterable[str]:
    if not cfg["required"]:
        return
    off = [k for k in ("automaticFailoverEnabled", "multiAzEnabled") if not truthy(get(s.props, k))]
    if off:
        yield f"{' and '.join(off)} not true: a primary failure means minutes of cache outage"


# --- Serving workloads -------------------------------------------------------------------------------------------------

def _ports(c: Mapping[str, Any]) -> list[Any]:
    return as_list(get(c, "ports"))


def _requests_accelerator(c: Mapping[str, Any]) -> bool:
    for section in ("limits", "requests"):
        res = as_map(get(c, f"resources.{section}"))
        if any(k in list(res) for k in ACCEL_RESOURCES):
            return True
    return False


def serving_pod(type_token: str, props: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(pod metadata, pod spec) of a serving workload: a Deployment or StatefulSet with a container port."""
    if type_token not in SERVING_WORKLOAD_TYPES:
        return None
    pod = pod_template(type_token, props)
    if pod is None or not any(_ports(c) for c in containers(pod[1], init=False)):
        return None
    return pod


def serving_containers(type_token: str, props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The app containers of a serving workload (none for anything else)."""
    pod = serving_pod(type_token, props)
    return containers(pod[1], init=False) if pod is not None else []


def is_vllm(c: Mapping[str, Any]) -> bool:
    image = str(get(c, "image") or "").lower()
    argv = [a.lower() for a in container_argv(c)]
    return "vllm" in image.rsplit("/", 1)[-1] or any(a.endswith("vllm") or "vllm.entrypoints" in a for a in argv[:4])


@resource_policy(Rule(
    id="serving-readiness-probe",
    title="Serving containers have readiness probes",
    description="Every container of a serving Deployment/StatefulSet that exposes a port must have a readiness probe, "
                "so traffic reaches only replicas that can answer.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Add readinessProbe (vLLM: httpGet /health on the serving port).",
    checkov=("CKV_K8S_9",),
), types=SERVING_WORKLOAD_TYPES)
def readiness_probe(s: Subject, cfg: dict) -> Iterable[str]:
    for c in serving_containers(s.type, s.props):
        if _ports(c) and get(c, "readinessProbe") is None:
            yield f"container {container_name(c)} exposes a port but has no readinessProbe"


def _probe_budget(probe: Mapping[str, Any]) -> int:
    return ((to_int(get(probe, "initialDelaySeconds")) or 0)
            + (to_int(get(probe, "failureThreshold")) or 3) * (to_int(get(probe, "periodSeconds")) or 10))


@resource_policy(Rule(
    id="serving-startup-probe",
    title="Model servers have a startup probe covering model load",
    description="Accelerator serving containers must have a startup probe whose budget (initialDelaySeconds + "
                "failureThreshold x periodSeconds) covers model loading, so liveness does not kill a loading server.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Add startupProbe httpGet /health with periodSeconds 10 and failureThreshold sized to the model's "
                "load time (VllmService derives it from the model size).",
    config={"minStartupSeconds": {"type": "integer", "minimum": 0, "default": 300,
                                  "description": "Smallest acceptable startup-probe budget, in seconds."}},
), types=SERVING_WORKLOAD_TYPES)
def startup_probe(s: Subject, cfg: dict) -> Iterable[str]:
    for c in serving_containers(s.type, s.props):
        if not (_ports(c) and _requests_accelerator(c)):
            continue
        probe = get(c, "startupProbe")
        if probe is None:
            yield f"container {container_name(c)} loads a model but has no startupProbe"
        elif _probe_budget(probe) < cfg["minStartupSeconds"]:
            yield (f"container {container_name(c)} startupProbe allows {_probe_budget(probe)} s "
                   f"(< {cfg['minStartupSeconds']} s) for model loading")


@stack_policy(Rule(
    id="serving-pod-disruption-budget",
    title="Serving workloads have a PodDisruptionBudget",
    description="Every serving Deployment/StatefulSet must be selected by a PodDisruptionBudget in its namespace, so "
                "node drains and autoscaler scale-down never take all replicas at once.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Add a policy/v1 PodDisruptionBudget whose selector matches the pod labels (maxUnavailable: 1).",
))
def serving_pdb(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    pdbs = [r for r in resources if r.resource_type == PDB]
    for r in resources:
        pod = serving_pod(r.resource_type, r.props)
        if pod is None:
            continue
        labels = as_map(get(pod[0], "labels"))
        ns = namespace_of(r.props)
        if not any(namespace_of(p.props) == ns and selector_matches(as_map(get(p.props, "spec.selector")), labels)
                   for p in pdbs):
            yield f"{r.name}: no PodDisruptionBudget in namespace {ns} selects its pods", r.urn


_SLEEP = re.compile(r"(?:^|\s)sleep\s+(\d+)")


def pre_stop_seconds(c: Mapping[str, Any]) -> int:
    """Seconds a container's preStop hook waits (sleep action, or an exec ``sleep N``)."""
    hook = as_map(get(c, "lifecycle.preStop"))
    n = to_int(get(hook, "sleep.seconds"))
    if n is not None:
        return n
    text = " ".join(str(a) for a in as_list(get(hook, "exec.command")))
    m = _SLEEP.search(text)
    return int(m.group(1)) if m else 0


def drain_seconds(c: Mapping[str, Any], default: int) -> int | None:
    """How long a serving container drains in-flight requests after SIGTERM.

    vLLM: ``--shutdown-timeout`` (0 or unset aborts in-flight requests; returned as 0). Others: ``default``."""
    if is_vllm(c):
        return to_int(cli_flag(container_argv(c), "--shutdown-timeout")) or 0
    return default


@resource_policy(Rule(
    id="serving-graceful-drain",
    title="Grace period covers preStop and stream drain",
    description="A serving pod's terminationGracePeriodSeconds must cover its preStop delay plus the drain of "
                "in-flight streams (vLLM --shutdown-timeout, which must be > 0).",
    concern="reliability", severity=Severity.HIGH,
    remediation="Set --shutdown-timeout N on vLLM, a preStop sleep (so endpoints drop the pod first), and "
                "terminationGracePeriodSeconds >= preStop + N.",
    config={"defaultDrainSeconds": {"type": "integer", "minimum": 0, "default": 30,
                                    "description": "Drain assumed for non-vLLM serving containers (the gateway)."}},
), types=SERVING_WORKLOAD_TYPES)
def graceful_drain(s: Subject, cfg: dict) -> Iterable[str]:
    pod = serving_pod(s.type, s.props)
    if pod is None:
        return
    grace = to_int(get(pod[1], "terminationGracePeriodSeconds"))
    grace = DEFAULT_GRACE_SECONDS if grace is None else grace
    for c in containers(pod[1], init=False):
        if not _ports(c):
            continue
        drain = drain_seconds(c, cfg["defaultDrainSeconds"])
        if is_vllm(c) and not drain:
            yield f"container {container_name(c)}: vLLM without --shutdown-timeout aborts in-flight streams on SIGTERM"
            continue
        need = pre_stop_seconds(c) + (drain or 0)
        if grace < need:
            yield (f"container {container_name(c)}: terminationGracePeriodSeconds {grace} < preStop "
                   f"{pre_stop_seconds(c)} s + drain {drain} s = {need} s: streams are killed mid-response")


def _backend_drain(tg: Any, resources: Sequence[Any], default: int) -> tuple[int, list[str]]:
    """Longest drain among the serving pods a target group sends traffic to (via TargetGroupBinding -> Service)."""
    bindings = [b for b in resources if b.resource_type == TARGET_GROUP_BINDING
                and (tg in (getattr(b, "dependencies", None) or [])
                     or (peek(tg.props, "arn") and peek(b.props, "spec.targetGroupARN") == peek(tg.props, "arn")))]
    services = []
    for b in bindings:
        name, ns = peek(b.props, "spec.serviceRef.name"), namespace_of(b.props)
        for svc in resources:
            if svc.resource_type == SERVICE and (svc in (getattr(b, "dependencies", None) or [])
                                                 or (peek(svc.props, "metadata.name") == name
                                                     and namespace_of(svc.props) == ns)):
                services.append(svc)
    drains: list[int] = []
    names: list[str] = []
    for svc in services:
        selector = {"matchLabels": as_map(get(svc.props, "spec.selector"))}
        for w in resources:
            pod = serving_pod(w.resource_type, w.props)
            if pod is None or namespace_of(w.props) != namespace_of(svc.props):
                continue
            if selector_matches(selector, as_map(get(pod[0], "labels"))):
                for c in containers(pod[1], init=False):
                    d = drain_seconds(c, default)
                    if d:
                        drains.append(d)
                        names.append(w.name)
    return (max(drains) if drains else default), names


@stack_policy(Rule(
    id="alb-deregistration-covers-drain",
    title="ALB deregistration delay covers the stream drain",
    description="A target group's deregistration delay must be at least the drain time of the serving pods behind it, "
                "or the ALB cuts streams that the pod is still finishing.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Set deregistrationDelay >= the backend's --shutdown-timeout (unset means 300 s).",
    config={"defaultDrainSeconds": {"type": "integer", "minimum": 0, "default": 30,
                                    "description": "Drain assumed when no backend pod can be resolved."}},
))
def deregistration_delay(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for tg in resources:
        if tg.resource_type not in TARGET_GROUP_TYPES:
            continue
        raw = get(tg.props, "deregistrationDelay")
        delay = DEFAULT_DEREGISTRATION_DELAY if raw is None else to_int(raw)
        need, backends = _backend_drain(tg, resources, cfg["defaultDrainSeconds"])
        if delay is not None and delay < need:
            behind = f" (backends: {', '.join(sorted(set(backends)))})" if backends else ""
            yield f"{tg.name}: deregistrationDelay {delay} s < stream drain {need} s{behind}", tg.urn


# --- Autoscaler bounds -------------------------------------------------------------------------------------------------

BOUNDS: dict[str, tuple[str, str, int | None, int | None]] = {
    # type: (min path, max path, default min, default max)
    NODE_GROUP: ("scalingConfig.minSize", "scalingConfig.maxSize", None, None),
    "aws:autoscaling/group:Group": ("minSize", "maxSize", None, None),
    "aws:appautoscaling/target:Target": ("minCapacity", "maxCapacity", None, None),
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": ("spec.minReplicas", "spec.maxReplicas", 1, None),
    "kubernetes:keda.sh/v1alpha1:ScaledObject": ("spec.minReplicaCount", "spec.maxReplicaCount", 0, 100),
}


@resource_policy(Rule(
    id="autoscaler-bounds",
    title="Autoscaler max not below min",
    description="Node groups, Auto Scaling groups, Application Auto Scaling targets, HPAs and KEDA ScaledObjects must "
                "have max >= min (and a node group's desired size within them).",
    concern="reliability", severity=Severity.HIGH,
    remediation="Raise the maximum or lower the minimum; the stack config validates this for node groups.",
), types=set(BOUNDS))
def autoscaler_bounds(s: Subject, cfg: dict) -> Iterable[str]:
    min_path, max_path, dmin, dmax = BOUNDS[s.type]
    lo = to_int(get(s.props, min_path))
    hi = to_int(get(s.props, max_path))
    lo = dmin if lo is None else lo
    hi = dmax if hi is None else hi
    if lo is not None and hi is not None and hi < lo:
        yield f"{max_path} ({hi}) is below {min_path} ({lo})"
    if s.type == NODE_GROUP:
        desired = to_int(get(s.props, "scalingConfig.desiredSize"))
        if desired is not None and lo is not None and hi is not None and not lo <= desired <= hi:
            yield f"scalingConfig.desiredSize ({desired}) is outside [{lo}, {hi}]"

