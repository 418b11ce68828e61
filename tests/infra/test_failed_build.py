"""A build that fails after handing out deferred Outputs (values a later section creates) ends with its own error:
the pending Outputs are resolved as unknown, so the engine does not wait on them forever."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.kit import ROOT

SCRIPT = textwrap.dedent('''
    import pulumi, pulumi_aws as aws
    from infra.plan import run_program
    from infra.sections.base import BuildContext

    def program():
        ctx = BuildContext(stack="dev", tier="prototype", region="us-east-1", tags={})
        value, resolve = ctx.deferred()
        aws.s3.BucketV2("uses-a-later-value", bucket=value.apply(lambda v: f"b-{v}"))
        try:
            raise ValueError("the gateway section failed")
        except BaseException:
            {abandon}
            raise

    try:
        run_program(program, project="genai-scale", stack="dev", config={})
    except Exception as exc:
        print("ERROR:", exc)
''')


def run(abandon: bool, timeout: float = 120) -> subprocess.CompletedProcess:
    code = SCRIPT.replace("{abandon}", "ctx.abandon_deferred()" if abandon else "pass")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_failed_build_reports_its_error_instead_of_waiting_on_deferred_outputs():
    r = run(abandon=True)
    assert "the gateway section failed" in r.stdout + r.stderr, r.stderr[-2000:]


def test_without_abandoning_them_the_engine_waits_forever():
    try:
        r = run(abandon=False, timeout=8)  # the run with abandon takes about 2 s
    except subprocess.TimeoutExpired:
        return
    raise AssertionError(f"expected a hang, got: {r.stdout[-500:]} {r.stderr[-500:]}")


def test_build_stack_abandons_pending_deferreds_on_a_failed_section():
    src = (ROOT / "infra" / "program.py").read_text()
    assert "ctx.abandon_deferred()" in src
