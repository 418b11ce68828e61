"""docs/reference/ is generated from the code and kept fresh; every public output is documented."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import pytest

from tests.kit import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import gen_reference  # noqa: E402


def test_the_reference_pages_are_fresh():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_reference.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_one_page_per_public_component_named_in_kebab_case():
    names = {c.__name__ for c in gen_reference.public_components()}
    assert {"GpuNodeGroup", "EksCluster", "VllmService", "Gateway", "SageMakerLmiEndpoint"} <= names
    assert gen_reference.kebab("GpuNodeGroup") == "gpu-node-group"
    assert gen_reference.kebab("SageMakerLmiEndpoint") == "sagemaker-lmi-endpoint"
    for name in names:
        assert (ROOT / "docs" / "reference" / f"{gen_reference.kebab(name)}.md").is_file()


def test_a_page_shows_args_with_type_default_and_docstring_and_the_outputs():
    text = (ROOT / "docs" / "reference" / "gpu-node-group.md").read_text()
    assert "| `min_size` | int | `0` | Fewest nodes. Default: 0, so an idle group costs nothing. |" in text
    assert "## Outputs" in text and "| `node_group` |" in text
    assert "Creates" in text and "genai-scale:nodeGroups.<name>" in text
    assert "### AcceleratorFacts" in text  # nested argument types get their own table


def test_the_check_fails_on_a_stale_page(tmp_path, monkeypatch):
    monkeypatch.setattr(gen_reference, "OUT", tmp_path)
    (tmp_path / "gpu-node-group.md").write_text("old\n")
    (tmp_path / "retired-component.md").write_text("gone\n")
    assert gen_reference.main(["--check"]) == 1
    assert gen_reference.main([]) == 0
    assert not (tmp_path / "retired-component.md").exists()
    assert gen_reference.main(["--check"]) == 0


@pytest.mark.parametrize("cls", gen_reference.public_components(), ids=lambda c: c.__name__)
def test_every_public_output_has_a_docstring(cls):
    undocumented = [name for name, _, doc in gen_reference.outputs(cls) if not doc.strip()]
    assert undocumented == []


@pytest.mark.parametrize("cls", gen_reference.public_components(), ids=lambda c: c.__name__)
def test_every_public_attribute_set_in_init_is_declared(cls):
    """What __init__ assigns to ``self.x`` is declared (and so documented) on the class."""
    tree = ast.parse(inspect.getsource(cls))
    init = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assigned = {t.attr for n in ast.walk(init) if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                for t in ([t] if not isinstance(t, ast.Tuple) else t.elts)
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
                and not t.attr.startswith("_")}
    declared = {name for name, _, _ in gen_reference.outputs(cls)}
    assert sorted(assigned - declared) == []
