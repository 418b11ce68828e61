"""Dependency direction and documentation rules from the style guide, checked on the source."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def py_files(folder: str):
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", py_files("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_components_never_import_infra_or_serving(path):
    assert not imports(path) & {"infra", "serving"}


@pytest.mark.parametrize("path", py_files("serving"), ids=lambda p: str(p.relative_to(ROOT)))
def test_serving_never_imports_pulumi_or_iac(path):
    bad = {m for m in imports(path) if m.startswith("pulumi")} | (imports(path) & {"infra", "components", "policies"})
    assert not bad


@pytest.mark.parametrize("path", py_files("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_components_never_read_stack_config(path):
    assert "pulumi.Config(" not in path.read_text()


def _args_models():
    import importlib
    import inspect

    from components._base import ArgsModel

    found = []
    for path in py_files("components"):
        if path.name.startswith("_"):
            continue
        mod = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, ArgsModel) and obj is not ArgsModel and obj.__module__ == mod.__name__:
                found.append(obj)
    return found


@pytest.mark.parametrize("model", _args_models(), ids=lambda m: m.__name__)
def test_every_args_field_is_documented(model):
    undocumented = [n for n, f in model.model_fields.items() if not f.description]
    assert undocumented == []


@pytest.mark.parametrize("path", [p for p in py_files("components") if not p.name.startswith("_")
                                  and p.parent.name == "components"], ids=lambda p: p.name)
def test_component_modules_document_what_they_create_and_cost(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    if "ComponentResource" not in path.read_text():
        pytest.skip("not a component module")
    for word in ("Creates", "Defaults", "Security", "Cost", "Quotas"):
        assert word.lower() in doc.lower(), f"{path.name} docstring lacks {word}"


def _component_classes():
    found = []
    for path in py_files("components"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                    (isinstance(b, ast.Attribute) and b.attr in ("ComponentResource", "ArgsModel"))
                    or (isinstance(b, ast.Name) and b.id == "ArgsModel") for b in node.bases):
                found.append((path.stem, node.name))
    return found


@pytest.mark.parametrize("module, name", _component_classes(), ids=lambda x: str(x))
def test_every_component_and_args_class_is_importable_from_the_package(module, name):
    import components

    if module.startswith("_"):
        pytest.skip("internal module")
    assert getattr(components, name) is getattr(__import__(f"components.{module}", fromlist=[name]), name)


def test_vllm_extra_pins_the_same_version_as_the_image_and_the_test_parser():
    import tomllib

    from components import versions

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["vllm"] == [f"vllm=={versions.VLLM.version}"]
