"""The image entrypoint: weights from S3 (moto), the vllm command, and the drain for engines without
--shutdown-timeout (a fake `vllm` on PATH stands in for the server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from serving.vllm import entrypoint as ep
from tests.kit.net import free_port

ENTRYPOINT = Path(ep.__file__)


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="genai-models")
        for key, body in {"llama-8b/config.json": b"{}", "llama-8b/model-00001.safetensors": b"x" * 1000,
                          "llama-8b/tok/tokenizer.json": b"[]", "other/model.safetensors": b"no"}.items():
            client.put_object(Bucket="genai-models", Key=key, Body=body)
        yield client


def test_fetch_downloads_the_prefix_and_skips_what_is_there(s3, tmp_path):
    logs: list[str] = []
    got = ep.fetch(s3, "s3://genai-models/llama-8b", tmp_path, log=logs.append)
    assert got == 1004
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "config.json", "model-00001.safetensors", "tok/tokenizer.json"]
    assert ep.plan_downloads(s3, "genai-models", "llama-8b/", tmp_path) == []  # a restart downloads nothing
    assert ep.fetch(s3, "s3://genai-models/llama-8b/", tmp_path, log=logs.append) == 0
    assert "fetching 3 object(s)" in logs[0]


def test_fetch_fails_clearly_on_an_empty_prefix(s3, tmp_path):
    with pytest.raises(FileNotFoundError, match="no objects under s3://genai-models/missing/"):
        ep.fetch(s3, "s3://genai-models/missing/", tmp_path, log=lambda _: None)


def test_keys_escaping_the_prefix_are_refused(s3, tmp_path):
    s3.put_object(Bucket="genai-models", Key="evil/../../etc/passwd", Body=b"x")
    with pytest.raises(ValueError, match="outside the prefix"):
        ep.plan_downloads(s3, "genai-models", "evil/", tmp_path)


@pytest.mark.parametrize("uri,expected", [("s3://b/p", ("b", "p/")), ("s3://b", ("b", "")),
                                           ("s3://b/a/b/", ("b", "a/b/"))])
def test_parse_s3_uri(uri, expected):
    assert ep.parse_s3_uri(uri) == expected


def test_parse_s3_uri_rejects_other_schemes():
    with pytest.raises(ValueError, match="MODEL_SOURCE must be s3://bucket/prefix"):
        ep.parse_s3_uri("https://x/y")


def test_dry_run_prints_the_vllm_command(tmp_path):
    env = {**os.environ, "GENAI_SCALE_DRY_RUN": "1"}
    env.pop("MODEL_SOURCE", None)
    out = subprocess.run([sys.executable, str(ENTRYPOINT), "/models/weights", "--shutdown-timeout", "30"],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == {"command": ["vllm", "serve", "/models/weights", "--shutdown-timeout", "30"],
                                      "drain_seconds": None}
    env["GENAI_SCALE_DRAIN_IN_ENTRYPOINT"] = "1"
    out = subprocess.run([sys.executable, str(ENTRYPOINT), "/m", "--shutdown-timeout=45", "--port", "8000"],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == {"command": ["vllm", "serve", "/m", "--port", "8000"], "drain_seconds": 45}


def test_in_flight_reads_vllm_metrics():
    text = ('# HELP vllm:num_requests_running x\nvllm:num_requests_running{engine="0",model_name="m"} 2.0\n'
            'vllm:num_requests_waiting{engine="0",model_name="m"} 1.0\nvllm:num_requests_waiting_by_reason 9\n')
    assert ep.in_flight(text) == 3.0
    assert ep.split_drain(["/m", "--shutdown-timeout", "9", "--x"]) == (["/m", "--x"], 9)
    assert ep.port_of(["--port=9000"]) == 9000 and ep.port_of([]) == 8000


FAKE_VLLM = textwrap.dedent('''\
    #!{python}
    import http.server, os, pathlib, signal, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])
    flag, log = pathlib.Path(os.environ["FAKE_FLAG"]), pathlib.Path(os.environ["FAKE_LOG"])
    log.write_text("args " + " ".join(sys.argv[1:]) + "\\n")
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            running = 0 if flag.exists() else 1
            body = ('vllm:num_requests_running{{engine="0",model_name="m"}} %d.0\\n' % running).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    def term(*_):
        with log.open("a") as f:
            f.write("sigterm with requests done=%s\\n" % flag.exists())
        os._exit(0)
    signal.signal(signal.SIGTERM, term)
    pathlib.Path(os.environ["FAKE_READY"]).write_text("ok")
    srv.serve_forever()
''')


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def test_entrypoint_drains_before_passing_sigterm_on(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vllm"
    fake.write_text(FAKE_VLLM.format(python=sys.executable))
    fake.chmod(0o755)
    flag, log, ready = tmp_path / "done", tmp_path / "log", tmp_path / "ready"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GENAI_SCALE_DRAIN_IN_ENTRYPOINT": "1",
           "FAKE_FLAG": str(flag), "FAKE_LOG": str(log), "FAKE_READY": str(ready)}
    env.pop("MODEL_SOURCE", None)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ENTRYPOINT), "/m", "--port", str(port), "--shutdown-timeout", "30"],
                            env=env)
    try:
        wait_for(ready.exists)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # the entrypoint is draining: one request still running
        assert proc.poll() is None
        flag.write_text("done")  # the last stream finishes
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = log.read_text().splitlines()
    assert lines[0] == f"args serve /m --port {port}"  # --shutdown-timeout taken off for the old engine
    assert lines[1] == "sigterm with requests done=True"
