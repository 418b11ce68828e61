"""Every rendered value checked against the upstream it is for, in all three stacks.

The upstream files live in tests/upstream/<chart-or-project>/<version>/ with a SOURCE.yaml naming repository, tag,
commit and date (tests/upstream/README.md says how to refresh them):

- every leaf key path of every Helm release's ``values`` exists in the chart's values.yaml, or is read by one of its
  templates, or sits under a path a template renders whole (``toYaml .Values.podAnnotations``); keys for a subchart
  are looked up in the subchart's files; where a chart has values.schema.json the merged values must validate;
- every value has the kind of the chart's default there (no ``"false"`` where the chart has a bool), and what a chart
  renders whole into a Kubernetes field (``nodeSelector``, ``tolerations``, ``resources``, security contexts, the
  Prometheus volume claim) validates against that field's Kubernetes 1.35 type;
- every custom resource validates against the openAPIV3Schema of its vendored CRD, for its version (unknown fields
  fail unless the schema keeps them with ``x-kubernetes-preserve-unknown-fields``), and every custom kind the plans
  create has one;
- every chart version pinned in components/versions.py has a vendored folder, and every vendored chart is pinned.

Built-in kinds are checked against the Kubernetes 1.35 OpenAPI schema in tests/infra/test_k8s_schema.py.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components import versions
from infra.plan import jsonable
from tests.infra.test_k8s_schema import is_builtin
from tests.stack_plans import planned
from tests.upstream.template_values import extract

UPSTREAM = Path(__file__).resolve().parents[1] / "upstream"
STACKS = ("dev", "staging", "prod")
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
README = "tests/upstream/README.md"


# --- the vendored data ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    folder: Path
    name: str
    version: str
    defaults: dict
    read: tuple[tuple[str, ...], ...]
    whole: tuple[tuple[str, ...], ...]
    conditions: frozenset[str]
    subcharts: dict[str, str]
    schema: dict | None


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()


@cache
def sources() -> dict[Path, dict]:
    """Folder -> its SOURCE.yaml."""
    return {p.parent: yaml.safe_load(p.read_text()) for p in sorted(UPSTREAM.glob("*/*/SOURCE.yaml"))}


@cache
def load_chart(folder: Path) -> Chart:
    meta = sources()[folder]
    derived = json.loads((folder / "template-values.json").read_text())
    schema_file = folder / "values.schema.json"
    return Chart(folder=folder, name=meta["chart"]["name"], version=meta["chart"]["version"],
                 defaults=yaml.safe_load((folder / "values.yaml").read_text()) or {},
                 read=tuple(_split(p) for p in derived["read"]), whole=tuple(_split(p) for p in derived["whole"]),
                 conditions=frozenset(meta["chart"].get("conditions", ())),
                 subcharts=meta.get("subcharts", {}),
                 schema=json.loads(schema_file.read_text()) if schema_file.exists() else None)


@cache
def charts() -> dict[tuple[str, str], Path]:
    """(chart name, version) -> vendored folder; a folder also answers for the versions it ``standsFor``."""
    out = {}
    for folder, meta in sources().items():
        if "chart" in meta:
            for version in [meta["chart"]["version"], *meta.get("standsFor", ())]:
                out[(meta["chart"]["name"], str(version))] = folder
    return out


def chart_name(chart: str) -> str:
    """``oci://public.ecr.aws/neuron/neuron-helm-chart`` -> ``neuron-helm-chart``; ``repo/name`` -> ``name``."""
    return chart.rstrip("/").rsplit("/", 1)[-1]


@cache
def crd_schemas() -> dict[tuple[str, str, str], tuple[dict, str]]:
    """(group, version, kind) -> (openAPIV3Schema, vendored file) over every vendored CRD."""
    out = {}
    for folder in sources():
        for path in sorted(folder.glob("*.yaml")):
            if path.name in ("values.yaml", "SOURCE.yaml"):
                continue
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for v in spec["versions"]:
                    schema = (v.get("schema") or {}).get("openAPIV3Schema")
                    if schema:
                        rel = str(path.relative_to(UPSTREAM))
                        out[(spec["group"], v["name"], spec["names"]["kind"])] = (schema, rel)
    return out


# --- values key paths ----------------------------------------------------------------------------------------------

def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path that ends in a scalar, a list or an empty map."""
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in leaf_paths(v, (*prefix, str(k)))]
    return [prefix] if prefix else []


def _in_defaults(defaults: Any, path: tuple[str, ...]) -> bool:
    cur = defaults
    for part in path:
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", q) for p, q in zip(pattern, path))


def key_known(chart: Chart, path: tuple[str, ...]) -> bool:
    """The path exists in values.yaml, is read by a template, or sits under a path rendered whole."""
    if _in_defaults(chart.defaults, path) or ".".join(path) in chart.conditions:
        return True
    if any(_matches(r, path) for r in chart.read):
        return True
    if any(len(w) <= len(path) and _matches(w, path[:len(w)]) for w in chart.whole):
        return True
    sub = chart.subcharts.get(path[0]) if path else None
    return bool(sub) and len(path) > 1 and key_known(load_chart(UPSTREAM / sub), path[1:])


def unknown_keys(release: str, chart: Chart, values: dict) -> list[str]:
    """One line per values key path the chart neither defines, nor reads, nor renders whole."""
    return [f"{release} ({chart.name} {chart.version}): values.{'.'.join(p)} is not in values.yaml, not read by a "
            f"template and not under a map rendered whole" for p in sorted(leaf_paths(values)) if not key_known(chart, p)]


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's coalesce: maps merge key by key, anything else replaces; ``null`` removes a default."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = copy.deepcopy(base)
        for k, v in override.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = deep_merge(out.get(k), v)
        return out
    return copy.deepcopy(override)


def schema_errors(release: str, chart: Chart, values: dict) -> list[str]:
    if chart.schema is None:
        return []
    merged = deep_merge(chart.defaults, values)
    validator = jsonschema.validators.validator_for(chart.schema)(chart.schema)
    return sorted(f"{release} ({chart.name} {chart.version}): values.{'.'.join(map(str, e.absolute_path))}: "
                  f"{e.message}" for e in validator.iter_errors(merged))


def releases(stack: str) -> list[tuple[str, str, str, dict]]:
    """(release name, chart, version, values) of every Helm release in the stack's plan."""
    result, _ = planned(stack)
    return [(r.name, r.inputs.get("chart", ""), str(r.inputs.get("version", "")),
             jsonable(r.inputs.get("values") or {}, reveal_secrets=True))
            for r in result.resources if r.type in HELM_TYPES]


# --- custom resources ----------------------------------------------------------------------------------------------

def strict_schema(schema: Any) -> Any:
    """A CRD's structural schema as JSON Schema that rejects what the API server prunes: objects with ``properties``
    get ``additionalProperties: false`` unless ``x-kubernetes-preserve-unknown-fields``; ``nullable`` admits null;
    ``x-kubernetes-int-or-string`` admits an integer or a string."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k.startswith("x-kubernetes-") or k == "nullable":
            continue
        if k in ("properties", "patternProperties", "definitions"):  # maps of name -> schema
            out[k] = {name: strict_schema(sub) for name, sub in v.items()}
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [strict_schema(sub) for sub in v]
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = strict_schema(v)
        else:
            out[k] = v
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def split_type(token: str) -> tuple[str, str, str]:
    """``kubernetes:keda.sh/v1alpha1:ScaledObject`` -> ("keda.sh", "v1alpha1", "ScaledObject")."""
    _, group_version, kind = token.split(":")
    group, version = group_version.split("/")
    return group, version, kind


def custom_resources(stack: str) -> list[tuple[str, str, dict]]:
    """(name, type token, body) of every custom resource in the stack's plan."""
    result, _ = planned(stack)
    out = []
    for r in result.resources:
        if not r.custom or not r.type.startswith("kubernetes:") or r.type in HELM_TYPES or is_builtin(r.type):
            continue
        if r.type.startswith(("kubernetes:yaml/", "kubernetes:kustomize/", "kubernetes:helm.sh/")):
            continue
        out.append((r.name, r.type, jsonable(r.inputs, reveal_secrets=True)))
    return out


def cr_errors(name: str, token: str, body: dict) -> list[str]:
    key = split_type(token)
    found = crd_schemas().get(key)
    if found is None:
        return [f"{name} ({token}): no vendored CRD schema for {key[0]}/{key[1]} {key[2]} (vendor it: {README})"]
    schema, source = found
    validator = jsonschema.Draft7Validator(strict_schema(schema))
    problems = [f"{name} ({token}): {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message} (schema: {source})"
                for e in validator.iter_errors(body)]
    # a CRD leaves metadata to the API server, which checks it as ObjectMeta
    meta = _k8s_validator({"$ref": "#io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"})
    problems += [f"{name} ({token}): {'.'.join(['metadata', *map(str, e.absolute_path)])}: {e.message} (ObjectMeta)"
                 for e in meta.iter_errors(body.get("metadata", {}))]
    return problems


# --- tests: Helm values ----------------------------------------------------------------------------------------------

# Release name -> why its values cannot be checked yet, or what is wrong with them (a finding for components/).
# Each is a strict xfail: the test fails once the gap is closed, so the entry has to go.
VALUE_FINDINGS: dict[str, str] = {
    "neuron": "neuron-helm-chart 1.3.0 is not vendored: the aws-neuron/neuron-helm-charts snapshot holds only chart "
              "1.0.0 (2024-09), so its values are unchecked",
}


def _release_cases():
    names = sorted({name for stack in STACKS for name, *_ in releases(stack)})
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=VALUE_FINDINGS[n]))
            if n in VALUE_FINDINGS else n for n in names]


def _vendored(chart: str, version: str) -> Chart | None:
    folder = charts().get((chart_name(chart), version))
    return load_chart(folder) if folder else None


def check_release(release: str, *checks) -> list[str]:
    """Every problem the checks find in the release's values, in every stack that has the release."""
    problems, checked = [], 0
    for stack in STACKS:
        for name, chart, version, values in releases(stack):
            if name != release:
                continue
            vendored = _vendored(chart, version)
            if vendored is None:
                problems.append(f"{stack}: {name}: chart {chart} {version} has no vendored values ({README})")
                continue
            checked += 1
            problems += [f"{stack}: {p}" for check in checks for p in check(name, vendored, values)]
    assert checked or problems, f"no stack has a release named {release}"
    return problems


@pytest.mark.parametrize("release", _release_cases())
def test_every_helm_value_key_is_known_to_its_chart(release):
    assert check_release(release, unknown_keys, schema_errors) == []


def test_a_misspelt_key_is_reported_with_release_and_path():
    name, chart, version, values = next(r for r in releases("prod") if r[0] == "cluster-autoscaler")
    vendored = _vendored(chart, version)
    assert unknown_keys(name, vendored, values) == []
    bad = copy.deepcopy(values)
    bad["autoDiscovery"]["clusterNmae"] = bad["autoDiscovery"].pop("clusterName")
    bad["podDisruptionBudget"]["maxUnavailble"] = 1
    assert unknown_keys(name, vendored, bad) == [  # sorted by path
        (f"cluster-autoscaler (cluster-autoscaler {vendored.version}): values.autoDiscovery.clusterNmae is not in "
         "values.yaml, not read by a template and not under a map rendered whole"),
        (f"cluster-autoscaler (cluster-autoscaler {vendored.version}): values.podDisruptionBudget.maxUnavailble is "
         "not in values.yaml, not read by a template and not under a map rendered whole"),
    ]


def test_keys_under_a_map_rendered_whole_and_subchart_keys_are_known():
    ca = _vendored("cluster-autoscaler", versions.CLUSTER_AUTOSCALER_CHART.version)
    assert key_known(ca, ("podAnnotations", "any.example/annotation"))  # toYaml .Values.podAnnotations
    assert key_known(ca, ("extraArgs", "any-flag"))  # range .Values.extraArgs
    assert not key_known(ca, ("podAnnotationz", "x"))
    kps = _vendored("kube-prometheus-stack", versions.KUBE_PROMETHEUS_STACK_CHART.version)
    assert key_known(kps, ("grafana", "adminPassword"))  # the grafana subchart's values.yaml
    assert not key_known(kps, ("grafana", "adminPasword"))


def test_the_merged_values_are_validated_against_a_values_schema():
    chart = Chart(folder=UPSTREAM, name="demo", version="1", defaults={"replicas": 1, "image": {"tag": "a"}},
                  read=(), whole=(), conditions=frozenset(), subcharts={},
                  schema={"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1},
                                                          "image": {"type": "object", "required": ["tag"]}}})
    assert schema_errors("demo", chart, {"replicas": 2}) == []
    assert schema_errors("demo", chart, {"replicas": 0, "image": {"tag": None}}) == [
        "demo (demo 1): values.image: 'tag' is a required property",
        "demo (demo 1): values.replicas: 0 is less than the minimum of 1",
    ]


def test_template_reader_finds_reads_whole_maps_and_scoped_paths():
    read, whole = extract(["""
metadata:
  {{- with .Values.podAnnotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  replicas: {{ .Values.replicaCount }}
  {{- with .Values.image }}
  image: "{{ .repository }}:{{ .tag | default $.Chart.AppVersion }}"
  {{- end }}
  sa: {{ (.Values.serviceAccount.operator).name }}
  args:
  {{- range $key, $value := .Values.extraArgs }}
  - --{{ $key }}={{ $value.inner }}
  {{- end }}
  {{- $res := .Values.resources }}
  resources: {{ toYaml $res | nindent 4 }}
{{- define "x.helper" }}{{ .unknownContext }}{{ $.Values.fromHelper }}{{ end }}
"""])
    assert {"podAnnotations", "replicaCount", "image", "image.repository", "image.tag",
            "serviceAccount.operator.name", "extraArgs.*", "extraArgs.*.inner", "resources", "fromHelper"} <= read
    assert "unknownContext" not in read and not any(p.startswith("Chart") for p in read)
    assert whole == {"podAnnotations", "resources"}


# --- Helm values rendered whole into Kubernetes objects ---------------------------------------------------------------

_OBJ = "io.k8s.api.core.v1."
RENDERED_BY_KEY: dict[str, dict] = {
    # a values key of this name is rendered as this Kubernetes field wherever a chart renders it whole
    "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
    "tolerations": {"type": "array", "items": {"$ref": f"#{_OBJ}Toleration"}},
    "affinity": {"$ref": f"#{_OBJ}Affinity"},
}
RENDERED_AT: dict[tuple[str, str], str] = {
    # (chart, values path) -> the Kubernetes definition its template renders it into with toYaml (read from the
    # vendored version's templates: file, line)
    ("cluster-autoscaler", "securityContext"): "PodSecurityContext",  # deployment.yaml:344, pod securityContext
    ("cluster-autoscaler", "containerSecurityContext"): "SecurityContext",  # deployment.yaml:300, container's
    ("cluster-autoscaler", "resources"): "ResourceRequirements",  # deployment.yaml:297
    ("aws-load-balancer-controller", "resources"): "ResourceRequirements",  # deployment.yaml:254
    ("keda", "resources.operator"): "ResourceRequirements",  # manager/deployment.yaml:208
    ("keda", "resources.metricServer"): "ResourceRequirements",  # metrics-server/deployment.yaml:174
    ("keda", "resources.webhooks"): "ResourceRequirements",  # webhooks/deployment.yaml:145
    ("kube-prometheus-stack", "prometheus.prometheusSpec.resources"): "ResourceRequirements",  # prometheus.yaml:161
    # prometheus.yaml:308 renders storageSpec as the Prometheus CR's spec.storage, whose volumeClaimTemplate.spec is a
    # core PersistentVolumeClaimSpec
    ("kube-prometheus-stack", "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec"):
        "PersistentVolumeClaimSpec",
}


@cache
def _k8s_definitions() -> dict:
    """The Kubernetes 1.35 definitions shipped by kubernetes-validate (strict: unknown fields fail)."""
    import kubernetes_validate

    from tests.infra.test_k8s_schema import SCHEMA_VERSION
    path = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
            / "_definitions.json")
    return json.loads(path.read_text())


def _k8s_validator(schema: dict) -> jsonschema.protocols.Validator:
    """A validator of ``schema`` whose ``{"$ref": "#io.k8s..."}`` name Kubernetes 1.35 definitions."""
    return _k8s_validator_for(json.dumps(schema, sort_keys=True))


@cache
def _k8s_validator_for(text: str) -> jsonschema.protocols.Validator:
    from referencing import Registry, Resource
    defs = _k8s_definitions()
    registry = Registry().with_resource(defs["$id"], Resource.from_contents(defs))
    text = text.replace('"#io.k8s.', f'"{defs["$id"]}#/$defs/io.k8s.')
    return jsonschema.Draft202012Validator(json.loads(text), registry=registry)


def _subtrees(values: Any, prefix: tuple[str, ...] = ()):
    if isinstance(values, dict):
        for k, v in values.items():
            yield (*prefix, str(k)), v
            yield from _subtrees(v, (*prefix, str(k)))


def rendered_errors(release: str, chart: Chart, values: dict) -> list[str]:
    """Values a chart renders whole into a Kubernetes field, validated against that field's 1.35 type."""
    problems = []
    for path, value in _subtrees(values):
        dotted = ".".join(path)
        target = RENDERED_AT.get((chart.name, dotted))
        schema = {"$ref": f"#{_OBJ}{target}"} if target else RENDERED_BY_KEY.get(path[-1])
        if schema is None:
            continue
        for e in _k8s_validator(schema).iter_errors(value):
            where = ".".join([dotted, *map(str, e.absolute_path)])
            problems.append(f"{release} ({chart.name} {chart.version}): values.{where}: {e.message} "
                            f"(rendered as {target or path[-1]})")
    return sorted(problems)


def type_errors(release: str, chart: Chart, values: dict) -> list[str]:
    """A value whose kind differs from the chart's default there: a string where the chart has a bool (``"false"`` is
    true in a template), a string for a number, a map for a list or a scalar, and the other way round."""
    def kind(v: Any) -> str:
        return ("bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else
                "map" if isinstance(v, dict) else "list" if isinstance(v, list) else "string" if isinstance(v, str)
                else "null")
    problems = []
    for path, value in _subtrees(values):
        cur: Any = chart.defaults
        for part in path:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None or value is None:
            continue
        ours, theirs = kind(value), kind(cur)
        if ours == theirs or (theirs, ours) == ("string", "number"):  # a number where a string goes renders the same
            continue
        problems.append(f"{release} ({chart.name} {chart.version}): values.{'.'.join(path)} = {value!r}: the "
                            f"chart's default is a {theirs} ({cur!r}), this is a {ours}")
    return problems


@pytest.mark.parametrize("release", _release_cases())
def test_helm_values_have_the_chart_types_and_valid_kubernetes_fields(release):
    assert check_release(release, type_errors, rendered_errors) == []


def test_a_wrong_kubernetes_field_or_type_in_values_is_reported():
    name, chart, version, values = next(r for r in releases("prod") if r[0] == "cluster-autoscaler")
    vendored = _vendored(chart, version)
    bad = copy.deepcopy(values)
    bad["containerSecurityContext"]["readOnlyRootFileSystem"] = bad["containerSecurityContext"].pop(
        "readOnlyRootFilesystem")
    bad["nodeSelector"]["zone"] = 1
    bad["tolerations"] = [{"key": "a", "effect": "NoSchedule", "operator": "Exists", "tolerationSeconds": "60"}]
    bad["rbac"]["serviceAccount"]["create"] = "false"
    prefix = f"cluster-autoscaler (cluster-autoscaler {vendored.version}): values."
    assert rendered_errors(name, vendored, bad) == [
        (f"{prefix}containerSecurityContext: Additional properties are not allowed ('readOnlyRootFileSystem' was "
         "unexpected) (rendered as SecurityContext)"),
        f"{prefix}nodeSelector.zone: 1 is not of type 'string' (rendered as nodeSelector)",
        f"{prefix}tolerations.0.tolerationSeconds: '60' is not of type 'integer', 'null' (rendered as tolerations)",
    ]
    assert type_errors(name, vendored, bad) == [
        f"{prefix}rbac.serviceAccount.create = 'false': the chart's default is a bool (True), this is a string"]


# --- tests: custom resources -----------------------------------------------------------------------------------------

CR_FINDINGS: dict[str, str] = {}


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_matches_its_vendored_crd(stack):
    crs = custom_resources(stack)
    problems = [p for name, token, body in crs if name not in CR_FINDINGS for p in cr_errors(name, token, body)]
    assert problems == []
    assert crs


def test_a_cr_field_the_api_server_would_prune_is_reported():
    name, token, body = next(c for c in custom_resources("prod") if c[1].endswith(":ScaledObject"))
    assert cr_errors(name, token, body) == []
    bad = copy.deepcopy(body)
    bad["spec"]["minReplicas"] = 1
    bad["spec"]["pollingInterval"] = "15s"
    bad["metadata"]["label"] = {"a": "b"}
    errors = cr_errors(name, token, bad)
    assert len(errors) == 3, errors
    assert errors[-1] == (f"{name} ({token}): metadata: Additional properties are not allowed ('label' was unexpected) "
                          "(ObjectMeta)")
    assert any("'minReplicas' was unexpected" in e and e.startswith(f"{name} ({token}): spec:") for e in errors)
    assert any(e.startswith(f"{name} ({token}): spec.pollingInterval: '15s' is not of type 'integer'") for e in errors)


def test_a_custom_kind_without_a_vendored_crd_is_reported():
    assert cr_errors("demo", "kubernetes:example.com/v1:Widget", {}) == [
        f"demo (kubernetes:example.com/v1:Widget): no vendored CRD schema for example.com/v1 Widget (vendor it: {README})"]


def test_strict_schema_keeps_preserved_fields_and_admits_int_or_string_and_null():
    schema = strict_schema({"type": "object", "properties": {
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
        "port": {"x-kubernetes-int-or-string": True},
        "note": {"type": "string", "nullable": True},
        "nullable": {"type": "boolean"}}})  # a field named like a keyword stays a field
    v = jsonschema.Draft7Validator(schema)
    assert [e.message for e in v.iter_errors({"nullable": "yes"})] == ["'yes' is not of type 'boolean'"]
    assert list(v.iter_errors({"free": {"a": 1, "b": 2}, "port": "http", "note": None})) == []
    assert list(v.iter_errors({"port": 8080})) == []
    assert [e.message for e in v.iter_errors({"other": 1})] == [
        "Additional properties are not allowed ('other' was unexpected)"]


# --- tests: pins -----------------------------------------------------------------------------------------------------

def pinned_charts() -> dict[str, tuple[str, str]]:
    """Pin attribute name -> (chart name, version) for every Helm chart pinned in components/versions.py (a pin whose
    repository is a chart repository: ``https://...`` or ``oci://...``; image pins name a registry path)."""
    return {attr: (pin.name, pin.version) for attr, pin in vars(versions).items()
            if isinstance(pin, versions.Pin) and pin.repository.startswith(("https://", "oci://"))}


REFRESH = (f"fetch the chart's repository at the pinned tag, add it to SOURCES in tests/upstream/refresh.py and run "
           f"`python -m tests.upstream.refresh --mirrors DIR <chart>/<version>` ({README})")

# Pins whose exact version is not in the upstream snapshot: the folder that stands in is named in its SOURCE.yaml.
# Keyed by pin and version: re-pinning to another version without vendoring it fails (the gap is not carried over).
PIN_GAPS = {
    ("GPU_OPERATOR", "v26.7.1"): "gpu-operator v26.7.1 is not in the upstream snapshot; v26.7.0 stands in (SOURCE.yaml note)",
    ("KEDA_CHART", "2.21.1"): "keda chart 2.21.1 is not in the upstream snapshot (newest tag v2.20.2); 2.20.2 stands in",
    ("NEURON_HELM_CHART", "1.3.0"): "neuron-helm-chart 1.3.0 could not be fetched: the aws-neuron/neuron-helm-charts snapshot "
                         "holds only chart 1.0.0 (2024-09); nothing is vendored for it",
}


def pin_problems(pins: dict[str, tuple[str, str]]) -> list[str]:
    problems = []
    for attr, (name, version) in sorted(pins.items()):
        folder = UPSTREAM / name / version
        if not (folder / "SOURCE.yaml").exists():
            stand_in = charts().get((name, version))
            hint = f" ({stand_in.relative_to(UPSTREAM)} stands in)" if stand_in else ""
            problems.append(f"versions.{attr} = {name} {version}: no tests/upstream/{name}/{version}/{hint}; {REFRESH}")
    return problems


def test_pinned_charts_are_found():
    pins = pinned_charts()
    assert {"GPU_OPERATOR", "NEURON_HELM_CHART", "CLUSTER_AUTOSCALER_CHART", "LB_CONTROLLER_CHART", "KEDA_CHART",
            "KUBE_PROMETHEUS_STACK_CHART"} <= set(pins)


def _pin_params():
    for attr, (_, version) in sorted(pinned_charts().items()):
        gap = PIN_GAPS.get((attr, version))
        yield pytest.param(attr, marks=pytest.mark.xfail(strict=True, reason=gap)) if gap else attr


@pytest.mark.parametrize("attr", list(_pin_params()))
def test_every_pinned_chart_version_is_vendored(attr):
    assert pin_problems({attr: pinned_charts()[attr]}) == []


def test_every_known_pin_gap_is_the_current_pin():
    pins = pinned_charts()
    assert [key for key in PIN_GAPS if key[0] not in pins or pins[key[0]][1] != key[1]] == []


def test_a_new_pin_without_its_vendored_folder_fails_with_the_refresh_command():
    assert pin_problems({"CLUSTER_AUTOSCALER_CHART": ("cluster-autoscaler", "9.99.0")}) == [
        (f"versions.CLUSTER_AUTOSCALER_CHART = cluster-autoscaler 9.99.0: no tests/upstream/cluster-autoscaler/9.99.0/; "
         f"{REFRESH}")]
    assert pin_problems({"CLUSTER_AUTOSCALER_CHART": ("cluster-autoscaler",
                                                      versions.CLUSTER_AUTOSCALER_CHART.version)}) == []


def test_every_vendored_file_has_its_source():
    for folder, meta in sources().items():
        assert meta.get("fetched"), folder
        listed = {f["file"] for f in meta["files"]}
        on_disk = {p.name for p in folder.iterdir()} - {"SOURCE.yaml", "template-values.json"}
        assert on_disk == listed, folder
        for f in meta["files"]:
            assert f["repo"] and f["ref"] and len(f["commit"]) == 40 and f["path"].endswith(f["file"]), (folder, f)
        chart = meta.get("chart", {})
        assert chart.get("version", folder.name) == folder.name, folder
        if "chartYamlVersion" in chart or "standsFor" in meta:  # the folder is not plainly the tagged chart: say why
            assert meta.get("note"), folder


def test_every_vendored_chart_is_pinned_or_a_pinned_charts_subchart():
    pinned = {charts().get(v) for v in pinned_charts().values()} - {None}
    used = pinned | {UPSTREAM / sub for folder in pinned for sub in sources()[folder].get("subcharts", {}).values()}
    stale = sorted(str(f.relative_to(UPSTREAM)) for f, meta in sources().items() if "chart" in meta and f not in used)
    assert stale == [], f"vendored but no longer pinned (delete them and their SOURCES entries): {stale}"
