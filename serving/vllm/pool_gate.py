#!/usr/bin/env python3
"""Start gate of a dynamic model pool's engines: one engine loads at a time, and each goes to sleep once ready.

Every vLLM engine container of a dynamic pool replica runs ``genai-scale-pool-gate <entrypoint> <vllm serve args>``.
The containers share an emptyDir holding a lock file (``POOL_GATE_LOCK``). The gate

1. takes an exclusive ``flock`` on the lock file (blocking: the other engines wait their turn);
2. starts the entrypoint (weights fetch, then ``vllm serve``) as its child;
3. waits for ``GET /health`` to answer 200 on the engine's port, then ``POST /sleep?level=<POOL_SLEEP_LEVEL>`` and
   waits for ``GET /is_sleeping`` to report true: the engine's weights have left the GPU (level 1: to host RAM,
   level 2: discarded) and its KV cache is freed;
4. releases the lock, so the next engine loads with the whole GPU share free, then waits for the child, passing
   SIGTERM/SIGINT on (the entrypoint and vLLM drain in-flight requests themselves).

Why a lock and not init containers or pod start ordering: every engine must keep running after its turn, so init
containers do not fit, and Kubernetes starts a pod's regular containers together; vLLM itself has no cross-process
start ordering. Without the gate, engines beyond the hot slots would each reserve their ``--gpu-memory-utilization``
share at once and the later ones would fail to start. A child that exits before it is asleep ends the gate with its
exit code (the lock goes with the process), and the kubelet restarts the container.

Environment: ``POOL_GATE_LOCK`` (lock file path), ``POOL_ENGINE_PORT`` (default 8000), ``POOL_SLEEP_LEVEL``
(1 or 2, default 1), ``POOL_GATE_TIMEOUT_SECONDS`` (how long a start may take, default 1200),
``POOL_GATE_POLL_SECONDS`` (default 2), ``VLLM_API_KEY`` (sent as a bearer token when set). Standard library only.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

DEFAULT_LOCK = "/gate/start.lock"


def request(port: int, method: str, path: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """One HTTP call to the engine on localhost: (status, body); status 0 when it does not answer."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    key = os.environ.get("VLLM_API_KEY")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def is_sleeping(body: bytes) -> bool:
    """``/is_sleeping`` answers ``{"is_sleeping": true|false}``."""
    try:
        return bool(json.loads(body or b"{}").get("is_sleeping"))
    except (ValueError, AttributeError):
        return False


def wait_until(check, child: subprocess.Popen, deadline: float, poll: float) -> bool:
    """Poll ``check()`` until true (True), the child exits or the deadline passes (False)."""
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if check():
            return True
        time.sleep(poll)
    return False


def start_and_sleep(child: subprocess.Popen, *, port: int, level: int, timeout: float, poll: float = 2.0,
                    log=print) -> bool:
    """Wait for the engine to be healthy, put it to sleep, wait until it sleeps; False if it died or timed out."""
    deadline = time.monotonic() + timeout
    if not wait_until(lambda: request(port, "GET", "/health")[0] == 200, child, deadline, poll):
        return False
    status, body = request(port, "POST", f"/sleep?level={level}", timeout=120)
    if status != 200:
        log(f"genai-scale pool gate: POST /sleep?level={level} answered {status}: {body[:200]!r}")
        return False
    ok = wait_until(lambda: is_sleeping(request(port, "GET", "/is_sleeping")[1]), child, deadline, poll)
    if ok:
        log(f"genai-scale pool gate: engine on port {port} is ready and asleep (level {level})")
    return ok


class _Stopped(Exception):
    """SIGTERM/SIGINT arrived before the engine's turn."""


def _stop_waiting(*_: object) -> None:
    raise _Stopped


def main(argv: list[str] | None = None) -> int:
    cmd = list(sys.argv[1:] if argv is None else argv)
    if not cmd:
        print("usage: genai-scale-pool-gate <entrypoint> [vllm serve args...]", file=sys.stderr)
        return 2
    port = int(os.environ.get("POOL_ENGINE_PORT", "8000"))
    level = int(os.environ.get("POOL_SLEEP_LEVEL", "1"))
    timeout = float(os.environ.get("POOL_GATE_TIMEOUT_SECONDS", "1200"))
    lock = open(os.environ.get("POOL_GATE_LOCK", DEFAULT_LOCK), "a+")  # noqa: SIM115 - held until released
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_waiting)  # stopped while waiting for the lock: nothing started, nothing to drain
    print(f"genai-scale pool gate: engine on port {port} waiting for its turn to start", flush=True)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
    except _Stopped:
        return 0
    child = subprocess.Popen(cmd)
    signal.signal(signal.SIGTERM, lambda s, _: child.send_signal(s))
    signal.signal(signal.SIGINT, lambda s, _: child.send_signal(s))
    if not start_and_sleep(child, port=port, level=level, timeout=timeout,
                             poll=float(os.environ.get("POOL_GATE_POLL_SECONDS", "2"))):
        print(f"genai-scale pool gate: engine on port {port} did not start and sleep within {timeout:g} s",
              flush=True)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    fcntl.flock(lock, fcntl.LOCK_UN)
    lock.close()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
