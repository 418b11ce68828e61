"""bench/coldstart: the phase figures are the cited ones, tier presets choose the scenario, and one row prints."""

from bench.coldstart import model as cs


def test_8b_phases_are_the_cited_figures():
    before = cs.phases(cs.MODELS[0], cs.Scenario())
    assert before == {"node": 240.0, "image": 300.0, "weights": round(61 + 47.99, 1), "compile": 200.0}
    best = cs.phases(cs.MODELS[0], cs.Scenario(provisioner="karpenter", soci=True, streamer=True, warm_compile=True))
    assert best == {"node": 60.0, "image": 204.0, "weights": 14.3, "compile": 64.0}


def test_weights_scale_with_the_bytes_one_node_holds():
    m405 = next(m for m in cs.MODELS if m.name == "405b")
    w = cs.phases(m405, cs.Scenario(streamer=True))["weights"]
    assert w == round(14.34 * 405.9 / 2 / 8.03, 1)


def test_tier_presets_choose_the_after_scenario(tmp_path):
    tier = tmp_path / "stacks" / "tiers" / "t"
    tier.mkdir(parents=True)
    (tier / "serving.yaml").write_text("serving:\n  models:\n    a: {loadFormat: runai_streamer}\n")
    (tier / "foundation.yaml").write_text("foundation:\n  nodeProvisioner: karpenter\n")
    assert cs.tier_scenario("t", tmp_path) == cs.Scenario(provisioner="karpenter", streamer=True, soci=True)
    (tier / "serving.yaml").write_text("serving: {}\n")
    (tier / "foundation.yaml").write_text("nodeGroups:\n  a: {fastImagePull: true}\n  b: {fastImagePull: false}\n")
    assert cs.tier_scenario("t", tmp_path) == cs.Scenario()  # one group pulls the standard way: no saving assumed
    (tier / "foundation.yaml").unlink()
    assert cs.tier_scenario("t", tmp_path) == cs.Scenario(soci=True)  # the node groups' default


def test_a_shared_compile_cache_makes_the_compile_warm(tmp_path):
    tier = tmp_path / "stacks" / "tiers" / "t"
    tier.mkdir(parents=True)
    (tier / "serving.yaml").write_text("serving:\n  compileCache: {enabled: true}\n")
    assert cs.tier_scenario("t", tmp_path) == cs.Scenario(soci=True, warm_compile=True)
    (tier / "serving.yaml").write_text("serving:\n  compileCache: {enabled: false}\n")
    assert cs.tier_scenario("t", tmp_path).warm_compile is False


def test_the_scale_preset_streams_and_one_row_prints(capsys):
    assert cs.tier_scenario("scale").streamer  # stacks/tiers/scale/serving.yaml sets loadFormat
    assert cs.tier_scenario("scale").warm_compile and not cs.tier_scenario("prototype").warm_compile
    assert cs.main(["--tier", "scale", "--model", "8b"]) == 0
    out = capsys.readouterr().out
    assert "scale" in out and "8b" in out and "before s" in out
