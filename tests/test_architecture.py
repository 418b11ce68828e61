"""Dependency direction, package privacy, import cycles and documentation rules from the style guide, checked on the
source (every ``import`` counts: top-level, inside a function, or under ``TYPE_CHECKING``)."""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path

import pytest

from tests.kit import ROOT

PACKAGES = ("infra", "components", "policies", "serving", "problems", "bench", "scripts")
"""First-party top-level folders whose modules are checked (``tests`` is checked separately below)."""


def py_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def lazy_exports() -> dict[str, str]:
    """``components``' lazy export map (public name -> defining module), read from its source."""
    tree = ast.parse((ROOT / "components" / "__init__.py").read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS":
            return ast.literal_eval(node.value)
    return {}


def imported_modules(path: Path) -> set[str]:
    """Every first-party module ``path`` imports, resolved to the deepest module or package that exists. A name that
    ``components`` exports lazily counts as an import of its defining module, and so does
    ``importlib.import_module("<literal>")``."""
    tree = ast.parse(path.read_text())
    own = module_name(path)
    package = own if _is_package(path) else own.rpartition(".")[0]
    lazy = lazy_exports() if own != "components" else {}
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            out.add(node.args[0].value)
        elif isinstance(node, ast.ImportFrom) and node.module == "components" and not node.level:
            for alias in node.names:
                if alias.name in lazy:
                    out.add(lazy[alias.name])
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                out.add(f"{mod}.{alias.name}" if _exists(f"{mod}.{alias.name}") else mod)
    return {_deepest(m) for m in out if m.split(".")[0] in PACKAGES + ("tests",)}


def _exists(mod: str) -> bool:
    rel = Path(*mod.split("."))
    return (ROOT / rel.with_suffix(".py")).is_file() or (ROOT / rel / "__init__.py").is_file()


def _deepest(mod: str) -> str:
    parts = mod.split(".")
    while parts and not _exists(".".join(parts)):
        parts.pop()
    return ".".join(parts)


def _all_first_party() -> list[Path]:
    return [p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in py_files(pkg)]


def top(mod: str) -> str:
    return mod.split(".")[0]


# --- dependency direction ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", py_files("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_components_never_import_infra_or_serving(path):
    assert not {top(m) for m in imported_modules(path)} & {"infra", "serving", "policies"}


@pytest.mark.parametrize("path", py_files("serving"), ids=lambda p: str(p.relative_to(ROOT)))
def test_serving_never_imports_pulumi_or_iac(path):
    tree = ast.parse(path.read_text())
    third = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    third |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert not {m for m in third if m.startswith("pulumi")}
    assert not {top(m) for m in imported_modules(path)} & {"infra", "components", "policies"}


@pytest.mark.parametrize("path", py_files("problems"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_error_core_stands_alone(path):
    tree = ast.parse(path.read_text())
    third = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    third |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not third & {"pulumi", "pulumi_aws", "pulumi_kubernetes", "infra", "components", "policies", "serving"}


@pytest.mark.parametrize("path", py_files("policies"), ids=lambda p: str(p.relative_to(ROOT)))
def test_policies_never_import_the_program(path):
    assert not {top(m) for m in imported_modules(path)} & {"infra", "serving"}


@pytest.mark.parametrize("path", py_files("components"), ids=lambda p: str(p.relative_to(ROOT)))
def test_components_never_read_stack_config(path):
    assert "pulumi.Config(" not in path.read_text()


# --- privacy: a private module (`_x`) is private to its package ----------------------------------------------------

def private_owner(mod: str) -> str | None:
    """The package a private module belongs to (``components.foundation`` for ``components.foundation._gpu``);
    None when no segment of ``mod`` is private."""
    parts = mod.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def private_violations(path: Path, *, home: str | None = None) -> list[str]:
    """Imports of another package's private module. ``home`` is the package a test file mirrors (a test may reach
    into the package it tests)."""
    own = module_name(path)
    own_pkg = own if _is_package(path) else own.rpartition(".")[0]
    bad = []
    for mod in imported_modules(path):
        owner = private_owner(mod)
        if owner is None:
            continue
        inside = own_pkg == owner or own_pkg.startswith(owner + ".")
        mirrored = home is not None and (home == owner or home.startswith(owner + "."))
        if not inside and not mirrored:
            bad.append(mod)
    return bad


@pytest.mark.parametrize("path", _all_first_party(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_packages_private_module(path):
    assert private_violations(path) == []


def _mirrored_package(path: Path) -> str | None:
    """tests/components/foundation/test_gpu.py mirrors components.foundation; tests/kit is shared (no home)."""
    parts = path.relative_to(ROOT / "tests").parts[:-1]
    if not parts or parts[0] == "kit":
        return None
    return ".".join(parts)


@pytest.mark.parametrize("path", py_files("tests"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_reach_only_into_the_package_they_mirror(path):
    assert private_violations(path, home=_mirrored_package(path)) == []


def test_the_privacy_rule_can_fail():
    assert private_owner("components.foundation._gpu") == "components.foundation"
    assert private_owner("components.foundation.gpu_node_group") is None
    infra_file = ROOT / "infra" / "sections" / "foundation.py"
    assert private_violations(infra_file) == []
    fake = ROOT / "infra" / "_probe_private_import.py"
    fake.write_text("from components.foundation import _gpu\nfrom components.base import ArgsModel\n")
    try:
        assert private_violations(fake) == ["components.foundation._gpu"]
    finally:
        fake.unlink()


# --- no import cycles, hidden or not ------------------------------------------------------------------------------

def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _all_first_party():
        graph[module_name(path)] = {m for m in imported_modules(path) if m != module_name(path)}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert find_cycles(import_graph()) == []


def test_the_cycle_check_sees_through_the_lazy_export_map_and_import_module(monkeypatch):
    lazy = {**lazy_exports(), "ProbeB": "components._probe_b"}
    monkeypatch.setitem(globals(), "lazy_exports", lambda: lazy)  # as if ProbeB were in components' _EXPORTS
    probe_a = ROOT / "components" / "_probe_a.py"
    probe_b = ROOT / "components" / "_probe_b.py"
    fake = ROOT / "infra" / "_probe_dyn.py"
    probe_a.write_text("def f():\n    from components import ProbeB\n")
    probe_b.write_text("import importlib\nimportlib.import_module('components._probe_a')\n")
    fake.write_text("import importlib\nimportlib.import_module('components.foundation._gpu')\n")
    try:
        assert ["components._probe_a", "components._probe_b"] in find_cycles(import_graph())
        assert private_violations(fake) == ["components.foundation._gpu"]
    finally:
        for f in (probe_a, probe_b, fake):
            f.unlink()


def test_the_cycle_check_finds_a_hidden_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    probe = ROOT / "components" / "_probe_cycle.py"
    probe.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from components import _probe_cycle2\n")
    probe2 = ROOT / "components" / "_probe_cycle2.py"
    probe2.write_text("def f():\n    from components import _probe_cycle\n")
    try:
        assert ["components._probe_cycle", "components._probe_cycle2"] in find_cycles(import_graph())
    finally:
        probe.unlink()
        probe2.unlink()


# --- the public surface ---------------------------------------------------------------------------------------------

def _component_modules() -> list[Path]:
    return [p for p in py_files("components") if not any(part.startswith("_") for part in p.relative_to(ROOT).parts)
            and "class " in p.read_text() and "(pulumi.ComponentResource)" in p.read_text()]


def _args_models():
    from components.base import ArgsModel

    found = []
    for path in py_files("components"):
        if any(part.startswith("_") and part != "__init__.py" for part in path.relative_to(ROOT).parts):
            continue
        mod = importlib.import_module(module_name(path))
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, ArgsModel) and obj is not ArgsModel and obj.__module__ == mod.__name__:
                found.append(obj)
    return found


@pytest.mark.parametrize("model", _args_models(), ids=lambda m: m.__name__)
def test_every_args_field_is_documented(model):
    undocumented = [n for n, f in model.model_fields.items() if not f.description]
    assert undocumented == []


@pytest.mark.parametrize("path", _component_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_component_modules_document_what_they_create_and_cost(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    for word in ("Creates", "Defaults", "Security", "Cost", "Quotas"):
        assert word.lower() in doc.lower(), f"{path.name} docstring lacks {word}"


def _public_classes():
    """Every ComponentResource and ArgsModel class defined in a public components module."""
    from components.base import ArgsModel

    found = []
    for path in py_files("components"):
        if any(part.startswith("_") and part != "__init__.py" for part in path.relative_to(ROOT).parts):
            continue
        mod = importlib.import_module(module_name(path))
        for name, obj in inspect.getmembers(mod, inspect.isclass):
            if obj.__module__ != mod.__name__:
                continue
            import pulumi
            if (issubclass(obj, pulumi.ComponentResource) or issubclass(obj, ArgsModel)) and obj is not ArgsModel:
                found.append((mod.__name__, name))
    return found


@pytest.mark.parametrize("module, name", _public_classes(), ids=lambda x: str(x))
def test_every_component_and_args_class_is_importable_from_the_package(module, name):
    import components

    assert getattr(components, name) is getattr(importlib.import_module(module), name)


def _referenced_types(annotation) -> set[type]:
    from pydantic import BaseModel

    out: set[type] = set()
    stack = [annotation]
    while stack:
        tp = stack.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            out.add(tp)
        stack.extend(typing.get_args(tp))
    return out


def test_every_type_a_caller_needs_to_build_args_is_exported():
    """VllmServiceArgs.model takes VllmModelSettings, GpuNodeGroupArgs.accelerator takes AcceleratorFacts, ...: each
    such type must come from ``components`` itself, never from a private module."""
    import components

    seen: set[type] = set()
    queue = [components.__getattr__(n) for n in components.__all__]
    queue = [c for c in queue if isinstance(c, type) and hasattr(c, "model_fields")]
    missing = []
    while queue:
        model = queue.pop()
        if model in seen:
            continue
        seen.add(model)
        for field in model.model_fields.values():
            for tp in _referenced_types(field.annotation):
                if getattr(components, tp.__name__, None) is not tp:
                    missing.append(f"{model.__name__}.{tp.__name__}")
                queue.append(tp)
    assert missing == []


def test_vllm_model_settings_is_public_and_keeps_its_name():
    from components import VllmModelSettings, VllmServiceArgs

    assert VllmModelSettings.__name__ == "VllmModelSettings"
    assert VllmServiceArgs.model_fields["model"].annotation is VllmModelSettings
    assert private_owner(VllmModelSettings.__module__) is None


def test_vllm_extra_pins_the_same_version_as_the_image_and_the_test_parser():
    import tomllib

    from components import versions

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["vllm"] == [f"vllm=={versions.VLLM.version}"]
