"""The accelerator catalogue agrees with EC2's own instance data (moto ships AWS's DescribeInstanceTypes data)."""

import boto3
import pytest
from moto import mock_aws

from components.catalog import accelerators as cat

REQUIRED = ["inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge", "g5.xlarge", "g5.2xlarge", "g5.4xlarge",
            "g5.8xlarge", "g5.12xlarge", "g5.16xlarge", "g5.24xlarge", "g5.48xlarge", "g6.xlarge", "g6e.xlarge",
            "p4d.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge"]


def test_catalogue_covers_required_instance_types():
    missing = [t for t in REQUIRED if cat.lookup(t) is None]
    assert missing == []


@pytest.fixture(scope="module")
def ec2_types():
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        out = {}
        names = list(cat.CATALOG)
        for i in range(0, len(names), 20):
            for it in ec2.describe_instance_types(InstanceTypes=names[i:i + 20])["InstanceTypes"]:
                out[it["InstanceType"]] = it
        return out


def _facts(it: dict) -> dict:
    gpu = (it.get("GpuInfo") or {}).get("Gpus")
    neuron = (it.get("NeuronInfo") or {}).get("NeuronDevices")
    dev = (gpu or neuron)[0]
    return {
        "vendor": "neuron" if neuron else "nvidia",
        "accelerator": dev["Name"],
        "count": dev["Count"],
        "memory_mib": dev["MemoryInfo"]["SizeInMiB"],
        "neuron_cores": dev["CoreInfo"]["Count"] * dev["Count"] if neuron else 0,
        "vcpus": it["VCpuInfo"]["DefaultVCpus"],
        "memory_mib_host": it["MemoryInfo"]["SizeInMiB"],
        "efa_interfaces": (it["NetworkInfo"].get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0)
        if it["NetworkInfo"].get("EfaSupported") else 0,
    }


@pytest.mark.parametrize("instance_type", sorted(cat.CATALOG))
def test_catalogue_row_matches_describe_instance_types(instance_type, ec2_types):
    assert instance_type in ec2_types, f"{instance_type} unknown to EC2"
    spec = cat.CATALOG[instance_type]
    ours = {k: getattr(spec, k) for k in _facts(ec2_types[instance_type])}
    assert ours == _facts(ec2_types[instance_type])


def test_derived_properties():
    h100 = cat.lookup("p5.48xlarge")
    assert h100.k8s_resource == "nvidia.com/gpu" and h100.parallel_units == 8 and h100.mig_capable
    assert round(h100.total_memory_gib) == 640
    inf2 = cat.lookup("inf2.48xlarge")
    assert inf2.k8s_resource == "aws.amazon.com/neuron" and inf2.parallel_units == 24 and not inf2.mig_capable
    assert not cat.lookup("g5.xlarge").efa_supported and cat.lookup("g5.8xlarge").efa_supported


def test_custom_entry_for_unknown_type():
    spec = cat.custom("g7e.2xlarge", vendor="nvidia", accelerator="RTX PRO 6000", count=1, memory_gib=96)
    assert spec.family == "g7e" and spec.memory_mib == 96 * 1024 and spec.k8s_resource == "nvidia.com/gpu"


def test_stated_facts_produce_the_catalogue_record():
    facts = cat.AcceleratorFacts(vendor="nvidia", accelerator="RTX PRO 6000", count=1, memory_gib=96)
    spec = facts.spec("g7e.2xlarge")
    assert spec == cat.custom("g7e.2xlarge", vendor="nvidia", accelerator="RTX PRO 6000", count=1, memory_gib=96)
    assert isinstance(spec, cat.AcceleratorSpec) and spec.vendor_facts.device_resource == "nvidia.com/gpu"
    neuron = cat.AcceleratorFacts(vendor="neuron", accelerator="Trainium2", count=16, memory_gib=96, neuron_cores=128,
                                  efa_interfaces=16).spec("trn2.48xlarge")
    assert (neuron.family, neuron.parallel_units, neuron.cores_per_device, neuron.efa_supported) == ("trn2", 128, 8, True)


@pytest.mark.parametrize("field,value,expected", [
    ("vendor", "amd", "Input should be 'nvidia' or 'neuron'"),
    ("count", 0, "Input should be greater than or equal to 1"),
    ("memory_gib", 0, "Input should be greater than 0"),
    ("accelerator", "", "String should have at least 1 character"),
    ("neuron_cores", -1, "Input should be greater than or equal to 0"),
])
def test_stated_facts_are_validated(field, value, expected):
    from pydantic import ValidationError

    good = {"vendor": "nvidia", "accelerator": "L4", "count": 1, "memory_gib": 24}
    with pytest.raises(ValidationError) as err:
        cat.AcceleratorFacts(**{**good, field: value})
    assert [(e["loc"], e["msg"]) for e in err.value.errors()] == [((field,), expected)]


def test_vendor_facts_drive_the_derived_properties():
    inf2, l4 = cat.lookup("inf2.24xlarge"), cat.lookup("g6.12xlarge")
    assert inf2.shards_over_cores and inf2.cores_per_device == 2 and not inf2.time_slicing_supported
    assert not l4.shards_over_cores and l4.parallel_units == 4 and l4.time_slicing_supported and not l4.mig_capable


@pytest.mark.parametrize("instance_type", sorted(cat.CATALOG))
def test_instance_store_matches_describe_instance_types(instance_type, ec2_types):
    info = ec2_types[instance_type].get("InstanceStorageInfo") or {}
    disks = sum(d["Count"] for d in info.get("Disks", []))
    spec = cat.CATALOG[instance_type]
    assert (spec.instance_store_disks, spec.instance_store_gb) == (disks, info.get("TotalSizeInGB", 0))
    assert spec.has_instance_store == bool(disks)
