"""Benchmark: wall time of the prod offline plan as a ratio to a bare `import pulumi_aws, pulumi_kubernetes`.

Both run as fresh processes in the same run (median of N, interleaved), so the ratio is comparable across machines.
Target: within 3x. Usage: python bench/plan.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = [sys.executable, "-c", "import pulumi_aws, pulumi_kubernetes"]
# The same plan twice in one process: the second run has every resource module loaded, so it isolates the program
# and mocks from the cost of loading pulumi_aws / pulumi_kubernetes resource classes (both SDKs import lazily).
BREAKDOWN = [sys.executable, "-c", (
    "import time; t0 = time.perf_counter(); from infra.program import plan_stack; t1 = time.perf_counter(); "
    "plan_stack(stack='prod'); t2 = time.perf_counter(); plan_stack(stack='prod'); t3 = time.perf_counter(); "
    "print(f'{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}')")]
PLAN = [sys.executable, "-m", "infra.cli", "plan", "--stack", "prod", "--json"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    n = ap.parse_args().runs
    timed(BASELINE), timed(PLAN)  # warm the page cache and .pyc files
    base, plan = [], []
    for _ in range(n):
        base.append(timed(BASELINE))
        plan.append(timed(PLAN))
    b, p = statistics.median(base), statistics.median(plan)
    print(f"baseline (import pulumi_aws, pulumi_kubernetes): median {b:.2f} s over {n} runs")
    print(f"prod plan (genai-scale plan --stack prod --json):  median {p:.2f} s over {n} runs")
    print(f"ratio plan/baseline: {p / b:.2f}x (target <= 3x)")
    out = subprocess.run(BREAKDOWN, cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    imp, first, second = (float(x) for x in out[-3:])
    print(f"in one process: import {imp:.2f} s, first prod plan {first:.2f} s (loads the resource modules), "
          f"second prod plan {second:.2f} s (program + mocks alone: {second / b:.2f}x the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
