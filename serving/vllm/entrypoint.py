#!/usr/bin/env python3
"""Container entrypoint: fetch the model weights, then exec vLLM's OpenAI-compatible server.

Arguments are the `vllm serve` arguments rendered by genai-scale (model path first). Environment:

- ``MODEL_SOURCE``: ``s3://bucket/prefix`` of the weights; every object under the prefix is downloaded into
  ``MODEL_DIR`` (default ``/models/weights``) with parallel multipart transfers. Objects already there with the same
  size are skipped, so a restarted container (same pod, same emptyDir) does not download again. Credentials come from
  the pod's IRSA role. Without ``MODEL_SOURCE`` nothing is fetched (vLLM may download from the hub, if allowed).
- ``VLLM_API_KEY``: read by vLLM itself (from a Kubernetes Secret); never passed as an argument.
- ``GENAI_SCALE_DRAIN_IN_ENTRYPOINT=1``: the engine predates ``--shutdown-timeout`` (vLLM < 0.18, as in the Neuron
  DLC). The entrypoint then takes ``--shutdown-timeout N`` off the command line, runs vLLM as a child, and on SIGTERM
  waits (up to N s) until vLLM reports no running or waiting requests on ``/metrics`` before passing SIGTERM on, so
  in-flight streams finish (the pod's preStop delay has already taken it out of the Service).
- ``GENAI_SCALE_DRY_RUN=1``: print the command as JSON instead of running it (tests).

Only the standard library and boto3 are used; weights are never part of the image.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DEFAULT_MODEL_DIR = "/models/weights"


@dataclass(frozen=True)
class Download:
    key: str
    path: Path
    size: int


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (``bucket``, ``some/prefix/``)."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ValueError(f"MODEL_SOURCE must be s3://bucket/prefix, got {uri!r}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"MODEL_SOURCE has no bucket: {uri!r}")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def plan_downloads(client, bucket: str, prefix: str, dest: Path) -> list[Download]:
    """Objects under the prefix that are not already in ``dest`` with the same size."""
    todo: list[Download] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            rel = PurePosixPath(key[len(prefix):])
            if not rel.parts or key.endswith("/"):
                continue
            if rel.is_absolute() or ".." in rel.parts:
                raise ValueError(f"refusing object key outside the prefix: {key!r}")
            path = dest.joinpath(*rel.parts)
            if path.is_file() and path.stat().st_size == obj["Size"]:
                continue
            todo.append(Download(key, path, int(obj["Size"])))
    return todo


def fetch(client, uri: str, dest: Path, *, workers: int = 8, log=print) -> int:
    """Download the weights; returns the bytes transferred. Fails if the prefix holds no objects at all."""
    bucket, prefix = parse_s3_uri(uri)
    dest.mkdir(parents=True, exist_ok=True)
    todo = plan_downloads(client, bucket, prefix, dest)
    if not todo and not any(dest.iterdir()):
        raise FileNotFoundError(f"no objects under {uri}")
    total = sum(d.size for d in todo)
    log(f"genai-scale: fetching {len(todo)} object(s), {total / 2**30:.2f} GiB, from {uri} into {dest}")
    start = time.monotonic()

    def one(d: Download) -> None:
        d.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = d.path.with_name(d.path.name + ".part")
        client.download_file(bucket, d.key, str(tmp), Config=_transfer_config())
        os.replace(tmp, d.path)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, todo))
    elapsed = max(time.monotonic() - start, 1e-6)
    log(f"genai-scale: fetched {total / 2**30:.2f} GiB in {elapsed:.1f} s")
    return total


def _transfer_config():
    from boto3.s3.transfer import TransferConfig
    return TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20, max_concurrency=8)


def command(argv: list[str]) -> list[str]:
    return ["vllm", "serve", *argv]


def split_drain(argv: list[str]) -> tuple[list[str], int]:
    """Remove ``--shutdown-timeout N`` (or ``=N``) from the arguments; return them and N (0 when absent)."""
    out, seconds, i = [], 0, 0
    while i < len(argv):
        a = argv[i]
        if a == "--shutdown-timeout" and i + 1 < len(argv):
            seconds, i = int(argv[i + 1]), i + 2
            continue
        if a.startswith("--shutdown-timeout="):
            seconds = int(a.split("=", 1)[1])
        else:
            out.append(a)
        i += 1
    return out, seconds


_QUEUE_METRIC = re.compile(r"^vllm:num_requests_(running|waiting)(\{[^}]*\})?\s+([0-9.eE+-]+)", re.M)


def in_flight(metrics_text: str) -> float:
    """Running plus waiting requests reported on vLLM's /metrics."""
    return sum(float(m.group(3)) for m in _QUEUE_METRIC.finditer(metrics_text))


def port_of(argv: list[str], default: int = 8000) -> int:
    for i, a in enumerate(argv):
        if a == "--port" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--port="):
            return int(a.split("=", 1)[1])
    return default


def drain(port: int, seconds: int, *, poll: float = 1.0, log=print) -> bool:
    """Wait until no request is in flight (True) or ``seconds`` have passed (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                if in_flight(resp.read().decode()) == 0:
                    return True
        except OSError:
            return True  # the server is gone: nothing left to drain
        time.sleep(poll)
    log(f"genai-scale: drain timed out after {seconds} s; stopping vLLM with requests in flight")
    return False


def supervise(cmd: list[str], *, drain_seconds: int, port: int, poll: float = 1.0) -> int:
    """Run ``cmd`` as a child; on SIGTERM/SIGINT drain first, then forward the signal; return its exit code."""
    child = subprocess.Popen(cmd)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while child.poll() is None and not stop.wait(0.2):
        pass
    if child.poll() is None:
        drain(port, drain_seconds, poll=poll)
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    source = os.environ.get("MODEL_SOURCE")
    if source:
        import boto3
        fetch(boto3.client("s3"), source, Path(os.environ.get("MODEL_DIR", DEFAULT_MODEL_DIR)),
              workers=int(os.environ.get("MODEL_FETCH_WORKERS", "8")))
    drain_here = os.environ.get("GENAI_SCALE_DRAIN_IN_ENTRYPOINT") == "1"
    drain_seconds = 0
    if drain_here:
        args, drain_seconds = split_drain(args)
    cmd = command(args)
    if os.environ.get("GENAI_SCALE_DRY_RUN") == "1":
        print(json.dumps({"command": cmd, "drain_seconds": drain_seconds if drain_here else None}))
        return 0
    sys.stdout.flush()
    if drain_here:
        return supervise(cmd, drain_seconds=drain_seconds, port=port_of(args))
    os.execvp(cmd[0], cmd)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
