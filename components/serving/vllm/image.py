"""VllmImage: the serving image for one accelerator vendor, built and pushed to a private ECR repository by Pulumi.

Creates a KMS key (rotation on; unless ``kms_key_arn`` is given), an ECR repository (scan on push, immutable tags,
KMS encryption), a lifecycle policy (untagged images expire after ``untagged_expiry_days``, at most ``keep_images``
tagged images are kept), and a pulumi-docker-build ``Image`` that builds ``serving/vllm/Dockerfile.<vendor>`` on the
pinned upstream image (vllm/vllm-openai for NVIDIA, the AWS Neuron vLLM DLC for Inferentia2) and pushes it, so
``pulumi up`` publishes it. The tag is ``<engine version>-<hash of the build context>``: a changed entrypoint gets a new
tag (tags are immutable), an unchanged one re-uses the pushed image. Pods pull it by digest (:attr:`image_ref`).

Defaults: repository ``genai-scale/<stack>/vllm-<vendor>`` (stacks in one account never collide), a new KMS key, 10 tagged images kept, untagged ones expire after
7 days, built for linux/amd64, pushed on ``pulumi up`` and never built on ``pulumi preview``.

The image holds no model weights: its entrypoint fetches them from S3 at start. Security: non-root user, private
repository reachable through the VPC's ECR endpoints, images scanned on push. Cost drivers: ECR storage (the NVIDIA
base image is ~10 GB compressed; the lifecycle policy bounds the count), the build machine's time. Quotas: ECR
repositories per Region (10,000).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.catalog.vendors import Vendor, facts_for
from components.naming import aws_name, current_stack

CONTEXT_DIR = Path(__file__).resolve().parents[3] / "serving" / "vllm"
"""serving/vllm: the Dockerfiles and the entrypoint (the build context; no weights in it)."""


def base_image(vendor: str) -> str:
    """``<repository>:<tag>`` of the pinned upstream vLLM image for a vendor (its registry record names the pin)."""
    pin = getattr(versions, facts_for(vendor).vllm_base_image)
    return f"{pin.repository}:{pin.version}"


def engine_version(vendor: str) -> str:
    """vLLM version inside the vendor's image (flags are rendered for it)."""
    pin = getattr(versions, facts_for(vendor).vllm_engine_version)
    return pin.version if isinstance(pin, versions.Pin) else pin


def dockerfile(vendor: str) -> str:
    """File name of the vendor's Dockerfile in :data:`CONTEXT_DIR`."""
    return facts_for(vendor).vllm_dockerfile


class VllmImageArgs(ArgsModel):
    """Arguments of :class:`VllmImage`."""

    vendor: Vendor
    """nvidia (Dockerfile.nvidia on vllm/vllm-openai) or neuron (Dockerfile.neuron on the Neuron vLLM DLC): the
    image family of the vendor's record in components.catalog.vendors."""
    repository_name: str | None = Field(default=None, pattern=r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")
    """ECR repository name. Default: ``genai-scale/<stack>/vllm-<vendor>`` (see :func:`repository_name`)."""
    base_image: str | None = None
    """Upstream image to build on. Default: the pinned one for the vendor (components/versions.py)."""
    kms_key_arn: PulumiInput = None
    """KMS key for the repository. Default: a new key with rotation."""
    keep_images: int = Field(default=10, ge=1, le=1000)
    """Tagged images kept; older ones expire. Default: 10."""
    untagged_expiry_days: int = Field(default=7, ge=1, le=365)
    """Days before an untagged image expires. Default: 7."""
    push: bool = True
    """Push after building (``pulumi up`` publishes the image). Default: on."""
    force_delete: bool = False
    """Let ``pulumi destroy`` delete the repository while it still holds images: set true before ``pulumi destroy``
    to delete repositories that still hold images. Default: off (destroy fails on a repository with images, so pushed
    images are never lost by accident)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the key and the repository."""


def repository_name(stack: str, vendor: str) -> str:
    """The default ECR repository: ``genai-scale/<stack>/vllm-<vendor>``, through :func:`components.naming.aws_name`
    (a stack name ECR does not accept, e.g. ``Team-A``, gives ``genai-scale/team-a-<hash>/vllm-<vendor>``)."""
    return aws_name("ecr-repository", "genai-scale", stack, f"vllm-{vendor}")


def context_digest(directory: Path = CONTEXT_DIR) -> str:
    """sha256 over the build context's file names and contents (stable across machines)."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(directory)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def image_tag(vendor: str, directory: Path = CONTEXT_DIR) -> str:
    """Immutable tag: engine version + first 12 hex digits of the context digest."""
    return f"{engine_version(vendor)}-{context_digest(directory)[:12]}"


def _relative(path: Path) -> str:
    """The context relative to the program's working directory (the project root under `pulumi up`)."""
    try:
        return os.path.relpath(path, os.getcwd())
    except ValueError:  # another drive (Windows)
        return str(path)


def lifecycle_policy(keep_images: int, untagged_expiry_days: int) -> dict[str, Any]:
    """ECR lifecycle rules: expire untagged images after N days; keep the newest ``keep_images`` images."""
    return {"rules": [
        {"rulePriority": 1, "description": f"expire untagged images after {untagged_expiry_days} days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": untagged_expiry_days},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"keep the newest {keep_images} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
         "action": {"type": "expire"}},
    ]}


class VllmImage(pulumi.ComponentResource):
    """Private ECR repository plus the built and pushed vLLM image. See the module docstring."""

    repository: aws.ecr.Repository
    """The ECR repository."""
    image: docker_build.Image
    """The build (and push)."""
    repository_url: pulumi.Output[str]
    """URL of the ECR repository the image is pushed to."""
    image_ref: pulumi.Output[str]
    """``<repository>:<tag>@sha256:<digest>``, what Deployments pull."""
    engine_version: str
    """vLLM version inside the image (flags are rendered for it)."""
    tag: str
    """The image tag: the engine version and a digest of the build context, so an unchanged context is not rebuilt."""

    def __init__(self, name: str, args: VllmImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}VllmImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.engine_version = engine_version(args.vendor)
        self.tag = image_tag(args.vendor)
        kms_key = args.kms_key_arn
        if kms_key is None:
            key = aws.kms.Key(f"{name}-key", description=f"ECR encryption for the vLLM {args.vendor} image",
                              enable_key_rotation=True, deletion_window_in_days=30, tags=args.tags, opts=child)
            kms_key = key.arn
        self.repository = aws.ecr.Repository(
            f"{name}-repo", name=args.repository_name or repository_name(current_stack(), args.vendor),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": kms_key}],
            force_delete=args.force_delete, tags=args.tags, opts=child)
        aws.ecr.LifecyclePolicy(f"{name}-lifecycle", repository=self.repository.name,
                                policy=json.dumps(lifecycle_policy(args.keep_images, args.untagged_expiry_days)),
                                opts=child)
        self.repository_url = self.repository.repository_url
        token = aws.ecr.get_authorization_token_output(registry_id=self.repository.registry_id)
        context = _relative(CONTEXT_DIR)
        self.image = docker_build.Image(
            f"{name}-image",
            context={"location": context},
            dockerfile={"location": f"{context}/{dockerfile(args.vendor)}"},
            build_args={"BASE_IMAGE": args.base_image or base_image(args.vendor)},
            platforms=["linux/amd64"],
            push=args.push,
            build_on_preview=False,  # a 10 GB build is not a preview
            tags=[self.repository_url.apply(lambda url: f"{url}:{self.tag}")],
            registries=[{"address": self.repository_url.apply(lambda url: url.split("/", 1)[0]),
                         "username": token.user_name, "password": pulumi.Output.secret(token.password)}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.repository]))
        self.image_ref = self.image.ref
        self.register_outputs({"repository_url": self.repository_url, "image_ref": self.image_ref})
