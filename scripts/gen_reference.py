"""Generate docs/reference/: one page per public component, from the code.

    python scripts/gen_reference.py           # (re)write the pages
    python scripts/gen_reference.py --check   # exit 1 and name the stale pages (the test suite runs this)

A page holds the component's documentation (its module docstring: what it creates, defaults, security, cost,
quotas), its args (type, default, and what the default does, from the field docstrings; nested argument types get a
table of their own), the stack-config key that sets it when the program builds it, and its outputs (the annotated
public attributes with their docstrings). Nothing here is written by hand: edit the docstrings instead.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "reference"
sys.path.insert(0, str(ROOT))


ONE_WORD = ("SageMaker",)
"""Product names written in camel case that stay one word in a file name."""


def kebab(name: str) -> str:
    """``GpuNodeGroup`` -> ``gpu-node-group``; ``SageMakerLmiEndpoint`` -> ``sagemaker-lmi-endpoint``."""
    for word in ONE_WORD:
        name = name.replace(word, word.capitalize())
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def public_components() -> list[type]:
    import pulumi

    import components

    found = []
    for name in components.__all__:
        obj = getattr(components, name)
        if inspect.isclass(obj) and issubclass(obj, pulumi.ComponentResource):
            found.append(obj)
    return sorted(found, key=lambda c: c.__name__)


def type_name(tp: Any) -> str:
    """A field type as a reader wants it: ``int``, ``str | None``, ``list[str]``, ``'ON_DEMAND' | 'SPOT'``."""
    from pydantic import BaseModel

    if tp is type(None):
        return "None"
    if tp is Any:
        return "Any"
    origin, params = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        if "pulumi.Input" in tp.__metadata__:
            return "Input"
        return type_name(params[0])
    if origin is typing.Literal:
        return " | ".join(repr(p) for p in params)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(p) for p in params)
    if origin is not None:
        base = getattr(origin, "__name__", str(origin))
        return f"{base}[{', '.join(type_name(p) for p in params)}]"
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return f"[{tp.__name__}](#{tp.__name__.lower()})"
        return tp.__name__
    return str(tp).replace("typing.", "")


def nested_models(tp: Any) -> list[type]:
    from pydantic import BaseModel

    out = []
    stack = [tp]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            out.append(t)
        stack.extend(typing.get_args(t))
    return out


def default_text(field: Any) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    try:
        value = field.default_factory() if field.default_factory is not None else field.default
    except TypeError:
        return "computed"
    if isinstance(value, BaseModel):
        return "defaults"
    if isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
        value = {k: "{...}" for k in value}
    text = repr(value)
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"


def cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def fields_table(model: type) -> list[str]:
    lines = ["| arg | type | default | what it does |", "|---|---|---|---|"]
    for name, f in model.model_fields.items():
        shown = "Input" if "pulumi.Input" in f.metadata else type_name(f.annotation)
        lines.append(f"| `{name}` | {cell(shown)} | {cell(default_text(f))} | "
                     f"{cell(f.description)} |")
    return lines


def outputs(cls: type) -> list[tuple[str, str, str]]:
    """(name, annotation, docstring) of each public annotated attribute in the class body."""
    tree = ast.parse(inspect.getsource(sys.modules[cls.__module__]))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    out = []
    body = node.body
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                and not stmt.target.id.startswith("_"):
            doc = ""
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                doc = nxt.value.value
            out.append((stmt.target.id, ast.unparse(stmt.annotation), doc))
    return out


def config_keys() -> dict[type, str]:
    """Component args class -> the stack-config key whose settings are derived from it."""
    from infra.sections import SECTIONS

    found: dict[type, str] = {}

    def walk(model: Any, path: str) -> None:
        args = getattr(model, "__derived_from__", None)
        if args is not None and args not in found:
            found[args] = path
        for name, f in getattr(model, "model_fields", {}).items():
            key = f"{path}.{f.alias or name}"
            tp = f.annotation
            if typing.get_origin(tp) is dict:
                tp, key = typing.get_args(tp)[1], f"{key}.<name>"
            for t in [tp, *typing.get_args(tp)]:
                if isinstance(t, type) and hasattr(t, "model_fields"):
                    walk(t, key)

    for section in SECTIONS:
        for key, model in section.KEYS.items():
            if typing.get_origin(model) is dict:
                walk(typing.get_args(model)[1], f"genai-scale:{key}.<name>")
            else:
                walk(model, f"genai-scale:{key}")
    return found


def page(cls: type, keys: dict[type, str]) -> str:
    import components

    args = getattr(components, f"{cls.__name__}Args")
    module = sys.modules[cls.__module__]
    lines = [f"# {cls.__name__}", "",
             "<!-- generated by scripts/gen_reference.py from the code: edit the docstrings, not this page -->", "",
             f"```python\nfrom components import {cls.__name__}, {args.__name__}\n```", "",
             f"Module: `{cls.__module__}`. Type token: `genai-scale:index:{cls.__name__}`.", ""]
    key = keys.get(args)
    if key:
        lines += [f"Stack config: `{key}` (camelCase keys of the args below, without the wiring inputs the "
                  "program supplies).", ""]
    lines += ["## What it is, what it creates", "", textwrap.dedent(module.__doc__ or "").strip(), ""]
    lines += [f"## Args: `{args.__name__}`", "", *fields_table(args), ""]
    seen: set[type] = {args}
    queue = [m for f in args.model_fields.values() for m in nested_models(f.annotation)]
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        lines += [f"### {model.__name__}", "", cell(model.__doc__), "", *fields_table(model), ""]
        queue += [m for f in model.model_fields.values() for m in nested_models(f.annotation)]
    lines += ["## Outputs", "", "| attribute | type | what it is |", "|---|---|---|"]
    for name, ann, doc in outputs(cls):
        lines.append(f"| `{name}` | `{cell(ann)}` | {cell(doc)} |")
    return "\n".join(lines).rstrip() + "\n"


def index(classes: list[type]) -> str:
    lines = ["# Component reference", "",
             "<!-- generated by scripts/gen_reference.py from the code: edit the docstrings, not this page -->", "",
             "One page per public component (`from components import ...`): args with type, default and what the "
             "default does; outputs; what it creates. Regenerate with `make reference`.", "",
             "| component | concern | page |", "|---|---|---|"]
    for cls in classes:
        concern = cls.__module__.split(".")[1]
        lines.append(f"| `{cls.__name__}` | {concern} | [{kebab(cls.__name__)}.md]({kebab(cls.__name__)}.md) |")
    return "\n".join(lines) + "\n"


def render_all() -> dict[Path, str]:
    classes = public_components()
    keys = config_keys()
    pages = {OUT / f"{kebab(c.__name__)}.md": page(c, keys) for c in classes}
    pages[OUT / "README.md"] = index(classes)
    return pages


def _shown(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is missing, stale or extra")
    args = parser.parse_args(argv)
    pages = render_all()
    stale = [p for p, text in pages.items() if not p.is_file() or p.read_text() != text]
    extra = [p for p in OUT.glob("*.md") if p not in pages] if OUT.is_dir() else []
    if args.check:
        for p in stale:
            print(f"stale: {_shown(p)}")
        for p in extra:
            print(f"extra: {_shown(p)} (no such component)")
        if stale or extra:
            print("run `make reference` (python scripts/gen_reference.py) and commit docs/reference/")
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for p in extra:
        p.unlink()
    for p, text in pages.items():
        p.write_text(text)
    print(f"wrote {len(pages)} pages to {_shown(OUT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
