"""AWS physical names from a stack name and keys: one function, each service's rules as data.

A physical name that the program sets itself (a bucket, an ECR repository, an EKS cluster, ElastiCache user ids, a
final snapshot, a Bedrock provisioned model) is built by :func:`aws_name` from its parts, for example
``aws_name("s3-bucket", "genai-scale", stack, "models", region)``. The parts are joined with the service's separator;
when the result already satisfies the service's rule (:data:`RULES`) it is used unchanged, so the names of existing
stacks (``dev``, ``staging``, ``prod``) never change. Otherwise the name is rewritten into the service's alphabet,
shortened to its length limit and given an 8-hex-digit hash of the original parts, so

- every stack name Pulumi accepts (``my_stack``, ``Team-A``, 100 characters, digits first, unicode) gives valid names;
- two different stacks never share a name: ``Team-A`` and ``team-a``, ``my_stack`` and ``my-stack`` differ (the
  rewritten one carries the hash, the valid one does not), and two long stack names with a common prefix differ;
- the name is stable: the same parts give the same name on every run and every machine (sha256, no randomness).

For services that treat names differing only in case as the same name (IAM, SageMaker), a name with capitals also
gets the hash, so ``Team-A`` and ``team-a`` cannot collide there either. The hash goes before the last part when that
part is short (a role word such as ``final`` or ``default``, a Region), so the name still ends with what it is.

Names that Pulumi generates from logical names (auto-naming, e.g. IAM roles, SageMaker models) are not built here;
:func:`autoname_problems` checks the name Pulumi will generate from a logical name that holds a config key, so the
program can refuse the key before anything is created. :func:`name_problems` checks any name against a rule, for
tests and plan checks. Pure: no Pulumi import, except
:func:`current_stack`, the one place components read the stack name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

Service = Literal[
    "s3-bucket", "ecr-repository", "iam-role", "iam-policy", "elasticache-replication-group", "elasticache-user",
    "elasticache-user-group", "elasticache-snapshot", "sagemaker-endpoint", "sagemaker-endpoint-config",
    "sagemaker-model", "eks-cluster", "bedrock-provisioned-model", "log-group",
]
"""The services (and kinds of name) :func:`aws_name` knows."""

HASH_LENGTH = 8
"""Hex digits of sha256 appended to a rewritten name (32 bits: collisions between stacks are negligible)."""

PREFIX = "gs-"
"""Prepended when a rewritten name must start with a letter, or would start with a prefix the service reserves."""

CHECKED = "2026-12-05"
"""When the rules below were read from the AWS documentation."""


@dataclass(frozen=True)
class NameRule:
    """What AWS accepts as one kind of name, as documented (``source``)."""

    what: str
    """The name in AWS terms, e.g. ``S3 general purpose bucket name``."""
    min_length: int
    max_length: int
    pattern: str
    """The full-match pattern (ASCII), as documented by the API."""
    safe: str
    """The characters (a regex class body) a rewritten name is built from: a subset valid anywhere inside a name."""
    strip: str
    """Characters a rewritten name (each ``/`` component for ECR) must not start or end with."""
    source: str
    """The AWS page the rule comes from."""
    join: str = "-"
    """Separator between the parts."""
    lowercase: bool = False
    """The alphabet has no capitals (or AWS stores the name lower-cased): a rewritten name is lower-cased."""
    case_insensitive: bool = False
    """AWS treats names that differ only in case as the same name: a name with capitals gets the hash."""
    letter_first: bool = False
    """The name must start with a letter."""
    forbidden: tuple[str, ...] = ()
    """Substrings the name must not contain."""
    reserved_prefixes: tuple[str, ...] = ()
    reserved_suffixes: tuple[str, ...] = ()
    not_ip: bool = False
    """The name must not look like an IPv4 address."""


_ELASTICACHE_ID = r"[a-z](?:[a-z0-9]|-(?!-))*(?<!-)"  # letter first, alnum and single hyphens, no trailing hyphen
_SAGEMAKER = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"

RULES: dict[str, NameRule] = {
    "s3-bucket": NameRule(
        "S3 general purpose bucket name", 3, 63, r"[a-z0-9][a-z0-9.-]*[a-z0-9]", "a-z0-9-", "-.", lowercase=True,
        forbidden=("..",), reserved_prefixes=("xn--", "sthree-", "amzn-s3-demo-"),
        reserved_suffixes=("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"), not_ip=True,
        source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"),
    "ecr-repository": NameRule(
        "ECR private repository name", 2, 256, r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*",
        "a-z0-9._-", "._-", join="/", lowercase=True,
        source="https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html"),
    "iam-role": NameRule(
        "IAM role name", 1, 64, r"[\w+=,.@-]+", r"\w+=,.@-", "_+=,.@-", case_insensitive=True,
        source="https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html"),
    "iam-policy": NameRule(
        "IAM managed policy name", 1, 128, r"[\w+=,.@-]+", r"\w+=,.@-", "_+=,.@-", case_insensitive=True,
        source="https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html"),
    "elasticache-replication-group": NameRule(
        "ElastiCache replication group id", 1, 40, _ELASTICACHE_ID, "a-z0-9-", "-", lowercase=True, letter_first=True,
        source="https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateReplicationGroup.html"),
    "elasticache-user": NameRule(
        # The API gives the pattern [a-zA-Z][a-zA-Z0-9\-]* and stores ids lower-cased; the replication group's
        # 40-character limit and hyphen rules are applied as well (the conservative reading).
        "ElastiCache user id", 1, 40, _ELASTICACHE_ID, "a-z0-9-", "-", lowercase=True, letter_first=True,
        source="https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateUser.html"),
    "elasticache-user-group": NameRule(
        "ElastiCache user group id", 1, 40, _ELASTICACHE_ID, "a-z0-9-", "-", lowercase=True, letter_first=True,
        source="https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateUserGroup.html"),
    "elasticache-snapshot": NameRule(
        # FinalSnapshotIdentifier documents no pattern; the replication group id's rules are applied.
        "ElastiCache final snapshot name", 1, 40, _ELASTICACHE_ID, "a-z0-9-", "-", lowercase=True, letter_first=True,
        source="https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DeleteReplicationGroup.html"),
    "sagemaker-endpoint": NameRule(
        "SageMaker endpoint name", 1, 63, _SAGEMAKER, "A-Za-z0-9-", "-", case_insensitive=True,
        source="https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html"),
    "sagemaker-endpoint-config": NameRule(
        "SageMaker endpoint configuration name", 1, 63, _SAGEMAKER, "A-Za-z0-9-", "-", case_insensitive=True,
        source="https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html"),
    "sagemaker-model": NameRule(
        "SageMaker model name", 1, 63, _SAGEMAKER, "A-Za-z0-9-", "-", case_insensitive=True,
        source="https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html"),
    "eks-cluster": NameRule(
        "EKS cluster name", 1, 100, r"[0-9A-Za-z][A-Za-z0-9\-_]*", "A-Za-z0-9_-", "_-",
        source="https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateCluster.html"),
    "bedrock-provisioned-model": NameRule(
        "Bedrock provisioned model name", 1, 63, r"([0-9a-zA-Z][_-]?)+", "A-Za-z0-9_-", "_-",
        source="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateProvisionedModelThroughput.html"),
    "log-group": NameRule(
        "CloudWatch Logs log group name", 1, 512, r"[\.\-_/#A-Za-z0-9]+", r"A-Za-z0-9._/#-", "",
        source="https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html"),
}
"""Each kind of name: length, alphabet, reserved forms, and the AWS page it comes from (read on :data:`CHECKED`)."""


def rule_for(service: str) -> NameRule:
    """The rule of a service; a ValueError lists the known services."""
    try:
        return RULES[service]
    except KeyError:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(sorted(RULES))}") from None


def name_problems(service: str, name: str) -> list[str]:
    """Every way ``name`` breaks the service's rule (empty when AWS accepts it)."""
    rule = rule_for(service)
    out: list[str] = []
    if not rule.min_length <= len(name) <= rule.max_length:
        out.append(f"{len(name)} characters: must be {rule.min_length}-{rule.max_length}")
    if not re.fullmatch(rule.pattern, name, flags=re.ASCII):
        out.append(f"must match {rule.pattern}")
    if rule.letter_first and not (name[:1].isascii() and name[:1].isalpha()):
        out.append("must start with a letter")
    out += [f"must not contain {s!r}" for s in rule.forbidden if s in name]
    out += [f"must not start with {p!r}" for p in rule.reserved_prefixes if name.startswith(p)]
    out += [f"must not end with {s!r}" for s in rule.reserved_suffixes if name.endswith(s)]
    if rule.not_ip and _looks_like_ip(name):
        out.append("must not be formatted as an IP address")
    return out


def aws_name(service: Service, *parts: str) -> str:
    """A name for ``service`` from ``parts`` (joined with the service's separator), valid, stable and unique.

    Already-valid names are returned unchanged (``aws_name("s3-bucket", "genai-scale", "dev", "models",
    "us-east-1")`` is ``genai-scale-dev-models-us-east-1``); any other name is rewritten into the service's alphabet,
    shortened, and given a hash of the original parts. See the module docstring.
    """
    rule = rule_for(service)
    if not parts or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"aws_name({service!r}) needs one or more string parts, got {parts!r}")
    original = rule.join.join(parts)
    if not name_problems(service, original) and not (rule.case_insensitive and original != original.lower()):
        return original
    digest = hashlib.sha256(original.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    last = _clean(rule, parts[-1]) if len(parts) > 1 else ""
    if len(last) > rule.max_length // 3:
        last = ""
    head = _clean(rule, rule.join.join(parts[:-1]) if last else original)
    for keep_last in (bool(last), False):
        name = _compose(rule, head, last if keep_last else "", digest)
        if not name_problems(service, name):
            return name
    raise AssertionError(f"aws_name({service!r}, {parts!r}) built an invalid name {name!r}")  # pragma: no cover


AUTONAME_RANDOM = 7
"""Random hex characters Pulumi appends to a logical name to make a physical name (``<logical name>-<7 chars>``)."""


def autoname_problems(service: str, logical_name: str) -> list[str]:
    """Every way the name Pulumi generates from ``logical_name`` (``<logical name>-<7 random characters>``) breaks
    the service's rule: for names this module does not build, whose logical name holds a key from stack config."""
    return name_problems(service, f"{logical_name}-{'0' * AUTONAME_RANDOM}")


def longest_key(service: str, template: str) -> int:
    """The longest key ``{}`` in ``template`` (a logical name) for which the generated physical name fits."""
    return rule_for(service).max_length - len(template.format("")) - 1 - AUTONAME_RANDOM


def current_stack() -> str:
    """The Pulumi stack being deployed (or planned): the one place components read it."""
    import pulumi

    return pulumi.get_stack()


def _clean(rule: NameRule, text: str) -> str:
    """``text`` in the rule's safe alphabet: lower-cased if needed, other characters and runs of separators become
    one ``-``, separators stripped from the ends (of each ``/`` component for ECR)."""
    if rule.lowercase:
        text = text.lower()
    pieces = text.split("/") if rule.join == "/" else [text]
    out = []
    for piece in pieces:
        piece = re.sub(f"[^{rule.safe}]", "-", piece, flags=re.ASCII)
        piece = re.sub(r"[^A-Za-z0-9/#]{2,}", "-", piece)
        piece = piece.strip(rule.strip)
        if piece:
            out.append(piece)
    return "/".join(out) if rule.join == "/" else "".join(out)


def _compose(rule: NameRule, head: str, last: str, digest: str) -> str:
    """``<head>-<hash><join><last>`` (or ``<head>-<hash>``), the head shortened so the whole fits; :data:`PREFIX`
    first when the name would not start with a letter where the rule needs one, or with a reserved prefix."""
    tail = digest + (rule.join + last if last else "")
    start = head or tail
    prefix = PREFIX if ((rule.letter_first and not start[0].isalpha())
                        or start.startswith(rule.reserved_prefixes)) else ""
    budget = rule.max_length - len(prefix) - len(tail) - 1
    head = head[:max(budget, 0)].rstrip(rule.strip + "/")
    return prefix + (f"{head}-{tail}" if head else tail)


def _looks_like_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return bool(re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name))
    return True
