"""How a rule is declared once and registered as a CrossGuard policy.

A :class:`Rule` holds the metadata every policy carries (id, title, description, concern, severity, remediation,
checkov ids, the tiers it applies to, its config schema with defaults). :func:`resource_policy` and
:func:`stack_policy` turn a rule plus a plain check function into a ``pulumi_policy`` policy object. The same policy
objects are registered by ``policies/__main__.py`` (under ``pulumi preview --policy-pack``) and called by
``policies.engine`` (offline, over the recorded plan), so there is one code path for both.

Tier: every policy accepts a ``tier`` config value (``prototype`` | ``growth`` | ``scale``). When it is not set, a
rule reads the tier from the resource itself (the ``tier`` cost-allocation tag, or the ``genai-scale/tier`` /
``tier`` Kubernetes label). A tier-specific rule whose tier cannot be determined reports "not applicable".

Config defaults: the Python policy SDK does not apply JSON-schema defaults (the Pulumi CLI does, the SDK does not);
:func:`effective_config` applies them here so a policy behaves the same with and without the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies._props import get, labels_of, tags_of

TIERS: tuple[str, ...] = ("prototype", "growth", "scale")
CONCERNS: tuple[str, ...] = ("security", "reliability", "cost", "gpu")
TIER_KEYS: tuple[str, ...] = ("tier", "genai-scale/tier", "genai-scale.io/tier")
"""Tag / label keys that carry a resource's tier (cost-allocation tag ``tier``; Kubernetes label variants)."""

CHECKOV_URL = "https://github.com/bridgecrewio/checkov"

TIER_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": list(TIERS),
    "description": "The stack's tier. When unset, the rule reads the `tier` tag or label of each resource.",
}


@dataclass(frozen=True)
class Rule:
    """Metadata of one policy. ``id`` is stable and kebab-case: it is the CrossGuard policy name."""

    id: str
    title: str
    description: str
    concern: str
    severity: Severity
    remediation: str
    checkov: tuple[str, ...] = ()
    tiers: tuple[str, ...] = TIERS
    """Tiers the rule applies to (all by default)."""
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Extra JSON-schema properties (camelCase), each with a ``default``."""
    prototype_level: EnforcementLevel | None = None
    """Overrides the concern's default level in the prototype tier (see :meth:`default_level`)."""

    def default_level(self, tier: str | None) -> EnforcementLevel:
        """Mandatory for security, reliability and GPU correctness; cost is advisory in the prototype tier.

        With no tier known, every rule is mandatory (the strict reading).
        """
        if tier == "prototype":
            if self.prototype_level is not None:
                return self.prototype_level
            if self.concern == "cost":
                return EnforcementLevel.ADVISORY
        return EnforcementLevel.MANDATORY

    def schema_properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = {"tier": dict(TIER_SCHEMA)}
        for key, spec in self.config.items():
            props[key] = dict(spec)
        return props

    def config_schema(self) -> PolicyConfigSchema:
        return PolicyConfigSchema(properties=self.schema_properties())

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}

    def tags(self) -> list[str]:
        return [self.concern, *self.checkov]

    def url(self) -> str | None:
        return CHECKOV_URL if self.checkov else None


def effective_config(rule: Rule, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema defaults overlaid with the given config (the SDK hands over only what was configured)."""
    out = rule.defaults()
    for k, v in (given or {}).items():
        if k != "enforcementLevel":
            out[k] = v
    return out


def tier_of_props(props: Mapping[str, Any] | None) -> str | None:
    """The tier recorded on a resource: AWS tags, or Kubernetes labels on the object or its pod template."""
    if not isinstance(props, Mapping):
        return None
    for source in (tags_of(props), labels_of(props), get(props, "spec.template.metadata.labels")):
        if isinstance(source, Mapping):
            keys = list(source)
            for key in TIER_KEYS:
                if key in keys:
                    value = source[key]
                    if value in TIERS:
                        return value
    return None


@dataclass(frozen=True)
class Subject:
    """One resource as a resource rule sees it (inputs only, camelCase wire names)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    tier: str | None
    provider: Any = None
    """The resource's provider (``pulumi_policy.PolicyProviderResource``: ``props`` holds e.g. aws ``defaultTags``)."""


ResourceCheck = Callable[[Subject, dict[str, Any]], Iterable[str]]
StackCheck = Callable[[Sequence[Any], dict[str, Any]], Iterable[tuple[str, str | None]]]


@dataclass(frozen=True)
class RegisteredRule:
    """A rule with its policy object (what the pack registers and the engine runs)."""

    rule: Rule
    policy: ResourceValidationPolicy | StackValidationPolicy
    kind: str  # "resource" | "stack"
    types: frozenset[str] | None = None


_REGISTRY: dict[str, RegisteredRule] = {}


def _policy_kwargs(rule: Rule) -> dict[str, Any]:
    return dict(
        name=rule.id,
        description=rule.description,
        enforcement_level=rule.default_level(None),
        config_schema=rule.config_schema(),
        display_name=rule.title,
        severity=rule.severity,
        tags=rule.tags(),
        remediation_steps=rule.remediation,
        url=rule.url(),
    )


def _register(reg: RegisteredRule) -> None:
    if reg.rule.id in _REGISTRY:
        raise ValueError(f"duplicate policy id {reg.rule.id!r}")
    _REGISTRY[reg.rule.id] = reg


def resource_policy(rule: Rule, types: Collection[str] | None) -> Callable[[ResourceCheck], ResourceCheck]:
    """Register ``check(subject, config) -> messages`` as a resource policy for the given type tokens.

    ``types=None`` runs the check on every resource. The check reads ``subject.props`` (a Mapping; in CrossGuard a
    proxy that raises on values unknown during preview) and yields one message per violation.
    """
    wanted = frozenset(types) if types is not None else None

    def deco(check: ResourceCheck) -> ResourceCheck:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if wanted is not None and args.resource_type not in wanted:
                return
            cfg = effective_config(rule, args.get_config())
            tier = cfg.get("tier") or tier_of_props(args.props)
            if not _applies(rule, tier, args):
                return
            cfg["tier"] = tier
            subject = Subject(args.resource_type, args.name, args.urn, args.props, tier, args.provider)
            for message in check(subject, cfg):
                report_violation(message, None)

        policy = ResourceValidationPolicy(validate=validate, **_policy_kwargs(rule))
        _register(RegisteredRule(rule, policy, "resource", wanted))
        return check

    return deco


def _applies(rule: Rule, tier: str | None, args: Any) -> bool:
    """Tier-specific rules run only in their tiers; with no known tier they are reported not applicable."""
    if rule.tiers == TIERS:
        return True
    if tier is None:
        args.not_applicable("tier unknown: set the policy's `tier` config or a `tier` tag")
    return tier in rule.tiers


def stack_tier(resources: Sequence[Any]) -> str | None:
    """The stack's tier as its resources record it (the most common ``tier`` tag or label)."""
    counts: dict[str, int] = {}
    for r in resources:
        t = tier_of_props(r.props)
        if t:
            counts[t] = counts.get(t, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def stack_policy(rule: Rule) -> Callable[[StackCheck], StackCheck]:
    """Register ``check(resources, config) -> (message, urn)`` as a stack policy.

    ``resources`` are ``pulumi_policy.PolicyResource`` objects (``resource_type``, ``props``, ``urn``, ``name``,
    ``parent``, ``dependencies``, ``property_dependencies``). ``config["tier"]`` holds the configured tier or the
    tier the resources record.
    """

    def deco(check: StackCheck) -> StackCheck:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            cfg = effective_config(rule, args.get_config())
            tier = cfg.get("tier") or stack_tier(args.resources)
            if not _applies(rule, tier, args):
                return
            cfg["tier"] = tier
            for message, urn in check(args.resources, cfg):
                report_violation(message, urn)

        policy = StackValidationPolicy(validate=validate, **_policy_kwargs(rule))
        _register(RegisteredRule(rule, policy, "stack", None))
        return check

    return deco


def registry() -> dict[str, RegisteredRule]:
    """Every registered rule, by id (import the rule modules first; see ``policies.pack``)."""
    return dict(_REGISTRY)
