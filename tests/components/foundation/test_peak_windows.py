"""NodePool peak windows: a budget of 0 nodes for Empty and Underutilized per window, valid against the vendored Karpenter CRD;
none without windows; every message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.capacity.schedule import CronFloor, peak_windows
from components.foundation.node_pools import NodePoolSpec, budgets, render_node_pool
from tests.infra.test_upstream_truth import cr_errors

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
WINDOWS = [("45 5 * * 1-5", "11h15m"), ("45 21 * * 1-5", "4h15m")]


def test_each_peak_window_freezes_consolidation_of_underutilized_nodes():
    spec = NodePoolSpec(instance_types=["g6e.xlarge"], peak_windows=WINDOWS)
    assert budgets(spec) == [
        {"nodes": "1"},
        {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 8 * * mon-fri", "duration": "10h"},
        {"nodes": "0", "reasons": ["Empty", "Underutilized"], "schedule": "45 5 * * 1-5", "duration": "11h15m"},
        {"nodes": "0", "reasons": ["Empty", "Underutilized"], "schedule": "45 21 * * 1-5", "duration": "4h15m"}]
    body = render_node_pool("l40s", spec, "pools-nvidia")
    assert cr_errors("l40s", NODEPOOL, body) == []


def test_windows_from_cron_floors_render_as_budgets():
    floors = [CronFloor(timezone="Europe/Berlin", start="45 7 * * 1-5", end="0 18 * * 1-5", desired_replicas=4)]
    spec = NodePoolSpec(instance_types=["g6e.xlarge"], peak_windows=peak_windows(floors))
    assert budgets(spec)[-1] == {"nodes": "0", "reasons": ["Empty", "Underutilized"], "schedule": "45 5 * * 1-5",
                                 "duration": "11h15m"}
    assert cr_errors("l40s", NODEPOOL, render_node_pool("l40s", spec, "pools-nvidia")) == []


def test_no_windows_no_extra_budget():
    assert budgets(NodePoolSpec(instance_types=["g6e.xlarge"])) == [
        {"nodes": "1"}, {"nodes": "0", "reasons": ["Drifted"], "schedule": "0 8 * * mon-fri", "duration": "10h"}]


def test_bad_windows_are_named_by_index():
    spec = NodePoolSpec(instance_types=["g6e.xlarge"], peak_windows=[("45 5 * *", "11h"), ("0 7 * * *", "90s")])
    assert [(p.path, p.expected) for p in spec.problems("pools.l40s")] == [
        ("pools.l40s.peak_windows[0][0]", "a cron schedule of five fields (e.g. '45 5 * * 1-5') or @daily/@weekly/..."),
        ("pools.l40s.peak_windows[1][1]", "a duration in h and m, e.g. 13h or 13h15m")]
    with pytest.raises(ValidationError):
        NodePoolSpec(instance_types=["g6e.xlarge"], peak_windows=[("0 7 * * *",)])
