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
    assert "  ■ eks  [genai-scale:index:EksCluster]" in out
    assert "  ├─ ● eks  [aws:eks/cluster:Cluster]\n" in out
    assert "Counts per type" in out and "aws:eks/nodeGroup:NodeGroup" in out
    assert "  h100            p5.48xlarge    H100 x8          AL2023_x86_64_NVIDIA    ON_DEMAND  0    2\n" in out
    assert "kubeconfig: [secret]" in out


def test_tree_symbols_never_read_as_a_pulumi_diff_and_the_legend_says_what_they_mean(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "dev")
    legend = "Legend: ■ component (groups the resources indented below it)  ● resource  ◆ provider."
    assert code == 0 and legend in out.splitlines()[2]
    tree = out.split("\nResources\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # Pulumi's preview marks create/delete/update with + - ~: no tree line starts with one of them
    assert tree and not [line for line in tree if line.lstrip()[:1] in "+-~"]
    assert "  └─ ◆ eks-k8s  [pulumi:providers:kubernetes]" in tree


def test_tree_connectors_of_nested_components_and_the_ascii_fallback():
    import pulumi

    from infra.cli import render_plan
    from infra.plan import run_program

    class Box(pulumi.ComponentResource):
        def __init__(self, name, opts=None, token="test:index:Box"):
            super().__init__(token, name, None, opts)

    def program():
        outer = Box("outer")
        inner = Box("inner", pulumi.ResourceOptions(parent=outer), token="aaa:index:Inner")
        import pulumi_random as random
        random.RandomPet("pet", opts=pulumi.ResourceOptions(parent=inner))
        random.RandomPet("last", opts=pulumi.ResourceOptions(parent=outer))

    result = run_program(program)
    text = render_plan(result, title="t", encoding="utf-8")
    tree = text.split("\nResources\n", 1)[1].split("\n\n", 1)[0]
    assert tree == ("  ■ outer  [test:index:Box]  (2 children)\n"
                    "  ├─ ■ inner  [aaa:index:Inner]  (1 children)\n"
                    "  │  └─ ● pet  [random:index/randomPet:RandomPet]\n"
                    "  └─ ● last  [random:index/randomPet:RandomPet]")
    ascii_text = render_plan(result, title="t", encoding="ascii")
    assert "  |  `- * pet  [random:index/randomPet:RandomPet]\n  `- * last" in ascii_text
    assert "Legend: # component" in ascii_text
    ascii_text.encode("ascii")


def test_node_group_table_lists_the_system_group(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "dev")
    table = out.split("\nNode groups\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[0].split() == ["name", "instance", "type", "accelerator", "AMI", "type", "capacity", "min", "max"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["system"] == ["system", "m7i.large", "none", "(CPU)", "AL2023_x86_64_STANDARD", "ON_DEMAND", "1", "3"]
    assert rows["a10g"] == ["a10g", "g5.xlarge", "A10G", "x1", "AL2023_x86_64_NVIDIA", "SPOT", "0", "2"]
    assert list(rows)[0] == "system"


def test_long_outputs_are_printed_in_full(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "prod")
    code_json, doc, _ = run_cli(capsys, "plan", "--stack", "prod", "--json")
    services = json.loads(doc)["outputs"]["vllmServices"]
    assert len(json.dumps(services)) > 160  # longer than the line the plan used to cut
    assert "..." not in out.split("\nOutputs\n", 1)[1]
    block = out.split("\n  vllmServices:\n", 1)[1].split("\n  gatewayService", 1)[0]
    assert json.loads(block) == services  # indented JSON, every key of every service


def test_long_string_output_stays_whole_on_its_line():
    from infra.cli import render_output

    arn = "arn:aws:iam::123456789012:oidc-provider/" + "x" * 150
    assert render_output("oidc", arn, secret=False) == [f'  oidc: "{arn}"']
    assert render_output("key", "s", secret=True) == ["  key: [secret]"]


def test_plan_count_matches_the_policy_report(capsys):
    from infra import policy_cli

    code, out, _ = run_cli(capsys, "plan", "--stack", "dev")
    doc = json.loads(run_cli(capsys, "plan", "--stack", "dev", "--json")[1])
    total = len(doc["resources"])
    components = sum(1 for r in doc["resources"] if r["type"].startswith("genai-scale:index:"))
    providers = sum(1 for r in doc["resources"] if r["type"].startswith("pulumi:providers:"))
    assert f"Counts per type ({total} resources: {components} components, {total - components - providers} cloud and " \
           f"Kubernetes resources, {providers} provider" in out
    policy_cli.main(["--stack", "dev"])
    report, _ = capsys.readouterr()
    assert f" policies, {total - providers} resources: " in report
    assert (f"{total - providers} of the plan's {total} resources judged: {providers} provider is configuration, "
            "not judged by any policy") in report
    policy_cli.main(["--stack", "dev", "--json"])
    assert json.loads(capsys.readouterr()[0])["resources_checked"] == total - providers


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out == f"genai-scale {version('genai-scale')}\n"


def test_gateway_alone_prints_its_help(capsys):
    code, out, err = run_cli(capsys, "gateway")
    assert code == 2 and "Traceback" not in out + err
    assert out.startswith("usage: genai-scale gateway") and "serve" in out and "hash-key" in out


def test_unknown_stack_lists_the_stacks(capsys):
    code, out, err = run_cli(capsys, "plan", "--stack", "prd")
    assert code == 2 and out == ""
    assert err == ("unknown stack 'prd': 1 problem\n"
                   "  - --stack = 'prd': one of dev, prod, staging (stacks/Pulumi.<stack>.yaml) (did you mean \"prod\"?); "
                   "or plan any stack file with --config-file PATH\n")
    from infra import policy_cli

    assert policy_cli.main(["--stack", "nope"]) == 2
    assert "--stack = 'nope': one of dev, prod, staging" in capsys.readouterr()[1]


def test_json_contract(capsys):
    code, out, _ = run_cli(capsys, "plan", "--stack", "dev", "--json")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON object
    assert set(doc) == {"stack", "tier", "resources", "outputs", "notes", "capacity"}
    assert doc["capacity"]["stack"] == "dev" and doc["capacity"]["targets"]  # the cost summary, as `capacity --json`
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
