"""Which ``.Values`` paths a Helm chart's templates read, and which they render whole.

A small reader of Go-template actions, enough for how charts use values: ``.Values.a.b`` and ``$.Values.a.b``,
``(.Values.a).b``, ``with .Values.a`` / ``range $k, $v := .Values.a`` (the dot and the variables inside the block),
``$x := .Values.a``. A path is *rendered whole* when it is the argument of ``toYaml``/``toJson``/``toPrettyJson``/
``tpl``, the ``"value"`` of a ``dict`` handed to a render helper, or the argument of ``include`` (the helper takes
the whole map, as ``include "x.convertMapToCsv" .Values.defaultTags`` does): any key below it is used as written.
Ranging over a map reads every key (``a.*``). It under-reads rather than guesses: an action it cannot resolve adds
nothing, so a key that only such an action reads is reported and has to be looked at by hand.

``refresh.py`` runs it on a chart's templates when the chart is vendored and writes the result beside the values
(``template-values.json``); the tests read that file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ROOT = "<root>"
"""The dot is the chart's top-level context (so ``.Values.x`` is the values path ``x``)."""

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_PAREN_PATH = re.compile(r"\((\$?\.Values(?:\.[A-Za-z_][\w-]*)*)\)(?=\.)")
_REF = r"(?:(\$[A-Za-z_]\w*|\$)?((?:\.[A-Za-z_][\w-]*)+|\.(?![\w.]))|(\$[A-Za-z_]\w*))"
"""A reference: ``.a.b``, ``.``, ``$.a``, ``$v.a`` (var, chain) or a bare ``$v`` (third group)."""
_TOKEN = re.compile(r"(?<![\w)\]\"'$])" + _REF)
_ASSIGN = re.compile(r"^\s*(\$[A-Za-z_]\w*)\s*:?=\s*(.+)$", re.DOTALL)
_RANGE_VARS = re.compile(r"^\s*(?:(\$[A-Za-z_]\w*)\s*,\s*)?(\$[A-Za-z_]\w*)\s*:=\s*(.+)$", re.DOTALL)
_WHOLE_FUNCS = ("toYaml", "toJson", "toPrettyJson", "toRawJson", "tpl")
_WHOLE_ARG = re.compile(r"\b(?:" + "|".join(_WHOLE_FUNCS) + r")\s+\(?\s*" + _REF)
_DICT_VALUE = re.compile(r"\"value\"\s+" + _REF)
_INCLUDE_ARG = re.compile(r"\binclude\s+\"[^\"]+\"\s+\(?\s*" + _REF)
_BLOCKS = ("if", "with", "range", "define", "block")


def _join(base: str, rest: str) -> str:
    return f"{base}.{rest}" if base and rest else base or rest


class _Scope:
    def __init__(self, dot: tuple[str, ...] | str | None, variables: dict[str, tuple[str, ...] | str | None]):
        self.dot = dot
        """ROOT, the values paths the dot may be (``with .Values.a | default .Values.b``), or None (unknown)."""
        self.vars = dict(variables)


def _ref(m: re.Match) -> tuple[str | None, str]:
    """(var, chain) of a matched reference; a bare ``$v`` is ``($v, "")``."""
    return (m.group(m.re.groups), "") if m.group(m.re.groups) else (m.group(m.re.groups - 2), m.group(m.re.groups - 1))


def _resolve(var: str | None, chain: str, scope: _Scope) -> list[str]:
    """The values paths a token names: none when it is not a values path (or cannot be known)."""
    parts = [p for p in chain.split(".") if p]
    rest = ".".join(parts)
    if parts[:1] == ["Values"] and (var in (None, "$") or scope.vars.get(var) == ROOT):
        return [".".join(parts[1:])]  # `.Values` names the values wherever the root is the dot (or `$`)
    base = scope.dot if var is None else scope.vars.get(var)
    if base is None or base == ROOT:
        return []
    return [_join(b, rest) for b in base]


def _paths(expr: str, scope: _Scope) -> tuple[str, ...] | None:
    """Every values path an expression names (``a | default b`` names both), or None."""
    found = [p for t in _TOKEN.finditer(expr) for p in _resolve(*_ref(t), scope)]
    return tuple(dict.fromkeys(found)) or None


def extract(templates: Iterable[str]) -> tuple[set[str], set[str]]:
    """(paths read, paths rendered whole) over every template text; ``*`` stands for any map key."""
    read: set[str] = set()
    whole: set[str] = set()
    for text in templates:
        stack = [_Scope(ROOT, {"$": ROOT})]
        for m in _ACTION.finditer(text):
            action = m.group(1)
            if action.startswith("/*"):
                continue
            action = _PAREN_PATH.sub(r"\1", action)
            scope = stack[-1]
            word = action.split(None, 1)[0] if action.split() else ""
            rest = action[len(word):]
            for t in _TOKEN.finditer(action):
                read.update(p for p in _resolve(*_ref(t), scope) if p)
            for pattern in (_WHOLE_ARG, _DICT_VALUE, _INCLUDE_ARG):
                for t in pattern.finditer(action):
                    whole.update(p for p in _resolve(*_ref(t), scope) if p)
            if word == "end":
                if len(stack) > 1:
                    stack.pop()
                continue
            if word in _BLOCKS:
                new = _Scope(scope.dot, scope.vars)
                if word == "with":
                    new.dot = _paths(rest, scope)
                elif word == "range":
                    rv = _RANGE_VARS.match(rest)
                    targets = _paths(rv.group(3) if rv else rest, scope)
                    items = tuple(f"{t}.*" for t in targets or () if t) or None  # not over the whole values
                    read.update(items or ())
                    new.dot = items
                    if rv:
                        new.vars[rv.group(2)] = items
                elif word in ("define", "block"):
                    new = _Scope(None, {"$": None})
                stack.append(new)
                continue
            assign = _ASSIGN.match(action)
            if assign:
                scope.vars[assign.group(1)] = _paths(assign.group(2), scope)
    return read, whole
