"""EfaDevicePlugin: the pinned aws-efa-k8s-device-plugin chart on EFA nodes only, tolerating the accelerator taints,
with values the vendored chart knows; the foundation section installs it once when a node group (or Karpenter
NodePool) has EFA, and not otherwise."""

from __future__ import annotations

import pytest

from components import versions
from components.catalog.accelerators import EFA_RESOURCE, lookup
from components.errors import ArgsError
from components.foundation import _gpu
from components.foundation.efa_device_plugin import EfaDevicePlugin, EfaDevicePluginArgs, render_values
from infra.config import ROOT, build_settings, read_stack_file
from infra.plan import run_program
from infra import program
from tests.infra.test_upstream_truth import UPSTREAM, load_chart, unknown_keys
from tests.stack_plans import planned

RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_FOLDER = UPSTREAM / "aws-efa-k8s-device-plugin" / versions.EFA_DEVICE_PLUGIN_CHART.version


# --- values ---

def test_values_select_efa_nodes_and_tolerate_the_accelerator_taints():
    values = render_values(EfaDevicePluginArgs())
    assert values == {
        "image": {"tag": "v0.5.20"},
        "nodeSelector": {"vpc.amazonaws.com/efa.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}],
    }
    # the selector is the label the node groups (and NodePools) put on EFA nodes, and only on those
    p5 = lookup("p5.48xlarge")
    assert values["nodeSelector"].items() <= _gpu.labels("h100", p5, efa=True).items()
    assert not values["nodeSelector"].items() <= _gpu.labels("h100", p5, efa=False).items()


def test_extra_taints_are_tolerated_once_per_key_and_effect():
    args = EfaDevicePluginArgs(extra_taints=[{"key": "genai-scale.io/batch", "value": "true"},
                                             {"key": "genai-scale.io/batch", "value": "other"},
                                             {"key": "nvidia.com/gpu", "value": "true"},
                                             {"key": "dedicated", "effect": "NoExecute"}])
    assert render_values(args)["tolerations"][2:] == [
        {"key": "genai-scale.io/batch", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]


def test_values_keys_exist_in_the_vendored_chart():
    chart = load_chart(CHART_FOLDER)
    values = render_values(EfaDevicePluginArgs(extra_taints=[{"key": "dedicated"}]))
    assert unknown_keys("efa-device-plugin", chart, values) == []
    assert chart.defaults["image"]["tag"] == versions.EFA_DEVICE_PLUGIN_IMAGE.version, "pinned tag is the chart's"
    assert chart.defaults["image"]["repository"] == versions.EFA_DEVICE_PLUGIN_IMAGE.repository
    assert "p5.48xlarge" in chart.defaults["supportedInstanceLabels"]["values"], "the chart's own affinity admits p5"
    # a misspelt key would be reported
    assert unknown_keys("efa-device-plugin", chart, {"nodeSelectors": {"a": "b"}}) != []


def test_a_bad_extra_taint_is_rejected_with_its_path():
    with pytest.raises(ArgsError) as exc:
        EfaDevicePluginArgs(extra_taints=[{"key": "dedicated", "effect": "Sometimes"}])
    assert "extra_taints[0].effect = 'Sometimes': expected one of 'NoSchedule', 'NoExecute' or 'PreferNoSchedule'" \
        in str(exc.value)


# --- the component under mocks ---

def test_component_creates_the_pinned_release_in_kube_system():
    plugins = []
    r = run_program(lambda: plugins.append(EfaDevicePlugin("efa-device-plugin", EfaDevicePluginArgs())))
    rel = r.one(RELEASE)
    assert rel.name == "efa-device-plugin"
    assert rel.inputs["chart"] == "aws-efa-k8s-device-plugin" and rel.inputs["version"] == "v0.5.30"
    assert rel.inputs["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    assert rel.inputs["namespace"] == "kube-system"
    assert rel.inputs["values"] == render_values(EfaDevicePluginArgs())
    assert sorted(x.type for x in r.resources) == ["genai-scale:index:EfaDevicePlugin", RELEASE]
    assert plugins[0].resource_name == EFA_RESOURCE == "vpc.amazonaws.com/efa"


# --- wiring (foundation section) ---

def _releases(result) -> dict[str, dict]:
    return {x.name: x.inputs for x in result.resources if x.type == RELEASE}


def test_prod_installs_the_plugin_for_its_efa_groups_and_dev_does_not():
    prod, cfg = planned("prod")
    assert any(ng.efa for ng in cfg.node_groups.values())
    assert _releases(prod)["efa-device-plugin"]["values"] == render_values(EfaDevicePluginArgs())
    assert [x for x in prod.resources if x.type == "genai-scale:index:EfaDevicePlugin"], "installed once"
    dev, dev_cfg = planned("dev")
    assert not any(ng.efa for ng in dev_cfg.node_groups.values())
    assert "efa-device-plugin" not in _releases(dev)


def _plan_dev(**keys):
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml")
    raw.update({f"genai-scale:{k}": v for k, v in keys.items()})
    cfg = build_settings(raw, source="stacks/Pulumi.dev.yaml")
    return run_program(lambda: program.build_stack(cfg, "dev"), project=program.PROJECT, stack="dev", config=raw,
                       region=cfg.region)


EFA_GROUP = {"instanceType": "p5.48xlarge", "minSize": 0, "maxSize": 2, "efa": True,
             "extraTaints": [{"key": "genai-scale.io/dedicated", "value": "llm"}]}


@pytest.mark.parametrize("provisioner", ["managed-node-groups", "karpenter"])
def test_an_efa_group_brings_the_plugin_with_its_taints_on_either_provisioner(provisioner):
    result = _plan_dev(nodeGroups={"h100": EFA_GROUP}, nodeProvisioner=provisioner)
    values = _releases(result)["efa-device-plugin"]["values"]
    assert {"key": "genai-scale.io/dedicated", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]


def test_the_plugin_can_be_left_out():
    result = _plan_dev(nodeGroups={"h100": EFA_GROUP}, efaDevicePlugin={"enabled": False})
    assert "efa-device-plugin" not in _releases(result)
