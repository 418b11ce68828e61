"""GPU allocation policies of a model pool and the seed's decision matrix that recommends one. Pure: no Pulumi.

A pool's ``policy`` is text (``dedicated``, ``mig:<profile>``, ``time-slicing:<n>``, ``dynamic``) parsed by
:func:`parse_policy` into a :class:`Policy`. :func:`recommend` maps a workload of seed 003 §4.4's "GPU allocation
decision matrix" to the policy it recommends, with the seed's rationale as the reason:

=========================  ==========================  =============================================================
workload                   seed's strategy             policy here
=========================  ==========================  =============================================================
single-large-model         Dedicated, multi-GPU        ``dedicated``
many-small-models          MIG or time-sharing         ``mig:<profile>`` (or ``time-slicing:<n>`` on non-MIG GPUs)
variable-traffic           Dynamic (ModelMesh)         ``dynamic`` (vLLM sleep mode + multi-LoRA, not ModelMesh)
latency-critical           Dedicated (no contention)   ``dedicated``
cost-optimised             Sharing + time-slicing      ``time-slicing:<n>`` (or ``dynamic``, which time-slices too)
dev-test                   Time-sharing                ``time-slicing:<n>``
=========================  ==========================  =============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from problems import Problem

PolicyKind = Literal["dedicated", "mig", "time-slicing", "dynamic"]
POLICY_KINDS: tuple[PolicyKind, ...] = ("dedicated", "mig", "time-slicing", "dynamic")

Workload = Literal["single-large-model", "many-small-models", "variable-traffic", "latency-critical",
                   "cost-optimised", "dev-test"]
WORKLOADS: tuple[Workload, ...] = ("single-large-model", "many-small-models", "variable-traffic", "latency-critical",
                                   "cost-optimised", "dev-test")
"""The scenarios of seed 003 §4.4's decision matrix, in its order."""

TIME_SLICING_MIN, TIME_SLICING_MAX = 2, 64
"""Bounds of ``time-slicing:<n>``: those of a node group's ``timeSlicingReplicas`` (one share is no sharing)."""

POLICY_FORMS = "dedicated, mig:<profile> (e.g. mig:all-1g.10gb), time-slicing:<n> (e.g. time-slicing:4) or dynamic"
"""The accepted spellings, as error messages name them."""

_MIG_PROFILE = re.compile(r"^all-(\d+g\.\d+gb|balanced)$")


@dataclass(frozen=True)
class Policy:
    """A parsed pool policy."""

    kind: PolicyKind
    """dedicated, mig, time-slicing or dynamic."""
    mig_profile: str | None = None
    """With ``mig``: the GPU operator's MIG configuration (``nvidia.com/mig.config``), e.g. ``all-1g.10gb``."""
    slices: int | None = None
    """With ``time-slicing``: how many times the device plugin advertises each GPU."""

    def __str__(self) -> str:
        if self.kind == "mig":
            return f"mig:{self.mig_profile}"
        if self.kind == "time-slicing":
            return f"time-slicing:{self.slices}"
        return self.kind


class PolicyError(ValueError):
    """A policy text that does not parse; ``expected`` says what would."""

    def __init__(self, text: object, expected: str) -> None:
        super().__init__(f"policy {text!r}: {expected}")
        self.text = text
        self.expected = expected

    def problem(self, path: str = "policy") -> Problem:
        """The error as a :class:`problems.Problem` at ``path``."""
        return Problem(path, self.text, self.expected)


def parse_policy(text: str) -> Policy:
    """``"mig:all-1g.10gb"`` -> ``Policy("mig", mig_profile="all-1g.10gb")``; raise :class:`PolicyError` otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(text, f"one of {POLICY_FORMS}")
    kind, sep, param = text.strip().partition(":")
    if kind in ("dedicated", "dynamic"):
        if sep:
            raise PolicyError(text, f"{kind} takes no parameter (write {kind!r})")
        return Policy(kind)  # type: ignore[arg-type]
    if kind == "mig":
        if not param:
            raise PolicyError(text, "mig needs the GPU operator's MIG configuration, e.g. mig:all-1g.10gb or "
                                    "mig:all-balanced")
        if not _MIG_PROFILE.match(param):
            raise PolicyError(text, "a MIG configuration named all-<g>g.<mem>gb or all-balanced (the GPU "
                                    "operator's default mig-parted names), e.g. mig:all-3g.40gb")
        return Policy("mig", mig_profile=param)
    if kind == "time-slicing":
        if not param:
            raise PolicyError(text, "time-slicing needs the shares per GPU, e.g. time-slicing:4")
        if not param.isdigit():
            raise PolicyError(text, f"time-slicing:<n> with n a whole number from {TIME_SLICING_MIN} to "
                                    f"{TIME_SLICING_MAX}")
        n = int(param)
        if not TIME_SLICING_MIN <= n <= TIME_SLICING_MAX:
            raise PolicyError(text, f"time-slicing:<n> with n from {TIME_SLICING_MIN} to {TIME_SLICING_MAX} "
                                    f"(the node group's timeSlicingReplicas bounds), not {n}")
        return Policy("time-slicing", slices=n)
    raise PolicyError(text, f"one of {POLICY_FORMS}")


def policy_problems(text: object, path: str = "policy") -> list[Problem]:
    """:func:`parse_policy`'s error as a problem list (empty when ``text`` parses)."""
    try:
        parse_policy(text)  # type: ignore[arg-type]
    except PolicyError as exc:
        return [exc.problem(path)]
    return []


@dataclass(frozen=True)
class Recommendation:
    """The policy seed 003 §4.4 recommends for a workload, and why."""

    workload: Workload
    policy: str
    """The recommended policy, as config spells it (``<profile>``/``<n>`` are the user's to pick)."""
    reason: str
    """One sentence citing the seed's rationale."""
    kinds: tuple[PolicyKind, ...]
    """Policy kinds that follow the recommendation (a chosen policy of another kind earns a warning)."""

    def accepts(self, policy: Policy | str) -> bool:
        """Whether ``policy`` follows this recommendation."""
        kind = policy.kind if isinstance(policy, Policy) else parse_policy(policy).kind
        return kind in self.kinds


_MATRIX: dict[str, tuple[str, tuple[PolicyKind, ...], str]] = {
    "single-large-model": (
        "dedicated", ("dedicated",),
        "seed 003 §4.4 gives a single large model dedicated, multi-GPU allocation: it needs whole GPUs (tensor "
        "parallelism) and sharing them with other models would leave it no room and add interference."),
    "many-small-models": (
        "mig:<profile> or time-slicing:<n>", ("mig", "time-slicing"),
        "seed 003 §4.4 gives many small models MIG or time-sharing: MIG splits an A100/H100 into isolated slices "
        "with their own memory and compute (best for steady traffic), time-slicing shares any GPU without memory "
        "isolation, so several small models fill one GPU instead of wasting most of several."),
    "variable-traffic": (
        "dynamic", ("dynamic",),
        "seed 003 §4.4 gives variable traffic per model dynamic allocation (models loaded and unloaded on demand, "
        "LRU eviction when GPU memory is full, hot/warm/cold states), which the dynamic pool builds on vLLM sleep "
        "mode and runtime LoRA loading since ModelMesh, the seed's example, is archived."),
    "latency-critical": (
        "dedicated", ("dedicated",),
        "seed 003 §4.4 gives latency-critical models dedicated GPUs because there is no contention: nothing else "
        "competes for the GPU's memory or compute, and nothing has to wake or load before a request is served."),
    "cost-optimised": (
        "time-slicing:<n>", ("time-slicing", "dynamic"),
        "seed 003 §4.4 gives cost-optimised serving sharing plus time-slicing: several engines share each GPU so "
        "fewer GPUs are paid for (the dynamic pool, which time-slices its GPUs and sleeps idle models, also fits)."),
    "dev-test": (
        "time-slicing:<n>", ("time-slicing",),
        "seed 003 §4.4 gives dev/test time-sharing: a shared GPU is cheapest and the missing memory and fault "
        "isolation does not matter outside production."),
}


def recommend(workload: str) -> Recommendation:
    """The decision matrix's policy for ``workload`` (one of :data:`WORKLOADS`); ValueError for another name."""
    if workload not in _MATRIX:
        raise ValueError(f"workload {workload!r}: one of {', '.join(WORKLOADS)}")
    policy, kinds, reason = _MATRIX[workload]
    return Recommendation(workload, policy, reason, kinds)  # type: ignore[arg-type]


def mismatch_warning(workload: str, policy: Policy | str) -> str | None:
    """A warning when ``policy`` differs from what :func:`recommend` says for ``workload``; None when it follows."""
    rec = recommend(workload)
    chosen = policy if isinstance(policy, Policy) else parse_policy(policy)
    if rec.accepts(chosen):
        return None
    return (f"policy {chosen} differs from the recommendation for workload {workload} ({rec.policy}): "
            f"{rec.reason}")
