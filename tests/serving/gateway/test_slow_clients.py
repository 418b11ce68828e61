"""Slow and oversized clients against the real server stack (uvicorn + the guarded httptools protocol), with raw
sockets: 50 connections sending headers or a body at 1 byte/s are dropped by the default deadlines, long before
30 s, while a normal request on another connection is still served."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from serving.gateway.config import ServerConfig
from serving.gateway.server import uvicorn_config
from tests.serving.gateway.conftest import KEYS, base_config, free_port, wait_port


class _Server:
    def __init__(self, app, server_cfg: ServerConfig, metrics=None):
        self.port = free_port()
        cfg = uvicorn_config(app, server_cfg, metrics, host="127.0.0.1", port=self.port, loop="asyncio",
                             log_level="error", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_port(self.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def guarded(redis_server, stubs):
    from serving.gateway.app import Gateway, create_app
    from serving.gateway.config import parse_config

    servers = []

    def make(**server_keys):
        cfg = base_config(redis_server.url, stubs)
        cfg["routes"]["cached"]["cache"] = {"exact": {"enabled": True}}
        cfg["server"].update(server_keys)
        gw = Gateway(parse_config(cfg))
        srv = _Server(create_app(gw), gw.cfg.server, gw.metrics)
        servers.append(srv)
        return srv, gw

    yield make
    for s in servers:
        s.stop()


def _request(body: bytes = b'{"model":"plain","messages":[{"role":"user","content":"hi"}],"max_tokens":2}',
             extra: bytes = b"") -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer " + KEYS["acme"].encode() + b"\r\n" + extra +
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _response(sock: socket.socket) -> bytes:
    """One whole HTTP response (headers and a content-length body) from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _closed(sock: socket.socket) -> bool:
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def _trickle(socks: list[socket.socket], payloads: list[bytes], limit_s: float) -> float:
    """Send one byte per second on every socket until all are closed by the server; returns the time taken."""
    t0 = time.monotonic()
    pos = [0] * len(socks)
    open_ = set(range(len(socks)))
    while open_ and time.monotonic() - t0 < limit_s:
        for i in list(open_):
            try:
                if _closed(socks[i]):
                    open_.discard(i)
                    continue
                if pos[i] < len(payloads[i]):
                    socks[i].send(payloads[i][pos[i]:pos[i] + 1])
                    pos[i] += 1
            except OSError:
                open_.discard(i)
        time.sleep(1.0)
    assert not open_, f"{len(open_)} slow connections still open after {limit_s} s"
    return time.monotonic() - t0


def _connect(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    return socks


def test_defaults_drop_50_slowloris_connections_well_before_30_s(guarded):
    srv, gw = guarded()  # the shipped defaults
    defaults = ServerConfig()
    assert defaults.header_read_timeout_seconds == 10 and defaults.body_read_timeout_seconds == 15
    heads = _connect(srv.port, 25)
    bodies = _connect(srv.port, 25)
    full = _request()
    head_len = full.index(b"\r\n\r\n") + 4
    for s in bodies:  # headers at once, then the body at 1 byte/s
        s.send(full[:head_len])
    import httpx

    ok = httpx.post(f"http://127.0.0.1:{srv.port}/v1/chat/completions", content=full[head_len:],
                    headers={"authorization": f"Bearer {KEYS['acme']}", "content-type": "application/json"})
    assert ok.status_code == 200  # a normal client is served meanwhile
    took = _trickle(heads + bodies, [full] * 25 + [full[head_len:]] * 25, limit_s=25)
    assert took < 20
    assert gw.metrics.registry.get_sample_value("gateway_slow_clients_total", {"phase": "header"}) == 25
    assert gw.metrics.registry.get_sample_value("gateway_slow_clients_total", {"phase": "body"}) == 25
    for s in heads + bodies:
        s.close()


def test_short_deadlines_answer_408_and_keep_alive_requests_are_timed_per_request(guarded):
    srv, _ = guarded(headerReadTimeoutSeconds=0.5, bodyReadTimeoutSeconds=0.5)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    full = _request()
    s.sendall(full)  # a whole request at once, then the connection idles (keep-alive is not a slow header)
    assert _response(s).startswith(b"HTTP/1.1 200")
    time.sleep(1.0)
    s.sendall(full[:10])  # the next request starts and stalls
    reply = _response(s)
    assert reply.startswith(b"HTTP/1.1 408") and b'"code":"request_timeout"' in reply
    assert s.recv(10) == b""
    s.close()


def test_oversized_headers_get_431(guarded):
    srv, gw = guarded(maxHeaderBytes=4096)
    for extra in (b"x-big: " + b"a" * 8000 + b"\r\n",                       # one huge header
                  b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 100) for i in range(60))):  # many small ones
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(_request(extra=extra))
        reply = _response(s)
        assert reply.startswith(b"HTTP/1.1 431"), reply[:80]
        assert b'"code":"request_header_too_large"' in reply
        s.close()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"c" * 5000)  # still incomplete: raw count
    reply = _response(s)
    assert reply.startswith(b"HTTP/1.1 431")
    s.close()
    assert gw.metrics.registry.get_sample_value("gateway_slow_clients_total", {"phase": "header_size"}) == 3
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(_request(extra=b"x-ok: " + b"d" * 1000 + b"\r\n"))
    assert _response(s).startswith(b"HTTP/1.1 200")
    s.close()


def test_guard_settings_are_bounded_and_listed_together():
    from serving.gateway.config import parse_config
    from serving.gateway.errors import ConfigError

    cfg = base_config("redis://127.0.0.1:6379/0", {})
    cfg["upstreams"] = {"a": {"kind": "openai", "baseUrl": "http://x/v1", "model": "m"}}
    cfg["routes"] = {"plain": {"targets": [{"upstream": "a"}]}}
    cfg["server"].update(headerReadTimeoutSeconds=0, bodyReadTimeoutSeconds=-1, maxHeaderBytes=100,
                         maxBodyBytes=10**12)
    with pytest.raises(ConfigError) as err:
        parse_config(cfg)
    text = str(err.value)
    for expected in ("server.headerReadTimeoutSeconds = 0: expected a number > 0",
                     "server.bodyReadTimeoutSeconds = -1: expected a number > 0",
                     "server.maxHeaderBytes = 100: expected a number >= 1024",
                     "server.maxBodyBytes = 1000000000000: expected a number <= 268435456"):
        assert expected in text, text

