"""Storage rules: Amazon EFS file systems (the shared compile cache) encrypted at rest, TLS required by their file system
policy, and mount targets reachable only from security groups, never from a CIDR.

Each rule judges resource inputs (camelCase wire names); the stack rules relate resources through the inputs' property
dependencies (a FileSystemPolicy's ``fileSystemId``, a MountTarget's ``securityGroups``, an ingress rule's
``securityGroupId``), as in a real ``pulumi preview`` where the ids are not known yet.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from pulumi_policy import Severity

from policies._props import SG_INGRESS_RULE, address_sources, as_list, as_map, get, json_doc, peek, truthy
from policies._rule import Rule, Subject, resource_policy, stack_policy

FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
FILE_SYSTEM_POLICY = "aws:efs/fileSystemPolicy:FileSystemPolicy"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"


@resource_policy(Rule(
    id="efs-encrypted",
    title="EFS file systems encrypted at rest",
    description="An EFS file system must be encrypted at rest (the EFS API creates unencrypted ones by default).",
    concern="security", severity=Severity.HIGH,
    remediation="Set encrypted=true (and kmsKeyId for a customer-managed key; the AWS-managed key otherwise). "
                "Encryption is fixed at creation: a new file system replaces the old one. SharedCacheFileSystem "
                "encrypts by default.",
    checkov=("CKV_AWS_42",),
), types={FILE_SYSTEM})
def efs_encrypted(s: Subject, cfg: dict) -> Iterable[str]:
    if not truthy(get(s.props, "encrypted")):
        yield "encrypted is not true: the file system's data and metadata are stored unencrypted"


def _deps(r: Any, prop: str) -> list[Any]:
    return list((getattr(r, "property_dependencies", None) or {}).get(prop) or [])


def _refers_to(r: Any, prop: str, target: Any) -> bool:
    """Whether input ``prop`` of ``r`` was computed from ``target`` (or, with known ids, equals its id; an id unknown
    during a first preview matches nothing)."""
    if any(getattr(d, "urn", None) == target.urn for d in _deps(r, prop)):
        return True
    tid = peek(target.props, "id")
    return tid is not None and peek(r.props, prop) == tid


def denies_plaintext(policy: Mapping[str, Any] | None) -> bool:
    """Whether a resource policy has a Deny statement for every principal on ``aws:SecureTransport`` false."""
    for st in as_list(get(policy, "Statement")) if policy else []:
        if get(st, "Effect") != "Deny":
            continue
        principal = get(st, "Principal")
        if principal not in ("*", {"AWS": "*"}) and as_list(get(principal, "AWS")) != ["*"]:
            continue
        cond = as_map(get(as_map(get(st, "Condition")), "Bool"))
        values = [str(v).lower() for v in as_list(cond.get("aws:SecureTransport"))] if "aws:SecureTransport" in cond \
            else []
        if values == ["false"]:
            return True
    return False


@stack_policy(Rule(
    id="efs-tls-required",
    title="EFS file systems refuse clients without TLS",
    description="Every EFS file system must have a file system policy that denies any request made without TLS "
                "(a Deny for every principal on aws:SecureTransport false), so no client mounts it in plaintext.",
    concern="security", severity=Severity.HIGH,
    remediation="Add an aws.efs.FileSystemPolicy with a statement {Effect: Deny, Principal: {AWS: '*'}, Action: '*', "
                "Condition: {Bool: {'aws:SecureTransport': 'false'}}} and mount with TLS (the EFS CSI driver's "
                "default). SharedCacheFileSystem creates it.",
))
def efs_tls_required(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    policies = [r for r in resources if r.resource_type == FILE_SYSTEM_POLICY]
    for fs in resources:
        if fs.resource_type != FILE_SYSTEM:
            continue
        mine = [p for p in policies if _refers_to(p, "fileSystemId", fs)]
        if not mine:
            yield f"{fs.name}: no file system policy, so clients may mount it without TLS", fs.urn
        elif not any(denies_plaintext(json_doc(get(p.props, "policy"))) for p in mine):
            yield (f"{fs.name}: its file system policy ({', '.join(p.name for p in mine)}) does not deny requests "
                   "without TLS (aws:SecureTransport false)"), fs.urn


def _cidr_sources(type_token: str, rule: Mapping[str, Any]) -> list[str]:
    return [f"{k} {v}" for k, v in address_sources(type_token, rule)]


@stack_policy(Rule(
    id="efs-mount-targets-from-security-groups",
    title="EFS mount targets admit security groups only",
    description="Every EFS mount target must have its own security groups, and their ingress must name source "
                "security groups (the cluster's nodes), never a CIDR block or prefix list such as 0.0.0.0/0.",
    concern="security", severity=Severity.HIGH,
    remediation="Give the mount target a security group whose only ingress is NFS (TCP 2049) from the node security "
                "group (aws.vpc.SecurityGroupIngressRule with referencedSecurityGroupId); drop CIDR ingress. "
                "SharedCacheFileSystem creates it.",
))
def efs_mount_target_sources(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    for mt in resources:
        if mt.resource_type != MOUNT_TARGET:
            continue
        groups = [d for d in _deps(mt, "securityGroups") if getattr(d, "resource_type", None) == SECURITY_GROUP]
        if not groups:
            if not as_list(get(mt.props, "securityGroups")):
                yield (f"{mt.name}: securityGroups unset, so the VPC's default security group guards the file "
                       "system"), mt.urn
            continue
        for sg in groups:
            for i, ing in enumerate(as_list(get(sg.props, "ingress"))):
                wide = _cidr_sources(SECURITY_GROUP, ing)
                if wide:
                    yield f"{mt.name}: security group {sg.name} ingress[{i}] admits {', '.join(wide)}", mt.urn
            for r in resources:
                if r.resource_type not in (SG_INGRESS_RULE, SG_RULE) or not _refers_to(r, "securityGroupId", sg):
                    continue
                if r.resource_type == SG_RULE and get(r.props, "type") != "ingress":
                    continue
                wide = _cidr_sources(r.resource_type, r.props)
                if wide:
                    yield (f"{mt.name}: security group {sg.name} rule {r.name} admits {', '.join(wide)} "
                           "(only security groups may reach NFS)"), mt.urn
