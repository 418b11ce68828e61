"""Time-slicing per node group: a group's nodes carry the device-plugin config label of their share count, and the GPU
operator's config map holds that config, with whole GPUs for every other node (issue 17: a pool's group time-slices,
the dedicated services' groups must not)."""

import yaml

from components.catalog.accelerators import lookup
from components.foundation.gpu_node_group import node_labels
from components.foundation.gpu_operator import GpuOperatorArgs, device_plugin_configs, render_values


def test_a_time_slicing_group_selects_its_config_by_label():
    spec = lookup("g6e.2xlarge")
    assert node_labels("l40s", spec, time_slicing_replicas=2)["nvidia.com/device-plugin.config"] == "time-slicing-2"
    assert "nvidia.com/device-plugin.config" not in node_labels("l40s", spec)
    assert "nvidia.com/device-plugin.config" not in node_labels("inf2", lookup("inf2.xlarge"), time_slicing_replicas=2)


def test_only_the_labelled_nodes_share_their_gpus():
    args = GpuOperatorArgs(node_time_slicing=[2, 4, 2])
    data, default = device_plugin_configs(args)
    assert default == "none" and list(data) == ["none", "time-slicing-2", "time-slicing-4"]
    assert "sharing" not in yaml.safe_load(data["none"])
    assert yaml.safe_load(data["time-slicing-4"])["sharing"]["timeSlicing"]["resources"] == [
        {"name": "nvidia.com/gpu", "replicas": 4}]
    values = render_values(args, time_slicing_config_map="time-slicing-config")
    assert values["devicePlugin"]["config"] == {"name": "time-slicing-config", "default": "none"}


def test_without_time_slicing_nothing_changes_and_the_cluster_wide_setting_stays_the_default():
    assert device_plugin_configs(GpuOperatorArgs()) == ({}, None)
    assert "config" not in render_values(GpuOperatorArgs())["devicePlugin"]
    data, default = device_plugin_configs(GpuOperatorArgs(time_slicing_replicas=4, node_time_slicing=[2]))
    assert default == "any" and list(data) == ["any", "time-slicing-2"]


def test_node_time_slicing_is_checked():
    def found(**kw):
        base = {"node_time_slicing": [], "mig_strategy": "none", "time_slicing_replicas": None}
        return [(p.path, p.value, p.expected) for p in GpuOperatorArgs.model_construct(**{**base, **kw}).problems()]

    assert found(node_time_slicing=[1, 2]) == [("node_time_slicing", [1], "share counts from 2 to 64")]
    assert found(node_time_slicing=[2], mig_strategy="mixed") == [
        ("node_time_slicing", [2], "time-slicing cannot be combined with MIG strategy 'mixed'")]
