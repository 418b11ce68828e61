"""`genai-scale plan --program DIR` / `genai-scale policy --program DIR`: the shipped examples plan and pass the pack;
a user's program gets its project name, stack and config as under Pulumi; its errors are a problem list (exit 2) or
one line naming the file and line (exit 1), never a traceback."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra import policy_cli
from infra.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def policy(capsys, *argv):
    code = policy_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def program(tmp_path, main_py: str, *, name="mine", project_yaml: str | None = None, files=None) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "Pulumi.yaml").write_text(project_yaml if project_yaml is not None else f"name: {name}\nruntime: python\n")
    (d / "__main__.py").write_text(textwrap.dedent(main_py))
    for rel, text in (files or {}).items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(textwrap.dedent(text))
    return d


NODE_GROUP = """\
    from components import GpuNodeGroup, GpuNodeGroupArgs
    GpuNodeGroup("gpu", GpuNodeGroupArgs(cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/n",
                                         subnet_ids=["subnet-a"], instance_type="g5.xlarge", {args}))
"""


# --- the shipped examples ---

def test_examples_are_pulumi_projects():
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
    assert names == ["gpu-vllm", "sagemaker-gateway"]
    readme = (EXAMPLES / "README.md").read_text()
    for name in names:
        assert (EXAMPLES / name / "__main__.py").is_file()
        assert (EXAMPLES / name / "Pulumi.yaml").read_text().startswith(f"name: {name}\nruntime: python\n")
        assert f"genai-scale plan --program examples/{name}" in readme


@pytest.mark.parametrize("name,types", [
    ("gpu-vllm", {"genai-scale:index:EksCluster", "genai-scale:index:GpuNodeGroup", "genai-scale:index:VllmService",
                  "kubernetes:apps/v1:Deployment"}),
    ("sagemaker-gateway", {"genai-scale:index:EksCluster", "genai-scale:index:SageMakerLmiEndpoint",
                           "genai-scale:index:Gateway", "aws:sagemaker/endpoint:Endpoint"}),
])
def test_example_plans_and_passes_the_pack(capsys, name, types):
    code, out, err = cli(capsys, "plan", "--program", f"examples/{name}", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert types <= {r["type"] for r in doc["resources"]}
    assert all(r["urn"].startswith(f"urn:pulumi:dev::{name}::") for r in doc["resources"])
    assert doc["outputs"]["kubeconfig"] == "[secret]"
    code, out, err = cli(capsys, "plan", "--program", f"examples/{name}")
    assert code == 0 and err == ""
    assert out.startswith(f"genai-scale plan: program examples/{name} (project {name}, stack dev, region us-east-1)\n")
    assert "\n  system  m7i.large" in out  # the cluster's system node group in the node-group table
    code, out, err = policy(capsys, "--program", f"examples/{name}", "--json")
    assert code == 0, out + err
    assert [v for v in json.loads(out)["violations"] if v["level"] == "mandatory"] == []


def test_example_reads_its_config(capsys, tmp_path):
    stack_file = tmp_path / "Pulumi.big.yaml"
    stack_file.write_text("config:\n  aws:region: eu-west-1\n  gpu-vllm:instanceType: g6e.xlarge\n"
                          "  maxNodes: 4\n")  # no namespace: the project's, as in Pulumi
    code, out, err = cli(capsys, "plan", "--program", "examples/gpu-vllm", "--config-file", str(stack_file),
                         "--stack", "big", "--json")
    assert code == 0, err
    doc = json.loads(out)
    ng = next(r for r in doc["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup" and r["name"] == "gpu")
    assert ng["inputs"]["instanceTypes"] == ["g6e.xlarge"] and ng["inputs"]["scalingConfig"]["maxSize"] == 4
    assert ng["urn"].startswith("urn:pulumi:big::gpu-vllm::")
    autoscaler = next(r for r in doc["resources"] if r["name"] == "cluster-autoscaler"
                      and r["type"] == "kubernetes:helm.sh/v3:Release")
    assert "eu-west-1" in json.dumps(autoscaler["inputs"])  # the example reads aws:region
    code, out, _ = cli(capsys, "plan", "--program", "examples/gpu-vllm", "--config-file", str(stack_file))
    assert out.splitlines()[0].endswith("(project gpu-vllm, stack big, region eu-west-1)")  # named by the file


# --- project, stack and config as Pulumi gives them ---

def test_project_stack_and_config_reach_the_program(capsys, tmp_path):
    d = program(tmp_path, """\
        import pulumi
        cfg = pulumi.Config()
        pulumi.export("project", pulumi.get_project())
        pulumi.export("stack", pulumi.get_stack())
        pulumi.export("size", cfg.require_int("size"))
        pulumi.export("default", cfg.get("fromProject"))
        pulumi.export("token", cfg.require_secret("token"))
        pulumi.export("region", pulumi.Config("aws").get("region"))
        """, project_yaml="name: team-llm\nruntime:\n  name: python\n  options: {virtualenv: venv}\n"
                          "config:\n  fromProject: {default: seven}\n")
    (d / "Pulumi.qa.yaml").write_text("config:\n  team-llm:size: 3\n  token: {secure: AAABAC==}\n"
                                      "  aws:region: eu-central-1\n")
    code, out, err = cli(capsys, "plan", "--program", str(d), "--stack", "qa", "--json")
    assert code == 0, err
    assert json.loads(out)["outputs"] == {"project": "team-llm", "stack": "qa", "size": 3, "default": "seven",
                                          "token": "[secret]", "region": "eu-central-1"}
    code, out, _ = cli(capsys, "plan", "--program", str(d), "--stack", "qa")
    assert "(project team-llm, stack qa, region eu-central-1)" in out.splitlines()[0]


def test_main_in_pulumi_yaml_and_helper_modules_are_importable_then_forgotten(capsys, tmp_path):
    a = program(tmp_path, "raise SystemExit('not this file')\n", name="a",
                project_yaml="name: a\nruntime: python\nmain: src/\n",
                files={"src/__main__.py": "import pulumi, util, os\npulumi.export('v', util.VALUE)\n"
                                          "pulumi.export('cwd', os.path.basename(os.getcwd()))\n",
                       "src/util.py": "VALUE = 'a'\n"})
    b = program(tmp_path, "import pulumi, util\npulumi.export('v', util.VALUE)\n", name="b",
                files={"util.py": "VALUE = 'b'\n"})
    cwd, path = os.getcwd(), list(sys.path)
    code, out, err = cli(capsys, "plan", "--program", str(a), "--json")
    assert code == 0, err
    assert json.loads(out)["outputs"] == {"v": "a", "cwd": "src"}  # run in its folder, like Pulumi
    code, out, err = cli(capsys, "plan", "--program", str(b), "--json")
    assert code == 0 and json.loads(out)["outputs"] == {"v": "b"}  # not a's cached `util`
    assert os.getcwd() == cwd and sys.path == path and "util" not in sys.modules


# --- errors: problem lists (exit 2) ---

def test_bad_component_argument_is_the_problem_list(capsys, tmp_path):
    d = program(tmp_path, NODE_GROUP.format(args="min_size=3, max_size=2, min_sise=1"))
    code, out, err = cli(capsys, "plan", "--program", str(d))
    assert code == 2 and out == ""
    assert err == (f"{d / '__main__.py'}:2: invalid GpuNodeGroupArgs: 2 problems\n"
                   "  - min_sise: unknown key (did you mean \"min_size\"?)\n"
                   "  - min_size = 3: must be <= max_size (2)\n")
    assert "Traceback" not in err
    assert policy(capsys, "--program", str(d))[0] == 2


def test_model_that_does_not_fit_is_the_problem_list(capsys, tmp_path):
    d = program(tmp_path, """\
        from components import NodeGroupPlacement, VllmModelSettings, VllmService, VllmServiceArgs
        from components.catalog.accelerators import lookup

        VllmService("llm", VllmServiceArgs(
            model=VllmModelSettings(model_id="meta-llama/Llama-3.1-70B-Instruct", allow_hub_download=True),
            placement=NodeGroupPlacement(name="gpu", accelerator=lookup("g5.xlarge"), labels={}, taints=[]),
            image="vllm:1", keda=False))
        """)
    code, out, err = cli(capsys, "plan", "--program", str(d))
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"{d / '__main__.py'}:4: invalid VllmServiceArgs: 1 problem\n")
    assert "  - model = 'meta-llama/Llama-3.1-70B-Instruct': meta-llama/Llama-3.1-70B-Instruct does not fit" in err


def test_invalid_settings_model_is_the_problem_list(capsys, tmp_path):
    d = program(tmp_path, "from components import VllmModelSettings\n\n"
                          "VllmModelSettings(model_id='meta-llama/Llama-3.1-8B-Instruct', max_num_seqs=0, "
                          "allow_hub_download=True)\n")
    code, _, err = cli(capsys, "plan", "--program", str(d))
    assert code == 2
    assert err == (f"{d / '__main__.py'}:3: invalid VllmModelSettings: 1 problem\n"
                   "  - max_num_seqs = 0: expected a number >= 1\n")


@pytest.mark.parametrize("files,expected", [
    ({"Pulumi.yaml": None}, "not a Pulumi program: 1 problem\n  - Pulumi.yaml: a Pulumi project file"),
    ({"Pulumi.yaml": "runtime: nodejs\n"}, "  - name: the project name, e.g. name: my-inference\n"
                                           "  - runtime = 'nodejs': python (genai-scale plans Python programs)"),
    ({"Pulumi.yaml": "name: x\nruntime: python\nmain: nope/\n"}, "  - main = 'nope/': a folder with __main__.py"),
    ({"__main__.py": None}, "  - __main__.py: the program's entry file, __main__.py, next to Pulumi.yaml"),
    ({"Pulumi.yaml": "name: [x\n"}, "Pulumi.yaml: cannot parse: 1 problem\n  - line 2 = '': not valid YAML"),
    ({"Pulumi.dev.yaml": "config: [1]\n"}, "Pulumi.dev.yaml: invalid: 1 problem\n  - config = {'config': [1]}"),
])
def test_bad_project_files_are_problem_lists(capsys, tmp_path, files, expected):
    d = program(tmp_path, "import pulumi\n")
    for rel, text in files.items():
        (d / rel).unlink() if text is None else (d / rel).write_text(text)
    code, out, err = cli(capsys, "plan", "--program", str(d))
    assert code == 2 and out == "" and expected in err, err


def test_missing_program_folder_and_config_file(capsys, tmp_path):
    code, _, err = cli(capsys, "plan", "--program", str(tmp_path / "nope"))
    assert code == 2 and f"--program = '{tmp_path / 'nope'}': a directory holding a Pulumi project" in err
    d = program(tmp_path, "import pulumi\n")
    code, _, err = cli(capsys, "plan", "--program", str(d), "--config-file", str(tmp_path / "Pulumi.x.yaml"))
    assert code == 2 and "--config-file = " in err and "no such stack config file" in err


# --- errors: anything else names the file and line (exit 1) ---

def test_name_error_names_the_file_and_line(capsys, tmp_path):
    d = program(tmp_path, "import pulumi\n\nx = 1\npulumi.export('y', undefined_thing)\n")
    code, out, err = cli(capsys, "plan", "--program", str(d))
    assert code == 1 and out == ""
    assert err == (f"genai-scale plan: the program failed: {d / '__main__.py'}:4: NameError: "
                   "name 'undefined_thing' is not defined\n")
    code, out, err = policy(capsys, "--program", str(d))
    assert code == 1 and "genai-scale policy: the program failed:" in err and "__main__.py:4: NameError" in err


def test_error_in_a_helper_module_inside_an_apply_names_the_deepest_line_in_the_folder(capsys, tmp_path):
    d = program(tmp_path, "import pulumi\nimport util\n\npulumi.Output.from_input(1).apply(lambda _: util.boom())\n",
                files={"util.py": "def boom():\n    return {}['missing']\n"})
    code, _, err = cli(capsys, "plan", "--program", str(d))
    assert code == 1 and err.endswith(f"{d / 'util.py'}:2: KeyError: 'missing'\n")


def test_sys_exit_in_the_program_is_reported_not_swallowed(capsys, tmp_path):
    d = program(tmp_path, "import sys\nsys.exit('no GPUs today')\n")
    code, _, err = cli(capsys, "plan", "--program", str(d))
    assert code == 1 and err.endswith(f"{d / '__main__.py'}:2: SystemExit: no GPUs today\n")


def test_syntax_error_names_the_file_and_line(capsys, tmp_path):
    d = program(tmp_path, "import pulumi\nif True\n    pass\n")
    code, _, err = cli(capsys, "plan", "--program", str(d))
    assert code == 1 and f"{d / '__main__.py'}:2: SyntaxError: expected ':'" in err


def test_console_script_prints_no_traceback(tmp_path):
    d = program(tmp_path, "import pulumi\npulumi.export('y', undefined_thing)\n")
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "plan", "--program", str(d)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{d / '__main__.py'}:2: NameError" in proc.stderr


# --- flags ---

def test_policy_tier_flag(capsys):
    code, out, _ = policy(capsys, "--program", "examples/sagemaker-gateway", "--tier", "growth")
    assert code == 0 and out.startswith("genai-scale policy: program examples/sagemaker-gateway "
                                        "(project sagemaker-gateway), stack dev (tier growth)\n")
    code, out, _ = policy(capsys, "--program", "examples/gpu-vllm")
    assert "stack dev (tier prototype)" in out.splitlines()[0]
    code, out, err = policy(capsys, "--program", "examples/gpu-vllm", "--tier", "grwoth")
    assert code == 2 and out == ""
    assert "  - --tier = 'grwoth': one of growth, prototype, scale (did you mean \"growth\"?)" in err
    code, _, err = policy(capsys, "--stack", "dev", "--tier", "growth")
    assert code == 2 and "argument --tier: only with --program" in err


def test_stack_names_the_stack_a_config_file_is_planned_under(capsys):
    code, out, _ = cli(capsys, "plan", "--stack", "my_stack", "--config-file", "stacks/Pulumi.dev.yaml")
    assert code == 0 and out.startswith("genai-scale plan: stack my_stack (tier prototype")
    code, out, _ = cli(capsys, "plan", "--config-file", "stacks/Pulumi.dev.yaml")
    assert code == 0 and out.startswith("genai-scale plan: stack dev (tier prototype")


def test_a_config_file_that_does_not_exist_is_an_error_with_or_without_stack(capsys):
    code, _, err = cli(capsys, "plan", "--stack", "dev", "--config-file", "x.yaml")
    assert code == 2 and "x.yaml" in err and "Traceback" not in err


def test_help_tells_the_two_targets_apart(capsys):
    assert main(["plan", "--help"]) == 0
    out = capsys.readouterr()[0]
    for text in ("--program DIR", "Without --program: plans", "stacks/Pulumi.<NAME>.yaml", "With --program: the",
                 "stack the program runs as"):
        assert text in " ".join(out.split()), text
