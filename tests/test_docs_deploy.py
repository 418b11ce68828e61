"""docs/deploy.md (the runbook for a real `pulumi up`) says only what the code and the shipped stacks' plans say.

Checked: every ``genai-scale:`` config key is a key of the stack settings; every repository path exists; every
``make`` / ``genai-scale`` command parses; the permissions table names every AWS provider module the plans use; the
quota table has a row, with the right quota, for every instance family and capacity type the plans run; and the vCPU,
node-group and first-``up`` tables equal what the plans hold.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import types
import typing
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from components.catalog.accelerators import lookup
from components.catalog.vendors import VENDORS
from infra.config import NAMESPACE, settings_model
from tests.kit import ROOT
from tests.stack_plans import planned

DOC = ROOT / "docs" / "deploy.md"
STACKS = ("dev", "staging", "prod")
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
REPO_DIRS = ("components", "infra", "policies", "serving", "stacks", "scripts", "tests", "docs", "bench", "examples",
             "problems")
ROOT_FILES = ("Pulumi.yaml", "pyproject.toml", "Makefile", "README.md")


def _text() -> str:
    return DOC.read_text()


def _section(heading: str) -> str:
    text = _text()
    start = text.index(heading)
    nxt = re.search(r"^#{2,3} ", text[start + len(heading):], re.MULTILINE)
    return text[start:start + len(heading) + nxt.start()] if nxt else text[start:]


def _rows(block: str, header: str) -> list[list[str]]:
    """Body rows of the first Markdown table in ``block`` whose header row starts with ``| <header>``."""
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"| {header} |"):
            out = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                out.append([c.strip() for c in row.strip().strip("|").split("|")])
            return out
    raise AssertionError(f"no table whose header starts with {header!r} in docs/deploy.md")


def _plain(cell: str) -> str:
    return cell.replace("`", "").strip()


# --- config keys -------------------------------------------------------------------------------------------------

def _unwrap(tp: typing.Any) -> typing.Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if hasattr(a, "model_fields") or typing.get_origin(a) is dict]
            tp = (models or args)[0]
        else:
            return tp


def key_problem(key: str) -> str | None:
    """None when ``genai-scale:<key>`` is a stack setting (map entries may have any name), else why not."""
    cls: typing.Any = settings_model()
    parts = key.split(".")
    i = 0
    while i < len(parts):
        cls = _unwrap(cls)
        if typing.get_origin(cls) is dict:
            cls = typing.get_args(cls)[1]  # parts[i] is a map entry's name
            i += 1
            continue
        fields = getattr(cls, "model_fields", None)
        if not fields:
            return f"{'.'.join(parts[:i])} is a value, it has no key {parts[i]!r}"
        by_alias = {(f.alias or n): f for n, f in fields.items()}
        if parts[i] not in by_alias:
            return f"{'.'.join(parts[:i + 1])} is not a key (allowed there: {sorted(by_alias)})"
        cls = by_alias[parts[i]].annotation
        i += 1
    return None


def _doc_keys() -> list[str]:
    text = re.sub(r"<[a-z-]+>", "any-name", _text())  # a placeholder names a map entry
    return sorted(set(re.findall(rf"{NAMESPACE}:([A-Za-z][A-Za-z0-9_.\-]*[A-Za-z0-9])", text)))


def test_the_runbook_mentions_config_keys():
    keys = _doc_keys()
    assert {"tier", "alb.domain", "alb.hostedZoneId", "alb.certificateArn"} <= set(keys)


@pytest.mark.parametrize("key", _doc_keys())
def test_every_config_key_in_the_runbook_is_a_stack_setting(key):
    assert key_problem(key) is None, f"docs/deploy.md: genai-scale:{key}: {key_problem(key)}"


def test_the_key_check_rejects_a_key_that_does_not_exist():
    assert key_problem("alb.certificateArn") is None
    assert key_problem("nodeGroups.anything.maxSize") is None
    assert "not a key" in key_problem("alb.certificateArm")
    assert "not a key" in key_problem("nodeGroups.a10g.maxSise")
    assert "has no key" in key_problem("tier.extra")


# --- paths ---------------------------------------------------------------------------------------------------------

_PATH = re.compile(rf"(?<![\w/.\-])((?:{'|'.join(REPO_DIRS)})/[A-Za-z0-9_.<>*/\-]*[A-Za-z0-9_>*])")


def _doc_paths() -> list[str]:
    found = set(_PATH.findall(_text()))
    found |= {f for f in ROOT_FILES if f"`{f}`" in _text()}
    return sorted(found)


@pytest.mark.parametrize("path", _doc_paths())
def test_every_repository_path_in_the_runbook_exists(path):
    pattern = re.sub(r"<[^>]+>", "*", path)
    assert any(ROOT.glob(pattern)) if "*" in pattern else (ROOT / pattern).exists(), f"docs/deploy.md: {path}"


def test_the_path_check_sees_templated_and_plain_paths():
    paths = _doc_paths()
    assert "components/serving/vllm/image.py" in paths and "policies/config/<tier>.json" in paths
    assert "Pulumi.yaml" in paths


# --- commands ------------------------------------------------------------------------------------------------------

def _commands() -> list[str]:
    text = _text()
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            lines.extend(part.strip() for part in line.split("&&"))
    lines.extend(re.findall(r"`((?:\.venv/bin/)?genai-scale [^`]+|make [a-z][^`]*)`", text))
    return sorted({c for c in lines if re.match(r"(\.venv/bin/)?genai-scale |make ", c)})


class _Parsed(Exception):
    pass


def command_problem(command: str, monkeypatch) -> str | None:
    """None when the command parses (make: a Makefile target; genai-scale: its argument parser accepts it)."""
    argv = re.sub(r"<[^>]+>", "dev", command).split()
    if argv[0] == "make":
        targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
        missing = [t for t in argv[1:] if t not in targets]
        return f"no Makefile target {missing}" if missing else None
    from infra import cli

    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    try:
        code = cli.main(argv[1:])
    except _Parsed:
        return None
    except SystemExit as exc:
        code = exc.code
    finally:
        monkeypatch.undo()
    return None if code == 0 else f"exit code {code}"


def test_the_runbook_shows_commands():
    commands = _commands()
    assert any(c.startswith("make ") for c in commands)
    assert any("genai-scale plan" in c for c in commands) and any("genai-scale policy" in c for c in commands)


@pytest.mark.parametrize("command", _commands())
def test_every_make_and_genai_scale_command_in_the_runbook_parses(command, monkeypatch):
    assert command_problem(command, monkeypatch) is None, f"docs/deploy.md: {command}: " \
        f"{command_problem(command, monkeypatch)}"


def test_the_command_check_rejects_bad_commands(monkeypatch):
    assert command_problem("genai-scale plan --stack prod --json", monkeypatch) is None
    assert command_problem("genai-scale plan --stak prod", monkeypatch) is not None
    assert command_problem("make deploy", monkeypatch) is not None


# --- what the plans hold -------------------------------------------------------------------------------------------

@cache
def _ec2_vcpus() -> dict[str, int]:
    import moto

    with gzip.open(Path(moto.__file__).parent / "ec2/resources/instance_types.json.gz") as f:
        data = json.load(f)
    return {name: row["VCpuInfo"]["DefaultVCpus"] for name, row in data.items()}


def vcpus(instance_type: str) -> int:
    spec = lookup(instance_type)
    return spec.vcpus if spec is not None and spec.vcpus else _ec2_vcpus()[instance_type]


def family(instance_type: str) -> str:
    return re.match(r"[a-z]+", instance_type).group(0)


def node_groups(stack: str) -> list[dict]:
    result, _ = planned(stack)
    out = []
    for ng in result.by_type(NODE_GROUP):
        sc = ng.inputs["scalingConfig"]
        itype = ng.inputs["instanceTypes"][0]
        name = ng.name
        out.append({"stack": stack, "name": name, "type": itype, "capacity": ng.inputs.get("capacityType", "ON_DEMAND"),
                    "min": int(sc["minSize"]), "max": int(sc["maxSize"]), "vcpus": vcpus(itype)})
    return out


def _device_resources() -> dict[str, str]:
    """Extended resource -> 'devices' or 'cores' (what one unit of it is)."""
    out = {}
    for v in VENDORS.values():
        out[v.device_resource] = "devices"
        if v.core_resource:
            out[v.core_resource] = "cores"
    return out


def nodes_after_up(stack: str) -> dict[str, int]:
    """Per node group: max(minSize, nodes the pods the stack starts at once need, by accelerator count; a time-sliced
    group's node advertises each GPU timeSlicingReplicas times)."""
    result, cfg = planned(stack)
    resources = _device_resources()
    wanted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in result.by_type("kubernetes:apps/v1:Deployment"):
        spec = d.inputs["spec"]
        group = (spec["template"]["spec"].get("nodeSelector") or {}).get("genai-scale/node-group")
        if not group:
            continue
        for c in spec["template"]["spec"]["containers"]:
            for res, qty in ((c.get("resources") or {}).get("limits") or {}).items():
                if res in resources:
                    wanted[group][resources[res]] += int(spec.get("replicas", 1)) * int(qty)
    out = {}
    for ng in node_groups(stack):
        spec = lookup(ng["type"])
        need = 0
        if spec is not None:
            shares = getattr(cfg.node_groups.get(ng["name"]), "time_slicing_replicas", None) or 1
            per_node = {"devices": spec.count * shares, "cores": spec.neuron_cores or spec.count}
            need = max([math.ceil(n / per_node[kind]) for kind, n in wanted[ng["name"]].items()] or [0])
        out[ng["name"]] = max(ng["min"], min(need, ng["max"]))
    return out


def test_permissions_table_names_every_aws_module_the_plans_use():
    listed = set()
    for row in _rows(_section("### AWS permissions"), "Pulumi module"):
        listed |= set(re.findall(r"`([a-z0-9]+)`", row[0]))
    used = {r.type.split(":")[1].split("/")[0] for s in STACKS for r in planned(s)[0].resources
            if r.type.startswith("aws:")}
    assert used - listed == set(), f"docs/deploy.md permissions table misses AWS modules {sorted(used - listed)}"


def _quota_rows() -> list[list[str]]:
    return _rows(_section("### EC2 vCPU quotas"), "Family")


def quota_for(instance_type: str, capacity: str) -> tuple[str, str]:
    """(quota name, code) the quota table gives an instance type and capacity type."""
    for row in _quota_rows():
        if f"`{instance_type}`" in row[1]:
            name, code = (row[2], row[3]) if capacity != "SPOT" else (row[4], row[5])
            return name, code
    raise AssertionError(f"docs/deploy.md quota table has no row for {instance_type}")


FAMILY_OF_ROW = {"G": "g", "P": "p", "Inf": "inf", "Standard (system nodes)": "m"}


def test_quota_table_has_the_quota_of_every_family_and_capacity_type_the_stacks_run():
    rows = {row[0]: row for row in _quota_rows()}
    for stack in STACKS:
        for ng in node_groups(stack):
            name, code = quota_for(ng["type"], ng["capacity"])
            row = next(r for r in rows.values() if f"`{ng['type']}`" in r[1])
            assert FAMILY_OF_ROW.get(row[0]) == family(ng["type"]), f"{ng['type']} listed under family {row[0]}"
            assert name and re.fullmatch(r"L-[0-9A-F]{8}", code), (
                f"{stack}/{ng['name']}: {ng['type']} {ng['capacity']} has no quota name/code in docs/deploy.md")


def test_vcpu_table_equals_max_size_times_vcpus_per_quota():
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for stack in STACKS:
        for ng in node_groups(stack):
            _, code = quota_for(ng["type"], ng["capacity"])
            expected[(stack, code)] += ng["max"] * ng["vcpus"]
    rows = _rows(_section("### EC2 vCPU quotas"), "Stack (tier)")
    documented = {(row[0].split()[0], row[2]): int(row[3]) for row in rows}
    assert documented == dict(expected)


def test_node_group_table_equals_the_plans():
    rows = _rows(_section("## 8. What the first"), "Stack | Node group")
    documented = {(r[0], r[1]): tuple(_plain(c) for c in r[2:]) for r in rows if r[0] in STACKS and len(r) == 8}
    expected = {}
    for stack in STACKS:
        after = nodes_after_up(stack)
        for ng in node_groups(stack):
            expected[(stack, ng["name"])] = (ng["type"], ng["capacity"], str(ng["min"]), str(ng["max"]),
                                             str(ng["vcpus"]), str(after[ng["name"]]))
    assert documented == expected


def _others(stack: str) -> dict[str, object]:
    result, _ = planned(stack)
    caches = result.by_type("aws:elasticache/replicationGroup:ReplicationGroup")
    sagemaker = sorted(f"{int(v['initialInstanceCount'])} × {v['instanceType']}"
                       for c in result.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
                       for v in c.inputs["productionVariants"])
    pts = result.by_type("aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput")
    return {
        "clusters": str(len(result.by_type("aws:eks/cluster:Cluster"))),
        "nat": str(len(result.by_type("aws:ec2/natGateway:NatGateway"))),
        "interface": str(sum(1 for e in result.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                             if e.inputs.get("vpcEndpointType") == "Interface")),
        "albs": str(len(result.by_type("aws:lb/loadBalancer:LoadBalancer"))),
        "cache_type": caches[0].inputs["nodeType"] if caches else "none",
        "cache_nodes": str(int(caches[0].inputs.get("numCacheClusters") or 1)) if caches else "0",
        "sagemaker": sagemaker or ["0"],
        "pt": [(int(p.inputs["modelUnits"]), p.inputs.get("commitmentDuration", "none")) for p in pts],
    }


def test_first_up_table_equals_the_plans():
    rows = {r[0]: r for r in _rows(_section("## 8. What the first"), "Stack | EKS clusters") if len(r) == 9}
    assert set(rows) == set(STACKS)
    for stack in STACKS:
        r, want = rows[stack], _others(stack)
        got = {"clusters": r[1], "nat": r[2], "interface": r[3], "albs": r[4], "cache_type": _plain(r[5]),
               "cache_nodes": r[6], "sagemaker": sorted(_plain(x) for x in r[7].split(", "))}
        assert got == {k: v for k, v in want.items() if k != "pt"}, stack
        if want["pt"]:
            units, term = want["pt"][0]
            assert re.match(rf"{units} model units?, {term}$", r[8]), (stack, r[8])
        else:
            assert r[8] == "none", (stack, r[8])


# --- links ---------------------------------------------------------------------------------------------------------

def test_readme_and_developing_link_the_runbook():
    assert "docs/deploy.md" in (ROOT / "README.md").read_text()
    assert "deploy.md" in (ROOT / "docs" / "DEVELOPING.md").read_text()
