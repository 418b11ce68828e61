"""Security rule for literal secrets: passwords, tokens and keys written into Helm values, container env or
Kubernetes Secret and ConfigMap manifests instead of coming from a generated secret.

What the pack can see: CrossGuard hands a rule every input with secrets unwrapped (``pulumi_policy`` deserializes the
secret envelope to its plain value), so a value marked secret and a literal look the same. What it can also see, in a
stack policy, is where each input came from (``property_dependencies``: input name -> the resources its value was
computed from). A secret-looking value therefore passes when:

- it is unknown during preview (a computed value, e.g. a ``random.RandomPassword`` result on the first preview),
- it is the ``[secret]`` mark of a plan written as JSON,
- it is a reference, not a secret (``existingSecret``, ``secretKeyRef``, ``secretName``, an ARN of Secrets Manager or
  SSM, a ``$(VAR)`` / ``${VAR}`` expansion), empty, or a boolean, or
- the top-level input that holds it (``values``, ``spec``, ``stringData``, ``data``) was computed from a generated
  secret (``allowedSources``: ``random.RandomPassword`` and friends), or
- it sits in the ``data``/``stringData`` of a Secret that declares where its value was read from, with the annotation
  ``genai-scale.io/secret-source: secretsmanager:<secret id>`` or ``pulumi-config:<key>`` (values read at deploy
  time from Secrets Manager, or from a secret config key, have no source resource the pack could trace; VllmService
  sets it on its Hugging Face token Secret). The annotation is a declaration the pack takes at its word: review
  changes to it like any other change to a Secret.

The last test is per top-level input, as CrossGuard records dependencies: a literal next to a generated secret in the
same Helm ``values`` passes. A value from ``pulumi config set --secret`` has no source resource and reaches the pack
as plain text: keep such values in Secrets Manager and reference them, or generate them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from operator import getitem
from typing import Any

from pulumi_policy import Severity

from policies._props import (
    POD_TEMPLATE_PATHS,
    as_list,
    as_map,
    get,
    is_map,
    is_seq,
    pod_template,
)
from policies._rule import Rule, stack_policy

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_V4_CHART = "kubernetes:helm.sh/v4:Chart"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET_MARK = "[secret]"

SECRET_WORDS_DEFAULT = ["password", "passwd", "secret", "token", "apikey", "accesskey", "secretkey", "privatekey",
                        "credentials", "credential", "auth", "authtoken", "clientsecret", "passphrase"]
"""A key is secret-like when its name, lower-cased without ``-``/``_``/``.``, ends with one of these
(``adminPassword``, ``HF_TOKEN``, ``api_key``, ``AWS_SECRET_ACCESS_KEY``)."""

REFERENCE_PREFIXES = ("existing",)
"""Keys that name where a secret is, not the secret (``existingSecret``); names ending in ``name``, ``ref``,
``key`` (other than the words above), ``file`` or ``path`` never match the words, so they pass by construction."""

REFERENCE_VALUE = re.compile(r"^(arn:aws[a-z-]*:(secretsmanager|ssm):|\$\(|\$\{)")

ALLOWED_SOURCES_DEFAULT = [
    "random:index/randomPassword:RandomPassword",
    "random:index/randomBytes:RandomBytes",
    "tls:index/privateKey:PrivateKey",
    "aws:iam/accessKey:AccessKey",
    "aws:secretsmanager/secretVersion:SecretVersion",
]


def _norm(key: str) -> str:
    return re.sub(r"[-_.\s]", "", key).lower()


def secret_like(key: str, words: Sequence[str] = SECRET_WORDS_DEFAULT) -> bool:
    """Whether a key names a secret (``adminPassword``) rather than a reference to one (``existingSecret``,
    ``passwordKey``, ``secretName``)."""
    k = _norm(key)
    if k.startswith(REFERENCE_PREFIXES):
        return False
    return any(k.endswith(w) for w in words)


def _literal(value: Any) -> str | None:
    """The value as a judged literal, or None when it is not one (empty, boolean, reference, secret mark)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text == SECRET_MARK or REFERENCE_VALUE.match(text):
        return None
    return text


def masked(text: str) -> str:
    """A literal as messages show it: enough to find it, not enough to use it."""
    return f"'{text[:2]}***' ({len(text)} characters)"


def _safe(fn, *args, default=None):
    """``fn(*args)``, or ``default`` when a value is unknown during preview (a computed value is not a literal)."""
    try:
        return fn(*args)
    except Exception as exc:  # pulumi_policy.proxy.UnknownValueError (not imported: keep the check SDK-free)
        if type(exc).__name__ == "UnknownValueError":
            return default
        raise


def _walk(value: Any, path: str, words: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(path, literal) of every secret-like key in a tree; ``{name: X, value: Y}`` items (env lists) count as key
    ``X``. Keys are read without reading unknown values."""
    if is_map(value):
        keys = [str(k) for k in list(value)]
        if "name" in keys and "value" in keys:
            name = _safe(getitem, value, "name")
            if isinstance(name, str) and secret_like(name, words):
                lit = _literal(_safe(getitem, value, "value"))
                if lit is not None:
                    yield f"{path}[name={name}].value", lit
        for k in keys:
            child = _safe(getitem, value, k)
            where = f"{path}.{k}" if path else k
            if is_map(child) or is_seq(child):
                yield from _walk(child, where, words)
            elif k not in ("value", "name") and secret_like(k, words):
                lit = _literal(child)
                if lit is not None:
                    yield where, lit
    elif is_seq(value):
        for i, item in enumerate(list(value)):
            yield from _walk(item, f"{path}[{i}]", words)


def _parsed(key: str, text: Any) -> Any:
    """A ConfigMap value that is a config document (JSON, or YAML under a ``.yaml``/``.yml`` key), parsed; None
    otherwise. PyYAML comes with the Pulumi SDK, which the pack's environment always has."""
    if not isinstance(text, str):
        return None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            return None
    if key.endswith((".yaml", ".yml")):
        try:
            import yaml
            return yaml.safe_load(text)
        except Exception:  # noqa: BLE001 - not a document we can read: judged by its key only
            return None
    return None


def literal_secrets(resource_type: str, props: Any, words: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """(top-level input, property path, literal) of every literal secret in one resource's inputs."""
    if resource_type == HELM_RELEASE or resource_type == HELM_V4_CHART:
        for path, lit in _walk(as_map(get(props, "values")), "values", words):
            yield "values", path, lit
        return
    if resource_type == SECRET:
        for field in ("stringData", "data"):
            data = _safe(get, props, field)
            if not is_map(data):
                continue
            for k in list(data):
                lit = _literal(_safe(getitem, data, k))
                if lit is not None:
                    yield field, f"{field}.{k}", lit
        return
    if resource_type == CONFIG_MAP:
        data = _safe(get, props, "data")
        if not is_map(data):
            return
        for k in list(data):
            value = _safe(getitem, data, k)
            if secret_like(str(k), words):
                lit = _literal(value)
                if lit is not None:
                    yield "data", f"data.{k}", lit
            doc = _parsed(str(k), value)
            if doc is not None:
                for path, lit in _walk(doc, f"data.{k}", words):
                    yield "data", path, lit
        return
    pod = pod_template(resource_type, props)
    if pod is None:
        return
    base = POD_TEMPLATE_PATHS[resource_type]
    top = base.split(".", 1)[0] if base else "spec"
    prefix = f"{base}.spec" if base else "spec"
    for section in ("containers", "initContainers"):
        for i, c in enumerate(as_list(get(pod[1], section))):
            for env in as_list(get(c, "env")):
                name = get(env, "name")
                if not isinstance(name, str) or not secret_like(name, words) or "value" not in list(as_map(env)):
                    continue
                lit = _literal(_safe(getitem, env, "value"))
                if lit is not None:
                    yield top, f"{prefix}.{section}[{i}].env[name={name}].value", lit


def _all_literals(resource_type: str, props: Any, words: Sequence[str]) -> list[tuple[str, str, str]]:
    return list(literal_secrets(resource_type, props, words))


SECRET_SOURCE_ANNOTATION = "genai-scale.io/secret-source"
DECLARED_SOURCES = ("secretsmanager:", "pulumi-config:")


def _declared_source(r: Any, field: str) -> bool:
    """A Secret's data that names its deploy-time source (see the module docstring)."""
    if r.resource_type != SECRET or field not in ("data", "stringData"):
        return False
    def source_of() -> Any:
        try:
            return r.props["metadata"]["annotations"][SECRET_SOURCE_ANNOTATION]
        except (KeyError, TypeError):
            return None
    source = _safe(source_of)
    return isinstance(source, str) and source.startswith(DECLARED_SOURCES) and len(source) > len("pulumi-config:")


def _from_generated_secret(r: Any, field: str, allowed: set[str]) -> bool:
    deps = getattr(r, "property_dependencies", None) or {}
    return any(getattr(d, "resource_type", None) in allowed for d in deps.get(field, []) or [])


@stack_policy(Rule(
    id="no-literal-secrets",
    title="No literal secrets in Helm values, container env or Kubernetes manifests",
    description="A password, token or key in Helm release values, a container's env, a Secret's data/stringData or a "
                "ConfigMap must come from a generated secret (random.RandomPassword, ...) or be a reference to one "
                "(existingSecret, secretKeyRef, a Secrets Manager ARN), never a literal in code or stack config.",
    concern="security", severity=Severity.CRITICAL,
    remediation="Generate the value (random.RandomPassword), keep it in a Kubernetes Secret built from it and point "
                "the chart at that Secret (existingSecret / secretKeyRef, as Monitoring does for Grafana's admin "
                "password), or keep it in Secrets Manager and reference it; never put it in values or env as text.",
    config={"secretWords": {"type": "array", "items": {"type": "string"}, "default": SECRET_WORDS_DEFAULT,
                            "description": "A key is secret-like when its name, lower-cased without - _ and ., ends "
                                           "with one of these."},
            "allowedSources": {"type": "array", "items": {"type": "string"}, "default": ALLOWED_SOURCES_DEFAULT,
                               "description": "Resource types a secret value may be computed from."}},
))
def no_literal_secrets(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    words = [_norm(w) for w in cfg["secretWords"]]
    allowed = set(cfg["allowedSources"])
    judged = {HELM_RELEASE, HELM_V4_CHART, SECRET, CONFIG_MAP, *POD_TEMPLATE_PATHS}
    for r in resources:
        if r.resource_type not in judged:
            continue
        found = _safe(_all_literals, r.resource_type, r.props, words, default=[])
        for field, path, lit in found:
            if _from_generated_secret(r, field, allowed) or _declared_source(r, field):
                continue
            yield (f"{r.name}: {path} is a literal {masked(lit)}, not computed from a generated secret "
                   f"({', '.join(sorted(t.rsplit(':', 1)[-1] for t in allowed))}): it sits in source control or "
                   "stack config; generate it and reference it (existingSecret / secretKeyRef)"), r.urn
