"""Validation errors that list every problem at once, each with its key path, the bad value and what was expected."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

import pulumi
from pydantic import ValidationError

_MISSING = object()


@dataclass(frozen=True)
class Problem:
    """One bad input: where it is, what it was, and what was expected instead."""

    path: str
    value: Any
    expected: str

    def render(self, prefix: str = "") -> str:
        where = f"{prefix}{self.path}" if self.path else prefix.rstrip(".") or "(root)"
        if self.value is _MISSING:
            return f"{where}: {self.expected}"
        return f"{where} = {_show(self.value)}: {self.expected}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ArgsError(pulumi.RunError, ValueError):
    """Raised with every problem found in one set of arguments or one config file.

    A ``pulumi.RunError``: under ``pulumi up`` the engine prints the message without a Python traceback, also in
    users' own programs that compose the components. Still a ``ValueError`` for plain Python callers."""

    def __init__(self, problems: Iterable[Problem], *, title: str = "invalid arguments", prefix: str = ""):
        self.problems = list(problems)
        self.title = title
        self.prefix = prefix
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"{self.title}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head] + [f"  - {p.render(self.prefix)}" for p in self.problems])

    def with_context(self, *, title: str | None = None, prefix: str | None = None) -> "ArgsError":
        return ArgsError(self.problems, title=title or self.title, prefix=self.prefix if prefix is None else prefix)


def missing(path: str, expected: str) -> Problem:
    """A problem for a required value that is absent."""
    return Problem(path, _MISSING, expected)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for a near-miss, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def problems_from_pydantic(exc: ValidationError, *, known_fields: dict[str, list[str]] | None = None) -> list[Problem]:
    """Convert a pydantic ValidationError into Problems (path, value, expected).

    ``known_fields`` maps a dotted parent path to the allowed keys there; it feeds "did you mean" on unknown keys.
    """
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        # tagged/union branches add the model name to loc; drop pydantic-internal segments
        loc = tuple(x for x in loc if not (isinstance(x, str) and ("[" in x and x.endswith("]"))))
        path = _loc_to_path(loc)
        value = err.get("input", _MISSING)
        etype = err["type"]
        if etype == "extra_forbidden":
            parent = _loc_to_path(loc[:-1])
            allowed = (known_fields or {}).get(parent, [])
            hint = did_you_mean(str(loc[-1]), allowed)
            expected = "unknown key" + hint
            if allowed and not hint:
                expected += f"; expected one of: {', '.join(sorted(allowed))}"
            out.append(Problem(path, _MISSING, expected))
        elif etype == "missing":
            out.append(missing(path, "required"))
        elif etype == "value_error":
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
            out.append(Problem(path, value, msg))
        else:
            out.append(Problem(path, value, _expected_text(err)))
    return out


def _expected_text(err: dict[str, Any]) -> str:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    if etype == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if etype in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[etype]
        bound = next(iter(ctx.values()), "")
        return f"expected a number {op} {bound}"
    if etype.endswith("_type") or etype.endswith("_parsing"):
        kind = etype.replace("_parsing", "").replace("_type", "")
        return f"expected {_article(kind)}"
    return err["msg"][0].lower() + err["msg"][1:]


def _article(kind: str) -> str:
    names = {"int": "an integer", "bool": "true or false", "string": "a string", "float": "a number",
             "dict": "a mapping", "list": "a list", "model": "a mapping"}
    return names.get(kind, kind)
