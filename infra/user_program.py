"""Plan your own Pulumi program offline: ``genai-scale plan --program DIR`` and ``genai-scale policy --program DIR``.

``DIR`` is a Pulumi project: ``Pulumi.yaml`` (``name``, ``runtime: python``, optional ``main:``, optional project
``config:`` defaults) and the program, ``__main__.py`` (or the file or folder ``main:`` names). The program runs under
the same mocks as this repository's ``infra/`` program (:func:`infra.plan.run_program`), as Pulumi runs it: the
program's folder is its working directory and the first entry of ``sys.path`` (both restored afterwards, and modules
imported from the folder are forgotten, so two programs never share a helper module), ``pulumi.get_project()`` is the
project name (it is in every URN) and ``pulumi.get_stack()`` the stack name.

Config (``pulumi.Config()``): the project's ``config:`` defaults, overlaid by a Pulumi stack file, the one given as
``--config-file`` (a ``Pulumi.<stack>.yaml`` file also names the stack) or else ``DIR/Pulumi.<stack>.yaml`` when it
exists. Keys without a namespace belong to the project (``instanceType`` is ``<project>:instanceType``), as in
Pulumi; ``secure:`` values are secrets whose value is ``"[secret]"`` offline.

Errors: a bad project or config file raises :class:`problems.ProblemsError` (the CLI prints the problem list, exit 2),
as does an ``ArgsError`` raised by a component (a bad argument, a model that does not fit) or a pydantic
``ValidationError`` of a settings model, titled with the program's line that raised it. Any other exception raised by
the program becomes :class:`ProgramFailed`, whose message names the file and line in ``DIR`` where it happened (the
deepest frame in ``DIR``), without a traceback.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from problems import Problem, ProblemsError, from_pydantic, missing

PROJECT_FILE = "Pulumi.yaml"
SECRET_VALUE = "[secret]"
DEFAULT_STACK = "dev"
DEFAULT_REGION = "us-east-1"


class ProgramFailed(Exception):
    """The program raised an error that is not a problem list. ``str(err)`` is one short message with ``file:line``."""

    def __init__(self, message: str, *, where: str | None = None):
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Project:
    """A Pulumi project folder as ``pulumi`` reads it."""

    root: Path
    """The folder holding ``Pulumi.yaml``."""
    name: str
    """``name:``: the project name (in every URN, and the default config namespace)."""
    main: Path
    """The file the program starts from (``__main__.py``, or what ``main:`` names)."""
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    """Project-level config defaults (full keys)."""

    @property
    def program_dir(self) -> Path:
        return self.main.parent


@dataclass(frozen=True)
class ProgramConfig:
    """The program's stack: name, config values (full keys, as ``pulumi.Config`` reads them) and which are secret."""

    stack: str
    values: dict[str, Any]
    secret_keys: tuple[str, ...] = ()
    source: str | None = None
    """The stack file the values came from, if any."""

    @property
    def region(self) -> str:
        region = self.values.get("aws:region")
        return region if isinstance(region, str) and region else DEFAULT_REGION


def _shown(path: Path) -> str:
    """A path as the user typed it, relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _full_key(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def read_project(directory: str | os.PathLike) -> Project:
    """Read ``DIR/Pulumi.yaml`` and find the program's entry file. Raises ProblemsError listing every problem."""
    root = Path(directory)
    where = _shown(root)
    if not root.is_dir():
        raise ProblemsError([Problem("--program", str(directory), "a directory holding a Pulumi project "
                                     "(Pulumi.yaml and __main__.py)")], title=f"{where}: not a Pulumi program")
    pfile = root / PROJECT_FILE
    if not pfile.is_file():
        raise ProblemsError([missing(PROJECT_FILE, "a Pulumi project file (name: <project>, runtime: python)")],
                            title=f"{where}: not a Pulumi program")
    try:
        doc = yaml.safe_load(pfile.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "?"
        raise ProblemsError([Problem(line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")],
                            title=f"{_shown(pfile)}: cannot parse") from None
    if not isinstance(doc, dict):
        raise ProblemsError([Problem("(root)", doc, "a mapping (name, runtime, main, ...)")],
                            title=f"{_shown(pfile)}: invalid")
    problems: list[Problem] = []
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        problems.append(missing("name", "the project name, e.g. name: my-inference") if name is None
                        else Problem("name", name, "a non-empty string"))
    runtime = doc.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        problems.append(Problem("runtime", runtime_name if runtime is not None else None,
                                "python (genai-scale plans Python programs)"))
    main = _main_file(root, doc.get("main"), problems)
    config = _project_config(doc.get("config"), name if isinstance(name, str) else "", problems)
    if problems:
        raise ProblemsError(problems, title=f"{_shown(pfile)}: invalid")
    assert main is not None and isinstance(name, str)
    description = doc.get("description")
    return Project(root=root, name=name, main=main, description=description if isinstance(description, str) else "",
                   config=config)


def _main_file(root: Path, main: Any, problems: list[Problem]) -> Path | None:
    """``main:`` as Pulumi's Python host reads it: a folder holding ``__main__.py``, or a ``.py`` file."""
    if main is not None and not isinstance(main, str):
        problems.append(Problem("main", main, "a path relative to Pulumi.yaml"))
        return None
    target = (root / main) if main else root
    entry = target / "__main__.py" if target.is_dir() else target
    if not entry.is_file():
        expected = (f"a folder with __main__.py or a .py file ({_shown(entry)} does not exist)" if main
                    else "the program's entry file, __main__.py, next to Pulumi.yaml (or main: in Pulumi.yaml)")
        problems.append(Problem("main", main, expected) if main else missing("__main__.py", expected))
        return None
    return entry


def _project_config(config: Any, project: str, problems: list[Problem]) -> dict[str, Any]:
    """Project-level config: ``key: value`` or ``key: {default: value, ...}``; declarations without a default are
    left to the stack file."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        problems.append(Problem("config", config, "a mapping of config keys"))
        return {}
    out: dict[str, Any] = {}
    for key, spec in config.items():
        if isinstance(spec, dict) and ({"default", "value", "type", "description", "secret", "items"} & set(spec)):
            if "value" in spec:
                out[_full_key(str(key), project)] = spec["value"]
            elif "default" in spec:
                out[_full_key(str(key), project)] = spec["default"]
        else:
            out[_full_key(str(key), project)] = spec
    return out


def read_config(project: Project, *, stack: str | None = None,
                config_file: str | os.PathLike | None = None) -> ProgramConfig:
    """The program's config: project defaults overlaid by the stack file (``config_file``, else
    ``DIR/Pulumi.<stack>.yaml`` when it exists). The stack is ``stack``, else the ``<stack>`` of a
    ``Pulumi.<stack>.yaml`` config file, else dev. Raises ProblemsError for a file that cannot be read."""
    if stack is None and config_file is not None:  # Pulumi.<stack>.yaml names its stack, as --config-file does
        fname = Path(config_file).name
        if fname.startswith("Pulumi.") and fname.endswith((".yaml", ".yml")) and fname.count(".") >= 2:
            stack = fname[len("Pulumi."):].rsplit(".", 1)[0]
    stack = stack or DEFAULT_STACK
    values = dict(project.config)
    secrets: list[str] = []
    if config_file is not None:
        path: Path | None = Path(config_file)
        if not path.is_file():
            raise ProblemsError([Problem("--config-file", str(config_file), "no such stack config file")],
                                title=f"{_shown(path)}: cannot read")
    else:
        path = project.root / f"Pulumi.{stack}.yaml"
        path = path if path.is_file() else None
    if path is not None:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"line {mark.line + 1}" if mark else "?"
            raise ProblemsError([Problem(line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")],
                                title=f"{_shown(path)}: cannot parse") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("config", {}) or {}, dict):
            raise ProblemsError([Problem("config", doc, "a mapping of config keys (config: {project:key: value})")],
                                title=f"{_shown(path)}: invalid")
        for key, value in (doc.get("config") or {}).items():
            full = _full_key(str(key), project.name)
            if isinstance(value, dict) and set(value) == {"secure"}:
                values[full] = SECRET_VALUE
                secrets.append(full)
            else:
                values[full] = value
    return ProgramConfig(stack=stack, values=values, secret_keys=tuple(secrets),
                         source=_shown(path) if path is not None else None)


def _in_dir(filename: str, directory: Path) -> bool:
    try:
        Path(filename).resolve().relative_to(directory)
        return True
    except (ValueError, OSError):
        return False


def _where(exc: BaseException, directory: Path) -> str | None:
    """``file:line`` of the deepest frame of the traceback that is in the program's folder."""
    if isinstance(exc, SyntaxError) and exc.filename and _in_dir(exc.filename, directory):
        return f"{_shown(Path(exc.filename))}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _in_dir(f.filename, directory)]
    if not frames:
        return None
    last = frames[-1]
    return f"{_shown(Path(last.filename))}:{last.lineno}"


def _failure(exc: BaseException, project: Project) -> ProgramFailed:
    where = _where(exc, project.root.resolve())
    text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    kind = type(exc).__name__
    head = f"{where}: " if where else f"{_shown(project.main)} (no line of it is on the stack): "
    return ProgramFailed(f"{head}{kind}: {text}" if text else f"{head}{kind}", where=where)


class _ProgramScope:
    """Working directory, ``sys.path`` and ``sys.modules`` as the program sees them, restored on exit."""

    def __init__(self, program_dir: Path):
        self.dir = program_dir.resolve()

    def __enter__(self) -> "_ProgramScope":
        self._cwd = os.getcwd()
        self._path = list(sys.path)
        self._modules = set(sys.modules)
        sys.path.insert(0, str(self.dir))
        os.chdir(self.dir)
        return self

    def __exit__(self, *exc: Any) -> None:
        os.chdir(self._cwd)
        sys.path[:] = self._path
        for name in set(sys.modules) - self._modules:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and _in_dir(file, self.dir):
                del sys.modules[name]


def plan_program(directory: str | os.PathLike, *, stack: str | None = None,
                 config_file: str | os.PathLike | None = None) -> tuple[Any, Project, ProgramConfig]:
    """Run the program in ``directory`` under the mocks. Returns (PlanResult, project, config).

    Raises ProblemsError (bad project or config file, or a component's ArgsError) or ProgramFailed (anything else
    the program raised, with the file and line)."""
    from infra.plan import run_program

    project = read_project(directory)
    # the config file is named relative to where the user stands, before the program's folder becomes the cwd
    cfg = read_config(project, stack=stack, config_file=Path(config_file).resolve() if config_file else None)
    main = project.main.resolve()

    try:
        with _ProgramScope(main.parent):  # also around the applies that run after the program's body returned
            result = run_program(lambda: runpy.run_path(str(main), run_name="__main__"), project=project.name,
                                 stack=cfg.stack, config=cfg.values, secret_keys=cfg.secret_keys, region=cfg.region)
    except ProblemsError as err:  # a component's ArgsError: the problem list, titled with the line that raised it
        where = _where(err, project.root.resolve())
        raise err.with_context(title=f"{where}: {err.title}" if where else err.title) from None
    except ValidationError as exc:  # a plain pydantic settings model (VllmModelSettings, ...) rejected its fields
        where = _where(exc, project.root.resolve())
        title = f"invalid {exc.title}"
        raise ProblemsError(from_pydantic(exc), title=f"{where}: {title}" if where else title) from None
    except (Exception, SystemExit) as exc:  # the user's code (sys.exit included): report where, not a traceback
        raise _failure(exc, project) from None
    return result, project, cfg
