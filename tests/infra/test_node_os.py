"""Stack config: GPU node groups on Bottlerocket (kept from the GPU operator, which only installs for AL2023 NVIDIA
groups), fastImagePull, and the messages for combinations Bottlerocket cannot serve."""

from __future__ import annotations

import base64
import tomllib

import yaml

from infra.program import plan_stack
from tests.infra.test_config import BASE, error_for, write

OPERANDS = "nvidia.com/gpu.deploy.operands"


def _plan(tmp_path, node_groups: dict):
    plan, _ = plan_stack(config_file=str(write(tmp_path, {**BASE, "genai-scale:nodeGroups": node_groups})))
    return plan


def test_all_nvidia_groups_on_bottlerocket_need_no_gpu_operator(tmp_path):
    plan = _plan(tmp_path, {"a10g": {"nodeOs": "bottlerocket"}, "batch-a10g": {"nodeOs": "bottlerocket"}})
    assert [r.name for r in plan.by_type("kubernetes:helm.sh/v3:Release") if r.name == "gpu-operator"] == []
    ng = plan.one("aws:eks/nodeGroup:NodeGroup", "a10g")
    assert ng.inputs["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA" and ng.inputs["labels"][OPERANDS] == "false"
    lt = plan.one("aws:ec2/launchTemplate:LaunchTemplate", "a10g-lt")
    settings = tomllib.loads(base64.b64decode(lt.inputs["userData"]).decode())["settings"]
    assert settings["container-runtime"]["snapshotter"] == "soci"


def test_the_operator_stays_for_the_al2023_groups_and_time_slices_only_theirs(tmp_path):
    plan = _plan(tmp_path, {"a10g": {"nodeOs": "bottlerocket", "timeSlicingReplicas": 4},
                            "batch-a10g": {"timeSlicingReplicas": 2}})
    operator = plan.one("kubernetes:helm.sh/v3:Release", "gpu-operator")  # present: the same lookup as above
    data = plan.one("kubernetes:core/v1:ConfigMap", "gpu-operator-time-slicing").inputs["data"]
    assert sorted(data) == ["none", "time-slicing-2"]  # no config for the Bottlerocket group's 4 shares
    assert operator.inputs["values"]["devicePlugin"]["config"]["default"] == "none"


def test_fast_image_pull_can_be_turned_off_per_group(tmp_path):
    plan = _plan(tmp_path, {"a10g": {"fastImagePull": False}})
    lt = plan.one("aws:ec2/launchTemplate:LaunchTemplate", "a10g-lt")
    text = base64.b64decode(lt.inputs["userData"]).decode()
    assert "FastImagePull" not in text and "RAID0" in text
    batch = base64.b64decode(plan.one("aws:ec2/launchTemplate:LaunchTemplate", "batch-a10g-lt")
                             .inputs["userData"]).decode()
    assert "FastImagePull: true" in batch


def test_mig_on_a_bottlerocket_group_is_a_config_problem_with_its_key_path(tmp_path):
    msg = error_for(tmp_path, {**BASE, "genai-scale:gpuOperator": {"migStrategy": "mixed"},
                               "genai-scale:nodeGroups": {"h100": {"instanceType": "p5.48xlarge", "nodeOs":
                                                                   "bottlerocket", "migConfig": "all-1g.10gb"}}})
    assert ("genai-scale:nodeGroups.h100.migConfig = 'all-1g.10gb': MIG with the GPU operator's MIG manager needs "
            "node_os al2023") in msg.replace("nodeOs", "node_os")
    assert "Traceback" not in msg


def test_a_bad_node_os_lists_the_choices(tmp_path):
    msg = error_for(tmp_path, {**BASE, "genai-scale:nodeGroups": {"a10g": {"nodeOs": "ubuntu"}}})
    assert "genai-scale:nodeGroups.a10g.nodeOs = 'ubuntu'" in msg and "'al2023' or 'bottlerocket'" in msg


def test_karpenter_bottlerocket_pool_gets_its_own_class(tmp_path):
    from pathlib import Path

    example = yaml.safe_load((Path(__file__).resolve().parents[2] / "stacks/examples/Pulumi.karpenter.yaml")
                             .read_text())
    example["config"]["genai-scale:nodeGroups"]["a10g"]["nodeOs"] = "bottlerocket"
    p = tmp_path / "Pulumi.k.yaml"
    p.write_text(yaml.safe_dump(example))
    plan, _ = plan_stack(config_file=str(p))
    cls = plan.one("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "node-pools-nvidia-bottlerocket")
    assert cls.inputs["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@latest"}]
    assert tomllib.loads(cls.inputs["spec"]["userData"])["settings"]["container-runtime"]["snapshotter"] == "soci"
    pool = plan.one("kubernetes:karpenter.sh/v1:NodePool", "node-pools-a10g")
    assert pool.inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "node-pools-nvidia-bottlerocket"
    assert pool.inputs["spec"]["template"]["metadata"]["labels"][OPERANDS] == "false"


def test_a_model_on_bottlerocket_scales_without_the_dcgm_trigger_and_the_plan_says_so(tmp_path):
    plan = _plan(tmp_path, {"a10g": {"nodeOs": "bottlerocket"}, "batch-a10g": {"nodeOs": "bottlerocket"}})
    scaled = [r for r in plan.by_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
              if r.name.startswith("llama-8b") and "inf2" not in r.name]
    assert scaled
    for so in scaled:
        names = [t.get("name") for t in so.inputs["spec"]["triggers"]]
        assert "gpu-utilization" not in names and "queue-depth" in names
    assert any(n.startswith("serving.models.llama-8b: no GPU-utilization trigger") for n in plan.notes)
    assert any(n.startswith("gpuOperator: not installed") for n in plan.notes)


def test_on_al2023_the_dcgm_trigger_stays_and_no_note(tmp_path):
    plan = _plan(tmp_path, {})
    so = next(r for r in plan.by_type("kubernetes:keda.sh/v1alpha1:ScaledObject") if r.name.startswith("llama-8b")
              and "inf2" not in r.name)
    assert "gpu-utilization" in [t.get("name") for t in so.inputs["spec"]["triggers"]]
    assert not [n for n in plan.notes if "GPU-utilization" in n or n.startswith("gpuOperator")]
