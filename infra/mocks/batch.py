"""Computed outputs of the batch resources (SQS queues, EKS Pod Identity associations) in the shapes AWS returns."""

from __future__ import annotations

from typing import Any

from infra.mocks import MockContext, outputs_for, short_hash


@outputs_for("aws:sqs/queue:Queue")
def _queue(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """CreateQueue: an auto-named queue (``<name>-<7 chars>``), its URL and ARN."""
    queue = inputs.get("name") or f"{name[:72]}-{short_hash(name, n=7)}"
    url = f"https://sqs.{ctx.region}.amazonaws.com/{ctx.account}/{queue}"
    return {"id": url, "name": queue, "url": url, "arn": ctx.arn("sqs", queue)}


@outputs_for("aws:eks/podIdentityAssociation:PodIdentityAssociation")
def _pod_identity(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    aid = f"a-{short_hash(name, n=17)}"
    cluster = inputs.get("clusterName") or "cluster"
    return {"id": f"{cluster},{aid}", "associationId": aid,
            "associationArn": ctx.arn("eks", f"podidentityassociation/{cluster}/{aid}")}
