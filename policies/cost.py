"""Cost rules: idle accelerators where the tier requires scale to zero, Bedrock purchases and commitments, on-demand
H100 caps, cost-allocation tags, warm-pool size, each judged against the tier's facts (see ``policies._rule``).

Cost rules take the tier's ``policy.costEnforcement`` (advisory in the shipped prototype tier, mandatory in growth
and scale), except ``accelerator-scale-to-zero-in-prototype`` and ``accelerator-workload-scales-to-zero``, which are
mandatory wherever they check anything: "no idle GPUs" is the frugal default of a tier that asks for it, and an
advisory finding would never stop a warm g5 (or a GPU pod pinned to one replica) from billing around the clock. The
rules keep their ids (users' pack configs name them); what they check is a tier fact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import EnforcementLevel, Severity

from policies._accel import ACCELERATOR_RESOURCES, accelerator_for
from policies._props import (
    as_list,
    as_map,
    containers,
    get,
    namespace_of,
    pod_template,
    resource_quantity,
    tags_of,
    to_int,
)
from policies._rule import Rule, Subject, resource_policy, stack_policy

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
BEDROCK_PT = "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput"


def node_group_instance_types(ng: Any) -> list[str]:
    """Instance types of a node group: ``instanceTypes``, else the launch template's ``instanceType``
    (capacity-block groups carry it there)."""
    types = [str(t) for t in as_list(get(ng.props, "instanceTypes"))]
    if not types:
        for d in getattr(ng, "dependencies", None) or []:
            if getattr(d, "resource_type", None) == LAUNCH_TEMPLATE and get(d.props, "instanceType"):
                types.append(str(get(d.props, "instanceType")))
    return types


def _tier(cfg: dict) -> str:
    """The tier as messages name it (``default`` when no tier is known)."""
    return str(cfg.get("tier") or "default")


@stack_policy(Rule(
    id="accelerator-scale-to-zero-in-prototype",
    title="No idle accelerators where the tier requires scale to zero",
    description="In a tier that requires it (tier fact acceleratorsScaleToZero) every GPU/Inferentia "
                "node group must scale to zero (minSize 0, desiredSize 0).",
    concern="cost", severity=Severity.HIGH,
    remediation="Set minSize: 0 (and desiredSize: 0) for the node group in the stack; the cluster autoscaler brings "
                "a node up when a pod asks for the accelerator.",
    config={"required": {"type": "boolean", "default": True,
                         "description": "Every accelerator node group must scale to zero (the tier's "
                                        "acceleratorsScaleToZero)."}},
    facts={"required": "acceleratorsScaleToZero"},
    fixed_level=EnforcementLevel.MANDATORY,
))
def scale_to_zero(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if not cfg["required"]:
        return
    for r in resources:
        if r.resource_type != NODE_GROUP:
            continue
        accel = next((a for a in map(accelerator_for, node_group_instance_types(r)) if a), None)
        if accel is None:
            continue
        lo = to_int(get(r.props, "scalingConfig.minSize")) or 0
        desired = to_int(get(r.props, "scalingConfig.desiredSize")) or 0
        if lo > 0 or desired > 0:
            yield (f"{r.name}: {accel.instance_type} node group has minSize {lo}, desiredSize {desired}: "
                   "accelerators bill while idle"), r.urn


@resource_policy(Rule(
    id="bedrock-commitment-outside-scale",
    title="Bedrock provisioned throughput only where the tier buys it",
    description="Bedrock provisioned throughput needs a tier that may buy it (tier fact "
                "bedrock.provisionedThroughput), and a commitment term a tier that may commit (bedrock.commitment).",
    concern="cost", severity=Severity.HIGH,
    remediation="Use on-demand inference or a cross-Region inference profile in tiers that do not buy throughput; "
                "commit (OneMonth/SixMonths) only in a tier that may commit, where the load targets justify it.",
    config={"allowProvisionedThroughput": {
                "type": "boolean", "default": False,
                "description": "The tier may buy provisioned throughput (the tier's bedrock.provisionedThroughput)."},
            "allowCommitment": {
                "type": "boolean", "default": False,
                "description": "The tier may buy it with a commitment term (the tier's bedrock.commitment)."}},
    facts={"allowProvisionedThroughput": "bedrock.provisionedThroughput", "allowCommitment": "bedrock.commitment"},
), types={BEDROCK_PT})
def bedrock_commitment(s: Subject, cfg: dict) -> Iterable[str]:
    term = get(s.props, "commitmentDuration")
    if term and not cfg["allowCommitment"]:
        yield (f"commitmentDuration is {term!r} in the {_tier(cfg)} tier: a committed purchase cannot be cancelled "
               "before its term")
    elif not cfg["allowProvisionedThroughput"]:
        units = get(s.props, "modelUnits")
        yield f"{units} model unit(s) of provisioned throughput in the {_tier(cfg)} tier, billed every hour it exists"


@stack_policy(Rule(
    id="on-demand-h100-max-size-cap",
    title="On-demand H100/H200 node groups capped",
    description="An on-demand H100 or H200 node group (p5, p5e, p5en) must have a maxSize within the tier's cap "
                "(tier fact caps.onDemandH100Nodes).",
    concern="cost", severity=Severity.HIGH,
    remediation="Lower maxSize, use a capacity block (capacityType CAPACITY_BLOCK) for planned capacity, or raise "
                "the tier's caps.onDemandH100Nodes (or this policy's maxNodes) deliberately.",
    config={"maxNodes": {"type": "integer", "minimum": 0, "default": 0,
                         "description": "Largest maxSize of an on-demand H100-class node group (the tier's "
                                        "caps.onDemandH100Nodes)."}},
    facts={"maxNodes": "caps.onDemandH100Nodes"},
))
def h100_cap(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    cap = to_int(cfg["maxNodes"])
    for r in resources:
        if r.resource_type != NODE_GROUP or (get(r.props, "capacityType") or "ON_DEMAND") != "ON_DEMAND":
            continue
        accel = next((a for a in map(accelerator_for, node_group_instance_types(r)) if a and a.h100_class), None)
        if accel is None:
            continue
        hi = to_int(get(r.props, "scalingConfig.maxSize"))
        if hi is None or (cap is not None and hi > cap):
            yield (f"{r.name}: on-demand {accel.instance_type} node group maxSize {hi} exceeds the "
                   f"{_tier(cfg)} tier cap of {cap}"), r.urn


BILLABLE_TYPES: frozenset[str] = frozenset({
    "aws:eks/cluster:Cluster", NODE_GROUP, "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
    "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ec2/instance:Instance", "aws:ebs/volume:Volume",
    "aws:ec2/capacityReservation:CapacityReservation",
    "aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer",
    "aws:elasticache/replicationGroup:ReplicationGroup", "aws:elasticache/serverlessCache:ServerlessCache",
    "aws:elasticache/cluster:Cluster",
    "aws:sagemaker/endpoint:Endpoint", "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    BEDROCK_PT, "aws:bedrock/inferenceProfile:InferenceProfile",
    "aws:ecr/repository:Repository", "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:kms/key:Key",
    "aws:cloudwatch/logGroup:LogGroup", "aws:wafv2/webAcl:WebAcl", "aws:secretsmanager/secret:Secret",
    LAUNCH_TEMPLATE,
})
"""Resource types that bill (or, for launch templates, tag the instances and volumes that bill)."""

TAGS_DEFAULT = ["team", "environment", "tier"]


def _missing(tags: Mapping[str, Any], required: Sequence[str]) -> list[str]:
    keys = list(tags)
    return [k for k in required if k not in keys or not str(tags[k] or "").strip()]


@resource_policy(Rule(
    id="cost-allocation-tags",
    title="Cost-allocation tags on billable resources",
    description="Billable resources must carry the team, environment and tier cost-allocation tags; launch templates "
                "must pass them to the instances and volumes they start (EKS does not copy node-group tags there).",
    concern="cost", severity=Severity.MEDIUM,
    remediation="Pass ctx.tags (team, environment, tier, ...) to every component; on launch templates add "
                "tagSpecifications for 'instance' and 'volume' with the same tags.",
    config={"requiredTags": {"type": "array", "items": {"type": "string"}, "default": TAGS_DEFAULT,
                             "description": "Tag keys every billable resource must carry."}},
), types=BILLABLE_TYPES)
def cost_tags(s: Subject, cfg: dict) -> Iterable[str]:
    required = cfg["requiredTags"]
    provider_tags = as_map(get(s.provider.props, "defaultTags.tags")) if s.provider is not None else {}
    tags = {**provider_tags, **as_map(tags_of(s.props)), **as_map(get(s.props, "tagsAll"))}
    missing = _missing(tags, required)
    if missing:
        yield f"missing cost-allocation tag(s) {', '.join(missing)}"
    if s.type == LAUNCH_TEMPLATE:
        specs = {str(get(t, "resourceType")): as_map(get(t, "tags")) for t in as_list(get(s.props, "tagSpecifications"))}
        for kind in ("instance", "volume"):
            m = _missing({**provider_tags, **specs.get(kind, {})}, required) if kind in specs else list(required)
            if m:
                yield f"tagSpecifications for {kind} lack {', '.join(m)}: the {kind}s this template launches are unattributed"


PRIORITY_CLASS = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
HPA_V1 = "kubernetes:autoscaling/v1:HorizontalPodAutoscaler"
_ACCEL = ACCELERATOR_RESOURCES


def _accelerator_pod(type_token: str, props: Mapping[str, Any]) -> tuple[Mapping, Mapping] | None:
    pod = pod_template(type_token, props)
    if pod is None:
        return None
    for c in containers(pod[1], init=False):
        if any(resource_quantity(c, s, r) is not None for s in ("limits", "requests") for r in _ACCEL):
            return pod
    return None


def _low_priority_classes(resources: Sequence[Any]) -> set[str]:
    """Names of PriorityClasses below zero: the priority of warm-pool placeholder pods, which any real pod evicts."""
    return {str(get(p.props, "metadata.name") or p.name) for p in resources
            if p.resource_type == PRIORITY_CLASS and (to_int(get(p.props, "value")) or 0) < 0}


def _workload_name(r: Any) -> str:
    return str(get(r.props, "metadata.name") or r.name)


@stack_policy(Rule(
    id="warm-pool-within-tier",
    title="Warm accelerator capacity within the tier's allowance",
    description="Accelerator capacity kept warm while idle (placeholder pods below the serving priority, KEDA/HPA "
                "minimum replicas of accelerator workloads, ASG warm pools) must not exceed the tier's allowance "
                "(tier fact caps.warmAccelerators), per workload.",
    concern="cost", severity=Severity.MEDIUM,
    remediation="Lower the warm minimum (warm pool replicas / autoscaling minReplicas) for this tier, or raise the "
                "tier's caps.warmAccelerators (or this policy's maxWarm) deliberately.",
    config={"maxWarm": {"type": "integer", "minimum": 0, "default": 0,
                        "description": "Largest warm replica/instance count per workload (the tier's "
                                       "caps.warmAccelerators)."}},
    facts={"maxWarm": "caps.warmAccelerators"},
))
def warm_pool(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    tier = _tier(cfg)
    cap = to_int(cfg["maxWarm"]) or 0
    low_priority = _low_priority_classes(resources)
    workloads = {}
    for r in resources:
        pod = _accelerator_pod(r.resource_type, r.props)
        if pod is None:
            continue
        workloads[(namespace_of(r.props), r.resource_type.rsplit(":", 1)[-1], _workload_name(r))] = (r, pod)
        if str(get(pod[1], "priorityClassName") or "") in low_priority:
            n = to_int(get(r.props, "spec.replicas"))
            n = 1 if n is None else n
            if n > cap:
                yield f"{r.name}: {n} placeholder replica(s) hold accelerator nodes warm; the {tier} tier allows {cap}", r.urn
    for r in resources:
        if r.resource_type == SCALED_OBJECT:
            ref = as_map(get(r.props, "spec.scaleTargetRef"))
            n = to_int(get(r.props, "spec.minReplicaCount")) or 0
        elif r.resource_type == HPA:
            ref = as_map(get(r.props, "spec.scaleTargetRef"))
            n = to_int(get(r.props, "spec.minReplicas"))
            n = 1 if n is None else n
        else:
            continue
        key = (namespace_of(r.props), str(get(ref, "kind") or "Deployment"), str(get(ref, "name")))
        if key in workloads and n > cap:
            yield f"{r.name}: keeps {n} replica(s) of accelerator workload {key[2]} warm; the {tier} tier allows {cap}", r.urn
    for r in resources:
        if r.resource_type == "aws:autoscaling/group:Group" and get(r.props, "warmPool") is not None:
            n = to_int(get(r.props, "warmPool.minSize")) or 0
            if n > cap:
                yield f"{r.name}: ASG warm pool keeps {n} instance(s); the {tier} tier allows {cap}", r.urn



@stack_policy(Rule(
    id="accelerator-workload-scales-to-zero",
    title="No accelerator workload pinned above zero where the tier requires scale to zero",
    description="In a tier that requires it (tier fact acceleratorsScaleToZero) a Deployment or StatefulSet that "
                "requests an accelerator must either run zero replicas or have an autoscaler (KEDA ScaledObject or "
                "HPA, matched by scaleTargetRef kind and name in the same namespace): fixed replicas keep a GPU node up, "
                "and billing, with no traffic. Warm-pool placeholders (pods below zero priority) and autoscaler "
                "minimums are warm-pool-within-tier's to judge.",
    concern="cost", severity=Severity.HIGH,
    remediation="Give the workload a KEDA ScaledObject with minReplicaCount 0 (VllmService's autoscaling does this), "
                "or set spec.replicas to 0 and scale it by hand when you need it.",
    config={"required": {"type": "boolean", "default": True,
                         "description": "Accelerator workloads must not be pinned above zero replicas without an "
                                        "autoscaler (the tier's acceleratorsScaleToZero)."}},
    facts={"required": "acceleratorsScaleToZero"},
    fixed_level=EnforcementLevel.MANDATORY,
))
def accelerator_workload_scales_to_zero(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if not cfg["required"]:
        return
    placeholders = _low_priority_classes(resources)
    scaled: set[tuple[str, str, str]] = set()
    for r in resources:
        if r.resource_type in (SCALED_OBJECT, HPA, HPA_V1):
            ref = as_map(get(r.props, "spec.scaleTargetRef"))
            scaled.add((namespace_of(r.props), str(get(ref, "kind") or "Deployment"), str(get(ref, "name"))))
    for r in resources:
        kind = r.resource_type.rsplit(":", 1)[-1]
        if kind not in ("Deployment", "StatefulSet") or not r.resource_type.startswith("kubernetes:apps/v1:"):
            continue
        pod = _accelerator_pod(r.resource_type, r.props)
        if pod is None or str(get(pod[1], "priorityClassName") or "") in placeholders:
            continue  # warm-pool placeholders are warm-pool-within-tier's to judge, at the tier's cost level
        replicas = to_int(get(r.props, "spec.replicas"))
        replicas = 1 if replicas is None else replicas  # the Kubernetes default
        ns, name = namespace_of(r.props), _workload_name(r)
        if replicas > 0 and (ns, kind, name) not in scaled:
            wants = sorted({str(k) for c in containers(pod[1], init=False) for s in ("limits", "requests")
                            for k in list(as_map(get(c, f"resources.{s}"))) if k in _ACCEL})
            shown = "unset (Kubernetes default 1)" if get(r.props, "spec.replicas") is None else str(replicas)
            yield (f"{r.name}: spec.replicas = {shown} for {kind} {ns}/{name}, which requests "
                   f"{', '.join(wants)}, and no ScaledObject or HorizontalPodAutoscaler targets it: in the "
                   f"{_tier(cfg)} tier its accelerator node bills around the clock; add a ScaledObject with "
                   "minReplicaCount 0 or set spec.replicas to 0"), r.urn
