"""Helpers shared across the test folders (the tests mirror the source tree; what several folders need lives here)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root."""
