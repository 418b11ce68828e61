"""A model of cold start: the time from a pending vLLM pod to a ready model, per tier and model size, before and after
issue 18's cold-start work, from documented figures (each with its source below). It measures nothing: it adds up
published phase times so the effect of each change (and what is left) is visible. Print with

    .venv/bin/python bench/coldstart/model.py [--tier scale] [--model 8b]

Phases (seconds) and where each figure comes from (the figures live in components/catalog/coldstart.py, which the
pre-scaling schedule reads too):

- **node**: a pending pod to a Ready GPU node. Managed node group + cluster autoscaler 3-5 min (240 s, the middle),
  Karpenter under 60 s (60 s): third-party blogs only, no AWS benchmark (uncertain; anchors-next, Karpenter part §1
  "vs cluster-autoscaler": zop.dev and rajatarya.github.io). Seed 003 §4.2 gives 2-10 min for GPU nodes in general.
- **image**: the vLLM image pulled and unpacked. Standard pull of a 15-20 GB image takes 4-6 min (300 s, the
  middle; AWS ML blog "Reducing container cold start times using SOCI index on DLAMI and DLC" and the AWS
  containers blog on SOCI parallel pull, which puts pull at >75 % of startup). SOCI parallel pull (Bottlerocket
  1.44.0+, and AL2023 AMIs from v20250821 through nodeadm's FastImagePull gate) is taken 14-50 % faster for un-indexed images (32 %, the middle; soci-snapshotter change f1fcd05f as
  summarized publicly; uncertain). The vLLM CUDA image is taken to be in that 15-20 GB class (not measured here).
- **weights**: Llama-3-8B on g5.12xlarge read from GP3: 47.99 s with vLLM's default safetensors loader, 14.34 s with
  the Run:ai Model Streamer (NVIDIA blog summary of Run:ai's benchmark, anchors-next §6; the S3 figure was not
  captured, so S3 streaming is taken equal to GP3: uncertain). Before the streamer genai-scale also downloads the
  weights from S3 to the pod first: 61 s for Llama-3.1-8B (tensorfuse's breakdown, download phase). Both scale
  linearly with the bytes one node holds (parameters / nodes; an assumption: bandwidth per node is the limit).
- **compile**: torch.compile / Dynamo, inductor compile, CUDA-graph capture and engine init, Llama-3.1-8B on L40S:
  10 + 42 + 54 + 94 = 200 s cold, 10 + 13 + 7 + 34 = 64 s with the compile caches warm (tensorfuse "Reducing GPU cold
  start", anchors-next §6). Taken the same for every model size (an assumption; graphs grow with layers, not bytes).

Scenarios: ``before`` is genai-scale before issue 18 (node groups + cluster autoscaler, standard pull, download then
load, cold compile cache on every new pod). ``after`` is the tier's preset after it: its node provisioner
(``nodeProvisioner`` in the tier's preset, when set to karpenter), streamer when the tier's models set
``loadFormat: runai_streamer``, SOCI parallel pull unless a node group turns ``fastImagePull`` off (on AL2023
through nodeadm's FastImagePull gate: docs/coldstart.md), and a warm compile cache where the tier turns on
``serving.compileCache`` (the shared EFS cache: every pod of a service after its first finds the compiled graphs),
else a cold one (the caches live in the pod's emptyDir: warm again only when the container restarts in the same
pod). ``restart`` is a container restart in the same pod: no node, no image pull, no download (the
weights are still in ``/models``; the streamer streams again), warm compile cache. ``best`` has everything on
(Karpenter, SOCI parallel pull, streamer, warm cache).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.catalog.coldstart import phase_seconds
from components.foundation.gpu_node_group import GpuNodeGroupArgs

FAST_PULL_DEFAULT: bool = GpuNodeGroupArgs.model_fields["fast_image_pull"].default
"""Whether a node group pulls in parallel when its config does not say (the component's default)."""

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ModelSize:
    name: str
    params_b: float
    nodes: int
    layout: str


MODELS = (
    ModelSize("8b", 8.03, 1, "TP1"),
    ModelSize("70b-tp4", 70.6, 1, "TP4"),
    ModelSize("70b-tp8", 70.6, 1, "TP8"),
    ModelSize("405b", 405.9, 2, "TP8 x PP2, 2 nodes"),
)
"""Parameter counts from the Llama 3.1 model cards (8.03B, 70.6B, 405.9B)."""


@dataclass(frozen=True)
class Scenario:
    provisioner: str = "managed-node-groups"
    new_node: bool = True
    soci: bool = False
    streamer: bool = False
    warm_compile: bool = False
    weights_on_disk: bool = False
    """The pod's /models volume still holds the weights (a container restart: the entrypoint skips the download)."""


def phases(m: ModelSize, s: Scenario) -> dict[str, float]:
    """Seconds per phase for one model under one scenario (see the module docstring for every figure)."""
    return phase_seconds(m.params_b, nodes=m.nodes, provisioner=s.provisioner, new_node=s.new_node,  # type: ignore[arg-type]
                         soci=s.soci, streamer=s.streamer, warm_compile=s.warm_compile,
                         weights_on_disk=s.weights_on_disk)


def _keys(tree: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in a YAML tree."""
    if isinstance(tree, dict):
        return [v for k, v in tree.items() if k == key] + [x for v in tree.values() for x in _keys(v, key)]
    if isinstance(tree, list):
        return [x for v in tree for x in _keys(v, key)]
    return []


def tier_scenario(tier: str, root: Path = ROOT) -> Scenario:
    """The ``after`` scenario of a tier from its presets (stacks/tiers/<tier>/*.yaml)."""
    trees = [yaml.safe_load(p.read_text()) or {} for p in sorted((root / "stacks" / "tiers" / tier).glob("*.yaml"))]
    provisioners = {v for t in trees for v in _keys(t, "nodeProvisioner")}
    formats = {v for t in trees for v in _keys(t, "loadFormat")}
    fast_pull = [v for t in trees for v in _keys(t, "fastImagePull")]
    shared_cache = any(isinstance(v, dict) and v.get("enabled") is True for t in trees for v in _keys(t, "compileCache"))
    return Scenario(provisioner="karpenter" if "karpenter" in provisioners else "managed-node-groups",
                    streamer="runai_streamer" in formats,
                    soci=all(v is True for v in fast_pull) and FAST_PULL_DEFAULT,  # unless a group turns it off
                    warm_compile=shared_cache)  # the service's compile cache on EFS outlives its pods


def scenarios(tier: str, root: Path = ROOT) -> dict[str, Scenario]:
    after = tier_scenario(tier, root)
    return {"before": Scenario(), "after": after,
            "restart": Scenario(provisioner=after.provisioner, new_node=False, streamer=after.streamer,
                                warm_compile=True, weights_on_disk=True),
            "best": Scenario(provisioner="karpenter", soci=True, streamer=True, warm_compile=True)}


def rows(tiers: list[str], models: list[ModelSize], root: Path = ROOT) -> list[dict[str, Any]]:
    out = []
    for tier in tiers:
        sc = scenarios(tier, root)
        for m in models:
            totals = {name: sum(phases(m, s).values()) for name, s in sc.items()}
            out.append({"tier": tier, "model": m.name, "layout": m.layout, **totals,
                        "phases_after": phases(m, sc["after"]),
                        "ratio": totals["before"] / totals["after"]})
    return out


def table(rs: list[dict[str, Any]]) -> str:
    head = (f"{'tier':<10} {'model':<8} {'layout':<19} {'before s':>9} {'after s':>8} {'ratio':>6} "
            f"{'restart s':>10} {'best s':>7}   after = node + image + weights + compile")
    lines = [head, "-" * len(head)]
    for r in rs:
        p = r["phases_after"]
        lines.append(f"{r['tier']:<10} {r['model']:<8} {r['layout']:<19} {r['before']:>9.0f} {r['after']:>8.0f} "
                     f"{r['ratio']:>5.2f}x {r['restart']:>10.0f} {r['best']:>7.0f}   "
                     f"{p['node']:.0f} + {p['image']:.0f} + {p['weights']:.0f} + {p['compile']:.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tier", action="append", choices=["prototype", "growth", "scale"],
                    help="tier preset(s) to model (default: all three)")
    ap.add_argument("--model", action="append", choices=[m.name for m in MODELS],
                    help="model size(s) (default: all)")
    a = ap.parse_args(argv)
    tiers = a.tier or ["prototype", "growth", "scale"]
    models = [m for m in MODELS if not a.model or m.name in a.model]
    print(table(rows(tiers, models)))
    print("\nFigures and sources: bench/coldstart/model.py docstring; several are third-party or uncertain.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
