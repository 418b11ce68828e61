"""Rendered Kubernetes objects (plain dicts from a component's pure ``render_*`` functions) as Pulumi resources:
what the serving, batch and RAG components share when they create what they rendered; and the pod identity and
container security context they all run with."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

RUN_AS_USER = 10001
"""UID of the non-root user the images create (serving/vllm/Dockerfile.*); the shared compile cache's access points
own their files as this user."""
RUN_AS_GROUP = 0
"""GID the serving containers run as (``runAsGroup``; the user stays non-root)."""
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
"""The container security context of the restricted Pod Security Standard (with the pod's non-root user)."""


def body(manifest: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` and ``spec`` of a rendered object, as keyword arguments of its typed Kubernetes resource."""
    return {"metadata": manifest["metadata"], "spec": manifest["spec"]}


def custom_resource(resource_name: str, manifest: dict[str, Any],
                    opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """A rendered custom object (ServiceMonitor, ScaledObject, ...) as a CustomResource named ``resource_name``."""
    return k8s.apiextensions.CustomResource(resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)
