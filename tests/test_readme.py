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
