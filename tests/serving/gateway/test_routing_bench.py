"""bench/routing/affinity.py runs on a tiny trace through the gateway's strategy objects (the benchmark itself is not
part of the test run)."""

from __future__ import annotations

from bench.routing import affinity as bench


def test_bench_runs_on_a_tiny_trace_and_affinity_caches_more():
    args = bench.parse_args(["--replicas", "4", "--sessions", "12", "--turns", "3", "--shared", "20", "--minutes",
                             "1", "--kv-blocks", "4000"])
    lor, aff, setup = bench.compare(args)
    assert lor.prompt_tokens == aff.prompt_tokens > 0
    assert sum(r.requests for r in aff.replicas) == 12 * 3 + 20
    assert aff.cached_share > lor.cached_share and aff.cached_share <= setup["ceiling"]
    assert sum(aff.outcomes.values()) == 12 * 3 + 20
    text = bench.report(lor, aff, setup, args)
    assert "ratios (prefix-affinity / least-outstanding): cached share" in text


def test_kv_blocks_come_from_the_fit_check():
    # L40S 45,776 MiB x 0.9 - 8.03e9 x 2 bytes - 1.5 GiB runtime, at 128 KiB per token and 16 tokens per block
    assert bench.kv_blocks("g6e.xlarge") == 12173
    assert round(bench.prefill_ms_per_token("g6e.xlarge"), 4) == 0.0887
