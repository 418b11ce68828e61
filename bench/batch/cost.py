"""What N requests (default 1M) of a given size cost: real-time on demand, batch on spot, SageMaker async, Bedrock.

Prices come from ``components/catalog/prices.py`` and throughput from ``components/catalog/throughput.py`` (each
figure with its source and date); the method is the seed's (003 §4.5), in ``bench/batch/_cost.py``. The table is
followed by the ratios (batch on spot and SageMaker async vs real-time on demand; Bedrock batch vs Bedrock on-demand)
and by the seed's worked example recomputed, with the reason its "30x" does or does not come out.

SageMaker async is an asynchronous inference endpoint that scales to zero between batches. By default it runs the
same deployment as the batch row (``ml.`` + that figure's instance type, the same throughput), at the SageMaker
hosting price; when that type has no hosting price the row is left out and the output says why. For another
instance type give ``--sagemaker-instance`` with the throughput measured on it (``--sagemaker-rps``); the whole
instance is then charged.

A self-hosted deployment that uses part of an instance (one H100 of a p5.48xlarge) is charged that share of the
instance price: the other accelerators are assumed to serve other replicas. Spot is the on-demand price less the
catalogue's typical discount (70%, an estimate; ``--spot-discount`` to change it), not an observed price.

Run: .venv/bin/python bench/batch/cost.py [--requests 1000000] [--prompt-tokens 500] [--output-tokens 200]
[--model llama-3.1-8b-instruct] [--bedrock-model amazon.nova-lite-v1:0] [--realtime-utilisation 0.5]
[--batch-utilisation 0.9] [--interruptions-per-hour 0] [--shard-seconds 600] [--restart-seconds 180]
[--sagemaker-instance ml.g6e.2xlarge --sagemaker-rps 20] [--sagemaker-batches 1] [--sagemaker-startup-seconds 300]
[--sagemaker-idle-seconds 600]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.batch._cost import (
    SEED_STATED,
    CostLine,
    batch_on_spot,
    bedrock_tokens,
    lost_work_fraction,
    ratio,
    realtime_on_demand,
    sagemaker_async,
    seed_example,
    seed_ratio_factors,
)
from components.catalog import accelerators, prices, throughput
from problems import Problem, ProblemsError


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/batch/cost.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1_000_000, help="requests in the job (default 1,000,000)")
    p.add_argument("--prompt-tokens", type=int, default=500, help="prompt tokens per request (default 500)")
    p.add_argument("--output-tokens", type=int, default=200, help="output tokens per request (default 200)")
    p.add_argument("--model", default="llama-3.1-8b-instruct",
                   help=f"self-hosted model with throughput figures: {', '.join(throughput.models())}")
    p.add_argument("--bedrock-model", default="amazon.nova-lite-v1:0",
                   help=f"Bedrock model with token prices: {', '.join(sorted(m for m, _ in prices.TOKEN_PRICES))}")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--realtime-utilisation", type=float, default=0.5,
                   help="real-time GPU utilisation (seed: idle 50%% -> 0.5; its table: 0.2-0.6)")
    p.add_argument("--batch-utilisation", type=float, default=0.9, help="batch GPU utilisation (seed: 0.8-0.95)")
    p.add_argument("--spot-discount", type=float, default=prices.SPOT.discount,
                   help=f"spot discount vs on-demand (default {prices.SPOT.discount:g}: {prices.SPOT.kind})")
    p.add_argument("--interruptions-per-hour", type=float, default=0.0,
                   help="spot interruptions per instance-hour (default 0: no interruption)")
    p.add_argument("--shard-seconds", type=float, default=600.0, help="run time of one shard (default 600)")
    p.add_argument("--restart-seconds", type=float, default=180.0,
                   help="node + image + model load after an interruption (default 180)")
    p.add_argument("--sagemaker-instance", default=None,
                   help="SageMaker instance type of the async endpoint (default: ml. + the batch figure's instance "
                        "type, at its throughput); another type needs --sagemaker-rps")
    p.add_argument("--sagemaker-rps", type=float, default=None,
                   help="requests/s measured on --sagemaker-instance (default: the batch figure's)")
    p.add_argument("--sagemaker-batches", type=int, default=1,
                   help="times the endpoint scales up from zero for the job (default 1: one batch)")
    p.add_argument("--sagemaker-startup-seconds", type=float, default=300.0,
                   help="scale-up from zero: instance, image and model load (default 300: a cold vLLM start of an "
                        "8B model on L40S takes about 294 s, not counting the instance's own start)")
    p.add_argument("--sagemaker-idle-seconds", type=float, default=600.0,
                   help="time the endpoint stays up after its queue empties (default 600: the SageMaker endpoint "
                        "component's scale-in cooldown)")
    return p.parse_args(argv)


def _share_price(figure: throughput.Throughput, region: str, priced_as: str | None = None) -> float:
    """On-demand USD/h of the accelerators the figure uses (their share of the instance), priced as the figure's
    instance type or as ``priced_as`` (its SageMaker ``ml.*`` twin)."""
    spec = accelerators.lookup(figure.instance_type)
    count = spec.count if spec else 1
    usd = prices.on_demand(priced_as or figure.instance_type, region).on_demand_usd_per_hour
    return usd * figure.accelerators / count


def validate(args: argparse.Namespace) -> list[Problem]:
    """Every bad argument, named by its flag, with the value and what was expected."""
    out: list[Problem] = []

    def need(flag: str, value: float, ok: bool, expected: str) -> None:
        if not ok:
            out.append(Problem(flag, value, expected))

    need("--requests", args.requests, args.requests >= 1, "must be >= 1")
    need("--prompt-tokens", args.prompt_tokens, args.prompt_tokens >= 0, "must be >= 0")
    need("--output-tokens", args.output_tokens, args.output_tokens >= 1, "must be >= 1")
    need("--realtime-utilisation", args.realtime_utilisation, 0 < args.realtime_utilisation <= 1,
         "must be > 0 and <= 1")
    need("--batch-utilisation", args.batch_utilisation, 0 < args.batch_utilisation <= 1, "must be > 0 and <= 1")
    need("--spot-discount", args.spot_discount, 0 < args.spot_discount < 1, "must be > 0 and < 1")
    need("--sagemaker-batches", args.sagemaker_batches, args.sagemaker_batches >= 1, "must be >= 1")
    if args.sagemaker_rps is not None:
        need("--sagemaker-rps", args.sagemaker_rps, args.sagemaker_rps > 0, "must be > 0")
    for flag in ("--interruptions-per-hour", "--shard-seconds", "--restart-seconds", "--sagemaker-startup-seconds",
                 "--sagemaker-idle-seconds"):
        value = getattr(args, flag[2:].replace("-", "_"))
        need(flag, value, value >= 0, "must be >= 0")
    models = throughput.models()
    need("--model", args.model, args.model in models, f"a model with online and batch figures: {', '.join(models)}")
    for figure in throughput.FIGURES:
        if figure.model == args.model and (figure.instance_type, args.region) not in prices.INSTANCE_PRICES:
            need("--region", args.region, False, f"a region with a price for {figure.instance_type} "
                 f"(priced: {', '.join(sorted({r for t, r in prices.INSTANCE_PRICES if t == figure.instance_type}))})")
            break
    out += _validate_sagemaker(args, models)
    bedrock = sorted(m for m, r in prices.TOKEN_PRICES if r == args.region)
    need("--bedrock-model", args.bedrock_model, (args.bedrock_model, args.region) in prices.TOKEN_PRICES,
         f"a Bedrock model with token prices in {args.region}: {', '.join(bedrock) or 'none'}")
    return out


def _validate_sagemaker(args: argparse.Namespace, models: list[str]) -> list[Problem]:
    """An explicit --sagemaker-instance must be priced and, unless it is the batch figure's own, come with a rate."""
    instance = args.sagemaker_instance
    if instance is None:
        if args.sagemaker_rps is not None:
            return [Problem("--sagemaker-rps", args.sagemaker_rps, "only with --sagemaker-instance (the instance it "
                                                                   "was measured on)")]
        return []
    out: list[Problem] = []
    if (instance, args.region) not in prices.INSTANCE_PRICES:
        priced = sorted(t for t, r in prices.INSTANCE_PRICES if r == args.region and t.startswith("ml."))
        why = prices.UNPRICED.get(instance)
        out.append(Problem("--sagemaker-instance", instance,
                           (f"has no hosting price ({why}); " if why else "")
                           + f"a SageMaker type priced in {args.region}: {', '.join(priced) or 'none'}"))
    own = f"ml.{throughput.figure(args.model, 'batch').instance_type}" if args.model in models else None
    if args.sagemaker_rps is None and instance != own:
        out.append(Problem("--sagemaker-instance", instance,
                           f"needs --sagemaker-rps (requests/s measured on it): the {args.model} figures are for "
                           f"{own or 'another instance'}"))
    return out


def _sagemaker_line(args: argparse.Namespace, batch: throughput.Throughput) -> tuple[CostLine | None, str]:
    """The SageMaker async line, or None and why it was left out. Without ``--sagemaker-rps`` it is the batch row's
    deployment (its throughput, its share of the instance); with it, the whole given instance at that rate."""
    instance = args.sagemaker_instance or f"ml.{batch.instance_type}"
    if (instance, args.region) not in prices.INSTANCE_PRICES:  # only the default can get here: validate() checks
        why = prices.UNPRICED.get(instance, "no hosting price in the catalogue")
        return None, (f"SageMaker async: left out: {instance} (the batch figure's hardware) has no {args.region} "
                      f"hosting price ({why}); give --sagemaker-instance <priced ml.* type> with --sagemaker-rps "
                      "<requests/s measured on it>")
    if args.sagemaker_rps is None:
        usd, rps = _share_price(batch, args.region, instance), batch.requests_per_second(args.output_tokens)
    else:
        usd, rps = prices.on_demand(instance, args.region).on_demand_usd_per_hour, args.sagemaker_rps
    line = sagemaker_async(args.requests, rps, usd, args.batch_utilisation, args.sagemaker_batches,
                           args.sagemaker_startup_seconds, args.sagemaker_idle_seconds)
    return line, f"SageMaker async on {instance} (hosting ${usd:.4g}/h, no spot price)"


def compute(args: argparse.Namespace) -> tuple[list[CostLine], dict[str, float], float, list[str]]:
    """(cost lines, ratios, interruption overhead, notes) for the arguments; :class:`ProblemsError` lists every bad
    one. The notes say which SageMaker instance the async line used, or why it was left out."""
    problems = validate(args)
    if problems:
        raise ProblemsError(problems, title="invalid arguments")
    online = throughput.figure(args.model, "online")
    batch = throughput.figure(args.model, "batch")
    od = _share_price(online, args.region)
    spot = _share_price(batch, args.region) * (1 - args.spot_discount)
    overhead = lost_work_fraction(args.interruptions_per_hour, args.shard_seconds, args.restart_seconds)
    rt = realtime_on_demand(args.requests, online.requests_per_second(args.output_tokens), od,
                            args.realtime_utilisation)
    bt = batch_on_spot(args.requests, batch.requests_per_second(args.output_tokens), spot, args.batch_utilisation,
                       overhead)
    tp = prices.tokens(args.bedrock_model, args.region)
    bod = bedrock_tokens("Bedrock on-demand", args.requests, args.prompt_tokens, args.output_tokens,
                         tp.on_demand_input_per_mtok, tp.on_demand_output_per_mtok)
    bba = bedrock_tokens("Bedrock batch", args.requests, args.prompt_tokens, args.output_tokens,
                         tp.batch_input_per_mtok, tp.batch_output_per_mtok)
    sm, note = _sagemaker_line(args, batch)
    lines = [rt, bt, *([sm] if sm else []), bod, bba]
    ratios = {"batch on spot vs real-time on demand": ratio(rt, bt)}
    if sm:
        ratios["SageMaker async vs real-time on demand"] = ratio(rt, sm)
    ratios["Bedrock batch vs Bedrock on-demand"] = ratio(bod, bba)
    return lines, ratios, overhead, [note]


def render(args: argparse.Namespace, lines: list[CostLine], ratios: dict[str, float], overhead: float,
           notes: Sequence[str] = ()) -> str:
    online = throughput.figure(args.model, "online")
    out = [(f"{args.requests:,} requests of {args.prompt_tokens} prompt + {args.output_tokens} output tokens, "
            f"{args.region}; self-hosted {args.model} on {online.accelerators}x {online.accelerator} "
            f"({online.instance_type}); Bedrock {args.bedrock_model}"),
           "self-hosted throughput is output-token bound: the prompt length changes only the Bedrock rows",
           "",
           f"{'option':<24} {'USD':>12} {'inst-hours':>11}  how",
           f"{'-' * 24} {'-' * 12} {'-' * 11}  {'-' * 3}"]
    for line in lines:
        hours = f"{line.billed_hours:,.2f}" if line.billed_hours else "-"
        usd = f"{line.usd:,.2f}" if line.usd >= 1 else f"{line.usd:.4f}"
        out.append(f"{line.name:<24} {usd:>12} {hours:>11}  {line.detail}")
    out += ["", *notes, "", "ratios (how many times cheaper):"]
    out += [f"  {name}: {value:,.1f}x" for name, value in ratios.items()]
    out += ["", (f"interruption overhead: {overhead:.4f} ({args.interruptions_per_hour:g}/h x "
                 f"({args.shard_seconds:g}s / 2 + {args.restart_seconds:g}s))"), ""]
    out += seed_lines(args.batch_utilisation, overhead)
    return "\n".join(out)


def seed_lines(batch_utilisation: float, overhead: float) -> list[str]:
    rt, bt = seed_example()
    f = seed_ratio_factors()
    rt2, bt2 = seed_example(batch_utilisation, overhead)
    return [
        "seed worked example (003 §4.5), its own prices and throughput:",
        (f"  real-time on demand ${rt.usd:.2f} (seed: ~${SEED_STATED['realtime_usd']:g}), "
         f"batch on spot ${bt.usd:.2f} (seed: ~${SEED_STATED['batch_usd']:g}), "
         f"ratio {ratio(rt, bt):.1f}x (seed: {SEED_STATED['ratio']:g}x)"),
        (f"  the ratio is throughput {f['throughput']:g}x * price {f['price']:.2f}x * idle {f['idle']:g}x; "
         "the seed rounds 29.2 to 30 and assumes a fully busy batch GPU that is never interrupted"),
        (f"  with batch utilisation {batch_utilisation:g} and interruption overhead {overhead:.4f}: "
         f"${bt2.usd:.2f}, ratio {ratio(rt2, bt2):.1f}x"),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        lines, ratios, overhead, notes = compute(args)
    except ProblemsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(args, lines, ratios, overhead, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
