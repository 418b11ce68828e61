"""BatchInference: queue-driven batch inference on the cluster's spot accelerator capacity, scaled by KEDA.

Creates
  - ``aws.kms.Key`` ``<name>-key`` (rotation on) unless ``kms_key_arn`` names one: it encrypts the queues and the bucket.
  - ``aws.sqs.Queue`` ``<name>-dlq`` (14-day retention) and ``<name>-queue`` (one message per shard, visibility
    timeout ``visibility_timeout_seconds``, a redrive policy moving a shard received ``max_receives`` times to the
    dead-letter queue); both KMS-encrypted; ``aws.cloudwatch.MetricAlarm`` ``<name>-dlq-not-empty`` on the DLQ's
    visible messages (actions ``alarm_actions``).
  - unless ``bucket_name`` names an existing bucket, ``aws.s3.Bucket`` ``<name>-bucket`` for the batches (SSE-KMS with
    the key, public access blocked, bucket-owner-enforced ownership, a TLS-only bucket policy, batches expiring after
    ``batch_retention_days``).
  - ``aws.iam.Role`` ``<name>-worker-role`` (and its policy) for EKS Pod Identity
    (``aws.eks.PodIdentityAssociation`` ``<name>-worker``): receive, delete and extend shards of the queue,
    read/write/list ``batches/`` of the bucket, use the key, read the model weights' prefix.
  - with ``keda_identity``: ``<name>-scaler-role`` for KEDA's operator service account (``sqs:GetQueueAttributes`` on
    the queue only), associated through Pod Identity. One association per service account: one BatchInference per
    cluster owns it (turn it off on the others and add their queues to that role yourself).
  - Kubernetes: the namespace (``create_namespace``), the workers' ServiceAccount, a KEDA ``TriggerAuthentication``
    (``podIdentity.provider: aws``) and a ``ScaledJob`` on the ``aws-sqs-queue`` trigger whose Jobs each run
    ``python -m serving.batch worker`` beside a vLLM engine with the flags a VllmService of the model renders
    (see :mod:`components.batch._batch`).
  - with ``async_endpoints`` (SageMaker asynchronous endpoints, name -> ARN): the managed-dispatch queues
    ``<name>-dispatch-dlq`` and ``<name>-dispatch-queue`` (same key, retention and redrive as the shard queue), the
    dispatchers' role ``<name>-dispatcher-role`` (Pod Identity: the dispatch queue, ``batches/``, the key, and
    ``sagemaker:InvokeEndpointAsync`` on those endpoints only), ``<name>-dispatch-submit`` (a policy for the
    submitter: send to the dispatch queue, read its DLQ) and a second ``ScaledJob`` ``<name>-dispatch`` whose Jobs run
    the worker alone with ``BATCH_BACKEND=sagemaker-async``: no engine, no GPU, on untainted CPU nodes.

Backends, chosen per route by the gateway's ``batch.backends`` (a route without one runs here): (1) this cluster
queue and its GPU spot workers; (2) Bedrock batch inference (``genai-scale:batch.bedrock``: the service role of
:class:`~components.batch.bedrock_batch.BedrockBatchServiceRole`, no queue: the gateway creates the job); (3) SageMaker
asynchronous endpoints (``genai-scale:sagemaker.endpoints.<name>.mode: async``: scale to zero, results under
``batches/sagemaker-async/<name>/`` of this bucket with this key), fed by the managed-dispatch queue below.

Defaults: scale to zero (no Job while the queue is empty), at most 2 Jobs, one shard per Job, a 900 s visibility
timeout, 3 receives before the DLQ, batches kept 30 days, a 30 s termination grace period (inside the 2-minute spot
notice). The placement must be batch capacity: a node group labelled ``genai-scale.io/capacity=batch`` and tainted
``genai-scale.io/batch=true:NoSchedule`` (real-time pods never land there); spot is the point.

Security: no static AWS keys (Pod Identity for the workers and KEDA), least-privilege roles, KMS on the queues and the
bucket, TLS-only bucket, non-root containers with every capability dropped, no service-account token mounted, the
engine bound to the loopback address (only the worker in the same pod reaches it).

Cost drivers: accelerator node hours while shards are queued (spot is ~70 % cheaper than on demand), S3 storage of the
batches, SQS requests (KEDA polls every ``polling_interval_seconds``), the KMS key ($1/month) and its requests.
Quotas: EC2 Spot vCPU quotas ("All G and VT Spot Instance Requests", ...) for the node group's instance type; SQS
in-flight messages per queue (120,000).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import queues, versions
from components.errors import ArgsError
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.batch import _batch
from components.foundation.eks_cluster import cluster_input_problems, from_cluster, with_cluster_provider
from components.serving.vllm.args import NodeGroupPlacement, VllmModelSettings, VllmServiceArgs
from components.objects import custom_resource
from problems import Problem

_UNUSED = "pod-identity"
BATCH_PREFIX = _batch.BATCH_PREFIX
"""Key prefix of every batch in the bucket (``batches/<batch id>/``)."""
ASYNC_PREFIX = _batch.ASYNC_PREFIX
"""Key prefix of the SageMaker async endpoints' results (``<ASYNC_PREFIX><endpoint>/output/`` and ``failure/``)."""
ScalingStrategy = Literal["default", "custom", "accurate", "eager"]


class BatchInferenceArgs(ArgsModel):
    """Arguments of :class:`BatchInference`."""

    model: VllmModelSettings
    """The model the workers' engine serves, with the same vLLM settings (and rendered flags) as a VllmService."""
    placement: NodeGroupPlacement
    """The batch node group (see :func:`~components.serving.vllm.args.placement_from_node_group`): its labels must
    include ``genai-scale.io/capacity=batch`` and its taints ``genai-scale.io/batch=true:NoSchedule``."""
    engine_image: PulumiInput
    """The vLLM image for the node group's vendor (as a VllmService of the model gets)."""
    worker_image: PulumiInput
    """The image holding ``serving/batch`` (the gateway image)."""
    engine_version: str = versions.VLLM.version
    """vLLM version inside ``engine_image``; flags newer than it are not rendered. Default: the pinned NVIDIA engine."""
    namespace: str = Field(default="genai-batch", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """Kubernetes namespace of the workers. Default: genai-batch."""
    create_namespace: bool = True
    """Create ``namespace`` (Pod Security ``restricted``). Off: it exists. Default: on."""
    max_parallelism: int = Field(default=2, ge=1, le=1000)
    """Most worker Jobs at once (the ScaledJob's ``maxReplicaCount``). Default: 2."""
    shards_per_job: int = Field(default=1, ge=1, le=100)
    """Queued shards per Job KEDA starts (the trigger's ``queueLength``). Default: 1."""
    polling_interval_seconds: int = Field(default=30, ge=5, le=600)
    """How often KEDA reads the queue depth. Default: 30 (KEDA's default)."""
    scaling_strategy: ScalingStrategy = "default"
    """KEDA's ScaledJob scaling strategy; ``default`` subtracts running Jobs, right for a trigger that counts
    in-flight shards. Default: default."""
    visibility_timeout_seconds: int = Field(default=900, ge=60, le=43_200)
    """How long a received shard stays hidden from other workers; the worker extends it while it works. Keep it above
    a shard's run time. Default: 900 (the worker's ``BATCH_VISIBILITY_SECONDS``)."""
    max_receives: int = Field(default=3, ge=1, le=1000)
    """Receives of a shard before it moves to the dead-letter queue (``maxReceiveCount``). Default: 3."""
    message_retention_seconds: int = Field(default=4 * 24 * 3600, ge=60, le=1_209_600)
    """How long a queued shard waits before SQS drops it. Default: 4 days (the SQS default)."""
    bucket_name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
    """An existing bucket for the batches (its encryption and access are yours). Default: a bucket created here."""
    batch_retention_days: int = Field(default=30, ge=1, le=3650)
    """Days before a batch's objects expire (created bucket only). Default: 30."""
    kms_key_arn: PulumiInput = None
    """KMS key of the queues and the bucket. Default: a key created here (rotation on)."""
    region: PulumiInput = None
    """AWS Region of the queue (the trigger's ``awsRegion`` and the worker's ``AWS_REGION``). Default: the provider's."""
    backoff_limit: int = Field(default=0, ge=0, le=10)
    """Pod retries of a failed Job (``backoffLimit``); the shard's message comes back through SQS anyway. Default: 0."""
    jobs_history_limit: int = Field(default=10, ge=0, le=1000)
    """Finished Jobs kept (successful and failed, each). Default: 10."""
    termination_grace_seconds: int = Field(default=30, ge=10, le=119)
    """Grace period after SIGTERM: the worker stops taking work, releases its shard (visibility 0) and exits within
    about 5 s (serving/batch/README.md); at most 119, inside the 2-minute spot notice. Default: 30."""
    alarm_actions: list[str] = Field(default_factory=list)
    """Actions (e.g. SNS topic ARNs) of the CloudWatch alarms on the dead-letter queues (``<name>-dlq-not-empty``,
    firing while a DLQ holds a message). Default: none (the alarm state shows in CloudWatch only)."""
    async_endpoints: dict[str, PulumiInput] = Field(default_factory=dict)
    """SageMaker asynchronous endpoints the dispatcher workers call, by name (the batch backend's name) -> endpoint
    ARN. Default: none (no dispatch queue, no dispatcher ScaledJob)."""
    dispatch_max_parallelism: int = Field(default=2, ge=1, le=1000)
    """Most dispatcher Jobs at once (each sends one shard's requests and waits for their results; the endpoints do
    the inference). Default: 2."""
    weights_kms_key_arn: str | None = None
    """KMS key of the weights bucket, when it uses SSE-KMS (adds ``kms:Decrypt`` on it). Default: none."""
    keda_identity: bool = True
    """Associate ``<name>-scaler-role`` with KEDA's operator service account. Default: on."""
    keda_namespace: str = "keda"
    """Namespace of KEDA's operator. Default: keda."""
    keda_service_account: str = "keda-operator"
    """KEDA's operator service account (the chart's). Default: keda-operator."""
    cluster: PulumiInput = None
    """The EksCluster the workers run in: ``cluster_name`` defaults from it, and its Kubernetes provider is used when
    ``opts`` names none. Default: none."""
    cluster_name: PulumiInput = None
    """EKS cluster of the Pod Identity associations. Default: ``cluster.cluster_name`` (required without ``cluster``)."""
    after: list[Any] = Field(default_factory=list)
    """Resources the custom resources wait for (the KEDA release). Default: none."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for every AWS resource."""

    def problems(self) -> list[Problem]:
        out = cluster_input_problems(self, {"cluster_name": "cluster_name"}, required=("cluster_name",))
        key, value = _batch.BATCH_LABEL
        if self.placement.labels.get(key) != value:
            out.append(Problem("placement.labels", dict(self.placement.labels),
                               f"batch capacity: a node group labelled {key}={value}"))
        t = _batch.BATCH_TAINT
        if not any(dict(x) == t for x in self.placement.taints):
            out.append(Problem("placement.taints", [dict(x) for x in self.placement.taints],
                               f"batch capacity: a node group tainted {t['key']}={t['value']}:{t['effect']} "
                               "(so real-time pods never land there)"))
        try:
            self.engine_args()
        except ArgsError as err:  # the model does not fit the placement, ...: at this component's field paths
            out += [p for p in err.problems if p.path.startswith(("model", "placement", "gpu_sharing"))]
        return out

    def engine_args(self) -> VllmServiceArgs:
        """The VllmService args whose vLLM container the workers' engine copies."""
        # the workers read the weights through Pod Identity: the IRSA inputs of the service are never rendered
        return VllmServiceArgs(model=self.model, placement=self.placement, image=self.engine_image,
                               namespace=self.namespace, engine_version=self.engine_version, keda=False,
                               api_key=False, pre_stop_seconds=0, oidc_provider_arn=_UNUSED, oidc_issuer=_UNUSED)


class BatchInference(pulumi.ComponentResource):
    """Queue-driven batch inference. See the module docstring for what it creates, defaults, security and cost."""

    queue: aws.sqs.Queue
    """The shard queue (one message per shard)."""
    dead_letter_queue: aws.sqs.Queue
    """Shards received ``max_receives`` times."""
    queue_url: pulumi.Output[str]
    """URL of the shard queue (``BATCH_QUEUE_URL``)."""
    dead_letter_queue_url: pulumi.Output[str]
    """URL of the dead-letter queue (the finaliser's ``BATCH_DLQ_URL``)."""
    bucket: pulumi.Output[str]
    """Name of the batches bucket (``BATCH_BUCKET``)."""
    kms_key_arn: pulumi.Output[str]
    """ARN of the key encrypting the queues and the bucket (submitters need ``kms:GenerateDataKey`` on it)."""
    worker_role_arn: pulumi.Output[str]
    """The workers' IAM role."""
    scaled_job: k8s.apiextensions.CustomResource
    """The KEDA ScaledJob."""
    scaler_role: aws.iam.Role | None
    """The KEDA operator's Pod Identity role (``keda_identity``): other queue-fed components attach their queue's
    read-depth policy to it (one association per service account). None without ``keda_identity``."""
    namespace: str
    """Namespace of the workers."""
    dispatch_queue_url: pulumi.Output[str] | None
    """URL of the managed-dispatch queue (the ``queueUrl`` of the gateway's sagemaker-async backends); None without
    ``async_endpoints``."""
    dispatch_submit_policy_arn: pulumi.Output[str] | None
    """Policy letting a submitter send to the dispatch queue and read its DLQ; None without ``async_endpoints``."""
    dispatch_dead_letter_queue: aws.sqs.Queue | None
    """Dispatch messages received ``max_receives`` times; None without ``async_endpoints``."""

    def __init__(self, name: str, args: BatchInferenceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}BatchInference", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.namespace = args.namespace
        region = args.region if args.region is not None else aws.get_region_output(opts=pulumi.InvokeOutputOptions(
            parent=self)).region
        cluster_name = from_cluster(args.cluster_name, args.cluster, "cluster_name")

        key_arn = queues.queue_key(self, name, kms_key_arn=args.kms_key_arn, tags=tags,
                                   description=f"genai-scale batch {name}: queues and batches")
        self.kms_key_arn = key_arn
        self.queue, self.dead_letter_queue = self._queues(name, "shard", args, key_arn, tags)
        self.queue_url = self.queue.url
        self.dead_letter_queue_url = self.dead_letter_queue.url

        if args.bucket_name is None:
            bucket = self._bucket(name, key_arn, args.batch_retention_days, tags)
        else:
            bucket = pulumi.Output.from_input(args.bucket_name)
        self.bucket = bucket

        worker_doc = pulumi.Output.all(self.queue.arn, bucket, key_arn).apply(lambda a: json.dumps(
            _batch.worker_policy(queue_arn=a[0], bucket=a[1], kms_key_arn=a[2], weights_uri=args.model.weights_uri,
                                 weights_kms_key_arn=args.weights_kms_key_arn)))
        sa_name = f"{name}-worker"
        worker_role = queues.pod_identity_role(
            self, f"{name}-worker", policy=worker_doc, cluster_name=cluster_name, namespace=args.namespace,
            service_account=sa_name, tags=tags,
            description=f"Batch workers of {name}: consume shards, read/write batches")
        self.worker_role_arn = worker_role.arn
        dispatch = self.dispatch_dead_letter_queue = None
        if args.async_endpoints:
            dispatch, self.dispatch_dead_letter_queue = self._queues(f"{name}-dispatch", "SageMaker async dispatch",
                                                                     args, key_arn, tags)
        scaler_deps: list[pulumi.Resource] = []
        self.scaler_role = None
        if args.keda_identity:
            scaler_doc = pulumi.Output.all(self.queue.arn, *([dispatch.arn] if dispatch else [])).apply(
                lambda arns: json.dumps(queues.scaler_policy(*arns)))
            scaler_role = queues.pod_identity_role(
                self, f"{name}-scaler", policy=scaler_doc, cluster_name=cluster_name, namespace=args.keda_namespace,
                service_account=args.keda_service_account, tags=tags,
                description=f"KEDA operator: read the depth of batch queue {name}")
            scaler_deps.append(scaler_role)
            self.scaler_role = scaler_role

        deps: list[pulumi.Resource] = []
        if args.create_namespace:
            deps.append(k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": args.namespace, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}, opts=child))
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={"name": sa_name, "namespace": args.namespace, "labels": _batch.labels(name)},
            automount_service_account_token=False, opts=pulumi.ResourceOptions(parent=self, depends_on=deps))

        env = _batch.worker_env(queue_url=self.queue_url, bucket=bucket, region=region,
                                visibility_seconds=args.visibility_timeout_seconds, max_receives=args.max_receives)
        pod = _batch.job_pod(name, args.engine_args(), engine_image=args.engine_image, worker_image=args.worker_image,
                             service_account=sa_name, env=env, grace_seconds=args.termination_grace_seconds)
        cr_opts = pulumi.ResourceOptions(parent=self, depends_on=[*deps, sa, *scaler_deps, *args.after])
        auth = _batch.trigger_authentication_manifest(name, args.namespace)
        auth_cr = custom_resource(f"{name}-trigger-auth", auth, cr_opts)
        trigger = _batch.sqs_trigger(name, queue_url=self.queue_url, region=region,
                                     shards_per_job=args.shards_per_job)
        self.scaled_job = custom_resource(f"{name}-scaledjob", _batch.scaled_job_manifest(
            name, args.namespace, pod=pod, trigger=trigger, max_parallelism=args.max_parallelism,
            polling_interval_seconds=args.polling_interval_seconds, backoff_limit=args.backoff_limit,
            history_limit=args.jobs_history_limit, scaling_strategy=args.scaling_strategy),
            pulumi.ResourceOptions.merge(cr_opts, pulumi.ResourceOptions(depends_on=[auth_cr])))
        self.dispatch_queue_url = self.dispatch_submit_policy_arn = None
        if dispatch is not None:
            self._dispatchers(name, args, dispatch, bucket, key_arn, region, cluster_name, tags,
                              pulumi.ResourceOptions.merge(cr_opts, pulumi.ResourceOptions(depends_on=[auth_cr])))
        self.register_outputs({"queue_url": self.queue_url, "bucket": self.bucket,
                               "dispatch_queue_url": self.dispatch_queue_url})

    def _queues(self, base: str, what: str, args: BatchInferenceArgs, key_arn: Any,
                tags: dict[str, str]) -> tuple[aws.sqs.Queue, aws.sqs.Queue]:
        return queues.encrypted_queue(
            self, base, key_arn=key_arn, visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=args.message_retention_seconds, max_receives=args.max_receives,
            alarm_actions=args.alarm_actions, tags=tags,
            alarm_description=f"genai-scale batch: a {what} message failed every allowed receive and is in the "
                              f"dead-letter queue (its batch's records are error lines shard_failed)")

    def _dispatchers(self, name: str, args: BatchInferenceArgs, queue: aws.sqs.Queue, bucket: Any, key_arn: Any,
                     region: Any, cluster_name: Any, tags: dict[str, str], cr_opts: pulumi.ResourceOptions) -> None:
        """The dispatcher role, the submitter's policy and the dispatcher ScaledJob of the async endpoints."""
        child = pulumi.ResourceOptions(parent=self)
        endpoints = dict(sorted(args.async_endpoints.items()))
        doc = pulumi.Output.all(queue.arn, bucket, key_arn, *endpoints.values()).apply(lambda a: json.dumps(
            _batch.dispatcher_policy(queue_arn=a[0], bucket=a[1], kms_key_arn=a[2], endpoint_arns=list(a[3:]))))
        sa_name = f"{name}-dispatcher"
        queues.pod_identity_role(self, sa_name, policy=doc, cluster_name=cluster_name, namespace=args.namespace,
                                 service_account=sa_name, tags=tags,
                                 description=f"Batch dispatchers of {name}: send shards to SageMaker async endpoints")
        submit = aws.iam.Policy(
            f"{name}-dispatch-submit", policy=pulumi.Output.all(queue.arn, self.dispatch_dead_letter_queue.arn).apply(
                lambda a: json.dumps(_batch.dispatch_submit_policy(queue_arn=a[0], dlq_arn=a[1]))),
            description=f"Submit shards to the managed-dispatch queue of {name}", tags=tags, opts=child)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-dispatcher-sa", metadata={"name": sa_name, "namespace": args.namespace,
                                               "labels": _batch.dispatcher_labels(name)},
            automount_service_account_token=False, opts=pulumi.ResourceOptions.merge(cr_opts, child))
        env = _batch.dispatcher_env(queue_url=queue.url, bucket=bucket, region=region,
                                    visibility_seconds=args.visibility_timeout_seconds, max_receives=args.max_receives)
        pod = _batch.dispatcher_pod(name, image=args.worker_image, service_account=sa_name, env=env,
                                    grace_seconds=args.termination_grace_seconds)
        trigger = _batch.sqs_trigger(name, queue_url=queue.url, region=region, shards_per_job=args.shards_per_job,
                                     trigger_name="dispatch-shards")
        custom_resource(f"{name}-dispatch-scaledjob", _batch.scaled_job_manifest(
            name, args.namespace, pod=pod, trigger=trigger, max_parallelism=args.dispatch_max_parallelism,
            polling_interval_seconds=args.polling_interval_seconds, backoff_limit=args.backoff_limit,
            history_limit=args.jobs_history_limit, scaling_strategy=args.scaling_strategy,
            job_name=f"{name}-dispatch"), pulumi.ResourceOptions.merge(cr_opts, pulumi.ResourceOptions(
                depends_on=[sa])))
        self.dispatch_queue_url = queue.url
        self.dispatch_submit_policy_arn = submit.arn

    def _bucket(self, name: str, key_arn: pulumi.Output[str], retention_days: int,
                tags: dict[str, str]) -> pulumi.Output[str]:
        b = queues.encrypted_bucket(self, name, key_arn=key_arn, tags=tags)
        aws.s3.BucketLifecycleConfiguration(f"{name}-bucket", bucket=b.id, rules=_batch.lifecycle_rules(retention_days),
                                            opts=pulumi.ResourceOptions(parent=self))
        return b.bucket
