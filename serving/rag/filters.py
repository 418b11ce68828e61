"""Metadata filters: one small language for both backends, validated before any backend sees it.

A filter is a mapping of metadata key to a condition, every condition must hold (AND)::

    {"lang": "en"}                       # equality: a string, a number or a boolean
    {"year": {"$in": [2024, 2025]}}      # membership: a non-empty list of such values
    {"lang": "en", "draft": False}       # both

Keys are metadata keys (letters, digits, ``_`` and ``-``, starting with a letter or ``_``, at most 64 characters);
``null``, nested objects, lists outside ``$in`` and unknown operators are rejected with the key path, the value and
what was expected. A boolean never matches a number (``True`` is not ``1``), as in JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from problems import Problem

__all__ = [
    "KEY_PATTERN",
    "MAX_FILTER_KEYS",
    "MAX_IN_VALUES",
    "Condition",
    "Scalar",
    "parse_filter",
    "scalar_problem",
]

Scalar = Union[str, int, float, bool]
"""A metadata value: what a filter compares and what chunk metadata holds."""

KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
"""A metadata key (also a filter key)."""
MAX_FILTER_KEYS = 16
"""Most keys one filter may test."""
MAX_IN_VALUES = 100
"""Most values one ``$in`` list may hold."""
MAX_STRING_CHARS = 1024
"""Longest string a metadata value or a filter value may be."""

OPERATORS = ("$in",)


@dataclass(frozen=True)
class Condition:
    """One validated condition: ``key``'s value is one of ``values`` (equality is a one-value list)."""

    key: str
    values: tuple[Scalar, ...]


def scalar_problem(path: str, value: Any, code: str) -> Problem | None:
    """A problem when ``value`` is not a metadata scalar (string, finite number, boolean), else ``None``."""
    if isinstance(value, bool) or isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else Problem(path, value, "must be a finite number", code=code)
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            return Problem(path, value, f"must be at most {MAX_STRING_CHARS} characters (got {len(value)})",
                           code=code)
        if "\x00" in value:
            return Problem(path, value, "must not contain NUL characters", code=code)
        return None
    kind = "null" if value is None else type(value).__name__
    return Problem(path, value, f"must be a string, a number or a boolean (got {kind})", code=code)


def parse_filter(raw: Any, path: str = "filter") -> tuple[list[Condition], list[Problem]]:
    """The conditions of ``raw`` and every problem found in it (code ``filter``). ``None`` or ``{}`` is no filter."""
    if raw is None:
        return [], []
    if not isinstance(raw, Mapping):
        return [], [Problem(path, raw, "must be an object of metadata key to value or {\"$in\": [...]}",
                            code="filter")]
    problems: list[Problem] = []
    if len(raw) > MAX_FILTER_KEYS:
        problems.append(Problem(path, f"{len(raw)} keys", f"must test at most {MAX_FILTER_KEYS} keys",
                                code="filter"))
    conditions: list[Condition] = []
    for key, cond in raw.items():
        where = f"{path}.{key}"
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            problems.append(Problem(where, key, "key must match [A-Za-z_][A-Za-z0-9_-]{0,63}", code="filter"))
            continue
        values, found = _condition(where, cond)
        problems += found
        if not found:
            conditions.append(Condition(key, values))
    return conditions, problems


def _condition(where: str, cond: Any) -> tuple[tuple[Scalar, ...], list[Problem]]:
    if isinstance(cond, Mapping):
        unknown = [op for op in cond if op not in OPERATORS]
        if unknown or len(cond) != 1:
            return (), [Problem(where, dict(cond), f"an operator object must be exactly {{\"$in\": [...]}} "
                                                   f"(operators: {', '.join(OPERATORS)})", code="filter")]
        values = cond["$in"]
        at = f"{where}.$in"
        if not isinstance(values, (list, tuple)):
            return (), [Problem(at, values, "must be a list of strings, numbers or booleans", code="filter")]
        if not values:
            return (), [Problem(at, list(values), "must hold at least one value", code="filter")]
        if len(values) > MAX_IN_VALUES:
            return (), [Problem(at, f"{len(values)} values", f"must hold at most {MAX_IN_VALUES} values",
                                code="filter")]
        found = [p for i, v in enumerate(values) if (p := scalar_problem(f"{at}[{i}]", v, "filter"))]
        return tuple(values), found
    if isinstance(cond, (list, tuple)):
        return (), [Problem(where, list(cond), "a list needs the $in operator: {\"$in\": [...]}", code="filter")]
    problem = scalar_problem(where, cond, "filter")
    return ((cond,), []) if problem is None else ((), [problem])
