"""Computed outputs of the vector store's RDS resources (Aurora cluster, instances, subnet group) in the shapes AWS
returns them."""

from __future__ import annotations

from typing import Any

from infra.mocks import MockContext, outputs_for, short_hash


@outputs_for("aws:rds/cluster:Cluster")
def _cluster(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    ident = inputs.get("clusterIdentifier") or f"{name[:50]}-{short_hash(name, n=7)}"
    suffix = short_hash("aurora", ctx.account, ctx.region, n=12)
    arn = ctx.arn("rds", f"cluster:{ident}")
    secret = ctx.arn("secretsmanager", f"secret:rds!cluster-{short_hash(name, n=8)}-{short_hash(name, 's', n=6)}")
    return {"id": ident, "arn": arn, "clusterIdentifier": ident,
            "clusterResourceId": f"cluster-{short_hash(name, n=26).upper()}",
            "endpoint": f"{ident}.cluster-{suffix}.{ctx.region}.rds.amazonaws.com",
            "readerEndpoint": f"{ident}.cluster-ro-{suffix}.{ctx.region}.rds.amazonaws.com",
            "port": inputs.get("port", 5432), "engineVersionActual": inputs.get("engineVersion", ""),
            "masterUserSecrets": [{"kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""), "secretArn": secret,
                                   "secretStatus": "active"}]}


@outputs_for("aws:rds/clusterInstance:ClusterInstance")
def _instance(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    ident = inputs.get("identifier") or f"{name[:50]}-{short_hash(name, n=7)}"
    suffix = short_hash("aurora", ctx.account, ctx.region, n=12)
    return {"id": ident, "identifier": ident, "arn": ctx.arn("rds", f"db:{ident}"),
            "endpoint": f"{ident}.{suffix}.{ctx.region}.rds.amazonaws.com", "port": 5432,
            "writer": inputs.get("promotionTier", 0) == 0}


def _group(ctx: MockContext, name: str, inputs: dict[str, Any], kind: str) -> dict[str, Any]:
    group = inputs.get("name") or f"{name[:200]}-{short_hash(name, n=7)}".lower()
    return {"id": group, "name": group, "arn": ctx.arn("rds", f"{kind}:{group}")}


@outputs_for("aws:rds/subnetGroup:SubnetGroup")
def _subnet_group(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return _group(ctx, name, inputs, "subgrp")


@outputs_for("aws:rds/clusterParameterGroup:ClusterParameterGroup")
def _cluster_parameter_group(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return _group(ctx, name, inputs, "cluster-pg")
