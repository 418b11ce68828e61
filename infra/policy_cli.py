"""`genai-scale policy [--stack NAME | --config-file PATH] [--policy-config PATH] [--json]`.

Builds the offline plan exactly as `genai-scale plan` does, then runs every policy of the CrossGuard pack
(``policies/``) over every recorded resource and the whole stack, with the pack config of the stack's tier, built from
the tier's facts (``stacks/tiers/<tier>/tier.yaml``, :func:`infra.tiers.pack_config_for`): the config
``policies/config/<tier>.json`` holds for a shipped tier, and the same for a tier folder that has no file yet.
Optionally overridden by ``--policy-config``, a file in the format of ``pulumi preview --policy-pack-config``.

Exit codes: 0 no mandatory violation (advisory ones are printed), 1 at least one mandatory violation,
2 bad stack config, bad policy config or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genai-scale policy",
        description="Run the genai-scale CrossGuard policy pack offline against a stack's plan.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stack", help="stack name: reads stacks/Pulumi.<stack>.yaml (default: dev)")
    g.add_argument("--config-file", help="check any stack config file")
    p.add_argument("--policy-config", metavar="PATH",
                   help="policy-pack config JSON merged over the tier's defaults (same format as "
                        "`pulumi preview --policy-pack-config`)")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"stack", "violations": [{"policy", "level", "urn", "message"}], '
                        '"policies_run", "resources_checked"}')
    return p


class _ArgParseExit(Exception):
    def __init__(self, code: int):
        self.code = code


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _parser()

    def _error(message: str) -> None:  # argparse exits 2 on bad arguments; keep that, without SystemExit
        parser.print_usage(sys.stderr)
        print(f"genai-scale policy: error: {message}", file=sys.stderr)
        raise _ArgParseExit(EXIT_CONFIG)

    parser.error = _error  # type: ignore[method-assign]
    return parser.parse_args(list(argv))


def _read_policy_config(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read policy config ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of policy name -> level or settings")
    return data


def main(argv: Sequence[str]) -> int:
    try:
        args = _parse(argv)
    except _ArgParseExit as e:
        return e.code
    except SystemExit as e:  # --help
        return int(e.code or 0)

    from infra.config import ConfigError
    from infra.program import plan_stack
    from problems import ProblemsError
    from infra.tiers import TierError, pack_config_for
    from policies.engine import PolicyConfigError, evaluate, validate_config
    from policies.pack import pack_config

    try:
        overrides = _read_policy_config(args.policy_config) if args.policy_config else None
        validate_config(pack_config(None, overrides=overrides))  # fail fast, before planning
    except (ValueError, PolicyConfigError) as err:
        where = f"{args.policy_config}: " if isinstance(err, PolicyConfigError) else ""
        print(where + str(err), file=sys.stderr)
        return EXIT_CONFIG
    try:
        plan, settings = plan_stack(stack=args.stack, config_file=args.config_file)
    except (ConfigError, TierError, ProblemsError) as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    try:
        config = pack_config_for(settings.tier, overrides=overrides)
    except TierError as err:
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = evaluate(plan.resources, config=config)
    except PolicyConfigError as err:
        where = f"{args.policy_config}: " if args.policy_config else ""
        print(where + str(err), file=sys.stderr)
        return EXIT_CONFIG

    if args.json:
        json.dump(report.to_json(plan.stack), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(report, stack=plan.stack, tier=settings.tier))
    return EXIT_VIOLATIONS if report.mandatory else EXIT_OK


def render(report, *, stack: str, tier: str) -> str:
    """Violations grouped by resource: rule, severity, level, message and remediation; then a summary line."""
    lines = [f"genai-scale policy: stack {stack} (tier {tier})", ""]
    groups: dict[str, list] = {}
    for v in report.violations:
        groups.setdefault(v.urn, []).append(v)
    if not groups:
        lines.append("No policy violations.")
    for urn, vs in sorted(groups.items(), key=lambda kv: (not any(v.level == "mandatory" for v in kv[1]), kv[0])):
        head = vs[0]
        lines.append(f"{head.resource_name} [{head.resource_type}]" if urn else "stack")
        if urn:
            lines.append(f"  {urn}")
        for v in sorted(vs, key=lambda v: (v.level != "mandatory", v.policy)):
            lines.append(f"  [{v.level}] {v.policy} ({v.severity}): {v.message}")
            lines.append(f"      fix: {v.remediation}")
        lines.append("")
    n_m, n_a = len(report.mandatory), len(report.advisory)
    lines.append(f"{report.policies_run} policies, {report.resources_checked} resources: "
                 f"{n_m} mandatory, {n_a} advisory violation{'s' if n_a != 1 else ''}"
                 + (" -- FAILED" if n_m else ""))
    if report.unknowns:
        lines.append(f"{len(report.unknowns)} check(s) could not run on values known only after apply")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
