"""Pure helpers for stable, key-derived child names and the aliases that carry live stacks over from positional ones.

A child named by its position in a list (``<name>-<i>``) changes name when an earlier entry is added or removed, and
Pulumi then replaces it: a create under the new name and a delete under the old one. For a resource that writes one
setting (an ASG tag, a security-group rule, a policy attachment) the delete can remove what the new resource just wrote.
Children are therefore named after what they hold (a tag key, a CIDR, a policy name), and each renamed child carries a
``pulumi.Alias`` to its old positional name so a stack created before the rename updates in place.
"""

from __future__ import annotations

import re

import pulumi

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def name_part(text: str) -> str:
    """``text`` as part of a logical name: every character other than letters, digits, ``.``, ``_`` and ``-`` becomes
    ``-`` (``10.0.0.0/19`` -> ``10.0.0.0-19``, ``nvidia.com/gpu`` -> ``nvidia.com-gpu``). Such names are also valid
    prefixes of the physical names Pulumi derives from logical names."""
    return _UNSAFE.sub("-", text)


def renamed(parent: pulumi.Resource, old_name: str | None, new_name: str,
            **options) -> pulumi.ResourceOptions:
    """Options for a child of ``parent`` that was called ``old_name`` before it got its key-derived ``new_name``:
    the alias lets a stack created before the rename update the child in place instead of replacing it."""
    aliases = [pulumi.Alias(name=old_name)] if old_name is not None and old_name != new_name else None
    return pulumi.ResourceOptions(parent=parent, aliases=aliases, **options)


def duplicates(names: list[str]) -> dict[str, list[int]]:
    """Names that occur more than once, with the positions they occur at."""
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    return {n: idx for n, idx in seen.items() if len(idx) > 1}
