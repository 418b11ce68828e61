"""Computed outputs of the storage resources: the EFS file system (shared compile cache) and its mount targets."""

from __future__ import annotations

from typing import Any

from infra.mocks import MockContext, outputs_for, short_hash


@outputs_for("aws:efs/fileSystem:FileSystem")
def _file_system(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    fid = f"fs-{short_hash('efs', name, n=17)}"
    return {"id": fid, "arn": ctx.arn("elasticfilesystem", f"file-system/{fid}"),
            "dnsName": f"{fid}.efs.{ctx.region}.amazonaws.com", "ownerId": ctx.account,
            "kmsKeyId": inputs.get("kmsKeyId") or ctx.arn("kms", "key/aws-elasticfilesystem")}


@outputs_for("aws:efs/mountTarget:MountTarget")
def _mount_target(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    mid = f"fsmt-{short_hash('efs-mt', name, n=17)}"
    return {"id": mid, "ipAddress": "10.0.0.10", "networkInterfaceId": f"eni-{short_hash('efs-eni', name, n=17)}"}
