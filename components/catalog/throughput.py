"""Throughput as data: what one replica of a model sustains, as profiles over concurrency and as single figures.

A :class:`ThroughputProfile` gives, for one model (or size class) on one accelerator at one precision and
tensor/pipeline-parallel degree and one request shape, the output tokens/s of the replica and the TTFT and ITL at a
few concurrencies. A profile is ``published`` (a vendor table, source URL and date beside it), ``measured`` (the
user's own ``vllm bench serve`` or load-test run, given in the stack config) or ``estimated`` (:func:`estimate`: a
roofline from the chip's datasheet, assumptions spelled out). :func:`profile_for` picks one in that order: the
user's, then the catalogue's (:data:`PROFILES`), then an estimate.

A :class:`Throughput` figure is the older single-number form (requests/s, or output tokens/s at one concurrency) the
batch cost benchmark uses; the NIM figures among :data:`FIGURES` are read from the profile rows, so each published
number lives in one place. :meth:`Throughput.requests_per_second` turns a token figure into requests per second for a
request size: ``output tokens/s / output tokens per request`` (decode-bound: it ignores how prefill grows with the
prompt).

Sources (read 2026-12):
- Seed 003 §4.5 "COST COMPARISON EXAMPLE": an A100 serves 100 predictions/s in real time and 500/s with large
  batches (the seed names neither the model nor the request size).
- NVIDIA NIM LLM benchmarking, performance page (:data:`NIM_PERF`), NIM 1.8.0 tables: Llama-3.3-70B-Instruct on
  2x H100 80G, FP8, TP2, 5,000 input / 500 output tokens; Llama-3.1-8B-Instruct (the table's GPU, precision and
  request shape were not captured with it: see the row's note). Both give TTFT and ITL at every concurrency.
- No authoritative A10G (g5), L4 (g6), L40S (g6e), A100 or Inferentia2 (inf2) token table was found (the
  optimum-neuron benchmarks publish charts only); those combinations are estimated. Measure with
  ``vllm bench serve`` and add the run as a measured profile in the stack config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.catalog import models as model_catalog
from components.catalog.accelerators import CATALOG as ACCELERATORS
from components.catalog.accelerators import CHIP_SPECS, ChipSpec, chip_spec

NIM_PERF = "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance.md"
SEED_BATCH = "seed 003 §4.5 (COST COMPARISON EXAMPLE)"

Mode = Literal["online", "batch"]
Unit = Literal["requests_per_second", "output_tokens_per_second"]
Precision = Literal["bf16", "fp16", "fp8", "int8", "int4"]
Basis = Literal["published", "measured", "estimated"]
LatencyStat = Literal["p95", "p50", "mean"]


class Throughput(BaseModel):
    """What one deployment (``accelerators`` devices of ``accelerator``) sustains for one model in one mode."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    model: str = Field(min_length=1)
    """Model name as the source gives it (``llama-3.1-8b-instruct``), or ``seed-example`` for the seed's unnamed one."""
    accelerator: str = Field(min_length=1)
    """Accelerator model, as in :mod:`components.catalog.accelerators` (``A100``, ``H100``)."""
    accelerators: int = Field(ge=1, le=64)
    """Devices the deployment uses (the cost is this share of the instance: ``accelerators / instance count``)."""
    instance_type: str = Field(min_length=1)
    """The EC2 instance type that carries this accelerator (priced through :mod:`components.catalog.prices`)."""
    mode: Mode
    """``online``: real-time serving at a concurrency that keeps latency interactive; ``batch``: throughput-bound."""
    unit: Unit
    value: float = Field(gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    """Concurrent requests the figure was measured at (None: the source does not say)."""
    input_tokens: int | None = Field(default=None, ge=1)
    """Prompt length of the benchmark's requests (None: not stated)."""
    output_tokens: int | None = Field(default=None, ge=1)
    """Output length of the benchmark's requests (None: not stated)."""
    source: str = Field(min_length=1)
    as_of: date
    note: str = ""

    @model_validator(mode="after")
    def _source_is_url_or_seed(self) -> Throughput:
        if not (self.source.startswith("https://") or self.source.startswith("seed ")):
            raise ValueError(f"source ({self.source!r}) must be an https:// URL or a seed reference")
        return self

    def requests_per_second(self, output_tokens: int) -> float:
        """Requests per second for requests of ``output_tokens`` (token figures divide; request figures pass)."""
        if output_tokens < 1:
            raise ValueError(f"output_tokens ({output_tokens}) must be >= 1")
        if self.unit == "requests_per_second":
            return self.value
        return self.value / output_tokens


# ---------------------------------------------------------------------------------------------------------------
# Profiles


class ProfilePoint(BaseModel):
    """One replica's throughput and latency at one concurrency."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    concurrency: int = Field(ge=1)
    """Requests in flight on ONE replica (a closed loop: each client sends its next request when one completes)."""
    output_tokens_per_second: float = Field(gt=0)
    """Output tokens per second, summed over the replica's requests at this concurrency."""
    ttft_ms: float = Field(ge=0)
    """Time to first token at this concurrency, in ms (the profile's ``latency_stat``)."""
    itl_ms: float = Field(ge=0)
    """Inter-token latency at this concurrency, in ms (the profile's ``latency_stat``)."""


class ThroughputProfile(BaseModel):
    """Throughput and latency of one replica over concurrency, for one model, accelerator, precision and shape.

    Validation gathers every problem: at least one point, concurrencies strictly increasing, a published profile's
    source an https:// URL or a seed reference, an estimated profile's assumptions stated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    model: str = Field(min_length=1)
    """A model id (``meta-llama/Llama-3.1-8B-Instruct``) or a size-class label (``8b``, see :func:`size_class`)."""
    params_billion: float = Field(gt=0, le=5000)
    """Parameters of the model, in billions (sets its size class)."""
    accelerator: str = Field(min_length=1)
    """Accelerator as :attr:`AcceleratorSpec.accelerator` names it (``H100``, ``L40S``, ``Inferentia2``)."""
    precision: Precision
    """Weight precision the replica serves at."""
    tensor_parallel: int = Field(default=1, ge=1)
    """Tensor-parallel degree in devices: GPUs, or Neuron devices (a vLLM ``tensor_parallel_size`` over NeuronCores
    divided by the cores per device, 2 on Inferentia2). Default 1."""
    pipeline_parallel: int = Field(default=1, ge=1)
    """Pipeline-parallel degree (stages, usually nodes). Default 1."""
    input_tokens: int = Field(ge=1)
    """Prompt length of the requests the points were measured or estimated for."""
    output_tokens: int = Field(ge=1)
    """Output length of those requests."""
    latency_stat: LatencyStat
    """What ``ttft_ms`` and ``itl_ms`` are: a p95, a median or a mean over the run's requests."""
    points: tuple[ProfilePoint, ...]
    """At least one point, concurrency strictly increasing."""
    basis: Basis
    """``published`` (a vendor's table), ``measured`` (the user's own run) or ``estimated`` (:func:`estimate`)."""
    source: str = Field(min_length=1)
    """https:// URL or ``seed NNN §x`` (published); for measured or estimated, text naming the run or the model."""
    as_of: date
    """When the source was read, the run made or the estimate computed."""
    assumptions: str = ""
    """What an estimate rests on (required when ``basis`` is ``estimated``)."""
    note: str = ""
    """Caveats: uncertain facts about the run (GPU, request shape), figures derived rather than read."""

    @model_validator(mode="after")
    def _check(self) -> ThroughputProfile:
        problems: list[str] = []
        if not self.points:
            problems.append("points: at least one point is required")
        concurrencies = [p.concurrency for p in self.points]
        if any(b <= a for a, b in pairwise(concurrencies)):
            problems.append(f"points: concurrency must strictly increase (got {', '.join(map(str, concurrencies))})")
        if self.basis == "published" and not (self.source.startswith("https://") or self.source.startswith("seed ")):
            problems.append(f"source ({self.source!r}): a published profile needs an https:// URL or a seed reference")
        if self.basis == "estimated" and not self.assumptions.strip():
            problems.append("assumptions: required when basis is 'estimated' (state what the figures rest on)")
        if problems:
            raise ValueError(f"throughput profile {self.model!r} on {self.accelerator}: " + "; ".join(problems))
        return self

    @property
    def devices(self) -> int:
        """Parallel units one replica uses: ``tensor_parallel x pipeline_parallel``."""
        return self.tensor_parallel * self.pipeline_parallel

    def at(self, concurrency: int) -> ProfilePoint:
        """The point at ``concurrency``: linear interpolation between the two neighbouring points.

        Below the first point, throughput scales down in proportion (``first x c / c_first``) and the latencies are
        the first point's (a conservative bound: latency falls with load). Above the last point the replica is
        saturated: throughput stays at the last point's and TTFT and ITL grow in proportion (``x c / c_last``), as
        requests share a fixed token rate (Little's law).
        """
        if concurrency < 1:
            raise ValueError(f"concurrency ({concurrency}) must be >= 1")
        pts = self.points
        first, last = pts[0], pts[-1]
        if concurrency <= first.concurrency:
            return ProfilePoint(concurrency=concurrency,
                                output_tokens_per_second=first.output_tokens_per_second * concurrency
                                / first.concurrency, ttft_ms=first.ttft_ms, itl_ms=first.itl_ms)
        if concurrency >= last.concurrency:
            grow = concurrency / last.concurrency
            return ProfilePoint(concurrency=concurrency, output_tokens_per_second=last.output_tokens_per_second,
                                ttft_ms=last.ttft_ms * grow, itl_ms=last.itl_ms * grow)
        for lo, hi in pairwise(pts):
            if lo.concurrency <= concurrency <= hi.concurrency:
                f = (concurrency - lo.concurrency) / (hi.concurrency - lo.concurrency)
                return ProfilePoint(
                    concurrency=concurrency,
                    output_tokens_per_second=_lerp(lo.output_tokens_per_second, hi.output_tokens_per_second, f),
                    ttft_ms=_lerp(lo.ttft_ms, hi.ttft_ms, f), itl_ms=_lerp(lo.itl_ms, hi.itl_ms, f))
        raise AssertionError("unreachable: points are strictly increasing")  # pragma: no cover

    def best_within(self, *, ttft_ms: float | None = None, itl_ms: float | None = None) -> ProfilePoint | None:
        """The highest-throughput point, over integer concurrencies 1..last point, whose TTFT and ITL are within the
        SLO (None: no bound); the lowest such concurrency on a tie. None when no concurrency meets it (with latency
        rising with load: when even concurrency 1 misses).

        The comparison is against the profile's ``latency_stat`` as it is: a p95 SLO checked against a mean profile
        is optimistic, and the caller says so.
        """
        best: ProfilePoint | None = None
        for c in range(1, self.points[-1].concurrency + 1):
            p = self.at(c)
            if (ttft_ms is not None and p.ttft_ms > ttft_ms) or (itl_ms is not None and p.itl_ms > itl_ms):
                continue
            if best is None or p.output_tokens_per_second > best.output_tokens_per_second:
                best = p
        return best


def _lerp(a: float, b: float, f: float) -> float:
    return a + (b - a) * f


def _points(rows: Sequence[tuple[int, float, float, float]]) -> tuple[ProfilePoint, ...]:
    """Points from (concurrency, TTFT ms, ITL ms, output tokens/s) rows, the column order of the NIM tables."""
    return tuple(ProfilePoint(concurrency=c, ttft_ms=ttft, itl_ms=itl, output_tokens_per_second=tps)
                 for c, ttft, itl, tps in rows)


_READ = date(2026, 12, 5)

NIM_LLAMA_3_1_8B = ThroughputProfile(
    model="meta-llama/Llama-3.1-8B-Instruct", params_billion=8.03, accelerator="H100", precision="fp8",
    input_tokens=200, output_tokens=200, latency_stat="mean", basis="published", source=NIM_PERF, as_of=_READ,
    points=_points((  # NIM 1.8.0: concurrency, TTFT ms, ITL ms, output tokens/s, as the table prints them
        (1, 10.26, 4.63, 214.56), (5, 16.81, 4.58, 1076.88), (25, 36.34, 5.19, 4678.88), (50, 67.41, 5.91, 8018.23),
        (100, 119.97, 7.57, 12214.97), (150, 346.53, 9.81, 12988.89), (200, 465.18, 12.65, 13348.4),
        (250, 605.6, 16.14, 12964.72))),
    note="NIM 1.8.0. The table's hardware, precision and request shape were not captured with the figures "
         "(uncertain): one H100 is likely; FP8 is inferred (ITL 4.63 ms at concurrency 1 is below the 4.8 ms "
         "that reading BF16 weights takes at the H100's full 3.35 TB/s); 200 output tokens are derived from "
         "tokens/s = c x output / (TTFT + (output - 1) x ITL) at each row (183-203); 200 input tokens are assumed "
         "(TTFT 10 ms fits a short prompt). TTFT/ITL taken as means (AIPerf's table does not say)")

NIM_LLAMA_3_3_70B = ThroughputProfile(
    model="meta-llama/Llama-3.3-70B-Instruct", params_billion=70.6, accelerator="H100", precision="fp8",
    tensor_parallel=2, input_tokens=5000, output_tokens=500, latency_stat="mean", basis="published",
    source=NIM_PERF, as_of=_READ,
    points=_points((  # NIM 1.8.0, 2 x H100 80G, fp8 TP2, 5000 input / 500 output tokens
        (1, 406.77, 18.58, 51.67), (5, 546.7, 21.83, 218.48), (25, 688.69, 38.75, 623.4),
        (50, 834.51, 59.73, 814.37), (100, 7996.25, 92.91, 917.26), (150, 34794.22, 92.86, 920.9),
        (200, 61680.22, 93.06, 920.54), (250, 88605.32, 93.2, 920.12))),
    note="NIM 1.8.0; saturates near 920 tokens/s past concurrency 100, where requests queue (TTFT 8-89 s). "
         "TTFT/ITL taken as means (AIPerf's table does not say)")

PROFILES: tuple[ThroughputProfile, ...] = (NIM_LLAMA_3_1_8B, NIM_LLAMA_3_3_70B)
"""Published profiles, each with its source and date (a test fails on a row without)."""


def _tokens_per_second(profile: ThroughputProfile, concurrency: int) -> float:
    return next(p.output_tokens_per_second for p in profile.points if p.concurrency == concurrency)


# The NIM figures below are the profile rows, rounded as the batch benchmark has quoted them since it was written:
# to whole tokens/s, and the plateaus to "about 13.3k" and "about 920".
FIGURES: tuple[Throughput, ...] = (
    Throughput(model="seed-example", accelerator="A100", accelerators=1, instance_type="p4d.24xlarge",
               mode="online", unit="requests_per_second", value=100, source=SEED_BATCH, as_of=_READ,
               note="'1M predictions / 100 predictions per second' (real-time, A100 on-demand)"),
    Throughput(model="seed-example", accelerator="A100", accelerators=1, instance_type="p4d.24xlarge",
               mode="batch", unit="requests_per_second", value=500, source=SEED_BATCH, as_of=_READ,
               note="'1M predictions / 500 predictions per second (large batch)' (A100 spot)"),
    Throughput(model="llama-3.1-8b-instruct", accelerator="H100", accelerators=1, instance_type="p5.48xlarge",
               mode="online", unit="output_tokens_per_second", value=round(_tokens_per_second(NIM_LLAMA_3_1_8B, 25)),
               concurrency=25, source=NIM_PERF, as_of=_READ,
               note="NIM 1.8.0, concurrency 25; one H100 is likely but not stated (uncertain)"),
    Throughput(model="llama-3.1-8b-instruct", accelerator="H100", accelerators=1, instance_type="p5.48xlarge",
               mode="batch", unit="output_tokens_per_second",
               value=round(_tokens_per_second(NIM_LLAMA_3_1_8B, 200), -2), concurrency=200, source=NIM_PERF,
               as_of=_READ, note="NIM 1.8.0 plateau at concurrency 200 (about 13.3k); GPU likely one H100"),
    Throughput(model="llama-3.3-70b-instruct", accelerator="H100", accelerators=2, instance_type="p5.48xlarge",
               mode="online", unit="output_tokens_per_second",
               value=round(_tokens_per_second(NIM_LLAMA_3_3_70B, 25)), concurrency=25, input_tokens=5000,
               output_tokens=500, source=NIM_PERF, as_of=_READ, note="2x H100 FP8, TP2, concurrency 25"),
    Throughput(model="llama-3.3-70b-instruct", accelerator="H100", accelerators=2, instance_type="p5.48xlarge",
               mode="batch", unit="output_tokens_per_second",
               value=round(_tokens_per_second(NIM_LLAMA_3_3_70B, 100), -1), concurrency=100, input_tokens=5000,
               output_tokens=500, source=NIM_PERF, as_of=_READ,
               note="2x H100 FP8, TP2, saturates near 920 tokens/s past concurrency 100 (TTFT grows)"),
)


class FigureNotFound(LookupError):
    """No throughput figure for the asked model and mode; the message lists the models that have one."""


def figure(model: str, mode: Mode) -> Throughput:
    """The figure for ``model`` in ``mode``, or :class:`FigureNotFound` listing the catalogued models."""
    for f in FIGURES:
        if f.model == model and f.mode == mode:
            return f
    known = sorted({f.model for f in FIGURES})
    raise FigureNotFound(f"model ({model!r}) has no {mode} throughput figure; known: {', '.join(known)}")


def models() -> list[str]:
    """Models with both an online and a batch figure."""
    names = {f.model for f in FIGURES}
    return sorted(m for m in names if {f.mode for f in FIGURES if f.model == m} == {"online", "batch"})


# ---------------------------------------------------------------------------------------------------------------
# Size classes

SIZE_CLASSES: tuple[tuple[str, float], ...] = (
    ("1b", 1), ("3b", 3), ("8b", 8), ("14b", 14), ("32b", 32), ("70b", 70), ("180b", 180), ("405b", 405))
"""Size-class labels and their centres, in billions of parameters."""


def size_class(params_billion: float) -> str:
    """The size class of a model: the class whose centre is nearest on a log scale.

    The bins' edges are the geometric means of neighbouring centres: up to 1.73B is ``1b``, to 4.90B ``3b``, to
    10.58B ``8b`` (Mistral-7B and Qwen2.5-7B are ``8b``), to 21.17B ``14b``, to 47.33B ``32b``, to 112.25B ``70b``
    (Qwen2.5-72B is ``70b``), to 270B ``180b``, above it ``405b``.
    """
    if not params_billion > 0:
        raise ValueError(f"params_billion ({params_billion}) must be > 0")
    return min(SIZE_CLASSES, key=lambda c: abs(math.log(params_billion / c[1])))[0]


# ---------------------------------------------------------------------------------------------------------------
# The roofline estimate

DECODE_BANDWIDTH_EFFICIENCY = 0.55
"""Share of the datasheet memory bandwidth a decode step achieves. Calibrated on the NIM 1.8.0 tables at concurrency
1 (weights + KV read per token / ITL): 0.52 for Llama-3.1-8B FP8 on H100, 0.57 for Llama-3.3-70B FP8 on 2x H100."""
COMPUTE_EFFICIENCY = 0.5
"""Share of the datasheet dense TFLOPS prefill (and compute-bound decode) achieves (model FLOPs utilisation).
Calibrated on the NIM 70B table: 5,000-token prefill of 2 x 70.6 GFLOP per token on 2x H100 FP8 in ~390 ms of the
407 ms TTFT at concurrency 1 is 0.46-0.5."""
SCHEDULING_DELAY_PER_REQUEST_MS = 1.1
"""TTFT added per other request in flight (admission, scheduling, streaming on the serving engine's CPU side).
Calibrated on the NIM 8B table: TTFT rises from 10.3 ms at concurrency 1 to 120 ms at 100, (120 - 10.3) / 99;
a prefill queue alone explains little of it at 200-token prompts."""
GPU_MEMORY_UTILIZATION = 0.9
"""Share of accelerator memory the engine takes for weights and KV cache (vLLM's ``--gpu-memory-utilization``
default); activations and the CUDA graphs' workspace are inside the remaining 10 %."""
MAX_NUM_SEQS = 256
"""Most requests one replica runs at once (vLLM's ``--max-num-seqs`` default); above it requests queue."""
ESTIMATE_CONCURRENCIES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Concurrencies an estimated profile has points at (up to what the KV cache holds, and that limit itself)."""

_BYTES_PER_PARAM: dict[str, float] = {"bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}

# the architecture an estimate assumes for a size class: a catalogue model of that class (180b: the 405B's
# attention shape, more KV per token than a 180B model is likely to have: conservative)
_REPRESENTATIVE: dict[str, str] = {
    "1b": "meta-llama/Llama-3.2-1B-Instruct", "3b": "meta-llama/Llama-3.2-3B-Instruct",
    "8b": "meta-llama/Llama-3.1-8B-Instruct", "14b": "Qwen/Qwen2.5-14B-Instruct", "32b": "Qwen/Qwen2.5-32B-Instruct",
    "70b": "meta-llama/Llama-3.3-70B-Instruct", "180b": "meta-llama/Llama-3.1-405B-Instruct",
    "405b": "meta-llama/Llama-3.1-405B-Instruct",
}


def _known_accelerators() -> str:
    return ", ".join(sorted(CHIP_SPECS))


def _is_neuron(accelerator: str) -> bool:
    return any(s.accelerator == accelerator and s.vendor == "neuron" for s in ACCELERATORS.values())


def _chip(accelerator: str) -> ChipSpec:
    chip = chip_spec(accelerator)
    if chip is None:
        raise ValueError(f"accelerator ({accelerator!r}) has no datasheet figures to estimate from; known: "
                         f"{_known_accelerators()}")
    return chip


def estimate(params_billion: float, accelerator: str, precision: Precision, *, tensor_parallel: int = 1,
             pipeline_parallel: int = 1, input_tokens: int = 1000, output_tokens: int = 200,
             facts: model_catalog.ModelFacts | None = None) -> ThroughputProfile:
    """A roofline estimate of one replica's profile from the chip's datasheet (:data:`CHIP_SPECS`).

    Per token step at concurrency ``c`` (``chips`` = ``tensor_parallel``; a Neuron device, two NeuronCores on
    Inferentia2, is treated like a GPU with its own bandwidth and TFLOPS, and ``tensor_parallel`` counts devices):

    - decode step = max(memory, compute): memory = (weight bytes / chips + ``c`` x KV bytes of a request's average
      context (prompt + half the output) / chips) / (bandwidth x :data:`DECODE_BANDWIDTH_EFFICIENCY`); compute =
      2 x params x ``c`` / (chips x TFLOPS x :data:`COMPUTE_EFFICIENCY`);
    - prefill of one request = max(2 x params x prompt tokens / (chips x TFLOPS x efficiency), one weight read);
    - prefill shares the accelerator: with requests arriving at ``R`` per second (the closed loop's completion
      rate), prefill takes the share ``rho = R x prefill compute`` of its time, so ITL = decode step / (1 - rho);
    - TTFT = prefill + the wait behind other prefills (M/D/1: rho x prefill / (2 (1 - rho)), arrivals taken as
      independent) + :data:`SCHEDULING_DELAY_PER_REQUEST_MS` x (``c`` - 1) + one decode step (the first token
      comes out of a step shared with the batch);
    - throughput = ``c`` x output / (TTFT + (output - 1) x ITL), the closed loop's rate, solved by fixed-point
      iteration with ``R``.

    Pipeline parallelism multiplies per-request latency, not throughput per device: each token passes the
    ``pipeline_parallel`` stages in turn (ITL = stages x one stage's step over ``ceil(c / stages)`` requests), while
    that many micro-batches keep every stage busy, so tokens/s per device stays what tensor parallelism alone gives.

    The KV cache holds :data:`GPU_MEMORY_UTILIZATION` of memory less the weights; a request holds prompt + output
    tokens of it (FP8 KV for an FP8 model, as NIM/TensorRT-LLM FP8 profiles and vLLM ``--kv-cache-dtype fp8`` do;
    BF16 otherwise). Points stop at what it holds (at most :data:`MAX_NUM_SEQS`); past the last point
    :meth:`ThroughputProfile.at` plateaus. The architecture (layers, KV heads, head dim) is ``facts`` or the size
    class's representative catalogue model. Latencies are means.

    Limits: the engine's own ceilings are not modelled (NIM's 8B engine plateaus near 13.3k tokens/s from concurrency
    150, where this estimate keeps rising), nor are speculative decoding, prefix caching or communication time
    between tensor-parallel devices. Cross-check: a vLLM BF16 sweep of Llama-3.1-8B on one A100 40GB (a personal
    benchmark, not a primary source: https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on) decodes at ~75
    tokens/s at concurrency 1, about 77 % of the bandwidth ceiling, so the efficiency above is conservative there
    (the estimate: ITL 19.7 ms, ~51 tokens/s).
    """
    chip = _chip(accelerator)
    if tensor_parallel < 1 or pipeline_parallel < 1 or input_tokens < 1 or output_tokens < 1:
        raise ValueError(f"tensor_parallel ({tensor_parallel}), pipeline_parallel ({pipeline_parallel}), "
                         f"input_tokens ({input_tokens}) and output_tokens ({output_tokens}) must be >= 1")
    label = size_class(params_billion)
    arch = facts or model_catalog.CATALOG[_REPRESENTATIVE[label]]
    chips = tensor_parallel
    stages = pipeline_parallel
    weight_bytes = params_billion * 1e9 * _BYTES_PER_PARAM[precision]
    kv_bytes_per_token = 2 * arch.layers * arch.kv_heads * arch.head_dim * (1 if precision == "fp8" else 2)
    bandwidth = chip.memory_bandwidth_gb_per_second * 1e9 * DECODE_BANDWIDTH_EFFICIENCY
    flops = chip.dense_tflops(precision) * 1e12 * COMPUTE_EFFICIENCY
    context = input_tokens + output_tokens / 2

    free_bytes = chip.memory_gb * 1e9 * GPU_MEMORY_UTILIZATION * chips * stages - weight_bytes
    fits = free_bytes >= kv_bytes_per_token * (input_tokens + output_tokens)
    kv_limit = int(free_bytes // (kv_bytes_per_token * (input_tokens + output_tokens))) if fits else 1
    top = min(MAX_NUM_SEQS, kv_limit)
    concurrencies = sorted({c for c in ESTIMATE_CONCURRENCIES if c <= top} | {top})

    prefill_compute = 2 * params_billion * 1e9 * input_tokens / (chips * flops)
    prefill = max(prefill_compute, weight_bytes / chips / bandwidth)  # at least one read of every stage's weights

    def step(c: int) -> float:
        batch = math.ceil(c / stages)
        memory = (weight_bytes + batch * context * kv_bytes_per_token) / (chips * stages) / bandwidth
        compute = 2 * params_billion * 1e9 / stages * batch / (chips * flops)
        return stages * max(memory, compute)

    def latencies(c: int, rate: float) -> tuple[float, float]:
        """(TTFT, ITL) in seconds at concurrency ``c`` with requests arriving at ``rate`` per second."""
        rho = rate * prefill_compute / stages
        itl = step(c) / (1 - rho)
        wait = rho * prefill / (2 * (1 - rho))
        return prefill + wait + SCHEDULING_DELAY_PER_REQUEST_MS / 1e3 * (c - 1) + step(c), itl

    points = []
    for c in concurrencies:
        # the closed loop's rate R solves R = c / (TTFT(R) + (output - 1) x ITL(R)); the right side falls as R
        # rises and tends to 0 as prefill saturates (rho -> 1), so bisect on (0, stages / prefill compute)
        lo, hi = 0.0, stages / prefill_compute
        for _ in range(100):
            mid = (lo + hi) / 2
            ttft, itl = latencies(c, mid)
            lo, hi = (mid, hi) if c / (ttft + (output_tokens - 1) * itl) > mid else (lo, mid)
        ttft, itl = latencies(c, lo)
        points.append(ProfilePoint(concurrency=c, output_tokens_per_second=lo * output_tokens,
                                   ttft_ms=ttft * 1e3, itl_ms=itl * 1e3))

    assumptions = (
        f"roofline from {chip.accelerator} datasheet ({chip.memory_bandwidth_gb_per_second:g} GB/s, "
        f"{chip.dense_tflops(precision):g} dense TFLOPS at {precision}; {chip.source}); bandwidth efficiency "
        f"{DECODE_BANDWIDTH_EFFICIENCY:g}, compute efficiency {COMPUTE_EFFICIENCY:g}, scheduling delay "
        f"{SCHEDULING_DELAY_PER_REQUEST_MS:g} ms per request in flight (calibrated on NIM 1.8.0, H100); "
        f"{chips} chip(s) x {stages} stage(s); architecture of {getattr(arch, 'model_id', 'the stated facts')} "
        f"({kv_bytes_per_token} KV bytes per token); KV cache holds {kv_limit if fits else 0} requests of "
        f"{input_tokens + output_tokens} tokens at {GPU_MEMORY_UTILIZATION:g} memory utilisation"
        + ("; a Neuron device is taken as a GPU with its own bandwidth and TFLOPS (tensor_parallel counts devices)"
           if _is_neuron(accelerator) else "")
        + ("" if fits else "; THE WEIGHTS AND ONE REQUEST'S KV CACHE DO NOT FIT: the figures are not achievable at "
                           "this parallelism"))
    return ThroughputProfile(
        model=label, params_billion=params_billion, accelerator=accelerator, precision=precision,
        tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel, input_tokens=input_tokens,
        output_tokens=output_tokens, latency_stat="mean", points=tuple(points), basis="estimated",
        source="estimate() in components/catalog/throughput.py", as_of=_READ, assumptions=assumptions)


# ---------------------------------------------------------------------------------------------------------------
# Choosing a profile


def _matches(p: ThroughputProfile, label: str, accelerator: str, precision: str, tensor_parallel: int,
             pipeline_parallel: int) -> bool:
    return (size_class(p.params_billion) == label and p.accelerator == accelerator and p.precision == precision
            and p.tensor_parallel == tensor_parallel and p.pipeline_parallel == pipeline_parallel)


def profile_for(params_billion: float, accelerator: str, precision: Precision, *, tensor_parallel: int = 1,
                pipeline_parallel: int = 1, model: str | None = None, user: Sequence[ThroughputProfile] = (),
                input_tokens: int = 1000, output_tokens: int = 200) -> ThroughputProfile:
    """The profile to plan with, in this order:

    1. a ``user`` profile (measured, from the stack config) for this accelerator, precision, TP and PP whose model is
       ``model`` (case-insensitive) or whose size class is this one: one naming the model wins over a size-class one;
    2. a catalogue row (:data:`PROFILES`) of the same size class, accelerator, precision, TP and PP (the one naming
       ``model`` first);
    3. :func:`estimate` for ``input_tokens`` / ``output_tokens``.

    A user or catalogue profile comes as it was measured: its request shape (``input_tokens``/``output_tokens`` on
    the profile) may differ from the one asked for, which only shapes an estimate; compare them before relying on
    its latencies. Never raises for an accelerator in :data:`CHIP_SPECS`; for another one it returns a matching user
    or catalogue profile, else raises ValueError naming the known accelerators.
    """
    label = size_class(params_billion)
    wanted = (model or "").lower()
    for pool in (user, PROFILES):
        found = [p for p in pool if _matches(p, label, accelerator, precision, tensor_parallel, pipeline_parallel)
                 and (p.model.lower() == wanted or p.model == label or pool is PROFILES)]
        if found:
            return next((p for p in found if p.model.lower() == wanted), found[0])
    return estimate(params_billion, accelerator, precision, tensor_parallel=tensor_parallel,
                    pipeline_parallel=pipeline_parallel, input_tokens=input_tokens, output_tokens=output_tokens,
                    facts=model_catalog.lookup(model) if model else None)
