"""Every built-in Kubernetes object the stacks create validates against the Kubernetes 1.35 OpenAPI schema (strict:
unknown fields fail).

Source of the core-kind schema: the ``kubernetes-validate`` package (PyPI, pinned in pyproject.toml's test extra),
which ships the JSON schemas generated from the Kubernetes OpenAPI definitions per release (``v1.35.0-local-strict``).
It is not vendored under tests/upstream/: the 1.35 schema set is 4.8 MB, about the whole budget for vendored data.
Custom resources (KEDA, Prometheus operator, AWS LB controller) are validated against their vendored CRDs in
tests/infra/test_upstream_truth.py.
"""

import kubernetes_validate
import pytest

from components import versions
from infra.plan import jsonable
from tests.stack_plans import planned

SCHEMA_VERSION = f"{versions.KUBERNETES_VERSION}.0"
BUILTIN_GROUPS = tuple(f"kubernetes:{g}/" for g in (
    "core", "apps", "policy", "autoscaling", "batch", "scheduling.k8s.io", "rbac.authorization.k8s.io",
    "networking.k8s.io", "storage.k8s.io", "node.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "certificates.k8s.io",
    "flowcontrol.apiserver.k8s.io", "resource.k8s.io"))
"""The API groups a Kubernetes 1.35 API server serves itself; any other group is a custom resource."""


def is_builtin(token: str) -> bool:
    """A Pulumi type token (``kubernetes:apps/v1:Deployment``) of a kind the API server serves itself."""
    return token.startswith(BUILTIN_GROUPS)


def manifests(stack):
    result, _ = planned(stack)
    for r in result.resources:
        if r.custom and is_builtin(r.type):
            # the inputs are the manifest: every field is checked, none is filtered out
            yield r.name, jsonable(r.inputs, reveal_secrets=True)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_builtin_objects_match_the_kubernetes_schema(stack):
    checked, errors = 0, []
    for name, body in manifests(stack):
        body.setdefault("metadata", {}).setdefault("name", name)
        try:
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name} ({body.get('kind')}): {exc.message} at {list(exc.path)}")
    assert errors == []
    assert checked > 0
