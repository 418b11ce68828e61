"""Reading resource properties the way CrossGuard hands them over.

Under ``pulumi preview --policy-pack`` props arrive wrapped in ``pulumi_policy``'s unknown-checking proxies: dicts are
``Mapping`` (not ``dict``) and lists are ``Sequence`` (not ``list``), and reading a value that is unknown during preview
raises ``UnknownValueError`` (the runtime turns that into an advisory "can't run during preview"). Everything here
uses ``collections.abc`` types and checks key *presence* by iterating keys, which never reads a value.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

_MISSING = object()


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def has(mapping: Any, key: str) -> bool:
    """Whether ``key`` is set (present and not None) without reading an unknown value."""
    if not is_map(mapping) or key not in list(mapping):
        return False
    try:
        return mapping[key] is not None
    except Exception:  # unknown during preview: it will have a value
        return True


def get(obj: Any, path: str, default: Any = None) -> Any:
    """``get(props, "vpcConfig.endpointPublicAccess")``; list items by index (``defaultActions.0.type``)."""
    cur = obj
    for part in path.split("."):
        if is_map(cur):
            if part not in list(cur):
                return default
            cur = cur[part]
        elif is_seq(cur) and part.isdigit():
            idx = int(part)
            if idx >= len(cur):
                return default
            cur = cur[idx]
        else:
            return default
        if cur is None:
            return default
    return cur


def peek(obj: Any, path: str, default: Any = None) -> Any:
    """Like :func:`get`, but a value unknown during preview reads as ``default``: for matching hints (ARNs, ids,
    names) that are unknown on a first preview, where failing the whole stack rule would hide every other finding."""
    try:
        return get(obj, path, default)
    except Exception as exc:  # pulumi_policy.proxy.UnknownValueError (not imported: keep this module SDK-free)
        if type(exc).__name__ == "UnknownValueError":
            return default
        raise


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if is_seq(value):
        return list(value)
    return [value]


def as_map(value: Any) -> Mapping[str, Any]:
    return value if is_map(value) else {}


def truthy(value: Any) -> bool:
    """Pulumi-aws carries some booleans as strings (launch template ``ebs.encrypted`` is ``"true"``)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def is_false(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "false"
    return value is False


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
_ADDRESS_KEYS = ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds")
"""Address sources of a security group's inline ``ingress`` entry or an ``aws.ec2.SecurityGroupRule``."""
_INGRESS_RULE_ADDRESS_KEYS = ("cidrIpv4", "cidrIpv6", "prefixListId")
"""The same of an ``aws.vpc.SecurityGroupIngressRule`` (one value each)."""


def address_sources(type_token: str, rule: Any) -> list[tuple[str, str]]:
    """``(key, value)`` of every CIDR block and prefix list an ingress rule admits: an inline ``ingress`` entry of a
    security group, a SecurityGroupRule, or a SecurityGroupIngressRule (``type_token`` says which); source security
    groups are not addresses and are left out."""
    keys = _INGRESS_RULE_ADDRESS_KEYS if type_token == SG_INGRESS_RULE else _ADDRESS_KEYS
    return [(k, str(v)) for k in keys for v in as_list(get(rule, k)) if v not in (None, "")]


def tags_of(props: Any) -> Mapping[str, Any]:
    return as_map(get(props, "tags"))


def labels_of(props: Any) -> Mapping[str, Any]:
    return as_map(get(props, "metadata.labels"))


def plain(value: Any) -> Any:
    """A plain ``dict``/``list`` copy of a (possibly proxied) value, for messages and JSON."""
    if is_map(value):
        return {k: plain(value[k]) for k in list(value)}
    if is_seq(value):
        return [plain(v) for v in value]
    return value


def json_doc(value: Any) -> Mapping[str, Any] | None:
    """An IAM policy document given as a JSON string or a mapping; None when it is not one."""
    if is_map(value):
        return value
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


# --- Kubernetes workloads -------------------------------------------------------------------------------------------

POD_TEMPLATE_PATHS: dict[str, str | None] = {
    "kubernetes:apps/v1:Deployment": "spec.template",
    "kubernetes:apps/v1:StatefulSet": "spec.template",
    "kubernetes:apps/v1:DaemonSet": "spec.template",
    "kubernetes:apps/v1:ReplicaSet": "spec.template",
    "kubernetes:batch/v1:Job": "spec.template",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template",
    "kubernetes:core/v1:Pod": None,
}
"""Workload type tokens and where their pod template sits (None: the object is the pod)."""

WORKLOAD_TYPES = frozenset(POD_TEMPLATE_PATHS)
SERVING_WORKLOAD_TYPES = frozenset({"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"})


def pod_template(type_token: str, props: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """``(pod metadata, pod spec)`` of a workload, or None for other types."""
    if type_token not in POD_TEMPLATE_PATHS:
        return None
    path = POD_TEMPLATE_PATHS[type_token]
    template = props if path is None else get(props, path)
    if not is_map(template):
        return None
    return as_map(get(template, "metadata")), as_map(get(template, "spec"))


def containers(pod_spec: Mapping[str, Any], *, init: bool = True) -> list[Mapping[str, Any]]:
    """App containers, then init containers (``init=False`` for app containers only)."""
    out = [c for c in as_list(get(pod_spec, "containers")) if is_map(c)]
    if init:
        out += [c for c in as_list(get(pod_spec, "initContainers")) if is_map(c)]
    return out


def workload_containers(type_token: str, props: Any, *, init: bool = True) -> list[Mapping[str, Any]]:
    """The containers of a workload's pod template (none for other resource types)."""
    pod = pod_template(type_token, props)
    return containers(pod[1], init=init) if pod is not None else []


def container_name(container: Mapping[str, Any]) -> str:
    name = get(container, "name")
    return str(name) if name else "<unnamed>"


def namespace_of(props: Any) -> str:
    return str(get(props, "metadata.namespace") or "default")


def resource_quantity(container: Mapping[str, Any], section: str, resource: str) -> Any:
    """``resources.<section>[resource]`` (section: limits | requests); resource names contain dots."""
    res = as_map(get(container, f"resources.{section}"))
    return res[resource] if resource in list(res) else None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether a label selector (``matchLabels`` plus ``In``/``NotIn``/``Exists``/``DoesNotExist`` expressions)
    selects pods with ``labels``. An empty selector matches nothing (the safe reading for PDBs)."""
    match_labels = as_map(get(selector, "matchLabels"))
    exprs = [e for e in as_list(get(selector, "matchExpressions")) if is_map(e)]
    if not match_labels and not exprs:
        return False
    label_keys = list(labels)
    for k in list(match_labels):
        if k not in label_keys or labels[k] != match_labels[k]:
            return False
    for e in exprs:
        key, op, values = get(e, "key"), get(e, "operator"), as_list(get(e, "values"))
        present = key in label_keys
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry/repo:tag@sha256:...`` -> (repository, tag or None, digest or None)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    return image, tag, digest


def cli_flag(args: Sequence[Any], *names: str) -> str | None:
    """The value of a command-line flag in ``args`` (``--flag value`` or ``--flag=value``); last one wins."""
    found = None
    items = [str(a) for a in args]
    for i, a in enumerate(items):
        for n in names:
            if a == n and i + 1 < len(items):
                found = items[i + 1]
            elif a.startswith(n + "="):
                found = a[len(n) + 1:]
    return found


def container_argv(container: Mapping[str, Any]) -> list[str]:
    """command + args of a container as one argument list; a shell string (``sh -c "vllm serve ... --x 1"``) is
    split like a shell would, so flags inside it are found too."""
    out: list[str] = []
    for a in as_list(get(container, "command")) + as_list(get(container, "args")):
        text = str(a)
        if " " in text and "--" in text:
            try:
                out.extend(shlex.split(text))
                continue
            except ValueError:
                pass
        out.append(text)
    return out
