"""Cost of N requests: real-time on demand, batch on spot, SageMaker async, Bedrock on-demand and batch tokens.

The method is the seed's (003 §4.5, "COST COMPARISON EXAMPLE"): busy time is ``requests / requests per second``;
real-time pays for the instance while it waits between requests, so its bill is busy time divided by the GPU
utilisation (the seed: "GPU idle 50% of time between requests = ~$20 effective", i.e. utilisation 0.5, and 20-60% in
its comparison table); batch keeps the GPU busy (80-95% in the same table) on spot capacity. Two terms the seed
leaves out are parameters here: the batch utilisation (1.0 reproduces the seed) and the work lost to spot
interruptions (a shard in flight when the instance is reclaimed is redone; :func:`lost_work_fraction`). A SageMaker
asynchronous inference endpoint that scales to zero between batches bills the instance-hours it is up: the busy time
at the same utilisation, plus, for every batch, the start from zero (instance, image, model load) and the time it
stays up after its queue empties before it scales in (:func:`sagemaker_async`); it has no spot price. Bedrock bills
tokens, not time: ``requests x (prompt x input price + output x output price)``. Pure functions.

No Pulumi, no I/O: the CLI (``bench/batch/cost.py``) and later capacity planning call these.
"""

from __future__ import annotations

from dataclasses import dataclass

from problems import Problem, ProblemsError

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class CostLine:
    """One way of serving the workload and what it costs."""

    name: str
    usd: float
    billed_hours: float
    """Instance hours paid for (0 for token-billed services)."""
    detail: str
    """How the figure was computed, in one line (prices, throughput, factors)."""


def _check(**fields: tuple[float, float | None, float | None, bool]) -> None:
    """Gather every bad number: ``name=(value, low, high, low_inclusive)``; raise one :class:`ProblemsError`."""
    out: list[Problem] = []
    for name, (value, low, high, low_inclusive) in fields.items():
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        too_high = high is not None and value > high
        if too_low or too_high:
            lo = "" if low is None else (f">= {low:g}" if low_inclusive else f"> {low:g}")
            hi = "" if high is None else f"<= {high:g}"
            out.append(Problem(name, value, "must be " + " and ".join(x for x in (lo, hi) if x)))
    if out:
        raise ProblemsError(out, title="invalid cost inputs")


def busy_hours(requests: int, requests_per_second: float) -> float:
    """Hours of full-speed work: ``requests / requests_per_second / 3600``."""
    _check(requests=(requests, 1, None, True), requests_per_second=(requests_per_second, 0, None, False))
    return requests / requests_per_second / SECONDS_PER_HOUR


def lost_work_fraction(interruptions_per_hour: float, shard_seconds: float, restart_seconds: float = 0.0) -> float:
    """Share of extra work spot interruptions cause: each one loses on average half a shard in flight plus the
    restart (a new node, image pull, model load), so ``rate x (shard/2 + restart) / 3600``. Shards are the unit of
    durability (``vllm run-batch`` writes only at the end), which is why smaller shards lose less."""
    _check(interruptions_per_hour=(interruptions_per_hour, 0, None, True),
           shard_seconds=(shard_seconds, 0, None, True), restart_seconds=(restart_seconds, 0, None, True))
    return interruptions_per_hour * (shard_seconds / 2 + restart_seconds) / SECONDS_PER_HOUR


def realtime_on_demand(requests: int, requests_per_second: float, on_demand_usd_per_hour: float,
                       utilisation: float) -> CostLine:
    """Real-time serving on on-demand capacity: busy hours / utilisation, at the on-demand price."""
    _check(requests=(requests, 1, None, True), requests_per_second=(requests_per_second, 0, None, False),
           on_demand_usd_per_hour=(on_demand_usd_per_hour, 0, None, False), utilisation=(utilisation, 0, 1, False))
    hours = busy_hours(requests, requests_per_second) / utilisation
    return CostLine("real-time, on-demand", hours * on_demand_usd_per_hour, hours,
                    f"{requests:,} req / {requests_per_second:g} req/s / utilisation {utilisation:g} "
                    f"x ${on_demand_usd_per_hour:g}/h")


def batch_on_spot(requests: int, requests_per_second: float, spot_usd_per_hour: float, utilisation: float,
                  interruption_overhead: float = 0.0) -> CostLine:
    """Batch on spot capacity: busy hours / utilisation x (1 + work lost to interruptions), at the spot price."""
    _check(requests=(requests, 1, None, True), requests_per_second=(requests_per_second, 0, None, False),
           spot_usd_per_hour=(spot_usd_per_hour, 0, None, False), utilisation=(utilisation, 0, 1, False),
           interruption_overhead=(interruption_overhead, 0, None, True))
    hours = busy_hours(requests, requests_per_second) / utilisation * (1 + interruption_overhead)
    return CostLine("batch, spot", hours * spot_usd_per_hour, hours,
                    f"{requests:,} req / {requests_per_second:g} req/s / utilisation {utilisation:g} "
                    f"x (1 + {interruption_overhead:g} lost work) x ${spot_usd_per_hour:.4g}/h")


def sagemaker_async(requests: int, requests_per_second: float, usd_per_hour: float, utilisation: float,
                    batches: int = 1, startup_seconds: float = 0.0, idle_seconds: float = 0.0) -> CostLine:
    """A SageMaker asynchronous inference endpoint that scales to zero between batches: busy hours / utilisation, plus
    ``batches x (startup + idle) / 3600`` hours of scaling from zero and waiting to scale in, at the hosting price."""
    _check(requests=(requests, 1, None, True), requests_per_second=(requests_per_second, 0, None, False),
           usd_per_hour=(usd_per_hour, 0, None, False), utilisation=(utilisation, 0, 1, False),
           batches=(batches, 1, None, True), startup_seconds=(startup_seconds, 0, None, True),
           idle_seconds=(idle_seconds, 0, None, True))
    overhead = batches * (startup_seconds + idle_seconds) / SECONDS_PER_HOUR
    hours = busy_hours(requests, requests_per_second) / utilisation + overhead
    return CostLine("SageMaker async", hours * usd_per_hour, hours,
                    f"{requests:,} req / {requests_per_second:g} req/s / utilisation {utilisation:g} + {batches} x "
                    f"({startup_seconds:g}s start + {idle_seconds:g}s idle) x ${usd_per_hour:.4g}/h")


def bedrock_tokens(name: str, requests: int, prompt_tokens: int, output_tokens: int, input_per_mtok: float,
                   output_per_mtok: float) -> CostLine:
    """Token-billed cost: ``requests x (prompt x input + output x output price) / 1e6``."""
    _check(requests=(requests, 1, None, True), prompt_tokens=(prompt_tokens, 0, None, True),
           output_tokens=(output_tokens, 1, None, True), input_per_mtok=(input_per_mtok, 0, None, True),
           output_per_mtok=(output_per_mtok, 0, None, True))
    usd = requests * (prompt_tokens * input_per_mtok + output_tokens * output_per_mtok) / 1e6
    return CostLine(name, usd, 0.0, f"{requests:,} x ({prompt_tokens} in x ${input_per_mtok:g} + "
                                    f"{output_tokens} out x ${output_per_mtok:g}) per 1M tokens")


def ratio(expensive: CostLine, cheap: CostLine) -> float:
    """How many times cheaper ``cheap`` is than ``expensive``."""
    if cheap.usd <= 0:
        raise ProblemsError([Problem(f"{cheap.name}.usd", cheap.usd, "must be > 0 to form a ratio")],
                            title="invalid cost ratio")
    return expensive.usd / cheap.usd


# The seed's worked example, its own numbers (003 §4.5): A100 on-demand $3.50/h at 100 predictions/s, idle 50%;
# A100 spot $1.20/h at 500 predictions/s; it states "~$10", "~$20 effective", "~$0.67" and "30x cheaper".
SEED_EXAMPLE = {"requests": 1_000_000, "online_rps": 100.0, "batch_rps": 500.0, "on_demand_usd_per_hour": 3.50,
                "spot_usd_per_hour": 1.20, "realtime_utilisation": 0.5}
SEED_STATED = {"realtime_busy_usd": 10.0, "realtime_usd": 20.0, "batch_usd": 0.67, "ratio": 30.0}


def seed_example(batch_utilisation: float = 1.0, interruption_overhead: float = 0.0) -> tuple[CostLine, CostLine]:
    """The seed's example recomputed: (real-time on demand, batch on spot). Defaults reproduce the seed, which
    assumes a fully busy batch GPU and no interruption."""
    s = SEED_EXAMPLE
    rt = realtime_on_demand(s["requests"], s["online_rps"], s["on_demand_usd_per_hour"], s["realtime_utilisation"])
    bt = batch_on_spot(s["requests"], s["batch_rps"], s["spot_usd_per_hour"], batch_utilisation,
                       interruption_overhead)
    return rt, bt


def seed_ratio_factors() -> dict[str, float]:
    """Where the seed's ratio comes from: throughput x price x idle, multiplied."""
    s = SEED_EXAMPLE
    return {"throughput": s["batch_rps"] / s["online_rps"],
            "price": s["on_demand_usd_per_hour"] / s["spot_usd_per_hour"],
            "idle": 1 / s["realtime_utilisation"]}
