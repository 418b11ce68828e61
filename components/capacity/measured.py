"""Measured throughput profiles from ``vllm bench serve``: the JSON files ``--save-result`` writes, one per
``--max-concurrency``, turned into a :class:`~components.catalog.throughput.ThroughputProfile` (basis ``measured``)
and into the ``capacity.profiles`` entry a stack file takes (``genai-scale capacity profile FILE...``).

Keys read from each file (vLLM 0.31 ``vllm/benchmarks/serve.py``; ``tests/components/capacity/test_measured.py``
checks them against the pinned vLLM's source): ``model_id``, ``date`` (``%Y%m%d-%H%M%S``), ``max_concurrency``,
``completed``, ``total_input_tokens``, ``total_output_tokens``, ``output_throughput`` (output tokens/s of the whole
run), and the latencies ``p<N>_ttft_ms`` / ``p<N>_itl_ms`` when the run was made with ``--metric-percentiles N``
(``--percentile-metrics ttft,tpot,itl`` is the default for generation), else ``mean_ttft_ms`` / ``mean_itl_ms``. Run::

    vllm bench serve --model <id> --max-concurrency 8 --num-prompts 400 --metric-percentiles 95 --save-result ...

once per concurrency (1, 4, 8, 16, 32, ...) against one replica, then convert the files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from components.catalog.throughput import Precision, ProfilePoint, ThroughputProfile
from problems import Problem, ProblemsError

REQUIRED = ("model_id", "max_concurrency", "completed", "total_input_tokens", "total_output_tokens",
            "output_throughput")
"""Keys every result file must have."""


def _latency(doc: dict[str, Any], metric: str, percentile: int) -> tuple[float | None, str]:
    key = f"p{percentile}_{metric}_ms"
    if _number(doc.get(key)):
        return float(doc[key]), f"p{percentile}"
    if _number(doc.get(f"mean_{metric}_ms")):
        return float(doc[f"mean_{metric}_ms"]), "mean"
    return None, ""


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _field_problems(name: str, doc: dict[str, Any]) -> list[Problem]:
    """Every required key of one result file that is missing or of the wrong kind."""
    out = []
    if not isinstance(doc.get("model_id"), str) or not doc.get("model_id"):
        out.append(Problem(f"{name}: model_id", doc.get("model_id"), "the model's id (a string)"))
    c = doc.get("max_concurrency")
    if not isinstance(c, int) or isinstance(c, bool) or c < 1:
        out.append(Problem(f"{name}: max_concurrency", c, "a whole number >= 1 (run vllm bench serve with "
                           "--max-concurrency N)"))
    for key in ("completed", "total_input_tokens", "total_output_tokens"):
        v = doc.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if key == "completed" else 0):
            out.append(Problem(f"{name}: {key}", v, "a whole number" + (" >= 1" if key == "completed" else " >= 0")))
    v = doc.get("output_throughput")
    if not _number(v) or v <= 0:
        out.append(Problem(f"{name}: output_throughput", v, "output tokens/s, a finite number > 0"))
    return out


def read_results(paths: Sequence[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    """(file name, parsed JSON) of each file; every unreadable or non-JSON file is a problem, all listed at once."""
    out, problems = [], []
    for p in paths:
        path = Path(p)
        try:
            doc = json.loads(path.read_text())
        except OSError as exc:
            problems.append(Problem(str(path), "", f"a readable file ({exc.strerror or exc})"))
            continue
        except ValueError as exc:
            problems.append(Problem(str(path), "", f"a vllm bench serve --save-result JSON file ({exc})"))
            continue
        if not isinstance(doc, dict):
            problems.append(Problem(str(path), type(doc).__name__, "a JSON object"))
            continue
        out.append((str(path), doc))
    if problems:
        raise ProblemsError(problems, title="cannot read the benchmark results")
    return out


def profile_from_vllm_bench(results: Sequence[tuple[str, dict[str, Any]]], *, accelerator: str,
                            params_billion: float, precision: Precision = "bf16", tensor_parallel: int = 1,
                            pipeline_parallel: int = 1, percentile: int = 95) -> ThroughputProfile:
    """One measured profile from the result files of one model on one replica (one file per concurrency). Raises
    :class:`problems.ProblemsError` listing every file and key that is missing or inconsistent."""
    problems: list[Problem] = []
    rows = []
    for name, doc in results:
        bad = _field_problems(name, doc)
        if bad:
            problems += bad
            continue
        ttft, stat_t = _latency(doc, "ttft", percentile)
        itl, stat_i = _latency(doc, "itl", percentile)
        if ttft is None or itl is None or stat_t != stat_i:
            problems.append(Problem(f"{name}: ttft/itl", "", f"p{percentile}_ttft_ms and p{percentile}_itl_ms (run "
                                    f"vllm bench serve with --metric-percentiles {percentile}), or both mean_ ones"))
            continue
        if not all(math.isfinite(v) and v > 0 for v in (ttft, itl)):
            problems.append(Problem(f"{name}: ttft/itl", [ttft, itl], "finite latencies > 0 ms"))
            continue
        when = _date(doc.get("date"))
        if when is not None and when > date.today():
            problems.append(Problem(f"{name}: date", doc.get("date"), "a run in the past"))
            continue
        rows.append((name, doc, ttft, itl, stat_t))
    stats = {r[4] for r in rows}
    if len(stats) > 1:
        problems.append(Problem("latencies", sorted(stats), f"one statistic in every file (p{percentile} or mean): "
                                "rerun the files without the percentile with --metric-percentiles "
                                f"{percentile}"))
    models = sorted({doc["model_id"] for _, doc, *_ in rows})
    if len(models) > 1:
        problems.append(Problem("model_id", models, "one model in all the files (one profile per model)"))
    seen: dict[int, str] = {}
    for name, doc, *_ in rows:
        c = doc["max_concurrency"]
        if c in seen:
            problems.append(Problem(f"{name}: max_concurrency", c, f"a concurrency no other file has ({seen[c]})"))
        seen[c] = name
    if problems:
        raise ProblemsError(problems, title="cannot build a profile from the benchmark results")
    if not rows:
        raise ProblemsError([Problem("files", [], "at least one result file")], title="no benchmark results")
    rows.sort(key=lambda r: r[1]["max_concurrency"])
    stat = rows[0][4] if all(r[4] == rows[0][4] for r in rows) else "mean"
    completed = sum(r[1]["completed"] for r in rows)
    input_tokens = round(sum(r[1]["total_input_tokens"] for r in rows) / completed)
    output_tokens = round(sum(r[1]["total_output_tokens"] for r in rows) / completed)
    dates = [_date(r[1].get("date")) for r in rows]
    when = max((d for d in dates if d is not None), default=date.today())
    points = tuple(ProfilePoint(concurrency=r[1]["max_concurrency"],
                                output_tokens_per_second=float(r[1]["output_throughput"]), ttft_ms=r[2], itl_ms=r[3])
                   for r in rows)
    return ThroughputProfile(
        model=models[0], params_billion=params_billion, accelerator=accelerator, precision=precision,
        tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel, input_tokens=max(1, input_tokens),
        output_tokens=max(1, output_tokens), latency_stat=stat, points=points, basis="measured",
        source=f"vllm bench serve --save-result: {', '.join(Path(r[0]).name for r in rows)}", as_of=when)


def _date(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value), "%Y%m%d-%H%M%S").date()
    except ValueError:
        return None


def to_config(profile: ThroughputProfile) -> dict[str, Any]:
    """The ``capacity.profiles`` entry of a stack file (camelCase keys) for ``profile``."""
    return {
        "model": profile.model, "paramsBillion": profile.params_billion, "accelerator": profile.accelerator,
        "precision": profile.precision, "tensorParallel": profile.tensor_parallel,
        "pipelineParallel": profile.pipeline_parallel, "inputTokens": profile.input_tokens,
        "outputTokens": profile.output_tokens, "latencyStat": profile.latency_stat, "source": profile.source,
        "asOf": profile.as_of.isoformat(),
        "points": [{"concurrency": p.concurrency, "outputTokensPerSecond": round(p.output_tokens_per_second, 2),
                    "ttftMs": round(p.ttft_ms, 2), "itlMs": round(p.itl_ms, 2)} for p in profile.points],
    }
