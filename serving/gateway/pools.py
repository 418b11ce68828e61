"""The pool controller: serves the models of dynamic pools (``pools`` in the gateway config), waking sleeping engines
and loading LoRA adapters on demand, evicting by policy, with the pool's state shared by every gateway replica in
Valkey (Lua scripts in ``lua/pool_*.lua``).

A pool replica is one pod running one vLLM engine per base model (``--enable-sleep-mode``, runtime LoRA updating);
at most ``hotEnginesPerReplica`` engines are awake at once, each with at most ``maxLorasPerEngine`` adapters loaded.
For a request whose ``model`` is a pool engine or adapter:

1. **Claim** a replica where the model is hot (engine awake; adapter loaded): the one with the fewest in-flight
   requests for that engine. The claim is one Lua call that checks the state and adds the request to the in-flight set
   of the engine (and adapter), so an eviction decided at the same time on another gateway cannot slip in between.
2. Otherwise the request is **held** (``gateway_pool_held_requests``) while one load happens: in a process, requests for
   the same model share one task; across gateways, the model lease ``mlease:<model>`` (SET NX, TTL
   ``loadTimeoutSeconds``) lets one gateway load while the others wait for the state to turn hot. The loader takes the
   replica lease ``lease:<replica>`` (all changes to one replica are serialised: hot slots are per replica), evicts if
   the replica is full, then wakes (``POST /wake_up``) or loads (``POST /v1/load_lora_adapter``).
3. **Eviction** asks the policy (``serving/gateway/pool_policy.py``, ``eviction``) for a victim among the replica's hot
   engines (not ``keepHot``) or the engine's loaded adapters, with each one's last use, uses and in-flight count; the
   victim is marked ``evicting`` by a Lua call that refuses when it has in-flight requests, then put to sleep
   (``POST /sleep?level=``) or unloaded (``POST /v1/unload_lora_adapter``). No idle victim: the loader waits.
4. A request still held after ``holdTimeoutSeconds`` gets 503 ``model_loading`` with ``Retry-After``. A load the engine
   refuses (HTTP error, timeout) fails every request waiting for it with 502 ``model_load_failed`` naming the model and
   the reason, and is recorded (``fail:<model>``) so waiters on other gateways fail too; the leases are released and
   the next request tries again. A replica that stops answering (connection refused or reset) is marked down for
   ``refreshSeconds`` and its state dropped; the load moves to another replica within the same hold.

Keys (prefix ``gw:pool:{<pool>}:``, one hash slot): ``state`` (hash ``replica|engine`` -> hot/warm/cold/evicting,
``replica|engine|adapter`` -> loaded/evicting), ``last`` and ``uses`` (hashes, same fields: last request time and
request count), ``inflight:<field>`` (sorted sets of request ids scored by expiry: a gateway that dies cannot pin a
model for longer than ``INFLIGHT_TTL_S``), ``down`` (hash replica -> until), ``lease:<replica>``, ``mlease:<model>``,
``fail:<model>``.

Replicas come from ``replicas.urls`` or the A records of ``replicas.dns`` (the pool's headless Service), re-resolved
every ``refreshSeconds``: a new replica's engines are probed (``GET /is_sleeping``, ``GET /v1/models``), a replica
that disappeared is dropped from the state. The engines' admin endpoints are only ever called from here: clients that
send ``/sleep``, ``/wake_up`` or ``/v1/load_lora_adapter`` to the gateway get 404 (no such route).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import orjson
from redis.exceptions import RedisError

from serving.gateway import affinity
from serving.gateway.api_errors import ApiError
from serving.gateway.config import OpenAIUpstream, PoolConfig
from serving.gateway.metrics import Metrics
from serving.gateway.pool_policy import HALF_LIFE_SECONDS, POLICIES, ModelUse
from serving.gateway.routing import Route
from serving.gateway.upstreams import OpenAIUpstreamClient, UpstreamError

log = logging.getLogger("genai_scale.gateway.pools")

INFLIGHT_TTL_S = 900.0
"""A request counts as in flight for at most this long (a safety for gateways that die mid-request): longer streams
may see their model evicted."""
POLL_S = 0.02
"""How often a waiting gateway re-reads the shared state while another gateway loads."""
FAIL_TTL_MS = 30_000
"""How long a failed load stays recorded for the requests that were waiting for it."""


def _lua(name: str) -> str:
    return resources.files("serving.gateway").joinpath("lua", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Target:
    """What a pool model name means: an engine, or an adapter on an engine."""

    pool: str
    engine: str
    adapter: str | None

    @property
    def model(self) -> str:
        return self.adapter or self.engine


@dataclass(frozen=True)
class Replica:
    id: str
    """``HOST`` (DNS) or ``HOST:PORT`` (a static URL with a port)."""
    host: str
    base: int | None
    """A static URL's port: engines are at ``base + port - lowest engine port``."""


class _Gone(Exception):
    """The replica did not answer (connection refused, reset): it is down."""


class _Failed(Exception):
    """The engine answered an admin call with an error, or timed out."""


class _NoRoom(Exception):
    """Every candidate for eviction has requests in flight."""


@dataclass
class _Snap:
    state: dict[str, str]
    last: dict[str, float]
    uses: dict[str, float]
    inflight: dict[str, int]
    down: dict[str, float]


class Lease:
    """One request's claim on a hot model: its upstream, and the in-flight entries that ``release`` removes."""

    def __init__(self, ctl: PoolController, replica: str, target: Target, member: str,
                 upstream: OpenAIUpstreamClient):
        self.ctl, self.replica, self.target, self.member, self.upstream = ctl, replica, target, member, upstream

    def route(self, base: Route) -> Route:
        """The request's route: the model's route with this replica as its only target."""
        return replace(base, targets=[(self.upstream, 1.0)], fallbacks=[])

    async def release(self) -> None:
        c, t = self.ctl, self.target
        try:
            pipe = c.redis.pipeline(transaction=False)
            pipe.zrem(c.key("inflight", f"{self.replica}|{t.engine}"), self.member)
            if t.adapter:
                pipe.zrem(c.key("inflight", f"{self.replica}|{t.engine}|{t.adapter}"), self.member)
            await pipe.execute()
        except Exception as exc:  # the entry expires after INFLIGHT_TTL_S
            log.warning(orjson.dumps({"msg": "pool in-flight release failed", "error": repr(exc)}).decode())


class _PoolUpstream(OpenAIUpstreamClient):
    """An engine of one replica; a connection refused or reset marks the replica down (its state is dropped, so the
    next request wakes or loads the model elsewhere)."""

    def __init__(self, name: str, cfg: OpenAIUpstream, ctl: PoolController, rid: str):
        super().__init__(name, cfg)
        self._ctl, self._rid = ctl, rid

    def _check(self, exc: UpstreamError) -> None:
        if exc.reason.startswith("connection error"):
            self._ctl.replica_gone_soon(self._rid, exc.reason)

    async def complete(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await super().complete(kind, body)
        except UpstreamError as exc:
            self._check(exc)
            raise

    async def open_stream(self, kind: str, body: dict[str, Any]):
        try:
            return await super().open_stream(kind, body)
        except UpstreamError as exc:
            self._check(exc)
            raise


Resolver = Callable[[str], Awaitable[list[str]]]


async def resolve_a(name: str) -> list[str]:
    """The IPv4 addresses of ``name`` (a headless Service answers one A record per ready pod)."""
    infos = await asyncio.get_running_loop().getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return sorted({i[4][0] for i in infos})


class PoolController:
    """One pool: replica discovery, shared state, claims, loads and evictions."""

    def __init__(self, name: str, cfg: PoolConfig, redis, metrics: Metrics, *, resolver: Resolver = resolve_a):
        self.name, self.cfg, self.redis, self.m = name, cfg, redis, metrics
        self.policy = POLICIES[cfg.eviction]
        self.prefix = f"gw:pool:{{{name}}}:"
        self.targets: dict[str, Target] = {}
        for ename, eng in cfg.engines.items():
            self.targets[ename] = Target(name, ename, None)
            for aname in eng.adapters:
                self.targets[aname] = Target(name, ename, aname)
        self._resolver = resolver
        self._low_port = min(e.port for e in cfg.engines.values())
        self.replicas: dict[str, Replica] = {}
        if cfg.replicas.urls is not None:
            for u in cfg.replicas.urls:
                parts = urlsplit(u)
                rid = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
                self.replicas[rid] = Replica(rid, str(parts.hostname), parts.port)
        self._claim = redis.register_script(_lua("pool_claim.lua"))
        self._evict = redis.register_script(_lua("pool_evict.lua"))
        self._unlock = redis.register_script(_lua("pool_unlock.lua"))
        self._ensuring: dict[str, asyncio.Task] = {}
        self._clients: dict[tuple[str, str], OpenAIUpstreamClient] = {}
        self._session: aiohttp.ClientSession | None = None
        self._refresher: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._last_load_s = 1.0
        self._reload_s: dict[str, float] = {}
        """Measured seconds of each model's last wake or load here (``ModelUse.reload_seconds`` for cost-aware)."""
        self._seq = 0

    # --- keys and helpers ---------------------------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def engine_url(self, r: Replica, engine: str) -> str:
        port = self.cfg.engines[engine].port
        if r.base is not None:
            port = r.base + port - self._low_port
        return f"http://{r.host}:{port}"

    def _client(self, rid: str, model: str) -> OpenAIUpstreamClient:
        c = self._clients.get((rid, model))
        if c is None:
            t = self.targets[model]
            cfg = OpenAIUpstream(kind="openai", base_url=self.engine_url(self.replicas[rid], t.engine) + "/v1",
                                 model=model, api_key_env=self.cfg.api_key_env)
            c = self._clients[(rid, model)] = _PoolUpstream(f"{self.name}/{rid}/{model}", cfg, self, rid)
        return c

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {}
            if self.cfg.api_key_env:
                headers["authorization"] = f"Bearer {os.environ.get(self.cfg.api_key_env, '')}"
            self._session = aiohttp.ClientSession(headers=headers)
        return self._session

    # --- lifecycle ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await asyncio.wait_for(self.refresh(), timeout=max(1.0, self.cfg.replicas.refresh_seconds))
        except Exception as exc:  # the loop retries; requests are held meanwhile
            log.warning(orjson.dumps({"msg": "pool refresh failed", "pool": self.name, "error": repr(exc)}).decode())
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        tasks = [t for t in [self._refresher, *self._ensuring.values(), *self._background] if t is not None]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for c in self._clients.values():
            await c.aclose()
        if self._session is not None:
            await self._session.close()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.replicas.refresh_seconds)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning(orjson.dumps({"msg": "pool refresh failed", "pool": self.name,
                                          "error": repr(exc)}).decode())

    async def refresh(self) -> None:
        """Re-resolve the replicas, drop the state of those gone, probe the engines of new ones."""
        if self.cfg.replicas.dns is not None:
            ips = await self._resolver(self.cfg.replicas.dns)
            found = {ip: Replica(ip, ip, None) for ip in ips}
            gone = [rid for rid in self.replicas if rid not in found]
            self.replicas = found
            for rid in gone:
                await self._drop(rid)
        snap = await self.snapshot()
        for rid in self.replicas:
            if not any(f.startswith(rid + "|") for f in snap.state):
                await self._probe(rid)
        now = time.time()
        expired = [rid for rid, until in (await self.redis.hgetall(self.key("down"))).items() if float(until) <= now]
        if expired:
            await self.redis.hdel(self.key("down"), *expired)
        self._export(await self.snapshot())

    async def _drop(self, rid: str) -> None:
        """Forget a replica's state, traffic and connections (gone from DNS, or not answering)."""
        for h in ("state", "last", "uses"):
            fields = [f for f in map(_s, await self.redis.hkeys(self.key(h))) if f.startswith(rid + "|")]
            if fields:
                await self.redis.hdel(self.key(h), *fields)
        for c in [k for k in self._clients if k[0] == rid]:
            await self._clients.pop(c).aclose()

    async def replica_gone(self, rid: str, reason: str) -> None:
        """Mark a replica down for ``refreshSeconds`` and drop its state; a later refresh probes it again."""
        log.warning(orjson.dumps({"msg": "pool replica down", "pool": self.name, "replica": rid,
                                  "error": reason}).decode())
        await self.redis.hset(self.key("down"), rid, time.time() + self.cfg.replicas.refresh_seconds)
        await self._drop(rid)

    def replica_gone_soon(self, rid: str, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self.replica_gone(rid, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _probe(self, rid: str) -> None:
        r = self.replicas[rid]
        for ename in self.cfg.engines:
            base = self.engine_url(r, ename)
            try:
                async with self._http().get(base + "/is_sleeping", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    asleep = (await resp.json(content_type=None)).get("is_sleeping") if resp.status == 200 else None
                if asleep is None:
                    continue
                await self.redis.hsetnx(self.key("state"), f"{rid}|{ename}", "warm" if asleep else "hot")
                async with self._http().get(base + "/v1/models", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    models = (await resp.json(content_type=None)).get("data", []) if resp.status == 200 else []
                for m in models:
                    if m.get("parent") == ename and m.get("id") in self.cfg.engines[ename].adapters:
                        await self.redis.hsetnx(self.key("state"), f"{rid}|{ename}|{m['id']}", "loaded")
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                continue

    # --- shared state -------------------------------------------------------------------------------------------
    async def snapshot(self) -> _Snap:
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for h in ("state", "last", "uses", "down"):
            pipe.hgetall(self.key(h))
        raw = await pipe.execute()
        state, last, uses, down = ({_s(k): _s(v) for k, v in h.items()} for h in raw)
        fields = list(state)
        counts: list[int] = []
        if fields:
            pipe = self.redis.pipeline(transaction=False)
            for f in fields:
                pipe.zcount(self.key("inflight", f), now, "+inf")
            counts = await pipe.execute()
        return _Snap(state, {k: float(v) for k, v in last.items()}, {k: float(v) for k, v in uses.items()},
                     dict(zip(fields, (int(c) for c in counts))),
                     {k: float(v) for k, v in down.items() if float(v) > now})

    def _live(self, snap: _Snap) -> list[str]:
        return [rid for rid in self.replicas if rid not in snap.down]

    def _hot_on(self, t: Target, snap: _Snap) -> list[str]:
        out = []
        for rid in self._live(snap):
            if snap.state.get(f"{rid}|{t.engine}") != "hot":
                continue
            if t.adapter and snap.state.get(f"{rid}|{t.engine}|{t.adapter}") != "loaded":
                continue
            out.append(rid)
        return out

    def _export(self, snap: _Snap) -> None:
        live = self._live(snap)
        for model, t in self.targets.items():
            n = {"hot": 0, "warm": 0, "cold": 0}
            for rid in live:
                es = snap.state.get(f"{rid}|{t.engine}")
                if t.adapter:
                    loaded = snap.state.get(f"{rid}|{t.engine}|{t.adapter}") == "loaded"
                    n["hot" if loaded and es == "hot" else "warm" if loaded else "cold"] += 1
                else:
                    n["hot" if es == "hot" else "warm" if es == "warm" else "cold"] += 1
            for s, v in n.items():
                self.m.pool_state.labels(self.name, model, s).set(v)

    # --- the request path ---------------------------------------------------------------------------------------
    async def acquire(self, model: str, *, key: str | None = None) -> Lease:
        """A claim on a replica where ``model`` is hot, waking or loading it first (held up to holdTimeoutSeconds).
        Raises :class:`ApiError` (503 model_loading / no_replica_available, 502 model_load_failed)."""
        t = self.targets[model]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.hold_timeout_seconds
        held_since: float | None = None
        try:
            while True:
                lease = await self._try_claim(t, key)
                if lease is not None:
                    return lease
                if held_since is None:
                    held_since = time.monotonic()
                    self.m.pool_held.labels(self.name, model).inc()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._hold_timeout(t)
                task = self._ensuring.get(model)
                if task is None or task.done():
                    task = self._ensuring[model] = loop.create_task(self._ensure(t))
                    task.add_done_callback(lambda f, m=model: self._ensured(m, f))
                try:
                    await asyncio.wait_for(asyncio.shield(task), remaining)
                except TimeoutError:
                    raise self._hold_timeout(t) from None
        except (RedisError, OSError) as exc:  # the shared state is out of reach: nothing can be claimed safely
            log.warning(orjson.dumps({"msg": "pool state unavailable", "pool": self.name, "error": repr(exc)}).decode())
            raise ApiError(503, f"The state of pool '{self.name}' is unavailable; retry shortly.",
                           "pool_state_unavailable", type_="api_error", headers={"retry-after": "1"}) from None
        finally:
            if held_since is not None:
                self.m.pool_held.labels(self.name, model).dec()
                self.m.pool_hold_seconds.labels(self.name, model).observe(time.monotonic() - held_since)

    def _ensured(self, model: str, fut: asyncio.Future) -> None:
        if self._ensuring.get(model) is fut:
            del self._ensuring[model]
        if not fut.cancelled():
            fut.exception()  # retrieved: every waiter re-raises it

    def _hold_timeout(self, t: Target) -> ApiError:
        hold = self.cfg.hold_timeout_seconds
        retry = max(1, math.ceil(min(self._last_load_s, hold)))
        return ApiError(503, f"The model '{t.model}' is being loaded on pool '{self.name}' and was not ready within "
                             f"{hold:g} s; retry after {retry} s.", "model_loading", type_="api_error",
                        headers={"retry-after": str(retry)})

    async def _try_claim(self, t: Target, key: str | None = None) -> Lease | None:
        """Claim a replica where ``t`` is hot: with a session or prefix ``key`` (serving/gateway/affinity.py) the
        key's replica in hash order unless it is over its load bound, so a conversation's turns find vLLM's prefix
        cache; without one, the least busy."""
        snap = await self.snapshot()
        hot = self._hot_on(t, snap)
        random.shuffle(hot)
        hot.sort(key=lambda rid: snap.inflight.get(f"{rid}|{t.engine}", 0))
        if key is not None and len(hot) > 1:
            loads = [snap.inflight.get(f"{rid}|{t.engine}", 0) for rid in hot]
            hot = [hot[i] for i in affinity.rank(key, hot, loads).order]
        now = time.time()
        for rid in hot:
            self._seq += 1
            member = f"{secrets.token_hex(6)}{self._seq}"
            fe = f"{rid}|{t.engine}"
            fa = f"{fe}|{t.adapter}" if t.adapter else ""
            ok = await self._claim(keys=[self.key("state"), self.key("last"), self.key("uses"),
                                         self.key("inflight", fe), self.key("inflight", fa or fe)],
                                   args=[fe, fa, member, now + INFLIGHT_TTL_S, now, INFLIGHT_TTL_S * 1000,
                                         HALF_LIFE_SECONDS])
            if ok:
                return Lease(self, rid, t, member, self._client(rid, t.model))
        return None

    async def _ensure(self, t: Target) -> None:
        """Return once ``t`` is hot on a live replica (loading it here, or waiting for the gateway that does)."""
        start = time.time()
        token = secrets.token_hex(8)
        give_up = time.monotonic() + self.cfg.hold_timeout_seconds  # every request waiting for it has given up
        while time.monotonic() < give_up:
            snap = await self.snapshot()
            if self._hot_on(t, snap):
                return
            if not self._live(snap):
                raise ApiError(503, f"No replica of pool '{self.name}' is reachable to serve '{t.model}'; retry "
                                    f"shortly.", "no_replica_available", type_="api_error",
                               headers={"retry-after": str(math.ceil(self.cfg.replicas.refresh_seconds))})
            fail = await self.redis.get(self.key("fail", t.model))
            if fail is not None:
                rec = orjson.loads(fail)
                if rec["at"] >= start:
                    raise self._load_failed(t, rec["reason"])
            mkey = self.key("mlease", t.model)
            if not await self.redis.set(mkey, token, nx=True, px=int(self.cfg.load_timeout_seconds * 1000)):
                await asyncio.sleep(POLL_S)  # another gateway is loading it
                continue
            try:
                if not await self._load_somewhere(t, token, snap):
                    await asyncio.sleep(POLL_S)
            except _Failed as exc:
                rec = {"at": time.time(), "reason": str(exc)}
                await self.redis.set(self.key("fail", t.model), orjson.dumps(rec), px=FAIL_TTL_MS)
                raise self._load_failed(t, str(exc)) from None
            finally:
                await self._unlock(keys=[mkey], args=[token])

    def _load_failed(self, t: Target, reason: str) -> ApiError:
        what = f"adapter '{t.adapter}' of '{t.engine}'" if t.adapter else f"model '{t.engine}'"
        return ApiError(502, f"The {what} could not be loaded on pool '{self.name}': {reason}. Retry; the pool will "
                             f"try again.", "model_load_failed", type_="api_error", param="model",
                        headers={"retry-after": "1"})

    async def _load_somewhere(self, t: Target, token: str, snap: _Snap) -> bool:
        """Make ``t`` hot on one replica (in order of preference); False when none could take it now."""
        slots = self.cfg.hot_engines_per_replica

        def rank(rid: str) -> tuple:
            es = snap.state.get(f"{rid}|{t.engine}")
            hot = sum(1 for e in self.cfg.engines if snap.state.get(f"{rid}|{e}") in ("hot", "evicting"))
            busy = sum(snap.inflight.get(f"{rid}|{e}", 0) for e in self.cfg.engines)
            return (0 if es == "hot" else 1 if hot < slots else 2, busy, random.random())

        for rid in sorted(self._live(snap), key=rank):
            lkey = self.key("lease", rid)
            if not await self.redis.set(lkey, f"{token}|{t.model}", nx=True,
                                        px=int(self.cfg.load_timeout_seconds * 1000)):
                continue
            try:
                await self._make_hot(rid, t)
                return True
            except _Gone as exc:
                await self.replica_gone(rid, str(exc))
            except _NoRoom:
                continue
            finally:
                await self._unlock(keys=[lkey], args=[f"{token}|{t.model}"])
        return False

    # --- transitions (under the replica lease) ------------------------------------------------------------------
    async def _make_hot(self, rid: str, t: Target) -> None:
        snap = await self.snapshot()
        await self._repair(rid, snap)
        fe = f"{rid}|{t.engine}"
        if snap.state.get(fe) != "hot":
            await self._free_engine_slot(rid, t.engine, snap)
            await self._timed(rid, t.engine, t.engine, "wake", "POST", "/wake_up")
            await self.redis.hset(self.key("state"), fe, "hot")
        if t.adapter:
            fa = f"{fe}|{t.adapter}"
            if snap.state.get(fa) != "loaded":
                await self._free_adapter_slot(rid, t.engine, snap)
                path = self.cfg.engines[t.engine].adapters[t.adapter]
                await self._timed(rid, t.engine, t.adapter, "load", "POST", "/v1/load_lora_adapter",
                                  {"lora_name": t.adapter, "lora_path": path})
                await self.redis.hset(self.key("state"), fa, "loaded")
        self._export(await self.snapshot())

    async def _repair(self, rid: str, snap: _Snap) -> None:
        """``evicting`` left by a gateway that died mid-eviction (we hold the replica lease now): ask the engine."""
        for f, s in list(snap.state.items()):
            if s != "evicting" or not f.startswith(rid + "|"):
                continue
            parts = f.split("|")
            if len(parts) == 3:
                snap.state[f] = "loaded"
            else:
                asleep = orjson.loads(await self._call(rid, parts[1], "probe", "GET", "/is_sleeping"))["is_sleeping"]
                snap.state[f] = "warm" if asleep else "hot"
            await self.redis.hset(self.key("state"), f, snap.state[f])

    def _uses(self, fields: dict[str, str], snap: _Snap) -> dict[str, ModelUse]:
        return {name: ModelUse(snap.last.get(f, 0.0), snap.uses.get(f, 0.0), snap.inflight.get(f, 0),
                               self._reload_s.get(name, 1.0))
                for name, f in fields.items()}

    async def _free_engine_slot(self, rid: str, engine: str, snap: _Snap) -> None:
        hot = [e for e in self.cfg.engines if e != engine and snap.state.get(f"{rid}|{e}") in ("hot", "evicting")]
        if len(hot) < self.cfg.hot_engines_per_replica:
            return
        fields = {e: f"{rid}|{e}" for e in hot if not self.cfg.engines[e].keep_hot}
        await self._evict_one(rid, engine, fields, snap, "hot")

    async def _free_adapter_slot(self, rid: str, engine: str, snap: _Snap) -> None:
        loaded = {a: f"{rid}|{engine}|{a}" for a in self.cfg.engines[engine].adapters
                  if snap.state.get(f"{rid}|{engine}|{a}") in ("loaded", "evicting")}
        if len(loaded) < self.cfg.max_loras_per_engine:
            return
        await self._evict_one(rid, engine, {a: f for a, f in loaded.items() if snap.state[f] == "loaded"}, snap,
                              "loaded")

    async def _evict_one(self, rid: str, engine: str, fields: dict[str, str], snap: _Snap, expected: str) -> None:
        cands = self._uses(fields, snap)
        while cands:
            victim = self.policy.victim(cands, time.time())
            if victim is None:
                raise _NoRoom()
            f = fields[victim]
            if await self._evict(keys=[self.key("state"), self.key("inflight", f)], args=[f, expected, time.time()]):
                try:
                    if expected == "hot":
                        await self._call(rid, victim, "sleep", "POST", f"/sleep?level={self.cfg.sleep_level}")
                        new = "warm" if self.cfg.sleep_level == 1 else "cold"
                        await self.redis.hset(self.key("state"), f, new)
                    else:
                        await self._call(rid, engine, "unload", "POST", "/v1/unload_lora_adapter",
                                         {"lora_name": victim})
                        await self.redis.hdel(self.key("state"), f)
                except _Failed:
                    await self.redis.hset(self.key("state"), f, expected)
                    raise
                snap.state[f] = "warm" if expected == "hot" else "gone"
                self.m.pool_evictions.labels(self.name, victim).inc()
                return
            del cands[victim]
        raise _NoRoom()

    async def _timed(self, rid: str, engine: str, model: str, op: str, method: str, path: str,
                     body: dict[str, Any] | None = None) -> None:
        counter = self.m.pool_wakes if op == "wake" else self.m.pool_loads
        t0 = time.monotonic()
        try:
            await self._call(rid, engine, op, method, path, body)
        except (_Failed, _Gone):
            counter.labels(self.name, model, "error").inc()
            raise
        dt = time.monotonic() - t0
        self._last_load_s = self._reload_s[model] = dt
        counter.labels(self.name, model, "ok").inc()
        self.m.pool_load_seconds.labels(self.name, model, op).observe(dt)

    async def _call(self, rid: str, engine: str, op: str, method: str, path: str,
                    body: dict[str, Any] | None = None) -> bytes:
        url = self.engine_url(self.replicas[rid], engine) + path
        limit = self.cfg.load_timeout_seconds
        try:
            async with self._http().request(method, url, data=orjson.dumps(body) if body is not None else None,
                                            headers={"content-type": "application/json"} if body else None,
                                            timeout=aiohttp.ClientTimeout(total=limit)) as resp:
                data = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise _Failed(f"{op} took longer than loadTimeoutSeconds ({limit:g} s)") from None
        except aiohttp.ClientError as exc:
            raise _Gone(f"{op} on {rid}: {type(exc).__name__}") from None
        if status == 200:
            return data
        msg = data[:300].decode("utf-8", "replace")
        try:
            obj = orjson.loads(data)
            err = obj.get("error") if isinstance(obj, dict) else None
            msg = (err.get("message") if isinstance(err, dict) else obj.get("message")) or msg
        except (orjson.JSONDecodeError, AttributeError):
            pass
        if op == "load" and status == 400 and "already been loaded" in msg:
            return data  # loaded before (another gateway's state was lost): the goal is reached
        if op == "unload" and status == 404:
            return data  # not loaded any more: the goal is reached
        raise _Failed(f"the engine answered {op} with HTTP {status}: {msg}")


class Pools:
    """Every pool of a gateway: model name -> controller."""

    def __init__(self, pools: dict[str, PoolConfig], redis, metrics: Metrics, *, resolver: Resolver = resolve_a):
        self.controllers = {n: PoolController(n, c, redis, metrics, resolver=resolver) for n, c in pools.items()}
        self.models: dict[str, PoolController] = {m: c for c in self.controllers.values() for m in c.targets}

    async def start(self) -> None:
        for c in self.controllers.values():
            await c.start()

    async def close(self) -> None:
        for c in self.controllers.values():
            await c.close()

    async def acquire(self, model: str, *, key: str | None = None) -> Lease:
        return await self.models[model].acquire(model, key=key)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
