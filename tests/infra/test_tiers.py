"""Tiers as data: the facts file of each tier folder, its validation (every problem with the file, key path, value and
expectation), the policy-pack configs made from it, and a tier copied into a new folder that plans and passes the
policy report with no Python change."""

import json
from pathlib import Path
import shutil

import pytest
import yaml

import infra.config
import infra.tiers
from infra import policy_cli
from infra.config import ConfigError, build_settings, load_tier_preset, read_stack_file
from infra.program import plan_stack
from infra.tiers import (TierError, TierFacts, facts_markdown, load_tier, main, pack_config_for, stale_policy_configs,
                         tier_names, write_policy_configs)
from policies.pack import CONFIG_DIR, LEVEL_FACTS, RULES
from tests.kit import ROOT

SHIPPED = ("growth", "prototype", "scale")


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    """A copy of the repository's stacks/ that the loader, the config and the sections read instead."""
    copy = tmp_path / "stacks"
    # the shipped tiers only: a tier a team adds to stacks/tiers must not change what these tests expect
    extra = {p.name for p in (ROOT / "stacks" / "tiers").iterdir() if p.is_dir() and p.name not in SHIPPED}
    shutil.copytree(ROOT / "stacks", copy, ignore=lambda d, names: [n for n in names if n in extra
                                                                     and Path(d).name == "tiers"])
    monkeypatch.setattr(infra.tiers, "TIERS_DIR", copy / "tiers")
    monkeypatch.setattr(infra.config, "TIERS_DIR", copy / "tiers")
    monkeypatch.setattr(infra.config, "STACKS_DIR", copy)
    return copy


def new_tier(stacks, name, *, base="growth", **facts):
    """Copy a tier folder; ``facts`` set dotted fact paths (``caps__warmAccelerators=1``) in its tier.yaml."""
    folder = stacks / "tiers" / name
    shutil.copytree(stacks / "tiers" / base, folder)
    doc = yaml.safe_load((folder / "tier.yaml").read_text())
    for key, value in facts.items():
        *parents, leaf = key.split("__")
        node = doc
        for p in parents:
            node = node[p]
        node[leaf] = value
    (folder / "tier.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def stack_on(stacks, tier, *, base="staging", extra=None, name="ent"):
    """A stack file like ``base``'s on another tier (in a folder of its own, so ``name`` may be a shipped stack's)."""
    doc = yaml.safe_load((stacks / f"Pulumi.{base}.yaml").read_text())
    doc["config"]["genai-scale:tier"] = tier
    doc["config"].update(extra or {})
    folder = stacks / f"on-{tier}"
    folder.mkdir(exist_ok=True)
    path = folder / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def tier_error(stacks, name, text: str | None = None, edit=None) -> str:
    """The message of loading tier ``name`` after writing ``text`` as its tier.yaml (or applying ``edit`` to it)."""
    folder = stacks / "tiers" / name
    if not folder.exists():
        shutil.copytree(stacks / "tiers" / "growth", folder)
    if edit is not None:
        doc = yaml.safe_load((folder / "tier.yaml").read_text())
        edit(doc)
        text = yaml.safe_dump(doc)
    if text is not None:
        (folder / "tier.yaml").write_text(text)
    with pytest.raises(TierError) as err:
        load_tier(name)
    return str(err.value)


# --- the shipped tiers ----------------------------------------------------------------------------------------------

def test_tiers_are_the_folders():
    assert set(SHIPPED) <= set(tier_names())
    assert all(isinstance(load_tier(t), TierFacts) for t in tier_names())


def test_the_preset_loader_skips_the_facts_file():
    preset = load_tier_preset("growth")
    assert "nodeGroups" in preset and "serving" in preset
    assert not {"acceleratorsScaleToZero", "multiAz", "caps", "policy", "publicAlbWaf"} & set(preset)
    assert preset["bedrock"]["modelId"] and "provisionedThroughput" not in preset["bedrock"]  # the stack's bedrock


# What the code held per tier before tiers became data (policies/cost.py, reliability.py, security_edge.py, _rule.py
# and infra/sections/managed.py at the commit before): the shipped facts must reproduce it exactly.
BEFORE = {
    # tier: (scale-to-zero required, may buy Bedrock PT, may commit, SageMaker endpoints, eks-multi-az,
    #        cache-multi-az, cache-automatic-failover, alb-waf-on-public, H100 cap, warm cap, cost level)
    "prototype": (True, False, False, False, False, False, False, False, 1, 0, "advisory"),
    "growth": (False, True, False, True, True, True, False, True, 2, 2, "mandatory"),
    "scale": (False, True, True, True, True, True, True, True, 4, 4, "mandatory"),
}


@pytest.mark.parametrize("tier", SHIPPED)
def test_shipped_facts_reproduce_the_behaviour_before(tier):
    f = load_tier(tier)
    assert (f.accelerators_scale_to_zero, f.bedrock.provisioned_throughput, f.bedrock.commitment, f.sagemaker_endpoints,
            f.multi_az.cluster, f.multi_az.cache_replica, f.multi_az.cache_auto_failover, f.public_alb_waf,
            f.caps.on_demand_h100_nodes, f.caps.warm_accelerators, f.policy.cost_enforcement) == BEFORE[tier]


@pytest.mark.parametrize("tier", SHIPPED)
def test_shipped_pack_config_keeps_the_levels_and_tier_of_before(tier):
    # the committed policies/config/<tier>.json held {"enforcementLevel", "tier"} per policy, in this order: cost rules
    # advisory in prototype except the scale-to-zero rules (node groups, workloads pinned without an autoscaler, async
    # SageMaker endpoints, the embedding service),
    # everything else mandatory; the capacity rules (added later) take a level fact each (test_capacity.py)
    cfg = pack_config_for(tier)
    assert list(cfg) == list(RULES)
    for rid, rule in RULES.items():
        if rid in LEVEL_FACTS:
            assert cfg[rid]["tier"] == tier
            continue
        advisory = tier == "prototype" and rule.concern == "cost" and rid not in (
            "accelerator-scale-to-zero-in-prototype", "accelerator-workload-scales-to-zero",
            "aurora-scale-to-zero-in-prototype", "sagemaker-async-scale-to-zero", "embedding-service-scale-to-zero")
        assert cfg[rid]["enforcementLevel"] == ("advisory" if advisory else "mandatory"), rid
        assert cfg[rid]["tier"] == tier
        assert set(cfg[rid]) == {"enforcementLevel", "tier", *rule.facts}


def test_committed_policy_configs_are_current():
    # `python -m infra.tiers --write-policy-configs` rewrites them; this fails when a tier file or a rule changes and
    # the files do not
    assert stale_policy_configs() == []
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.json")) == sorted(tier_names())


def test_write_policy_configs_writes_every_tier_and_removes_gone_ones(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    written = write_policy_configs(out_dir=tmp_path)
    assert [p.name for p in written] == [f"{t}.json" for t in tier_names()]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{t}.json" for t in sorted(tier_names())]
    for tier in tier_names():
        assert (tmp_path / f"{tier}.json").read_text() == (CONFIG_DIR / f"{tier}.json").read_text()
        assert json.loads((tmp_path / f"{tier}.json").read_text()) == pack_config_for(tier)


def test_stale_configs_are_named(stacks, tmp_path):
    out = tmp_path / "config"
    write_policy_configs(out_dir=out)
    assert stale_policy_configs(out_dir=out) == []
    new_tier(stacks, "enterprise")
    (stacks / "tiers" / "scale" / "tier.yaml").write_text(
        (stacks / "tiers" / "scale" / "tier.yaml").read_text().replace("onDemandH100Nodes: 4", "onDemandH100Nodes: 5"))
    (out / "gone.json").write_text("{}")
    stale = stale_policy_configs(out_dir=out)
    assert [line.rsplit("/", 1)[-1] for line in stale] == [
        "enterprise.json: missing (tier enterprise)", "scale.json: differs from the facts of tier scale",
        "gone.json: no tier folder gone"]


def test_docs_carry_the_tier_facts_table():
    # regenerate with `python -m infra.tiers` and paste into docs/policies.md
    assert facts_markdown() in (ROOT / "docs" / "policies.md").read_text()


def test_command_line(capsys):
    assert main(["--check"]) == 0
    assert main([]) == 0
    assert capsys.readouterr().out == facts_markdown()


def test_command_line_names_a_broken_tier_file(capsys, stacks):
    (stacks / "tiers" / "growth" / "tier.yaml").write_text("publicAlbWaf: maybe\n")
    assert main(["--check"]) == 2
    err = capsys.readouterr().err
    assert "growth/tier.yaml: invalid tier facts" in err and "publicAlbWaf = 'maybe': expected true or false" in err


# --- validation: one test per rule ----------------------------------------------------------------------------------

def test_unknown_tier_with_did_you_mean(stacks):
    with pytest.raises(TierError) as err:
        load_tier("groth")
    assert "tier = 'groth': one of growth, prototype, scale (did you mean \"growth\"?)" in str(err.value)


def test_no_tier_folder_at_all(tmp_path):
    with pytest.raises(TierError) as err:
        load_tier("growth", tmp_path / "empty")
    assert f"tier = 'growth': one of (no tier folder in {tmp_path / 'empty'})" in str(err.value)


def test_folder_name_must_be_a_label_value(stacks):
    shutil.copytree(stacks / "tiers" / "growth", stacks / "tiers" / "Big_Tier")
    with pytest.raises(TierError) as err:
        load_tier("Big_Tier")
    assert "tier = 'Big_Tier': lowercase letters, digits and '-'" in str(err.value)


def test_facts_file_is_required(stacks):
    (stacks / "tiers" / "bare").mkdir()
    shutil.copy(stacks / "tiers" / "growth" / "edge.yaml", stacks / "tiers" / "bare" / "edge.yaml")
    with pytest.raises(TierError) as err:
        load_tier("bare")
    text = str(err.value)
    assert text.startswith(f"{stacks / 'tiers' / 'bare'}: invalid tier: 1 problem")
    assert "tier.yaml: required: every tier folder holds its facts" in text


def test_yaml_syntax(stacks):
    text = tier_error(stacks, "broken", "bedrock: [unclosed\n")
    assert "broken/tier.yaml: cannot parse: 1 problem" in text and "line 2: not valid YAML" in text


def test_facts_are_a_mapping(stacks):
    assert "= ['a', 'b']: a mapping of tier facts" in tier_error(stacks, "listy", "- a\n- b\n")


def test_unknown_keys_with_did_you_mean(stacks):
    def edit(doc):
        doc["publicAlbWav"] = doc.pop("publicAlbWaf")
        doc["caps"]["onDemandH100Node"] = doc["caps"].pop("onDemandH100Nodes")
    text = tier_error(stacks, "typo", edit=edit)
    assert "publicAlbWav: unknown key (did you mean \"publicAlbWaf\"?)" in text
    assert "caps.onDemandH100Node: unknown key (did you mean \"onDemandH100Nodes\"?)" in text
    assert "publicAlbWaf: required" in text and "caps.onDemandH100Nodes: required" in text


def test_every_key_is_required(stacks):
    text = tier_error(stacks, "partial", edit=lambda doc: doc.pop("sagemakerEndpoints"))
    assert "  - sagemakerEndpoints: required" in text


def test_switches_are_booleans_not_strings(stacks):
    text = tier_error(stacks, "yes", edit=lambda doc: doc["multiAz"].update(cluster="yes"))
    assert "multiAz.cluster = 'yes': expected true or false" in text


def test_caps_are_whole_numbers_from_zero(stacks):
    def edit(doc):
        doc["caps"].update(warmAccelerators=-1, onDemandH100Nodes=2.5)
    text = tier_error(stacks, "caps", edit=edit)
    assert "caps.warmAccelerators = -1: expected a number >= 0" in text
    assert "caps.onDemandH100Nodes = 2.5: expected an integer" in text


def test_cost_enforcement_is_a_level(stacks):
    text = tier_error(stacks, "strict", edit=lambda doc: doc["policy"].update(costEnforcement="strict"))
    assert "policy.costEnforcement = 'strict': expected one of 'advisory' or 'mandatory'" in text


def test_commitment_needs_provisioned_throughput(stacks):
    def edit(doc):
        doc["bedrock"].update(provisionedThroughput=False, commitment=True)
    text = tier_error(stacks, "odd", edit=edit)
    assert "bedrock.commitment = True: false when bedrock.provisionedThroughput is false" in text


def test_every_problem_at_once_with_the_file_in_the_title(stacks):
    def edit(doc):
        doc["caps"]["warmAccelerators"] = -1
        doc["policy"]["costEnforcement"] = "strict"
        doc["bedrock"].update(provisionedThroughput=False, commitment=True)
    text = tier_error(stacks, "many", edit=edit)
    assert text.startswith(f"{stacks / 'tiers' / 'many' / 'tier.yaml'}: invalid tier facts: 3 problems")


def test_a_stack_on_a_tier_with_a_bad_facts_file_reports_the_file(stacks):
    new_tier(stacks, "enterprise", caps__warmAccelerators=-1)
    with pytest.raises(ConfigError) as err:
        plan_stack(config_file=str(stack_on(stacks, "enterprise")))
    text = str(err.value)
    assert "enterprise/tier.yaml: invalid tier facts: 1 problem" in text
    assert "caps.warmAccelerators = -1: expected a number >= 0" in text


def test_the_stack_tier_is_checked_against_the_folders(stacks):
    raw = read_stack_file(stacks / "Pulumi.staging.yaml")
    raw["genai-scale:tier"] = "enterprize"
    new_tier(stacks, "enterprise")
    with pytest.raises(ConfigError) as err:
        build_settings(raw, source="Pulumi.staging.yaml")
    assert ("genai-scale:tier = 'enterprize': one of enterprise, growth, prototype, scale "
            "(did you mean \"enterprise\"?)") in str(err.value)


# --- a new tier is a copied folder ----------------------------------------------------------------------------------

def test_a_tier_copied_from_growth_plans_and_passes_the_policy_report(stacks, capsys):
    new_tier(stacks, "enterprise")
    path = stack_on(stacks, "enterprise", name="staging")
    plan, cfg = plan_stack(config_file=str(path))
    staging, _ = plan_stack(config_file=str(stacks / "Pulumi.staging.yaml"))
    assert cfg.tier == "enterprise"
    [cluster] = [r for r in plan.resources if r.type == "aws:eks/cluster:Cluster"]
    assert cluster.inputs["tags"]["tier"] == "enterprise"
    # the same stack as staging on growth, but for the tier's name
    as_json = lambda p: json.dumps(p.to_json(), sort_keys=True)  # noqa: E731
    assert as_json(plan).replace('"enterprise"', '"growth"') == as_json(staging)

    assert not (CONFIG_DIR / "enterprise.json").exists()  # no committed config: built from the folder on the fly
    growth = pack_config_for("growth")
    assert pack_config_for("enterprise") == {rid: {**e, "tier": "enterprise"} for rid, e in growth.items()}
    code = policy_cli.main(["--config-file", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    doc = json.loads(out)
    assert doc["violations"] == [] and doc["policies_run"] == len(RULES)


def test_a_new_tier_s_caps_reach_the_policy_report(stacks, capsys):
    new_tier(stacks, "lean", caps__onDemandH100Nodes=0)
    h100 = {"h100": {"instanceType": "p5.48xlarge", "minSize": 0, "maxSize": 1, "capacityType": "ON_DEMAND"}}
    path = stack_on(stacks, "lean", extra={"genai-scale:nodeGroups": h100})
    code = policy_cli.main(["--config-file", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "[mandatory] on-demand-h100-max-size-cap (high): h100: on-demand p5.48xlarge node group maxSize 1 " \
           "exceeds the lean tier cap of 0" in out


def test_a_new_tier_s_rights_reach_the_stack_checks(stacks):
    new_tier(stacks, "frugal", sagemakerEndpoints=False, bedrock__provisionedThroughput=False)
    bedrock = {"genai-scale:bedrock": {"purchase": True}}
    with pytest.raises(ConfigError) as err:
        plan_stack(config_file=str(stack_on(stacks, "frugal", extra=bedrock)))
    text = str(err.value)
    assert "genai-scale:sagemaker.endpoints = ['qwen7b']: empty in the frugal tier" in text
    assert "genai-scale:bedrock.purchase = True: false in the frugal tier" in text

    new_tier(stacks, "committed", bedrock__commitment=True)
    commit = {"genai-scale:bedrock": {"purchase": True, "commitment": "OneMonth"}}
    _, cfg = plan_stack(config_file=str(stack_on(stacks, "committed", extra=commit, name="c")))
    assert cfg.bedrock.commitment == "OneMonth"
    with pytest.raises(ConfigError, match="genai-scale:bedrock.commitment = 'OneMonth': 'none' in the growth tier"):
        plan_stack(config_file=str(stack_on(stacks, "growth", extra=commit, name="g")))


def test_the_tier_file_explains_every_key():
    # every key of the shipped tier files sits under a comment (on its line or just above)
    for tier in SHIPPED:
        lines = (ROOT / "stacks" / "tiers" / tier / "tier.yaml").read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
                assert "#" in line or lines[i - 1].lstrip().startswith("#"), (tier, line)
        assert lines[0].startswith(f"# {tier} tier")
