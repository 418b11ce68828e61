"""MIG configurations per GPU: the named partitionings the NVIDIA GPU operator's MIG manager applies to a node.

A node group opts in with ``migConfig: <name>`` (node label ``nvidia.com/mig.config=<name>``); the MIG manager then
splits every GPU of the node into the slices listed here. Under the GPU operator's ``mixed`` strategy each slice is the
extended resource ``nvidia.com/mig-<profile>``; under ``single`` every slice is a ``nvidia.com/gpu``.

Source: NVIDIA mig-parted's default configuration, the one the GPU operator's MIG manager ships
(github.com/NVIDIA/mig-parted, ``deployments/systemd/config-default.yaml`` at commit 1400787269ca, read 2026-12-06):
the ``all-<profile>`` entries and ``all-balanced`` per device filter (H100-80GB and A100-80GB share one filter; A100-40GB
and H200-141GB have their own). The ``+me`` (media engine) variants are left out: they give one slice per GPU. The H100
rows agree with the reference note (``../shared/reference/anchors-next.md`` §5). Memory is NVIDIA's name for the slice
in GB (10gb = 10 x 10^9 bytes), as :func:`components.serving.vllm.fit.mig_memory_gib` converts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.catalog.accelerators import AcceleratorSpec

SOURCE = "NVIDIA/mig-parted deployments/systemd/config-default.yaml @1400787269ca (GPU operator MIG manager default)"
CHECKED = "2026-12-06"

MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
"""Extended resource of a slice under the GPU operator's ``mixed`` strategy: ``nvidia.com/mig-1g.10gb``."""

_PROFILE = re.compile(r"^(\d+)g\.(\d+)gb$")


@dataclass(frozen=True)
class MigSlice:
    """One kind of slice in a MIG configuration and how many of it one GPU gets."""

    profile: str
    """GPU instance profile as NVIDIA names it: ``<compute sevenths>g.<memory GB>gb``, e.g. ``1g.10gb``."""
    count: int
    """Slices of this profile per GPU."""

    @property
    def compute_sevenths(self) -> int:
        """Compute slices (of 7) one slice gets."""
        return int(_PROFILE.match(self.profile).group(1))  # type: ignore[union-attr]

    @property
    def memory_gb(self) -> int:
        """Memory of one slice in GB (NVIDIA's unit)."""
        return int(_PROFILE.match(self.profile).group(2))  # type: ignore[union-attr]

    @property
    def memory_gib(self) -> float:
        """Memory of one slice in GiB."""
        return round(self.memory_gb * 1e9 / 1024 ** 3, 2)

    @property
    def resource(self) -> str:
        """Extended resource under the ``mixed`` strategy."""
        return f"{MIG_RESOURCE_PREFIX}{self.profile}"


@dataclass(frozen=True)
class MigConfig:
    """A named MIG configuration (``nvidia.com/mig.config`` value) on one GPU model."""

    name: str
    """Configuration name, e.g. ``all-1g.10gb`` or ``all-balanced``."""
    gpu: str
    """GPU model and memory it applies to, e.g. ``H100-80GB``."""
    slices: tuple[MigSlice, ...]
    """The slices one GPU is split into, smallest first."""

    @property
    def slices_per_gpu(self) -> int:
        return sum(s.count for s in self.slices)

    @property
    def profiles(self) -> tuple[str, ...]:
        return tuple(s.profile for s in self.slices)


def _configs(gpu: str, rows: dict[str, dict[str, int]]) -> dict[str, MigConfig]:
    return {name: MigConfig(name, gpu, tuple(MigSlice(p, n) for p, n in slices.items()))
            for name, slices in rows.items()}


_80GB = {  # H100-80GB, H800-80GB, A100-80GB, A800-80GB
    "all-1g.10gb": {"1g.10gb": 7}, "all-1g.20gb": {"1g.20gb": 4}, "all-2g.20gb": {"2g.20gb": 3},
    "all-3g.40gb": {"3g.40gb": 2}, "all-4g.40gb": {"4g.40gb": 1}, "all-7g.80gb": {"7g.80gb": 1},
    "all-balanced": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
}

CATALOG: dict[str, dict[str, MigConfig]] = {
    "A100-40GB": _configs("A100-40GB", {
        "all-1g.5gb": {"1g.5gb": 7}, "all-1g.10gb": {"1g.10gb": 4}, "all-2g.10gb": {"2g.10gb": 3},
        "all-3g.20gb": {"3g.20gb": 2}, "all-4g.20gb": {"4g.20gb": 1}, "all-7g.40gb": {"7g.40gb": 1},
        "all-balanced": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1},
    }),
    "A100-80GB": _configs("A100-80GB", _80GB),
    "H100-80GB": _configs("H100-80GB", _80GB),
    "H200-141GB": _configs("H200-141GB", {
        "all-1g.18gb": {"1g.18gb": 7}, "all-1g.35gb": {"1g.35gb": 4}, "all-2g.35gb": {"2g.35gb": 3},
        "all-3g.71gb": {"3g.71gb": 2}, "all-4g.71gb": {"4g.71gb": 1}, "all-7g.141gb": {"7g.141gb": 1},
        "all-balanced": {"1g.18gb": 2, "2g.35gb": 1, "3g.71gb": 1},
    }),
}
"""MIG configurations by GPU (model and memory), then by configuration name."""


def gpu_key(accelerator: str, memory_mib: int) -> str | None:
    """The :data:`CATALOG` key of a GPU from its EC2 name and memory (A100 comes in 40 and 80 GB); None if not MIG."""
    gb = {40960: "40GB", 81920: "80GB", 144384: "141GB"}.get(memory_mib)
    key = f"{accelerator}-{gb}" if gb else None
    return key if key in CATALOG else None


def configs_for(spec: AcceleratorSpec) -> dict[str, MigConfig]:
    """The MIG configurations of an instance type's GPU (empty when it has no MIG)."""
    key = gpu_key(spec.accelerator, spec.memory_mib)
    return CATALOG[key] if key else {}


def lookup(spec: AcceleratorSpec, name: str) -> MigConfig | None:
    """The configuration ``name`` on the instance type's GPU, or None."""
    return configs_for(spec).get(name)
