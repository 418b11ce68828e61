"""docs/DEVELOPING.md "Add a policy rule", carried out: a decorated check is registered, runs offline over a real
plan through the same engine as the shipped rules, reads its tier fact from config, and reports."""

from __future__ import annotations

from pulumi_policy import Severity

import policies._rule as rule_api
from policies import engine, pack
from tests.stack_plans import planned


def test_add_a_policy_rule(monkeypatch):
    monkeypatch.setattr(rule_api, "_REGISTRY", {})  # register into a scratch registry

    @rule_api.resource_policy(rule_api.Rule(
        id="demo-node-group-disk-floor", title="Accelerator node volumes hold the model weights",
        description="Launch templates of accelerator node groups give nodes at least `minGib` of disk.",
        concern="reliability", severity=Severity.MEDIUM, remediation="Raise diskSizeGib.",
        config={"minGib": {"type": "integer", "default": 500, "description": "Smallest volume in GiB."}},
    ), types={"aws:ec2/launchTemplate:LaunchTemplate"})
    def disk_floor(s, cfg):
        for bd in s.props.get("blockDeviceMappings") or []:
            size = (bd.get("ebs") or {}).get("volumeSize") or 0
            if size < cfg["minGib"]:
                yield f"{s.name}: {size} GiB < {cfg['minGib']} GiB"

    [reg] = rule_api.registry().values()
    monkeypatch.setitem(pack.REGISTERED, reg.rule.id, reg)  # what importing its module into the pack does
    monkeypatch.setitem(pack.RULES, reg.rule.id, reg.rule)
    resources = planned("dev")[0].resources
    config = {reg.rule.id: {"enforcementLevel": "mandatory"}}

    report = engine.evaluate(resources, config=config)
    found = [v for v in report.violations if v.policy == "demo-node-group-disk-floor"]
    assert found and all("GiB < 500 GiB" in v.message for v in found)

    relaxed = engine.evaluate(resources, config={reg.rule.id: {"enforcementLevel": "mandatory", "minGib": 20}})
    assert [v for v in relaxed.violations if v.policy == "demo-node-group-disk-floor"] == []
