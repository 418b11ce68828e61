"""`genai-scale policy [--stack NAME | --config-file PATH | --program DIR [--tier TIER]] [--policy-config PATH] [--json]`.

Builds the offline plan exactly as `genai-scale plan` does (of a shipped stack, or of your own program with
``--program DIR``), then runs every policy of the CrossGuard pack
(``policies/``) over every recorded resource and the whole stack, with the pack config of the stack's tier, built from
the tier's facts (``stacks/tiers/<tier>/tier.yaml``, :func:`infra.tiers.pack_config_for`): the config
``policies/config/<tier>.json`` holds for a shipped tier, and the same for a tier folder that has no file yet.
Optionally overridden by ``--policy-config``, a file in the format of ``pulumi preview --policy-pack-config``.

A program (``--program``) has no ``genai-scale:tier``: the pack runs with the config of the tier ``--tier`` names
(default: prototype, the tier with the fewest rights; the security, reliability and GPU rules are mandatory in every
tier).

The summary counts the resources the pack judged: every resource of the plan but its providers (a provider is
configuration, no policy judges it), and says so when the two counts differ.

Exit codes: 0 no mandatory violation (advisory ones are printed), 1 at least one mandatory violation (or, with
``--program``, an error raised by the program), 2 bad stack config, bad policy config or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2
EXIT_PROGRAM = 1
"""``--program``: the program raised an error that is not a problem list (as ``genai-scale plan``)."""
DEFAULT_PROGRAM_TIER = "prototype"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genai-scale policy",
        description="Run the genai-scale CrossGuard policy pack offline against a stack's plan.")
    from infra.targets import add_target_arguments

    add_target_arguments(p)
    p.add_argument("--tier", metavar="TIER", help=f"with --program: the tier whose pack config applies (a folder "
                   f"under stacks/tiers/; default: {DEFAULT_PROGRAM_TIER}). A stack's tier is its genai-scale:tier")
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
    from infra.targets import target_error

    args = parser.parse_args(list(argv))
    if (message := target_error(args)) is not None:
        parser.error(message)
    if args.tier is not None and args.program is None:
        parser.error("argument --tier: only with --program (a stack's tier is genai-scale:tier in its stack file)")
    return args


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

    from infra.targets import plan_target, unknown_stack
    from infra.tiers import TierError, pack_config_for, unknown_tier
    from infra.user_program import ProgramFailed
    from policies.engine import PolicyConfigError, evaluate, validate_config
    from policies.pack import pack_config
    from problems import Problem, ProblemsError, render as render_problems

    try:
        overrides = _read_policy_config(args.policy_config) if args.policy_config else None
        validate_config(pack_config(None, overrides=overrides))  # fail fast, before planning
    except (ValueError, PolicyConfigError) as err:
        where = f"{args.policy_config}: " if isinstance(err, PolicyConfigError) else ""
        print(where + str(err), file=sys.stderr)
        return EXIT_CONFIG
    if args.program is None and args.config_file is None and (message := unknown_stack(args.stack)) is not None:
        print(message, file=sys.stderr)
        return EXIT_CONFIG
    if args.program is not None and args.tier is not None and (bad := unknown_tier(args.tier)) is not None:
        print(render_problems([Problem("--tier", bad.value, bad.expected)], title=f"unknown tier {args.tier!r}"),
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        plan, facts = plan_target(args)
    except (TierError, ProblemsError) as err:  # ConfigError and ArgsError are ProblemsErrors
        print(str(err), file=sys.stderr)
        return EXIT_CONFIG
    except ProgramFailed as err:
        print(f"genai-scale policy: the program failed: {err}", file=sys.stderr)
        return EXIT_PROGRAM
    tier = facts["tier"] or args.tier or DEFAULT_PROGRAM_TIER
    try:
        config = pack_config_for(tier, overrides=overrides)
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
        program = f"program {args.program} (project {plan.project}), " if args.program is not None else ""
        sys.stdout.write(render(report, stack=plan.stack, tier=tier, program=program,
                                planned=len(plan.resources)))
    return EXIT_VIOLATIONS if report.mandatory else EXIT_OK


def render(report, *, stack: str, tier: str, program: str = "", planned: int | None = None) -> str:
    """Violations grouped by resource: rule, severity, level, message and remediation; then a summary line, and
    why the resource count differs from the plan's (``planned``) when it does."""
    lines = [f"genai-scale policy: {program}stack {stack} (tier {tier})", ""]
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
    if planned is not None and planned != report.resources_checked:
        skipped = planned - report.resources_checked
        lines.append(f"{report.resources_checked} of the plan's {planned} resources judged: {skipped} "
                     f"provider{'s are' if skipped != 1 else ' is'} configuration, not judged by any policy")
    if report.unknowns:
        lines.append(f"{len(report.unknowns)} check(s) could not run on values known only after apply")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
