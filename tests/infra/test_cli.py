"""`genai-scale plan`: human output, the JSON contract, exit codes, no tracebacks."""

import json
import subprocess
import sys


from infra.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_human_plan(capsys):
    code, out, err = run_cli(capsys, "plan", "--stack", "prod")
    assert code == 0 and err == ""
    assert out.startswith("genai-scale plan: stack prod (tier scale, region us-east-1)")
    assert "+ eks  [genai-scale:index:EksCluster]" in out
    assert "Counts per type" in out and "aws:eks/nodeGroup:NodeGroup" in out
    assert "h100  p5.48xlarge    H100 x8          AL2023_x86_64_NVIDIA  ON_DEMAND  0    2" in out
    assert "kubeconfig: [secret]" in out


def test_json_contract(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "dev", "--json")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON object
    assert set(doc) == {"stack", "tier", "resources", "outputs"}
    assert doc["stack"] == "dev" and doc["tier"] == "prototype"
    urns = {r["urn"] for r in doc["resources"]}
    for r in doc["resources"]:
        assert set(r) - {"aliases"} == {"urn", "type", "name", "parent", "inputs"}
        assert all(set(a) == {"name"} for a in r.get("aliases", []))  # a renamed child names its old name
        assert r["parent"] is None or r["parent"] in urns
    types = {r["type"] for r in doc["resources"]}
    assert {"aws:eks/cluster:Cluster", "kubernetes:helm.sh/v3:Release", "aws:eks/nodeGroup:NodeGroup"} <= types
    cluster = next(r for r in doc["resources"] if r["type"] == "aws:eks/cluster:Cluster")
    assert cluster["inputs"]["vpcConfig"]["endpointPublicAccess"] is False  # camelCase wire names
    assert doc["outputs"]["kubeconfig"] == "[secret]"


def test_config_file_option(capsys, tmp_path):
    p = tmp_path / "Pulumi.mine.yaml"
    p.write_text("config:\n  genai-scale:tier: growth\n  genai-scale:tags: {team: search}\n"
                 "  genai-scale:alb: {certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'}\n")
    code, out, _ = run_cli(capsys, "plan", "--config-file", str(p), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["stack"] == "mine" and doc["tier"] == "growth"


def test_bad_config_exits_2_with_message(capsys, tmp_path):
    p = tmp_path / "Pulumi.bad.yaml"
    p.write_text("config:\n  genai-scale:tier: scale\n  genai-scale:nodeGroups:\n    h100: {minSize: 9}\n")
    code, out, err = run_cli(capsys, "plan", "--config-file", str(p))
    assert code == 2 and out == ""
    assert "genai-scale:nodeGroups.h100.minSize = 9: must be <= maxSize (2)" in err
    assert "Traceback" not in err


def test_unknown_command_and_bad_flags(capsys):
    code, _, err = run_cli(capsys, "plna")
    assert code == 2 and 'did you mean "plan"' in err
    code, _, err = run_cli(capsys, "plan", "--stak", "dev")
    assert code == 2 and "usage:" in err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    p = tmp_path / "Pulumi.bad.yaml"
    p.write_text("config:\n  genai-scale:tier: huge\n")
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--config-file", str(p)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "genai-scale:tier = 'huge': one of growth, prototype, scale" in proc.stderr
    assert "Traceback" not in proc.stderr
