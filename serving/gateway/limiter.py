"""Requests and tokens per minute per tenant, shared by every gateway replica through one Redis.

At admission the gateway reserves ``prompt tokens + max_tokens`` (the most the request can cost) and one request in
two token buckets with one Lua script (``lua/reserve.lua``); at the end of the response, the stream, or a client
disconnect it settles to the upstream's reported usage. Because the reservation is an upper bound and is taken
atomically before any upstream call, the tokens served over any interval T never exceed
``capacity + capacity * T / 60 s``, whatever the number of replicas.

Settling, one Redis call per request fewer:

- usage above the reservation (an underestimate) is charged at once (``lua/settle.lua``);
- the unused part of a reservation (a *refund*) is held by the replica for at most ``refund_delay_s`` and given back
  either inside the tenant's next reservation from this replica (the same ``reserve.lua`` call adds it before it
  checks the budget) or, when none comes in time, in one pipelined call for every tenant with refunds pending.

Holding a refund back can only make admission stricter for that short delay, never looser, so the bound above still
holds. A refund whose call fails (timeout, store down) is dropped, never sent twice: the tenant is then charged its
whole reservation, the same outcome as a failed settle.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from hashlib import sha1
from importlib import resources
from typing import Callable

from redis.exceptions import NoScriptError

from serving.gateway.config import TenantLimits

WINDOW_MS = 60_000


def _lua(name: str) -> str:
    return resources.files("serving.gateway").joinpath("lua", name).read_text(encoding="utf-8")


class LimiterUnavailable(RuntimeError):
    """The limiter store did not answer (down, timeout, auth)."""


@dataclass
class Decision:
    allowed: bool
    retry_after_s: int = 0
    limit: str = ""  # "rpm" | "tpm" when rejected
    reservation: "Reservation | None" = None


@dataclass
class Reservation:
    tenant: str
    reserved: int
    capacity: int  # token capacity; -1 when the tenant has no token budget
    settled: bool = field(default=False)


def _keys(tenant: str) -> tuple[str, str]:
    return f"gw:lim:{{{tenant}}}:rpm", f"gw:lim:{{{tenant}}}:tpm"


class _Script:
    def __init__(self, name: str):
        self.text = _lua(name)
        self.sha = sha1(self.text.encode("utf-8")).hexdigest()


_RESERVE = _Script("reserve.lua")
_SETTLE = _Script("settle.lua")
_WARM_KEYS = _keys("gateway-warm-up")  # reserve.lua with both capacities -1 reads the clock and writes nothing


class Limiter:
    def __init__(self, redis, *, timeout_s: float, window_ms: int = WINDOW_MS, refund_delay_s: float = 0.005,
                 on_error: Callable[[str], None] | None = None):
        """``refund_delay_s``: longest a refund is held back (0: one settle call per request, right away).
        ``on_error(op)``: called when a background refund flush fails (``op`` = "settle")."""
        self._redis = redis
        self._timeout = timeout_s
        self._window = window_ms
        self._delay = refund_delay_s
        self._on_error = on_error
        self._refunds: dict[str, list[int]] = {}  # tenant -> [capacity, tokens to give back]
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task] = set()

    # --- store calls -------------------------------------------------------------------------------------------
    async def _eval(self, script: _Script, keys: tuple[str, ...], args: list) -> list:
        try:
            return await self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or failed-over server: load the script and run it (it did not run)
            await self._redis.script_load(script.text)
            return await self._redis.evalsha(script.sha, len(keys), *keys, *args)

    async def warm(self, connections: int) -> None:
        """Load the scripts and open ``connections`` pooled connections (each runs one no-op reservation), so the
        first burst a new replica admits does not pay for connection setup inside the limiter timeout."""
        try:
            async with asyncio.timeout(max(2.0, self._timeout)):
                for s in (_RESERVE, _SETTLE):
                    await self._redis.script_load(s.text)
                await asyncio.gather(*(self._eval(_RESERVE, _WARM_KEYS, [-1, -1, 0, self._window, 0])
                                       for _ in range(connections)))
        except Exception as exc:
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc

    # --- admission ---------------------------------------------------------------------------------------------
    async def reserve(self, tenant: str, limits: TenantLimits, cost: int) -> Decision:
        rpm = limits.requests_per_minute or -1
        tpm = limits.tokens_per_minute or -1
        if rpm < 0 and tpm < 0:
            return Decision(True, reservation=Reservation(tenant, cost, -1))
        refund = self._take_refund(tenant)
        try:
            async with asyncio.timeout(self._timeout):  # no extra task per call, unlike wait_for
                res = await self._eval(_RESERVE, _keys(tenant), [rpm, tpm, cost, self._window, refund])
        except Exception as exc:  # redis errors, timeouts, connection refused (a carried refund is dropped)
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc
        if int(res[0]) == 1:
            return Decision(True, reservation=Reservation(tenant, cost, tpm))
        which = res[2].decode() if isinstance(res[2], bytes) else str(res[2])
        return Decision(False, retry_after_s=max(1, math.ceil(int(res[1]) / 1000)), limit=which)

    # --- settling ----------------------------------------------------------------------------------------------
    def settle_later(self, res: Reservation, used: int) -> bool:
        """Settle without a Redis call when ``used`` is within the reservation: queue the refund (see the module
        docstring). Returns False when the caller must ``await settle(res, used)`` instead (a charge above the
        reservation, or no refund delay configured)."""
        if res.settled:
            return True
        if res.capacity < 0 or used == res.reserved:
            res.settled = True
            return True
        if used > res.reserved or self._delay <= 0:
            return False
        res.settled = True
        pending = self._refunds.get(res.tenant)
        if pending is None:
            self._refunds[res.tenant] = [res.capacity, res.reserved - used]
        else:
            pending[0] = res.capacity
            pending[1] += res.reserved - used
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._flush_in_background)
        return True

    async def settle(self, res: Reservation, used: int) -> None:
        """Return the unused part of a reservation (or charge the excess) now. Idempotent per reservation."""
        if res.settled:
            return
        res.settled = True
        if res.capacity < 0 or used == res.reserved:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._eval(_SETTLE, (_keys(res.tenant)[1],), [res.capacity, res.reserved, used, self._window])
        except Exception as exc:
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc

    def _take_refund(self, tenant: str) -> int:
        pending = self._refunds.pop(tenant, None)
        if not self._refunds and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return pending[1] if pending else 0

    def _flush_in_background(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush_logged())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except LimiterUnavailable:
            if self._on_error is not None:
                self._on_error("settle")

    async def flush(self) -> None:
        """Send every pending refund now, in one pipelined round trip."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._refunds = self._refunds, {}
        if not batch:
            return
        calls = [(_keys(tenant)[1], cap, tokens) for tenant, (cap, tokens) in batch.items()]
        errors: list[Exception] = []
        try:
            async with asyncio.timeout(self._timeout):
                for attempt in range(2):
                    pipe = self._redis.pipeline(transaction=False)
                    for key, cap, tokens in calls:
                        pipe.evalsha(_SETTLE.sha, 1, key, cap, tokens, 0, self._window)
                    results = await pipe.execute(raise_on_error=False)
                    retry = []
                    for call, r in zip(calls, results):
                        if isinstance(r, NoScriptError) and attempt == 0:
                            retry.append(call)  # the script was not loaded, so this call did not run
                        elif isinstance(r, Exception):
                            errors.append(r)
                    if not retry:
                        break
                    await self._redis.script_load(_SETTLE.text)
                    calls = retry
        except Exception as exc:
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc
        if errors:
            raise LimiterUnavailable(str(errors[0]))

    @property
    def idle(self) -> bool:
        """No refund pending or being sent."""
        return not self._refunds and not self._flushes

    async def aclose(self) -> None:
        """Send pending refunds and wait for flushes in flight (on shutdown)."""
        try:
            await self.flush()
        except LimiterUnavailable:
            if self._on_error is not None:
                self._on_error("settle")
        if self._flushes:
            await asyncio.wait(self._flushes, timeout=max(2.0, self._timeout))
