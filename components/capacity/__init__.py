"""Capacity and cost planning, pure (no Pulumi): what a serving target needs and costs at peak and at its minimum
(:mod:`.planner`), where to run a model (:mod:`.compare`), and the types both use (:mod:`.model`).

``from components.capacity import plan_target, TargetSpec, Demand``: names load lazily from the module that defines
them, so importing one module of this package (e.g. the pre-scaling schedule) does not load the others.
"""

from __future__ import annotations

from components._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    **{name: "components.capacity.model" for name in (
        "CapacityType", "Commitment", "Demand", "Finding", "Kind", "Option", "PoolMember", "Slo", "TargetReport",
        "TargetSpec", "Verdict", "VERDICT_SEVERITY")},
    **{name: "components.capacity.planner" for name in (
        "DEFAULT_HEADROOM", "DEFAULT_OVER_RATIO", "RULES", "plan_target", "sum_demands")},
    # not ``compare``: a name equal to its submodule's would be the module or the function by import order
    **{name: "components.capacity.compare" for name in ("MONTH_HOURS",)},
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
