"""Helpers for policy tests: build recorded-resource dicts and run the pack offline (the CrossGuard code path) under
the pack config of a tier, built from the tier's facts (``stacks/tiers/<tier>/tier.yaml``) as ``genai-scale policy``
builds it."""

from __future__ import annotations

import copy
from typing import Any, Iterable

from infra.tiers import pack_config_for
from policies.engine import Report, evaluate
from policies.pack import pack_config

STACK_URN = "urn:pulumi:test::genai-scale::pulumi:pulumi:Stack::genai-scale-test"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::genai-scale::{type_}::{name}"


def res(type_: str, name: str, inputs: dict[str, Any] | None = None, *, deps: Iterable[dict] = (),
        outputs: dict[str, Any] | None = None, provider: str | None = None,
        property_dependencies: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    """One recorded resource (the shape ``infra.plan.RecordedResource`` has), inputs in camelCase wire names."""
    return {
        "urn": urn(type_, name), "type": type_, "name": name, "parent": None,
        "inputs": copy.deepcopy(inputs or {}), "outputs": copy.deepcopy(outputs or {}),
        "dependencies": [d["urn"] for d in deps], "provider": provider,
        "property_dependencies": {k: [d["urn"] for d in v] for k, v in (property_dependencies or {}).items()},
    }


def config_for(tier: str | None, overrides: dict | None = None) -> dict[str, Any]:
    """The pack config of a shipped tier (from its facts); ``None``: no tier and no facts (the strict defaults, the
    tier read from tags)."""
    if tier is None:
        return pack_config(None, overrides=overrides)
    return pack_config_for(tier, overrides=overrides)


def run(resources: Iterable[dict], *, tier: str | None = "scale", overrides: dict | None = None) -> Report:
    return evaluate(list(resources), config=config_for(tier, overrides))


def found(report: Report, policy: str) -> list[str]:
    """Messages of one policy's violations."""
    return [v.message for v in report.violations if v.policy == policy]


def violations(resources: Iterable[dict], policy: str, *, tier: str | None = "scale",
               overrides: dict | None = None) -> list[str]:
    return found(run(resources, tier=tier, overrides=overrides), policy)


def tagged(inputs: dict[str, Any], tier: str = "scale") -> dict[str, Any]:
    out = copy.deepcopy(inputs)
    out["tags"] = {"team": "ml", "environment": "test", "tier": tier, **out.get("tags", {})}
    return out


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with one dotted path set (``None`` deletes it)."""
    out = copy.deepcopy(base)
    cur = out
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    last = parts[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    elif value is None:
        cur.pop(last, None)
    else:
        cur[last] = value
    return out


def mutated(resources: Iterable[Any], name: str, edit=None, *, type_: str | None = None,
            drop_sources: Iterable[str] = ()) -> list[Any]:
    """A copy of a real plan's resources with one resource (by logical name, and type when given) changed:
    ``edit(inputs)`` edits its inputs in place; ``drop_sources`` forgets where those inputs came from (their
    property dependencies), as when a generated value is replaced by a literal. Raises when no resource matches."""
    out, hit = [], False
    for r in resources:
        if r.name == name and (type_ is None or r.type == type_):
            r = copy.deepcopy(r)
            if edit is not None:
                edit(r.inputs)
            r.outputs = {}
            for key in drop_sources:
                r.property_dependencies[key] = []
            hit = True
        out.append(r)
    if not hit:
        raise LookupError(f"no resource named {name!r}" + (f" of type {type_}" if type_ else ""))
    return out


def dropped(resources: Iterable[Any], name: str) -> list[Any]:
    """A real plan's resources without the one of this logical name (raises when there is none)."""
    res_list = list(resources)
    out = [r for r in res_list if r.name != name]
    if len(out) == len(res_list):
        raise LookupError(f"no resource named {name!r}")
    return out
