"""The genai-scale Pulumi program: validated stack settings -> every section, in order.

`pulumi up` runs :func:`main` (from ``infra/__main__.py``); `genai-scale plan` runs :func:`plan_stack`, which executes
the very same :func:`build_stack` under the package's mocks.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.sections import SECTIONS
from infra.sections.base import BuildContext

PROJECT = "genai-scale"


def cost_tags(cfg, stack: str) -> dict[str, str]:
    """Cost-allocation tags on every billable resource: team (config), environment (stack), tier."""
    return {**dict(cfg.tags), "environment": stack, "tier": cfg.tier, "project": PROJECT, "managed-by": "pulumi"}


def build_stack(cfg, stack: str) -> BuildContext:
    """Create every resource of the stack from validated settings."""
    ctx = BuildContext(stack=stack, tier=cfg.tier, region=cfg.region, tags=cost_tags(cfg, stack),
                       targets=cfg.targets)
    pulumi.export("tier", cfg.tier)
    try:
        for section in SECTIONS:
            section.build(ctx, cfg)
    except BaseException:
        ctx.abandon_deferred()  # else the engine waits on them forever and the error never shows
        raise
    return ctx


def main() -> None:
    """Entry point under the Pulumi engine (`pulumi up` / `pulumi preview`)."""
    from infra.config import ConfigError, build_settings, raw_from_runtime

    stack = pulumi.get_stack()
    try:
        cfg = build_settings(raw_from_runtime(), source=f"stacks/Pulumi.{stack}.yaml")
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None
    build_stack(cfg, stack)


def plan_stack(*, stack: str | None = None, config_file: str | None = None) -> tuple[Any, Any]:
    """Run the program offline under mocks. Returns (PlanResult, settings); raises ConfigError before creating anything."""
    from infra.config import load
    from infra.plan import run_program

    name, raw, cfg = load(stack=stack, config_file=config_file)
    result = run_program(lambda: build_stack(cfg, name), project=PROJECT, stack=name, config=raw,
                         region=cfg.region)
    return result, cfg
