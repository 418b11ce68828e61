"""Raising in Pulumi terms: :class:`ArgsError` is the error core's :class:`problems.ProblemsError` and a
``pulumi.RunError``, so under ``pulumi up`` (also in users' own programs) the engine prints the problem list without a
Python traceback. The problems themselves (``Problem``, ``missing``, ``did_you_mean``) live in the Pulumi-free
``problems`` package."""

from __future__ import annotations

import pulumi

from problems import ProblemsError


class ArgsError(ProblemsError, pulumi.RunError):
    """Raised with every problem found in one set of arguments or one config file.

    A ``pulumi.RunError``: under ``pulumi up`` the engine prints the message without a Python traceback. Still a
    ``ValueError`` for plain Python callers."""
