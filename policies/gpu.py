"""GPU and Neuron correctness: AMI types, pod resources and tolerations, tensor parallelism, autoscaler hints for
scale-from-zero, and the vLLM model-fit check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import Severity

from policies._accel import (
    NEURON_CORES_PER_DEVICE,
    VENDORS,
    Accel,
    accepted_ami_types,
    accelerator_for,
    family_of,
    pod_resources,
    vendor_of_label,
)
from policies._props import (
    as_list,
    as_map,
    cli_flag,
    container_argv,
    container_name,
    containers,
    get,
    pod_template,
    resource_quantity,
    to_int,
    WORKLOAD_TYPES,
)
from policies._rule import Rule, Subject, resource_policy, stack_policy
from policies.cost import node_group_instance_types
from policies.reliability import is_vllm

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG_TAG = "aws:autoscaling/tag:Tag"
CA_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
EKS_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def _node_group_accelerator(ng: Any) -> Accel | None:
    return next((a for a in map(accelerator_for, node_group_instance_types(ng)) if a), None)


def _launch_template_image(ng: Any) -> str | None:
    """The AMI id a node group's launch template pins (``imageId``), when the template is in the stack."""
    for d in getattr(ng, "dependencies", None) or []:
        if getattr(d, "resource_type", None) == LAUNCH_TEMPLATE:
            image = get(d.props, "imageId")
            if image:
                return str(image)
    return None


def _ami_owner(ami: str, arm: bool, skip: str) -> str | None:
    """The display name of another vendor whose driver ``ami`` carries (from the vendor registry), if any."""
    for name, v in VENDORS.items():
        if name != skip and ami in accepted_ami_types(v, arm):
            return v.display_name
    return None


def _ami_rule(vendor: str, resources: Sequence[Any]) -> Iterable[tuple[str, str | None]]:
    """Node groups of ``vendor``'s instances whose ``amiType`` is not one the vendor registry accepts for them.

    A custom AMI (``amiType`` CUSTOM, or unset with an ``imageId`` in the launch template) cannot be judged from the
    plan: the pack does not know what an AMI id carries, so such groups are left to the person who built the AMI."""
    for r in resources:
        if r.resource_type != NODE_GROUP:
            continue
        for it in node_group_instance_types(r):
            accel = accelerator_for(it)
            if accel is None or accel.vendor != vendor:
                continue
            ami = get(r.props, "amiType")
            if ami == "CUSTOM" or (not ami and _launch_template_image(r)):
                break  # a custom AMI: its drivers cannot be read from the plan
            allowed = accepted_ami_types(accel.facts, accel.arm)
            if ami not in allowed:
                if not ami:
                    shown = "unset (EKS picks a standard AMI without the drivers)"
                else:
                    owner = _ami_owner(str(ami), accel.arm, vendor)
                    shown = repr(ami) + (f" ({owner} AMI type)" if owner else
                                         f" (no {accel.facts.display_name} driver)")
                yield (f"{r.name}: {it} is a {accel.facts.display_name} instance but amiType is "
                       f"{shown}; expected one of {', '.join(sorted(allowed))}"), r.urn
                break


def _register_ami_rule(vendor: str) -> None:
    """One AMI rule per vendor of the registry (``<vendor>-instance-<vendor>-ami``), its text from the vendor's data:
    a new vendor in ``components.catalog.vendors`` gets its rule with no code here."""
    facts = VENDORS[vendor]
    families = [*facts.instance_families_x86, *facts.instance_families_arm]
    accepted = sorted({*facts.accepted_ami_types_x86, *facts.accepted_ami_types_arm})
    default = facts.ami_types.get("al2023") or accepted[0]

    @stack_policy(Rule(
        id=f"{vendor}-instance-{vendor}-ami",
        title=f"{facts.display_name} instances use a {facts.display_name} AMI type",
        description=(f"A node group of {facts.display_name} instances ({', '.join(families)}) must use an EKS AMI "
                     f"type that carries the {facts.display_name} driver ({', '.join(accepted)}); a standard AMI or "
                     "another vendor's accelerated AMI leaves the devices unusable."),
        concern="gpu", severity=Severity.HIGH,
        remediation=(f"Set amiType to {default} (GpuNodeGroup derives it from the instance type). The accepted AMI "
                     "types are the vendor registry's (components/catalog/vendors.py, policies/vendors.json)."),
    ))
    def check(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
        return _ami_rule(vendor, resources)


for _vendor in VENDORS:
    _register_ami_rule(_vendor)


# --- Pods ---------------------------------------------------------------------------------------------------------------

def _vendor_of_resource(name: str) -> str | None:
    for vendor, facts in VENDORS.items():
        if name in pod_resources(facts):
            return vendor
    return None


def _selector_vendors(pod_spec: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    selectors: list[tuple[str, list[Any]]] = []
    ns = as_map(get(pod_spec, "nodeSelector"))
    selectors += [(k, [ns[k]]) for k in list(ns)]
    terms = as_list(get(pod_spec, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"))
    for t in terms:
        for e in as_list(get(t, "matchExpressions")):
            if get(e, "operator") in ("In", "Exists"):
                selectors.append((str(get(e, "key")), as_list(get(e, "values")) or ["true"]))
    for key, values in selectors:
        found |= {v for v in (vendor_of_label(key, x) for x in values) if v}
    return found


def pod_accelerator_intent(pod_spec: Mapping[str, Any]) -> set[str]:
    """Vendors a pod targets: by resources it asks for, taints it tolerates, or accelerator node labels it selects."""
    vendors: set[str] = set()
    for c in containers(pod_spec):
        for section in ("limits", "requests"):
            for k in list(as_map(get(c, f"resources.{section}"))):
                v = _vendor_of_resource(str(k))
                if v:
                    vendors.add(v)
    for t in as_list(get(pod_spec, "tolerations")):
        for vendor, facts in VENDORS.items():
            if get(t, "key") == facts.taint_key:
                vendors.add(vendor)
    return vendors | _selector_vendors(pod_spec)


def _tolerates(pod_spec: Mapping[str, Any], vendor: str) -> bool:
    """Whether the pod tolerates the vendor's node taint (any value with Exists, or the taint's value)."""
    facts = VENDORS[vendor]
    for t in as_list(get(pod_spec, "tolerations")):
        op = get(t, "operator") or "Equal"
        effect = get(t, "effect")
        if effect not in (None, "", facts.taint_effect):
            continue
        if get(t, "key") in (None, "") and op == "Exists":
            return True
        if get(t, "key") == facts.taint_key and (op == "Exists" or str(get(t, "value")) == facts.taint_value):
            return True
    return False


def _positive(q: Any) -> bool:
    n = to_int(q)
    return n is not None and n > 0


@resource_policy(Rule(
    id="accelerator-pods-request-and-tolerate",
    title="Accelerator pods request the device and tolerate its taint",
    description="A pod that targets GPU or Neuron nodes must set the matching resource limit (nvidia.com/gpu, or "
                "aws.amazon.com/neuron / neuroncore) and tolerate the node group's taint.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Set resources.limits {'nvidia.com/gpu': N} (Neuron: 'aws.amazon.com/neuroncore' or "
                "'aws.amazon.com/neuron') and a toleration {key: <same>, operator: Exists, effect: NoSchedule}.",
), types=WORKLOAD_TYPES - {"kubernetes:apps/v1:DaemonSet"})
def accelerator_pods(s: Subject, cfg: dict) -> Iterable[str]:
    pod = pod_template(s.type, s.props)
    if pod is None:
        return
    spec = pod[1]
    for vendor in sorted(pod_accelerator_intent(spec)):
        names = pod_resources(VENDORS[vendor])
        limited = any(_positive(resource_quantity(c, "limits", r)) for c in containers(spec, init=False) for r in names)
        if not limited:
            yield (f"the pod targets {vendor} nodes but no container sets a limit for "
                   f"{' or '.join(names[:2])}: it would be scheduled without a device")
        if not _tolerates(spec, vendor):
            facts = VENDORS[vendor]
            yield (f"the pod targets {vendor} nodes but does not tolerate the {facts.taint_key}={facts.taint_value}:"
                   f"{facts.taint_effect} taint: it stays Pending")


def _pod_family(spec: Mapping[str, Any]) -> str | None:
    it = as_map(get(spec, "nodeSelector"))
    for key in ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"):
        if key in list(it):
            return family_of(str(it[key]))
    return None


def parallel_units(c: Mapping[str, Any], spec: Mapping[str, Any]) -> tuple[int | None, str]:
    """Accelerator units a container gets: GPUs, or NeuronCores (cores, or devices x cores per device)."""
    for v in VENDORS.values():
        if v.shards_over == "devices":
            devices = to_int(resource_quantity(c, "limits", v.device_resource))
            if devices:
                return devices, f"{devices} x {v.device_resource}"
            continue
        cores = to_int(resource_quantity(c, "limits", v.core_resource)) if v.core_resource else None
        if cores:
            return cores, f"{cores} x {v.core_resource}"
        devices = next((n for n in (to_int(resource_quantity(c, "limits", r)) for r in (v.device_resource,
                                                                                       *v.resource_aliases)) if n), None)
        if devices:
            per = NEURON_CORES_PER_DEVICE.get(_pod_family(spec) or "inf2", 2)
            return devices * per, f"{devices} x {v.device_resource} ({devices * per} {v.unit_name}s)"
    return None, "no accelerator"


@resource_policy(Rule(
    id="tensor-parallel-matches-accelerators",
    title="vLLM tensor x pipeline parallel size equals the accelerators requested",
    description="A vLLM container's --tensor-parallel-size x --pipeline-parallel-size must equal the GPUs (or "
                "NeuronCores) it requests: fewer wastes paid devices, more fails at start-up.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Make nvidia.com/gpu (or aws.amazon.com/neuroncore) equal to tensor x pipeline parallel size.",
), types=WORKLOAD_TYPES)
def tensor_parallel(s: Subject, cfg: dict) -> Iterable[str]:
    pod = pod_template(s.type, s.props)
    if pod is None:
        return
    for c in containers(pod[1], init=False):
        if not is_vllm(c):
            continue
        argv = container_argv(c)
        tp = to_int(cli_flag(argv, "--tensor-parallel-size", "-tp")) or 1
        pp = to_int(cli_flag(argv, "--pipeline-parallel-size", "-pp")) or 1
        units, what = parallel_units(c, pod[1])
        if units is None:
            continue  # accelerator-pods-request-and-tolerate reports pods without a device limit
        if tp * pp != units:
            yield (f"container {container_name(c)}: tensor-parallel-size {tp} x pipeline-parallel-size {pp} = "
                   f"{tp * pp}, but it requests {what}")


SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
SAGEMAKER_ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
TP_ENV_KEYS = ("OPTION_TENSOR_PARALLEL_DEGREE", "TENSOR_PARALLEL_DEGREE", "SM_VLLM_TENSOR_PARALLEL_SIZE",
               "SM_ON_TENSOR_PARALLEL_SIZE", "SM_NUM_GPUS")
"""Tensor-parallel settings of the SageMaker serving containers: DJL LMI (``OPTION_``/plain), vLLM's SageMaker
entrypoint (``SM_VLLM_*`` -> ``--*``), the Hugging Face optimum-neuron vLLM image (``SM_ON_*``), TGI (``SM_NUM_GPUS``)."""


def _model_tp(model: Any) -> tuple[str, str] | None:
    env = as_map(get(model.props, "primaryContainer.environment"))
    for c in as_list(get(model.props, "containers")):
        env = {**as_map(get(c, "environment")), **env}
    for k in TP_ENV_KEYS:
        if k in list(env):
            return k, str(env[k])
    return None


@stack_policy(Rule(
    id="sagemaker-tensor-parallel-matches-instance",
    title="SageMaker tensor parallel degree matches the instance",
    description="A SageMaker model's tensor parallel degree (OPTION_TENSOR_PARALLEL_DEGREE and friends) must be set "
                "and equal the GPUs (or NeuronCores) of the endpoint variant's instance type.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Set OPTION_TENSOR_PARALLEL_DEGREE to the instance's GPU count (ml.g5.12xlarge: 4) or NeuronCores "
                "(ml.inf2.24xlarge: 12); SageMakerLmiEndpoint derives it from the instance type.",
))
def sagemaker_tp(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for ec in resources:
        if ec.resource_type != SAGEMAKER_ENDPOINT_CONFIG:
            continue
        models = [d for d in (getattr(ec, "dependencies", None) or []) if d.resource_type == SAGEMAKER_MODEL]
        for v in as_list(get(ec.props, "productionVariants")):
            accel = accelerator_for(get(v, "instanceType"))
            if accel is None:
                continue
            units = accel.count if accel.facts.shards_over == "devices" else (
                accel.neuron_cores or (accel.count * NEURON_CORES_PER_DEVICE.get(accel.family, 2) if accel.count else None))
            for m in models:
                found = _model_tp(m)
                if found is None:
                    yield (f"{m.name}: no tensor parallel degree set ({' / '.join(TP_ENV_KEYS[:1])}) for "
                           f"{get(v, 'instanceType')}: the container guesses"), m.urn
                    continue
                key, value = found
                if value == "max" or units is None:
                    continue
                if to_int(value) != units:
                    yield (f"{m.name}: {key}={value} but {get(v, 'instanceType')} has {units} "
                           f"{accel.facts.unit_name}s"), m.urn


# --- Scale from zero ---------------------------------------------------------------------------------------------------

def _asg_tags(ng: Any, resources: Sequence[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in resources:
        if r.resource_type == ASG_TAG and ng in (getattr(r, "dependencies", None) or []):
            key, value = get(r.props, "tag.key"), get(r.props, "tag.value")
            if key is not None:
                out[str(key)] = str(value)
    return out


@stack_policy(Rule(
    id="scale-from-zero-autoscaler-tags",
    title="Scale-from-zero node groups carry cluster-autoscaler node-template tags",
    description="A node group with minSize 0 must tag its Auto Scaling group with the cluster-autoscaler "
                "node-template hints for its labels, taints and accelerator resource; EKS does not copy them, and "
                "without them a pending GPU pod never brings the group up from zero.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Add aws.autoscaling.Tag resources on the node group's ASG: "
                "k8s.io/cluster-autoscaler/node-template/label/<key>=<value> per label, .../taint/<key>=<value>:<Effect> "
                "per taint and .../resources/<nvidia.com/gpu|aws.amazon.com/neuron>=<count> (GpuNodeGroup does this).",
))
def scale_from_zero_tags(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for ng in resources:
        if ng.resource_type != NODE_GROUP or (to_int(get(ng.props, "scalingConfig.minSize")) or 0) != 0:
            continue
        accel = _node_group_accelerator(ng)
        labels = as_map(get(ng.props, "labels"))
        taints = as_list(get(ng.props, "taints"))
        if accel is None and not labels and not taints:
            continue
        tags = _asg_tags(ng, resources)
        missing: list[str] = []
        for k in list(labels):
            key = f"{CA_TEMPLATE}/label/{k}"
            if tags.get(key) != str(labels[k]):
                missing.append(f"{key}={labels[k]}")
        for t in taints:
            effect = EKS_EFFECTS.get(str(get(t, "effect")), str(get(t, "effect")))
            key, want = f"{CA_TEMPLATE}/taint/{get(t, 'key')}", f"{get(t, 'value') or ''}:{effect}"
            if tags.get(key) != want:
                missing.append(f"{key}={want}")
        if accel is not None:
            key = f"{CA_TEMPLATE}/resources/{accel.k8s_resource}"
            if not _positive(tags.get(key)):
                missing.append(f"{key}=<count>")
        if missing:
            shown = ", ".join(missing[:4]) + (f" (+{len(missing) - 4} more)" if len(missing) > 4 else "")
            yield f"{ng.name}: minSize 0 but its ASG lacks {shown}", ng.urn


def _eks_taints(ng: Any) -> dict[str, str]:
    """A node group's taints as the autoscaler writes them: key -> ``<value>:<Effect>``."""
    out: dict[str, str] = {}
    for t in as_list(get(ng.props, "taints")):
        effect = EKS_EFFECTS.get(str(get(t, "effect")), str(get(t, "effect")))
        out[str(get(t, "key"))] = f"{get(t, 'value') or ''}:{effect}"
    return out


@stack_policy(Rule(
    id="accelerator-node-group-vendor-taint",
    title="Accelerator node groups carry their vendor's taint",
    description="A node group of GPU or Neuron instances must taint its nodes with the vendor's taint (from the "
                "vendor registry: nvidia.com/gpu=true:NoSchedule, aws.amazon.com/neuron=true:NoSchedule), so only "
                "pods that ask for the device and tolerate it land there.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Add the taint to the node group's taints ({key: nvidia.com/gpu, value: 'true', effect: "
                "NO_SCHEDULE}; Neuron: aws.amazon.com/neuron); GpuNodeGroup sets it from the vendor registry.",
))
def vendor_taint(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for ng in resources:
        if ng.resource_type != NODE_GROUP:
            continue
        accel = _node_group_accelerator(ng)
        if accel is None:
            continue
        f = accel.facts
        want = f"{f.taint_value}:{f.taint_effect}"
        have = _eks_taints(ng).get(f.taint_key)
        eks_effect = next((k for k, v in EKS_EFFECTS.items() if v == f.taint_effect), f.taint_effect)
        fix = f"add {{key: {f.taint_key}, value: '{f.taint_value}', effect: {eks_effect}}}"
        if have is None:
            yield (f"{ng.name}: taints lacks {f.taint_key}={want} ({accel.instance_type} is a {f.display_name} "
                   f"instance): pods that do not need the device can fill its nodes and keep them up; {fix}"), ng.urn
        elif have != want:
            yield (f"{ng.name}: taints has {f.taint_key}={have}, expected {f.taint_key}={want} for "
                   f"{accel.instance_type}: the device plugin's pods and the serving pods tolerate {want}; "
                   f"{fix}"), ng.urn


@stack_policy(Rule(
    id="autoscaler-taint-tags-match-taints",
    title="Cluster-autoscaler taint tags match the node group's taints",
    description="When a node group's Auto Scaling group carries cluster-autoscaler node-template hints, its "
                "k8s.io/cluster-autoscaler/node-template/taint/<key> tags must equal the node group's real taints "
                "(none missing, none extra, same value and effect): the autoscaler simulates scheduling on the "
                "template, so a wrong taint starts nodes no pending pod fits or never starts the ones it needs.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Derive the ASG tags from the node group's taints (one aws.autoscaling.Tag per taint, value "
                "<value>:<Effect> with the Kubernetes effect name); GpuNodeGroup does this.",
))
def autoscaler_taint_tags(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    prefix = f"{CA_TEMPLATE}/taint/"
    for ng in resources:
        if ng.resource_type != NODE_GROUP:
            continue
        tags = _asg_tags(ng, resources)
        if not any(k.startswith(f"{CA_TEMPLATE}/") for k in tags):
            continue  # no node-template hints: the autoscaler reads real nodes (scale-from-zero-autoscaler-tags
            # judges groups that start at zero)
        hinted = {k[len(prefix):]: v for k, v in tags.items() if k.startswith(prefix)}
        real = _eks_taints(ng)
        problems = []
        for key in sorted(real.keys() - hinted.keys()):
            problems.append(f"missing {prefix}{key}={real[key]}")
        for key in sorted(hinted.keys() - real.keys()):
            problems.append(f"extra {prefix}{key}={hinted[key]} (the node group has no {key} taint)")
        for key in sorted(real.keys() & hinted.keys()):
            if hinted[key] != real[key]:
                problems.append(f"{prefix}{key}={hinted[key]} but the taint is {key}={real[key]}")
        if problems:
            yield f"{ng.name}: ASG taint tags do not match taints: {'; '.join(problems)}", ng.urn


# --- vLLM model fit ------------------------------------------------------------------------------------------------------

def _fit_checker():
    try:
        from components.serving.vllm.fit import fit_problems_from_manifest  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - published pack without the repository, or not built yet
        return None
    return fit_problems_from_manifest


@resource_policy(Rule(
    id="vllm-model-fits-accelerators",
    title="vLLM arguments pass the model fit check",
    description="A vLLM container's model, dtype/quantization, max model length and concurrency must fit the "
                "accelerator memory it requests, with a tensor parallel size that divides the attention heads.",
    concern="gpu", severity=Severity.HIGH,
    remediation="Pick a larger node group, quantize (fp8/awq), lower --max-model-len or --max-num-seqs, or fix "
                "--tensor-parallel-size; VllmService runs the same check at construction.",
), types=WORKLOAD_TYPES)
def vllm_fit(s: Subject, cfg: dict) -> Iterable[str]:
    pod = pod_template(s.type, s.props)
    if pod is None:
        return
    vllm = [c for c in containers(pod[1], init=False) if is_vllm(c)]
    if not vllm:
        return
    check = _fit_checker()
    if check is None:
        return
    annotations = {**{str(k): str(v) for k, v in as_map(get(s.props, "metadata.annotations")).items()},
                   **{str(k): str(v) for k, v in as_map(get(pod[0], "annotations")).items()}}
    for c in vllm:
        # a model pool's Deployment runs several engines: each container's facts are ``<container>.genai-scale/<key>``
        own = f"{container_name(c)}.genai-scale/"
        facts = {**annotations, **{"genai-scale/" + k[len(own):]: v for k, v in annotations.items() if k.startswith(own)}}
        for problem in check(container_argv(c), facts):
            yield f"container {container_name(c)}: {problem}"
