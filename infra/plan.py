"""Run a Pulumi program (or any function that creates resources) under the package's mocks and record it.

This is the engine of the offline plan (`genai-scale plan`), the policy runner and the tests. Every registration is
recorded with its type token, logical name, parent URN, the inputs the provider would receive (camelCase wire names)
and its resource options, aliases included: a renamed child names its old logical name there. The plan JSON lists
those renaming aliases under ``aliases`` on the resources that have any (the SDKs' own type aliases, the same on every
run, stay out of it). A renamed child gets the id and computed outputs of its old name, as under the engine, where
the alias maps it onto the state, and the physical resource, it had.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pulumi
from pulumi.runtime import mocks as _pmocks
from pulumi.runtime import rpc, settings as _settings
from pulumi.runtime.sync_await import _sync_await

from infra.mocks import GenaiMocks, MockContext

SECRET_MARK = "[secret]"


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    provider: str | None = None
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Input name -> URNs that input's value came from (as CrossGuard sees them)."""
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """The resource's aliases as the engine receives them: ``{"name": old_name}`` for ``pulumi.Alias(name=...)``
    (plus ``type``, ``parentUrn``, ``noParent``, ``stack``, ``project`` when set), or ``{"urn": ...}``."""

    def alias_names(self) -> list[str]:
        """The old logical names this resource is aliased to (same type and parent)."""
        return [a["name"] for a in self.aliases if "name" in a]

    def get(self, dotted: str, default: Any = None) -> Any:
        """Read a nested input by dotted path (``vpcConfig.endpointPublicAccess``; list items by index)."""
        cur: Any = self.inputs
        for part in dotted.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return default
        return cur


@dataclass
class PlanResult:
    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    """What the resources do not show (``BuildContext.note``): printed after the outputs, and in the JSON."""

    def by_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.by_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.by_type(type_token)]
            raise LookupError(f"expected exactly one {type_token}{f' named {name!r}' if name else ''}, "
                              f"found {len(found)} (names: {names})")
        return found[0]

    def named(self, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected exactly one resource named {name!r}, found {len(found)}")
        return found[0]

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]

    def type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))

    def to_json(self, *, tier: str | None = None) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "tier": tier,
            "resources": [
                {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "inputs": jsonable(r.inputs),
                 **({"aliases": renames} if (renames := [a for a in r.aliases if "name" in a]) else {})}
                for r in self.resources
            ],
            "outputs": {k: (SECRET_MARK if k in self.secret_outputs else jsonable(v))
                        for k, v in self.outputs.items()},
            "notes": list(self.notes),
        }


def jsonable(value: Any, *, reveal_secrets: bool = False) -> Any:
    """Inputs as JSON: secrets become "[secret]" (or their value with ``reveal_secrets``, for schema checks in
    tests), resource references their URN."""
    if isinstance(value, dict):
        if _is_secret(value):
            return jsonable(value.get("value"), reveal_secrets=True) if reveal_secrets else SECRET_MARK
        return {str(k): jsonable(v, reveal_secrets=reveal_secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, reveal_secrets=reveal_secrets) for v in value]
    if isinstance(value, pulumi.Resource):
        return _sync_urn(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, pulumi.asset.Asset | pulumi.asset.Archive):
        return f"<{type(value).__name__}>"
    return str(value)


def _alias(alias: Any) -> dict[str, Any]:
    """One ``pulumirpc.Alias`` as a dict of the fields that are set."""
    if alias.HasField("spec"):
        spec = alias.spec
        out: dict[str, Any] = {k: getattr(spec, k) for k in ("name", "type", "stack", "project", "parentUrn")
                               if getattr(spec, k)}
        if spec.noParent:
            out["noParent"] = True
        return out
    return {"urn": alias.urn}


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _sync_urn(res: pulumi.Resource) -> str:
    try:
        fut = res.urn.future()
        return _sync_await(fut) if fut is not None else "<resource>"
    except Exception:  # pragma: no cover - defensive
        return "<resource>"


class _AliasedIdentity:
    """The mocks as the recorder calls them: a resource registered with a name alias is mocked under its old name, so
    it keeps the id and computed outputs it had (the engine maps it onto its old state, it is not a new resource)."""

    def __init__(self, inner: GenaiMocks) -> None:
        self._inner = inner
        self._local = threading.local()

    def identity(self, name: str | None) -> None:
        self._local.name = name

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        old = getattr(self._local, "name", None)
        if old:
            args.name = old
        return self._inner.new_resource(args)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


def _old_name(aliases: list[dict[str, Any]]) -> str | None:
    """The old logical name a resource was renamed from (a name-only alias), if any."""
    names = [a["name"] for a in aliases if set(a) == {"name"}]
    return names[0] if names else None


class _RecordingMonitor(_pmocks.MockMonitor):
    def __init__(self, mocks: GenaiMocks) -> None:
        self._identity = _AliasedIdentity(mocks)
        super().__init__(self._identity)
        self.records: list[RecordedResource] = []
        self._gm = mocks

    def RegisterResource(self, request):  # noqa: N802 (gRPC name)
        aliases = [_alias(a) for a in request.aliases] + [{"urn": u} for u in request.aliasURNs]
        self._identity.identity(_old_name(aliases))
        try:
            resp = super().RegisterResource(request)
        finally:
            self._identity.identity(None)
        if request.type == "pulumi:pulumi:Stack":
            return resp
        reg = self.resources.get(resp.urn)
        inputs = self._gm.ctx.last_inputs
        self._gm.ctx.last_inputs = {}
        self.records.append(RecordedResource(
            urn=resp.urn,
            type=request.type,
            name=request.name,
            parent=(request.parent or None) if "::pulumi:pulumi:Stack::" not in (request.parent or "") else None,
            custom=bool(request.custom),
            inputs=inputs,
            outputs=dict(reg.state) if reg else {},
            id=reg.id if reg else None,
            provider=request.provider or None,
            protect=bool(request.protect) if request.HasField("protect") else False,
            ignore_changes=list(request.ignoreChanges),
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            delete_before_replace=bool(request.deleteBeforeReplace),
            retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
            aliases=aliases,
        ))
        return resp


def run_program(fn: Callable[[], Any], *, project: str = "genai-scale", stack: str = "test",
                config: dict[str, Any] | None = None, secret_keys: Iterable[str] = (),
                region: str | None = None) -> PlanResult:
    """Run ``fn`` under the mocks and return every registration and the stack outputs.

    ``config`` maps full keys (``genai-scale:tier``) to values; non-strings are JSON-encoded as Pulumi does for
    structured config. Exceptions raised by ``fn`` propagate unchanged. When ``fn`` returns an object with a
    ``notes`` list (the program's ``BuildContext``), they become the result's ``notes``.
    """
    cfg = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (config or {}).items()}
    reg = region or (cfg.get("aws:region") or "us-east-1")
    _ensure_event_loop()
    mocks = GenaiMocks(MockContext(region=reg, stack=stack))
    monitor = _RecordingMonitor(mocks)
    saved = _settings.SETTINGS
    _reset_runtime()
    outputs: dict[str, Any] = {}
    secrets: set[str] = set()
    notes: list[str] = []
    try:
        _pmocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
        pulumi.runtime.set_all_config(cfg, list(secret_keys))

        @_pmocks.test
        def _run():
            notes.extend(getattr(fn(), "notes", None) or [])
            root = pulumi.runtime.get_root_resource()
            exported = dict(getattr(root, "outputs", {}) or {})
            if not exported:
                return None
            keys = list(exported)

            async def _secretness():
                for k in keys:
                    v = exported[k]
                    if isinstance(v, pulumi.Output) and await v.is_secret():
                        secrets.add(k)

            def _store(values):
                outputs.update(dict(zip(keys, values)))

            return pulumi.Output.all(*[exported[k] for k in keys]).apply(_store).apply(
                lambda _: pulumi.Output.from_input(asyncio.ensure_future(_secretness())))

        _run()
    finally:
        if saved is not None:
            _settings.configure(saved)
        _reset_runtime()
    records = sorted(monitor.records, key=lambda r: r.urn)  # registration order varies between runs
    return PlanResult(project=project, stack=stack, resources=records, outputs=outputs,
                      secret_outputs=secrets, notes=notes)


def _ensure_event_loop() -> None:
    """Pulumi's runtime needs a usable event loop on this thread; ``asyncio.run`` elsewhere leaves none behind."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError("closed")
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def _reset_runtime() -> None:
    _settings.reset_options()
    try:
        pulumi.runtime.set_all_config({}, [])
    except Exception:  # pragma: no cover
        pass
