"""The load test: workload model and statistics, then Locust itself against a stub OpenAI server on loopback."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving.loadtest.workload import LengthDistribution, Report, Workload, parse_sse, percentile
from tests.kit import ROOT

LOCUSTFILE = ROOT / "serving" / "loadtest" / "locustfile.py"


def test_length_distribution_is_long_tailed_and_bounded():
    d = LengthDistribution(median=400, sigma=1.0, minimum=8, maximum=3000)
    rng = random.Random(7)
    xs = [d.sample(rng) for _ in range(5000)]
    assert min(xs) >= 8 and max(xs) <= 3000
    assert 340 <= percentile([float(x) for x in xs], 50) <= 460   # median near 400
    assert percentile([float(x) for x in xs], 95) > 3 * 400       # long tail
    assert max(xs) == 3000                                         # clipped, not dropped


def test_request_shape_is_a_streaming_chat_completion():
    w = Workload.from_env({"LOADTEST_MODEL": "m", "LOADTEST_PROMPT_MEDIAN": "50", "LOADTEST_OUTPUT_MEDIAN": "20"})
    body, words, wanted = w.request(random.Random(1))
    assert body["model"] == "m" and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == wanted
    assert len(body["messages"][0]["content"].split()) == words


def test_parse_sse_measures_first_token_and_usage():
    ticks = iter([0.25, 1.25])
    lines = [b'data: {"choices":[{"delta":{"role":"assistant"}}]}', b"",
             b'data: {"choices":[{"delta":{"content":"a"}}]}', b'data: {"choices":[{"delta":{"content":"b"}}]}',
             b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5}}', b"data: [DONE]"]
    r = parse_sse(lines, lambda: next(ticks))
    assert (r.first_token_at, r.done_at, r.chunks, r.output_tokens, r.prompt_tokens) == (0.25, 1.25, 2, 5, 7)
    assert r.tokens_per_second == 4.0
    err = parse_sse([b'data: {"error":{"message":"overloaded"}}'], lambda: 0.0)
    assert err.error and "overloaded" in err.error


def test_report_percentiles():
    rep = Report(started=0.0, ended=10.0)
    for i in range(1, 101):
        from serving.loadtest.workload import StreamResult
        rep.add(StreamResult(chunks=10, completion_tokens=10, first_token_at=i / 100, done_at=i / 100 + 0.9), 50, 10)
    rep.add(StreamResult(error="HTTP 500"), 50, 10)
    s = rep.summary()
    assert s["requests"] == 100 and s["failures"] == 1
    assert s["ttft_ms"] == {"p50": 500.0, "p90": 900.0, "p95": 950.0, "p99": 990.0}
    assert s["stream_tokens_per_second"]["p50"] == 10.0
    assert s["output_tokens_per_second_total"] == 100.0


class StubOpenAI(BaseHTTPRequestHandler):
    """Streams max_tokens one-word chunks, then usage and [DONE]; checks the bearer token."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.headers.get("authorization") != "Bearer test-key":
            self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        StubOpenAI.seen.append(body)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(payload: str) -> None:
            data = f"data: {payload}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        time.sleep(0.005)
        for _ in range(body["max_tokens"]):
            send(json.dumps({"choices": [{"index": 0, "delta": {"content": "tok "}}]}))
        prompt = len(body["messages"][0]["content"].split())
        send(json.dumps({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": body["max_tokens"]}}))
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    StubOpenAI.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_locust_drives_streams_and_reports_percentiles(stub_server, tmp_path):
    report = tmp_path / "report.json"
    env = {**os.environ, "LOADTEST_REPORT": str(report), "LOADTEST_API_KEY": "test-key", "LOADTEST_MODEL": "llama-8b",
           "LOADTEST_PROMPT_MEDIAN": "60", "LOADTEST_PROMPT_MAX": "400", "LOADTEST_OUTPUT_MEDIAN": "20",
           "LOADTEST_OUTPUT_MAX": "80", "LOADTEST_WAIT_MIN": "0.05", "LOADTEST_WAIT_MAX": "0.1"}
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", stub_server, "-u", "4",
         "-r", "4", "--run-time", "3s", "--stop-timeout", "5", "--only-summary", "--csv", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads(report.read_text())
    assert summary["requests"] > 0 and summary["failures"] == 0
    assert summary["requests"] == len(StubOpenAI.seen)
    ttft = summary["ttft_ms"]
    assert ttft["p50"] <= ttft["p95"] <= ttft["p99"]
    tps = summary["stream_tokens_per_second"]
    assert tps["p50"] is not None and tps["p50"] > 0
    assert summary["output_tokens_sum"] == summary["requested_output_sum"]  # usage from the stream was read
    assert all(b["stream"] and b["model"] == "llama-8b" and 16 <= b["max_tokens"] <= 80 for b in StubOpenAI.seen)
    stats = (tmp_path / "run_stats.csv").read_text()
    assert "time to first token" in stats and "chat (stream)" in stats  # TTFT percentiles in Locust's own CSV


@pytest.mark.slow
def test_documented_load_test_passes_against_the_example_config(tmp_path):
    """The README's run (`-u 50 -r 5`, the workload's default lengths, the example's load-test key and the
    `assistant` route) against `examples/local.yaml` with the stub upstream: no request fails (no 429 from the
    example's budget, no prompt over a route's limit), here for 12 s instead of a minute."""
    import shutil
    import socket

    import yaml

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def wait_port(port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing listening on {port}")

    example = yaml.safe_load((ROOT / "serving" / "gateway" / "examples" / "local.yaml").read_text())
    header = (ROOT / "serving" / "gateway" / "examples" / "local.yaml").read_text()
    assert "LOADTEST_API_KEY=sk-local-load-test-key LOADTEST_MODEL=assistant" in header
    assert "-u 50 -r 5" in header
    redis_port, stub_port, gw_port = free_port(), free_port(), free_port()
    example["redis"]["url"] = f"redis://127.0.0.1:{redis_port}/0"
    for up in example["upstreams"].values():
        up["baseUrl"] = up["baseUrl"].replace(":9001", f":{stub_port}")
    example["server"]["port"] = gw_port
    example["server"]["logLevel"] = "warning"
    cfg = tmp_path / "local.yaml"
    cfg.write_text(yaml.safe_dump(example))
    procs = []
    try:
        procs.append(subprocess.Popen([shutil.which("redis-server"), "--port", str(redis_port), "--bind",
                                       "127.0.0.1", "--save", "", "--appendonly", "no"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([sys.executable, "-m", "serving.gateway.cli", "stub", "--port",
                                       str(stub_port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        for p in (redis_port, stub_port):
            wait_port(p)
        procs.append(subprocess.Popen([sys.executable, "-m", "serving.gateway.cli", "serve", "--config", str(cfg)],
                                      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(gw_port)
        report = tmp_path / "report.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOADTEST_")}
        env.update(LOADTEST_REPORT=str(report), LOADTEST_API_KEY="sk-local-load-test-key",
                   LOADTEST_MODEL="assistant")
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host",
             f"http://127.0.0.1:{gw_port}", "-u", "50", "-r", "5", "--run-time", "12s", "--stop-timeout", "5",
             "--only-summary"], env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        summary = json.loads(report.read_text())
        assert summary["failures"] == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert summary["requests"] >= 50
        assert summary["prompt_words"]["p95"] > 1000  # the documented long-tailed prompts, not a shrunk workload
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
