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
    # the plan's node-group table reads a capacity-block group's instance type from its launch template
    from infra.cli import node_group_rows, render_plan

    [h100] = [row for row in node_group_rows(result) if row[0] == "h100"]
    assert h100[1:3] == ("p5.48xlarge", "H100 x8") and h100[4] == "CAPACITY_BLOCK"
    # and no output is left out of the text plan
    text = render_plan(result, cfg, encoding="utf-8")
    assert all(f"\n  {k}:" in text for k in result.outputs)
