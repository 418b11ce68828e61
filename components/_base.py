"""Shared base for component args: typed, frozen, unknown keys rejected, every problem reported at once."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from components._errors import ArgsError, Problem, problems_from_pydantic

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
            raise ArgsError(problems_from_pydantic(exc, known_fields=fields),
                            title=f"invalid {type(self).__name__}") from None
        found = self.problems()
        if found:
            raise ArgsError(found, title=f"invalid {type(self).__name__}")

    def problems(self) -> list[Problem]:
        """Cross-field rules. Subclasses return every violated rule (field path, value, expectation)."""
        return []


def merge_tags(*maps: dict[str, str] | None) -> dict[str, str]:
    """Later maps win; None is skipped."""
    out: dict[str, str] = {}
    for m in maps:
        if m:
            out.update(m)
    return out
