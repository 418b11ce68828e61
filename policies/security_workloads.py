"""Security rules for Kubernetes workloads: no privileged containers, non-root users, pinned images and charts."""

from __future__ import annotations

from typing import Iterable

from pulumi_policy import Severity

from policies._props import (
    WORKLOAD_TYPES,
    as_map,
    container_name,
    containers,
    get,
    has,
    namespace_of,
    pod_template,
    split_image,
    to_int,
    truthy,
    workload_containers,
)
from policies._rule import Rule, Subject, resource_policy

# --- Kubernetes workloads ----------------------------------------------------------------------------------------------

@resource_policy(Rule(
    id="k8s-no-privileged-containers",
    title="No privileged containers",
    description="Workload containers must not run privileged or allow privilege escalation explicitly.",
    concern="security", severity=Severity.HIGH,
    remediation="Remove securityContext.privileged / allowPrivilegeEscalation=true; GPUs and Neuron devices are "
                "handed to pods by the device plugins, which needs no privileges in the workload.",
    checkov=("CKV_K8S_16", "CKV_K8S_20"),
    config={"exemptNamespaces": {"type": "array", "items": {"type": "string"}, "default": ["kube-system"],
                                 "description": "Namespaces whose node agents may run privileged."}},
), types=WORKLOAD_TYPES)
def k8s_privileged(s: Subject, cfg: dict) -> Iterable[str]:
    pod = pod_template(s.type, s.props)
    if pod is None or namespace_of(s.props) in cfg["exemptNamespaces"]:
        return
    for c in containers(pod[1]):
        if truthy(get(c, "securityContext.privileged")):
            yield f"container {container_name(c)} runs privileged"
        elif truthy(get(c, "securityContext.allowPrivilegeEscalation")):
            yield f"container {container_name(c)} sets allowPrivilegeEscalation=true"


@resource_policy(Rule(
    id="k8s-run-as-non-root",
    title="Containers run as non-root",
    description="Workload containers must run as a non-root user (runAsNonRoot or a non-zero runAsUser at pod or "
                "container level), unless their namespace or image is listed as needing root.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set securityContext.runAsNonRoot=true and runAsUser to the image's user (the vLLM images run as "
                "UID 2000); list a namespace or image in this policy's config only when root is unavoidable.",
    checkov=("CKV_K8S_23",),
    config={"exemptNamespaces": {"type": "array", "items": {"type": "string"}, "default": ["kube-system"],
                                 "description": "Namespaces whose workloads may run as root."},
            "exemptImages": {"type": "array", "items": {"type": "string"}, "default": [],
                             "description": "Image repository prefixes that must run as root."}},
), types=WORKLOAD_TYPES)
def k8s_non_root(s: Subject, cfg: dict) -> Iterable[str]:
    pod = pod_template(s.type, s.props)
    if pod is None or namespace_of(s.props) in cfg["exemptNamespaces"]:
        return
    pod_sc = as_map(get(pod[1], "securityContext"))
    for c in containers(pod[1]):
        image = str(get(c, "image") or "")
        if any(image.startswith(p) for p in cfg["exemptImages"]):
            continue
        sc = as_map(get(c, "securityContext"))
        user = to_int(get(sc, "runAsUser") if has(sc, "runAsUser") else get(pod_sc, "runAsUser"))
        non_root = get(sc, "runAsNonRoot") if has(sc, "runAsNonRoot") else get(pod_sc, "runAsNonRoot")
        if user == 0:
            yield f"container {container_name(c)} sets runAsUser=0 (root)"
        elif not truthy(non_root) and (user is None or user <= 0):
            yield f"container {container_name(c)} may run as root: neither runAsNonRoot=true nor a non-zero runAsUser"


@resource_policy(Rule(
    id="k8s-image-tag-pinned",
    title="Container images pinned (no latest)",
    description="Workload images must name a fixed tag or digest, never 'latest' or no tag.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Use the versions pinned in components/versions.py (or an @sha256 digest).",
    checkov=("CKV_K8S_14",),
), types=WORKLOAD_TYPES)
def k8s_image_pinned(s: Subject, cfg: dict) -> Iterable[str]:
    for c in workload_containers(s.type, s.props):
        image = get(c, "image")
        if not isinstance(image, str) or not image:
            yield f"container {container_name(c)} has no image"
            continue
        _, tag, digest = split_image(image)
        if digest:
            continue
        if tag is None or tag == "latest":
            yield f"container {container_name(c)} uses {image!r}: a floating tag changes under you"


@resource_policy(Rule(
    id="helm-chart-version-pinned",
    title="Helm charts pinned to a version",
    description="Helm releases must pin an exact chart version.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set version to the chart version pinned in components/versions.py.",
), types={"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})
def helm_pinned(s: Subject, cfg: dict) -> Iterable[str]:
    version = get(s.props, "version")
    if not isinstance(version, str) or not version.strip():
        yield f"chart {get(s.props, 'chart')!r} has no version: every install may pull a different chart"
    elif any(ch in version for ch in "^~*><| ") or version in ("latest", "x"):
        yield f"chart {get(s.props, 'chart')!r} version {version!r} is a range, not an exact version"
