"""`genai-scale capacity`: the report per shipped stack (text and JSON), exit 0 / 1 (a mandatory finding) / 2 (bad
config), --program, the plan's cost summary, and the cron floors and capacity facts the plans render."""

from __future__ import annotations

import json

import pytest
import yaml

from components.catalog import prices
from infra.cli import EXIT_CONFIG, main
from infra.config import ROOT
from tests.stack_plans import planned

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
ANNOTATION = "genai-scale.io/capacity-plan"


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_shipped_stack_reports_offline_and_exits_0(capsys, stack):
    code, out, err = run_cli(capsys, "capacity", "--stack", stack)
    assert code == 0 and err == ""
    assert out.startswith(f"genai-scale capacity: stack {stack} (tier ")
    assert "$/h at min" in out and "$/h at peak" in out and "  total: $" in out
    code, out, _ = run_cli(capsys, "capacity", "--stack", stack, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["stack"] == stack and not doc["mandatory"]
    priced = [t for t in doc["targets"] if t["usd_per_hour_at_min"] is not None and
              t["usd_per_hour_at_peak"] is not None]
    assert doc["totals"]["usdPerHourAtMin"] == pytest.approx(sum(t["usd_per_hour_at_min"] for t in priced), abs=0.01)
    assert doc["totals"]["usdPerHourAtPeak"] == pytest.approx(sum(t["usd_per_hour_at_peak"] for t in priced),
                                                              abs=0.01)
    assert {t["target"]["name"] for t in doc["targets"]} - {t["target"]["name"] for t in priced} == set(
        doc["totals"]["unpriced"])


def test_dev_llama_costs_its_spot_nodes_at_peak(capsys):
    # dev: 2 req/s split equally -> llama-8b carries 1 req/s; its a10g group is SPOT g5.xlarge, one replica per node
    _, out, _ = run_cli(capsys, "capacity", "--stack", "dev", "--json")
    t = next(t for t in json.loads(out)["targets"] if t["target"]["name"] == "llama-8b")
    assert t["demand"]["peak_requests_per_second"] == pytest.approx(1.0)
    assert t["target"]["capacity_type"] == "spot" and t["target"]["instance_type"] == "g5.xlarge"
    typical = prices.spot_range("g5.xlarge").typical_usd_per_hour
    assert t["usd_per_hour_at_peak"] == pytest.approx(t["nodes_at_peak"] * typical)
    assert t["usd_per_hour_at_min"] == 0  # minReplicas 0 and minSize 0: nothing held
    # $/1M output tokens = $/h at peak / (1 req/s x 100 tokens x 3600 s) x 1e6
    assert t["usd_per_million_output_tokens"] == pytest.approx(t["usd_per_hour_at_peak"] / 360_000 * 1e6)


def test_the_where_to_run_table_lists_each_accelerator_once(capsys):
    _, out, _ = run_cli(capsys, "capacity", "--stack", "staging")
    section = out.split("Where to run meta-llama/Llama-3.1-8B-Instruct", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in section.splitlines()[1:] if line.startswith("  ") and not line.startswith("  ...")]
    places = [line.split(":")[0].strip() for line in rows]
    assert len(places) == len(set(places)) and any(p.startswith("vllm ") for p in places)


def test_staging_compares_llama_8b_with_the_bedrock_model_serving_the_same_weights(capsys):
    _, out, _ = run_cli(capsys, "capacity", "--stack", "staging", "--json")
    compare = json.loads(out)["compare"]
    rows = [o for o in compare["meta-llama/Llama-3.1-8B-Instruct"] if o["where"] == "bedrock-on-demand"]
    assert [o["model_id"] for o in rows] == ["meta.llama3-1-8b-instruct-v1:0"]
    # staging requests: 1000 prompt + 150 output tokens; Llama 3.1 8B in us-east-1 is $0.22 per 1M input and output
    # tokens, so one request costs (1000 x 0.22 + 150 x 0.22) / 1e6 = $0.000253 and 1M output tokens
    # 0.000253 / 150 x 1e6 = $1.686667
    assert rows[0]["usd_per_million_output_tokens"] == pytest.approx(1.686667, abs=1e-6)
    assert rows[0]["slo_holds"] is None
    # no Bedrock row for a model Bedrock does not serve (Qwen2.5)
    assert not [o for o in compare["Qwen/Qwen2.5-7B-Instruct"] if o["where"].startswith("bedrock")]


def stack_file(tmp_path, name: str, base: str, **config) -> str:
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{base}.yaml").read_text())
    doc["config"].update(config)
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_an_slo_no_replica_meets_is_mandatory_on_the_scale_tier(capsys, tmp_path):
    path = stack_file(tmp_path, "tight", "prod", **{"genai-scale:targets": {
        "requestsPerSecond": 100, "tokensPerSecond": 20000, "itlP95Ms": 5}})
    code, out, _ = run_cli(capsys, "capacity", "--config-file", path)
    assert code == 1
    assert "under-provisioned [slo-unreachable, mandatory]" in out and "ITL p95 <= 5 ms" in out


def test_the_same_slo_is_advice_on_the_prototype_tier(capsys, tmp_path):
    path = stack_file(tmp_path, "tight", "dev", **{"genai-scale:targets": {
        "requestsPerSecond": 2, "tokensPerSecond": 200, "itlP95Ms": 5}})
    code, out, _ = run_cli(capsys, "capacity", "--config-file", path)
    assert code == 0 and "under-provisioned [slo-unreachable]: " in out


def test_bad_config_exits_2_with_every_problem(capsys, tmp_path):
    path = stack_file(tmp_path, "bad", "dev", **{"genai-scale:capacity": {
        "targets": {"nope": {"share": 2}}, "headroom": 0}})
    code, out, err = run_cli(capsys, "capacity", "--config-file", path)
    assert code == EXIT_CONFIG and out == ""
    assert "genai-scale:capacity.targets.nope.share = 2" in err and "genai-scale:capacity.headroom = 0" in err
    code, _, err = run_cli(capsys, "capacity", "--stack", "qa")
    assert code == EXIT_CONFIG and "unknown stack 'qa'" in err


def test_a_program_is_judged_from_the_capacity_facts_its_services_carry(capsys, tmp_path):
    example = str(ROOT / "examples" / "gpu-vllm")
    code, out, _ = run_cli(capsys, "capacity", "--program", example)
    assert code == 0 and out.splitlines()[2].startswith("llm: replicas 0-2, peak 1 req/s, ")
    assert "  - fine [fine]: within bounds" in out
    # a peak the two replicas cannot carry
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  gpu-vllm:peakRequestsPerSecond: 50\n")
    code, out, _ = run_cli(capsys, "capacity", "--program", example, "--config-file",
                           str(tmp_path / "Pulumi.dev.yaml"), "--json")
    (row,) = json.loads(out)["targets"]
    assert code == 0 and [f["rule"] for f in row["findings"]] == ["max-below-peak"]


def test_the_plan_ends_with_the_cost_summary(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "dev")
    assert code == 0
    summary = out.split("Capacity and cost (genai-scale capacity --stack dev", 1)[1]
    assert "llama-8b" in summary and "total: $" in summary
    code, out, _ = run_cli(capsys, "plan", "--stack", "dev", "--json")
    assert set(json.loads(out)["capacity"]["totals"]) == {"usdPerHourAtMin", "usdPerHourAtPeak", "unpriced"}


def test_prices_needs_a_known_subcommand(capsys):
    assert run_cli(capsys, "prices")[0] == EXIT_CONFIG
    code, _, err = run_cli(capsys, "prices", "fetch")
    assert code == EXIT_CONFIG and "expected: refresh" in err


# --- what the plans render ---------------------------------------------------------------------------------------

def scaled_objects(result) -> dict[str, dict]:
    return {r.name: r.inputs for r in result.by_type(SCALED_OBJECT)}


def test_prod_scaled_objects_carry_the_cron_floors_and_the_capacity_facts():
    from infra.sections.capacity import plan

    result, cfg = planned("prod")
    floors = plan(cfg).floors
    objs = scaled_objects(result)
    assert floors
    for model, want in floors.items():
        spec = objs[f"{model}-scaledobject"]["spec"]
        crons = [t for t in spec["triggers"] if t["type"] == "cron"]
        assert [(t["metadata"]["start"], t["metadata"]["end"], t["metadata"]["desiredReplicas"],
                 t["metadata"]["timezone"]) for t in crons] == [
            (f.start, f.end, str(f.desired_replicas), "America/New_York") for f in want]
        assert any(t["type"] == "prometheus" for t in spec["triggers"])  # the floors sit beside the reactive triggers
    for model in cfg.serving.models:
        facts = json.loads(objs[f"{model}-scaledobject"]["metadata"]["annotations"][ANNOTATION])
        assert facts["target"] == model and facts["availabilityReplicas"] == 2  # scale: multi-AZ


def test_dev_has_facts_but_no_floors_without_a_traffic_profile():
    result, _ = planned("dev")
    so = scaled_objects(result)["llama-8b-scaledobject"]
    assert all(t["type"] != "cron" for t in so["spec"]["triggers"])
    assert json.loads(so["metadata"]["annotations"][ANNOTATION])["availabilityReplicas"] == 0


def test_the_plan_states_the_vllm_image_size_class():
    from components.catalog.coldstart import VLLM_IMAGE_SIZE_CLASS

    result, cfg = planned("prod")
    services = result.outputs["vllmServices"]
    assert services["llama-8b"]["imageSizeClass"] == VLLM_IMAGE_SIZE_CLASS  # NVIDIA
    assert services["llama-8b-inf2"]["imageSizeClass"].startswith("not catalogued")  # Neuron
