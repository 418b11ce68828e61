"""The capacity section: its config rules (each message), how the stack's targets become each target's demand (hand
computed), how the stack's settings become the planner's targets, and the prod preset's traffic profile."""

from __future__ import annotations

import math

import pytest

from infra.config import ROOT, ConfigError, build_settings, load, read_stack_file
from infra.sections import capacity


def with_capacity(cap: dict, stack: str = "staging", **more) -> dict:
    raw = read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    raw["genai-scale:capacity"] = cap
    raw.update(more)
    return raw


def settings(cap: dict, stack: str = "staging", **more):
    return build_settings(with_capacity(cap, stack, **more), source=f"stacks/Pulumi.{stack}.yaml")


def problems_of(cap: dict, stack: str = "staging", **more) -> str:
    with pytest.raises(ConfigError) as exc:
        settings(cap, stack, **more)
    return str(exc.value)


# --- config rules -----------------------------------------------------------------------------------------------------

def test_a_target_that_is_not_served_is_named_with_the_targets_that_are():
    cfg = load(stack="staging")[2]
    text = problems_of({"targets": {"llama-8c": {"share": 0.5}}})
    assert "genai-scale:capacity.targets.llama-8c = 'llama-8c': a serving target of this stack: " in text
    assert ", ".join(capacity.target_kinds(cfg)) in text and 'did you mean "llama-8b"' in text


def test_share_and_rate_together_and_shares_above_one_are_refused():
    text = problems_of({"targets": {"llama-8b": {"share": 0.7, "peakRequestsPerSecond": 3}, "bedrock": {
        "share": 0.6}}}, stack="dev")
    assert ("genai-scale:capacity.targets.llama-8b.share = 0.7: either share or peakRequestsPerSecond, not both"
            in text)
    assert "genai-scale:capacity.targets = {'llama-8b': 0.7, 'bedrock': 0.6}: shares adding up to at most 1 (they " \
           "add up to 1.3)" in text


def test_batch_keys_belong_to_batch_and_rates_do_not():
    text = problems_of({"targets": {"llama-8b": {"requestsPerDay": 1000}, "batch": {"share": 0.2}}})
    assert ("genai-scale:capacity.targets.llama-8b.requestsPerDay = 1000.0: batch only (the daily volume of the batch "
            "target)") in text
    assert ("genai-scale:capacity.targets.batch.share = 0.2: unset on batch: give its requestsPerDay and "
            "deadlineHours") in text


def test_off_peak_above_peak_and_pre_scale_off_a_vllm_model_are_refused():
    text = problems_of({"targets": {"llama-8b": {"peakRequestsPerSecond": 2, "offPeakRequestsPerSecond": 3},
                                    "bedrock": {"preScale": False}}})
    assert "genai-scale:capacity.targets.llama-8b.offPeakRequestsPerSecond = 3.0: <= peakRequestsPerSecond (2)" in text
    assert "genai-scale:capacity.targets.bedrock.preScale = False: vLLM models only" in text


def test_traffic_shapes_are_checked_hour_by_hour():
    text = problems_of({"traffic": {"timezone": "Mars/Olympus", "weekday": [0.5] * 23}})
    assert "capacity.traffic.timezone" in text and "an IANA time zone such as UTC or America/New_York" in text
    assert "capacity.traffic.weekday" in text and "24" in text
    text = problems_of({"traffic": {"weekday": [0.5] * 23 + [1.5]}})
    assert "out of range: hour 23: 1.5" in text
    text = problems_of({"traffic": {"timezone": "UTC"}})
    assert "weekday (24 fractions of the peak, optionally weekend) or historyFile" in text


def test_a_missing_history_file_is_named(tmp_path):
    text = problems_of({"traffic": {"historyFile": str(tmp_path / "none.csv")}})
    assert "genai-scale:capacity.traffic.historyFile" in text and "a readable CSV file" in text


def test_bad_history_rows_are_listed_with_their_line(tmp_path):
    f = tmp_path / "history.csv"
    f.write_text("timestamp,requests_per_second\n2026-11-02T10:00:00,abc\n")
    text = problems_of({"traffic": {"historyFile": str(f)}})
    assert "genai-scale:capacity.traffic.historyFile" in text and ":2" in text


def test_a_measured_profile_needs_increasing_concurrency():
    point = {"outputTokensPerSecond": 100, "ttftMs": 50, "itlMs": 20}
    text = problems_of({"profiles": [{"model": "meta-llama/Llama-3.1-8B-Instruct", "paramsBillion": 8,
                                      "accelerator": "A10G", "inputTokens": 1000, "outputTokens": 200,
                                      "source": "vllm bench serve", "asOf": "2026-11-30",
                                      "points": [{"concurrency": 4, **point}, {"concurrency": 2, **point}]}]})
    assert "points with strictly increasing concurrency (got [4, 2])" in text


# --- demand -------------------------------------------------------------------------------------------------------

def test_targets_without_a_share_split_what_the_others_leave():
    cfg = settings({"targets": {"llama-8b": {"share": 0.5}}}, stack="dev")  # the prototype preset sets no shares
    t = cfg.targets
    demands, notes = capacity.demands(cfg)
    online = [n for n, k in capacity.target_kinds(cfg).items() if k != "batch"]
    rest = [n for n in online if n != "llama-8b"]
    assert demands["llama-8b"].peak_requests_per_second == pytest.approx(0.5 * t.requests_per_second)
    for n in rest:
        assert demands[n].peak_requests_per_second == pytest.approx(0.5 / len(rest) * t.requests_per_second)
    assert any(", ".join(rest) in n and "share" in n for n in notes)
    # the request shape: output tokens = tokensPerSecond / requestsPerSecond (dev: 200 / 2 = 100)
    assert demands["llama-8b"].output_tokens == round(t.tokens_per_second / t.requests_per_second) == 100
    assert demands["llama-8b"].prompt_tokens == t.prompt_tokens
    # no traffic profile: off-peak is offPeakShare (0.25) of the peak
    assert demands["llama-8b"].off_peak_requests_per_second == pytest.approx(0.25 * 0.5 * t.requests_per_second)


def test_absolute_rates_and_slo_overrides_win():
    cfg = settings({"targets": {"llama-8b": {"peakRequestsPerSecond": 7, "offPeakRequestsPerSecond": 1,
                                             "outputTokens": 300, "ttftP95Ms": 800}}}, stack="dev")
    d = capacity.demands(cfg)[0]["llama-8b"]
    assert (d.peak_requests_per_second, d.off_peak_requests_per_second, d.output_tokens) == (7, 1, 300)
    assert d.slo.ttft_p95_ms == 800


def test_the_batch_target_takes_its_daily_volume():
    cfg = settings({"targets": {"batch": {"requestsPerDay": 864_000, "deadlineHours": 8}}})
    d = capacity.demands(cfg)[0]["batch"]
    assert d.batch_requests_per_day == 864_000 and d.batch_deadline_hours == 8
    assert d.peak_requests_per_second == pytest.approx(10)  # 864,000 / 86,400 s


def test_the_traffic_shape_sets_off_peak_demand():
    shape = [0.2] * 8 + [1.0] * 16
    cfg = settings({"traffic": {"weekday": shape, "weekend": [0.1] * 24}})
    assert capacity.traffic_shape(cfg) == [*(shape * 5), *([0.1] * 24 * 2)]
    d = capacity.demands(cfg)[0]["llama-8b"]
    assert d.off_peak_requests_per_second == pytest.approx(0.1 * d.peak_requests_per_second)


# --- targets ------------------------------------------------------------------------------------------------------

def test_prod_targets_as_the_planner_sees_them():
    cfg = load(stack="prod")[2]
    specs = capacity.target_specs(cfg)
    assert set(specs) == set(capacity.target_kinds(cfg))
    s = specs["llama-8b"]  # g5.12xlarge: 4 x A10G, one GPU per replica
    assert (s.kind, s.accelerator, s.instance_type, s.devices_per_replica, s.replicas_per_node) == (
        "vllm", "A10G", "g5.12xlarge", 1, 4)
    assert (s.min_replicas, s.max_replicas, s.node_min, s.node_max) == (4, 64, 2, 16)
    s = specs["llama-8b-inf2"]  # inf2.48xlarge: 12 devices, 24 NeuronCores; TP 2 cores = 1 device -> 12 per node
    assert (s.accelerator, s.tensor_parallel, s.devices_per_replica, s.replicas_per_node) == ("Inferentia2", 1, 1, 12)
    s = specs["llama-405b"]  # 2 x p5.48xlarge per replica, TP 8 x PP 2
    assert (s.tensor_parallel, s.pipeline_parallel, s.nodes_per_replica, s.devices_per_replica) == (8, 2, 2, 16)
    s = specs["llama-70b"]
    assert (s.accelerator, s.tensor_parallel, s.replicas_per_node) == ("H100", 8, 1)
    assert specs["qwen32b"].kind == "sagemaker" and specs["qwen32b"].instance_type == "ml.g6e.12xlarge"
    b = specs["bedrock"]
    assert (b.kind, b.model, b.model_units, b.commitment) == ("bedrock-provisioned", "amazon.nova-lite-v1:0:24k", 1,
                                                              "1month")
    assert specs["batch"].kind == "batch" and specs["batch"].capacity_type == "spot"
    assert specs["shared-l40s"].kind == "pool" and len(specs["shared-l40s"].pool_members) == 3


def test_prod_carries_a_weekly_traffic_profile_and_pre_scales_its_vllm_models():
    cfg = load(stack="prod")[2]
    assert cfg.capacity.traffic is not None and cfg.capacity.traffic.timezone == "America/New_York"
    result = capacity.plan(cfg)
    assert result.floors, "no cron floors were derived"
    for name, floors in result.floors.items():
        assert capacity.target_kinds(cfg)[name] == "vllm"
        assert all(f.timezone == "America/New_York" for f in floors)
        assert all(f.desired_replicas > cfg.serving.models[name].min_replicas for f in floors)
        assert result.lead_minutes[name] > 0


def test_every_target_report_is_priced_or_says_why():
    for stack in ("dev", "staging", "prod"):
        result = capacity.plan(load(stack=stack)[2])
        for r in result.reports:
            if r.usd_per_hour_at_peak is None and r.demand is not None:  # a missing price, or no replica count
                assert any(f.verdict == "unknown" or f.rule == "slo-unreachable" for f in r.findings), (
                    stack, r.target.name)


def test_over_provisioned_ratio_and_headroom_reach_the_planner():
    base = capacity.plan(settings({}))
    tuned = capacity.plan(settings({"headroom": 0.4}))
    a = next(r for r in base.reports if r.target.name == "llama-8b")
    b = next(r for r in tuned.reports if r.target.name == "llama-8b")
    if a.replica_requests_per_second:
        assert b.replica_requests_per_second == pytest.approx(a.replica_requests_per_second / 2)
        assert b.replicas_at_peak == math.ceil(b.demand.peak_requests_per_second / b.replica_requests_per_second)


def test_removing_a_model_in_the_stack_file_names_its_preset_capacity_target():
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml")
    raw["genai-scale:serving"] = {"models": {"llama-8b-inf2": None}}
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.prod.yaml")
    assert ("genai-scale:capacity.targets.llama-8b-inf2 = 'llama-8b-inf2': a serving target of this stack: "
            in str(exc.value))
    assert ("the stack file removes genai-scale:serving.models.llama-8b-inf2 (null): refer to one that remains, or "
            "remove genai-scale:capacity.targets.llama-8b-inf2 as well (null)") in str(exc.value)
    raw["genai-scale:capacity"] = {"targets": {"llama-8b-inf2": None}}
    assert "llama-8b-inf2" not in build_settings(raw, source="stacks/Pulumi.prod.yaml").capacity.targets


def test_numbers_and_switches_are_not_coerced_from_booleans():
    text = problems_of({"targets": {"llama-8b": {"peakRequestsPerSecond": True, "preScale": "yes"}}})
    assert "genai-scale:capacity.targets.llama-8b.peakRequestsPerSecond = True" in text
    assert "genai-scale:capacity.targets.llama-8b.preScale = 'yes'" in text


def test_a_measured_profile_names_a_known_accelerator_and_a_past_date():
    point = {"concurrency": 1, "outputTokensPerSecond": 30, "ttftMs": 200, "itlMs": 30}
    text = problems_of({"profiles": [{"model": "meta-llama/Llama-3.1-8B-Instruct", "paramsBillion": 8,
                                      "accelerator": "A10Gx", "inputTokens": 1000, "outputTokens": 200,
                                      "source": "vllm bench serve", "asOf": "2999-01-01", "points": [point]}]})
    assert "genai-scale:capacity.profiles[0].accelerator = 'A10Gx': an accelerator of the catalogue: A100, A10G" in text
    assert "genai-scale:capacity.profiles[0].asOf" in text and "not in the future" in text


def test_a_quiet_weekend_is_a_valid_shape_but_a_silent_week_is_not():
    assert settings({"traffic": {"weekday": [1.0] * 24, "weekend": [0] * 24}}).capacity.traffic.weekend == [0] * 24
    text = problems_of({"traffic": {"weekday": [0] * 24, "weekend": [0] * 24}})
    assert "at least one hour of the week above 0 (weekday or weekend)" in text


def test_a_history_file_over_a_preset_shape_says_how_to_remove_the_shape(tmp_path):
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml")
    raw["genai-scale:capacity"] = {"traffic": {"historyFile": str(tmp_path / "h.csv")}}
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.prod.yaml")
    assert "weekday: null and weekend: null" in str(exc.value)


def test_a_tokens_trigger_far_from_the_plan_is_noted():
    cfg = load(stack="prod")[2]
    r = next(r for r in capacity.plan(cfg).reports if r.target.name == "llama-8b")
    per_replica = cfg.serving.models["llama-8b"].autoscaling.tokens_per_second_per_replica  # 800 in the preset
    ratio = per_replica / r.operating_point.output_tokens_per_second
    assert ratio > capacity.TRIGGER_MISMATCH
    assert any(n.startswith(f"serving.models.llama-8b.autoscaling.tokensPerSecondPerReplica (800) is {ratio:.2g} x ")
               and "adds replicas late" in n for n in r.notes)
    # within the tolerance: no note
    r70 = next(r for r in capacity.plan(cfg).reports if r.target.name == "llama-70b")
    assert not any("tokensPerSecondPerReplica" in n for n in r70.notes)  # the 70B sets no tokens trigger


def test_an_estimated_inferentia2_profile_says_the_held_out_check_found_it_optimistic():
    reports = {r.target.name: r for r in capacity.plan(load(stack="prod")[2]).reports}
    assert any("optimistic on Inferentia2" in n for n in reports["llama-8b-inf2"].notes)
    assert not any("optimistic on Inferentia2" in n for n in reports["llama-8b"].notes)  # A10G: no such finding


def test_off_peak_above_a_share_derived_peak_is_refused():
    # dev: 2 req/s x share 0.5 = 1 req/s at peak
    text = problems_of({"targets": {"llama-8b": {"share": 0.5, "offPeakRequestsPerSecond": 3}}}, stack="dev")
    assert ("genai-scale:capacity.targets.llama-8b.offPeakRequestsPerSecond = 3.0: <= the target's peak (1 req/s "
            "from its share of targets.requestsPerSecond)") in text


def test_a_shape_names_its_peak_hour_and_zone_files_are_not_zones():
    text = problems_of({"traffic": {"weekday": [0.5] * 24}})
    assert "the peak hour is 1.0 (the largest here is 0.5" in text
    text = problems_of({"traffic": {"timezone": "posixrules", "weekday": [1.0] * 24}})
    assert "a file of the host's zoneinfo database" in text or "an IANA time zone" in text


def test_two_profiles_of_one_setup_are_refused():
    point = {"concurrency": 1, "outputTokensPerSecond": 30, "ttftMs": 200, "itlMs": 30}
    prof = {"model": "meta-llama/Llama-3.1-8B-Instruct", "paramsBillion": 8, "accelerator": "A10G",
            "inputTokens": 1000, "outputTokens": 200, "source": "vllm bench serve", "asOf": "2026-11-30",
            "points": [point]}
    text = problems_of({"profiles": [prof, prof]})
    assert "profiles[1] repeats profiles[0]" in text


def test_infinity_is_never_a_rate_or_a_latency():
    text = problems_of({"targets": {"llama-8b": {"peakRequestsPerSecond": float("inf"), "ttftP95Ms": float("inf")}}},
                       stack="dev")
    assert "genai-scale:capacity.targets.llama-8b.peakRequestsPerSecond = inf" in text
    assert "genai-scale:capacity.targets.llama-8b.ttftP95Ms = inf" in text
    raw = read_stack_file(ROOT / "stacks" / "Pulumi.dev.yaml")
    raw["genai-scale:targets"] = {"requestsPerSecond": float("inf")}
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.dev.yaml")
    assert "genai-scale:targets.requestsPerSecond = inf" in str(exc.value)
