"""Benchmark: wall time of the prod offline plan as a ratio to a bare `import pulumi_aws, pulumi_kubernetes`.

All commands run as fresh processes in the same run (median of N, interleaved), so the ratios compare across
machines. Target: within 3x of the bare import.

Both SDKs import lazily: `import pulumi_aws` loads almost nothing, and each resource module (ec2, eks, wafv2, ...)
loads when first used, which is most of a plan's cost. So the benchmark also reports a second baseline that loads
exactly the resource classes the prod plan uses, without creating anything: the plan's cost beyond it is the program,
the mocks and the recording. Usage: python bench/plan.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = [sys.executable, "-c", "import pulumi_aws, pulumi_kubernetes"]
PLAN = [sys.executable, "-m", "infra.cli", "plan", "--stack", "prod", "--json"]
PACKAGES = {"aws": "pulumi_aws", "kubernetes": "pulumi_kubernetes", "docker-build": "pulumi_docker_build",
            "random": "pulumi_random"}


def resource_classes(plan_json: dict) -> list[str]:
    """`module.Class` paths of every provider resource type in the plan (components excluded)."""
    out = set()
    for r in plan_json["resources"]:
        pkg, _, rest = r["type"].partition(":")
        if pkg not in PACKAGES:
            continue
        module, _, cls = rest.partition(":")
        if pkg == "kubernetes" and module == "helm.sh/v3":
            path = "helm.v3"
        elif pkg == "kubernetes" and "." in module.split("/")[0] and module.split("/")[0] not in ("storage.k8s.io",):
            path = "apiextensions"
            cls = "CustomResource"
        elif pkg == "kubernetes":
            group, version = module.split("/")
            path = f"{group.replace('.k8s.io', '')}.{version}"
        else:
            path = module.split("/")[0] if not module.startswith("index") else ""
        out.add(f"{PACKAGES[pkg]}{'.' + path if path else ''}:{cls}")
    return sorted(out)


def loader(classes: list[str]) -> list[str]:
    lines = ["import importlib"]
    for item in classes:
        mod, cls = item.split(":")
        lines.append(f"getattr(importlib.import_module({mod!r}), {cls!r})")
    return [sys.executable, "-c", "\n".join(lines)]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    n = ap.parse_args().runs
    plan_json = json.loads(subprocess.run(PLAN, cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    classes = resource_classes(plan_json)
    load = loader(classes)
    timed(BARE), timed(load)  # warm the page cache and .pyc files
    bare, loaded, plan = [], [], []
    for _ in range(n):
        bare.append(timed(BARE))
        loaded.append(timed(load))
        plan.append(timed(PLAN))
    b, lo, p = (statistics.median(x) for x in (bare, loaded, plan))
    print(f"prod plan: {len(plan_json['resources'])} resources of {len(classes)} provider resource types")
    print(f"baseline A, bare `import pulumi_aws, pulumi_kubernetes`:    median {b:.2f} s over {n} runs")
    print(f"baseline B, load the {len(classes)} resource classes the plan uses: median {lo:.2f} s")
    print(f"prod plan (`genai-scale plan --stack prod --json`):         median {p:.2f} s")
    print(f"ratio plan / A: {p / b:.2f}x (target <= 3x)")
    print(f"ratio plan / B: {p / lo:.2f}x (program, mocks and recording on top of the SDK classes they need)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
