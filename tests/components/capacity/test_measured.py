"""Measured profiles from `vllm bench serve --save-result` files: the keys are the pinned vLLM's, the points and the
request shape are read as written (hand-checked), every problem of the files is listed, and the stack-file entry the
CLI prints is one the capacity config accepts."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from components.capacity.measured import REQUIRED, profile_from_vllm_bench, read_results, to_config
from problems import ProblemsError

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def result(concurrency: int, *, tps: float, ttft: float, itl: float, **extra) -> dict:
    """A result file as vLLM writes it (only the keys the converter reads, plus a few it ignores)."""
    return {"date": "20261130-101500", "backend": "vllm", "model_id": MODEL, "tokenizer_id": MODEL,
            "max_concurrency": concurrency, "completed": 100, "failed": 0, "total_input_tokens": 100_000,
            "total_output_tokens": 20_000, "request_throughput": tps / 200, "output_throughput": tps,
            "mean_ttft_ms": ttft * 0.8, "p95_ttft_ms": ttft, "mean_itl_ms": itl * 0.9, "p95_itl_ms": itl, **extra}


def test_the_keys_read_are_the_ones_the_pinned_vllm_writes():
    spec = find_spec("vllm")
    assert spec is not None and spec.origin
    source = (Path(spec.origin).parent / "benchmarks" / "serve.py").read_text()
    for key in REQUIRED:
        assert f'"{key}"' in source, key
    # the latency keys are built as f"p{p_word}_{metric}_ms" and f"mean_{metric}_ms"; the date as %Y%m%d-%H%M%S
    assert 'result[f"p{p_word}_{metric_attribute_name}_ms"]' in source
    assert 'result[f"mean_{metric_attribute_name}_ms"]' in source
    assert 'process_one_metric("ttft"' in source and 'process_one_metric("itl"' in source


def test_one_file_per_concurrency_makes_the_points():
    files = [("c8.json", result(8, tps=600, ttft=300, itl=40)), ("c1.json", result(1, tps=90, ttft=120, itl=30))]
    p = profile_from_vllm_bench(files, accelerator="A10G", params_billion=8.03)
    assert [(x.concurrency, x.output_tokens_per_second, x.ttft_ms, x.itl_ms) for x in p.points] == [
        (1, 90, 120, 30), (8, 600, 300, 40)]
    # 200,000 input tokens / 200 requests = 1000; 40,000 output tokens / 200 = 200
    assert (p.input_tokens, p.output_tokens, p.latency_stat, p.basis) == (1000, 200, "p95", "measured")
    assert p.as_of.isoformat() == "2026-11-30" and "c1.json" in p.source and p.model == MODEL


def test_without_the_percentile_the_means_are_used_and_said_so():
    doc = result(4, tps=300, ttft=200, itl=35)
    del doc["p95_ttft_ms"], doc["p95_itl_ms"]
    p = profile_from_vllm_bench([("c4.json", doc)], accelerator="A10G", params_billion=8.03)
    assert p.latency_stat == "mean" and p.points[0].ttft_ms == pytest.approx(160)


def test_every_problem_of_the_files_is_listed():
    bad = result(4, tps=300, ttft=200, itl=35)
    del bad["output_throughput"]
    other = result(8, tps=500, ttft=250, itl=38, model_id="Qwen/Qwen2.5-7B-Instruct")
    same = result(8, tps=500, ttft=250, itl=38)
    with pytest.raises(ProblemsError) as exc:
        profile_from_vllm_bench([("a.json", bad), ("b.json", other), ("c.json", same)], accelerator="A10G",
                                params_billion=8)
    text = str(exc.value)
    assert "a.json: output_throughput" in text
    assert "model_id = ['Qwen/Qwen2.5-7B-Instruct', 'meta-llama/Llama-3.1-8B-Instruct']: one model" in text
    assert "c.json: max_concurrency = 8: a concurrency no other file has (b.json)" in text


def test_unreadable_files_are_listed(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ProblemsError) as exc:
        read_results([tmp_path / "x.json", tmp_path / "missing.json"])
    assert "x.json" in str(exc.value) and "missing.json" in str(exc.value)


def test_the_cli_prints_an_entry_the_stack_config_takes(tmp_path, capsys):
    import yaml

    from infra.cli import main
    from infra.sections.capacity import MeasuredProfileSettings

    for c, tps in ((1, 90), (8, 600)):
        (tmp_path / f"c{c}.json").write_text(json.dumps(result(c, tps=tps, ttft=100 + c, itl=30 + c)))
    code = main(["capacity", "profile", str(tmp_path / "c1.json"), str(tmp_path / "c8.json"), "--accelerator",
                 "A10G"])
    out = capsys.readouterr().out
    assert code == 0
    (entry,) = yaml.safe_load(out)
    parsed = MeasuredProfileSettings.model_validate(entry)
    assert parsed.params_billion == 8.03 and [p.concurrency for p in parsed.points] == [1, 8]  # from the catalogue
    assert main(["capacity", "profile", str(tmp_path / "c1.json"), "--accelerator", "A10Gx"]) == 2
    assert "is not one of" in capsys.readouterr().err
    profile = profile_from_vllm_bench([("c1.json", result(1, tps=90, ttft=101, itl=31))], accelerator="A10G",
                                      params_billion=8.03)
    assert to_config(profile)["points"] == [{"concurrency": 1, "outputTokensPerSecond": 90.0, "ttftMs": 101.0,
                                             "itlMs": 31.0}]


def test_wrong_kinds_mixed_statistics_and_future_runs_are_listed():
    typed = result(4, tps=300, ttft=200, itl=35, completed="100", model_id=123)
    typed["output_throughput"] = float("nan")
    mean_only = result(8, tps=500, ttft=250, itl=38)
    del mean_only["p95_ttft_ms"], mean_only["p95_itl_ms"]
    future = result(16, tps=700, ttft=300, itl=40, date="20991231-000000")
    with pytest.raises(ProblemsError) as exc:
        profile_from_vllm_bench([("a.json", typed), ("b.json", mean_only), ("c.json", result(1, tps=90, ttft=1,
                                 itl=30)), ("d.json", future)], accelerator="A10G", params_billion=8)
    text = str(exc.value)
    assert "a.json: model_id = 123: the model's id (a string)" in text
    assert "a.json: completed = '100': a whole number >= 1" in text
    assert "a.json: output_throughput = nan: output tokens/s, a finite number > 0" in text
    assert "d.json: date = '20991231-000000': a run in the past" in text
    assert "latencies = ['mean', 'p95']: one statistic in every file (p95 or mean): rerun the files without the " \
           "percentile with --metric-percentiles 95" in text
