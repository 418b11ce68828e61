"""`genai-scale`: the offline plan, the policy report and the serving gateway.

    genai-scale plan [--stack dev|staging|prod] [--config-file PATH] [--json]
    genai-scale policy [--stack NAME | --config-file PATH] [--json]
    genai-scale gateway serve --config FILE

Exit codes: 0 ok, 1 mandatory policy violations, 2 bad configuration or arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2


def _plan_parser(prog: str = "genai-scale plan") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run the Pulumi program offline under mocks and show every "
                                "resource it would create, with its inputs.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stack", help="stack name: reads stacks/Pulumi.<stack>.yaml (default: dev)")
    g.add_argument("--config-file", help="plan any stack config file")
    p.add_argument("--json", action="store_true", help="print one JSON object (stack, tier, resources, outputs)")
    return p


def plan_main(argv: Sequence[str]) -> int:
    args = _plan_parser().parse_args(list(argv))
    from infra.config import ConfigError
    from infra.program import plan_stack
    from problems import ProblemsError

    try:
        result, cfg = plan_stack(stack=args.stack, config_file=args.config_file)
    except (ConfigError, ProblemsError) as err:  # bad config, or a component's args rejected while building
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        json.dump(result.to_json(tier=cfg.tier), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_plan(result, cfg))
    return EXIT_OK


def render_plan(result, cfg) -> str:
    """Human plan: component tree, counts per type, node-group facts, stack outputs."""
    from infra.plan import jsonable

    lines = [f"genai-scale plan: stack {result.stack} (tier {cfg.tier}, region {cfg.region})", ""]
    by_parent: dict[str | None, list] = {}
    for r in result.resources:
        by_parent.setdefault(r.parent, []).append(r)

    def walk(parent: str | None, depth: int) -> None:
        for r in by_parent.get(parent, []):
            kids = by_parent.get(r.urn, [])
            marker = "+" if not r.custom else "-"
            lines.append(f"{'  ' * depth}{marker} {r.name}  [{r.type}]" + (f"  ({len(kids)} children)" if kids else ""))
            walk(r.urn, depth + 1)

    lines.append("Resources")
    walk(None, 1)
    counts = result.type_counts()
    lines += ["", f"Counts per type ({len(result.resources)} resources)"]
    width = max(len(t) for t in counts) if counts else 0
    lines += [f"  {t.ljust(width)}  {n}" for t, n in counts.items()]
    ngs = result.outputs.get("nodeGroups") or {}
    if ngs:
        lines += ["", "Accelerator node groups"]
        header = ("name", "instance type", "accelerator", "AMI type", "capacity", "min", "max")
        rows = [header] + [(n, g["instanceType"], f"{g['accelerator']} x{g['count']}", g["amiType"], g["capacityType"],
                            str(g["minSize"]), str(g["maxSize"])) for n, g in ngs.items()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    lines += ["", "Outputs"]
    for k, v in result.outputs.items():
        if k == "nodeGroups":
            continue
        shown = "[secret]" if k in result.secret_outputs else json.dumps(jsonable(v))
        lines.append(f"  {k}: {shown if len(shown) <= 160 else shown[:157] + '...'}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"plan": plan_main, "policy": _policy, "gateway": _gateway}
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return EXIT_OK if argv else EXIT_CONFIG
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


def _policy(argv: Sequence[str]) -> int:
    from infra import policy_cli

    return policy_cli.main(list(argv))


def _gateway(argv: Sequence[str]) -> int:
    from serving.gateway import cli as gateway_cli

    return gateway_cli.main(list(argv))


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
