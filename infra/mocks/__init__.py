"""Realistic Pulumi mocks: every resource gets a plausible id, ARN and the computed outputs callers read.

The offline plan (`genai-scale plan`) and the tests run the real program against these. Modules in this package
register per-type outputs with :func:`outputs_for`; everything else gets a generic id and ARN.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"

OutputsFn = Callable[["MockContext", str, dict[str, Any]], dict[str, Any]]
_OUTPUTS: dict[str, OutputsFn] = {}
_CALLS: dict[str, Callable[["MockContext", dict[str, Any]], dict[str, Any]]] = {}


def outputs_for(*type_tokens: str) -> Callable[[OutputsFn], OutputsFn]:
    """Register a function ``(ctx, name, inputs) -> extra outputs`` for resource type tokens."""

    def deco(fn: OutputsFn) -> OutputsFn:
        for t in type_tokens:
            _OUTPUTS[t] = fn
        return fn

    return deco


def call_for(*tokens: str):
    """Register a function ``(ctx, args) -> result`` for invoke tokens (data sources)."""

    def deco(fn):
        for t in tokens:
            _CALLS[t] = fn
        return fn

    return deco


def short_hash(*parts: str, n: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


@dataclass
class MockContext:
    region: str = DEFAULT_REGION
    account: str = ACCOUNT_ID
    stack: str = "test"
    _local: threading.local = field(default_factory=threading.local)

    @property
    def last_inputs(self) -> dict[str, Any]:
        """Inputs of the registration being served on this thread (read by the recorder)."""
        return getattr(self._local, "inputs", {})

    @last_inputs.setter
    def last_inputs(self, value: dict[str, Any]) -> None:
        self._local.inputs = value

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        reg = self.region if region is None else region
        acct = self.account if account is None else account
        return f"arn:aws:{service}:{reg}:{acct}:{resource}"


def _service_of(type_token: str) -> str:
    # "aws:eks/cluster:Cluster" -> "eks"
    try:
        return type_token.split(":")[1].split("/")[0].lower()
    except IndexError:
        return "resource"


def _kind_of(type_token: str) -> str:
    try:
        return type_token.split(":")[1].split("/")[1].lower()
    except IndexError:
        return "resource"


class GenaiMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs back as outputs and add the computed outputs real providers return."""

    def __init__(self, ctx: MockContext | None = None) -> None:
        _load_plugins()
        self.ctx = ctx or MockContext()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        self.ctx.last_inputs = inputs
        if not args.custom:
            return (None, {})
        rid = f"{args.name}-{short_hash(args.typ, args.name)}"
        if args.resource_id:
            rid = args.resource_id
        state: dict[str, Any] = {**inputs, "id": rid}
        if args.typ.startswith("aws:"):
            state.setdefault("arn", self.ctx.arn(_service_of(args.typ), f"{_kind_of(args.typ)}/{rid}"))
            state.setdefault("tagsAll", inputs.get("tags") or {})
        fn = _OUTPUTS.get(args.typ)
        if fn is not None:
            extra = fn(self.ctx, args.name, inputs)
            if "id" in extra:
                rid = extra["id"]
            state.update(extra)
        return (rid, state)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        fn = _CALLS.get(args.token)
        if fn is None:
            return ({}, [])
        return (fn(self.ctx, dict(args.args)), [])


_loaded = False


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
    _loaded = True
