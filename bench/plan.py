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
    return 0


if __name__ == "__main__":
    sys.exit(main())
