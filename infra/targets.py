"""What `genai-scale plan` and `genai-scale policy` run: a shipped stack (``--stack``, ``--config-file``) or your own
Pulumi program (``--program DIR``). The arguments both commands share and the planning behind them."""

from __future__ import annotations

import argparse
from typing import Any

STACK_HELP = ("stack name. Without --program: plans stacks/Pulumi.<NAME>.yaml of this repository (default: dev); "
              "with --config-file, the name that file is planned under (default: the file name's <NAME> in "
              "Pulumi.<NAME>.yaml). "
              "With --program: the stack the program runs as (pulumi.get_stack(), in every URN; default: dev), "
              "with DIR/Pulumi.<NAME>.yaml as its config when that file exists")
CONFIG_FILE_HELP = ("a Pulumi stack file (config: {project:key: value}). Without --program: any genai-scale stack "
                    "file (planned under --stack if given, else the <NAME> of its Pulumi.<NAME>.yaml file name). With --program: the program's config (read with pulumi.Config())")
PROGRAM_HELP = ("plan your own Pulumi program instead of this repository's infra/: a folder with Pulumi.yaml "
                "(runtime: python) and __main__.py, e.g. examples/gpu-vllm")


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """--stack / --config-file / --program, shared by `plan` and `policy`."""
    p.add_argument("--stack", metavar="NAME", help=STACK_HELP)
    p.add_argument("--config-file", metavar="PATH", help=CONFIG_FILE_HELP)
    p.add_argument("--program", metavar="DIR", help=PROGRAM_HELP)


def target_error(args: argparse.Namespace) -> str | None:
    """The argparse error for a combination of targets that cannot be planned (none today: ``--stack`` with
    ``--config-file`` plans that file under that stack name)."""
    return None


def unknown_stack(stack: str | None) -> str | None:
    """The problem list for a --stack that has no stacks/Pulumi.<stack>.yaml, naming the stacks that exist."""
    from infra.config import STACKS_DIR
    from problems import Problem, did_you_mean, render

    if stack is None or (STACKS_DIR / f"Pulumi.{stack}.yaml").is_file():
        return None
    known = sorted(f.name[len("Pulumi."):-len(".yaml")] for f in STACKS_DIR.glob("Pulumi.*.yaml"))
    expected = (f"one of {', '.join(known)} (stacks/Pulumi.<stack>.yaml){did_you_mean(stack, known)}; "
                "or plan any stack file with --config-file PATH")
    return render([Problem("--stack", stack, expected)], title=f"unknown stack {stack!r}")


def plan_target(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """Plan what the arguments name. Returns (PlanResult, {"title": plan header, "tier": the stack's tier or None for
    a program, "program": bool}).
    Raises ConfigError/ProblemsError (exit 2) or ProgramFailed (exit 1)."""
    if args.program is not None:
        from infra.user_program import plan_program

        result, project, cfg = plan_program(args.program, stack=args.stack, config_file=args.config_file)
        title = (f"genai-scale plan: program {args.program} (project {project.name}, stack {cfg.stack}, "
                 f"region {cfg.region})")
        return result, {"title": title, "tier": None, "program": True}
    from infra.program import plan_stack

    result, cfg = plan_stack(stack=args.stack, config_file=args.config_file)
    title = f"genai-scale plan: stack {result.stack} (tier {cfg.tier}, region {cfg.region})"
    return result, {"title": title, "tier": cfg.tier, "program": False, "cfg": cfg}


