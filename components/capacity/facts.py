"""Capacity facts: the few numbers of a planned vLLM service that its ScaledObject carries (the
``genai-scale.io/capacity-plan`` annotation), so that the verdicts can be judged again from the resource alone: by
the policy pack and by ``genai-scale capacity --program`` for a program you wrote.

Pass ``capacity=capacity_facts(report)`` to :class:`components.serving.vllm.args.VllmServiceArgs` after planning the
service with :func:`components.capacity.plan_target`. Keys (camelCase, JSON): ``target``, ``peakRps``,
``offPeakRps``, ``replicaRps`` (requests/s one replica carries at the SLO-bounded operating point, with headroom;
null when unknown), ``sloReachable`` (null when unknown), ``slo`` (text), ``overRatio``, ``availabilityReplicas``
(a minimum up to it is kept for availability, never over-provisioned).
"""

from __future__ import annotations

import math
from typing import Any

from components.capacity.model import Finding, TargetReport
from components.capacity.planner import DEFAULT_OVER_RATIO


def capacity_facts(report: TargetReport, *, over_ratio: float | None = None) -> dict[str, Any]:
    """The facts of a planned vLLM target (its report must carry a demand)."""
    d = report.demand
    if d is None:
        raise ValueError(f"target {report.target.name!r} has no demand: nothing to state")
    rr = report.replica_requests_per_second
    return {"target": report.target.name, "peakRps": round(d.peak_requests_per_second, 4),
            "offPeakRps": round(d.off_peak_requests_per_second, 4),
            "replicaRps": None if rr is None else round(rr, 4), "sloReachable": report.slo_reachable,
            "slo": d.slo.describe(), "overRatio": over_ratio if over_ratio is not None else DEFAULT_OVER_RATIO,
            "availabilityReplicas": report.target.availability_replicas}


def _num(facts: dict[str, Any], key: str) -> float | None:
    v = facts.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def judge(facts: dict[str, Any]) -> list[Finding]:
    """The verdicts that follow from the facts and the replica bounds (``minReplicas``, ``maxReplicas`` added from the
    ScaledObject's spec): max below peak, SLO unreachable, minimum above off-peak demand; ``fine`` when none."""
    if "error" in facts:
        return [Finding(verdict="unknown", rule="facts-malformed", number=str(facts["error"]), advice="")]
    bad = [f"{k} = {facts[k]!r}" for k in ("peakRps", "offPeakRps", "replicaRps", "overRatio", "availabilityReplicas")
           if facts.get(k) is not None and _num(facts, k) is None]
    if bad:
        return [Finding(verdict="unknown", rule="facts-malformed", number="not a number: " + ", ".join(bad),
                        advice="state the facts with components.capacity.facts.capacity_facts")]
    out: list[Finding] = []
    peak, off, rr = _num(facts, "peakRps"), _num(facts, "offPeakRps"), _num(facts, "replicaRps")
    lo, hi = _num(facts, "minReplicas"), _num(facts, "maxReplicas")
    ratio = _num(facts, "overRatio") or DEFAULT_OVER_RATIO
    if facts.get("sloReachable") is False:
        out.append(Finding(verdict="under-provisioned", rule="slo-unreachable",
                           number=f"no concurrency meets {facts.get('slo')} on one replica",
                           advice="a larger accelerator, more tensor parallelism, or a looser SLO"))
    if rr and peak is not None and hi is not None and hi * rr < peak:
        need = math.ceil(peak / rr)
        out.append(Finding(verdict="under-provisioned", rule="max-below-peak",
                           number=f"max {hi:g} replicas x {rr:g} req/s = {hi * rr:g} req/s < peak {peak:g} req/s",
                           advice=f"raise maxReplicas to {need}"))
    if rr and off is not None and lo is not None:
        keep = max(math.ceil(off / rr) if off > 0 else 0, int(_num(facts, "availabilityReplicas") or 0) if lo else 0)
        if lo * rr > ratio * off and lo > keep:
            out.append(Finding(verdict="over-provisioned", rule="min-above-off-peak",
                               number=f"min {lo:g} replicas x {rr:g} req/s = {lo * rr:g} req/s > {ratio:g} x "
                                      f"off-peak {off:g} req/s",
                               advice=f"lower minReplicas to {keep}"))
    return out or [Finding(verdict="fine", rule="fine", number="within bounds", advice="")]
