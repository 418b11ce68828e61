"""Shared by the gateway benchmarks: start redis-server, the stub upstream and gateway processes on free loopback
ports (PIDs kept, stopped by PID), and a closed-loop keep-alive HTTP/1.1 load generator (same method as the
LiteLLM overhead anchor: C workers, one connection each, N requests or T seconds, nearest-rank percentiles)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.pids: dict[int, int] = {}  # listening port -> PID (stub and gateways)

    def start(self, args: list[str], port: int, env: dict[str, str] | None = None,
              timeout: float = 30, cwd: Path = ROOT, stdout: Path | None = None) -> subprocess.Popen:
        out = open(stdout, "ab") if stdout is not None else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
        p = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {})))
        self.procs.append(p)
        wait_port(port, timeout)
        return p

    def litellm(self, exe: str, stub_port: int, tmp: Path) -> int:
        """LiteLLM's proxy on the same stub (settings of the overhead anchor: no DB, no callbacks, 1 worker)."""
        port = free_port()
        cfg = {"model_list": [{"model_name": "stub-model", "litellm_params": {
                   "model": "openai/stub-model", "api_base": f"http://127.0.0.1:{stub_port}/v1",
                   "api_key": "sk-upstream"}}],
               "litellm_settings": {"telemetry": False, "drop_params": True, "turn_off_message_logging": True,
                                    "callbacks": [], "success_callback": [], "failure_callback": []},
               "general_settings": {"master_key": "sk-bench", "disable_spend_logs": True,
                                    "disable_error_logs": True, "allow_requests_on_db_unavailable": True}}
        path = tmp / "litellm.yaml"
        path.write_text(yaml.safe_dump(cfg))
        self.start([exe, "--config", str(path), "--host", "127.0.0.1", "--port", str(port)], port,
                   env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"},
                   timeout=120)
        return port

    def redis(self) -> str:
        port = free_port()
        self.start([shutil.which("redis-server"), "--port", str(port), "--save", "", "--appendonly", "no"], port)
        return f"redis://127.0.0.1:{port}/0"

    def stub(self) -> int:
        port = free_port()
        self.start([PY, "-m", "serving.gateway.cli", "stub", "--port", str(port)], port)
        self.pids[port] = self.procs[-1].pid
        return port

    def gateway(self, cfg: dict, tmp: Path, tree: Path = ROOT, log_level: str = "warning") -> int:
        """A gateway process; ``tree``: the source tree to run it from (another checkout, to compare versions);
        ``log_level``: its request log level (``info``, the default of the config, writes one JSON line per request
        to a file in ``tmp``, as a container runtime would take it from stdout)."""
        port = free_port()
        path = tmp / f"gw-{port}.yaml"
        path.write_text(yaml.safe_dump(dict(cfg, server=dict(cfg.get("server", {}), host="127.0.0.1", port=port,
                                                              metricsPort=0, logLevel=log_level)),
                                       sort_keys=False))
        log = tmp / f"gw-{port}.log" if log_level in ("debug", "info") else None
        self.start([PY, "-m", "serving.gateway.cli", "serve", "--config", str(path)], port, cwd=tree, stdout=log)
        self.pids[port] = self.procs[-1].pid
        return port

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_bytes(port: int, body: dict, key: str = "sk-bench") -> bytes:
    data = json.dumps(body).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


async def _one(reader, writer, req: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    clen, chunked = None, False
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        k, v = k.strip().lower(), v.strip().lower()
        if k == b"content-length":
            clen = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v:
            chunked = True
    if chunked:
        while True:
            sz = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if sz == 0:
                await reader.readuntil(b"\r\n")
                break
            await reader.readexactly(sz + 2)
    elif clen:
        await reader.readexactly(clen)
    return status, time.perf_counter() - t0


async def load(port: int, req: bytes | Callable[[], bytes], conc: int, n: int, seconds: float) -> dict:
    """``n`` requests (or as many as fit in ``seconds``) from ``conc`` connections; ``req`` is the raw request, or a
    function that makes a new one for every request."""
    make = req if callable(req) else (lambda: req)
    lat: list[float] = []
    codes: dict[int, int] = {}
    issued = 0
    end = time.perf_counter() + seconds

    async def worker():
        nonlocal issued
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        try:
            while issued < n and time.perf_counter() < end:
                issued += 1
                status, dt = await asyncio.wait_for(_one(reader, writer, make()), 30)
                codes[status] = codes.get(status, 0) + 1
                if status == 200:
                    lat.append(dt)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    pct = lambda p: lat[max(0, min(len(lat) - 1, int(round(p / 100 * len(lat) + 0.5)) - 1))] * 1000  # noqa: E731
    return {"ok": len(lat), "codes": codes, "rps": len(lat) / elapsed, "p50": pct(50), "p99": pct(99)}
