"""Shared base for component args: typed, frozen, unknown keys rejected, every problem reported at once."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from components.errors import ArgsError

from problems import Problem, from_pydantic as problems_from_pydantic

_PARTIAL: ContextVar[bool] = ContextVar("genai_scale_partial_args", default=False)

PulumiInput = Annotated[Any, "pulumi.Input"]
"""A value or a ``pulumi.Output`` of it (resolved by Pulumi, not validated here)."""

TYPE_PREFIX = "genai-scale:index:"


class ArgsModel(BaseModel):
    """Base of every component's args: keyword-only, frozen, unknown fields rejected.

    Construction errors are raised as one :class:`ArgsError` listing every bad field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              use_attribute_docstrings=True, validate_default=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            fields = {"": list(type(self).model_fields)}
            found = problems_from_pydantic(exc, known_fields=fields)
            found += type(self)._rules_without(data, exc)
            raise ArgsError(found, title=f"invalid {type(self).__name__}") from None
        found = [] if _PARTIAL.get() else self.problems()
        if found:
            raise ArgsError(found, title=f"invalid {type(self).__name__}")

    def problems(self) -> list[Problem]:
        """Cross-field rules. Subclasses return every violated rule (field path, value, expectation)."""
        return []

    @classmethod
    def _rules_without(cls, data: dict[str, Any], exc: ValidationError) -> list[Problem]:
        """The cross-field rules over the fields that did validate (bad ones at their defaults), so one bad field
        never hides another rule. Rules about a bad field, or that read one (``Problem.related``), are left out: they
        would judge its default."""
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        token = _PARTIAL.set(True)
        try:
            partial = cls(**{k: v for k, v in data.items() if k not in bad})
            rules = partial.problems()
        except Exception:  # a required field was bad, or a rule needs it: nothing more to say safely
            return []
        finally:
            _PARTIAL.reset(token)
        return [p for p in rules if not any(p.concerns(b) for b in bad)]


def merge_tags(*maps: dict[str, str] | None) -> dict[str, str]:
    """Later maps win; None is skipped."""
    out: dict[str, str] = {}
    for m in maps:
        if m:
            out.update(m)
    return out
