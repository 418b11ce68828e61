"""`genai-scale capacity`: what a stack's serving targets must carry, what they need and cost at their minimum and at
peak, and whether they are under- or over-provisioned; where each model would be cheapest to run; the pre-scaling
floors that follow from the traffic profile.

    genai-scale capacity [--stack NAME | --config-file PATH] [--json]
    genai-scale capacity --program DIR [--stack NAME] [--config-file PATH] [--json]
    genai-scale capacity profile RESULT.json... --accelerator A10G [--tensor-parallel N] [--percentile 95]

A stack (``--stack``, ``--config-file``) is planned from its config alone (nothing is built, nothing leaves the
machine). ``--program`` plans your own Pulumi program offline and judges the vLLM services that carry capacity facts
(``VllmServiceArgs.capacity``, from :func:`components.capacity.facts.capacity_facts`).

Exit codes: 0 no mandatory finding; 1 a finding the tier makes mandatory (``policy.capacity.<rule>: mandatory`` in
its ``tier.yaml``, the levels the policy pack's capacity rules take); 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

EXIT_OK, EXIT_MANDATORY, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    from infra.targets import add_target_arguments

    p = argparse.ArgumentParser(prog="genai-scale capacity", description=(
        "What each serving target of a stack must carry (from the tier's targets and capacity.targets), the replicas "
        "and nodes it needs at peak and at its minimum, $/hour at both, $/1M output tokens, and the verdict "
        "(under-provisioned, over-provisioned, fine) with the number that decides it; where to run each model; the "
        "pre-scaling floors. Offline: reads the config (or plans --program under mocks)."))
    add_target_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (targets, totals, compare, preScale)")
    return p


def _positive(kind: type, most: float):
    """An argparse type: a finite ``kind`` in (0, most]."""
    import math

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not (math.isfinite(value) and 0 < value <= most):
            raise argparse.ArgumentTypeError(f"{text!r} is not between 0 (excluded) and {most:g}")
        return value

    return parse


def _profile_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genai-scale capacity profile", description=(
        "Turn vllm bench serve --save-result JSON files (one per --max-concurrency, one model on one replica) into a "
        "capacity.profiles entry for a stack file: measured profiles win over the catalogue's."))
    p.add_argument("files", nargs="+", metavar="RESULT.json")
    p.add_argument("--accelerator", required=True, help="the replica's accelerator as the catalogue names it "
                   "(A10G, L4, L40S, A100, H100, H200, Inferentia2)")
    p.add_argument("--params-billion", type=_positive(float, 5000),
                   help="parameters in billions (default: from the model catalogue)")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp8", "int8", "int4"])
    p.add_argument("--tensor-parallel", type=_positive(int, 64), default=1, help="devices per replica (default 1)")
    p.add_argument("--pipeline-parallel", type=_positive(int, 64), default=1, help="nodes per replica (default 1)")
    p.add_argument("--percentile", type=int, default=95, choices=[50, 95],
                   help="the latency percentile to read (the run's --metric-percentiles; default 95)")
    return p


def profile_main(argv: Sequence[str]) -> int:
    """``genai-scale capacity profile``: exit 2 with every problem of the files or arguments."""
    import yaml

    from components.capacity.measured import profile_from_vllm_bench, read_results, to_config
    from components.catalog import accelerators, models
    from problems import ProblemsError, did_you_mean

    args = _profile_parser().parse_args(list(argv))
    known = sorted({s.accelerator for s in accelerators.CATALOG.values()})
    if args.accelerator not in known:
        print(f"genai-scale capacity profile: --accelerator {args.accelerator!r} is not one of "
              f"{', '.join(known)}{did_you_mean(args.accelerator, known)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        results = read_results(args.files)
        model = next((d.get("model_id") for _, d in results if d.get("model_id")), None)
        params = args.params_billion
        if params is None:
            row = models.lookup(str(model)) if model else None
            if row is None:
                print(f"genai-scale capacity profile: model {model!r} is not in the model catalogue: give "
                      "--params-billion", file=sys.stderr)
                return EXIT_CONFIG
            params = row.parameters_billion
        profile = profile_from_vllm_bench(results, accelerator=args.accelerator, params_billion=params,
                                          precision=args.precision, tensor_parallel=args.tensor_parallel,
                                          pipeline_parallel=args.pipeline_parallel, percentile=args.percentile)
    except ProblemsError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.write("# add under genai-scale:capacity.profiles in the stack file (docs/capacity.md)\n")
    sys.stdout.write(yaml.safe_dump([to_config(profile)], sort_keys=False))
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    if list(argv[:1]) == ["profile"]:
        return profile_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(list(argv))
    from infra.targets import unknown_stack
    from problems import ProblemsError

    if args.program is not None:
        return _program(args)
    if args.config_file is None and (message := unknown_stack(args.stack)) is not None:
        print(message, file=sys.stderr)
        return EXIT_CONFIG
    from infra.config import load
    from infra.sections.capacity import plan

    try:
        stack, _raw, cfg = load(stack=args.stack, config_file=args.config_file)
        result = plan(cfg)
        comparison = compare_models(cfg, result)
    except ProblemsError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    doc = to_json(result, stack=stack, tier=cfg.tier, region=cfg.region, comparison=comparison)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(doc))
    return EXIT_MANDATORY if result.mandatory else EXIT_OK


# --- where to run each model ----------------------------------------------------------------------------------------

MAX_BATCH_SHARE = 0.99
"""The batch share of a model's volume is capped here, so the online demand the comparison is given stays finite."""


def compare_models(cfg, result) -> dict[str, list[Any]]:
    """The where-to-run table of every model a vLLM service or SageMaker endpoint serves, at that target's demand.
    A model with a Bedrock on-demand equivalent (the same weights, :data:`components.catalog.bedrock_models.
    HF_TO_BEDROCK`) that the target's Region can call and that has a token price there gets a Bedrock row."""
    from components.capacity.compare import compare
    from components.catalog import bedrock_models, prices

    out: dict[str, list[Any]] = {}
    batch = next((r for r in result.reports if r.target.kind == "batch" and r.demand is not None), None)
    for r in result.reports:
        t = r.target
        if t.kind not in ("vllm", "sagemaker") or r.demand is None or t.params_billion is None or t.model in out:
            continue
        share, demand = 0.0, r.demand
        if batch is not None and batch.target.model == t.model and batch.demand.batch_requests_per_day:
            # the batch volume comes on top of this target's online demand: compare() carries (1 - share) of the
            # demand it is given online and the share in batch, so it is given the online demand grown to the total
            per_day = batch.demand.batch_requests_per_day
            online_per_day = (demand.peak_requests_per_second + demand.off_peak_requests_per_second) / 2 * 86_400
            share = min(per_day / (online_per_day + per_day), MAX_BATCH_SHARE)
            demand = demand.model_copy(update={
                "peak_requests_per_second": demand.peak_requests_per_second / (1 - share),
                "off_peak_requests_per_second": demand.off_peak_requests_per_second / (1 - share)})
        bedrock = bedrock_models.on_demand_for(t.model, t.region)
        if (bedrock, t.region) not in prices.TOKEN_PRICES:
            bedrock = None
        out[t.model] = list(compare(t.model, t.params_billion, demand, region=t.region, batch_share=share,
                                    bedrock_model=bedrock))
    return out


# --- output ---------------------------------------------------------------------------------------------------------

def to_json(result, *, stack: str, tier: str, region: str, comparison: dict[str, list[Any]]) -> dict[str, Any]:
    low, high, unknown = result.totals()
    targets = []
    for r in result.reports:
        doc = r.model_dump(mode="json", exclude={"profile"})
        doc["verdict"] = r.verdict
        doc["mandatory"] = r.mandatory
        doc["sloReachable"] = r.slo_reachable
        doc["profile"] = None if r.profile is None else {
            "model": r.profile.model, "accelerator": r.profile.accelerator, "precision": r.profile.precision,
            "tensorParallel": r.profile.tensor_parallel, "basis": r.profile.basis, "source": r.profile.source,
            "asOf": str(r.profile.as_of)}
        targets.append(doc)
    return {
        "stack": stack, "tier": tier, "region": region,
        "totals": {"usdPerHourAtMin": round(low, 2), "usdPerHourAtPeak": round(high, 2), "unpriced": unknown},
        "mandatory": result.mandatory,
        "targets": targets,
        "compare": {m: [o.model_dump(mode="json") for o in opts] for m, opts in comparison.items()},
        "preScale": {n: {"leadMinutes": result.lead_minutes.get(n),
                         "floors": [f.model_dump(mode="json") for f in fl]} for n, fl in result.floors.items()},
        "notes": [*result.notes, *result.group_notes],
    }


TOP = 8
"""Options the text report shows per model (``--json`` has them all)."""


def distinct(opts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first (cheapest) option per place and accelerator: g5.xlarge stands for the A10G sizes above it."""
    from components.catalog import accelerators

    seen: set[tuple[str, str]] = set()
    out = []
    for o in opts:
        itype = (o.get("instance_type") or "").removeprefix("ml.")
        spec = accelerators.lookup(itype) if itype else None
        key = (o["where"], spec.accelerator if spec else (o.get("model_id") or itype))
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def _num(x: Any) -> str:
    return "-" if x is None else str(x)


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The one-screen summary the plan prints: $/h per target at min and at peak, the verdicts, the totals."""
    rows = []
    for t in doc["targets"]:
        spec = t["target"]
        rows.append((spec["name"], spec["kind"], spec.get("instance_type") or spec["model"],
                     f"{_num(spec['min_replicas'])}/{_num(t['replicas_at_peak'])}/{_num(spec['max_replicas'])}",
                     _usd(t["usd_per_hour_at_min"]), _usd(t["usd_per_hour_at_peak"]),
                     _usd(t["usd_per_million_output_tokens"]), t["verdict"] + (" (mandatory)" if t["mandatory"] else "")))
    header = ("target", "kind", "on", "replicas min/peak/max", "$/h at min", "$/h at peak", "$/1M out at peak",
              "verdict")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    tot = doc["totals"]
    lines.append(f"  total: {_usd(tot['usdPerHourAtMin'])}/h at min, {_usd(tot['usdPerHourAtPeak'])}/h at peak"
                 + (f" (not priced: {', '.join(tot['unpriced'])})" if tot["unpriced"] else "")
                 + "; serving capacity only (the cluster, system nodes, NAT, cache and ALB come on top)")
    return lines


def render(doc: dict[str, Any]) -> str:
    lines = [f"genai-scale capacity: stack {doc['stack']} (tier {doc['tier']}, region {doc['region']})", ""]
    lines += summary_lines(doc)
    for t in doc["targets"]:
        findings = [f for f in t["findings"] if f["verdict"] != "fine"]
        if not findings and not t["notes"]:
            continue
        lines += ["", f"{t['target']['name']}: {t['verdict']}"]
        for f in findings:
            lines.append(f"  - {f['verdict']} [{f['rule']}{', mandatory' if f['mandatory'] else ''}]: {f['number']}")
            if f["advice"]:
                lines.append(f"    change: {f['advice']}")
        lines += [f"  note: {n}" for n in t["notes"]]
    if doc["preScale"]:
        lines += ["", "Pre-scaling (KEDA cron floors, opened ahead of each rise)"]
        for name, p in doc["preScale"].items():
            if not p["floors"]:
                lines.append(f"  {name}: no floor above minReplicas (the traffic never needs more)")
                continue
            lines.append(f"  {name}: each window opens {p['leadMinutes']} min before the hour its replicas are needed")
            lines += [f"    {f['start']} -> {f['end']} ({f['timezone']}): at least {f['desired_replicas']} "
                      f"replica{'s' if f['desired_replicas'] != 1 else ''}" for f in p["floors"]]
    for model, opts in doc["compare"].items():
        if not opts:
            lines += ["", f"Where to run {model}: no single node of a catalogued type holds it (multi-node layouts "
                          "are planned per target above), and no Bedrock model serves it"]
            continue
        shown = distinct(opts)
        instances = [o for o in shown if o["where"] in ("vllm", "sagemaker")]
        others = [o for o in shown if o["where"] not in ("vllm", "sagemaker")]
        listed = instances[:TOP] + others
        listed.sort(key=lambda o: shown.index(o))
        lines += ["", f"Where to run {model} (the cheapest size per accelerator; where the SLO holds, cheapest per "
                      "month first; $/1M output tokens at peak)"]
        for o in listed:
            where = o["where"] + (f" {o['instance_type']}" if o.get("instance_type") else "") + (
                f" {o['model_id']}" if o.get("model_id") else "")
            slo = {True: "SLO holds", False: "SLO missed", None: "SLO unknown"}[o["slo_holds"]]
            lines.append(f"  {where}: {_usd(o['usd_per_hour'])}/h at peak, {_usd(o['usd_per_month'])}/month, "
                         f"{_usd(o['usd_per_million_output_tokens'])}/1M output tokens, {slo}"
                         + (f" ({o['note']})" if o.get("note") else ""))
        if len(shown) > len(listed):
            lines.append(f"  ... {len(shown) - len(listed)} more (--json lists every option)")
    if doc["notes"]:
        lines += ["", "Notes"] + [f"  - {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


# --- your own program -----------------------------------------------------------------------------------------------

def program_facts(result) -> list[dict[str, Any]]:
    """The capacity facts of every ScaledObject of a planned program, with its replica bounds."""
    from components.serving.vllm.manifests import CAPACITY_ANNOTATION as FACTS_ANNOTATION

    out = []
    for r in result.resources:
        if r.type != "kubernetes:keda.sh/v1alpha1:ScaledObject":
            continue
        meta = (r.inputs or {}).get("metadata") or {}
        raw = (meta.get("annotations") or {}).get(FACTS_ANNOTATION)
        if not raw:
            continue
        try:
            facts = json.loads(raw)
        except ValueError:
            facts = {"target": meta.get("name"), "error": f"{FACTS_ANNOTATION} is not JSON"}
        spec = (r.inputs or {}).get("spec") or {}
        out.append({**facts, "minReplicas": spec.get("minReplicaCount"), "maxReplicas": spec.get("maxReplicaCount")})
    return out


def g(v: Any) -> str:
    """A fact as printed: numbers without trailing zeros, anything else as it is."""
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _program(args: argparse.Namespace) -> int:
    from components.capacity.facts import judge
    from infra.targets import plan_target
    from infra.user_program import ProgramFailed
    from problems import ProblemsError

    try:
        result, _facts = plan_target(args)
    except ProblemsError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    except ProgramFailed as err:
        print(f"genai-scale capacity: the program failed: {err}", file=sys.stderr)
        return EXIT_MANDATORY
    rows = []
    for f in program_facts(result):
        rows.append({**f, "findings": [x.model_dump(mode="json") for x in judge(f)]})
    if args.json:
        json.dump({"program": args.program, "targets": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    lines = [f"genai-scale capacity: program {args.program}", ""]
    if not rows:
        lines.append("  no vLLM service states its demand (VllmServiceArgs.capacity); nothing to judge")
    for row in rows:
        lines.append(f"{row.get('target')}: replicas {g(row.get('minReplicas'))}-{g(row.get('maxReplicas'))}, "
                     f"peak {g(row.get('peakRps'))} req/s, {g(row.get('replicaRps'))} req/s per replica")
        for x in row["findings"]:
            lines.append(f"  - {x['verdict']} [{x['rule']}]: {x['number']}" + (
                f"; change: {x['advice']}" if x["advice"] else ""))
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK
