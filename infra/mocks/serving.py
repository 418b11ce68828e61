"""Computed outputs of the serving resources: ECR repositories, ECR auth tokens, pulumi-docker-build images, and the
Secrets Manager read of the Hugging Face token."""

from __future__ import annotations

from typing import Any

from infra.mocks import MockContext, call_for, outputs_for, short_hash


@outputs_for("aws:ecr/repository:Repository")
def _repository(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    repo = inputs.get("name") or name
    return {"id": repo, "name": repo, "registryId": ctx.account,
            "arn": ctx.arn("ecr", f"repository/{repo}"),
            "repositoryUrl": f"{ctx.account}.dkr.ecr.{ctx.region}.amazonaws.com/{repo}"}


@call_for("aws:ecr/getAuthorizationToken:getAuthorizationToken")
def _ecr_token(ctx: MockContext, args: dict[str, Any]) -> dict[str, Any]:
    registry = args.get("registryId") or ctx.account
    return {"id": ctx.region, "userName": "AWS", "password": "mock-ecr-token", "authorizationToken": "QVdTOm1vY2s=",
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{ctx.region}.amazonaws.com", "expiresAt": "2099-01-01T00:00:00Z"}


@outputs_for("docker-build:index:Image")
def _image(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    tags = inputs.get("tags") or [f"{name}:latest"]
    digest = "sha256:" + short_hash("image", name, str(tags), n=64)
    return {"digest": digest, "ref": f"{tags[0]}@{digest}"}


@call_for("aws:secretsmanager/getSecretVersion:getSecretVersion")
def _secret_version(ctx: MockContext, args: dict[str, Any]) -> dict[str, Any]:
    """A fake secret string (the offline plan shows it only as ``[secret]``)."""
    secret_id = args.get("secretId") or "secret"
    arn = secret_id if secret_id.startswith("arn:") else ctx.arn("secretsmanager", f"secret:{secret_id}-AbCdEf")
    return {"id": f"{arn}|AWSCURRENT", "arn": arn, "secretId": secret_id, "secretString": "hf_mocktoken0000",
            "versionId": short_hash("secret", secret_id, n=32), "versionStage": "AWSCURRENT",
            "versionStages": ["AWSCURRENT"], "createdDate": "2026-01-01T00:00:00Z"}
