"""What every stack section shares: the settings base model, settings derived from component args, and the build
context passed between sections.

A section's settings are derived from the component's args (:func:`derive_settings`), not copied: the field types,
bounds, defaults and docstrings live once, on the args; the stack-config model only adds camelCase keys, leaves out the
wiring (Pulumi inputs such as subnet ids, which the program supplies) and adds section-only switches such as
``enabled``. :func:`args_from` turns the validated settings back into the args, with the wiring.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable

import pulumi
from pydantic import BaseModel, ConfigDict, create_model
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from components.errors import ArgsError

from problems import Problem


class SettingsModel(BaseModel):
    """Base of every stack-config model: camelCase keys in YAML, snake_case in Python, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True,
                              use_attribute_docstrings=True, validate_default=True)


WIRING_MARK = "pulumi.Input"
"""Metadata that ``components.base.PulumiInput`` puts on a field: a wiring input the program supplies."""


def is_wiring(info: FieldInfo) -> bool:
    """True for an args field typed ``PulumiInput`` (a resource id, ARN or Output handed over by the program)."""
    return WIRING_MARK in info.metadata


_DERIVED: dict[tuple[type, str], type[SettingsModel]] = {}


def derive_settings(args: type[BaseModel], *, name: str, exclude: Iterable[str] = (),
                    extra: dict[str, tuple[Any, FieldInfo]] | None = None, doc: str | None = None,
                    module: str | None = None) -> type[SettingsModel]:
    """A stack-config model with the fields of ``args``: same types, bounds, defaults and docstrings, camelCase keys.

    Left out: wiring fields (typed ``PulumiInput``) and ``exclude`` (e.g. ``tags``, which come from the stack's cost
    tags). Nested models become derived models too (their keys camelCase as well). ``extra`` adds section-only fields
    (``enabled``, a node group name, ...), as ``name: (type, Field(...))``.
    """
    skip = set(exclude)
    fields: dict[str, Any] = {}
    for fname, info in args.model_fields.items():
        if fname in skip or is_wiring(info):
            continue
        fields[fname] = (_settings_type(info.annotation), _copy_info(info))
    fields.update(extra or {})
    model = create_model(name, __base__=SettingsModel, __doc__=doc or args.__doc__,
                         __module__=module or __name__, **fields)
    model.__derived_from__ = args  # type: ignore[attr-defined]
    return model


def pick(args: type[BaseModel], *names: str) -> dict[str, tuple[Any, FieldInfo]]:
    """Fields of another args model to add to a derived settings model (``extra=``), as they are declared there."""
    return {n: (_settings_type(args.model_fields[n].annotation), _copy_info(args.model_fields[n])) for n in names}


def optional(args: type[BaseModel], *names: str) -> dict[str, tuple[Any, FieldInfo]]:
    """Required args fields made optional in config (default null), for sections that are off by default; the
    section's ``problems()`` requires them when the section is on."""
    out = {}
    for n in names:
        info = _copy_info(args.model_fields[n])
        info.default = None
        out[n] = (_settings_type(args.model_fields[n].annotation) | None, info)
    return out


def _copy_info(info: FieldInfo) -> FieldInfo:
    out = copy.copy(info)
    out.alias = out.validation_alias = out.serialization_alias = None
    out.alias_priority = None
    factory = info.default_factory
    if factory is not None:  # args-model defaults become plain data, validated into the settings models
        out.default_factory = lambda: _plain(factory())  # type: ignore[call-arg]
    elif isinstance(info.default, BaseModel):
        out.default = _plain(info.default)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=False)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _settings_type(tp: Any) -> Any:
    """``tp`` with every args model in it replaced by its derived settings model."""
    if isinstance(tp, type) and issubclass(tp, BaseModel) and not issubclass(tp, SettingsModel):
        key = (tp, "settings")
        if key not in _DERIVED:
            _DERIVED[key] = derive_settings(tp, name=f"{tp.__name__}Settings")
        return _DERIVED[key]
    origin, params = typing.get_origin(tp), typing.get_args(tp)
    if not params or origin is typing.Literal:
        return tp
    if origin is typing.Annotated:
        return typing.Annotated[(_settings_type(params[0]), *tp.__metadata__)]
    new = tuple(_settings_type(a) for a in params)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new]
    if origin in (list, dict, tuple, set, frozenset):
        return origin[new]
    return tp


def args_from(settings: BaseModel, args: type[BaseModel], **wiring: Any) -> Any:
    """The component args for validated ``settings`` (a derived model), plus ``wiring`` and any other explicit args.
    Section-only settings (``enabled``, ...) are not args and are left out."""
    data = {k: v for k, v in settings.model_dump(by_alias=False).items() if k in args.model_fields}
    data.update(wiring)
    return args(**data)


def unknown_output() -> pulumi.Output[Any]:
    """An Output whose value is unknown (as a preview shows a value computed at deploy time)."""
    import asyncio

    loop = asyncio.get_event_loop()
    value, known, secret = loop.create_future(), loop.create_future(), loop.create_future()
    value.set_result(None)
    known.set_result(False)
    secret.set_result(False)
    return pulumi.Output(set(), value, known, secret)


@dataclass
class BuildContext:
    """Handed from section to section while the program builds the stack."""

    stack: str
    tier: str
    region: str
    tags: dict[str, str]
    targets: Any = None
    network: Any = None
    cluster: Any = None
    k8s_provider: pulumi.ProviderResource | None = None
    node_groups: dict[str, Any] = field(default_factory=dict)
    node_group_specs: dict[str, Any] = field(default_factory=dict)
    gpu_operator: Any = None
    neuron_plugin: Any = None
    cluster_autoscaler: Any = None
    alb: Any = None
    lb_controller: Any = None
    cache: Any = None
    bedrock: Any = None
    sagemaker: dict[str, Any] = field(default_factory=dict)
    vllm_services: dict[str, Any] = field(default_factory=dict)
    model_pools: dict[str, Any] = field(default_factory=dict)
    """The serving section's ModelPools by pool name (the gateway section routes to them)."""
    keda: Any = None
    monitoring: Any = None
    gateway: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    exported: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the reader of the plan should know that the resources do not show (what the stack offers instead of a
    component it left out, and how to add it); the plan prints them after the outputs."""

    pending: list[Any] = field(default_factory=list)
    """Resolvers of the deferred Outputs handed out by :meth:`deferred` (see :meth:`abandon_deferred`)."""

    def deferred(self) -> tuple[pulumi.Output[Any], Any]:
        """A deferred Output and its resolver, for a value a later section creates (``pulumi.deferred_output``).
        Remembered, so that a build that fails before resolving it ends with its error instead of waiting forever."""
        out, resolve = pulumi.deferred_output()
        done = [False]

        def resolver(value: Any) -> None:
            done[0] = True
            resolve(value)

        resolver.done = done  # type: ignore[attr-defined]
        self.pending.append(resolver)
        return out, resolver

    def abandon_deferred(self) -> int:
        """Resolve every deferred Output not resolved yet as unknown (no apply runs on it), so the engine is not left
        waiting on them after a failed build. Returns how many there were."""
        left = [r for r in self.pending if not r.done[0]]
        for r in left:
            r(unknown_output())
        return len(left)

    def export(self, name: str, value: Any) -> None:
        """Export a stack output (and remember it for later sections)."""
        self.exported[name] = value
        pulumi.export(name, value)

    def note(self, text: str) -> None:
        """Add a plan note (also logged as an info message under ``pulumi up`` / ``preview``)."""
        self.notes.append(text)
        pulumi.log.info(text)


_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def translate(err: ArgsError, prefix: str, renames: dict[str, str] | None = None) -> list[Problem]:
    """Component-args problems in config terms: camelCase key paths under ``prefix`` (args fields that have another
    name in config are renamed through ``renames``)."""
    renames = renames or {}

    def camel(text: str) -> str:
        return _SNAKE.sub(lambda m: to_camel(renames.get(m.group(0), m.group(0))), text)

    def where(path: str) -> str:
        head, _, rest = path.partition(".")
        head = renames.get(head, head)
        return camel(to_camel(head) + (f".{rest}" if rest else ""))

    out = []
    for p in err.problems:
        path = f"{prefix}.{where(p.path)}" if p.path else prefix
        related = tuple(f"{prefix}.{where(r)}" for r in p.related)
        out.append(Problem(path, p.value, camel(p.expected), related))
    return out
