"""The README's examples run as written."""

from __future__ import annotations

import re

from infra.plan import run_program
from tests.kit import ROOT


def _block_after(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_composing_example_plans():
    code = _block_after("## Composing the components")
    result = run_program(lambda: exec(compile(code, "README.md", "exec"), {}))
    ng = result.one("aws:eks/nodeGroup:NodeGroup", "h100")
    assert ng.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert "asg" in result.outputs
    assert result.one("kubernetes:helm.sh/v3:Release", "cluster-autoscaler")


def test_the_prod_stack_file_example_plans_as_written(tmp_path):
    from infra.program import plan_stack

    text = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(# stacks/Pulumi\.prod\.yaml.*?)```", text, re.S).group(1)
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(block)
    result, cfg = plan_stack(config_file=str(path))
    groups = {r.name for r in result.by_type("aws:eks/nodeGroup:NodeGroup")}
    assert {"h100", "l40s"} <= groups and "inf2" not in groups
    assert "llama-8b-inf2" not in cfg.serving.models
    assert result.one("aws:acm/certificate:Certificate").inputs["domainName"] == "genai.example.com"
    assert result.outputs["apiUrl"] == "https://genai.example.com"
