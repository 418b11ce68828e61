"""How a rule is declared once and registered as a CrossGuard policy.

A :class:`Rule` holds the metadata every policy carries (id, title, description, concern, severity, remediation,
checkov ids, the tier facts it reads, its config schema with defaults). :func:`resource_policy` and
:func:`stack_policy` turn a rule plus a plain check function into a ``pulumi_policy`` policy object. The same policy
objects are registered by ``policies/__main__.py`` (under ``pulumi preview --policy-pack``) and called by
``policies.engine`` (offline, over the recorded plan), so there is one code path for both.

Tiers: the pack knows no tier by name. What differs between tiers (may a stack buy Bedrock throughput, must the
cache fail over, how many on-demand H100 nodes, ...) reaches a rule as values of its own config, each property
mapped to a *tier fact* (``Rule.facts``: property -> fact path in ``stacks/tiers/<tier>/tier.yaml``). The stack
program turns a tier's facts into the pack config (``policies.pack.pack_config(tier, facts=...)``; the generated
``policies/config/<tier>.json``). Every fact property has a strict default, used when a tier's facts are unknown.

Every policy also accepts a ``tier`` config value (free text: the tier's name, shown in messages). When it is not
set, a rule reads the tier from the resource itself (the ``tier`` cost-allocation tag, or the ``genai-scale/tier`` /
``tier`` Kubernetes label), but only a tier the pack ships a config for (``policies/config/<tier>.json``): its facts
then replace the strict defaults. Any other value (a ``tier: frontend`` label, a tier the pack has no file for) is
ignored, and the rule judges with the strict defaults.

Config defaults: the Python policy SDK does not apply JSON-schema defaults (the Pulumi CLI does, the SDK does not);
:func:`effective_config` applies them here so a policy behaves the same with and without the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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

CONCERNS: tuple[str, ...] = ("security", "reliability", "cost", "gpu")
TIER_KEYS: tuple[str, ...] = ("tier", "genai-scale/tier", "genai-scale.io/tier")
"""Tag / label keys that carry a resource's tier (cost-allocation tag ``tier``; Kubernetes label variants)."""

COST_ENFORCEMENT_FACT = "policy.costEnforcement"
"""The tier fact that sets the enforcement level of cost rules (``advisory`` | ``mandatory``)."""

CONFIG_DIR = Path(__file__).resolve().parent / "config"
"""The pack configs the pack ships, one per tier (generated from the tier folders by the stack program)."""

CHECKOV_URL = "https://github.com/bridgecrewio/checkov"

TIER_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "The stack's tier (its folder name under stacks/tiers). When unset, the rule reads the `tier` "
                   "tag or label of each resource.",
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
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Extra JSON-schema properties (camelCase), each with a ``default``."""
    facts: Mapping[str, str] = field(default_factory=dict)
    """Config properties that carry a tier fact: property -> fact path in the tier file (``caps.warmAccelerators``).
    Each property is in ``config``, and its default is the strict reading, used when the tier's facts are unknown."""
    fixed_level: EnforcementLevel | None = None
    """A level that holds in every tier, whatever the tier's ``policy.costEnforcement`` says (see :meth:`level`)."""

    def level(self, cost_enforcement: str | None = None) -> EnforcementLevel:
        """Mandatory for security, reliability and GPU correctness; cost rules take the tier's
        ``policy.costEnforcement``. With no tier facts known, every rule is mandatory (the strict reading)."""
        if self.fixed_level is not None:
            return self.fixed_level
        if self.concern == "cost" and cost_enforcement is not None:
            return EnforcementLevel(cost_enforcement)
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


_SHIPPED: dict[str, dict[str, Any]] | None = None


def shipped_configs() -> dict[str, dict[str, Any]]:
    """The pack configs the pack ships (``policies/config/<tier>.json``), by tier; read once."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = {p.stem: json.loads(p.read_text()) for p in sorted(CONFIG_DIR.glob("*.json"))}
    return _SHIPPED


def forget_shipped_configs() -> None:
    """Read ``policies/config/`` again on the next lookup (after the files were rewritten)."""
    global _SHIPPED
    _SHIPPED = None


def _with_tier_facts(rule: Rule, cfg: dict[str, Any], tier: str) -> dict[str, Any]:
    """``cfg`` with the facts the pack ships for ``tier`` in place of fact values left at their strict default.

    Under the Pulumi CLI every unset property arrives with its schema default, so a value equal to the default cannot
    be told from an unset one; a value that differs from it was configured, and stays."""
    entry = shipped_configs().get(tier, {}).get(rule.id)
    if not isinstance(entry, Mapping):
        return cfg
    defaults = rule.defaults()
    out = dict(cfg)
    for prop in rule.facts:
        if prop in entry and out.get(prop) == defaults.get(prop):
            out[prop] = entry[prop]
    return out


def tier_of_props(props: Mapping[str, Any] | None) -> str | None:
    """The tier recorded on a resource (AWS tags, or Kubernetes labels on the object or its pod template), when it
    names a tier the pack ships a config for; any other value is not taken for a tier."""
    if not isinstance(props, Mapping):
        return None
    known = shipped_configs()
    for source in (tags_of(props), labels_of(props), get(props, "spec.template.metadata.labels")):
        if isinstance(source, Mapping):
            keys = list(source)
            for key in TIER_KEYS:
                if key in keys:
                    value = source[key]
                    if isinstance(value, str) and value in known:
                        return value
    return None


def _configured(rule: Rule, given: Mapping[str, Any] | None, recorded: Callable[[], str | None]) -> dict[str, Any]:
    """The config a check sees: defaults, the given values, and ``tier`` (configured, else the recorded one, whose
    shipped facts then stand in for the strict defaults)."""
    cfg = effective_config(rule, given)
    if cfg.get("tier"):
        return cfg
    tier = recorded()
    if tier is not None:
        cfg = _with_tier_facts(rule, cfg, tier)
    cfg["tier"] = tier
    return cfg


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
        enforcement_level=rule.level(),
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
            cfg = _configured(rule, args.get_config(), lambda: tier_of_props(args.props))
            subject = Subject(args.resource_type, args.name, args.urn, args.props, cfg["tier"], args.provider)
            for message in check(subject, cfg):
                report_violation(message, None)

        policy = ResourceValidationPolicy(validate=validate, **_policy_kwargs(rule))
        _register(RegisteredRule(rule, policy, "resource", wanted))
        return check

    return deco


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
    tier the resources record (None when neither is known).
    """

    def deco(check: StackCheck) -> StackCheck:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            cfg = _configured(rule, args.get_config(), lambda: stack_tier(args.resources))
            for message, urn in check(args.resources, cfg):
                report_violation(message, urn)

        policy = StackValidationPolicy(validate=validate, **_policy_kwargs(rule))
        _register(RegisteredRule(rule, policy, "stack", None))
        return check

    return deco


def registry() -> dict[str, RegisteredRule]:
    """Every registered rule, by id (import the rule modules first; see ``policies.pack``)."""
    return dict(_REGISTRY)
