"""The recipes of docs/DEVELOPING.md, carried out: each makes exactly the edit its recipe names (on a scratch copy, or
a registry patched for the test) and shows the result plans. The policy-rule recipe is in
tests/policies/test_recipe_add_a_rule.py (it needs the pack's rule API, private to the policies package)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pydantic import Field

import infra.config
import infra.tiers
from components import GpuNodeGroup, GpuNodeGroupArgs, VllmModelSettings, VllmServiceArgs
from components.base import TYPE_PREFIX, ArgsModel
from components.catalog import accelerators, vendors
from components.foundation.gpu_node_group import node_labels, node_taints
from components.serving.vllm.args import NodeGroupPlacement
from components.serving.vllm.manifests import render_manifests
from infra import policy_cli
from infra.plan import run_program
from infra.program import plan_stack
from infra.sections.base import args_from, derive_settings
from tests.kit import ROOT

WIRING = dict(cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n", subnet_ids=["subnet-1"])


def _node_group(instance_type: str):
    result = run_program(lambda: GpuNodeGroup("grp", GpuNodeGroupArgs(instance_type=instance_type, **WIRING)))
    return result.one("aws:eks/nodeGroup:NodeGroup"), result


# --- add an accelerator size: one catalogue row ------------------------------------------------------------------

def test_add_an_accelerator_size(monkeypatch):
    g6e = accelerators.lookup("g6e.12xlarge")
    row = replace(g6e, instance_type="g6e.48xlarge", count=8, vcpus=192, memory_mib_host=1572864, efa_interfaces=4)
    monkeypatch.setitem(accelerators.CATALOG, "g6e.48xlarge", row)  # the recipe's one edit

    ng, result = _node_group("g6e.48xlarge")
    assert ng.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert ng.inputs["labels"]["genai-scale/accelerator-count"] == "8"
    assert ng.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    tags = {r.inputs["tag"]["key"]: r.inputs["tag"]["value"] for r in result.by_type("aws:autoscaling/tag:Tag")}
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "8"


# --- add a vendor: one registry record (+ its instance types) ----------------------------------------------------

def test_add_an_accelerator_vendor(monkeypatch):
    acme = replace(vendors.NVIDIA, name="acme", display_name="Acme NPU", unit_name="NPU",
                   ami_types={"al2023": "AL2023_x86_64_STANDARD", "bottlerocket": "BOTTLEROCKET_x86_64"},
                   accepted_ami_types_x86=frozenset({"AL2023_x86_64_STANDARD"}),
                   instance_families_x86=frozenset({"acme1"}), device_resource="acme.com/npu",
                   core_resource="acme.com/npu-core", resource_aliases=(), taint_key="acme.com/npu",
                   node_labels={"acme.com/npu.product": "acme-{accelerator}"}, discovery_labels={},
                   mig_accelerators=frozenset(), mig_config_label=None, mig_resource_prefix=None, time_slicing=False,
                   utilization_metric=None)
    monkeypatch.setitem(vendors.VENDORS, "acme", acme)                         # 1. the record
    spec = accelerators.AcceleratorSpec("acme1.8xlarge", "acme1", "acme", "N1", 4, 65536, 16, 32, 131072, 0)
    monkeypatch.setitem(accelerators.CATALOG, "acme1.8xlarge", spec)          # 2. its instance types

    ng, _ = _node_group("acme1.8xlarge")
    assert ng.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng.inputs["labels"]["genai-scale/accelerator-vendor"] == "acme"
    assert ng.inputs["labels"]["acme.com/npu.product"] == "acme-n1"
    assert ng.inputs["taints"][0]["key"] == "acme.com/npu"

    placement = NodeGroupPlacement(name="grp", accelerator=spec, labels=node_labels("grp", spec),
                                   taints=node_taints(spec))
    args = VllmServiceArgs(model=VllmModelSettings(model_id="meta-llama/Llama-3.1-8B-Instruct",
                                                   allow_hub_download=True), placement=placement, image="img",
                           keda=False)
    pod = render_manifests("m", args)["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["acme.com/npu"] == "1"
    assert pod["tolerations"][0]["key"] == "acme.com/npu"


# --- add a tier: copy a folder, edit YAML, no Python -------------------------------------------------------------

def test_add_a_tier(tmp_path, monkeypatch, capsys):
    stacks = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", stacks)
    monkeypatch.setattr(infra.tiers, "TIERS_DIR", stacks / "tiers")
    monkeypatch.setattr(infra.config, "TIERS_DIR", stacks / "tiers")
    monkeypatch.setattr(infra.config, "STACKS_DIR", stacks)
    shutil.copytree(stacks / "tiers" / "growth", stacks / "tiers" / "regulated")      # 1. copy the folder
    facts = yaml.safe_load((stacks / "tiers" / "regulated" / "tier.yaml").read_text())
    facts["caps"]["warmAccelerators"] = 1                                            # ... and edit its YAML
    (stacks / "tiers" / "regulated" / "tier.yaml").write_text(yaml.safe_dump(facts))
    doc = yaml.safe_load((stacks / "Pulumi.staging.yaml").read_text())
    doc["config"]["genai-scale:tier"] = "regulated"
    stack = stacks / "Pulumi.regulated.yaml"
    stack.write_text(yaml.safe_dump(doc))

    plan, cfg = plan_stack(config_file=str(stack))
    assert cfg.tier == "regulated" and len(plan.resources) > 100
    code = policy_cli.main(["--config-file", str(stack), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["violations"] == []


# --- add a Helm add-on: a component module, a pin, an export, a derived setting ----------------------------------

class DemoAddonArgs(ArgsModel):
    """Arguments of :class:`DemoAddon`."""

    chart_version: str = "1.2.3"
    """Chart version. Default: the pin."""
    replicas: int = Field(default=2, ge=1, le=5)
    """Controller replicas. Default: 2."""
    namespace: str = "demo"
    """Namespace. Default: demo."""


class DemoAddon(pulumi.ComponentResource):
    """A Helm add-on written as the recipe says."""

    release: k8s.helm.v3.Release
    """The Helm release."""

    def __init__(self, name: str, args: DemoAddonArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}DemoAddon", name, None, opts)
        self.release = k8s.helm.v3.Release(
            name, chart="demo", version=args.chart_version, namespace=args.namespace, create_namespace=True,
            repository_opts={"repo": "https://charts.example.invalid"}, values={"replicas": args.replicas},
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def test_add_a_helm_addon():
    settings_model = derive_settings(DemoAddonArgs, name="DemoAddonSettings", extra={
        "enabled": (bool, Field(default=False, description="Install it. Default: off."))})
    settings = settings_model.model_validate({"enabled": True, "replicas": 3})   # the camelCase config keys
    assert set(settings_model.model_fields) == {"chart_version", "replicas", "namespace", "enabled"}
    result = run_program(lambda: DemoAddon("demo", args_from(settings, DemoAddonArgs)))
    release = result.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["version"] == "1.2.3" and release.inputs["values"] == {"replicas": 3}
    with pytest.raises(Exception, match="replicas"):
        settings_model.model_validate({"replicas": 9})                          # the args' bound, not a copy
