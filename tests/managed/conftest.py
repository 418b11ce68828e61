"""Pulumi's runtime (``infra.plan.run_program``) needs a current asyncio event loop; ``asyncio.run`` elsewhere in the
suite leaves none set, so each test here (and each module-scoped plan) starts with a usable one."""

import asyncio

import pytest


def ensure_event_loop() -> None:
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError("closed")
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture(autouse=True)
def _event_loop():
    ensure_event_loop()
    yield
