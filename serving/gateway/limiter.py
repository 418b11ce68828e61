"""Requests and tokens per minute per tenant, shared by every gateway replica through one Redis.

At admission the gateway reserves ``prompt tokens + max_tokens`` (the most the request can cost) and one request in
two token buckets with one Lua script (``lua/reserve.lua``); at the end of the response, the stream, or a client
disconnect it settles to the upstream's reported usage (``lua/settle.lua``), returning the unused part. Because the
reservation is an upper bound and is taken atomically before any upstream call, the tokens served over any interval
T never exceed ``capacity + capacity * T / 60 s``, whatever the number of replicas.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from importlib import resources

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


class Limiter:
    def __init__(self, redis, *, timeout_s: float, window_ms: int = WINDOW_MS):
        self._redis = redis
        self._timeout = timeout_s
        self._window = window_ms
        self._reserve = redis.register_script(_lua("reserve.lua"))
        self._settle = redis.register_script(_lua("settle.lua"))

    async def reserve(self, tenant: str, limits: TenantLimits, cost: int) -> Decision:
        rpm = limits.requests_per_minute or -1
        tpm = limits.tokens_per_minute or -1
        if rpm < 0 and tpm < 0:
            return Decision(True, reservation=Reservation(tenant, cost, -1))
        try:
            async with asyncio.timeout(self._timeout):  # no extra task per call, unlike wait_for
                res = await self._reserve(keys=list(_keys(tenant)), args=[rpm, tpm, cost, self._window])
        except Exception as exc:  # redis errors, timeouts, connection refused
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc
        if int(res[0]) == 1:
            return Decision(True, reservation=Reservation(tenant, cost, tpm))
        which = res[2].decode() if isinstance(res[2], bytes) else str(res[2])
        return Decision(False, retry_after_s=max(1, math.ceil(int(res[1]) / 1000)), limit=which)

    async def settle(self, res: Reservation, used: int) -> None:
        """Return the unused part of a reservation (or charge the excess). Idempotent per reservation."""
        if res.settled:
            return
        res.settled = True
        if res.capacity < 0 or used == res.reserved:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._settle(keys=[_keys(res.tenant)[1]], args=[res.capacity, res.reserved, used, self._window])
        except Exception as exc:
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc
