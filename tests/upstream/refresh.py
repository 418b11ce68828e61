"""Vendor (or re-vendor) the upstream files the truth tests read, from git mirrors of the upstream repositories.

    python -m tests.upstream.refresh --mirrors DIR [FOLDER ...]     (from the repository root)

``DIR`` holds one git repository (bare or not) per upstream, as ``DIR/<owner>+<name>/repo``, ``DIR/<owner>/<name>``
or ``DIR/<name>`` (``git clone --bare https://github.com/<owner>/<name> DIR/<owner>+<name>/repo``). For every entry of
:data:`SOURCES` (or the folders named) it copies the files at the pinned ref under their upstream file names into
``tests/upstream/<chart-or-project>/<version>/``, writes ``template-values.json`` (the ``.Values`` paths the chart's
templates read and render whole, see ``template_values.py``) and ``SOURCE.yaml`` (repository, ref, commit, commit
date, path of every file, the date fetched). See README.md in this folder for how to add a chart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.upstream.template_values import extract

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class File:
    repo: str
    """owner/name on GitHub."""
    ref: str
    """Tag (or commit) the file is read at."""
    path: str
    """Path inside the repository; vendored under its base name."""


@dataclass(frozen=True)
class Source:
    folder: str
    """``<chart-or-project>/<upstream version>`` under tests/upstream/."""
    files: tuple[File, ...]
    chart: File | None = None
    """The chart directory (``path``) whose ``templates/`` are read into template-values.json; None for CRD-only."""
    subcharts: dict[str, str] = field(default_factory=dict)
    """Values key -> vendored folder of the subchart that reads it (``grafana`` -> ``grafana/11.2.2``)."""
    stands_for: tuple[str, ...] = ()
    """Pinned versions this folder is checked against although it is not that version (say why in ``note``)."""
    note: str = ""


def _chart(folder, repo, ref, path, crds=(), crd_repo=None, crd_ref=None, **kw) -> Source:
    files = [File(repo, ref, f"{path}/values.yaml")]
    files += [File(crd_repo or repo, crd_ref or ref, p) for p in crds]
    return Source(folder, tuple(files), chart=File(repo, ref, path), **kw)


SOURCES: tuple[Source, ...] = (
    _chart("gpu-operator/v26.7.0", "NVIDIA/gpu-operator", "v26.7.0", "deployments/gpu-operator",
           stands_for=("v26.7.1",),
           note="Tag v26.7.1 is not in the upstream snapshot (its newest tag is v26.7.0, the head of release-26.7 on "
                "2026-08-20); the chart's Chart.yaml says v1.0.0-devel on every branch (the version is set when the "
                "chart is packaged), so no commit names v26.7.1. Values are checked against v26.7.0, the patch "
                "release's base."),
    _chart("cluster-autoscaler/9.58.0", "kubernetes/autoscaler", "cluster-autoscaler-chart-9.58.0",
           "cluster-autoscaler/charts/cluster-autoscaler"),
    _chart("aws-load-balancer-controller/3.5.0", "kubernetes-sigs/aws-load-balancer-controller", "v3.5.0",
           "helm/aws-load-balancer-controller", crds=("config/crd/bases/elbv2.k8s.aws_targetgroupbindings.yaml",)),
    _chart("keda/2.20.2", "kedacore/charts", "v2.20.2", "keda",
           crds=("config/crd/bases/keda.sh_scaledobjects.yaml", "config/crd/bases/keda.sh_triggerauthentications.yaml",
                 "config/crd/bases/keda.sh_scaledjobs.yaml"),
           crd_repo="kedacore/keda", crd_ref="v2.20.2", stands_for=("2.21.1",),
           note="Chart 2.21.1 is not in the upstream snapshot (kedacore/charts' newest tag is v2.20.2, 2026-07-31; "
                "kedacore/keda's newest is v2.20.2). Values and CRDs are checked against 2.20.2 until 2.21.1 is "
                "vendored; the pin test reports the gap."),
    _chart("kube-prometheus-stack/82.4.3", "prometheus-community/helm-charts", "kube-prometheus-stack-82.4.3",
           "charts/kube-prometheus-stack",
           crds=("charts/kube-prometheus-stack/charts/crds/crds/crd-servicemonitors.yaml",
                 "charts/kube-prometheus-stack/charts/crds/crds/crd-podmonitors.yaml",
                 "charts/kube-prometheus-stack/charts/crds/crds/crd-prometheusrules.yaml"),
           subcharts={"kube-state-metrics": "kube-state-metrics/7.2.0",
                      "prometheus-node-exporter": "prometheus-node-exporter/4.52.0",
                      "grafana": "grafana/11.2.2"},
           note="The CRDs are the chart's copies of prometheus-operator v0.89.0 (the chart's appVersion; each file's "
                "first line names its origin under prometheus-operator/prometheus-operator/example/"
                "prometheus-operator-crd/)."),
    _chart("kube-state-metrics/7.2.0", "prometheus-community/helm-charts", "kube-state-metrics-7.2.0",
           "charts/kube-state-metrics", note="Subchart of kube-prometheus-stack 82.4.3 (Chart.yaml dependencies)."),
    _chart("prometheus-node-exporter/4.52.0", "prometheus-community/helm-charts", "prometheus-node-exporter-4.52.0",
           "charts/prometheus-node-exporter", note="Subchart of kube-prometheus-stack 82.4.3 (Chart.yaml dependencies)."),
    _chart("grafana/11.2.2", "grafana-community/helm-charts", "grafana-11.2.2", "charts/grafana",
           note="Subchart of kube-prometheus-stack 82.4.3 (Chart.yaml dependencies, "
                "https://grafana-community.github.io/helm-charts)."),
    _chart("qdrant/1.19.0", "qdrant/qdrant-helm", "qdrant-1.19.0", "charts/qdrant",
           note="Chart of the VectorStore component's qdrant backend (https://qdrant.github.io/qdrant-helm)."),
    _chart("lws/0.10.0", "kubernetes-sigs/lws", "v0.10.0", "charts/lws",
           crds=("charts/lws/crds/leaderworkerset.x-k8s.io_leaderworkersets.yaml",),
           note="LeaderWorkerSet controller (multi-node serving). The chart is published as "
                "oci://registry.k8s.io/lws/charts/lws version 0.10.0 (install doc at the tag); its Chart.yaml on the "
                "branch says 0.1.0. Only the LeaderWorkerSet CRD is vendored (the chart also ships DisaggregatedSet "
                "CRDs, which nothing here creates)."),
    _chart("aws-efa-k8s-device-plugin/v0.5.30", "aws/eks-charts", "bfe91c4b9257c80f754ad4b3d6a9a3c239b2b8ec",
           "stable/aws-efa-k8s-device-plugin",
           note="aws/eks-charts tags no chart release: the ref is the newest commit of the chart directory (2026-07-21), "
                "whose Chart.yaml says v0.5.30, the version the repository index publishes "
                "(https://aws.github.io/eks-charts, created 2026-08-03)."),
    _chart("karpenter/1.14.1", "aws/karpenter-provider-aws", "v1.14.1", "charts/karpenter",
           crds=("pkg/apis/crds/karpenter.sh_nodepools.yaml", "pkg/apis/crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
                 "pkg/apis/crds/karpenter.sh_nodeclaims.yaml"),
           note='Tag v1.14.1 of aws/karpenter-provider-aws; its charts/karpenter/Chart.yaml still says 1.13.0 (the release workflow sets the chart version when it publishes oci://public.ecr.aws/karpenter/karpenter:1.14.1). The CRDs are pkg/apis/crds at the tag, the same files the karpenter and karpenter-crd charts ship. The controller IAM policy source is in ../iam-v1.14.1/ (CloudFormation tags do not load as plain YAML).'),
)


def _git(repo_dir: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo_dir), *args], check=True, capture_output=True, text=True).stdout


def _mirror(mirrors: Path, repo: str) -> Path:
    owner, name = repo.split("/")
    for candidate in (mirrors / f"{owner}+{name}" / "repo", mirrors / owner / name, mirrors / name):
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"no git mirror of {repo} under {mirrors} (clone it: see tests/upstream/README.md)")


def _optional(repo_dir: Path, ref: str, path: str) -> str | None:
    try:
        return _git(repo_dir, "show", f"{ref}:{path}")
    except subprocess.CalledProcessError:
        return None


def vendor(source: Source, mirrors: Path, today: str) -> None:
    out = HERE / source.folder
    out.mkdir(parents=True, exist_ok=True)
    files = list(source.files)
    if source.chart is not None:
        c = source.chart
        if _optional(_mirror(mirrors, c.repo), c.ref, f"{c.path}/values.schema.json") is not None:
            files.append(File(c.repo, c.ref, f"{c.path}/values.schema.json"))
    record = []
    for f in files:
        repo_dir = _mirror(mirrors, f.repo)
        (out / Path(f.path).name).write_text(_git(repo_dir, "show", f"{f.ref}:{f.path}"))
        commit, date = _git(repo_dir, "log", "-1", "--format=%H %cs", f.ref).split()
        record.append({"file": Path(f.path).name, "repo": f.repo, "ref": f.ref, "commit": commit,
                       "commitDate": date, "path": f.path})
    meta = {"fetched": today, "files": record}
    if source.chart is not None:
        c = source.chart
        repo_dir = _mirror(mirrors, c.repo)
        names = _git(repo_dir, "ls-tree", "-r", "--name-only", c.ref, "--", f"{c.path}/templates").split()
        texts = [_git(repo_dir, "show", f"{c.ref}:{n}") for n in names if n.endswith((".yaml", ".tpl", ".yml"))]
        read, whole = extract(texts)
        (out / "template-values.json").write_text(json.dumps(
            {"read": sorted(read), "whole": sorted(whole)}, indent=0) + "\n")
        chart_yaml = yaml.safe_load(_git(repo_dir, "show", f"{c.ref}:{c.path}/Chart.yaml"))
        version = source.folder.split("/")[1]
        meta["chart"] = {"name": chart_yaml["name"], "version": version,
                         **({"chartYamlVersion": str(chart_yaml["version"])}  # a development version on the branch
                            if str(chart_yaml["version"]) != version else {}),
                         "appVersion": str(chart_yaml.get("appVersion", "")),
                         "conditions": sorted(d["condition"] for d in chart_yaml.get("dependencies") or ()
                                              if d.get("condition")),
                         "templates": {"repo": c.repo, "ref": c.ref, "path": f"{c.path}/templates"}}
    if source.subcharts:
        meta["subcharts"] = dict(source.subcharts)
    if source.stands_for:
        meta["standsFor"] = list(source.stands_for)
    if source.note:
        meta["note"] = source.note
    (out / "SOURCE.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, width=120))
    print(f"vendored {source.folder}: {', '.join(r['file'] for r in record)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirrors", type=Path, required=True, help="folder holding the upstream git mirrors")
    parser.add_argument("--date", default=dt.date.today().isoformat(), help="date fetched (default: today)")
    parser.add_argument("folders", nargs="*", help="only these <chart>/<version> folders")
    args = parser.parse_args(argv)
    chosen = [s for s in SOURCES if not args.folders or s.folder in args.folders]
    unknown = set(args.folders) - {s.folder for s in SOURCES}
    if unknown:
        raise SystemExit(f"not in SOURCES: {', '.join(sorted(unknown))}")
    for source in chosen:
        vendor(source, args.mirrors, args.date)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
