"""The dynamic pool's start gate (serving/vllm/pool_gate.py) against fake engines: one starts at a time, each sleeps
before the next starts, a dying engine frees the gate, and the gate passes SIGTERM on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from serving.vllm import pool_gate
from tests.kit.net import free_port

GATE = Path(pool_gate.__file__)

FAKE_ENGINE = textwrap.dedent('''
    import json, os, sys, time, signal
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port, log, name = int(os.environ["POOL_ENGINE_PORT"]), os.environ["FAKE_LOG"], os.environ["FAKE_NAME"]
    def note(event):
        with open(log, "a") as f:
            f.write(json.dumps({"name": name, "event": event, "t": time.monotonic()}) + "\\n")
    if os.environ.get("FAKE_DIE"):
        note("died"); sys.exit(3)
    note("start")
    time.sleep(float(os.environ.get("FAKE_LOAD_SECONDS", "0.3")))
    state = {"sleeping": False}
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data)
        def do_GET(self):
            self.reply({"is_sleeping": state["sleeping"]} if self.path == "/is_sleeping" else {})
        def do_POST(self):
            state["sleeping"] = True; note("sleep " + self.path + " " + self.headers.get("Authorization", ""))
            self.reply({})
    signal.signal(signal.SIGTERM, lambda *_: (note("sigterm"), os._exit(0)))
    HTTPServer(("127.0.0.1", port), H).serve_forever()
''')


def start_gate(tmp: Path, name: str, **env) -> subprocess.Popen:
    engine = tmp / "engine.py"
    engine.write_text(FAKE_ENGINE)
    full = {**os.environ, "POOL_GATE_LOCK": str(tmp / "start.lock"), "POOL_ENGINE_PORT": str(free_port()),
            "POOL_SLEEP_LEVEL": "2", "POOL_GATE_TIMEOUT_SECONDS": "20", "POOL_GATE_POLL_SECONDS": "0.05", "FAKE_LOG": str(tmp / "log"),
            "FAKE_NAME": name, "VLLM_API_KEY": "k", **env}
    return subprocess.Popen([sys.executable, str(GATE), sys.executable, str(engine)], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def events(tmp: Path) -> list[dict]:
    path = tmp / "log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(tmp: Path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = events(tmp)
        if len(got) >= count:
            return got
        time.sleep(0.05)
    raise AssertionError(f"only {events(tmp)}")


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=10)


def test_engines_start_one_at_a_time_and_sleep_before_the_next(tmp_path):
    a = start_gate(tmp_path, "a")
    b = start_gate(tmp_path, "b")
    try:
        got = wait_for(tmp_path, 4)
        kinds = [(e["name"], e["event"].split(" ")[0]) for e in got[:4]]
        first = kinds[0][0]
        second = "b" if first == "a" else "a"
        assert kinds == [(first, "start"), (first, "sleep"), (second, "start"), (second, "sleep")]
        assert got[0]["event"] == "start" and got[1]["event"] == "sleep /sleep?level=2 Bearer k"
    finally:
        stop(a, b)
    assert {e["name"] for e in events(tmp_path) if e["event"] == "sigterm"} == {"a", "b"}
    assert (a.returncode, b.returncode) == (0, 0)


def test_an_engine_that_dies_frees_the_gate_and_reports_its_code(tmp_path):
    dead = start_gate(tmp_path, "dead", FAKE_DIE="1")
    assert dead.wait(timeout=20) == 3
    ok = start_gate(tmp_path, "ok")
    try:
        got = wait_for(tmp_path, 3)
        assert [(e["name"], e["event"].split(" ")[0]) for e in got] == [("dead", "died"), ("ok", "start"),
                                                                        ("ok", "sleep")]
    finally:
        stop(ok)


def test_is_sleeping_parses_the_engines_answer():
    assert pool_gate.is_sleeping(b'{"is_sleeping": true}') is True
    assert pool_gate.is_sleeping(b'{"is_sleeping": false}') is False
    assert pool_gate.is_sleeping(b"not json") is False


def test_usage_without_a_command():
    assert pool_gate.main([]) == 2


def test_sigterm_while_waiting_for_the_turn_exits_without_starting(tmp_path):
    first = start_gate(tmp_path, "first", FAKE_LOAD_SECONDS="30")  # holds the lock while it "loads"
    try:
        wait_for(tmp_path, 1)
        waiting = start_gate(tmp_path, "waiting")
        time.sleep(0.5)
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=10) == 0
        assert [e["name"] for e in events(tmp_path)] == ["first"]
    finally:
        stop(first)
