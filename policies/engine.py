"""Run the pack offline: every policy against every recorded resource and the whole stack, without the Pulumi CLI.

``evaluate(resources, config=<a tier's pack config, e.g. policies/config/prototype.json>)`` calls the very policy
objects ``policies/__main__.py`` registers, the way the CrossGuard analyzer does: props are deserialized (secrets
unwrapped) and wrapped in ``pulumi_policy``'s unknown-checking proxy, resource policies get
``ResourceValidationArgs`` with the resource's provider, stack policies get ``PolicyResource`` objects linked to their
parent and dependencies, and the per-policy config goes through the same ``get_config()``. The pack config is
validated against each policy's JSON schema first, as the CLI validates a ``--policy-pack-config`` file.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Iterable

import jsonschema
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies._rule import Rule
from policies.pack import PACK_NAME, REGISTERED, RULES, level_of


class PolicyConfigError(ValueError):
    """The pack config does not match the policies' schemas; lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        n = len(problems)
        super().__init__(f"invalid policy-pack config: {n} problem{'s' if n != 1 else ''}\n"
                         + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str  # "mandatory" | "advisory"
    urn: str
    message: str
    severity: str
    title: str
    concern: str
    remediation: str
    resource_type: str = ""
    resource_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}


@dataclass
class Report:
    """What ``evaluate`` found. ``urn`` is the stack's (``""``) for stack-wide findings without a resource."""

    violations: list[Violation] = field(default_factory=list)
    policies_run: int = 0
    resources_checked: int = 0
    not_applicable: dict[str, list[str]] = field(default_factory=dict)
    """policy -> reasons (for example "tier unknown")."""
    unknowns: list[str] = field(default_factory=list)
    """Policies that could not run on a value unknown until apply (advisory in CrossGuard, as here)."""

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "advisory"]

    def by_policy(self, policy: str) -> list[Violation]:
        return [v for v in self.violations if v.policy == policy]

    def to_json(self, stack: str) -> dict[str, Any]:
        return {"stack": stack, "violations": [v.to_json() for v in self.violations],
                "policies_run": self.policies_run, "resources_checked": self.resources_checked}


# --- config --------------------------------------------------------------------------------------------------------

def validate_config(config: Mapping[str, Any] | None) -> None:
    """Check a pack config like the Pulumi CLI: known policy names, valid levels, values matching each schema."""
    problems: list[str] = []
    levels = [e.value for e in EnforcementLevel]
    for key, value in (config or {}).items():
        if key != "all" and key not in RULES:
            problems.append(f"{key}: unknown policy")
            continue
        if isinstance(value, str):
            if value not in levels:
                problems.append(f"{key} = {value!r}: expected one of {', '.join(levels)}")
            continue
        if not isinstance(value, Mapping):
            problems.append(f"{key} = {value!r}: expected an enforcement level or an object")
            continue
        level = value.get("enforcementLevel")
        if level is not None and level not in levels:
            problems.append(f"{key}.enforcementLevel = {level!r}: expected one of {', '.join(levels)}")
        if key == "all":
            continue
        props = {k: v for k, v in value.items() if k != "enforcementLevel"}
        schema = {"type": "object", "properties": RULES[key].schema_properties(), "additionalProperties": False}
        for err in sorted(jsonschema.Draft7Validator(schema).iter_errors(props), key=lambda e: list(e.path)):
            where = ".".join([key, *[str(p) for p in err.path]])
            problems.append(f"{where}: {err.message}")
    if problems:
        raise PolicyConfigError(problems)


def _policy_config(rule: Rule, config: Mapping[str, Any]) -> dict[str, Any]:
    """The per-policy properties CrossGuard hands to ``get_config()`` (without the enforcement level)."""
    entry = config.get(rule.id)
    if not isinstance(entry, Mapping):
        return {}
    return {k: v for k, v in entry.items() if k != "enforcementLevel"}


# --- resources ------------------------------------------------------------------------------------------------------

def _field(r: Any, name: str, default: Any = None) -> Any:
    if isinstance(r, Mapping):
        return r.get(name, default)
    return getattr(r, name, default)


@dataclass
class _Res:
    urn: str
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    provider: str | None
    protect: bool
    ignore_changes: list[str]


def _normalise(r: Any) -> _Res:
    inputs = dict(_field(r, "inputs") or {})
    return _Res(
        urn=str(_field(r, "urn")), type=str(_field(r, "type")), name=str(_field(r, "name")),
        parent=_field(r, "parent"), inputs=inputs, outputs=dict(_field(r, "outputs") or {}),
        dependencies=list(_field(r, "dependencies") or []),
        property_dependencies={k: list(v) for k, v in (_field(r, "property_dependencies") or {}).items()},
        provider=_field(r, "provider"), protect=bool(_field(r, "protect") or False),
        ignore_changes=list(_field(r, "ignore_changes") or []),
    )


def _props(values: Mapping[str, Any]) -> Any:
    """Deserialize like the analyzer (secret envelopes unwrapped, assets kept) and wrap in the unknown proxy."""
    return unknown_checking_proxy(deserialize_properties(_plain(values)))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    urn = getattr(value, "urn", None)  # a resource reference in the inputs
    return str(urn) if urn is not None and not callable(urn) else str(value)


def _options(r: _Res) -> PolicyResourceOptions:
    return PolicyResourceOptions(r.protect, r.ignore_changes, None, [], PolicyCustomTimeouts(0, 0, 0), [], r.parent)


def _provider_urn_key(ref: str | None) -> str | None:
    # the engine's provider reference is "<urn>::<id>"
    return ref.rsplit("::", 1)[0] if ref and "::" in ref else ref


def _run(fn: Any, *args: Any) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


# --- evaluate --------------------------------------------------------------------------------------------------------

def evaluate(resources: Iterable[Any], *, config: Mapping[str, Any] | None = None) -> Report:
    """Run every enabled policy over ``resources`` (dicts or objects with urn, type, name, parent, inputs; optional
    outputs, dependencies, property_dependencies, provider) under a pack ``config`` (see ``pack.pack_config``).

    Raises :class:`PolicyConfigError` when the config does not fit the policies' schemas.
    """
    cfg = dict(config or {})
    validate_config(cfg)
    res = [_normalise(r) for r in resources]
    by_urn = {r.urn: r for r in res}
    providers: dict[str, PolicyProviderResource] = {}
    for r in res:
        if r.type.startswith("pulumi:providers:"):
            providers[r.urn] = PolicyProviderResource(r.type, _props(r.inputs), r.urn, r.name)
    report = Report(resources_checked=sum(1 for r in res if not r.type.startswith("pulumi:providers:")))

    def reporter(reg, level, default_urn, rtype="", rname=""):
        rule = reg.rule

        def report_violation(message: str, urn: str | None = None) -> None:
            target = urn or default_urn
            rr = by_urn.get(target)
            report.violations.append(Violation(
                policy=rule.id, level=level.value, urn=target, message=message, severity=rule.severity.value,
                title=rule.title, concern=rule.concern, remediation=rule.remediation,
                resource_type=rr.type if rr else rtype, resource_name=rr.name if rr else rname))
        return report_violation

    enabled = [(reg, level_of(rid, cfg)) for rid, reg in REGISTERED.items()]
    enabled = [(reg, EnforcementLevel.MANDATORY if lvl == EnforcementLevel.REMEDIATE else lvl)
               for reg, lvl in enabled if lvl != EnforcementLevel.DISABLED]
    report.policies_run = len(enabled)

    def guard(reg, fn, *args):
        try:
            _run(fn, *args)
        except UnknownValueError as e:
            report.unknowns.append(f"{reg.rule.id}: {e.message}")
        except _NotApplicableError as e:
            report.not_applicable.setdefault(reg.rule.id, []).append(e.reason or "not applicable")

    for r in res:
        if r.type.startswith("pulumi:providers:") or r.type == "pulumi:pulumi:Stack":
            continue
        props = _props(r.inputs)
        provider = providers.get(_provider_urn_key(r.provider) or "")
        for reg, level in enabled:
            if reg.kind != "resource" or (reg.types is not None and r.type not in reg.types):
                continue
            args = ResourceValidationArgs(r.type, props, r.urn, r.name, _options(r), provider,
                                          _policy_config(reg.rule, cfg))
            guard(reg, reg.policy.validate, args, reporter(reg, level, r.urn, r.type, r.name))

    stack_res = _stack_resources(res, providers)
    for reg, level in enabled:
        if reg.kind != "stack":
            continue
        args = StackValidationArgs(stack_res, _policy_config(reg.rule, cfg))
        guard(reg, reg.policy.validate, args, reporter(reg, level, ""))
    return report


def _stack_resources(res: Sequence[_Res], providers: Mapping[str, PolicyProviderResource]) -> list[PolicyResource]:
    """PolicyResource objects as AnalyzeStack builds them (props = outputs, which echo the inputs), linked by URN."""
    objs: dict[str, PolicyResource] = {}
    order: list[tuple[_Res, PolicyResource]] = []
    for r in res:
        if r.type == "pulumi:pulumi:Stack":
            continue
        values = {**r.inputs, **r.outputs} if r.outputs else r.inputs
        pr = PolicyResource(r.type, _props(values), r.urn, r.name, _options(r),
                            providers.get(_provider_urn_key(r.provider) or ""), None, [], {})
        objs[r.urn] = pr
        order.append((r, pr))
    for r, pr in order:
        pr.parent = objs.get(r.parent) if r.parent else None
        pr.dependencies = [objs[d] for d in r.dependencies if d in objs]
        pr.property_dependencies = {k: [objs[d] for d in v if d in objs] for k, v in r.property_dependencies.items()}
    return [pr for _, pr in order]


__all__ = ["evaluate", "Report", "Violation", "PolicyConfigError", "validate_config", "PACK_NAME"]
