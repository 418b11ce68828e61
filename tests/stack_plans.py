"""The shipped stacks' offline plans, computed once per test session (each takes seconds) and shared read-only."""

from __future__ import annotations

from functools import lru_cache

from infra.program import plan_stack


@lru_cache(maxsize=None)
def planned(stack: str):
    """(PlanResult, settings) of ``stacks/Pulumi.<stack>.yaml``. Do not mutate the result."""
    return plan_stack(stack=stack)
