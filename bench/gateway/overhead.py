"""Added latency and throughput of the gateway vs. calling the same stub upstream directly (2-core machine).

Method (as in the LiteLLM anchor): zero-delay stub, closed-loop keep-alive clients, warm-up before every run,
targets interleaved per repetition, "added" = paired difference of medians. Gateway: one process (uvicorn +
httptools + uvloop, the request guards on), limiter ON (a Redis Lua reservation and settle per request, tenant
budget large enough never to reject), caches off, request logging at its default level (``info``: one JSON line per
request, written to a file as a container runtime would collect stdout); ``gateway-no-log`` is the same at
``warning``. The last lines give the issue's figures from this run: added p50/p99 at concurrency 1 (target p99 <=
2 ms) and throughput at concurrency 8 as a share of direct (target >= 30 %), with the CPU time per request of the
gateway process and of the stub (what bounds throughput: one event loop per process on this 2-core machine). Run: .venv/bin/python bench/gateway/overhead.py [--reps 2] [--seconds 8]
[--cases json:1,json:8,stream:1,stream:8] [--baseline-tree DIR] [--litellm /path/to/venv/bin/litellm]
(LiteLLM in its own venv: `pip install 'litellm[proxy]'`, about 1 minute). ``--baseline-tree`` adds the gateway
run from another source tree (for example `git archive <commit> serving | tar -x -C DIR`), limiter on, interleaved
with the others, to compare two versions on the same noisy machine in the same session.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _harness import Procs, cpu_seconds, load, request_bytes  # noqa: E402

from serving.gateway.auth import hash_key  # noqa: E402


def config(redis_url: str, stub_port: int, limiter: bool) -> dict:
    return {"redis": {"url": redis_url},
            "tenants": {"keys": {"bench": [hash_key("sk-bench")]},
                        "defaultLimits": {"requestsPerMinute": 10**9, "tokensPerMinute": 10**12}},
            "limiter": {"enabled": limiter},
            "upstreams": {"stub": {"kind": "openai", "baseUrl": f"http://127.0.0.1:{stub_port}/v1",
                                   "model": "stub-model"}},
            "routes": {"stub-model": {"targets": [{"upstream": "stub"}], "maxTokens": 64}}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--cases", default="json:1,json:8,stream:1,stream:8",
                    help="comma-separated mode:concurrency pairs (mode json or stream)")
    ap.add_argument("--baseline-tree", type=Path, help="also run the gateway from this source tree (limiter on)")
    ap.add_argument("--litellm", help="path to a `litellm` proxy executable (its own venv) to compare on the same stub")
    a = ap.parse_args()
    procs = Procs()
    try:
        tmp = Path(tempfile.mkdtemp())
        url = procs.redis()
        stub = procs.stub()
        gw = procs.gateway(config(url, stub, True), tmp, log_level="info")
        gw_nolog = procs.gateway(config(url, stub, True), tmp)
        gw_nolim = procs.gateway(config(url, stub, False), tmp, log_level="info")
        targets = {"direct": stub, "gateway": gw, "gateway-no-log": gw_nolog, "gateway-no-limiter": gw_nolim}
        if a.baseline_tree:
            targets["gateway@baseline"] = procs.gateway(config(url, stub, True), tmp, a.baseline_tree.resolve())
        if a.litellm:
            targets["litellm"] = procs.litellm(a.litellm, stub, tmp)
        print(f"{'mode':10s} {'conc':>4s} {'target':20s} {'rps':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
              f"{'added p50':>10s} {'added p99':>10s} {'rps ratio':>9s}")
        cases = [(m == "stream", int(c)) for m, _, c in (x.partition(":") for x in a.cases.split(","))]
        summary: dict[tuple[bool, int, str], dict[str, float]] = {}
        for stream, conc in cases:
            body = {"model": "stub-model", "messages": [{"role": "user", "content": "Hello, how are you?"}],
                    "max_tokens": 16, "stream": stream}
            res: dict[str, list[dict]] = {k: [] for k in targets}
            for _ in range(a.reps):
                for name, port in targets.items():
                    req = request_bytes(port, body)
                    asyncio.run(load(port, req, conc, 300, 3))  # warm-up
                    cpu0 = {p: cpu_seconds(pid) for p, pid in procs.pids.items()}
                    r = asyncio.run(load(port, req, conc, a.n, a.seconds))
                    assert set(r["codes"]) == {200}, r["codes"]
                    r["cpu_us"] = {p: (cpu_seconds(pid) - cpu0[p]) / max(1, r["ok"]) * 1e6
                                   for p, pid in procs.pids.items()}
                    res[name].append(r)
            d = res["direct"]
            for name in targets:
                rs = res[name]
                med = lambda k: statistics.median(x[k] for x in rs)  # noqa: E731
                add50 = statistics.median(x["p50"] - y["p50"] for x, y in zip(rs, d))
                add99 = statistics.median(x["p99"] - y["p99"] for x, y in zip(rs, d))
                ratio = med("rps") / statistics.median(x["rps"] for x in d)
                print(f"{'stream' if stream else 'json':10s} {conc:4d} {name:20s} {med('rps'):8.0f} "
                      f"{med('p50'):8.3f} {med('p99'):8.3f} {add50:+10.3f} {add99:+10.3f} {ratio:9.3f}")
                own = targets[name]
                summary[(stream, conc, name)] = {
                    "add50": add50, "add99": add99, "ratio": ratio, "rps": med("rps"),
                    "cpu_own": statistics.median(x["cpu_us"][own] for x in rs),
                    "cpu_stub": statistics.median(x["cpu_us"][stub] for x in rs)}
        for stream in (False, True):
            one, eight = summary.get((stream, 1, "gateway")), summary.get((stream, 8, "gateway"))
            mode = "streamed" if stream else "non-streamed"
            if one:
                print(f"{mode}, logging at info, limiter on: added p50 {one['add50']:+.3f} ms, p99 {one['add99']:+.3f} "
                      f"ms at concurrency 1 (target p99 <= 2 ms)")
            if eight:
                print(f"{mode}: throughput at concurrency 8 {eight['ratio']:.0%} of direct (target >= 30 %); CPU per "
                      f"request: gateway process {eight['cpu_own']:.0f} us, stub {eight['cpu_stub']:.0f} us "
                      f"(one event loop each: the gateway's ceiling is about {1e6 / eight['cpu_own']:.0f} rps)")
    finally:
        procs.stop()


if __name__ == "__main__":
    main()
