"""Which accelerator an instance type carries.

The project's accelerator catalogue (``components.catalog.accelerators``) is used when the pack runs inside the
repository (offline runner, ``pulumi preview --policy-pack policies`` from a checkout). A pack published on its own
does not ship ``components``; it then falls back to the instance-family table below, which knows the vendor (and so
the AMI family, taint and resource name) but not the per-size GPU count, so count-dependent checks become
"not applicable" there.

Family table source: AWS EKS user guide, "Use EKS-optimized accelerated AMIs for GPU instances"
(https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html), AL2023 NVIDIA / Neuron variant
instance lists, checked 2026-11. ``trn1n`` is the network-optimised trn1 variant (same Trainium chip).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Vendor = Literal["nvidia", "neuron"]

NVIDIA_FAMILIES_X86: frozenset[str] = frozenset({
    "p6-b300", "p6-b200", "p5", "p5e", "p5en", "p4d", "p4de", "p3", "p3dn",
    "g7e", "gr6", "g6", "g6e", "g6f", "gr6f", "g5", "g4dn",
})
NVIDIA_FAMILIES_ARM: frozenset[str] = frozenset({"p6e-gb200", "p6e-gb300", "g5g"})
NEURON_FAMILIES: frozenset[str] = frozenset({"inf1", "inf2", "trn1", "trn1n", "trn2"})
H100_CLASS_FAMILIES: frozenset[str] = frozenset({"p5", "p5e", "p5en"})
"""H100 (p5) and H200 (p5e, p5en): the most expensive on-demand GPU capacity most accounts can launch."""

NEURON_CORES_PER_DEVICE: dict[str, int] = {"inf1": 4, "inf2": 2, "trn1": 2, "trn1n": 2, "trn2": 8}
"""NeuronCores per Neuron device (AWS Neuron docs: Inferentia2 and Trainium have 2 NeuronCore-v2 per chip,
Trainium2 has 8 NeuronCore-v3, Inferentia1 has 4 NeuronCore-v1)."""


@dataclass(frozen=True)
class Accel:
    instance_type: str
    family: str
    vendor: Vendor
    arm: bool
    accelerator: str | None = None
    count: int | None = None
    """GPUs or Neuron devices per instance (None when only the family table is available)."""
    neuron_cores: int | None = None

    @property
    def k8s_resource(self) -> str:
        return "nvidia.com/gpu" if self.vendor == "nvidia" else "aws.amazon.com/neuron"

    @property
    def h100_class(self) -> bool:
        return self.family in H100_CLASS_FAMILIES or (self.accelerator or "").upper() in ("H100", "H200")


def family_of(instance_type: str) -> str:
    it = instance_type.strip().lower()
    if it.startswith("ml."):
        it = it[3:]
    return it.split(".", 1)[0]


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
    spec = _catalog_lookup(bare)
    if spec is not None:
        vendor = getattr(spec, "vendor", None)
        if vendor in ("nvidia", "neuron"):
            return Accel(bare, fam, vendor, fam in NVIDIA_FAMILIES_ARM, getattr(spec, "accelerator", None),
                         getattr(spec, "count", None), getattr(spec, "neuron_cores", None) or None)
    if fam in NVIDIA_FAMILIES_X86 or fam in NVIDIA_FAMILIES_ARM:
        return Accel(bare, fam, "nvidia", fam in NVIDIA_FAMILIES_ARM)
    if fam in NEURON_FAMILIES:
        return Accel(bare, fam, "neuron", False)
    return None


# EKS managed node group AMI types that carry each vendor's stack (AWS EKS API `AMITypes`; see the module docstring
# source for which AMI variant supports which family).
NVIDIA_AMI_TYPES_X86 = frozenset({
    "AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA_FIPS", "AL2_x86_64_GPU",
})
NVIDIA_AMI_TYPES_ARM = frozenset({"AL2023_ARM_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA_FIPS"})
NEURON_AMI_TYPES = frozenset({"AL2023_x86_64_NEURON", "BOTTLEROCKET_x86_64", "BOTTLEROCKET_x86_64_FIPS", "AL2_x86_64_GPU"})
