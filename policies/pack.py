"""The policy pack's contents: every rule, the policy objects CrossGuard runs, and the per-tier pack config.

Importing this module never starts anything (``PolicyPack(...)`` starts a gRPC server when constructed, so only
``policies/__main__.py`` builds the pack).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from pulumi_policy import EnforcementLevel

from policies import (  # noqa: F401 - importing registers the rules
    cost, gpu, reliability, security, security_edge, security_workloads)
from policies._rule import CONCERNS, TIERS, RegisteredRule, Rule, registry

PACK_NAME = "genai-scale"
PACK_DESCRIPTION = ("Security, reliability, cost and GPU-correctness rules for generative-AI infrastructure on AWS "
                    "(EKS with GPU/Inferentia nodes, vLLM, SageMaker, Bedrock, ALB, ElastiCache).")
CONFIG_DIR = Path(__file__).resolve().parent / "config"

REGISTERED: dict[str, RegisteredRule] = dict(sorted(
    registry().items(), key=lambda kv: (CONCERNS.index(kv[1].rule.concern), kv[0])))
RULES: dict[str, Rule] = {k: v.rule for k, v in REGISTERED.items()}
ALL_POLICIES = [reg.policy for reg in REGISTERED.values()]


def pack_config(tier: str | None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The pack config for a tier, in the format of ``pulumi preview --policy-pack-config`` files.

    Every policy gets ``tier`` and the enforcement level of that tier (cost advisory in prototype). ``overrides``
    (same format: ``{"all": level, "<policy>": level | {"enforcementLevel": ..., "<prop>": ...}}``) is merged on top.
    """
    if tier is not None and tier not in TIERS:
        raise ValueError(f"tier {tier!r}: expected one of {', '.join(TIERS)}")
    cfg: dict[str, Any] = {}
    for rid, rule in RULES.items():
        entry: dict[str, Any] = {"enforcementLevel": rule.default_level(tier).value}
        if tier is not None:
            entry["tier"] = tier
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


def write_configs() -> list[Path]:
    """(Re)write ``policies/config/<tier>.json`` from the rule metadata."""
    CONFIG_DIR.mkdir(exist_ok=True)
    out = []
    for tier in TIERS:
        path = config_path(tier)
        path.write_text(json.dumps(pack_config(tier), indent=2) + "\n")
        out.append(path)
    return out


def level_of(rule_id: str, cfg: Mapping[str, Any] | None) -> EnforcementLevel:
    """Effective enforcement level of a policy under a pack config, by the CLI's precedence: the policy's own
    ``enforcementLevel`` > ``all`` > the rule's default for the configured tier."""
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
    tier = entry.get("tier") if isinstance(entry, Mapping) else None
    return rule.default_level(tier)


def rule_table_markdown() -> str:
    """The rule table of docs/policies.md (a test keeps the document in step with the rules)."""
    def level(rule: Rule, tier: str) -> str:
        return rule.default_level(tier).value

    lines = ["| Rule | Concern | Severity | Kind | Tiers | Enforcement (prototype / growth / scale) | checkov |",
             "|---|---|---|---|---|---|---|"]
    for rid, reg in REGISTERED.items():
        r = reg.rule
        tiers = "all" if r.tiers == TIERS else ", ".join(r.tiers)
        enforcement = " / ".join(level(r, t) if t in r.tiers else "-" for t in TIERS)
        checkov = ", ".join(r.checkov) or "-"
        lines.append(f"| `{rid}` | {r.concern} | {r.severity.value} | {reg.kind} | {tiers} | {enforcement} | {checkov} |")
    return "\n".join(lines) + "\n"


def config_reference_markdown() -> str:
    """Each rule's config properties with their defaults (docs/policies.md), besides ``tier``."""
    lines = ["| Rule | Property | Default | Meaning |", "|---|---|---|---|"]
    for rid, rule in RULES.items():
        for key, spec in rule.config.items():
            default = json.dumps(spec.get("default"))
            lines.append(f"| `{rid}` | `{key}` | `{default}` | {spec.get('description', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m policies.pack: regenerate the per-tier config files, print the rule table
    for p in write_configs():
        print(p)
    print(rule_table_markdown())
    print(config_reference_markdown())
