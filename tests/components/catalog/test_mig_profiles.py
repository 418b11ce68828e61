"""MIG configurations per GPU (NVIDIA mig-parted's default configuration)."""

from __future__ import annotations

import pytest

from components.catalog import accelerators, mig_profiles
from components.catalog.mig_profiles import CATALOG, MigSlice


def test_h100_80gb_configurations_as_the_reference_lists_them():
    h100 = CATALOG["H100-80GB"]
    assert {name: [(s.profile, s.count) for s in c.slices] for name, c in h100.items()} == {
        "all-1g.10gb": [("1g.10gb", 7)], "all-1g.20gb": [("1g.20gb", 4)], "all-2g.20gb": [("2g.20gb", 3)],
        "all-3g.40gb": [("3g.40gb", 2)], "all-4g.40gb": [("4g.40gb", 1)], "all-7g.80gb": [("7g.80gb", 1)],
        "all-balanced": [("1g.10gb", 2), ("2g.20gb", 1), ("3g.40gb", 1)],
    }
    assert h100["all-balanced"].slices_per_gpu == 4
    assert h100["all-1g.10gb"].slices_per_gpu == 7


@pytest.mark.parametrize("gpu,config,slices", [
    ("A100-40GB", "all-1g.5gb", 7), ("A100-40GB", "all-1g.10gb", 4), ("A100-40GB", "all-3g.20gb", 2),
    ("A100-80GB", "all-1g.10gb", 7), ("H200-141GB", "all-1g.18gb", 7), ("H200-141GB", "all-3g.71gb", 2),
    ("H200-141GB", "all-balanced", 4),
])
def test_other_gpus(gpu, config, slices):
    assert CATALOG[gpu][config].slices_per_gpu == slices


def test_slice_facts_and_mixed_strategy_resource():
    s = MigSlice("3g.40gb", 2)
    assert (s.compute_sevenths, s.memory_gb, s.memory_gib) == (3, 40, 37.25)
    assert s.resource == "nvidia.com/mig-3g.40gb"


def test_no_configuration_exceeds_a_gpu():
    for gpu, configs in CATALOG.items():
        memory_gb = int(gpu.split("-")[1][:-2])
        for c in configs.values():
            assert sum(s.compute_sevenths * s.count for s in c.slices) <= 7, (gpu, c.name)
            # names round each slice's memory to whole GB (H200: 2 x 3g.71gb on 141 GB)
            assert sum(s.memory_gb * s.count for s in c.slices) <= memory_gb + c.slices_per_gpu, (gpu, c.name)


@pytest.mark.parametrize("instance_type,gpu", [
    ("p4d.24xlarge", "A100-40GB"), ("p4de.24xlarge", "A100-80GB"), ("p5.48xlarge", "H100-80GB"),
    ("p5e.48xlarge", "H200-141GB"), ("p5en.48xlarge", "H200-141GB"), ("g6e.xlarge", None), ("g5.xlarge", None),
])
def test_instance_types_map_to_their_gpu(instance_type, gpu):
    spec = accelerators.lookup(instance_type)
    assert mig_profiles.gpu_key(spec.accelerator, spec.memory_mib) == gpu
    assert bool(mig_profiles.configs_for(spec)) == (gpu is not None)
    if gpu is None:
        assert mig_profiles.lookup(spec, "all-1g.10gb") is None


def test_every_mig_capable_catalogue_gpu_has_configurations():
    for spec in accelerators.CATALOG.values():
        if spec.mig_capable:
            assert mig_profiles.configs_for(spec), spec.instance_type


def test_source_and_date():
    assert "mig-parted" in mig_profiles.SOURCE and mig_profiles.CHECKED == "2026-12-06"
