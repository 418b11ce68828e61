"""The fact tables the pack carries (so a published pack works without the repository) agree with their sources."""

import gzip
import json
from pathlib import Path

import moto
import pytest

from components.catalog import accelerators as catalog
from policies import _accel
from policies.security import LOCAL_NVME_FAMILIES, has_local_storage

MOTO_TYPES = Path(moto.__file__).parent / "ec2" / "resources" / "instance_types.json.gz"


@pytest.fixture(scope="module")
def ec2_types():
    return json.loads(gzip.open(MOTO_TYPES).read())


def test_local_nvme_families_match_describe_instance_types(ec2_types):
    # EC2 DescribeInstanceTypes InstanceStorageSupported, as moto ships it
    with_storage = {t.split(".")[0] for t, v in ec2_types.items() if v.get("InstanceStorageSupported")}
    families = {t.split(".")[0] for t in ec2_types}
    assert LOCAL_NVME_FAMILIES & families == with_storage


@pytest.mark.parametrize("instance,local", [("ml.g5.2xlarge", True), ("ml.g6e.12xlarge", True),
                                            ("ml.inf2.8xlarge", False), ("ml.m5.xlarge", False),
                                            ("p5.48xlarge", True)])
def test_has_local_storage(instance, local):
    assert has_local_storage(instance) is local


@pytest.mark.parametrize("instance_type", sorted(catalog.CATALOG))
def test_family_fallback_agrees_with_the_catalogue(instance_type, monkeypatch):
    spec = catalog.lookup(instance_type)
    monkeypatch.setattr(_accel, "_catalog_lookup", lambda _: None)  # what a pack published alone sees
    fallback = _accel.accelerator_for(instance_type)
    assert fallback is not None and fallback.vendor == spec.vendor
    assert fallback.h100_class == (spec.accelerator in ("H100", "H200"))
    if spec.vendor == "neuron":
        assert spec.neuron_cores == spec.count * _accel.NEURON_CORES_PER_DEVICE[spec.family]


def test_catalogue_counts_are_used_when_present():
    a = _accel.accelerator_for("ml.g5.12xlarge")
    assert (a.vendor, a.accelerator, a.count) == ("nvidia", "A10G", 4)
    assert _accel.accelerator_for("m7i.large") is None
