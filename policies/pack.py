"""The policy pack's contents: every rule, the policy objects CrossGuard runs, and the pack config of a tier.

Importing this module never starts anything (``PolicyPack(...)`` starts a gRPC server when constructed, so only
``policies/__main__.py`` builds the pack).

A tier is data the pack does not read itself (``stacks/`` belongs to the stack program): the program hands a tier's
facts to :func:`pack_config` (``infra.tiers.pack_config_for``), and ``python -m infra.tiers --write-policy-configs``
writes the result to ``policies/config/<tier>.json`` for ``pulumi preview --policy-pack-config``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import jsonschema
from pulumi_policy import EnforcementLevel

from policies import (  # noqa: F401 - importing registers the rules
    batch, batch_managed, capacity, cost, gpu, karpenter, multinode, pools, rag, reliability, security, security_edge,
    security_secrets, security_workloads, storage)
from policies._rule import (  # noqa: F401 - forget_shipped_configs is re-exported
    CONCERNS, CONFIG_DIR, COST_ENFORCEMENT_FACT, RegisteredRule, Rule, forget_shipped_configs, registry,
    shipped_configs)

PACK_NAME = "genai-scale"
PACK_DESCRIPTION = ("Security, reliability, cost and GPU-correctness rules for generative-AI infrastructure on AWS "
                    "(EKS with GPU/Inferentia nodes, vLLM, SageMaker, Bedrock, ALB, ElastiCache).")

REGISTERED: dict[str, RegisteredRule] = dict(sorted(
    registry().items(), key=lambda kv: (CONCERNS.index(kv[1].rule.concern), kv[0])))
RULES: dict[str, Rule] = {k: v.rule for k, v in REGISTERED.items()}
ALL_POLICIES = [reg.policy for reg in REGISTERED.values()]
LEVEL_FACTS: dict[str, str] = dict(capacity.LEVEL_FACTS)
"""Rules whose enforcement level is a tier fact of their own (rule id -> fact path, ``advisory`` | ``mandatory``)."""


def fact_schemas() -> dict[str, dict[str, Any]]:
    """Every tier fact the pack reads (dotted path in the tier file) with the JSON schema of its value."""
    out: dict[str, dict[str, Any]] = {COST_ENFORCEMENT_FACT: {"enum": ["advisory", "mandatory"]}}
    for path in LEVEL_FACTS.values():
        out[path] = {"enum": ["advisory", "mandatory"]}
    for rule in RULES.values():
        for prop, path in rule.facts.items():
            spec = {k: v for k, v in rule.config[prop].items() if k in ("type", "minimum", "enum")}
            out.setdefault(path, spec)
    return dict(sorted(out.items()))


_ABSENT = object()
_RAISE = object()


def fact_of(facts: Mapping[str, Any], path: str, default: Any = _RAISE) -> Any:
    """The value at a dotted path of a tier's facts (``caps.warmAccelerators``); KeyError when absent and no
    ``default`` is given."""
    cur: Any = facts
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            if default is _RAISE:
                raise KeyError(path)
            return default
        cur = cur[part]
    return cur


def fact_problems(facts: Mapping[str, Any]) -> list[str]:
    """Every fact the pack reads that ``facts`` lacks or gives a value of the wrong kind, one line each
    (``path = value: expected``)."""
    out = []
    for path, schema in fact_schemas().items():
        value = fact_of(facts, path, _ABSENT)
        if value is _ABSENT:
            out.append(f"{path}: required (a tier fact the policy pack reads)")
            continue
        error = next(iter(jsonschema.Draft7Validator(schema).iter_errors(value)), None)
        if error is not None:
            out.append(f"{path} = {value!r}: {error.message}")
    return out


class TierFactsError(ValueError):
    """A tier's facts lack a fact the pack reads, or give one a value of the wrong kind; lists every problem."""

    def __init__(self, tier: str | None, problems: list[str]):
        self.problems = problems
        n = len(problems)
        super().__init__(f"tier {tier!r}: the facts do not fit the policy pack: {n} problem{'s' if n != 1 else ''}\n"
                         + "\n".join(f"  - {p}" for p in problems))


def pack_config(tier: str | None, *, facts: Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The pack config for a tier, in the format of ``pulumi preview --policy-pack-config`` files.

    Every policy gets ``tier`` (when given), its level and, from ``facts`` (the tier file's mapping, camelCase), the
    value of every tier fact it reads; cost rules take ``policy.costEnforcement``, and a rule of :data:`LEVEL_FACTS`
    (the capacity rules) its own level fact. Without ``facts`` the rules keep their strict defaults and every level is
    the one the rule registers (mandatory; advisory for the capacity rules). ``overrides`` (same format:
    ``{"all": level, "<policy>": level | {"enforcementLevel": ..., "<prop>": ...}}``) is merged on top. Raises
    :class:`TierFactsError` when ``facts`` lacks a fact the pack reads or gives it a value of the wrong kind.
    """
    if facts is not None:
        found = fact_problems(facts)
        if found:
            raise TierFactsError(tier, found)
    cost_level = fact_of(facts, COST_ENFORCEMENT_FACT) if facts is not None else None
    cfg: dict[str, Any] = {}
    for rid, rule in RULES.items():
        if facts is not None and rid in LEVEL_FACTS:
            level = EnforcementLevel(fact_of(facts, LEVEL_FACTS[rid]))
        else:
            level = rule.level(cost_level)
        entry: dict[str, Any] = {"enforcementLevel": level.value}
        if tier is not None:
            entry["tier"] = tier
        if facts is not None:
            for prop, path in rule.facts.items():
                entry[prop] = fact_of(facts, path)
        cfg[rid] = entry
    for key, value in (overrides or {}).items():
        if key == "all":
            cfg["all"] = value
            level = value if isinstance(value, str) else (value or {}).get("enforcementLevel")
            if level is not None:  # "all" overrides every policy's own level, as the Pulumi CLI does
                for rid in RULES:
                    cfg[rid]["enforcementLevel"] = level
            continue
        entry = cfg.setdefault(key, {})
        if isinstance(value, str):
            entry["enforcementLevel"] = value
        else:
            entry.update(value)
    return cfg


def config_path(tier: str) -> Path:
    return CONFIG_DIR / f"{tier}.json"


def shipped_tiers() -> list[str]:
    """The tiers the pack ships a config for (``policies/config/<tier>.json``): the tiers a ``tier`` tag may name."""
    return sorted(shipped_configs())


def level_of(rule_id: str, cfg: Mapping[str, Any] | None) -> EnforcementLevel:
    """Effective enforcement level of a policy under a pack config, by the CLI's precedence: the policy's own
    ``enforcementLevel`` > ``all`` > the level the policy registers (mandatory, see ``Rule.level``)."""
    rule = RULES[rule_id]
    cfg = cfg or {}
    entry = cfg.get(rule_id)
    if isinstance(entry, str):
        return EnforcementLevel(entry)
    if isinstance(entry, Mapping) and entry.get("enforcementLevel"):
        return EnforcementLevel(entry["enforcementLevel"])
    everything = cfg.get("all")
    if isinstance(everything, str):
        return EnforcementLevel(everything)
    if isinstance(everything, Mapping) and everything.get("enforcementLevel"):
        return EnforcementLevel(everything["enforcementLevel"])
    return rule.level()


def rule_table_markdown() -> str:
    """The rule table of docs/policies.md (a test keeps the document in step with the rules)."""
    lines = ["| Rule | Concern | Severity | Kind | Tier facts | Enforcement | checkov |",
             "|---|---|---|---|---|---|---|"]
    for rid, reg in REGISTERED.items():
        r = reg.rule
        facts = ", ".join(f"`{path}`" for path in r.facts.values()) or "-"
        if rid in LEVEL_FACTS:
            enforcement = f"`{LEVEL_FACTS[rid]}`"
        elif r.fixed_level is None and r.concern == "cost":
            enforcement = f"`{COST_ENFORCEMENT_FACT}`"
        else:
            enforcement = r.level().value
        checkov = ", ".join(r.checkov) or "-"
        lines.append(f"| `{rid}` | {r.concern} | {r.severity.value} | {reg.kind} | {facts} | {enforcement} "
                     f"| {checkov} |")
    return "\n".join(lines) + "\n"


def config_reference_markdown() -> str:
    """Each rule's config properties with their defaults (docs/policies.md), besides ``tier``. A property that carries
    a tier fact names it; its default is the strict one, used when the tier's facts are unknown."""
    lines = ["| Rule | Property | Default | Tier fact | Meaning |", "|---|---|---|---|---|"]
    for rid, rule in RULES.items():
        for key, spec in rule.config.items():
            default = json.dumps(spec.get("default"))
            fact = f"`{rule.facts[key]}`" if key in rule.facts else "-"
            lines.append(f"| `{rid}` | `{key}` | `{default}` | {fact} | {spec.get('description', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m policies.pack: the tables of docs/policies.md (configs: python -m infra.tiers)
    print(rule_table_markdown())
    print(config_reference_markdown())
