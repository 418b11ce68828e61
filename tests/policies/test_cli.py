"""`genai-scale policy`: the shipped stacks pass, deliberately insecure stack configs fail with the expected rules,
the JSON contract, the human report, and the exit codes."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import policy_cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def cli(capsys, *argv):
    code = policy_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def documented_advisories() -> dict[str, set[str]]:
    """The 'Deliberate advisory findings' table of docs/policies.md: stack -> policies."""
    text = (ROOT / "docs" / "policies.md").read_text()
    section = text.split("## Deliberate advisory findings", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[str]] = {"dev": set(), "staging": set(), "prod": set()}
    for stack, policy in re.findall(r"^\| `(dev|staging|prod)` \| `([a-z0-9-]+)` \|", section, re.M):
        out[stack].add(policy)
    return out


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_shipped_stacks_have_no_mandatory_violation(capsys, stack):
    code, out, err = cli(capsys, "--stack", stack, "--json")
    assert code == 0, out + err
    doc = json.loads(out)
    assert set(doc) == {"stack", "violations", "policies_run", "resources_checked"}
    assert doc["stack"] == stack and doc["policies_run"] >= 30 and doc["resources_checked"] > 50
    assert [v for v in doc["violations"] if v["level"] == "mandatory"] == []
    # every advisory finding is deliberate: listed, with its reason, in docs/policies.md
    assert {v["policy"] for v in doc["violations"]} == documented_advisories()[stack]


def test_insecure_prototype_fails(capsys):
    code, out, _ = cli(capsys, "--config-file", str(FIXTURES / "Pulumi.insecure-prototype.yaml"), "--json")
    assert code == 1
    doc = json.loads(out)
    found = {(v["policy"], v["urn"].rsplit("::", 1)[-1], v["level"]) for v in doc["violations"]}
    assert {("accelerator-scale-to-zero-in-prototype", "a10g", "mandatory"),
            ("accelerator-scale-to-zero-in-prototype", "inf2", "mandatory")} <= found
    [msg] = [v["message"] for v in doc["violations"] if v["urn"].endswith("::a10g")]
    assert msg == "a10g: g5.xlarge node group has minSize 1, desiredSize 1: accelerators bill while idle"


def test_insecure_growth_fails(capsys):
    code, out, _ = cli(capsys, "--config-file", str(FIXTURES / "Pulumi.insecure-growth.yaml"), "--json")
    assert code == 1
    found = {(v["policy"], v["urn"].rsplit("::", 1)[-1]) for v in json.loads(out)["violations"]}
    assert {("eks-multi-az", "eks"), ("eks-multi-az", "eks-system"), ("on-demand-h100-max-size-cap", "h100")} <= found


def test_config_rejected_before_the_policy_runs_exits_2(capsys):
    code, out, err = cli(capsys, "--config-file", str(FIXTURES / "Pulumi.public-endpoint.yaml"))
    assert code == 2 and out == ""
    assert "genai-scale:cluster.publicAccessCidrs[0] = '0.0.0.0/0'" in err
    assert "Traceback" not in err


def test_human_report_groups_by_resource(capsys):
    code, out, _ = cli(capsys, "--config-file", str(FIXTURES / "Pulumi.insecure-growth.yaml"))
    assert code == 1
    assert out.startswith("genai-scale policy: stack insecure-growth (tier growth)\n")
    block = out.split("\nh100 [aws:eks/nodeGroup:NodeGroup]\n", 1)[1].split("\n\n", 1)[0]
    assert "[mandatory] on-demand-h100-max-size-cap (high): h100: on-demand p5.48xlarge" in block
    assert "\n      fix: Lower maxSize" in block
    assert re.search(r"^\d+ policies, \d+ resources: \d+ mandatory, \d+ advisory violations? -- FAILED$", out, re.M)


def test_policy_config_overrides_the_tier_defaults(capsys, tmp_path):
    cfg = tmp_path / "policy.json"
    cfg.write_text(json.dumps({"accelerator-scale-to-zero-in-prototype": "advisory"}))
    code, out, _ = cli(capsys, "--config-file", str(FIXTURES / "Pulumi.insecure-prototype.yaml"),
                       "--policy-config", str(cfg), "--json")
    levels = {v["level"] for v in json.loads(out)["violations"] if v["policy"] == "accelerator-scale-to-zero-in-prototype"}
    assert levels == {"advisory"}
    cfg.write_text(json.dumps({"all": "advisory"}))
    code, out, _ = cli(capsys, "--config-file", str(FIXTURES / "Pulumi.insecure-prototype.yaml"),
                       "--policy-config", str(cfg), "--json")
    assert code == 0
    assert {v["level"] for v in json.loads(out)["violations"]} == {"advisory"}


@pytest.mark.parametrize("content,expected", [
    ('{"eks-multi-az": {"minZones": "two"}}', "eks-multi-az.minZones: 'two' is not of type 'integer'"),
    ("[1, 2]", "expected a JSON object"),
    ("{nope", "not valid JSON"),
])
def test_bad_policy_config_exits_2(capsys, tmp_path, content, expected):
    cfg = tmp_path / "policy.json"
    cfg.write_text(content)
    code, out, err = cli(capsys, "--stack", "dev", "--policy-config", str(cfg))
    assert code == 2 and out == "" and expected in err


def test_bad_arguments_exit_2(capsys):
    code, _, err = cli(capsys, "--stack", "dev", "--config-file", "x.yaml")
    assert code == 2 and "x.yaml" in err and "no such stack config file" in err and "Traceback" not in err


def test_console_script():
    exe = Path(sys.executable).parent / "genai-scale"
    out = subprocess.run([str(exe), "policy", "--stack", "dev", "--json"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["stack"] == "dev"
