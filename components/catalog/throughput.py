"""Throughput figures as data: what one deployment of a model sustains, online (real-time) or batch, with the source.

A figure is either requests per second (the seed's worked example) or output tokens per second at a stated
concurrency and request shape (NVIDIA NIM benchmarks). :func:`requests_per_second` turns a token figure into requests
per second for a request size: ``output tokens/s / output tokens per request``. That is decode-bound: it ignores how
prefill time grows with the prompt, so for prompts much longer than the benchmark's it overestimates; the benchmark's
own input/output lengths are kept beside each figure so a caller can see how far a request is from them.

Sources (read 2026-12):
- Seed 003 §4.5 "COST COMPARISON EXAMPLE": an A100 serves 100 predictions/s in real time and 500/s with large
  batches (the seed names neither the model nor the request size).
- NVIDIA NIM LLM benchmarking, performance page (https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance.md),
  as summarised in the project's reference notes (anchors-next §9): Llama-3.1-8B-Instruct (NIM 1.8.0) 214.6 tokens/s
  at concurrency 1, 4,679 at 25, 12,215 at 100, plateau about 13,300 at 200 (the GPU is likely one H100: uncertain);
  Llama-3.3-70B-Instruct on 2x H100 FP8 TP2, 5,000 input / 500 output tokens: 51.7 tokens/s at 1, 623 at 25,
  saturating near 920 tokens/s.
- No authoritative A10G (g5), L4 (g6), L40S (g6e) or Inferentia2 (inf2) token figure was found (the Neuron
  benchmarks publish charts only); those rows are absent. Measure with ``vllm bench serve`` and add them here with
  the run's date, engine version and request shape.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NIM_PERF = "https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance.md"
SEED_BATCH = "seed 003 §4.5 (COST COMPARISON EXAMPLE)"

Mode = Literal["online", "batch"]
Unit = Literal["requests_per_second", "output_tokens_per_second"]


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


_READ = date(2026, 12, 5)

FIGURES: tuple[Throughput, ...] = (
    Throughput(model="seed-example", accelerator="A100", accelerators=1, instance_type="p4d.24xlarge",
               mode="online", unit="requests_per_second", value=100, source=SEED_BATCH, as_of=_READ,
               note="'1M predictions / 100 predictions per second' (real-time, A100 on-demand)"),
    Throughput(model="seed-example", accelerator="A100", accelerators=1, instance_type="p4d.24xlarge",
               mode="batch", unit="requests_per_second", value=500, source=SEED_BATCH, as_of=_READ,
               note="'1M predictions / 500 predictions per second (large batch)' (A100 spot)"),
    Throughput(model="llama-3.1-8b-instruct", accelerator="H100", accelerators=1, instance_type="p5.48xlarge",
               mode="online", unit="output_tokens_per_second", value=4679, concurrency=25, source=NIM_PERF,
               as_of=_READ, note="NIM 1.8.0, concurrency 25; one H100 is likely but not stated (uncertain)"),
    Throughput(model="llama-3.1-8b-instruct", accelerator="H100", accelerators=1, instance_type="p5.48xlarge",
               mode="batch", unit="output_tokens_per_second", value=13300, concurrency=200, source=NIM_PERF,
               as_of=_READ, note="NIM 1.8.0 plateau at concurrency 200 (about 13.3k); GPU likely one H100"),
    Throughput(model="llama-3.3-70b-instruct", accelerator="H100", accelerators=2, instance_type="p5.48xlarge",
               mode="online", unit="output_tokens_per_second", value=623, concurrency=25, input_tokens=5000,
               output_tokens=500, source=NIM_PERF, as_of=_READ, note="2x H100 FP8, TP2, concurrency 25"),
    Throughput(model="llama-3.3-70b-instruct", accelerator="H100", accelerators=2, instance_type="p5.48xlarge",
               mode="batch", unit="output_tokens_per_second", value=920, concurrency=100, input_tokens=5000,
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
