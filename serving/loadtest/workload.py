"""The load-test workload, without Locust (so it can be unit-tested): request shapes, stream parsing, statistics.

Prompt and output lengths are drawn from log-normal distributions, the long-tailed shape of chat traffic (many short
turns, a few long documents); medians, spreads and bounds are settings. Prompts are made of plain words (about one
token each for Llama/Qwen tokenizers), so the token count is known without a tokenizer; the server's reported usage
(``stream_options.include_usage``) is what the statistics use when it is present.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from typing import Iterable

WORDS = ("the", "model", "serves", "tokens", "for", "users", "who", "ask", "about", "cloud", "costs", "and", "latency",
         "while", "queues", "grow", "under", "load", "so", "replicas", "scale", "out", "on", "accelerators")


@dataclass(frozen=True)
class LengthDistribution:
    """Log-normal token counts: ``median`` and ``sigma`` of the underlying normal, clipped to [minimum, maximum]."""

    median: int
    sigma: float
    minimum: int
    maximum: int

    def sample(self, rng: random.Random) -> int:
        value = rng.lognormvariate(math.log(self.median), self.sigma)
        return int(min(max(round(value), self.minimum), self.maximum))


@dataclass(frozen=True)
class Workload:
    """What every simulated user sends."""

    model: str
    prompt_tokens: LengthDistribution
    output_tokens: LengthDistribution
    temperature: float = 0.7

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Workload":
        """Settings from LOADTEST_* environment variables (see docs/serving.md, "Load test")."""
        e = os.environ if env is None else env
        return cls(
            model=e.get("LOADTEST_MODEL", "llama-8b"),
            prompt_tokens=LengthDistribution(int(e.get("LOADTEST_PROMPT_MEDIAN", "400")),
                                             float(e.get("LOADTEST_PROMPT_SIGMA", "1.0")),
                                             int(e.get("LOADTEST_PROMPT_MIN", "8")),
                                             int(e.get("LOADTEST_PROMPT_MAX", "3000"))),
            output_tokens=LengthDistribution(int(e.get("LOADTEST_OUTPUT_MEDIAN", "200")),
                                             float(e.get("LOADTEST_OUTPUT_SIGMA", "0.7")),
                                             int(e.get("LOADTEST_OUTPUT_MIN", "16")),
                                             int(e.get("LOADTEST_OUTPUT_MAX", "1000"))))

    def request(self, rng: random.Random) -> tuple[dict, int, int]:
        """A streaming chat-completion body, its prompt length (words) and the requested output tokens."""
        n_prompt = self.prompt_tokens.sample(rng)
        n_output = self.output_tokens.sample(rng)
        text = " ".join(rng.choice(WORDS) for _ in range(n_prompt))
        body = {"model": self.model, "stream": True, "stream_options": {"include_usage": True},
                "max_tokens": n_output, "temperature": self.temperature,
                "messages": [{"role": "user", "content": text}]}
        return body, n_prompt, n_output


@dataclass
class StreamResult:
    """What one streamed response gave: content chunks, usage, and timings (seconds since the request was sent)."""

    chunks: int = 0
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    first_token_at: float | None = None
    done_at: float | None = None
    error: str | None = None

    @property
    def output_tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else self.chunks

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed of this stream: tokens after the first over the time after the first."""
        if self.first_token_at is None or self.done_at is None or self.output_tokens < 2:
            return None
        span = self.done_at - self.first_token_at
        return (self.output_tokens - 1) / span if span > 0 else None


def parse_sse(lines: Iterable[bytes | str], clock) -> StreamResult:
    """Read an OpenAI-style SSE stream (``data: {...}`` lines, ``data: [DONE]``); ``clock()`` gives elapsed seconds."""
    out = StreamResult()
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else raw
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            break
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            out.error = f"bad SSE payload: {data[:80]!r}"
            break
        if "error" in event:
            out.error = str(event["error"])[:200]
            break
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if out.first_token_at is None:
                    out.first_token_at = clock()
                out.chunks += 1
        usage = event.get("usage")
        if usage:
            out.completion_tokens = usage.get("completion_tokens")
            out.prompt_tokens = usage.get("prompt_tokens")
    out.done_at = clock()
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Report:
    """Aggregate of every stream of a run."""

    ttft_s: list[float] = field(default_factory=list)
    stream_tps: list[float] = field(default_factory=list)
    prompt_words: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    requested_output: list[int] = field(default_factory=list)
    failures: int = 0
    started: float | None = None
    ended: float | None = None

    def add(self, result: StreamResult, prompt_words: int, requested: int) -> None:
        if result.error or result.first_token_at is None:
            self.failures += 1
            return
        self.ttft_s.append(result.first_token_at)
        if result.tokens_per_second is not None:
            self.stream_tps.append(result.tokens_per_second)
        self.prompt_words.append(prompt_words)
        self.output_tokens.append(result.output_tokens)
        self.requested_output.append(requested)

    def summary(self) -> dict:
        wall = (self.ended - self.started) if self.started is not None and self.ended is not None else None
        pct = {q: q for q in (50, 90, 95, 99)}
        return {
            "requests": len(self.ttft_s), "failures": self.failures,
            "ttft_ms": {f"p{q}": _ms(percentile(self.ttft_s, q)) for q in pct},
            "stream_tokens_per_second": {f"p{q}": _round(percentile(self.stream_tps, q)) for q in pct},
            "output_tokens_per_second_total": _round(sum(self.output_tokens) / wall) if wall else None,
            "prompt_words": {f"p{q}": percentile([float(x) for x in self.prompt_words], q) for q in (50, 95)},
            "output_tokens": {f"p{q}": percentile([float(x) for x in self.output_tokens], q) for q in (50, 95)},
            "output_tokens_sum": sum(self.output_tokens), "requested_output_sum": sum(self.requested_output),
        }


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)
