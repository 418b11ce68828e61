"""Which accelerator an instance type carries, and what its vendor's nodes and pods look like.

Vendor facts (device resources, taints, node labels, accepted AMI types, instance families) come from the project's
vendor registry, ``components.catalog.vendors``. A pack published on its own does not ship ``components``; it then
reads ``vendors.json`` beside this file, the same records exported as JSON (``python -m components.catalog.vendors >
policies/vendors.json``; tests/policies/test_facts.py fails when the two differ). Either way the rules see the same
plain data, so they behave identically in and out of the repository.

The project's accelerator catalogue (``components.catalog.accelerators``) gives per-size GPU counts when the pack
runs inside the repository. Published alone, the pack knows an instance's vendor from its family (the registry's
instance families) but not the per-size count, so count-dependent checks become "not applicable" there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

VENDOR_LABEL = "genai-scale/accelerator-vendor"
"""Node label with the vendor's name (``components.catalog.vendors.VENDOR_LABEL``; a test keeps them equal)."""
ACCELERATOR_PLACEHOLDER = "{accelerator}"
"""The accelerator model in a node-label value template (``components.catalog.vendors.ACCELERATOR_PLACEHOLDER``)."""
SNAPSHOT = Path(__file__).resolve().parent / "vendors.json"

H100_CLASS_FAMILIES: frozenset[str] = frozenset({"p5", "p5e", "p5en"})
"""H100 (p5) and H200 (p5e, p5en): the most expensive on-demand GPU capacity most accounts can launch."""

NEURON_CORES_PER_DEVICE: dict[str, int] = {"inf1": 4, "inf2": 2, "trn1": 2, "trn1n": 2, "trn2": 8}
"""NeuronCores per Neuron device (AWS Neuron docs: Inferentia2 and Trainium have 2 NeuronCore-v2 per chip,
Trainium2 has 8 NeuronCore-v3, Inferentia1 has 4 NeuronCore-v1)."""


def _vendor_data() -> dict[str, dict[str, Any]]:
    try:
        from components.catalog.vendors import export  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - the pack may run without the repository (published pack)
        return json.loads(SNAPSHOT.read_text())
    return export()


VENDORS: dict[str, SimpleNamespace] = {name: SimpleNamespace(**facts) for name, facts in _vendor_data().items()}
"""Every vendor's record as plain data (lists for sets), by name."""


def pod_resources(vendor: SimpleNamespace) -> tuple[str, ...]:
    """Extended resources that give a pod the vendor's devices: device, core (if any), aliases."""
    return (vendor.device_resource, *([vendor.core_resource] if vendor.core_resource else []),
            *vendor.resource_aliases)


ACCELERATOR_RESOURCES: tuple[str, ...] = tuple(r for v in VENDORS.values() for r in pod_resources(v))
"""Every extended resource that gives a pod an accelerator, of every vendor."""


def accepted_ami_types(vendor: SimpleNamespace, arm: bool) -> frozenset[str]:
    """EKS AMI types that carry the vendor's driver for the instance's architecture."""
    return frozenset(vendor.accepted_ami_types_arm if arm else vendor.accepted_ami_types_x86)


def _label_matches(template: str, value: Any) -> bool:
    if ACCELERATOR_PLACEHOLDER not in template:
        return str(value) == template
    prefix, suffix = template.split(ACCELERATOR_PLACEHOLDER, 1)
    text = str(value)
    return text.startswith(prefix) and text.endswith(suffix) and len(text) > len(prefix) + len(suffix)


def vendor_of_label(key: str, value: Any) -> str | None:
    """The vendor a node label (``key=value``) marks: ours, a device-plugin / autoscaler label, or a discovery label."""
    if key == VENDOR_LABEL:
        return str(value) if str(value) in VENDORS else None
    for name, v in VENDORS.items():
        template = {**v.node_labels, **v.discovery_labels}.get(key)
        if template is not None and _label_matches(template, value):
            return name
    return None


def vendor_label_keys() -> frozenset[str]:
    """Every node-label key that can mark a vendor's nodes."""
    return frozenset({VENDOR_LABEL, *(k for v in VENDORS.values() for k in (*v.node_labels, *v.discovery_labels))})


@dataclass(frozen=True)
class Accel:
    instance_type: str
    family: str
    vendor: str
    arm: bool
    accelerator: str | None = None
    count: int | None = None
    """GPUs or Neuron devices per instance (None when only the family table is available)."""
    neuron_cores: int | None = None

    @property
    def facts(self) -> SimpleNamespace:
        """The vendor's record (:data:`VENDORS`)."""
        return VENDORS[self.vendor]

    @property
    def k8s_resource(self) -> str:
        return self.facts.device_resource

    @property
    def h100_class(self) -> bool:
        return self.family in H100_CLASS_FAMILIES or (self.accelerator or "").upper() in ("H100", "H200")


def family_of(instance_type: str) -> str:
    it = instance_type.strip().lower()
    if it.startswith("ml."):
        it = it[3:]
    return it.split(".", 1)[0]


def _family_vendor(family: str) -> tuple[str, bool] | None:
    """(vendor, arm) of an instance family, from the registry's instance families."""
    for name, v in VENDORS.items():
        if family in v.instance_families_x86:
            return name, False
        if family in v.instance_families_arm:
            return name, True
    return None


def _catalog_lookup(instance_type: str):
    try:
        from components.catalog.accelerators import lookup  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - the pack may run without the repository (published pack)
        return None
    try:
        return lookup(instance_type)
    except Exception:  # noqa: BLE001
        return None


def accelerator_for(instance_type: str | None) -> Accel | None:
    """The accelerator of an EC2 (or ``ml.``-prefixed SageMaker) instance type; None for CPU-only types."""
    if not isinstance(instance_type, str) or not instance_type:
        return None
    bare = instance_type.strip().lower()
    bare = bare[3:] if bare.startswith("ml.") else bare
    fam = family_of(bare)
    by_family = _family_vendor(fam)
    spec = _catalog_lookup(bare)
    if spec is not None:
        vendor = getattr(spec, "vendor", None)
        if vendor in VENDORS:
            arm = fam in VENDORS[vendor].instance_families_arm
            return Accel(bare, fam, vendor, arm, getattr(spec, "accelerator", None),
                         getattr(spec, "count", None), getattr(spec, "neuron_cores", None) or None)
    if by_family is not None:
        return Accel(bare, fam, by_family[0], by_family[1])
    return None
