"""`genai-scale`: the offline plan, the policy report, the serving gateway and batch operations.

    genai-scale plan [--stack dev|staging|prod | --config-file PATH] [--json]
    genai-scale plan --program DIR [--stack NAME] [--config-file PATH] [--json]
    genai-scale policy [--stack NAME | --config-file PATH] [--json]
    genai-scale policy --program DIR [--tier TIER] [--stack NAME] [--config-file PATH] [--json]
    genai-scale gateway serve|check|hash-key|stub ...
    genai-scale batch submit|status|cancel|results ...
    genai-scale capacity [--stack NAME | --config-file PATH | --program DIR] [--json]
    genai-scale prices refresh [--region R] [--instance-types T ...] [--days N] [--dry-run]
    genai-scale pools recommend [--workload NAME] [--json]
    genai-scale --version

`--program DIR` plans your own Pulumi program (a folder with Pulumi.yaml and __main__.py, such as examples/gpu-vllm)
instead of this repository's infra/ program; `--stack` and `--config-file` then name that program's stack and its
stack file. `genai-scale <command> --help` describes each command.

Exit codes: 0 ok, 1 mandatory policy violations (policy), a mandatory capacity finding (capacity), an AWS error
(prices refresh) or an error raised by your program (--program), 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any, Sequence

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2
EXIT_PROGRAM = 1
"""``--program``: the program raised an error that is not a problem list (the message names its file and line)."""


def _plan_parser(prog: str = "genai-scale plan") -> argparse.ArgumentParser:
    from infra.targets import add_target_arguments

    p = argparse.ArgumentParser(prog=prog, description="Run a Pulumi program offline under mocks and show every "
                                "resource it would create, with its inputs: this repository's infra/ program for a "
                                "stack (--stack, --config-file), or your own program (--program DIR).")
    add_target_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (stack, tier, resources, outputs, notes); tier is null "
                   "for --program")
    return p


def plan_main(argv: Sequence[str]) -> int:
    parser = _plan_parser()
    args = parser.parse_args(list(argv))
    from infra.targets import plan_target, target_error, unknown_stack
    from infra.user_program import ProgramFailed
    from problems import ProblemsError

    if (message := target_error(args)) is not None:
        parser.error(message)
    if args.program is None and args.config_file is None and (message := unknown_stack(args.stack)) is not None:
        print(message, file=sys.stderr)
        return EXIT_CONFIG
    try:
        result, facts = plan_target(args)
    except ProblemsError as err:  # bad config, or a component's args rejected while building (ConfigError, ArgsError)
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    except ProgramFailed as err:
        print(f"genai-scale plan: the program failed: {err}", file=sys.stderr)
        return EXIT_PROGRAM
    capacity = capacity_summary(facts.get("cfg"), result.stack)
    if args.json:
        doc = result.to_json(tier=facts["tier"])
        if capacity is not None:
            doc["capacity"] = capacity
        json.dump(doc, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        text = render_plan(result, title=facts["title"])
        if capacity is not None:
            from infra.capacity_cli import summary_lines
            text += "\n".join(["", f"Capacity and cost (genai-scale capacity --stack {result.stack} for the "
                                    "findings, pre-scaling and where to run each model)", *summary_lines(capacity)]) + "\n"
        sys.stdout.write(text)
    return EXIT_OK


def capacity_summary(cfg: Any, stack: str) -> dict[str, Any] | None:
    """The capacity report of a planned stack (``genai-scale capacity``'s JSON without the comparison); None for a
    program."""
    if cfg is None:
        return None
    from infra.capacity_cli import to_json
    from infra.sections.capacity import plan

    return to_json(plan(cfg), stack=stack, tier=cfg.tier, region=cfg.region, comparison={})


# --- the human plan ---

SYMBOLS = {"component": "■", "resource": "●", "provider": "◆", "branch": "├─ ", "last": "└─ ", "pipe": "│  ",
           "space": "   "}
ASCII_SYMBOLS = {"component": "#", "resource": "*", "provider": "@", "branch": "|- ", "last": "`- ", "pipe": "|  ",
                 "space": "   "}
"""For a terminal that cannot print the box-drawing characters. Neither set uses Pulumi's ``+``/``-``/``~``, which
mean create/delete/update in ``pulumi preview``."""

OUTPUT_WIDTH = 100
"""A map or list output longer than this (as JSON) is printed as indented JSON on the lines below its name, in full
(a long string stays on its line, whole)."""


def symbols_for(encoding: str | None) -> dict[str, str]:
    try:
        "".join(SYMBOLS.values()).encode(encoding or "utf-8")
    except (LookupError, UnicodeEncodeError):
        return ASCII_SYMBOLS
    return SYMBOLS


def _kind(r) -> str:
    if r.type.startswith("pulumi:providers:"):
        return "provider"
    return "resource" if r.custom else "component"


def count_summary(resources: Sequence[Any]) -> str:
    """``166 resources: 14 components, 151 cloud and Kubernetes resources, 1 provider``, the count the policy
    report refers to."""
    kinds = [_kind(r) for r in resources]
    n_c, n_p = kinds.count("component"), kinds.count("provider")
    return (f"{len(kinds)} resources: {n_c} component{'s' if n_c != 1 else ''}, {kinds.count('resource')} cloud and "
            f"Kubernetes resources, {n_p} provider{'s' if n_p != 1 else ''}")


def node_group_rows(result) -> list[tuple[str, ...]]:
    """One row per EKS managed node group in the plan (the cluster's system group and the accelerator groups): name,
    instance types, accelerator, AMI type, capacity type, min, max. Read from the recorded resources, so a user's own
    program gets the table too."""
    from components.catalog.accelerators import lookup
    from infra.plan import jsonable

    # a group whose instance type sits in its launch template (capacity blocks) names none itself
    template_types = {lt.id: lt.get("instanceType") for lt in result.by_type("aws:ec2/launchTemplate:LaunchTemplate")}
    rows = []
    for r in result.by_type("aws:eks/nodeGroup:NodeGroup"):
        name = (r.get("labels") or {}).get("genai-scale/node-group") or r.name
        types = [t for t in (r.get("instanceTypes") or []) if isinstance(t, str)]
        if not types and isinstance(template_types.get(r.get("launchTemplate.id")), str):
            types = [template_types[r.get("launchTemplate.id")]]
        specs = [lookup(t) for t in types]
        accel = ", ".join(f"{s.accelerator} x{s.count}" for s in specs if s is not None) or "none (CPU)"
        scaling = jsonable(r.get("scalingConfig") or {})
        rows.append((name, ", ".join(types) or "-", accel, str(r.get("amiType") or "-"),
                     str(r.get("capacityType") or "ON_DEMAND"), str(scaling.get("minSize", "-")),
                     str(scaling.get("maxSize", "-"))))
    return sorted(rows, key=lambda row: (row[2] != "none (CPU)", row[0]))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]


def render_output(name: str, value: Any, *, secret: bool) -> list[str]:
    """One stack output, never cut: a short value on its line, a long one as indented JSON below its name."""
    from infra.plan import jsonable

    if secret:
        return [f"  {name}: [secret]"]
    shown = json.dumps(jsonable(value))
    if len(shown) <= OUTPUT_WIDTH or not isinstance(jsonable(value), (dict, list)):
        return [f"  {name}: {shown}"]
    return [f"  {name}:", textwrap.indent(json.dumps(jsonable(value), indent=2), "    ")]


POOLS_OUTPUT = "modelPools"
"""The stack output the serving section exports for its model pools (``infra.sections.serving.pool_summary``)."""


def pool_lines(pools: Any) -> list[str]:
    """The plan's "Model pools" part: each pool with its policy, node group, replicas, models and adapters, the
    policy the decision matrix recommends for its workload with the reason, and a warning when the two differ."""
    if not isinstance(pools, dict) or not pools:
        return []
    lines = ["", "Model pools"]
    for name, p in pools.items():
        lines.append(f"  {name}: policy {p.get('policy')} on node group {p.get('nodeGroup')}, replicas "
                     f"{p.get('minReplicas')}-{p.get('maxReplicas')}")
        for model, m in (p.get("models") or {}).items():
            adapters = m.get("adapters") or []
            lines.append(f"    {model}: {m.get('modelId')}"
                         + (f"; adapters: {', '.join(adapters)}" if adapters else ""))
        rec = p.get("recommendation")
        if rec:
            lines.append(f"    recommended for workload {p.get('workload')}: {rec.get('policy')}")
            lines += textwrap.wrap(rec.get("reason") or "", 110, initial_indent="      ", subsequent_indent="      ")
        else:
            lines.append("    no workload given: set workload to compare the policy with the recommendation "
                         "(genai-scale pools recommend)")
        if p.get("warning"):
            lines.append(f"    warning: {p['warning']}")
    return lines


def render_plan(result, cfg=None, *, title: str | None = None, encoding: str | None = None) -> str:
    """Human plan: legend, component tree, counts per type, node groups, stack outputs (in full)."""
    sym = symbols_for(encoding if encoding is not None else getattr(sys.stdout, "encoding", None))
    if title is None:
        title = f"genai-scale plan: stack {result.stack} (tier {cfg.tier}, region {cfg.region})"
    lines = [title, "",
             f"Legend: {sym['component']} component (groups the resources indented below it)  "
             f"{sym['resource']} resource  {sym['provider']} provider. Everything listed would be created.", ""]
    by_parent: dict[str | None, list] = {}
    for r in result.resources:
        by_parent.setdefault(r.parent, []).append(r)

    def walk(parent: str | None, prefix: str) -> None:
        kids = by_parent.get(parent, [])
        for i, r in enumerate(kids):
            grandkids = by_parent.get(r.urn, [])
            last = i == len(kids) - 1
            branch = "" if parent is None else (sym["last"] if last else sym["branch"])
            lines.append(f"  {prefix}{branch}{sym[_kind(r)]} {r.name}  [{r.type}]"
                         + (f"  ({len(grandkids)} children)" if grandkids else ""))
            walk(r.urn, "" if parent is None else prefix + (sym["space"] if last else sym["pipe"]))

    lines.append("Resources")
    walk(None, "")
    counts = result.type_counts()
    lines += ["", f"Counts per type ({count_summary(result.resources)})"]
    width = max(len(t) for t in counts) if counts else 0
    lines += [f"  {t.ljust(width)}  {n}" for t, n in counts.items()]
    rows = node_group_rows(result)
    if rows:
        lines += ["", "Node groups"]
        lines += _table(("name", "instance type", "accelerator", "AMI type", "capacity", "min", "max"), rows)
    lines += pool_lines(result.outputs.get(POOLS_OUTPUT))
    lines += ["", "Outputs"]
    for k, v in result.outputs.items():
        lines += render_output(k, v, secret=k in result.secret_outputs)
    if getattr(result, "notes", None):  # what the resources do not show (BuildContext.note), one line each
        lines += ["", "Notes"] + [f"  - {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"plan": plan_main, "policy": _policy, "capacity": _capacity, "prices": _prices, "gateway": _gateway,
                "batch": _batch, "pools": pools_main}
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return EXIT_OK if argv else EXIT_CONFIG
    if argv[0] == "--version":
        print(f"genai-scale {version()}")
        return EXIT_OK
    cmd, rest = argv[0], argv[1:]
    if cmd not in commands:
        from problems import did_you_mean

        print(f"genai-scale: unknown command {cmd!r}{did_you_mean(cmd, commands)}; "
              f"expected one of: {', '.join(commands)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return commands[cmd](rest)
    except SystemExit as exc:  # argparse errors exit 2 with a usage message
        return int(exc.code) if isinstance(exc.code, int) else EXIT_CONFIG


def version() -> str:
    """The installed package's version (pyproject.toml's ``version``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("genai-scale")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed: pip install -e .)"


def _policy(argv: Sequence[str]) -> int:
    from infra import policy_cli

    return policy_cli.main(list(argv))


def _capacity(argv: Sequence[str]) -> int:
    from infra import capacity_cli

    return capacity_cli.main(list(argv))


def _prices(argv: Sequence[str]) -> int:
    """``genai-scale prices refresh ...``: the price catalogue from the AWS Price List API and spot price history."""
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: genai-scale prices refresh [options]   (genai-scale prices refresh --help)")
        return EXIT_OK if argv else EXIT_CONFIG
    if argv[0] != "refresh":
        print(f"genai-scale prices: unknown command {argv[0]!r}; expected: refresh", file=sys.stderr)
        return EXIT_CONFIG
    from components.catalog import price_refresh

    return price_refresh.main(argv[1:])


def _gateway(argv: Sequence[str]) -> int:
    from serving.gateway import cli as gateway_cli

    return gateway_cli.main(list(argv))


def _batch(argv: Sequence[str]) -> int:
    from serving.batch import cli as batch_cli

    return batch_cli.main(list(argv))


def _pools_parser() -> argparse.ArgumentParser:
    from components.serving.pools.strategy import WORKLOADS

    p = argparse.ArgumentParser(prog="genai-scale pools", description="Model pools: which GPU allocation policy "
                                "(serving.pools.<pool>.policy) seed 003's decision matrix recommends for a workload.")
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recommend", help="the recommended policy and the reason, for one workload or all",
                         description="Print the decision-matrix row (policy and reason) of one workload, or of all.")
    rec.add_argument("--workload", help=f"one of: {', '.join(WORKLOADS)} (default: all)")
    rec.add_argument("--json", action="store_true", help="print a JSON list of {workload, policy, reason}")
    return p


def pools_main(argv: Sequence[str]) -> int:
    """``genai-scale pools recommend``: exit 2 with the valid names for an unknown workload."""
    from components.serving.pools.strategy import WORKLOADS, recommend
    from problems import did_you_mean

    args = _pools_parser().parse_args(list(argv))
    if args.workload is not None and args.workload not in WORKLOADS:
        print(f"genai-scale pools recommend: unknown workload {args.workload!r}"
              f"{did_you_mean(args.workload, WORKLOADS)}; expected one of: {', '.join(WORKLOADS)}", file=sys.stderr)
        return EXIT_CONFIG
    rows = [recommend(w) for w in ([args.workload] if args.workload else WORKLOADS)]
    if args.json:
        json.dump([{"workload": r.workload, "policy": r.policy, "reason": r.reason} for r in rows], sys.stdout,
                  indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for r in rows:
        print(f"{r.workload}: {r.policy}")
        print(textwrap.indent(textwrap.fill(r.reason, 100), "  "))
    return EXIT_OK


def _plain_config_warnings() -> None:
    """Print a deprecated-key warning as one line (``warning: ...``), without Python's source-line decoration."""
    import warnings

    from infra.config import ConfigWarning

    default = warnings.formatwarning

    def fmt(message, category, filename, lineno, line=None):  # noqa: ANN001 - warnings' own signature
        if issubclass(category, ConfigWarning):
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = fmt


def run() -> Any:  # pragma: no cover - console script shim
    _plain_config_warnings()
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
