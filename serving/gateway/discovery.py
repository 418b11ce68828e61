"""Replica discovery: the pods behind a headless Service, or a static list, as endpoints the gateway addresses one by
one (an ``openai`` upstream's ``replicas``, a model pool's ``replicas``).

A ClusterIP Service hides its pods behind one virtual IP, so the gateway cannot choose the replica that holds a
conversation's prefix cache, or the one where a pool's model is awake. A headless Service (``clusterIP: None``)
answers DNS with one A record per ready pod instead; :class:`Discovery` resolves it again every ``refreshSeconds``
(in the background, after the first answer: a request never waits for DNS once replicas are known). A pod that
disappears from the answer is dropped at the next refresh (listeners hear ``added``/``removed``); a failed lookup keeps
the last known set (as Envoy's strict DNS clusters do), so a resolver hiccup does not empty the upstream. A static
``urls`` list is used as given (tests, local runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yarl

log = logging.getLogger("gateway.discovery")

Resolver = Callable[[str], Awaitable[list[str]]]
"""Host name -> its addresses (A and AAAA records), raising ``OSError`` when the lookup fails."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """One replica: where it listens. ``name`` (``host:port``) is what consistent hashing and metrics use."""

    scheme: str
    host: str
    port: int

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str = "", port: int | None = None) -> str:
        """``scheme://host:port`` + ``path`` (``port`` overrides the replica's, e.g. a pool engine's port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{port or self.port}{path}"


def parse_url(url: str, default_port: int) -> Endpoint:
    """An endpoint from ``http(s)://host[:port]`` (raises ``ValueError`` for anything else)."""
    u = yarl.URL(url)
    if u.scheme not in ("http", "https") or not u.host:
        raise ValueError(f"expected http(s)://HOST[:PORT], got {url!r}")
    port = u.explicit_port or default_port
    return Endpoint(u.scheme, u.host, port)


async def resolve_dns(host: str) -> list[str]:
    """The addresses DNS gives for ``host`` (every A/AAAA record: for a headless Service, one per ready pod)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(ipaddress.ip_address(info[4][0])) for info in infos})


class Discovery:
    """The current replicas of one upstream or pool: static ``urls``, or the A records of ``dns`` re-resolved every
    ``refresh_seconds``."""

    def __init__(self, *, urls: Iterable[str] | None = None, dns: str | None = None, port: int = 8000,
                 scheme: str = "http", refresh_seconds: float = 10.0, resolver: Resolver | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if (urls is None) == (dns is None):
            raise ValueError("give exactly one of urls or dns")
        self.dns = dns
        self.port = port
        self.scheme = scheme
        self.refresh_seconds = refresh_seconds
        self._resolve = resolver or resolve_dns
        self._clock = clock
        self._endpoints: list[Endpoint] = sorted({parse_url(u, port) for u in urls}) if urls is not None else []
        self._resolved_at: float | None = None if dns else clock()
        self._refreshing: asyncio.Task | None = None
        self._first: asyncio.Future | None = None
        self.listeners: list[Callable[[list[Endpoint], list[Endpoint]], None]] = []
        """Called with ``(added, removed)`` whenever the set changes."""
        self.failures = 0
        """DNS lookups that failed (the last known set was kept)."""

    @classmethod
    def from_config(cls, cfg: Any, *, scheme: str = "http", resolver: Resolver | None = None) -> Discovery:
        """From a ``replicas`` block (:class:`serving.gateway.config.ReplicasConfig`)."""
        return cls(urls=cfg.urls, dns=cfg.dns, port=cfg.port, scheme=scheme, refresh_seconds=cfg.refresh_seconds,
                   resolver=resolver)

    def snapshot(self) -> list[Endpoint]:
        """The replicas known now (no lookup)."""
        return list(self._endpoints)

    async def endpoints(self) -> list[Endpoint]:
        """The current replicas: waits for the first lookup; later ones run in the background when the set is older
        than ``refresh_seconds``."""
        if self.dns is None:
            return self._endpoints
        if self._resolved_at is None:
            await self.refresh()
        elif self._clock() - self._resolved_at >= self.refresh_seconds and self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._background())
        return self._endpoints

    async def _background(self) -> None:
        try:
            await self.refresh()
        finally:
            self._refreshing = None

    async def refresh(self) -> list[Endpoint]:
        """Resolve now (concurrent first callers share one lookup) and apply the answer."""
        if self.dns is None:
            return self._endpoints
        if self._first is not None:
            await asyncio.shield(self._first)
            return self._endpoints
        self._first = asyncio.get_running_loop().create_future()
        try:
            addresses = await self._resolve(self.dns)
        except OSError as exc:
            self.failures += 1
            log.warning("replica lookup of %s failed (%s); keeping %d known replicas", self.dns, exc,
                        len(self._endpoints))
        else:
            self._apply(sorted({Endpoint(self.scheme, a, self.port) for a in addresses}))
        finally:
            self._resolved_at = self._clock()
            fut, self._first = self._first, None
            fut.set_result(None)
        return self._endpoints

    def _apply(self, new: list[Endpoint]) -> None:
        old = set(self._endpoints)
        added = [e for e in new if e not in old]
        removed = sorted(old - set(new))
        self._endpoints = new
        if added or removed:
            for listener in self.listeners:
                listener(added, removed)

    async def aclose(self) -> None:
        task, self._refreshing = self._refreshing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
