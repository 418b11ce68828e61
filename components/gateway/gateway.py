"""The serving gateway on EKS: the OpenAI-compatible front door in ``serving/gateway`` as a Kubernetes workload.

Creates (children named ``<name>-<suffix>``):
- unless ``image`` is given: an ECR repository for the gateway image (immutable tags, scan on push, KMS-encrypted,
  lifecycle policy) and a pulumi-docker-build ``Image`` that builds ``serving/gateway/Dockerfile`` and pushes it on
  ``pulumi up``. Its context is the repository root narrowed by ``serving/gateway/Dockerfile.dockerignore`` to what
  the gateway runs (``serving/__init__.py``, ``serving/aws``, ``serving/gateway``, ``problems``); the tag is the
  version + a digest of the Dockerfile and exactly those files, so editing ``infra``, ``components`` or ``policies``
  neither rebuilds nor rolls out the gateway;
- a Namespace (optional), a ServiceAccount with an IRSA role that may invoke only the Bedrock and SageMaker
  resources it routes to (their ``invoke_policy_arns``) and, with Bedrock embeddings, that one embedding model;
- with ``batch_bucket`` and the other ``batch_*`` inputs (a :class:`~components.batch.batch_inference.BatchInference`'s
  outputs): the config's ``batch`` block (the OpenAI Batch and Files APIs) and, in the same IRSA role, the rights the
  API needs (:func:`batch_policy_statements`);
- a ConfigMap with the rendered gateway config, a Secret with the cache AUTH token, a Secret with the SHA-256
  digests of one generated API key per tenant (the keys themselves are Pulumi secret outputs, ``api_keys``);
- a Deployment (restricted pod security, read-only root filesystem, requests = limits for memory, readiness on
  ``/readyz``, liveness on ``/healthz``, a ``preStop`` pause then SIGTERM drain, grace period covering both,
  spread across zones), a ClusterIP Service (8080 traffic, 9090 metrics), an HPA on CPU and a PDB;
- a ``TargetGroupBinding`` that registers the pods in the ALB's ``gateway`` target group, when one is given;
- a ``ServiceMonitor`` for the metrics port, with ``service_monitor`` (Prometheus operator installed).

Defaults: 2-6 replicas at 60 % CPU, 500m/1 GiB requests, 30 s drain. Security: non-root (UID 10001), no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp, no service-account token mounted, no tolerations (it
never lands on GPU nodes), TLS to the cache (``rediss://``) with AUTH from a Secret, metrics on a port the ALB does
not forward. Cost drivers: the pods' CPU/memory on the general node group (about 0.5 vCPU and 1 GiB each at the
defaults), ECR storage. Quotas: none beyond the cluster's; the IAM role counts against the account's role quota.
Give ``cluster=<EksCluster>`` and the OIDC provider comes from it (explicit inputs win), and its Kubernetes provider
when ``opts`` names none.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml
from pydantic import Field

from components import versions

from components.foundation import irsa as _irsa
from components.foundation.eks_cluster import from_cluster, with_cluster_provider
from components.base import ArgsModel, PulumiInput, TYPE_PREFIX, merge_tags
from problems import Problem
from components.serving.vllm.image import lifecycle_policy

REPO_ROOT = Path(__file__).resolve().parents[2]

HTTP_PORT = 8080
METRICS_PORT = 9090
CONFIG_PATH = "/etc/gateway/config/gateway.yaml"
KEYS_PATH = "/etc/gateway/keys/keys.yaml"
AUTH_ENV = "GATEWAY_REDIS_AUTH_TOKEN"


class TenantSpec(ArgsModel):
    requests_per_minute: int | None = Field(None, gt=0)
    """Request budget. Default: unlimited."""
    tokens_per_minute: int | None = Field(None, gt=0)
    """Token budget (prompt + completion, enforced across replicas). Default: unlimited."""
    max_tokens: int | None = Field(None, gt=0)
    """Largest ``max_tokens`` this tenant may ask for. Default: the route's cap."""
    batch_tokens_per_day: int | None = Field(None, gt=0)
    """Batch API budget: estimated tokens submitted per UTC day, separate from ``tokens_per_minute`` (only with the
    batch wiring). Default: unlimited."""


class GatewayArgs(ArgsModel):
    """Arguments of :class:`Gateway`."""

    config: PulumiInput
    """The gateway configuration (``serving/gateway`` schema, camelCase keys) as a dict that may hold Outputs.
    ``server``, ``tenants.keysFile`` and the Redis AUTH wiring are set by the component."""
    tenants: dict[str, TenantSpec]
    """Tenants; each gets one generated API key (``api_keys`` output) and these limits."""
    namespace: str = "genai-gateway"
    """Kubernetes namespace. Default: genai-gateway."""
    create_namespace: bool = True
    """Create the namespace. Default: yes."""
    image: str | None = None
    """Full image reference. Default: the image built from this repository and pushed to an ECR repository created
    here (see ``build_image``)."""
    min_replicas: int = Field(2, ge=1)
    """HPA lower bound. Default: 2 (one pod can drain while the other serves)."""
    max_replicas: int = Field(6, ge=1)
    """HPA upper bound. Default: 6."""
    target_cpu_percent: int = Field(60, ge=10, le=95)
    """HPA CPU utilisation target. Default: 60 %."""
    cpu_request: str = "500m"
    """CPU request per pod. Default: 500m."""
    cpu_limit: str = "2"
    """CPU limit per pod. Default: 2 (bursts for the local embedder)."""
    memory: str = "1Gi"
    """Memory request and limit per pod. Default: 1Gi (embedding weights ~90 MB plus the shared-log matrix)."""
    drain_timeout_seconds: int = Field(30, ge=1, le=3600)
    """How long a terminating pod keeps serving in-flight streams. Default: 30 s."""
    pre_stop_seconds: int = Field(15, ge=0, le=120)
    """Pause before SIGTERM so the ALB (through the Load Balancer Controller's deregistration) and the endpoints stop
    sending new requests first. Default: 15 s."""
    redis_auth_token: PulumiInput | None = None
    """Cache AUTH token (a secret Output). Default: none (no AUTH; only for caches without it)."""
    upstream_api_keys: dict[str, PulumiInput] = Field(default_factory=dict)
    """Environment variable -> API key (secret Output) of an upstream, e.g. ``VLLM_LLAMA_8B_API_KEY`` for a vLLM
    service that requires a key; the config's upstream names the variable in ``apiKeyEnv``. Stored in the Secret
    ``gateway-upstream-keys``. Default: none."""
    target_group_arn: PulumiInput | None = None
    """ALB target group (IP targets, port 8080) to bind the Service to. Default: none (no TargetGroupBinding)."""
    invoke_policy_arns: dict[str, PulumiInput] | list[PulumiInput] = Field(default_factory=dict)
    """IAM policies that allow invoking the routed Bedrock/SageMaker resources, keyed by what they allow (each is
    attached as ``<name>-irsa-managed-<key>``; a plain list of ARNs known only at deploy time is attached by position).
    Default: none."""
    bedrock_embedding_model_arn: PulumiInput | None = None
    """Foundation-model ARN of the Bedrock embedding model, when the semantic cache embeds with Bedrock. Default:
    none (local CPU embeddings)."""
    oidc_provider_arn: PulumiInput | None = None
    """Cluster OIDC provider (IRSA); required when the gateway invokes AWS APIs. Default: none."""
    oidc_issuer: PulumiInput | None = None
    """Cluster OIDC issuer without ``https://`` (IRSA); required with ``oidc_provider_arn``. Default: none."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` the gateway runs in: ``oidc_provider_arn`` and
    ``oidc_issuer`` default from it (explicit values win), and its Kubernetes provider is used when ``opts`` names
    none. Default: none."""
    batch_bucket: PulumiInput | None = None
    """Bucket of the Batch and Files APIs (``BatchInference.bucket``); with the other ``batch_*`` inputs it turns the
    APIs on. Default: none (no batch API)."""
    batch_queue_url: PulumiInput | None = None
    """Shard queue URL (``BatchInference.queue_url``). Default: none."""
    batch_queue_arn: PulumiInput | None = None
    """Shard queue ARN (``BatchInference.queue.arn``): the gateway may send to it. Default: none."""
    batch_dlq_arn: PulumiInput | None = None
    """Dead-letter queue ARN (``BatchInference.dead_letter_queue.arn``): the finaliser reads it. Default: none."""
    batch_kms_key_arn: PulumiInput | None = None
    """Key of the queues and the bucket (``BatchInference.kms_key_arn``). Default: none."""
    batch_region: PulumiInput | None = None
    """Region of the bucket and queue. Default: the SDK's (``AWS_REGION`` of the pods)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the AWS children. Default: none."""
    depends_on: list[Any] = Field(default_factory=list)
    """Resources the TargetGroupBinding waits for (the Load Balancer Controller). Default: none."""
    service_monitor: bool = False
    """Create a Prometheus-operator ServiceMonitor for the gateway's metrics (needs the operator's CRDs; the vLLM
    services' scale-from-zero triggers read the gateway's upstream request counter). Default: off."""
    monitoring_depends_on: list[Any] = Field(default_factory=list)
    """Resources the ServiceMonitor waits for (the monitoring release that installs the CRDs). Default: none."""
    build_image: bool = True
    """When ``image`` is not given: build ``serving/gateway/Dockerfile`` and push it to the ECR repository on
    ``pulumi up`` (pulumi-docker-build; needs Docker buildx where ``pulumi up`` runs). Off: push it yourself as
    ``<repository>:<versions.GATEWAY_IMAGE>``. Default: on."""
    force_delete_repository: bool = False
    """When ``image`` is not given: let ``pulumi destroy`` delete the gateway's ECR repository while it still holds
    images; set true before ``pulumi destroy`` to delete repositories that still hold images. Default: off (destroy
    fails on a repository with images)."""

    def problems(self) -> list[Problem]:
        out = []
        if self.max_replicas < self.min_replicas:
            out.append(Problem("max_replicas", self.max_replicas, f">= min_replicas ({self.min_replicas})"))
        if not self.tenants:
            out.append(Problem("tenants", {}, "at least one tenant (clients need an API key)"))
        if (self.invoke_policy_arns or self.bedrock_embedding_model_arn is not None) and self.cluster is None and (
                self.oidc_provider_arn is None or self.oidc_issuer is None):
            out.append(Problem("oidc_provider_arn", None, "required (with oidc_issuer) when the gateway invokes "
                               "Bedrock or SageMaker: its pods get an IRSA role (or pass cluster=EksCluster)"))
        given = {k: getattr(self, k) is not None for k in BATCH_INPUTS}
        if any(given.values()) and not all(given.values()):
            for k in BATCH_INPUTS:
                if not given[k]:
                    out.append(Problem(k, None, "required with the other batch inputs (" +
                                       ", ".join(k2 for k2 in BATCH_INPUTS if given[k2]) + ")"))
        if all(given.values()) and self.cluster is None and (self.oidc_provider_arn is None or
                                                             self.oidc_issuer is None):
            out.append(Problem("oidc_provider_arn", None, "required (with oidc_issuer) with the batch inputs: the "
                               "gateway's pods get an IRSA role for the bucket and queues (or pass "
                               "cluster=EksCluster)"))
        if not any(given.values()):
            for t, spec in self.tenants.items():
                if spec.batch_tokens_per_day is not None:
                    out.append(Problem(f"tenants.{t}.batch_tokens_per_day", spec.batch_tokens_per_day,
                                       "unset without the batch inputs (batch_bucket, ...): there is no batch API"))
        for env in self.upstream_api_keys:
            if not env or not (env[0].isalpha() or env[0] == "_") or not all(c.isalnum() or c == "_" for c in env):
                out.append(Problem(f"upstream_api_keys.{env}", env, "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"))
        for t in self.tenants:
            if not t or not all(c.isalnum() or c in "-_." for c in t) or len(t) > 63:
                out.append(Problem(f"tenants.{t}", t, "1-63 characters: letters, digits, '-', '_', '.'"))
        return out


UPSTREAM_KEYS_SECRET = "gateway-upstream-keys"
BATCH_INPUTS = ("batch_bucket", "batch_queue_url", "batch_queue_arn", "batch_dlq_arn", "batch_kms_key_arn")
"""The batch inputs that must come together (``batch_region`` is optional)."""
BATCH_PREFIXES = ("files/", "batches/")
"""Key prefixes of the Batch and Files APIs in the bucket (uploads, per-batch folders; ``serving/gateway`` layout)."""


def batch_policy_statements(bucket: str, queue_arn: str, dlq_arn: str, kms_key_arn: str) -> list[dict[str, Any]]:
    """Least-privilege statements of the gateway's Batch and Files APIs: objects under ``files/`` and ``batches/``
    of the bucket (and listing it), sending shard messages, the finaliser's reads of the dead-letter queue, and the
    key that encrypts both."""
    return [
        {"Sid": "BatchObjects", "Effect": "Allow", "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in BATCH_PREFIXES]},
        {"Sid": "BatchList", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Sid": "BatchSendShards", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue_arn]},
        {"Sid": "BatchReadDeadLetters", "Effect": "Allow",
         "Action": ["sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
         "Resource": [dlq_arn]},
        {"Sid": "BatchKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": [kms_key_arn]},
    ]


def batch_block(bucket: str, queue_url: str, region: str | None) -> dict[str, Any]:
    """The gateway config's ``batch`` block."""
    return {"enabled": True, "bucket": bucket, "queueUrl": queue_url, **({"region": region} if region else {})}


def grace_period_seconds(args: GatewayArgs) -> int:
    """Pod termination grace: preStop pause + drain + 5 s for the process to exit."""
    return args.pre_stop_seconds + args.drain_timeout_seconds + 5


def render_config(config: dict[str, Any], args: GatewayArgs, tenants: dict[str, TenantSpec],
                  batch: dict[str, Any] | None = None) -> str:
    """The ConfigMap's gateway.yaml: the given config plus what the deployment owns (listener, keys, AUTH, and the
    ``batch`` block from :func:`batch_block` when given)."""
    cfg = json.loads(json.dumps(config))
    if batch is not None:
        cfg["batch"] = {**cfg.get("batch", {}), **batch}
    cfg["server"] = {**cfg.get("server", {}), "host": "0.0.0.0", "port": HTTP_PORT, "metricsPort": METRICS_PORT,
                     "drainTimeoutSeconds": args.drain_timeout_seconds}
    t = cfg.setdefault("tenants", {})
    t["keysFile"] = KEYS_PATH
    t["limits"] = {name: {k: v for k, v in (("requestsPerMinute", s.requests_per_minute),
                                            ("tokensPerMinute", s.tokens_per_minute),
                                            ("maxTokens", s.max_tokens),
                                            ("batchTokensPerDay", s.batch_tokens_per_day)) if v is not None}
                   for name, s in tenants.items()}
    if args.redis_auth_token is not None:
        cfg.setdefault("redis", {})["authTokenEnv"] = AUTH_ENV
    return yaml.safe_dump(cfg, sort_keys=True)


def keys_file(digests: dict[str, str]) -> str:
    return yaml.safe_dump({t: [d] for t, d in sorted(digests.items())})


def pod_security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def container_spec(args: GatewayArgs, image: Any) -> dict[str, Any]:
    env = [{"name": "OPENBLAS_NUM_THREADS", "value": "1"}, {"name": "HOME", "value": "/tmp"}]
    if args.redis_auth_token is not None:
        env.append({"name": AUTH_ENV, "valueFrom": {"secretKeyRef": {"name": "gateway-redis-auth", "key": "token"}}})
    for var in sorted(args.upstream_api_keys):
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": UPSTREAM_KEYS_SECRET, "key": var}}})
    return {
        "name": "gateway", "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["serve", "--config", CONFIG_PATH],  # image ENTRYPOINT: python -m serving.gateway.cli
        "ports": [{"name": "http", "containerPort": HTTP_PORT}, {"name": "metrics", "containerPort": METRICS_PORT}],
        "env": env,
        "resources": {"requests": {"cpu": args.cpu_request, "memory": args.memory},
                      "limits": {"cpu": args.cpu_limit, "memory": args.memory}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5,
                           "timeoutSeconds": 2, "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 10,
                          "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
        "startupProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2,
                         "failureThreshold": 60},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(args.pre_stop_seconds)]}}}
        if args.pre_stop_seconds else {},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "config", "mountPath": "/etc/gateway/config", "readOnly": True},
                         {"name": "keys", "mountPath": "/etc/gateway/keys", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }


DOCKERFILE = "serving/gateway/Dockerfile"
"""The gateway image's Dockerfile, relative to the repository root (the build context)."""
DOCKERIGNORE = f"{DOCKERFILE}.dockerignore"
"""Its Dockerfile-specific ignore file. BuildKit (``docker buildx``, pulumi-docker-build) reads
``<Dockerfile>.dockerignore`` instead of the context root's ``.dockerignore``; it narrows the context to what the
gateway runs."""


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """An ignore-file pattern as a regex over slash-separated paths: ``*`` and ``?`` stay within one path segment,
    ``**`` spans any number of segments (even none), ``[...]`` is a character class, ``\\`` escapes."""
    regex, i = "^", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 3 if pattern.startswith("**/", i) else 2
            regex += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += {"*": "[^/]*", "?": "[^/]", "[": "[", "]": "]"}.get(c, re.escape(c))
        i += 1
    return re.compile(regex + "$")


def _ignore_rules(text: str) -> list[tuple[bool, str, re.Pattern[str]]]:
    """(is exception, cleaned pattern, regex) per rule of an ignore file, read as moby/patternmatcher reads it: ``#``
    in the first column starts a comment, ``!`` puts paths back, a leading ``/`` is the context root."""
    rules = []
    for line in text.splitlines():
        pattern = "" if line.startswith("#") else line.strip()
        exception = pattern.startswith("!")
        pattern = pattern[1:].strip() if exception else pattern
        if pattern:
            pattern = posixpath.normpath(pattern)
            pattern = pattern.lstrip("/") if len(pattern) > 1 else pattern
            rules.append((exception, pattern, _pattern_regex(pattern)))
    return rules


def _excluded(rules, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
    """Whether ``path`` is left out, and which rules matched it or a parent (fsutil's walk: the last rule that matches
    the path or one of its parents decides; ``!`` rules put paths back)."""
    excluded, matched = False, []
    for i, (exception, _, regex) in enumerate(rules):
        hit = parent[i] if parent else False
        if not hit and exception == excluded:  # a rule that could change the verdict so far
            hit = regex.match(path) is not None
        matched.append(hit)
        if hit:
            excluded = not exception
    return excluded, matched


def context_files(root: Path = REPO_ROOT) -> list[str]:
    """The files of the gateway image's build context (paths relative to ``root``, sorted): the repository root filtered
    by :data:`DOCKERIGNORE` as BuildKit filters it."""
    rules = _ignore_rules((root / DOCKERIGNORE).read_text())
    exceptions = [pattern for exception, pattern, _ in rules if exception]
    files: list[str] = []

    def walk(directory: str, parent: list[bool] | None) -> None:
        for entry in sorted(os.scandir(root / directory), key=lambda e: e.name):
            rel = f"{directory}/{entry.name}" if directory else entry.name
            excluded, matched = _excluded(rules, rel, parent)
            if entry.is_dir(follow_symlinks=False):
                # An excluded directory is entered only when an exception may put back something below it.
                if not excluded or any(p.startswith(f"{rel}/") or any(c in p for c in "*?[\\") for p in exceptions):
                    walk(rel, matched)
            elif not excluded and entry.is_file():
                files.append(rel)

    walk("", None)
    return sorted(files)


def image_tag(root: Path = REPO_ROOT) -> str:
    """Immutable tag: gateway version + first 12 hex digits of a digest of the Dockerfile and every file of the build
    context (names and contents): what the image is built from, and nothing else."""
    h = hashlib.sha256()
    h.update(b"\0Dockerfile\0" + (root / DOCKERFILE).read_bytes() + b"\0")
    for rel in context_files(root):
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return f"{versions.GATEWAY_IMAGE.version}-{h.hexdigest()[:12]}"


def _build_image(name: str, repo: aws.ecr.Repository, parent: pulumi.Resource) -> pulumi.Output[str]:
    """Build serving/gateway/Dockerfile (context: the repository root, narrowed by its Dockerfile.dockerignore) and
    push it; returns ``repo:tag@digest``."""
    import pulumi_docker_build as docker_build

    tag = image_tag()
    token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
    context = os.path.relpath(REPO_ROOT, os.getcwd())
    built = docker_build.Image(
        f"{name}-image", context={"location": context},
        dockerfile={"location": os.path.join(context, *DOCKERFILE.split("/"))},
        platforms=["linux/amd64"], push=True, build_on_preview=False,
        tags=[repo.repository_url.apply(lambda u: f"{u}:{tag}")],
        registries=[{"address": repo.repository_url.apply(lambda u: u.split("/", 1)[0]),
                     "username": token.user_name, "password": pulumi.Output.secret(token.password)}],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[repo]))
    return built.ref


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Gateway(pulumi.ComponentResource):
    """The gateway Deployment and everything around it (see the module docstring)."""

    api_keys: dict[str, pulumi.Output[str]]
    """Generated API key per tenant (Pulumi secrets): hand them to the tenants."""
    service_name: str
    """Kubernetes Service name (``<namespace>/<service_name>:8080``)."""
    namespace: str
    """Kubernetes namespace."""
    role_arn: pulumi.Output[str] | None
    """IRSA role of the gateway pods (None when it invokes no AWS API)."""
    image: pulumi.Output[str]
    """Image reference the Deployment runs."""
    repository_url: pulumi.Output[str] | None
    """ECR repository to push the gateway image to (None when ``image`` was given)."""

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}Gateway", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        ns_name = args.namespace
        labels = {"app.kubernetes.io/name": "genai-gateway", "app.kubernetes.io/instance": name,
                  "app.kubernetes.io/managed-by": "genai-scale"}
        tags = merge_tags(args.tags, {"genai-scale/component": "gateway"})

        repo_url = None
        if args.image is None:
            key = aws.kms.Key(f"{name}-ecr-key", description=f"ECR encryption for {name}", enable_key_rotation=True,
                              deletion_window_in_days=30, tags=tags, opts=child)
            repo = aws.ecr.Repository(f"{name}-repo", image_tag_mutability="IMMUTABLE",
                                      image_scanning_configuration={"scan_on_push": True},
                                      encryption_configurations=[{"encryption_type": "KMS", "kms_key": key.arn}],
                                      force_delete=args.force_delete_repository, tags=tags, opts=child)
            aws.ecr.LifecyclePolicy(f"{name}-lifecycle", repository=repo.name,
                                    policy=json.dumps(lifecycle_policy(keep_images=10, untagged_expiry_days=7)),
                                    opts=child)
            repo_url = repo.repository_url
            if args.build_image:
                image = _build_image(name, repo, self)
            else:
                image = repo.repository_url.apply(lambda u: f"{u}:{versions.GATEWAY_IMAGE.version}")
        else:
            image = pulumi.Output.from_input(args.image)

        deps: list[pulumi.Resource] = []
        if args.create_namespace:
            ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={
                "name": ns_name, "labels": {**labels, "pod-security.kubernetes.io/enforce": "restricted"}},
                opts=child)
            deps.append(ns)
        kopts = pulumi.ResourceOptions(parent=self, depends_on=deps)

        role = None
        policies: Any = (dict(args.invoke_policy_arns) if isinstance(args.invoke_policy_arns, dict)
                         else list(args.invoke_policy_arns))
        batched = args.batch_bucket is not None
        if args.bedrock_embedding_model_arn is not None or batched:
            doc = pulumi.Output.all(
                args.bedrock_embedding_model_arn,
                *((args.batch_bucket, args.batch_queue_arn, args.batch_dlq_arn, args.batch_kms_key_arn)
                  if batched else ())).apply(lambda a: {
                    "Version": "2012-10-17",
                    "Statement": ([{"Sid": "EmbedForSemanticCache", "Effect": "Allow",
                                    "Action": ["bedrock:InvokeModel"], "Resource": [a[0]]}] if a[0] else [])
                    + (batch_policy_statements(*a[1:5]) if batched else [])})
        else:
            doc = None
        if policies or doc is not None:
            role = _irsa.irsa_role(f"{name}-irsa",
                                   oidc_provider_arn=from_cluster(args.oidc_provider_arn, args.cluster,
                                                                  "oidc_provider_arn"),
                                   oidc_issuer=from_cluster(args.oidc_issuer, args.cluster, "oidc_issuer"),
                                   namespace=ns_name, service_account=name, policy_document=doc, tags=tags,
                                   parent=self, managed_policy_arns=policies)
        sa_annotations = {"eks.amazonaws.com/role-arn": role.arn} if role is not None else {}
        k8s.core.v1.ServiceAccount(f"{name}-sa", metadata={"name": name, "namespace": ns_name, "labels": labels,
                                                           "annotations": sa_annotations},
                                   automount_service_account_token=False, opts=kopts)

        api_keys: dict[str, pulumi.Output[str]] = {}
        digests: dict[str, pulumi.Output[str]] = {}
        for tenant in sorted(args.tenants):
            pw = random.RandomPassword(f"{name}-key-{tenant}", length=48, special=False, opts=child)
            api_keys[tenant] = pulumi.Output.secret(pw.result.apply(lambda r: f"sk-{r}"))
            digests[tenant] = api_keys[tenant].apply(_sha256)
        keys_yaml = pulumi.Output.all(**digests).apply(lambda d: keys_file(dict(d)))
        k8s.core.v1.Secret(f"{name}-tenant-keys", metadata={"name": "gateway-tenant-keys", "namespace": ns_name,
                                                            "labels": labels},
                           type="Opaque", string_data={"keys.yaml": pulumi.Output.secret(keys_yaml)}, opts=kopts)
        if args.redis_auth_token is not None:
            k8s.core.v1.Secret(f"{name}-redis-auth", metadata={"name": "gateway-redis-auth", "namespace": ns_name,
                                                               "labels": labels},
                               type="Opaque", string_data={"token": pulumi.Output.secret(args.redis_auth_token)},
                               opts=kopts)

        if args.upstream_api_keys:
            k8s.core.v1.Secret(f"{name}-upstream-keys", metadata={"name": UPSTREAM_KEYS_SECRET, "namespace": ns_name,
                                                                  "labels": labels},
                               type="Opaque", string_data={k: pulumi.Output.secret(v)
                                                           for k, v in sorted(args.upstream_api_keys.items())},
                               opts=kopts)

        if batched:
            rendered = pulumi.Output.all(args.config, args.batch_bucket, args.batch_queue_url, args.batch_region).apply(
                lambda a: render_config(a[0], args, args.tenants, batch_block(a[1], a[2], a[3])))
        else:
            rendered = pulumi.Output.from_input(args.config).apply(lambda c: render_config(c, args, args.tenants))
        k8s.core.v1.ConfigMap(f"{name}-config", metadata={"name": "gateway-config", "namespace": ns_name,
                                                          "labels": labels},
                              data={"gateway.yaml": rendered}, opts=kopts)

        pod_annotations = {"genai-scale/config-sha256": rendered.apply(_sha256),
                           "prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT)}
        k8s.apps.v1.Deployment(f"{name}-deployment", metadata={"name": name, "namespace": ns_name, "labels": labels},
                               spec={
            "replicas": args.min_replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "genai-gateway",
                                         "app.kubernetes.io/instance": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": grace_period_seconds(args),
                    "securityContext": pod_security_context(),
                    "containers": [container_spec(args, image)],
                    "volumes": [{"name": "config", "configMap": {"name": "gateway-config"}},
                                {"name": "keys", "secret": {"secretName": "gateway-tenant-keys"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                   "whenUnsatisfiable": "ScheduleAnyway",
                                                   "labelSelector": {"matchLabels": {
                                                       "app.kubernetes.io/instance": name}}}],
                },
            },
        }, opts=pulumi.ResourceOptions(parent=self, depends_on=deps, ignore_changes=["spec.replicas"]))
        k8s.core.v1.Service(f"{name}-service", metadata={"name": name, "namespace": ns_name, "labels": labels},
                            spec={"type": "ClusterIP", "selector": {"app.kubernetes.io/instance": name},
                                  "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http"},
                                            {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]},
                            opts=kopts)
        k8s.autoscaling.v2.HorizontalPodAutoscaler(f"{name}-hpa", metadata={"name": name, "namespace": ns_name,
                                                                            "labels": labels}, spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": args.min_replicas, "maxReplicas": args.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": args.target_cpu_percent}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        }, opts=kopts)
        k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", metadata={"name": name, "namespace": ns_name,
                                                                   "labels": labels}, spec={
            "maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/instance": name}}}, opts=kopts)
        if args.target_group_arn is not None:
            from components.edge.alb import target_group_binding

            target_group_binding(f"{name}-tgb", target_group_arn=args.target_group_arn, service_name=name,
                                 service_port=HTTP_PORT, namespace=ns_name, labels=labels,
                                 opts=pulumi.ResourceOptions(parent=self, depends_on=deps + list(args.depends_on)))

        if args.service_monitor:
            k8s.apiextensions.CustomResource(
                f"{name}-metrics", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
                metadata={"name": name, "namespace": ns_name, "labels": labels},
                spec={"selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                      "namespaceSelector": {"matchNames": [ns_name]},
                      "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s",
                                     "scrapeTimeout": "10s"}]},
                opts=pulumi.ResourceOptions(parent=self, depends_on=deps + list(args.monitoring_depends_on)))

        self.api_keys = api_keys
        self.service_name = name
        self.namespace = ns_name
        self.role_arn = role.arn if role is not None else None
        self.image = image
        self.repository_url = repo_url
        self.register_outputs({"service_name": name, "namespace": ns_name, "image": image,
                               "api_keys": api_keys})
