"""Stack section: managed (placeholder until built). See docs/DEVELOPING.md for the section contract."""

from __future__ import annotations

from infra.sections._base import BuildContext

KEYS: dict[str, type] = {}
"""Top-level `genai-scale:<key>` config keys this section owns, each with its settings model."""


def build(ctx: BuildContext, cfg) -> None:
    """Create this section's components from the validated settings."""
    return None
