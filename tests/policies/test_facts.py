"""The fact tables the pack carries (so a published pack works without the repository) agree with their sources."""

import gzip
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import moto
import pytest

from components.catalog import accelerators as catalog
from components.catalog import vendors
from policies import _accel
from policies.security import LOCAL_NVME_FAMILIES, has_local_storage
from tests.components.catalog.test_vendors import FAKE
from policies.engine import evaluate
from tests.policies.kit import res

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
    if spec.shards_over_cores:
        assert spec.neuron_cores == spec.count * _accel.NEURON_CORES_PER_DEVICE[spec.family]


def test_catalogue_counts_are_used_when_present():
    a = _accel.accelerator_for("ml.g5.12xlarge")
    assert (a.vendor, a.accelerator, a.count) == ("nvidia", "A10G", 4)
    assert _accel.accelerator_for("m7i.large") is None


# --- the vendor registry, as the pack reads it -----------------------------------------------------------------------

def test_pack_snapshot_of_the_vendor_registry_is_current():
    # a published pack has no components/: it reads this file; regenerate it with
    # `python -m components.catalog.vendors > policies/vendors.json`
    assert _accel.SNAPSHOT.read_text() == vendors.dumps()


def test_a_published_pack_reads_the_same_vendor_facts_in_the_same_order(monkeypatch):
    monkeypatch.setitem(sys.modules, "components.catalog.vendors", None)  # what a pack published alone sees
    data = _accel._vendor_data()
    assert data == vendors.export() and list(data) == list(vendors.VENDORS)


def test_pack_constants_are_the_registrys():
    assert _accel.VENDOR_LABEL == vendors.VENDOR_LABEL
    assert _accel.ACCELERATOR_PLACEHOLDER == vendors.ACCELERATOR_PLACEHOLDER
    assert set(_accel.ACCELERATOR_RESOURCES) == {r for v in vendors.VENDORS.values() for r in v.pod_resources}


@pytest.mark.parametrize("key,value,vendor", [
    ("genai-scale/accelerator-vendor", "neuron", "neuron"), ("genai-scale/accelerator-vendor", "amd", None),
    ("k8s.amazonaws.com/accelerator", "nvidia-a10g", "nvidia"), ("k8s.amazonaws.com/accelerator", "nvidia-", None),
    ("aws.amazon.com/neuron.present", "true", "neuron"), ("nvidia.com/gpu.present", "true", "nvidia"),
    ("nvidia.com/gpu.present", "false", None), ("kubernetes.io/arch", "amd64", None),
])
def test_node_labels_name_their_vendor(key, value, vendor):
    assert _accel.vendor_of_label(key, value) == vendor


def test_node_group_labels_are_recognised_by_the_pack():
    from components.foundation.gpu_node_group import node_labels

    for spec in (catalog.lookup("g5.xlarge"), catalog.lookup("inf2.xlarge")):
        found = {_accel.vendor_of_label(k, v) for k, v in node_labels("g", spec).items()} - {None}
        assert found == {spec.vendor}


@pytest.fixture
def acme_in_the_pack(monkeypatch):
    monkeypatch.setitem(vendors.VENDORS, "acme", FAKE)
    monkeypatch.setitem(_accel.VENDORS, "acme", SimpleNamespace(**vendors.export()["acme"]))


def _pod(limits=None, tolerations=(), node_selector=None):
    spec = {"containers": [{"name": "c", "image": "i:1", "resources": {"limits": limits or {}}}],
            "tolerations": list(tolerations), **({"nodeSelector": node_selector} if node_selector else {})}
    return res("kubernetes:apps/v1:Deployment", "w", {"metadata": {"name": "w"}, "spec": {"template": {"spec": spec}}})


def violations(resources, rule):
    return [v.message for v in evaluate(resources).by_policy(rule)]


def test_a_vendor_added_to_the_registry_is_judged_by_the_gpu_rules(acme_in_the_pack):
    rule = "accelerator-pods-request-and-tolerate"
    assert violations([_pod({"acme.com/npu": 1})], rule) == [
        "the pod targets acme nodes but does not tolerate the acme.com/npu=present:NoExecute taint: it stays Pending"]
    assert violations([_pod(node_selector={"acme.com/npu.product": "acme-n1"})], rule)[0] == (
        "the pod targets acme nodes but no container sets a limit for acme.com/npu or acme.com/npu-core: it would "
        "be scheduled without a device")
    tolerated = {"key": "acme.com/npu", "operator": "Equal", "value": "present", "effect": "NoExecute"}
    assert violations([_pod({"acme.com/npu": 1}, [tolerated])], rule) == []
    assert _accel.accelerator_for("acme1.8xlarge").vendor == "acme"  # by the registry's instance families
