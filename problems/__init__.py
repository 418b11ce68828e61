"""The error core: a problem is a key path, the bad value and what was expected; an error lists every problem at once.

Pulumi-free and dependency-free (pydantic is imported only by :func:`from_pydantic`), so the components, the stack
program, the policy pack and the gateway image all share it. Raising in Pulumi terms stays in ``components.errors``.

A problem may name the other settings its rule read (``related``): a caller that already reported one of those values
as bad drops the rule by looking at these structured paths, never at the message text.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable


class _Missing:
    """The value of a problem about something absent (rendered without ``= value``)."""

    _instance: "_Missing | None" = None

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Sentinel value of a problem about an absent key."""


@dataclass(frozen=True)
class Problem:
    """One bad input: where it is, what it was, and what was expected instead."""

    path: str
    """Dotted key path (``nodeGroups.h100.minSize``, ``routes[2].targets``); empty for the whole input."""
    value: Any
    """The bad value, or :data:`MISSING`."""
    expected: str
    """What was expected instead, in the reader's terms."""
    related: tuple[str, ...] = ()
    """Other paths (same root as ``path``) that the rule read, e.g. ``("max_size",)`` for ``min_size <= max_size``."""
    code: str = ""
    """What kind of problem, for callers that act on it: ``missing`` (a required key is absent), ``unknown_key``,
    ``invalid`` (a bad value of a field), ``entry`` (a rule's finding about the map entry ``path`` names as a whole),
    or empty (a rule's own finding). Never rendered."""

    def render(self, prefix: str = "") -> str:
        where = f"{prefix}{self.path}" if self.path else prefix.rstrip(".:") or "(root)"
        if self.value is MISSING:
            return f"{where}: {self.expected}"
        return f"{where} = {show(self.value)}: {self.expected}"

    def under(self, prefix: str) -> "Problem":
        """The same problem one level down, with ``prefix`` in front of its path and related paths."""
        def join(p: str) -> str:
            if not p:
                return prefix
            return f"{prefix}{p}" if p.startswith("[") else f"{prefix}.{p}"
        return Problem(join(self.path), self.value, self.expected, tuple(join(r) for r in self.related), self.code)

    def concerns(self, path: str) -> bool:
        """True when this problem is about ``path`` or something below it, or its rule read it."""
        return any(is_within(p, path) for p in (self.path, *self.related))


def is_within(path: str, ancestor: str) -> bool:
    """``a.b[0].c`` is within ``a.b`` and ``a.b[0]``; ``a.bc`` is not within ``a.b``."""
    return path == ancestor or path.startswith(ancestor + ".") or path.startswith(ancestor + "[")


def missing(path: str, expected: str, related: Iterable[str] = (), *, code: str = "missing") -> Problem:
    """A problem for a required value that is absent."""
    return Problem(path, MISSING, expected, tuple(related), code)


def show(value: Any) -> str:
    """A value as the message shows it: repr, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def render(problems: Iterable[Problem], *, title: str, prefix: str = "") -> str:
    """``<title>: N problems`` and one ``  - path = value: expected`` line each."""
    found = list(problems)
    n = len(found)
    head = f"{title}: {n} problem{'s' if n != 1 else ''}"
    return "\n".join([head] + [f"  - {p.render(prefix)}" for p in found])


class ProblemsError(ValueError):
    """Every problem found in one input; ``str()`` is the whole message for the user."""

    def __init__(self, problems: Iterable[Problem], *, title: str = "invalid arguments", prefix: str = ""):
        self.problems = list(problems)
        self.title = title
        self.prefix = prefix
        super().__init__(self.render())

    def render(self) -> str:
        return render(self.problems, title=self.title, prefix=self.prefix)

    def with_context(self, *, title: str | None = None, prefix: str | None = None) -> "ProblemsError":
        return type(self)(self.problems, title=title or self.title, prefix=self.prefix if prefix is None else prefix)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``' (did you mean "x"?)'`` for a near miss, else ``''``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def unknown_key(path: str, allowed: Iterable[str]) -> Problem:
    """An unknown key, with "did you mean" or the allowed keys."""
    allowed = sorted(allowed)
    leaf = path.rsplit(".", 1)[-1]
    hint = did_you_mean(leaf, allowed)
    text = "unknown key" + hint
    if allowed and not hint:
        text += f"; expected one of: {', '.join(allowed)}"
    return missing(path, text, code="unknown_key")


def path_of(loc: Iterable[Any]) -> str:
    """A pydantic location as a key path: ``("routes", 2, "targets")`` -> ``routes[2].targets``."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def clean_loc(loc: Iterable[Any]) -> tuple[Any, ...]:
    """A pydantic location without its internal segments (validator functions, union branch tags)."""
    return tuple(x for x in loc if not (isinstance(x, str) and (x.startswith("function-")
                                                                 or ("[" in x and x.endswith("]")))))


def from_pydantic(exc: Any, *, known_fields: dict[str, list[str]] | None = None) -> list[Problem]:
    """The problems of a ``pydantic.ValidationError`` (path, value, expected).

    ``known_fields`` maps a dotted parent path to the keys allowed there; it feeds "did you mean" on unknown keys.
    """
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = clean_loc(err["loc"])
        path = path_of(loc)
        value = err.get("input", MISSING)
        etype = err["type"]
        if etype == "extra_forbidden":
            allowed = (known_fields or {}).get(path_of(loc[:-1]))
            out.append(unknown_key(path, allowed) if allowed else missing(path, "unknown key", code="unknown_key"))
        elif etype == "missing":
            out.append(missing(path, "required"))
        elif etype == "value_error":
            out.append(Problem(path, value, str((err.get("ctx") or {}).get("error", err["msg"])), code="invalid"))
        else:
            out.append(Problem(path, value, expected_text(err), code="invalid"))
    return out


_OPS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_KINDS = {"int": "an integer", "bool": "true or false", "string": "a string", "float": "a number", "dict": "a mapping",
          "list": "a list", "model": "a mapping"}


def expected_text(err: dict[str, Any]) -> str:
    """What a pydantic error expected, in plain words."""
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if etype in _OPS:
        return f"expected a number {_OPS[etype]} {next(iter(ctx.values()), '')}"
    if etype.endswith("_type") or etype.endswith("_parsing"):
        kind = etype.replace("_parsing", "").replace("_type", "")
        return f"expected {_KINDS.get(kind, kind)}"
    msg = err["msg"]
    return msg[0].lower() + msg[1:]
