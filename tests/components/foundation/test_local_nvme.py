"""Node-local NVMe: AL2023 nodes with instance store get a nodeadm NodeConfig (RAID0) in their launch template."""

import base64
import email

import pytest
import yaml

from components.catalog.accelerators import lookup
from components.foundation import _gpu
from components.foundation.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from infra.plan import run_program

WIRING = dict(cluster_name="prod-eks", node_role_arn="arn:aws:iam::123456789012:role/node",
              subnet_ids=["subnet-a", "subnet-b"])


def node_config(user_data: str) -> dict:
    """The nodeadm NodeConfig part of a base64 MIME multi-part user data."""
    msg = email.message_from_string(base64.b64decode(user_data).decode())
    assert msg.is_multipart()
    parts = [p for p in msg.get_payload() if p.get_content_type() == "application/node.eks.aws"]
    assert len(parts) == 1
    return yaml.safe_load(parts[0].get_payload())


@pytest.mark.parametrize("instance_type", ["g5.12xlarge", "g6e.4xlarge", "p5.48xlarge"])
def test_instance_store_types_stripe_nvme_with_nodeadm(instance_type):
    ud = _gpu.node_user_data(lookup(instance_type), "al2023")
    assert ud is not None
    cfg = node_config(ud)
    assert cfg["apiVersion"] == "node.eks.aws/v1alpha1" and cfg["kind"] == "NodeConfig"
    assert cfg["spec"] == {"instance": {"localStorage": {"strategy": "RAID0"}}}


def test_no_user_data_without_instance_store_on_bottlerocket_or_when_off():
    assert _gpu.node_user_data(lookup("inf2.48xlarge"), "al2023") is None  # EBS only
    assert _gpu.node_user_data(lookup("p5.48xlarge"), "bottlerocket") is None
    assert _gpu.node_user_data(lookup("p5.48xlarge"), "al2023", local_storage=False) is None


def test_user_data_is_deterministic():
    assert _gpu.node_user_data(lookup("g5.2xlarge"), "al2023") == _gpu.node_user_data(lookup("g5.2xlarge"), "al2023")


def test_launch_template_carries_the_node_config():
    r = run_program(lambda: GpuNodeGroup("gpu", GpuNodeGroupArgs(**WIRING, instance_type="g5.12xlarge")))
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-lt")
    assert node_config(lt.inputs["userData"])["spec"]["instance"]["localStorage"]["strategy"] == "RAID0"


def test_launch_template_without_instance_store_or_when_off_has_no_user_data():
    for kw in ({"instance_type": "inf2.48xlarge"}, {"instance_type": "g5.12xlarge", "local_nvme": False}):
        r = run_program(lambda: GpuNodeGroup("gpu", GpuNodeGroupArgs(**WIRING, **kw)))
        assert "userData" not in r.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-lt").inputs
