"""Capacity rules: the capacity plan's verdicts on a KEDA ScaledObject, as policy findings.

The stack program plans each serving target's capacity (demand from the tier's targets, a throughput profile, the SLO)
and records what it found on the target's ScaledObject, in the annotation ``genai-scale.io/capacity-plan``: a JSON object

- ``target`` (string): the serving target's name, used in messages;
- ``peakRps``, ``offPeakRps`` (number >= 0 or null): the demand at peak and off-peak, requests per second;
- ``replicaRps`` (number > 0 or null): what one replica serves within the SLO, requests per second;
- ``sloReachable`` (true, false or null): whether one replica meets the latency SLO at any concurrency;
- ``slo`` (string or null): the SLO as text (``"TTFT p95 <= 1000 ms"``);
- ``overRatio`` (number >= 1 or null): how far above off-peak demand the minimum capacity may go;
- ``availabilityReplicas`` (whole number >= 0, null or absent): replicas kept for availability whatever the demand (2
  in a tier that must survive an AZ outage); a minimum up to it is not over-provisioned.

``null`` means unknown (no demand target, no throughput profile, no SLO), and a rule that needs an unknown value
judges nothing. Other keys are ignored. The rules compare those facts with the resource's own ``spec.minReplicaCount``
and ``spec.maxReplicaCount`` (KEDA's defaults, 0 and 100, when unset), so an edit of the replica bounds after planning
is judged by what the ScaledObject really says:

- ``capacity-max-below-peak``: ``maxReplicaCount x replicaRps < peakRps``; the message gives the numbers and the
  replicas the peak needs, ``ceil(peakRps / replicaRps)``.
- ``capacity-slo-unreachable``: ``sloReachable`` is false; the message names the SLO.
- ``capacity-min-above-off-peak``: ``minReplicaCount x replicaRps > overRatio x offPeakRps`` and ``minReplicaCount``
  above the replicas off-peak demand needs (``ceil(offPeakRps / replicaRps)``, at least 1 when ``offPeakRps > 0``)
  and above ``availabilityReplicas``.

A ScaledObject without the annotation is not judged. A malformed annotation (not JSON, not an object, a key missing or
of the wrong kind) is a finding of each rule that reads the key, naming the annotation, the key, the value and what
was expected, never an exception.

Levels: the capacity plan is an estimate, so the rules register as advisory. Each tier sets the level of each rule
with a fact of its own (:data:`LEVEL_FACTS`, ``policy.capacity.<rule>`` in ``stacks/tiers/<tier>/tier.yaml``), which
``policies.pack.pack_config`` turns into the rule's ``enforcementLevel``; the shipped scale tier makes an unreachable
SLO mandatory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from pulumi_policy import EnforcementLevel, Severity

from policies._props import as_map, get, plain, to_int
from policies._rule import Rule, Subject, resource_policy
from policies.cost import SCALED_OBJECT
from policies.reliability import BOUNDS

ANNOTATION = "genai-scale.io/capacity-plan"
"""The ScaledObject annotation that carries the capacity plan's facts (JSON)."""

LEVEL_FACTS: dict[str, str] = {
    "capacity-max-below-peak": "policy.capacity.maxBelowPeak",
    "capacity-slo-unreachable": "policy.capacity.sloUnreachable",
    "capacity-min-above-off-peak": "policy.capacity.minAboveOffPeak",
}
"""Rule id -> the tier fact (``advisory`` | ``mandatory``) that sets its enforcement level."""

_MIN_PATH, _MAX_PATH, KEDA_MIN_DEFAULT, KEDA_MAX_DEFAULT = BOUNDS[SCALED_OBJECT]
_ROUND = 9
"""Decimal places a replica ratio is rounded to before ``ceil``, so 1.1 / 0.1 (11.000000000000002) needs 11."""


# --- reading the annotation -------------------------------------------------------------------------------------------

def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "target": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string (the serving target's name)"),
    "peakRps": (lambda v: v is None or (_number(v) and v >= 0), "a number >= 0 (requests/s at peak) or null"),
    "offPeakRps": (lambda v: v is None or (_number(v) and v >= 0), "a number >= 0 (requests/s off-peak) or null"),
    "replicaRps": (lambda v: v is None or (_number(v) and v > 0),
                   "a number > 0 (requests/s one replica serves) or null"),
    "sloReachable": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "slo": (lambda v: v is None or isinstance(v, str), "a string (the SLO, e.g. \"TTFT p95 <= 1000 ms\") or null"),
    "overRatio": (lambda v: v is None or (_number(v) and v >= 1), "a number >= 1 or null"),
    "availabilityReplicas": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                             "a whole number >= 0 (replicas kept for availability) or null"),
}
"""Every key the rules read: (valid, what is expected)."""
_OPTIONAL = frozenset({"availabilityReplicas"})
"""Keys an annotation may leave out (read as null)."""

_WHOLE = ""
"""The problem key of a problem with the whole annotation (not JSON, not an object)."""


@dataclass(frozen=True)
class CapacityFacts:
    """The annotation as read: the valid values by key (None: null, unknown) and the problems by key (each the text
    that follows the annotation's name in a message)."""

    values: Mapping[str, Any]
    problems: Mapping[str, str]

    def problems_for(self, keys: Iterable[str]) -> list[str]:
        wanted = [_WHOLE, *keys]
        return [self.problems[k] for k in wanted if k in self.problems]


_SHOWN_CHARS = 80
"""Longest value a message quotes (longer ones are cut, ending with ``...``)."""


def _shown(value: Any) -> str:
    try:
        text = json.dumps(plain(value))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "..."


def read_annotation(props: Any) -> CapacityFacts | None:
    """The capacity facts a resource's ``metadata.annotations`` carry; None when it has no capacity annotation."""
    annotations = as_map(get(props, "metadata.annotations"))
    if ANNOTATION not in list(annotations) or annotations[ANNOTATION] is None:
        return None
    raw = annotations[ANNOTATION]
    expected = "a JSON object with " + ", ".join(k for k in _KEYS if k not in _OPTIONAL)
    if not isinstance(raw, str):
        return CapacityFacts({}, {_WHOLE: f" = {_shown(raw)}: expected a string holding {expected}"})
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        reason = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return CapacityFacts({}, {_WHOLE: f" is not JSON ({reason}): expected {expected}"})
    if not isinstance(doc, dict):
        return CapacityFacts({}, {_WHOLE: f" = {_shown(doc)}: expected {expected}"})
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key, (valid, expectation) in _KEYS.items():
        if key not in doc and key in _OPTIONAL:
            values[key] = None
        elif key not in doc:
            problems[key] = f": key {key} is missing: expected {expectation}"
        elif not valid(doc[key]):
            problems[key] = f": {key} = {_shown(doc[key])}: expected {expectation}"
        else:
            values[key] = doc[key]
    return CapacityFacts(values, problems)


def _facts(s: Subject, keys: tuple[str, ...], judgement: str) -> tuple[CapacityFacts | None, list[str]]:
    """The annotation's facts and the malformed-annotation messages for ``keys`` (each ending with what is not
    judged); (None, []) without an annotation."""
    facts = read_annotation(s.props)
    if facts is None:
        return None, []
    return facts, [f"annotation {ANNOTATION}{p}; {judgement} not judged" for p in facts.problems_for(keys)]


# --- numbers ----------------------------------------------------------------------------------------------------------

def num(x: float) -> str:
    """A number as a message shows it: up to four significant digits, never in exponent form (40, 2.5, 0.0125)."""
    text = f"{x:.4g}"
    if "e" in text:
        text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text


def replicas_for(rps: float, replica_rps: float) -> int:
    """Replicas that carry ``rps`` when each serves ``replica_rps``: ``ceil(rps / replica_rps)``, at least 1 when
    ``rps > 0``."""
    if rps <= 0:
        return 0
    return max(1, math.ceil(round(rps / replica_rps, _ROUND)))


def _bound(props: Any, path: str, default: int) -> tuple[int, str]:
    """A replica bound of the ScaledObject and how a message names it (KEDA's default when unset)."""
    value = to_int(get(props, path))
    field = path.rsplit(".", 1)[-1]
    if value is None:
        return default, f"{field} unset (KEDA default {default})"
    return value, f"{field} {value}"


def _target(facts: CapacityFacts, s: Subject) -> str:
    return str(facts.values.get("target") or s.name)


# --- the rules --------------------------------------------------------------------------------------------------------

@resource_policy(Rule(
    id="capacity-max-below-peak",
    title="Maximum replicas carry the peak demand",
    description="A ScaledObject whose capacity annotation (genai-scale.io/capacity-plan) gives the peak demand and what one "
                "replica serves must allow enough replicas for the peak: maxReplicaCount x replicaRps >= peakRps.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Raise the service's autoscaling maxReplicas to the replicas the message names (and the node group's "
                "maxSize with it), serve more per replica (a larger accelerator, tensor parallelism, a quantised "
                "model), or lower the tier's peak target if it overstates demand.",
    fixed_level=EnforcementLevel.ADVISORY,
), types={SCALED_OBJECT})
def max_below_peak(s: Subject, cfg: dict) -> Iterable[str]:
    facts, malformed = _facts(s, ("target", "peakRps", "replicaRps"), "peak capacity")
    yield from malformed
    if facts is None or malformed:
        return
    peak, per_replica = facts.values["peakRps"], facts.values["replicaRps"]
    if peak is None or per_replica is None:
        return
    hi, shown = _bound(s.props, _MAX_PATH, KEDA_MAX_DEFAULT)
    need = replicas_for(peak, per_replica)
    if hi < need:
        yield (f"{_target(facts, s)}: {shown} x {num(per_replica)} req/s per replica = {num(hi * per_replica)} req/s "
               f"< peak {num(peak)} req/s: the peak needs {need} replicas (ceil({num(peak)} / {num(per_replica)})); "
               f"raise maxReplicaCount to {need}")


@resource_policy(Rule(
    id="capacity-slo-unreachable",
    title="The latency SLO is reachable",
    description="A ScaledObject whose capacity annotation (genai-scale.io/capacity-plan) says the latency SLO cannot be met "
                "(sloReachable false: no concurrency at which one replica meets it) fails: more replicas do not "
                "shorten the latency of one request.",
    concern="reliability", severity=Severity.HIGH,
    remediation="Serve the model faster per request (a faster accelerator, more tensor parallelism, a smaller or "
                "quantised model, shorter prompts), or relax the tier's latency SLO to what the hardware can meet.",
    fixed_level=EnforcementLevel.ADVISORY,
), types={SCALED_OBJECT})
def slo_unreachable(s: Subject, cfg: dict) -> Iterable[str]:
    facts, malformed = _facts(s, ("target", "sloReachable", "slo"), "the SLO")
    yield from malformed
    if facts is None or malformed or facts.values["sloReachable"] is not False:
        return
    slo = facts.values["slo"]
    named = f"the SLO ({slo})" if slo else "the SLO (not named in the annotation)"
    yield (f"{_target(facts, s)}: {named} cannot be met: the capacity plan finds no concurrency at which one replica "
           "meets it, and more replicas do not shorten the latency of a request")


@resource_policy(Rule(
    id="capacity-min-above-off-peak",
    title="Minimum replicas not far above off-peak demand",
    description="A ScaledObject whose capacity annotation (genai-scale.io/capacity-plan) gives the off-peak demand and what "
                "one replica serves must not keep more replicas warm than off-peak needs by more than overRatio: it "
                "fails when minReplicaCount x replicaRps > overRatio x offPeakRps and minReplicaCount exceeds "
                "ceil(offPeakRps / replicaRps) and the replicas kept for availability (availabilityReplicas).",
    concern="cost", severity=Severity.MEDIUM,
    remediation="Lower the service's autoscaling minReplicas to the replicas the message names (KEDA's queue and "
                "latency triggers add replicas when load rises; cron triggers can raise the floor ahead of a known "
                "peak).",
    fixed_level=EnforcementLevel.ADVISORY,
), types={SCALED_OBJECT})
def min_above_off_peak(s: Subject, cfg: dict) -> Iterable[str]:
    facts, malformed = _facts(s, ("target", "offPeakRps", "replicaRps", "overRatio", "availabilityReplicas"),
                              "off-peak capacity")
    yield from malformed
    if facts is None or malformed:
        return
    off_peak, per_replica, ratio = (facts.values[k] for k in ("offPeakRps", "replicaRps", "overRatio"))
    if off_peak is None or per_replica is None or ratio is None:
        return
    lo, shown = _bound(s.props, _MIN_PATH, KEDA_MIN_DEFAULT)
    need = replicas_for(off_peak, per_replica)
    keep = max(need, facts.values.get("availabilityReplicas") or 0) if lo else need
    warm, allowed = lo * per_replica, ratio * off_peak
    if warm > allowed and round(warm - allowed, _ROUND) > 0 and lo > keep:
        kept = f", {keep} kept for availability" if keep > need else ""
        yield (f"{_target(facts, s)}: {shown} x {num(per_replica)} req/s per replica = {num(warm)} req/s > "
               f"{num(ratio)} x off-peak {num(off_peak)} req/s = {num(allowed)} req/s: off-peak needs {need} "
               f"replica{'s' if need != 1 else ''} (ceil({num(off_peak)} / {num(per_replica)}){kept}); lower "
               f"minReplicaCount to {keep}")
