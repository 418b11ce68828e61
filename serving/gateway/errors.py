"""Configuration problems reported all at once: key path, bad value, what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

_MISSING = object()


@dataclass(frozen=True)
class ConfigProblem:
    """One bad configuration value."""

    path: str
    value: Any
    expected: str

    def render(self) -> str:
        where = self.path or "(root)"
        if self.value is _MISSING:
            return f"{where}: {self.expected}"
        shown = repr(self.value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{where} = {shown}: {self.expected}"


def missing(path: str, expected: str) -> ConfigProblem:
    return ConfigProblem(path, _MISSING, expected)


class ConfigError(ValueError):
    """Every problem found in one gateway configuration; ``str()`` lists them one per line."""

    def __init__(self, problems: list[ConfigProblem], *, source: str = "gateway config"):
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        lines = [f"invalid {source}: {n} problem{'s' if n != 1 else ''}"]
        lines += [f"  - {p.render()}" for p in self.problems]
        super().__init__("\n".join(lines))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + str(item)
    return out


def problems_from_validation(exc: ValidationError) -> list[ConfigProblem]:
    """Turn pydantic's errors into problems with camelCase key paths (the models use camelCase aliases)."""
    out: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and (x.startswith("function-") or x.endswith("]"))))
        path = _path(loc)
        etype = err["type"]
        value = err.get("input", _MISSING)
        if etype == "extra_forbidden":
            out.append(missing(path, "unknown key"))
        elif etype == "missing":
            out.append(missing(path, "required"))
        elif etype == "literal_error":
            out.append(ConfigProblem(path, value, f"expected one of {err['ctx']['expected']}"))
        elif etype == "value_error":
            out.append(ConfigProblem(path, value, str(err["ctx"]["error"])))
        elif etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[etype]
            out.append(ConfigProblem(path, value, f"expected a number {op} {next(iter(err['ctx'].values()))}"))
        else:
            out.append(ConfigProblem(path, value, err["msg"][0].lower() + err["msg"][1:]))
    return out
