"""A fake vLLM replica for the pool tests: one aiohttp server per engine (one base model each, as in a pool pod), all
sharing one GPU's memory, with the endpoints the gateway's pool controller uses, in vLLM's shapes.

Endpoints per engine (vllm/entrypoints/openai/api_server.py and serving_models.py, read 2026-12):
- ``POST /sleep?level=1|2`` and ``POST /wake_up[?tags=...]``: 200 with an empty body (development mode routes);
  ``GET /is_sleeping``: ``{"is_sleeping": bool}``. A wake that does not fit the GPU fails as vLLM does when CUDA runs
  out of memory: 500.
- ``POST /v1/load_lora_adapter {"lora_name", "lora_path"}``: 200 with the text ``Success: LoRA adapter '<name>' added
  successfully.``; 400 ``{"error": {"message", "type": "BadRequestError", "param": null, "code": 400}}`` when the name
  is already loaded, the body lacks a field, the adapter does not fit, or the load failed; 404 ``NotFoundError`` when
  the path holds no adapter. ``POST /v1/unload_lora_adapter {"lora_name"}``: 200 text, 404 when not loaded.
- ``GET /v1/models`` (base model and loaded adapters with ``parent``), ``GET /health``, ``POST /v1/chat/completions``
  (JSON or SSE ending in ``data: [DONE]``); a sleeping engine answers completions 503 (vLLM's protected endpoints).

Test controls (never in vLLM): ``GET /_fake/stats`` (calls per endpoint and engine, engine states, GPU memory in use,
violations: a sleep or unload while requests of that model were in flight) and ``POST /_fake/set`` (delays, fault
switches). Run in-process with :class:`FakeReplica` (``start()`` in a background thread) or as a subprocess:
``python -m tests.kit.fake_vllm '<spec JSON>'`` (prints the base port once listening).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web


@dataclass
class EngineSpec:
    weights_mb: int = 1000
    """GPU memory of the weights while awake."""
    kv_mb: int = 500
    """KV cache reserved while awake."""
    asleep: bool = True
    """Start asleep (a pool's start gate puts every engine to sleep once ready)."""


@dataclass
class Knobs:
    wake_s: float = 0.02
    sleep_s: float = 0.01
    load_s: float = 0.02
    unload_s: float = 0.005
    token_s: float = 0.0
    tokens: int = 5
    adapter_mb: int = 50
    max_loras: int = 8
    fail_next_load: int = 0
    """The next N adapter loads fail with 400 (an adapter that does not load)."""
    fail_next_wake: int = 0
    """The next N wakes fail with 500."""
    die_on_load: bool = False
    """The next load or wake kills the replica mid-way (connections dropped, nothing listens any more)."""


@dataclass
class _Engine:
    name: str
    spec: EngineSpec
    port: int = 0
    asleep: bool = True
    level: int = 0
    adapters: dict[str, str] = field(default_factory=dict)
    active: Counter = field(default_factory=Counter)


class FakeReplica:
    def __init__(self, engines: dict[str, EngineSpec], *, gpu_mb: int = 4000, host: str = "127.0.0.1",
                 knobs: Knobs | None = None, subprocess_mode: bool = False):
        self.engines = {n: _Engine(n, s, asleep=s.asleep) for n, s in engines.items()}
        self.gpu_mb = gpu_mb
        self.host = host
        self.knobs = knobs or Knobs()
        self.calls: Counter = Counter()
        self.log: list[tuple[str, str]] = []
        """Admin calls in order: (endpoint, engine or adapter)."""
        self.violations: list[str] = []
        self.dead = False
        self._subprocess = subprocess_mode
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self.base_port = 0

    # --- accounting ---------------------------------------------------------------------------------------------
    def used_mb(self) -> int:
        used = 0
        for e in self.engines.values():
            if not e.asleep:
                used += e.spec.weights_mb + e.spec.kv_mb
            used += len(e.adapters) * self.knobs.adapter_mb
        return used

    def stats(self) -> dict[str, Any]:
        return {"calls": {f"{k[0]} {k[1]}": v for k, v in self.calls.items()}, "violations": list(self.violations),
                "used_mb": self.used_mb(), "dead": self.dead,
                "engines": {n: {"asleep": e.asleep, "adapters": sorted(e.adapters), "active": sum(e.active.values())}
                            for n, e in self.engines.items()}}

    def count(self, endpoint: str, engine: str | None = None) -> int:
        return sum(v for (ep, en), v in self.calls.items() if ep == endpoint and (engine is None or en == engine))

    # --- the app ------------------------------------------------------------------------------------------------
    def _app(self, eng: _Engine) -> web.Application:
        @web.middleware
        async def gone(request: web.Request, handler):
            if self.dead:
                self._drop(request)
            return await handler(request)

        app = web.Application(middlewares=[gone])
        r = app.router
        r.add_post("/sleep", partial(self._sleep, eng))
        r.add_post("/wake_up", partial(self._wake, eng))
        r.add_get("/is_sleeping", partial(self._is_sleeping, eng))
        r.add_post("/v1/load_lora_adapter", partial(self._load, eng))
        r.add_post("/v1/unload_lora_adapter", partial(self._unload, eng))
        r.add_get("/v1/models", partial(self._models, eng))
        r.add_get("/health", partial(self._health, eng))
        r.add_post("/v1/chat/completions", partial(self._chat, eng))
        r.add_get("/_fake/stats", self._stats)
        r.add_post("/_fake/set", self._set)
        return app

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        return web.Response(body=json.dumps(obj), status=status, content_type="application/json")

    @staticmethod
    def _error(status: int, message: str, type_: str, param: str | None = None) -> web.Response:
        return FakeReplica._json({"error": {"message": message, "type": type_, "param": param, "code": status}},
                                 status)

    def _drop(self, request: web.Request):
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError

    async def _die(self, request: web.Request):
        self.dead = True
        if self._subprocess:
            os._exit(3)
        for runner in self._runners:  # stop listening: later connections are refused
            for site in list(runner.sites):
                asyncio.get_running_loop().create_task(site.stop())
        self._drop(request)

    async def _sleep(self, eng: _Engine, q: web.Request) -> web.Response:
        self.calls["sleep", eng.name] += 1
        self.log.append(("sleep", eng.name))
        level = int(q.query.get("level", "1"))
        if sum(eng.active.values()):
            self.violations.append(f"sleep {eng.name} with {sum(eng.active.values())} requests in flight")
        await asyncio.sleep(self.knobs.sleep_s)
        eng.asleep, eng.level = True, level
        return web.Response(status=200)

    async def _wake(self, eng: _Engine, q: web.Request) -> web.Response:
        self.calls["wake_up", eng.name] += 1
        self.log.append(("wake_up", eng.name))
        if self.knobs.die_on_load:
            await asyncio.sleep(self.knobs.wake_s / 2)
            await self._die(q)
        await asyncio.sleep(self.knobs.wake_s)
        if self.knobs.fail_next_wake > 0:
            self.knobs.fail_next_wake -= 1
            return web.Response(status=500, text="Internal Server Error")
        if eng.asleep:
            need = eng.spec.weights_mb + eng.spec.kv_mb
            if self.used_mb() + need > self.gpu_mb:  # torch.OutOfMemoryError inside the engine: FastAPI's 500
                return web.Response(status=500, text="Internal Server Error")
            eng.asleep, eng.level = False, 0
        return web.Response(status=200)

    async def _is_sleeping(self, eng: _Engine, q: web.Request) -> web.Response:
        self.calls["is_sleeping", eng.name] += 1
        return self._json({"is_sleeping": eng.asleep})

    async def _load(self, eng: _Engine, q: web.Request) -> web.Response:
        self.calls["load_lora_adapter", eng.name] += 1
        body = await q.json()
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return self._error(400, "Both 'lora_name' and 'lora_path' must be provided.", "BadRequestError")
        if name in eng.adapters:
            return self._error(400, f"The lora adapter '{name}' has already been loaded.", "BadRequestError")
        if self.knobs.die_on_load:
            await asyncio.sleep(self.knobs.load_s / 2)
            await self._die(q)
        await asyncio.sleep(self.knobs.load_s)
        if self.knobs.fail_next_load > 0:
            self.knobs.fail_next_load -= 1
            return self._error(400, f"Loading lora {name} failed: No adapter found for {path}", "BadRequestError")
        if len(eng.adapters) >= self.knobs.max_loras or self.used_mb() + self.knobs.adapter_mb > self.gpu_mb:
            return self._error(400, f"Loading lora {name} failed: CUDA out of memory", "BadRequestError")
        eng.adapters[name] = path
        self.log.append(("load_lora_adapter", name))
        return web.Response(status=200, text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload(self, eng: _Engine, q: web.Request) -> web.Response:
        self.calls["unload_lora_adapter", eng.name] += 1
        body = await q.json()
        name = body.get("lora_name")
        if name not in eng.adapters:
            return self._error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        if eng.active[name]:
            self.violations.append(f"unload {name} with {eng.active[name]} requests in flight")
        await asyncio.sleep(self.knobs.unload_s)
        del eng.adapters[name]
        self.log.append(("unload_lora_adapter", name))
        return web.Response(status=200, text=f"Success: LoRA adapter '{name}' removed successfully.")

    async def _models(self, eng: _Engine, q: web.Request) -> web.Response:
        data = [{"id": eng.name, "object": "model", "owned_by": "vllm", "root": eng.name, "parent": None}]
        data += [{"id": a, "object": "model", "owned_by": "vllm", "root": p, "parent": eng.name}
                 for a, p in eng.adapters.items()]
        return self._json({"object": "list", "data": data})

    async def _health(self, eng: _Engine, q: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _chat(self, eng: _Engine, q: web.Request) -> web.StreamResponse:
        body = await q.json()
        model = body.get("model")
        self.calls["chat", model] += 1
        if model != eng.name and model not in eng.adapters:
            return self._error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        if eng.asleep:
            return self._error(503, "The engine is sleeping.", "ServiceUnavailableError")
        n = min(int(body.get("max_tokens") or self.knobs.tokens), self.knobs.tokens)
        rid, created = f"chatcmpl-{random.getrandbits(48):x}", int(time.time())
        base = {"id": rid, "created": created, "model": model}
        usage = {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n}
        eng.active[model] += 1
        try:
            if not body.get("stream"):
                await asyncio.sleep(self.knobs.token_s * n)
                msg = {"role": "assistant", "content": " ".join(f"t{i}" for i in range(n))}
                return self._json(dict(base, object="chat.completion", usage=usage,
                                       choices=[{"index": 0, "message": msg, "finish_reason": "stop"}]))
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(q)
            chunk = dict(base, object="chat.completion.chunk")
            for i in range(n):
                await asyncio.sleep(self.knobs.token_s)
                delta = {"content": f"t{i} "} if i else {"role": "assistant", "content": "t0 "}
                ev = dict(chunk, choices=[{"index": 0, "delta": delta, "finish_reason": None}])
                await resp.write(b"data: " + json.dumps(ev).encode() + b"\n\n")
            ev = dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
            await resp.write(b"data: " + json.dumps(ev).encode() + b"\n\n")
            await resp.write(b"data: " + json.dumps(dict(chunk, choices=[], usage=usage)).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        finally:
            eng.active[model] -= 1

    async def _stats(self, q: web.Request) -> web.Response:
        return self._json(self.stats())

    async def _set(self, q: web.Request) -> web.Response:
        for k, v in (await q.json()).items():
            if not hasattr(self.knobs, k):
                return self._error(400, f"unknown knob {k!r}", "BadRequestError")
            setattr(self.knobs, k, v)
        return self._json({"ok": True})

    # --- running ------------------------------------------------------------------------------------------------
    def ports(self) -> dict[str, int]:
        return {n: e.port for n, e in self.engines.items()}

    @property
    def url(self) -> str:
        """The replica's static URL for the gateway's ``pools.<pool>.replicas.urls``."""
        return f"http://{self.host}:{self.base_port}"

    async def serve(self, base_port: int) -> None:
        self.base_port = base_port
        for i, eng in enumerate(self.engines.values()):
            eng.port = base_port + i
            runner = web.AppRunner(self._app(eng), access_log=None, handle_signals=False, shutdown_timeout=0.5)
            await runner.setup()
            await web.TCPSite(runner, self.host, eng.port).start()
            self._runners.append(runner)

    def start(self) -> "FakeReplica":
        """Serve from a background thread on consecutive free ports (one per engine, in declaration order)."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        err: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.serve(free_ports(len(self.engines), self.host)))
            except BaseException as exc:  # pragma: no cover - reported below
                err.append(exc)
            ready.set()
            if not err:
                self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        if err:
            raise err[0]
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def cleanup() -> None:
            for r in self._runners:
                await r.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        except Exception:  # pragma: no cover - already dead
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None


def free_ports(n: int, host: str = "127.0.0.1") -> int:
    """The first of ``n`` consecutive TCP ports free on ``host`` right now."""
    for _ in range(200):
        base = random.randint(20000, 60000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind((host, base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports on {host}")


def replica_from_spec(spec: dict[str, Any], *, subprocess_mode: bool = False) -> FakeReplica:
    """``{"engines": {name: {weightsMb, kvMb, asleep}}, "gpuMb", "host", "knobs": {...}}``."""
    engines = {n: EngineSpec(weights_mb=e.get("weightsMb", 1000), kv_mb=e.get("kvMb", 500),
                             asleep=e.get("asleep", True)) for n, e in spec["engines"].items()}
    return FakeReplica(engines, gpu_mb=spec.get("gpuMb", 4000), host=spec.get("host", "127.0.0.1"),
                       knobs=Knobs(**spec.get("knobs", {})), subprocess_mode=subprocess_mode)


def main(argv: list[str]) -> None:
    replica = replica_from_spec(json.loads(argv[0]), subprocess_mode=True)

    async def run() -> None:
        await replica.serve(free_ports(len(replica.engines), replica.host))
        print(replica.base_port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1:])
