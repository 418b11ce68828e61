"""Shard size vs lost work: one batch run by real worker processes under the same interruptions, per shard size.

For each shard size the same batch (default 10,000 chat records) is submitted (``shards.submit``: S3 input, shards,
manifest, one SQS message per shard) to a moto server (S3 and SQS over HTTP, a separate process) and run by
``--workers`` real worker processes (``python -m serving.batch worker``) against the stub engine (the gateway's
stub on a loopback port, in this process) that answers each request after ``--latency-ms``; a worker keeps
``--concurrency`` records in flight, so one worker runs ``concurrency / latency`` records/s and a shard of S
records takes ``S x latency / concurrency`` seconds (1,000 records: 5 s with the defaults).

Interruptions: a list of ``--interruptions`` events drawn once from ``--seed`` (gaps exponential with mean
``--mean-gap-seconds``, so a longer run meets more of them, as a spot pool does; half SIGTERM, half SIGKILL, each on
a random worker slot) is applied to every shard size at the same times after the engine's first request. SIGTERM is a spot notice or a
node drain (the worker releases its shard at once); SIGKILL is a lost node (the shard waits for
``--visibility-seconds``). The interrupted slot gets a new worker process at once (its start-up, about 1-2 s of
imports here, stands in for a new pod).

Measured per size: records the engine ran more than once and the rerun requests (lost work; a request dropped by
SIGTERM counts, it used the engine), the most runs of one record, wall time until every shard has its ``.done``
marker (the controller polls the queue's depth every 0.2 s and then confirms the markers), S3 objects under the
batch prefix, SQS messages sent, and the output check after the finaliser: every
custom_id exactly once in output + errors. The table is followed by ratios against the smallest size, measured in
the same run.

Run: .venv/bin/python bench/batch/shards.py [--records 10000] [--sizes 50,200,1000,5000] [--latency-ms 40]
[--concurrency 8] [--workers 2] [--interruptions 10] [--mean-gap-seconds 5] [--visibility-seconds 6] [--seed 15]
(about 4 minutes on 2 cores with the defaults). Not part of the test run; tests/bench/batch/test_shards_bench.py tests
its pure pieces.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from problems import Problem, ProblemsError

ROOT = Path(__file__).resolve().parents[2]
MODEL = "bench-model"
REGION = "us-east-1"
BUCKET = "batch-bench"
FAKE_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
"""moto's documented dummy credentials (never real ones)."""


# -- arguments --------------------------------------------------------------------------------------------------------
def _sizes(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated record counts, e.g. 50,200,1000") from None


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/batch/shards.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=10_000, help="records in the batch (default 10,000)")
    p.add_argument("--sizes", type=_sizes, default=[50, 200, 1000, 5000],
                   help="shard sizes in records, comma-separated; the smallest is the baseline (default 50,200,1000,5000)")
    p.add_argument("--latency-ms", type=float, default=40.0, help="the stub engine's latency per request (default 40)")
    p.add_argument("--concurrency", type=int, default=8, help="BATCH_CONCURRENCY of each worker (default 8)")
    p.add_argument("--workers", type=int, default=2, help="worker processes at a time (default 2)")
    p.add_argument("--interruptions", type=int, default=10, help="most interruptions per size (default 10)")
    p.add_argument("--mean-gap-seconds", type=float, default=5.0,
                   help="mean time between interruptions across the pool (default 5)")
    p.add_argument("--visibility-seconds", type=int, default=6,
                   help="BATCH_VISIBILITY_SECONDS: how long a SIGKILLed worker's shard stays invisible (default 6)")
    p.add_argument("--seed", type=int, default=15, help="seed of the interruption schedule (default 15)")
    p.add_argument("--timeout-seconds", type=float, default=240.0, help="give up on one size after this (default 240)")
    return p.parse_args(argv)


def validate(args: argparse.Namespace) -> list[Problem]:
    """Every bad argument, as problems."""
    out: list[Problem] = []
    for name in ("records", "concurrency", "workers", "visibility_seconds"):
        v = getattr(args, name)
        if v < 1:
            out.append(Problem(f"--{name.replace('_', '-')}", v, "must be >= 1"))
    for name in ("latency_ms", "mean_gap_seconds", "timeout_seconds"):
        v = getattr(args, name)
        if v <= 0:
            out.append(Problem(f"--{name.replace('_', '-')}", v, "must be > 0"))
    if args.interruptions < 0:
        out.append(Problem("--interruptions", args.interruptions, "must be >= 0"))
    sizes = args.sizes
    if not sizes:
        out.append(Problem("--sizes", sizes, "at least one shard size"))
    elif any(s < 1 for s in sizes) or len(set(sizes)) != len(sizes):
        out.append(Problem("--sizes", ",".join(map(str, sizes)), "distinct record counts >= 1"))
    elif args.records >= 1 and max(sizes) > args.records:
        out.append(Problem("--sizes", ",".join(map(str, sizes)),
                           f"each size <= --records ({args.records})", ("--records",)))
    return out


def shard_seconds(size: int, latency_ms: float, concurrency: int) -> float:
    """How long one worker takes to run a shard of ``size`` records on the stub engine (no overhead)."""
    return size * latency_ms / 1000 / concurrency


# -- the interruption schedule ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interruption:
    at: float
    """Seconds after the engine's first request of the size's run."""
    sig: str
    """``SIGTERM`` or ``SIGKILL``."""
    slot: int
    """The worker slot whose current process gets the signal."""


def schedule(seed: int, count: int, mean_gap: float, workers: int) -> list[Interruption]:
    """``count`` interruptions in time order: exponential gaps (mean ``mean_gap``), half SIGTERM and half SIGKILL
    (SIGTERM first when odd) in a seeded order, each on a seeded random slot. The same for every shard size."""
    rng = random.Random(seed)
    kinds = ["SIGTERM"] * ((count + 1) // 2) + ["SIGKILL"] * (count // 2)
    rng.shuffle(kinds)
    t, out = 0.0, []
    for kind in kinds:
        t += rng.expovariate(1 / mean_gap)
        out.append(Interruption(round(t, 3), kind, rng.randrange(workers)))
    return out


# -- the checks -------------------------------------------------------------------------------------------------------
def custom_ids(n: int) -> list[str]:
    return [f"req-{i:05d}" for i in range(n)]


def exactly_once(expected: Iterable[str], output: Iterable[dict], errors: Iterable[dict]) -> list[str]:
    """What is wrong with an assembled batch: ids missing, repeated or unknown across output + errors (empty: each
    expected custom_id is there exactly once, as a result or an error line)."""
    want = set(expected)
    seen = Counter(line.get("custom_id") for line in [*output, *errors])
    problems = []
    missing = sorted(want - set(seen))
    repeated = sorted(str(k) for k, v in seen.items() if v > 1)
    unknown = sorted(str(k) for k in set(seen) - want)
    for what, ids in (("missing", missing), ("repeated", repeated), ("unknown", unknown)):
        if ids:
            problems.append(f"{len(ids)} custom_id {what}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
    return problems


@dataclass(frozen=True)
class Reruns:
    requests: int
    """Engine requests in all (a request dropped by SIGTERM or SIGKILL counts: it used the engine)."""
    records_rerun: int
    """Records the engine got more than once."""
    extra_requests: int
    """Requests beyond one per record: the lost work."""
    most_runs: int
    """The most requests one record got (each is a receive of its shard's message)."""


def reruns(counts: Counter, records: int) -> Reruns:
    """Lost work from the engine's requests per custom_id."""
    total = sum(counts.values())
    return Reruns(total, sum(1 for v in counts.values() if v > 1), total - min(records, len(counts)),
                  max(counts.values(), default=0))


# -- the table --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    size: int
    shards: int
    shard_seconds: float
    sigterm: int
    sigkill: int
    reruns: Reruns
    records: int
    wall_seconds: float
    s3_objects: int
    sqs_messages: int
    check: str
    """``ok`` or what :func:`exactly_once` found."""


COLUMNS = ("shard", "shards", "shard s", "TERM", "KILL", "records rerun", "rerun requests", "lost %", "most runs",
           "wall s", "S3 objects", "SQS msgs", "exactly once")


def cells(r: Row) -> list[str]:
    return [f"{r.size:,}", f"{r.shards:,}", f"{r.shard_seconds:.2f}", str(r.sigterm), str(r.sigkill),
            f"{r.reruns.records_rerun:,}", f"{r.reruns.extra_requests:,}",
            f"{100 * r.reruns.extra_requests / r.records:.1f}", str(r.reruns.most_runs), f"{r.wall_seconds:.1f}",
            f"{r.s3_objects:,}", f"{r.sqs_messages:,}", r.check]


def table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table (right-aligned numbers, the check left-aligned)."""
    body = [cells(r) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(COLUMNS)]
    def fmt(cs: list[str]) -> str:
        return "  ".join(c.rjust(w) if i < len(cs) - 1 else c for i, (c, w) in enumerate(zip(cs, widths)))

    return "\n".join([fmt(list(COLUMNS)), fmt(["-" * w for w in widths]), *(fmt(b) for b in body)])


def ratio(value: float, base: float) -> str:
    """``value / base`` as ``2.50x``; ``-`` when the baseline is 0 (``0x`` too when both are)."""
    if base == 0:
        return "0x" if value == 0 else "- (baseline 0)"
    return f"{value / base:.2f}x"


def ratios(rows: Sequence[Row]) -> str:
    """Each size against the smallest (the baseline, measured in the same run)."""
    base = min(rows, key=lambda r: r.size)
    out = [f"ratios against the smallest size ({base.size:,} records per shard, same run):",
           f"{'shard':>7}  {'rerun requests':>14}  {'wall':>6}  {'S3 objects':>10}  {'SQS msgs':>8}"]
    for r in sorted(rows, key=lambda r: r.size):
        out.append(f"{r.size:>7,}  {ratio(r.reruns.extra_requests, base.reruns.extra_requests):>14}  "
                   f"{ratio(r.wall_seconds, base.wall_seconds):>6}  {ratio(r.s3_objects, base.s3_objects):>10}  "
                   f"{ratio(r.sqs_messages, base.sqs_messages):>8}")
    return "\n".join(out)


def batch_input(n: int) -> bytes:
    lines = ({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": MODEL, "messages": [{"role": "user", "content": f"question {cid}"}], "max_tokens": 8}}
             for cid in custom_ids(n))
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


# -- the harness: engine, moto server, workers ------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


class Engine:
    """The gateway's stub on a loopback port, counting requests per ``x-request-id`` (the worker sends the
    custom_id there)."""

    def __init__(self, latency_ms: float) -> None:
        import uvicorn

        from serving.gateway.stub import StubState, make_stub

        self.state = StubState(MODEL)
        self.state.chunks, self.state.delay_ms = 4, latency_ms
        self.counts: Counter = Counter()
        stub = make_stub(self.state)

        async def app(scope, receive, send):
            if scope["type"] == "http" and scope["method"] == "POST":
                rid = dict(scope["headers"]).get(b"x-request-id", b"").decode()
                self.counts[rid] += 1
            return await stub(scope, receive, send)

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error",
                                                    access_log=False, lifespan="on", loop="asyncio",
                                                    timeout_graceful_shutdown=1, backlog=1024))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


class Harness:
    """The moto server and the worker processes (all kept by PID and stopped by PID)."""

    def __init__(self, args: argparse.Namespace, logs: Path) -> None:
        import boto3

        self.args, self.logs = args, logs
        self.port = free_port()
        self.moto = subprocess.Popen([sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1",
                                      "-p", str(self.port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=self.env())
        wait_port(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        kw = {"endpoint_url": self.endpoint, "region_name": REGION,
              "aws_access_key_id": FAKE_CREDS["AWS_ACCESS_KEY_ID"],
              "aws_secret_access_key": FAKE_CREDS["AWS_SECRET_ACCESS_KEY"]}
        self.s3, self.sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
        self.s3.create_bucket(Bucket=BUCKET)
        self.engine = Engine(args.latency_ms)
        self.workers: list[subprocess.Popen | None] = []

    def env(self) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATCH_"))}
        e.update(FAKE_CREDS, AWS_REGION=REGION, OPENBLAS_NUM_THREADS="1")
        return e

    def spawn(self, queue_url: str, name: str) -> subprocess.Popen:
        e = self.env()
        e.update(AWS_ENDPOINT_URL=self.endpoint, BATCH_QUEUE_URL=queue_url, BATCH_BUCKET=BUCKET,
                 BATCH_ENGINE_URL=self.engine.url, BATCH_CONCURRENCY=str(self.args.concurrency),
                 BATCH_VISIBILITY_SECONDS=str(self.args.visibility_seconds), BATCH_MAX_RECEIVES="1000",
                 BATCH_IDLE_EXIT_SECONDS="3600", BATCH_ENGINE_START_SECONDS="30", BATCH_RETRIES="2")
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen([sys.executable, "-m", "serving.batch", "worker"], cwd=ROOT, env=e, stdout=log,
                                    stderr=subprocess.STDOUT)

    def stop_workers(self) -> None:
        for p in self.workers:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            if p is not None:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        self.engine.stop()
        self.moto.terminate()
        try:
            self.moto.wait(10)
        except subprocess.TimeoutExpired:
            self.moto.kill()

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def drained(self, queue_url: str) -> bool:
        """No message visible or in flight (one cheap call, so the polling barely loads the moto server)."""
        a = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0

    def done(self, prefix: str) -> int:
        """Shards with their ``.done`` marker."""
        return sum(k.endswith(".done") for k in self.keys(f"{prefix}/out/"))

    def run_size(self, size: int, plan: Sequence[Interruption], data: bytes, records: list) -> Row:
        from serving.batch.finalize import finalize
        from serving.batch.shards import Layout, read_jsonl, submit

        a = self.args
        batch_id = f"batch_shards_{size:05d}"
        q = self.sqs.create_queue(QueueName=f"bench-{size}")["QueueUrl"]  # no redrive: interruptions never dead-letter
        manifest = submit(self.s3, self.sqs, bucket=BUCKET, queue_url=q, batch_id=batch_id, records=records,
                          input_bytes=data, max_records=size)
        lay = Layout.of(BUCKET, batch_id)
        self.engine.counts.clear()
        sent = {"SIGTERM": 0, "SIGKILL": 0}
        start = time.monotonic()
        self.workers = [self.spawn(q, f"{size}-w{i}-0") for i in range(a.workers)]
        restarts = [0] * a.workers
        pending = list(plan)
        t0: float | None = None  # interruption times count from the engine's first request (workers are up)
        while True:
            now = time.monotonic() - start
            if t0 is None and self.engine.counts:
                t0 = now
            if self.drained(q) and self.done(lay.prefix) == manifest["shard_count"]:
                wall = now
                break
            if now > a.timeout_seconds:
                self.stop_workers()
                raise RuntimeError(f"shard size {size}: not done after {a.timeout_seconds:g} s (logs: {self.logs})")
            while t0 is not None and pending and pending[0].at <= now - t0:
                ev = pending.pop(0)
                p = self.workers[ev.slot]
                if p is not None and p.poll() is None:
                    p.send_signal(getattr(signal, ev.sig))
                    sent[ev.sig] += 1
                    p.wait(15)
                restarts[ev.slot] += 1
                self.workers[ev.slot] = self.spawn(q, f"{size}-w{ev.slot}-{restarts[ev.slot]}")
            for i, p in enumerate(self.workers):  # a worker that exited by itself (it should not) is replaced
                if p is not None and p.poll() is not None:
                    restarts[i] += 1
                    self.workers[i] = self.spawn(q, f"{size}-w{i}-{restarts[i]}")
            time.sleep(0.2)
        self.stop_workers()
        counts = Counter(self.engine.counts)
        m = finalize(self.s3, BUCKET, batch_id)
        lines = [read_jsonl(self.s3.get_object(Bucket=BUCKET, Key=m[k])["Body"].read())
                 for k in ("output_key", "error_key")]
        problems = exactly_once(custom_ids(a.records), *lines)
        if m["status"] != "completed":
            problems.insert(0, f"batch {m['status']}")
        return Row(size=size, shards=manifest["shard_count"],
                   shard_seconds=shard_seconds(size, a.latency_ms, a.concurrency), sigterm=sent["SIGTERM"],
                   sigkill=sent["SIGKILL"], reruns=reruns(counts, a.records), records=a.records, wall_seconds=wall,
                   s3_objects=len(self.keys(lay.prefix + "/")), sqs_messages=manifest["shard_count"],
                   check="; ".join(problems) or "ok")


def header(args: argparse.Namespace, plan: Sequence[Interruption]) -> str:
    rate = args.concurrency / (args.latency_ms / 1000)
    kinds = Counter(i.sig for i in plan)
    return "\n".join([
        (f"{args.records:,} chat records; {args.workers} worker processes x {args.concurrency} in flight on a stub "
         f"engine at {args.latency_ms:g} ms per request ({rate:,.0f} records/s per worker, "
         f"{rate * args.workers:,.0f} for the pool); moto server S3 + SQS"),
        (f"interruptions (seed {args.seed}): up to {len(plan)} ({kinds['SIGTERM']} SIGTERM, {kinds['SIGKILL']} "
         f"SIGKILL), mean gap {args.mean_gap_seconds:g} s across the pool, the same times for every size: "
         + ", ".join(f"{i.at:.1f}s {i.sig[3:]}@w{i.slot}" for i in plan)),
        f"SIGKILL: the shard reappears after the visibility timeout ({args.visibility_seconds} s)",
        ("shard s: one shard's run time on one worker; lost %: rerun requests / records; most runs: the most "
         "requests one record got; TERM/KILL: interruptions that happened before the batch was done"),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    problems = validate(args)
    if problems:
        print(f"error: {ProblemsError(problems, title='invalid arguments')}", file=sys.stderr)
        return 2
    from serving.batch.validate import Limits, validate_batch

    plan = schedule(args.seed, args.interruptions, args.mean_gap_seconds, args.workers)
    data = batch_input(args.records)
    records = validate_batch(data, Limits(allowed_models=(MODEL,)))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="shards-bench-") as tmp:
        h = Harness(args, Path(tmp))
        try:
            print(header(args, plan), flush=True)
            for size in sorted(args.sizes):
                rows.append(h.run_size(size, plan, data, records))
                print(f"  shard size {size:,}: {rows[-1].wall_seconds:.1f} s", file=sys.stderr, flush=True)
        finally:
            h.stop()
    print()
    print(table(rows))
    print()
    print(ratios(rows))
    return 0 if all(r.check == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
