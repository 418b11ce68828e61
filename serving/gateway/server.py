"""The HTTP server around the app: uvicorn with httptools, plus what uvicorn lacks against slow clients.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) but not how long a client may take to send a
request: a client sending its headers or body at 1 byte/s holds a connection (and, for a body, a running request)
for as long as it likes, and httptools buffers headers of any size. :func:`guarded_protocol` returns a subclass of
uvicorn's httptools protocol that adds, per connection (HAProxy ``timeout http-request``, nginx
``client_header_timeout`` / ``client_body_timeout`` / ``large_client_header_buffers``):

- ``server.headerReadTimeoutSeconds``: from a request's first byte (or the connection's opening) to the end of its
  headers; past it the connection gets ``408`` and is closed;
- ``server.bodyReadTimeoutSeconds``: from the end of the headers to the end of the body; past it, ``408`` when no
  response has started, and the connection is closed (the handler sees a disconnect);
- ``server.maxHeaderBytes``: request line plus headers; above it ``431`` and the connection is closed.

Drops are counted in ``gateway_slow_clients_total{phase}`` (``header``, ``body``, ``header_size``). The subclass
relies on uvicorn's httptools protocol callbacks (``connection_made``, ``on_message_begin``, ``on_url``,
``on_header``, ``on_headers_complete``, ``on_message_complete``, ``send_400_response``), which the tests exercise
with raw sockets against the installed uvicorn (the requirements allow 0.30 to 0.x).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _reply(status: int, reason: str, message: str, code: str) -> bytes:
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": code}})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode() + body


def guarded_protocol(*, header_timeout_s: float, body_timeout_s: float, max_header_bytes: int,
                     on_drop: Callable[[str], None] | None = None) -> type[asyncio.Protocol]:
    """An httptools protocol class with header/body read deadlines and a header size cap."""
    too_slow = _reply(408, "Request Timeout", "The request was not received in time.", "request_timeout")
    too_big = _reply(431, "Request Header Fields Too Large",
                     f"The request line and headers are larger than {max_header_bytes} bytes.",
                     "request_header_too_large")

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._timer: asyncio.TimerHandle | None = None
            self._in_head = False
            self._raw_head = 0  # bytes of chunks that ended with the head still incomplete
            self._parsed_head = 0  # request line and header fields the parser has handed over
            self._too_big = False

        # --- deadlines ---------------------------------------------------------------------------------------
        def _arm(self, seconds: float, phase: str) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expired, phase)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _drop(self, phase: str, reply: bytes | None) -> None:
            self._disarm()
            if on_drop is not None:
                on_drop(phase)
            if self.transport.is_closing():
                return
            c = self.cycle  # the current request's, or the previous one's on a kept-alive connection
            started = c is not None and c.response_started and not c.response_complete
            if reply is not None and not started:
                self.transport.write(reply)
            self.transport.close()

        def _expired(self, phase: str) -> None:
            self._timer = None
            self._drop(phase, too_slow)

        def _start_head(self) -> None:
            self._in_head = True
            self._raw_head = self._parsed_head = 0
            self._arm(header_timeout_s, "header")

        # --- uvicorn protocol hooks --------------------------------------------------------------------------
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_head()  # the first request's clock starts now: a silent connection is dropped too

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                self._raw_head += len(data)  # the head is still incomplete after this chunk: all of it was head
                if self._raw_head > max_header_bytes:
                    self._drop("header_size", too_big)

        def send_400_response(self, msg: str) -> None:
            if self._too_big:  # the parser stopped because a callback refused an oversized head
                self._drop("header_size", too_big)
                return
            super().send_400_response(msg)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if not self._in_head:  # the next request on a kept-alive connection: its first byte starts the clock
                self._start_head()

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self._count(len(url))

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            self._count(len(name) + len(value) + 4)

        def _count(self, n: int) -> None:
            self._parsed_head += n
            if self._parsed_head > max_header_bytes:
                self._too_big = True
                raise _HeaderTooLarge()  # the parser reports it as an error: see send_400_response

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._arm(body_timeout_s, "body")  # disarmed when the body is complete (at once without one)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

    return GuardedHttpToolsProtocol


class _HeaderTooLarge(Exception):
    """Raised from the parser's callbacks to stop parsing an oversized head."""


def uvicorn_config(app: Any, server: Any, metrics: Any = None, **overrides: Any):
    """uvicorn settings for the gateway: httptools with the guards of ``server`` (a ``ServerConfig``), uvloop when
    installed, no access log (the app logs one JSON line per request). ``overrides`` win (host, port, loop, ...)."""
    import importlib.util

    import uvicorn

    on_drop = (lambda phase: metrics.slow_clients.labels(phase).inc()) if metrics is not None else None
    protocol = guarded_protocol(header_timeout_s=server.header_read_timeout_seconds,
                                body_timeout_s=server.body_read_timeout_seconds,
                                max_header_bytes=server.max_header_bytes, on_drop=on_drop)
    kw: dict[str, Any] = {"host": server.host, "port": server.port, "lifespan": "on", "http": protocol,
                          "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
                          "access_log": False, "log_level": "warning",
                          "timeout_graceful_shutdown": int(server.drain_timeout_seconds) or None,
                          "timeout_keep_alive": 75, "server_header": False}
    kw.update(overrides)
    return uvicorn.Config(app, **kw)
