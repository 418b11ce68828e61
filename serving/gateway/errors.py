"""Gateway configuration problems, reported all at once (key path, bad value, what was expected), on the error core
shared with the IaC code (the Pulumi-free ``problems`` package, which the gateway image includes)."""

from __future__ import annotations

from typing import Any

from problems import Problem, ProblemsError, clean_loc, from_pydantic, missing, path_of

__all__ = ["ConfigError", "Problem", "missing", "problems_from_validation"]


class ConfigError(ProblemsError):
    """Every problem found in one gateway configuration; ``str()`` lists them one per line."""

    def __init__(self, problems: list[Problem], *, source: str = "gateway config", title: str | None = None,
                 prefix: str = ""):
        self.source = source
        super().__init__(problems, title=title or f"invalid {source}", prefix=prefix)


def problems_from_validation(exc: Any) -> list[Problem]:
    """pydantic's errors as problems with camelCase key paths (the models use camelCase aliases)."""
    return from_pydantic(exc)


def loc_path(loc: tuple[Any, ...]) -> str:
    """A pydantic location as a key path, without validator and union-branch segments."""
    return path_of(clean_loc(loc))
