"""Every built-in Kubernetes object the stacks create validates against the Kubernetes 1.35 OpenAPI schema (strict:
unknown fields fail). Custom resources (KEDA, Prometheus operator, AWS LB controller) have no schema here; they are
checked by their own component tests."""

import kubernetes_validate
import pytest

from components import versions
from infra.plan import jsonable
from tests.stack_plans import planned

SCHEMA_VERSION = f"{versions.KUBERNETES_VERSION}.0"
BUILTIN_GROUPS = ("kubernetes:core/", "kubernetes:apps/", "kubernetes:policy/", "kubernetes:autoscaling/",
                  "kubernetes:scheduling.k8s.io/", "kubernetes:rbac.authorization.k8s.io/", "kubernetes:batch/",
                  "kubernetes:networking.k8s.io/")


def manifests(stack):
    result, _ = planned(stack)
    for r in result.resources:
        if r.custom and r.type.startswith(BUILTIN_GROUPS):
            body = jsonable(r.inputs, reveal_secrets=True)
            yield r.name, {k: v for k, v in body.items() if k in ("apiVersion", "kind", "metadata", "spec", "data",
                                                                  "stringData", "type", "value", "description",
                                                                  "globalDefault", "preemptionPolicy", "rules",
                                                                  "roleRef", "subjects", "immutable")}


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
