"""Rendered Kubernetes objects (plain dicts from a component's pure ``render_*`` functions) as Pulumi resources:
what the serving, batch and RAG components share when they create what they rendered."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def body(manifest: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` and ``spec`` of a rendered object, as keyword arguments of its typed Kubernetes resource."""
    return {"metadata": manifest["metadata"], "spec": manifest["spec"]}


def custom_resource(resource_name: str, manifest: dict[str, Any],
                    opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """A rendered custom object (ServiceMonitor, ScaledObject, ...) as a CustomResource named ``resource_name``."""
    return k8s.apiextensions.CustomResource(resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
