"""Helpers shared by the component tests in this folder."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from components.errors import ArgsError
from infra.plan import PlanResult, run_program


def errors_of(make_args: Callable[..., Any], **kw: Any) -> str:
    """The message of the ArgsError that building these args raises (the test fails if none is raised)."""
    with pytest.raises(ArgsError) as exc:
        make_args(**kw)
    return str(exc.value)


def plan_component(build: Callable[[], Any], **run_kw: Any) -> tuple[PlanResult, Any]:
    """Run ``build`` (which creates and returns one component) under the mocks; returns (plan, component)."""
    holder: dict[str, Any] = {}
    result = run_program(lambda: holder.setdefault("c", build()), **run_kw)
    return result, holder["c"]
