"""Stack config validation: every rule reports its key path, the bad value and what was expected, all at once."""

import textwrap

import pytest
import yaml

from infra.config import ConfigError, deep_merge, load


def write(tmp_path, config: dict, name="Pulumi.t.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump({"config": {"aws:region": "us-east-1", **config}}))
    return p


def error_for(tmp_path, config: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        load(config_file=write(tmp_path, config))
    return str(exc.value)


CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
BASE = {"genai-scale:tier": "prototype", "genai-scale:alb": {"certificateArn": CERT}}


def test_valid_stack_files_load():
    for stack, tier in [("dev", "prototype"), ("staging", "growth"), ("prod", "scale")]:
        name, raw, cfg = load(stack=stack)
        assert name == stack and cfg.tier == tier and raw["genai-scale:tier"] == tier


def test_overrides_merge_key_by_key_and_null_removes(tmp_path):
    _, _, cfg = load(config_file=write(tmp_path, {**BASE, "genai-scale:nodeGroups": {
        "a10g": {"maxSize": 5}, "inf2": None, "l4": {"instanceType": "g6.xlarge"}}}))
    assert cfg.node_groups["a10g"].max_size == 5
    assert cfg.node_groups["a10g"].instance_type == "g5.xlarge"  # kept from the preset
    assert "inf2" not in cfg.node_groups
    assert cfg.node_groups["l4"].instance_type == "g6.xlarge"


def test_deep_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3, "d": None}}) == {"a": {"b": 1, "c": 3}}
    assert deep_merge({"a": [1]}, {"a": [2]}) == {"a": [2]}


@pytest.mark.parametrize("config, fragment", [
    ({"genai-scale:alb": {"certificateArn": CERT}}, "genai-scale:tier: required: one of growth, prototype, scale"),
    ({"genai-scale:tier": "protoype"}, "genai-scale:tier = 'protoype': one of growth, prototype, scale (did you mean \"prototype\"?)"),
    ({**BASE, "genai-scale:nodeGroup": {}}, "genai-scale:nodeGroup: unknown key (did you mean \"nodeGroups\"?)"),
    ({**BASE, "genai-scale:nodeGroups": {"a10g": {"minSise": 1}}},
     "genai-scale:nodeGroups.a10g.minSise: unknown key (did you mean \"minSize\"?)"),
    ({**BASE, "genai-scale:nodeGroups": {"a10g": {"maxSize": "lots"}}},
     "genai-scale:nodeGroups.a10g.maxSize = 'lots': expected an integer"),
    ({**BASE, "genai-scale:nodeGroups": {"a10g": {"maxSize": 0}}},
     "genai-scale:nodeGroups.a10g.maxSize = 0: expected a number >= 1"),
    ({**BASE, "genai-scale:nodeGroups": {"h100": {"instanceType": "p5.48xlarge", "minSize": 3, "maxSize": 2}}},
     "genai-scale:nodeGroups.h100.minSize = 3: must be <= maxSize (2)"),
    ({**BASE, "genai-scale:nodeGroups": {"x": {"instanceType": "g9.xlarge"}}},
     "genai-scale:nodeGroups.x.instanceType = 'g9.xlarge': not in the accelerator catalogue"),
    ({**BASE, "genai-scale:nodeGroups": {"h100": {"instanceType": "p5.48xlarge", "capacityType": "CAPACITY_BLOCK"}}},
     "genai-scale:nodeGroups.h100.capacityReservationId: required when capacityType is CAPACITY_BLOCK"),
    ({**BASE, "genai-scale:nodeGroups": {"a10g": {"efa": True}}},
     "genai-scale:nodeGroups.a10g.efa = True: g5.xlarge does not support EFA"),
    ({**BASE, "genai-scale:nodeGroups": {"a10g": {"capacityType": "spot"}}},
     "genai-scale:nodeGroups.a10g.capacityType = 'spot': expected one of 'ON_DEMAND', 'SPOT' or 'CAPACITY_BLOCK'"),
    ({**BASE, "genai-scale:nodeGroups": {"a10g": {"timeSlicingReplicas": 4}},
      "genai-scale:gpuOperator": {"migStrategy": "mixed"}},
     "genai-scale:nodeGroups.a10g.timeSlicingReplicas = 4: time-slicing cannot be combined with "
     "gpuOperator.migStrategy 'mixed'"),
    ({**BASE, "genai-scale:nodeGroups": {"h100": {"instanceType": "p5.48xlarge", "migConfig": "all-1g.10gb"}}},
     "genai-scale:nodeGroups.h100.migConfig = 'all-1g.10gb': MIG needs gpuOperator.migStrategy single or mixed"),
    ({**BASE, "genai-scale:cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}},
     "genai-scale:cluster.publicAccessCidrs[0] = '0.0.0.0/0': the API endpoint must not be open to the whole internet"),
    ({**BASE, "genai-scale:cluster": {"endpointPublicAccess": True}},
     "genai-scale:cluster.publicAccessCidrs = []: list the CIDRs"),
    ({**BASE, "genai-scale:network": {"azCount": 9}}, "genai-scale:network.azCount = 9: expected a number <= 6"),
    ({**BASE, "genai-scale:network": {"natGateways": "many"}},
     "genai-scale:network.natGateways = 'many': expected one of 'none', 'single' or 'per_az'"),
    ({**BASE, "genai-scale:tags": {"team": None, "owner": "x"}}, "genai-scale:tags = {'owner': 'x'}: must include a team tag"),
    ({**BASE, "genai-scale:clusterAutoscaler": {"scaleDownUnneededTime": "ten minutes"}},
     "genai-scale:clusterAutoscaler.scaleDownUnneededTime = 'ten minutes'"),
])
def test_validation_messages(tmp_path, config, fragment):
    msg = error_for(tmp_path, config)
    assert fragment in msg
    assert "Traceback" not in msg
    assert msg.splitlines()[0].endswith("invalid configuration: 1 problem") or "problems" in msg.splitlines()[0]


def test_every_problem_reported_together_with_the_file(tmp_path):
    msg = error_for(tmp_path, {**BASE, "genai-scale:nodeGroups": {
        "h100": {"instanceType": "p5.48xlarge", "minSize": 3, "maxSize": 2, "capacityType": "CAPACITY_BLOCK"},
        "a10g": {"efa": True}}})
    first = msg.splitlines()[0]
    assert "Pulumi.t.yaml: invalid configuration: 3 problems" in first
    assert "nodeGroups.h100.minSize" in msg and "nodeGroups.h100.capacityReservationId" in msg
    assert "nodeGroups.a10g.efa" in msg


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such stack config file"):
        load(config_file=tmp_path / "Pulumi.none.yaml")
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(textwrap.dedent("""\
        config:
          genai-scale:tier: [prototype
        """))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(config_file=bad)


def test_secure_values_are_never_read_offline(tmp_path):
    p = write(tmp_path, {**BASE, "genai-scale:apiKey": {"secure": "v1:abc"}})
    with pytest.raises(ConfigError) as exc:
        load(config_file=p)
    assert "genai-scale:apiKey: unknown key" in str(exc.value)
    assert "v1:abc" not in str(exc.value)


def test_one_bad_value_never_hides_another_rule(tmp_path):
    msg = error_for(tmp_path, {"genai-scale:tier": "scale", "genai-scale:alb": {"enabled": False},
                               "genai-scale:bedrock": {"modelUnits": 0, "modelId": "amazon.nova-lite-v1:0"},
                               "genai-scale:nodeGroups": {"a10g": {"minSise": 1}, "x": {"instanceType": "x9.huge"}}})
    assert "genai-scale:bedrock.modelUnits = 0: expected a number >= 1" in msg
    assert "genai-scale:bedrock.modelId = 'amazon.nova-lite-v1:0': a contextual variant id" in msg
    assert "genai-scale:nodeGroups.a10g.minSise: unknown key" in msg
    assert "genai-scale:nodeGroups.x.instanceType = 'x9.huge': not in the accelerator catalogue" in msg
    # the typo'd group still exists for the rules that reference it (no spurious "a10g is not a node group")
    assert "nodeGroup = 'a10g'" not in msg
    assert "4 problems" in msg.splitlines()[0]


# --- every mistake at once, structured filtering, renamed keys, per-stack versions ------------------------------

def test_an_unknown_tier_does_not_hide_the_other_mistakes(tmp_path):
    msg = error_for(tmp_path, {"genai-scale:tier": "growht", "genai-scale:netwrk": {"azCount": 3},
                               "genai-scale:nodeGroups": {"a10g": {
                                   "extraTaints": [{"key": "team", "value": "a", "effect": "Sometimes"}],
                                   "accelerator": {"vendor": "nvidia", "accelerator": "X", "count": 1,
                                                   "memoryGib": -1}}}})
    assert msg.startswith("Pulumi.t.yaml: invalid configuration: 4 problems") or "4 problems" in msg.splitlines()[0]
    assert "genai-scale:tier = 'growht': one of growth, prototype, scale (did you mean \"growth\"?)" in msg
    assert "genai-scale:nodeGroups.a10g.accelerator.memoryGib = -1: expected a number > 0" in msg
    assert "genai-scale:nodeGroups.a10g.extraTaints[0].effect = 'Sometimes'" in msg
    assert 'genai-scale:netwrk: unknown key (did you mean "network"?)' in msg
    assert "required" not in msg  # keys the preset would have supplied are not reported


def test_a_cross_section_rule_never_judges_a_default_it_read(tmp_path):
    # maxSize 0 is rejected; the warm-pool rule read maxSize, so it must not judge the default 2 in its place
    msg = error_for(tmp_path, {**BASE, "genai-scale:nodeGroups": {"a10g": {"maxSize": 0}},
                               "genai-scale:serving": {"models": {"llama-8b": {"warmPoolPlaceholders": 2}}}})
    assert "genai-scale:nodeGroups.a10g.maxSize = 0: expected a number >= 1" in msg
    assert "warmPoolPlaceholders" not in msg
    # a node group dropped for a bad required value is not reported again as a missing node group
    msg = error_for(tmp_path, {**BASE, "genai-scale:nodeGroups": {"a10g": {"instanceType": ["g5.2xlarge"]}}})
    assert "instanceType = ['g5.2xlarge']: expected a string" in msg and ".nodeGroup =" not in msg


def test_the_deprecated_labels_key_still_works_with_a_warning(tmp_path):
    from infra.config import ConfigWarning

    with pytest.warns(ConfigWarning, match=r"nodeGroups\.a10g\.labels is deprecated; use "
                                           r"genai-scale:nodeGroups\.a10g\.extraLabels"):
        _, _, cfg = load(config_file=write(tmp_path, {**BASE, "genai-scale:nodeGroups": {
            "a10g": {"labels": {"team": "search"}}}}))
    assert cfg.node_groups["a10g"].extra_labels == {"team": "search"}


def test_gateway_setting_mistakes_are_config_problems_not_tracebacks(tmp_path, capsys):
    from infra.cli import main

    path = write(tmp_path, {"genai-scale:tier": "growth", "genai-scale:gateway": {"minReplicas": 5, "maxReplicas": 2},
                            "genai-scale:alb": {"certificateArn": CERT}})
    assert main(["plan", "--config-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "genai-scale:gateway.maxReplicas = 2: >= minReplicas (5)" in err and "Traceback" not in err


def test_a_version_is_overridden_where_the_component_takes_it(tmp_path):
    from infra.program import plan_stack

    path = write(tmp_path, {**BASE, "genai-scale:gpuOperator": {"chartVersion": "v26.3.0"},
                            "genai-scale:clusterAutoscaler": {"imageTag": "v1.35.1"}})
    plan, _ = plan_stack(config_file=str(path))
    assert plan.one("kubernetes:helm.sh/v3:Release", "gpu-operator").inputs["version"] == "v26.3.0"
    ca = plan.one("kubernetes:helm.sh/v3:Release", "cluster-autoscaler")
    assert ca.inputs["values"]["image"]["tag"] == "v1.35.1"
    assert "versions" in error_for(tmp_path, {**BASE, "genai-scale:versions": {"gpuOperator": "v1"}})


def test_an_unknown_tier_and_every_other_mistake_in_one_message(tmp_path):
    # a near miss is checked as the tier it resembles: schema values, component rules and cross-section rules
    msg = error_for(tmp_path, {"genai-scale:tier": "protoype", "genai-scale:bogus": 1,
                               "genai-scale:nodeGroups": {"a10g": {"minSise": 1, "minSize": 3, "maxSize": 2}},
                               "genai-scale:alb": {"certificateArn": "nope"},
                               "genai-scale:serving": {"models": {"llama-8b": {"nodeGroup": "h200"}}}})
    assert msg.splitlines()[0].endswith("Pulumi.t.yaml: invalid configuration: 6 problems")
    assert msg.splitlines()[1:] == [
        "  - genai-scale:tier = 'protoype': one of growth, prototype, scale (did you mean \"prototype\"?); the other "
        "keys were checked against the prototype preset",
        "  - genai-scale:nodeGroups.a10g.minSise: unknown key (did you mean \"minSize\"?)",
        "  - genai-scale:bogus: unknown key; expected one of: alb, batch, bedrock, cache, capacity, cluster, "
        "clusterAutoscaler, "
        "efaDevicePlugin, gateway, gpuOperator, karpenter, monitoring, network, neuron, nodeGroups, nodeProvisioner, rag, region, "
        "sagemaker, serving, tags, targets, tier",
        "  - genai-scale:nodeGroups.a10g.minSize = 3: must be <= maxSize (2)",
        "  - genai-scale:alb.certificateArn = 'nope': an ACM certificate ARN "
        "arn:aws:acm:<region>:<account>:certificate/<uuid>",
        "  - genai-scale:serving.models.llama-8b.nodeGroup = 'h200': a node group of nodeGroups (a10g, batch-a10g, "
        "inf2)",
    ]


def test_an_unknown_tier_like_no_other_still_checks_the_files_own_keys(tmp_path):
    msg = error_for(tmp_path, {"genai-scale:tier": "enterprise", "genai-scale:alb": {"idleTimeoutSeconds": 5},
                               "genai-scale:netwrk": {}})
    assert "genai-scale:tier = 'enterprise': one of growth, prototype, scale" in msg
    assert "checked against" not in msg  # no preset resembles it: nothing is assumed
    assert "genai-scale:alb.idleTimeoutSeconds = 5: expected a number >= 300" in msg
    assert 'genai-scale:netwrk: unknown key (did you mean "network"?)' in msg
    assert "3 problems" in msg.splitlines()[0]


def test_a_removed_node_group_that_a_model_still_names_is_reported_with_both_paths(tmp_path):
    msg = error_for(tmp_path, {"genai-scale:tier": "scale", "genai-scale:nodeGroups": {"inf2": None},
                               "genai-scale:alb": {"certificateArn": CERT}})
    assert msg.splitlines()[1:] == [
        "  - genai-scale:serving.models.llama-8b-inf2.nodeGroup = 'inf2': a node group of nodeGroups (a10g, batch-a10g, "
        "batch-a10g-2x, batch-a10g-4x, batch-a10g-od, h100, h100-multinode, l40s-pool); the stack file removes genai-scale:nodeGroups.inf2 (null): refer to one that remains, or remove "
        "genai-scale:serving.models.llama-8b-inf2 as well (null)"]
    # removing the model names the preset's capacity share of it the same way
    msg = error_for(tmp_path, {"genai-scale:tier": "scale", "genai-scale:nodeGroups": {"inf2": None},
                               "genai-scale:alb": {"certificateArn": CERT},
                               "genai-scale:serving": {"models": {"llama-8b-inf2": None}}})
    assert msg.splitlines()[1].endswith("the stack file removes genai-scale:serving.models.llama-8b-inf2 (null): refer "
                                        "to one that remains, or remove genai-scale:capacity.targets.llama-8b-inf2 as "
                                        "well (null)")
    # removing the model and its share too plans
    _, _, cfg = load(config_file=write(tmp_path, {
        "genai-scale:tier": "scale", "genai-scale:nodeGroups": {"inf2": None}, "genai-scale:alb": {"certificateArn": CERT},
        "genai-scale:serving": {"models": {"llama-8b-inf2": None}},
        "genai-scale:capacity": {"targets": {"llama-8b-inf2": None}}}))
    assert "inf2" not in cfg.node_groups and "llama-8b-inf2" not in cfg.serving.models


def test_removed_entries():
    from infra.config import removed_entries

    preset = {"nodeGroups": {"a": {}, "b": {}}, "serving": {"models": {"m": {"x": 1}}}}
    assert removed_entries(preset, {"nodeGroups": {"a": None, "c": None}, "serving": {"models": {"m": {"x": None}}}}) \
        == ["nodeGroups.a", "serving.models.m.x"]


def test_a_flat_key_is_reported_with_the_command_that_nests_it_and_without_its_value():
    from infra.config import ConfigError, build_settings

    raw = {"aws:region": "us-east-1", "genai-scale:tier": "prototype",
           "genai-scale:serving.huggingFaceTokenSecretId": "genai/hf-token-value"}
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="Pulumi.x.yaml")
    text = str(exc.value)
    assert ("genai-scale:serving.huggingFaceTokenSecretId: a flat key: settings nest under genai-scale:serving; set it "
            "with `pulumi config set --path 'genai-scale:serving.huggingFaceTokenSecretId' <value>` (with --secret for "
            "a secret), or write it nested in the stack file") in text
    assert "genai/hf-token-value" not in text
