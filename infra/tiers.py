"""Tiers as data: a tier is a folder ``stacks/tiers/<tier>/``, and adding one is copying a folder and editing YAML.

The folder holds the tier's presets (``<section>.yaml``: what its stacks build, merged under each stack file by
``infra.config``) and its facts (``tier.yaml``: what a stack of the tier may buy and must keep). The facts are read
here, validated (:class:`TierFacts`, one :class:`TierError` listing every problem with the file, key path, value and
expectation), and used twice:

- by the stack program's checks (``infra.sections.managed.problems``: may the stack buy Bedrock throughput, commit to
  a term, run SageMaker endpoints);
- by the policy pack, which reads no tier itself (``policies/`` may not read ``stacks/``): :func:`pack_config_for`
  turns a tier's facts into the pack config (``policies.pack.pack_config``), and ``python -m infra.tiers
  --write-policy-configs`` writes it to ``policies/config/<tier>.json`` for ``pulumi preview --policy-pack-config``.

The tier name is free text checked against the folder names: lowercase letters, digits and ``-``, since it goes
into cost-allocation tags, Kubernetes labels and file names.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from components.errors import ArgsError
from problems import MISSING, Problem, did_you_mean, from_pydantic, missing

ROOT = Path(__file__).resolve().parent.parent
TIERS_DIR = ROOT / "stacks" / "tiers"
"""Where the tier folders live (the one definition; ``infra.config`` uses it too)."""
TIER_FILE = "tier.yaml"
"""The facts file in each tier folder; every other ``*.yaml`` there is a preset."""
NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""A tier name: a Kubernetes label value that is also a tidy file name."""


class TierError(ArgsError):
    """A tier that cannot be used (unknown name, missing or invalid facts file). ``str(err)`` is the whole message."""


class _Facts(BaseModel):
    """camelCase keys in YAML, unknown keys rejected, no type coercion (``"yes"`` is not ``true``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, alias_generator=to_camel,
                              populate_by_name=True, use_attribute_docstrings=True)


class BedrockRights(_Facts):
    provisioned_throughput: bool
    """May buy Bedrock Provisioned Throughput (`genai-scale:bedrock.purchase`; model units bill every hour)."""
    commitment: bool
    """May buy it with a commitment term (`genai-scale:bedrock.commitment`; cannot be cancelled before its end)."""


class MultiAz(_Facts):
    cluster: bool
    """The cluster and its CPU node groups must span two or more AZs."""
    cache_replica: bool
    """The cache must keep a replica in another AZ."""
    cache_auto_failover: bool
    """The cache must fail over on its own (automatic failover and Multi-AZ on)."""


class Caps(_Facts):
    on_demand_h100_nodes: int = Field(ge=0)
    """Largest maxSize of an on-demand H100/H200 node group."""
    warm_accelerators: int = Field(ge=0)
    """Largest warm accelerator replicas/instances per workload."""


Level = Literal["advisory", "mandatory"]
"""A policy enforcement level a tier may set: advisory (reported, never blocks) or mandatory (fails the run)."""


class CapacityLevels(_Facts):
    """One level per capacity rule (``policies/capacity.py``): the capacity plan's verdicts on a ScaledObject."""

    max_below_peak: Level
    """Level of capacity-max-below-peak (maxReplicaCount cannot carry the peak demand)."""
    slo_unreachable: Level
    """Level of capacity-slo-unreachable (no replica meets the latency SLO at any concurrency)."""
    min_above_off_peak: Level
    """Level of capacity-min-above-off-peak (minReplicaCount far above what off-peak demand needs)."""


class PolicyLevels(_Facts):
    cost_enforcement: Level
    """Enforcement level of the cost rules."""
    capacity: CapacityLevels
    """Enforcement levels of the capacity rules, one per rule."""


class TierFacts(_Facts):
    """A tier's rights, caps and policy levels (``stacks/tiers/<tier>/tier.yaml``); every key is required."""

    accelerators_scale_to_zero: bool
    """Every GPU/Inferentia node group must scale to zero when idle."""
    bedrock: BedrockRights
    """What the tier may buy from Bedrock."""
    sagemaker_endpoints: bool
    """May run SageMaker real-time endpoints (`genai-scale:sagemaker.endpoints`; each keeps a GPU instance running)."""
    multi_az: MultiAz
    """What must survive an availability-zone outage."""
    public_alb_waf: bool
    """An internet-facing ALB must have a WAFv2 web ACL."""
    caps: Caps
    """Allowances."""
    policy: PolicyLevels
    """Policy-pack enforcement levels."""

    def to_doc(self) -> dict[str, Any]:
        """The facts as the tier file spells them (camelCase), the form ``policies.pack.pack_config`` takes."""
        return self.model_dump(by_alias=True)


def cross_problems(doc: dict[str, Any]) -> list[Problem]:
    """Rules between facts, judged on the file's values (so a bad value elsewhere never hides them)."""
    bedrock = doc.get("bedrock")
    if (isinstance(bedrock, dict) and bedrock.get("commitment") is True
            and bedrock.get("provisionedThroughput") is False):
        return [Problem("bedrock.commitment", True, "false when bedrock.provisionedThroughput is false (a commitment "
                        "term is a way to buy provisioned throughput)", ("bedrock.provisionedThroughput",))]
    return []


def _dir(tiers_dir: Path | str | None) -> Path:
    return Path(tiers_dir) if tiers_dir is not None else TIERS_DIR


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def tier_names(tiers_dir: Path | str | None = None) -> tuple[str, ...]:
    """Every tier: the folders under ``tiers_dir`` (default ``stacks/tiers``), sorted by name."""
    d = _dir(tiers_dir)
    if not d.is_dir():
        return ()
    return tuple(sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))))


def unknown_tier(tier: Any, tiers_dir: Path | str | None = None) -> Problem | None:
    """The problem with a stack's ``tier`` value (absent, or no such folder), or None when it names a tier."""
    names = tier_names(tiers_dir)
    listed = ", ".join(names) or f"(no tier folder in {_show(_dir(tiers_dir))})"
    if tier is None:
        return missing("tier", f"required: one of {listed}")
    if not isinstance(tier, str) or tier not in names:
        return Problem("tier", tier, f"one of {listed}" + did_you_mean(str(tier), names))
    return None


def _known_fields(model: type[BaseModel], prefix: str = "") -> dict[str, list[str]]:
    """Allowed keys per parent path (for "did you mean" on unknown keys)."""
    out = {prefix: [f.alias or n for n, f in model.model_fields.items()]}
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out.update(_known_fields(f.annotation, f"{prefix}.{f.alias or name}" if prefix else (f.alias or name)))
    return out


def read_facts(path: Path) -> TierFacts:
    """Validate one facts file. Raises :class:`TierError` listing every problem (key path, value, expectation)."""
    where = _show(path)
    if not path.is_file():
        raise TierError([missing(TIER_FILE, "required: every tier folder holds its facts (copy the file from another "
                                            "tier and edit it)")], title=f"{_show(path.parent)}: invalid tier")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else ""
        raise TierError([Problem(line, MISSING, f"not valid YAML: {getattr(exc, 'problem', exc)}")],
                        title=f"{where}: cannot parse") from None
    if not isinstance(doc, dict):
        raise TierError([Problem("", doc, "a mapping of tier facts (acceleratorsScaleToZero, bedrock, ...)")],
                        title=f"{where}: invalid tier facts")
    found: list[Problem] = []
    facts = None
    try:
        facts = TierFacts.model_validate(doc)
    except ValidationError as exc:
        found.extend(from_pydantic(exc, known_fields=_known_fields(TierFacts)))
    found.extend(cross_problems(doc))
    if found or facts is None:
        raise TierError(found, title=f"{where}: invalid tier facts")
    return facts


def load_tier(name: str, tiers_dir: Path | str | None = None) -> TierFacts:
    """The facts of tier ``name`` (``<tiers_dir>/<name>/tier.yaml``). Raises :class:`TierError`."""
    d = _dir(tiers_dir)
    problem = unknown_tier(name, d)
    if problem is not None:
        raise TierError([problem], title=f"{_show(d)}: no such tier")
    if not NAME.fullmatch(name):
        raise TierError([Problem("tier", name, "lowercase letters, digits and '-' (at most 63, starting and ending "
                                 "with a letter or digit): the name goes into tags, Kubernetes labels and file "
                                 "names; rename the folder")], title=f"{_show(d / name)}: invalid tier")
    return read_facts(d / name / TIER_FILE)


# --- the policy pack's config ---------------------------------------------------------------------------------------

def pack_config_for(tier: str, *, overrides: dict[str, Any] | None = None,
                    tiers_dir: Path | str | None = None) -> dict[str, Any]:
    """The policy-pack config of a tier, built from its facts (what ``policies/config/<tier>.json`` holds), with
    ``overrides`` (the ``--policy-pack-config`` format) on top."""
    from policies.pack import pack_config  # imports every rule: only when a pack config is wanted

    return pack_config(tier, facts=load_tier(tier, tiers_dir).to_doc(), overrides=overrides)


def render_config(cfg: dict[str, Any]) -> str:
    return json.dumps(cfg, indent=2) + "\n"


def _config_dir(out_dir: Path | str | None) -> Path:
    from policies.pack import CONFIG_DIR

    return Path(out_dir) if out_dir is not None else CONFIG_DIR


def write_policy_configs(*, tiers_dir: Path | str | None = None, out_dir: Path | str | None = None) -> list[Path]:
    """(Re)write ``policies/config/<tier>.json`` for every tier folder; remove the file of a tier that has none.
    Returns the files written."""
    from policies.pack import forget_shipped_configs

    out = _config_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = tier_names(tiers_dir)
    written = []
    for name in names:
        path = out / f"{name}.json"
        path.write_text(render_config(pack_config_for(name, tiers_dir=tiers_dir)))
        written.append(path)
    for path in sorted(out.glob("*.json")):
        if path.stem not in names:
            path.unlink()
    forget_shipped_configs()
    return written


def stale_policy_configs(*, tiers_dir: Path | str | None = None, out_dir: Path | str | None = None) -> list[str]:
    """What ``--write-policy-configs`` would change, one line per file (empty when the files are current)."""
    out = _config_dir(out_dir)
    names = tier_names(tiers_dir)
    stale = []
    for name in names:
        path = out / f"{name}.json"
        want = render_config(pack_config_for(name, tiers_dir=tiers_dir))
        if not path.is_file():
            stale.append(f"{_show(path)}: missing (tier {name})")
        elif path.read_text() != want:
            stale.append(f"{_show(path)}: differs from the facts of tier {name}")
    for path in sorted(out.glob("*.json")):
        if path.stem not in names:
            stale.append(f"{_show(path)}: no tier folder {path.stem}")
    return stale


# --- documentation ----------------------------------------------------------------------------------------------------

def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(fact path, description) of every leaf field, in the file's order."""
    out = []
    for name, f in model.model_fields.items():
        key = f"{prefix}.{f.alias or name}" if prefix else (f.alias or name)
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_leaves(ann, key))
        else:
            out.append((key, (f.description or "").strip()))
    return out


def _value(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        doc = doc[part]
    return doc


def facts_markdown(tiers_dir: Path | str | None = None) -> str:
    """The tier table of docs/policies.md: every fact, its value in each tier, what it means, the policies that read
    it."""
    from policies.pack import COST_ENFORCEMENT_FACT, LEVEL_FACTS, RULES

    readers: dict[str, list[str]] = {COST_ENFORCEMENT_FACT: ["cost rules' level"]}
    for rid, path in LEVEL_FACTS.items():
        readers.setdefault(path, []).append(f"`{rid}`'s level")
    for rid, rule in RULES.items():
        for path in rule.facts.values():
            readers.setdefault(path, []).append(f"`{rid}`")
    names = tier_names(tiers_dir)
    docs = {n: load_tier(n, tiers_dir).to_doc() for n in names}
    lines = ["| Fact | " + " | ".join(names) + " | Meaning | Policies |", "|---|" + "---|" * len(names) + "---|---|"]
    for path, text in _leaves(TierFacts):
        values = " | ".join(f"`{json.dumps(_value(docs[n], path))}`" for n in names)
        lines.append(f"| `{path}` | {values} | {text} | {', '.join(readers.get(path, [])) or '-'} |")
    return "\n".join(lines) + "\n"


# --- command line ---------------------------------------------------------------------------------------------------

def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.tiers",
                                description="The tiers under stacks/tiers and the policy-pack configs made from them.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write-policy-configs", action="store_true",
                   help="write policies/config/<tier>.json for every tier folder (and remove those of gone tiers)")
    g.add_argument("--check", action="store_true", help="exit 1 when a policies/config file is not current")
    args = p.parse_args(list(argv))
    try:
        if args.write_policy_configs:
            for path in write_policy_configs():
                print(_show(path))
            return 0
        if args.check:
            stale = stale_policy_configs()
            for line in stale:
                print(line, file=sys.stderr)
            if stale:
                print("run: python -m infra.tiers --write-policy-configs", file=sys.stderr)
            return 1 if stale else 0
        sys.stdout.write(facts_markdown())
        return 0
    except TierError as err:
        print(str(err), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
