"""Stack configuration: tier preset + stack file -> validated StackSettings, or one error listing every problem.

A stack file (``stacks/Pulumi.<stack>.yaml``) sets ``genai-scale:tier`` and overrides the tier preset
(``stacks/tiers/<tier>/*.yaml``) key by key: mappings merge recursively, ``null`` removes a preset entry (for example a
node group), anything else replaces. The merged mapping is validated by ``StackSettings``, a pydantic model built
from every section's ``KEYS``; then each section's cross-field ``problems()`` run. All problems are reported at once
with their key path (``genai-scale:nodeGroups.h100.minSize``), the bad value and what was expected. A rule that reads
an entry the stack file removed (a model naming a node group set to ``null``) says so. An unknown tier does not hide
the other mistakes: a near-miss name is checked as the tier it resembles, any other against the section schemas.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, create_model
from pydantic.fields import FieldInfo

from components.errors import ArgsError
from problems import MISSING, Problem, missing, unknown_key
from problems import from_pydantic as problems_from_pydantic
from infra.sections import SECTIONS
from infra.sections.base import SettingsModel
from infra.tiers import TIER_FILE, TIERS_DIR, TierError, load_tier, tier_names, unknown_tier

NAMESPACE = "genai-scale"
Tier = str
"""A tier is a folder under ``stacks/tiers/`` (see ``infra.tiers``): its name, checked against the folders."""
ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = ROOT / "stacks"
SECRET_VALUE = "[secret]"


class ConfigError(ArgsError):
    """Bad stack configuration. ``str(err)`` is the whole message for the user."""


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def display_path(path: Path | str) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        try:
            return str(p.relative_to(ROOT))
        except ValueError:
            return str(path)


def read_stack_file(path: Path | str) -> dict[str, Any]:
    """The ``config:`` mapping of a Pulumi stack file (full keys). ``secure:`` values become "[secret]"."""
    p = Path(path)
    where = display_path(p)
    if not p.is_file():
        raise ConfigError([Problem("", str(p), "no such stack config file")], title=f"{where}: cannot read")
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError([Problem("", str(p), f"a readable UTF-8 YAML file ({exc.__class__.__name__})")],
                          title=f"{where}: cannot read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError([Problem(line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")],
                          title=f"{where}: cannot parse") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise ConfigError([Problem("config", doc, "a mapping of config keys")], title=f"{where}: invalid")
    cfg = dict(doc.get("config") or {})
    return {k: _unsecure(v) for k, v in cfg.items()}


def _unsecure(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"secure"}:
        return SECRET_VALUE
    if isinstance(v, dict):
        return {k: _unsecure(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unsecure(x) for x in v]
    return v


def raw_from_runtime() -> dict[str, Any]:
    """Every config key the Pulumi engine passed to this program, structured values decoded (for ``pulumi up``)."""
    from pulumi.runtime import config as rc

    merged: dict[str, Any] = {}
    merged.update(rc.get_config_env())
    merged.update(rc.CONFIG.get())
    out = {}
    for k, v in merged.items():
        if isinstance(v, str):
            try:
                decoded = json.loads(v)
                v = decoded if isinstance(decoded, (dict, list)) else v
            except ValueError:
                pass
        out[k] = v
    return out


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; ``None`` in ``override`` removes the key; anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = deep_merge(base.get(k), v)
        return out
    return override


def load_tier_preset(tier: str) -> dict[str, Any]:
    """Merge every ``stacks/tiers/<tier>/*.yaml`` (one file per section) into one mapping; the tier's facts file
    (``tier.yaml``) is not stack config and is skipped."""
    preset: dict[str, Any] = {}
    for f in sorted((TIERS_DIR / tier).glob("*.yaml")):
        if f.name == TIER_FILE:
            continue
        data = yaml.safe_load(f.read_text()) or {}
        overlap = set(data) & set(preset)
        if overlap:
            raise ConfigError([Problem(k, f.name, "defined by two preset files") for k in sorted(overlap)],
                              title=f"tier preset {tier!r} is inconsistent")
        preset.update(data)
    return preset


def _sections():
    return SECTIONS


def settings_model() -> type[SettingsModel]:
    """``StackSettings``: the base keys plus every section's ``KEYS``."""
    global _MODEL
    if _MODEL is None:
        fields: dict[str, Any] = {
            "tier": (Tier, FieldInfo(description="Scale tier: a folder under stacks/tiers/ (see infra.tiers).")),
            "region": (str, FieldInfo(default="us-east-1", description="AWS Region (aws:region).")),
        }
        for section in _sections():
            for key, model in section.KEYS.items():
                fields[_snake(key)] = (model, FieldInfo(default_factory=model, alias=key))
        _MODEL = create_model("StackSettings", __base__=SettingsModel, **fields)
    return _MODEL


_MODEL: type[SettingsModel] | None = None


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def build_settings(raw: dict[str, Any], *, source: str) -> Any:
    """Validate a stack's full config mapping (``aws:region``, ``genai-scale:*``) into StackSettings."""
    prefix = f"{NAMESPACE}:"
    ns: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(prefix):
            ns[key[len(prefix):]] = value
    tier = ns.pop("tier", None)
    flat = flat_key_problems(ns)
    problem = unknown_tier(tier, TIERS_DIR)  # tiers are the folders under stacks/tiers
    if problem is not None:
        raise ConfigError(flat + _without_tier(ns, raw, tier, problem, source=source),
                          title=f"{source}: invalid configuration", prefix=prefix)
    try:
        load_tier(tier, TIERS_DIR)  # the tier's facts, which the sections' rules read: reported before them
    except TierError as err:
        raise ConfigError(err.problems, title=err.title) from None
    found, settings = _check_with_tier(ns, raw, tier, source=source)
    if flat or found:
        raise ConfigError(flat + found, title=f"{source}: invalid configuration", prefix=prefix)
    return settings


def flat_key_problems(ns: dict[str, Any]) -> list[Problem]:
    """Keys written flat (``genai-scale:serving.huggingFaceTokenSecretId``: what ``pulumi config set`` writes without
    ``--path``), taken out of ``ns`` and reported with the command that nests them. The value is not shown: it may be a
    secret."""
    out = []
    for key in [k for k in ns if isinstance(k, str) and "." in k]:
        ns.pop(key)
        section = key.split(".", 1)[0]
        out.append(Problem(key, MISSING, f"a flat key: settings nest under {NAMESPACE}:{section}; set it with "
                                         f"`pulumi config set --path '{NAMESPACE}:{key}' <value>` (with --secret "
                                         "for a secret), or write it nested in the stack file", code="unknown_key"))
    return out


def _check_with_tier(ns: dict[str, Any], raw: dict[str, Any], tier: str, *, source: str) -> tuple[list[Problem], Any]:
    """Every problem of the stack file's keys merged over ``tier``'s preset (values, then the sections' rules), and
    the settings with only the valid values."""
    ns = renamed_keys(ns, source=source)
    preset = load_tier_preset(tier)
    merged = deep_merge(preset, ns)
    merged["tier"] = tier
    merged["region"] = raw.get("aws:region", "us-east-1")
    model = settings_model()
    found, cleaned, repaired = _validate_keys(model, merged)
    settings = model.model_validate(cleaned)  # only valid values left: cannot fail
    removed = removed_entries(preset, ns)
    for section in _sections():
        check = getattr(section, "problems", None)
        if check is not None:
            found.extend(_after_removal(p, removed) for p in check(settings) if not _about_repaired(p, repaired))
    return found, settings


def _without_tier(ns: dict[str, Any], raw: dict[str, Any], tier: Any, problem: Problem, *, source: str
                  ) -> list[Problem]:
    """The tier's problem and the stack file's other mistakes when its tier is unknown, so one run lists them all.

    A near-miss tier name (``protoype``) is taken as the tier meant: the file is checked in full against that preset
    (values and the sections' rules), and the tier's problem says so. Otherwise the file's own keys and values are
    checked against the section schemas; absent keys (a preset would supply them) and the cross-section rules are
    left out."""
    import difflib

    close = difflib.get_close_matches(tier, tier_names(TIERS_DIR), n=1, cutoff=0.6) if isinstance(tier, str) else []
    if close:
        try:
            load_tier(close[0], TIERS_DIR)
            found, _ = _check_with_tier(ns, raw, close[0], source=source)
        except (ConfigError, TierError):
            pass  # that tier folder is broken itself: fall back to the file's own keys
        else:
            assumed = replace(problem, expected=f"{problem.expected}; the other keys were checked against the "
                                                f"{close[0]} preset")
            return [assumed, *found]
    found, _, _ = _validate_keys(settings_model(), {**ns, "region": raw.get("aws:region", "us-east-1")})
    return [problem, *(p for p in found if p.code != "missing")]


def removed_entries(preset: Any, override: Any, path: str = "") -> list[str]:
    """Key paths of preset entries that the stack file removes with ``null`` (``nodeGroups.inf2``)."""
    if not isinstance(preset, dict) or not isinstance(override, dict):
        return []
    out: list[str] = []
    for k, v in override.items():
        where = f"{path}.{k}" if path else str(k)
        if v is None and k in preset:
            out.append(where)
        else:
            out.extend(removed_entries(preset.get(k), v, where))
    return out


def _after_removal(p: Problem, removed: list[str]) -> Problem:
    """A rule that read an entry the stack file removed (``inf2: null`` while a model still names ``inf2``) says so,
    and what to do: refer to an entry that remains, or remove the referring entry too."""
    gone = [r for r in removed if any(x == r or x.startswith(f"{r}.") for x in p.related)]
    if not gone:
        return p
    # the entry that refers: the problem's own path when it names a map entry (code "entry"), else its parent
    entry = p.path if p.code == "entry" or "." not in p.path else p.path.rsplit(".", 1)[0]
    what = ", ".join(f"{NAMESPACE}:{r}" for r in gone)
    return replace(p, expected=f"{p.expected}; the stack file removes {what} (null): refer to one that remains, or "
                               f"remove {NAMESPACE}:{entry} as well (null)")


class ConfigWarning(UserWarning):
    """A stack file uses a deprecated key (still accepted); the message names the new key."""


def renamed_keys(ns: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Deprecated keys (each section's ``RENAMED``: ``"nodeGroups.*.labels": "extraLabels"``) moved to their new
    names, with a :class:`ConfigWarning` each; a file that sets both keeps the new key's value."""
    import warnings

    def walk(node: Any, parts: list[str], new: str, where: list[str]) -> None:
        if not isinstance(node, dict) or not parts:
            return
        head, rest = parts[0], parts[1:]
        keys = list(node) if head == "*" else [head] if head in node else []
        for key in keys:
            if rest:
                walk(node[key], rest, new, [*where, key])
            elif new not in node:
                node[new] = node.pop(key)
                warnings.warn(f"{source}: {NAMESPACE}:{'.'.join([*where, key])} is deprecated; use "
                              f"{NAMESPACE}:{'.'.join([*where, new])}", ConfigWarning, stacklevel=2)

    out = json.loads(json.dumps(ns, default=str))
    for section in _sections():
        for old, new in getattr(section, "RENAMED", {}).items():
            walk(out, old.split("."), new, [])
    return out


def _validate_keys(model: type[SettingsModel], merged: dict[str, Any]
                   ) -> tuple[list[Problem], dict[str, Any], list[str]]:
    """Validate each top-level key (and each entry of a map of models) on its own, so one bad value never hides
    another. A bad value is dropped from its mapping (its default applies) and the rest validated again, so the
    cross-field rules still see the entry. Returns every problem, the cleaned mapping, and the dropped paths (rules
    about those are not reported: they would judge a default, not the user's value)."""
    from pydantic import TypeAdapter

    problems: list[Problem] = []
    cleaned: dict[str, Any] = {}
    repaired: list[str] = []
    by_alias = {(f.alias or n): f for n, f in model.model_fields.items()}
    for key, value in merged.items():
        field = by_alias.get(key)
        if field is None:
            problems.append(_with_allowed_keys(missing(key, "unknown key", code="unknown_key"), model))
            continue
        target = _unwrap(field.annotation)
        if isinstance(target, _DictOf) and isinstance(value, dict):
            adapter = TypeAdapter(target.value)
            kept = {}
            for name, item in value.items():
                fixed = _check(adapter, item, f"{key}.{name}", model, problems, repaired)
                if fixed is not _DROP:
                    kept[name] = fixed
            cleaned[key] = kept
            continue
        fixed = _check(TypeAdapter(field.annotation), value, key, model, problems, repaired)
        if fixed is not _DROP:
            cleaned[key] = fixed
    return problems, cleaned, repaired


_DROP = object()


def _check(adapter: Any, value: Any, path: str, model: type[SettingsModel], problems: list[Problem],
           repaired: list[str]) -> Any:
    """Validate ``value``; on errors record them and return the value without its bad leaves (or _DROP)."""
    try:
        adapter.validate_python(value)
        return value
    except ValidationError as exc:
        problems.extend(_prefixed(exc, model, path))
        errors = exc.errors(include_url=False)
    if not isinstance(value, dict) or any(e["type"] == "missing" or not e["loc"] for e in errors):
        repaired.append(path)
        return _DROP
    fixed = json.loads(json.dumps(value, default=str))
    for e in errors:
        loc = [x for x in e["loc"] if not (isinstance(x, str) and (x.startswith("function-") or x.endswith("]")))]
        _delete(fixed, loc)
        repaired.append(".".join([path, *[str(x) for x in loc]]))
    try:
        adapter.validate_python(fixed)
        return fixed
    except ValidationError:
        repaired.append(path)
        return _DROP


def _delete(doc: Any, loc: list[Any]) -> None:
    cur = doc
    for part in loc[:-1]:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(cur, dict):
        cur.pop(loc[-1], None)
    elif isinstance(cur, list) and isinstance(loc[-1], int) and loc[-1] < len(cur):
        cur.pop(loc[-1])


def _about_repaired(p: Problem, repaired: list[str]) -> bool:
    """A cross-field problem about a value already reported (and replaced by its default), or whose rule read one
    (its ``related`` paths): it would judge the default, not the user's value."""
    return any(p.concerns(path) for path in repaired)


def _prefixed(exc: ValidationError, model: type[SettingsModel], prefix: str) -> list[Problem]:
    out = []
    for p in problems_from_pydantic(exc):
        path = f"{prefix}.{p.path}" if p.path else prefix
        out.append(_with_allowed_keys(Problem(path, p.value, p.expected, code=p.code), model))
    return out


def _with_allowed_keys(p: Problem, model: type[SettingsModel]) -> Problem:
    """Add 'did you mean' / the allowed keys to an unknown-key problem, walking the models along its path."""
    if p.code != "unknown_key":
        return p
    parts = _split(p.path)
    cls: Any = model
    for part in parts[:-1]:
        cls = _child_model(cls, part)
        if cls is None:
            return p
    allowed = _aliases(cls) if cls is not None else []
    if not allowed:
        return p
    return unknown_key(p.path, allowed)


def _split(path: str) -> list[str]:
    return [x for x in path.replace("[", ".").replace("]", "").split(".") if x]


def _aliases(cls: Any) -> list[str]:
    fields = getattr(cls, "model_fields", None)
    if not fields:
        return []
    return [f.alias or n for n, f in fields.items()]


def _child_model(cls: Any, part: str) -> Any:
    """The model class at ``part`` under ``cls`` (through dict values and Optionals)."""
    if isinstance(cls, _DictOf):
        return cls.value
    fields = getattr(cls, "model_fields", {})
    for name, f in fields.items():
        if part in (name, f.alias):
            return _unwrap(f.annotation)
    return None


class _DictOf:
    def __init__(self, value: Any) -> None:
        self.value = value


def _unwrap(tp: Any) -> Any:
    import typing

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (dict, typing.Dict) and len(args) == 2:
        return _DictOf(_unwrap(args[1]))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for a in args:
            if a is not type(None):
                return _unwrap(a)
    return tp


def load(*, stack: str | None = None, config_file: str | os.PathLike | None = None) -> tuple[str, dict[str, Any], Any]:
    """Read and validate a stack: returns (stack name, raw config, settings). Raises ConfigError."""
    if config_file is None:
        if stack is None:
            stack = "dev"
        path = stack_file(stack)
    else:
        path = Path(config_file)
        if stack is None:
            name = path.name
            stack = name[len("Pulumi."):-len(".yaml")] if name.startswith("Pulumi.") and name.endswith(
                (".yaml", ".yml")) else path.stem
    raw = read_stack_file(path)
    settings = build_settings(raw, source=display_path(path))
    return stack, raw, settings
