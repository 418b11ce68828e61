"""Pure functions behind SageMakerLmiEndpoint: instance and image resolution, container environment, IAM documents.

No Pulumi here. Facts and their sources:
- API ranges and enums come from the botocore ``sagemaker`` service model installed with the package (1.44.5 when
  checked, 2026-11): ``ProductionVariantInstanceType``, ``RoutingStrategy``, ``InferenceAmiVersion``, timeouts
  60-3600 s, ``VolumeSizeInGB`` 1-512.
- LMI settings (djl-serving ``deployment_guide/configurations.md``): env ``OPTION_<X>`` maps to ``option.<x>``;
  ``option.tensor_parallel_degree`` defaults differ between the LMI docs (1 vs ``max``), so it is always set;
  ``option.model_loading_timeout`` (default 1800 s) must not exceed the container start-up health-check timeout,
  so it is set equal to it. Uncompressed S3 artefacts are mounted at ``/opt/ml/model``
  (``deployment_guide/deploying-your-endpoint.md``).
- Instance-store families: SageMaker does not attach an EBS model volume to instances with NVMe instance storage
  (SageMaker developer guide, "Managing storage paths for different types of instance local storage": ml.p4d,
  ml.g4dn, ml.g5 ...; EC2 instance-store volume table for the later families), so ``VolumeSizeInGB`` is for
  EBS-only families such as ``ml.inf2``. Instance-store volumes are encrypted by the instance's hardware module, and
  the ``CreateEndpointConfig.KmsKeyId`` reference says a KMS key must not be given for such types ("the call to
  CreateEndpointConfig fails"; the wording in the botocore 1.44.5 model is softer: the key "does not encrypt instance
  local storage"), so the key is set only for EBS-only families.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Literal

from components.catalog import lmi_images
from components.catalog.accelerators import AcceleratorSpec, lookup

Engine = Literal["lmi", "neuron-vllm", "custom"]

VARIANT_NAME = "AllTraffic"
MODEL_MOUNT = "/opt/ml/model"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"

# Asynchronous inference (SageMaker developer guide, "Autoscale an asynchronous endpoint",
# docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html, checked 2026-12): a target-tracking policy
# on the customized metric ApproximateBacklogSizePerInstance (namespace AWS/SageMaker, dimension EndpointName,
# statistic Average) lets the variant scale down to zero; on its own it scales out from zero only once the backlog
# exceeds the target, so a step-scaling policy (ChangeInCapacity +1 from a lower bound of 0, aggregation Average)
# fires from a CloudWatch alarm on HasBacklogWithoutCapacity (Average over 60 s, >= 1 for 2 of 2 periods, missing data
# left missing) to add the first instance when requests wait and no instance is up.
METRIC_NAMESPACE = "AWS/SageMaker"
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"
OUTPUT_FOLDER = "output/"
FAILURE_FOLDER = "failure/"

INSTANCE_STORE_FAMILIES = frozenset({
    "g4dn", "g5", "g6", "g6e", "g7e", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300", "trn1", "trn1n", "trn2",
})

HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
S3_PREFIX = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>(?:[^/]+/)+)$")
ECR_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                     r"(?P<repo>[a-z0-9][a-z0-9._/-]*)(?::(?P<tag>[\w.-]+)|@sha256:[0-9a-f]{64})$")
ENV_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")

LMI_MANAGED_ENV = frozenset({"HF_MODEL_ID", "HF_REVISION", "OPTION_TENSOR_PARALLEL_DEGREE", "TENSOR_PARALLEL_DEGREE",
                             "OPTION_MAX_MODEL_LEN", "OPTION_MAX_ROLLING_BATCH_SIZE", "OPTION_MODEL_LOADING_TIMEOUT"})
NEURON_MANAGED_ENV = frozenset({"SM_ON_MODEL", "SM_ON_REVISION", "SM_ON_TENSOR_PARALLEL_SIZE", "SM_ON_SEQUENCE_LENGTH",
                                "SM_ON_BATCH_SIZE"})
"""``SM_ON_*`` variables of the Hugging Face vLLM Neuron image (optimum-neuron v0.4.5, the ``optimum0.4.5`` in the
pinned tag; checked 2026-12-05). Its entrypoint (``docker/vllm/Dockerfile``) turns every ``SM_ON_<X>=v`` into
``--<x> v`` for ``optimum-cli neuron serve`` (``optimum/commands/neuron/serve.py``), which takes ``--model``,
``--tensor_parallel_size``, ``--batch_size`` and ``--sequence_length`` and renders them as vLLM's
``--tensor-parallel-size``, ``--max-num-seqs`` and ``--max-model-len``; a flag it does not know (``--revision``) is
handed to vLLM unchanged. ``SM_ON_MAX_NUM_SEQS`` / ``SM_ON_MAX_MODEL_LEN`` would bypass the batch size and sequence
length the serve command selects the compiled (cached) model by."""


@functools.cache
def _sagemaker_shapes() -> dict[str, tuple[str, ...]]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return {
        "instance_types": tuple(model.shape_for("ProductionVariantInstanceType").enum),
        "routing": tuple(model.shape_for("RoutingStrategy").enum),
        "ami": tuple(model.shape_for("ProductionVariantInferenceAmiVersion").enum),
    }


def sagemaker_instance_types() -> tuple[str, ...]:
    """Every ``ml.*`` instance type a production variant accepts (botocore's API model)."""
    return _sagemaker_shapes()["instance_types"]


def routing_strategies() -> tuple[str, ...]:
    """``RoutingConfig.RoutingStrategy`` values of the API model."""
    return _sagemaker_shapes()["routing"]


def inference_ami_versions() -> tuple[str, ...]:
    return _sagemaker_shapes()["ami"]


def accelerator_for(instance_type: str) -> AcceleratorSpec | None:
    """Accelerator facts of a SageMaker instance type (``ml.g6.12xlarge`` -> the ``g6.12xlarge`` row)."""
    if not instance_type.startswith("ml."):
        return None
    return lookup(instance_type[3:])


def family_of(instance_type: str) -> str:
    """``ml.p6-b200.48xlarge`` -> ``p6-b200``."""
    bare = instance_type[3:] if instance_type.startswith("ml.") else instance_type
    return bare.split(".")[0]


def has_instance_store(instance_type: str) -> bool:
    """Whether the instance keeps the model on NVMe instance storage (no configurable EBS volume)."""
    return family_of(instance_type) in INSTANCE_STORE_FAMILIES


def valid_tp_degrees(units: int) -> list[int]:
    """Tensor-parallel degrees that split an instance's GPUs/NeuronCores evenly (each copy gets ``tp`` units)."""
    return [d for d in range(1, units + 1) if units % d == 0]


@dataclass(frozen=True)
class ResolvedImage:
    uri: str
    engine: Engine
    inference_ami_version: str | None
    repository_arn: str
    """ECR repository ARN the execution role may pull from."""


def ecr_repository_arn(uri: str) -> str | None:
    """``<acct>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` -> the repository ARN, or None for non-ECR URIs."""
    m = ECR_URI.match(uri)
    if not m:
        return None
    partition = "aws-cn" if m["region"].startswith("cn-") else (
        "aws-us-gov" if m["region"].startswith("us-gov-") else "aws")
    return f"arn:{partition}:ecr:{m['region']}:{m['account']}:repository/{m['repo']}"


def engine_for(spec: AcceleratorSpec, image_uri: str | None = None) -> Engine:
    """``custom`` for a caller's image, else the serving image family of the accelerator's vendor."""
    return "custom" if image_uri else spec.vendor_facts.sagemaker_engine


def units_name(spec: AcceleratorSpec) -> str:
    """What the instance's tensor-parallel units are called, plural: "GPUs", "NeuronCores"."""
    return f"{spec.vendor_facts.unit_name}s"


def resolve_image(spec: AcceleratorSpec, region: str, *, lmi: int, image_uri: str | None = None) -> ResolvedImage:
    """The serving image for an accelerator in a Region. Callers check :func:`image_problems` first."""
    if image_uri:
        arn = ecr_repository_arn(image_uri)
        assert arn is not None
        return ResolvedImage(image_uri, "custom", None, arn)
    if engine_for(spec) == "neuron-vllm":
        uri = lmi_images.neuron_image_uri(region)
        return ResolvedImage(uri, "neuron-vllm", None, ecr_repository_arn(uri) or "")
    uri = lmi_images.lmi_image_uri(lmi, region)
    ami = lmi_images.LMI_IMAGES[lmi].inference_ami_version
    return ResolvedImage(uri, "lmi", ami, ecr_repository_arn(uri) or "")


def image_problems(spec: AcceleratorSpec, region: str, *, lmi: int, image_uri: str | None) -> list[tuple[str, Any, str]]:
    """(field, value, expected) for an image that cannot be resolved."""
    out: list[tuple[str, Any, str]] = []
    if image_uri:
        if ecr_repository_arn(image_uri) is None:
            out.append(("image_uri", image_uri, "an ECR image URI <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag> "
                                                "(SageMaker pulls from ECR only)"))
        return out
    if engine_for(spec) == "neuron-vllm":
        if region not in lmi_images.NEURON_REGISTRIES:
            out.append(("region", region, "a Region that hosts the Hugging Face vLLM Neuron image: "
                                          + ", ".join(sorted(lmi_images.NEURON_REGISTRIES))
                        + " (or set image_uri)"))
        return out
    if lmi not in lmi_images.LMI_IMAGES:
        out.append(("lmi_version", lmi, "a known LMI release: " + ", ".join(str(k) for k in sorted(lmi_images.LMI_IMAGES))))
    if region not in lmi_images.LMI_REGISTRIES:
        out.append(("region", region, "a Region with an LMI registry: " + ", ".join(sorted(lmi_images.LMI_REGISTRIES))
                    + " (or set image_uri)"))
    return out


def model_source(model: str) -> Literal["hf", "s3"] | None:
    if HF_ID.match(model):
        return "hf"
    if S3_PREFIX.match(model):
        return "s3"
    return None


def s3_bucket_prefix(model: str) -> tuple[str, str]:
    m = S3_PREFIX.match(model)
    assert m is not None
    return m["bucket"], m["prefix"]


def container_environment(engine: Engine, *, model: str, revision: str | None, tp_degree: int,
                          max_model_len: int | None, max_batch_size: int | None, loading_timeout_seconds: int,
                          extra: dict[str, str]) -> dict[str, str]:
    """Environment of the serving container. Model location and parallelism are always explicit."""
    model_ref = MODEL_MOUNT if model_source(model) == "s3" else model
    env: dict[str, str] = {}
    if engine == "neuron-vllm":
        env["SM_ON_MODEL"] = model_ref
        if revision:
            env["SM_ON_REVISION"] = revision
        env["SM_ON_TENSOR_PARALLEL_SIZE"] = str(tp_degree)
        if max_model_len:
            env["SM_ON_SEQUENCE_LENGTH"] = str(max_model_len)  # -> vLLM --max-model-len
        if max_batch_size:
            env["SM_ON_BATCH_SIZE"] = str(max_batch_size)  # -> vLLM --max-num-seqs
    else:
        env["HF_MODEL_ID"] = model_ref
        if revision:
            env["HF_REVISION"] = revision
        env["OPTION_TENSOR_PARALLEL_DEGREE"] = str(tp_degree)
        if max_model_len:
            env["OPTION_MAX_MODEL_LEN"] = str(max_model_len)
        if max_batch_size:
            env["OPTION_MAX_ROLLING_BATCH_SIZE"] = str(max_batch_size)
        env["OPTION_MODEL_LOADING_TIMEOUT"] = str(loading_timeout_seconds)
    env.update(extra)
    return dict(sorted(env.items()))


def managed_env_keys(engine: Engine) -> frozenset[str]:
    return NEURON_MANAGED_ENV if engine == "neuron-vllm" else LMI_MANAGED_ENV


ENI_WRITES = ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
              "ec2:DeleteNetworkInterfacePermission"]
ENI_READS = ["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
             "ec2:DescribeSubnets", "ec2:DescribeVpcs"]


@dataclass(frozen=True)
class AsyncIo:
    """Where an asynchronous endpoint reads requests and writes results (``s3://bucket/prefix/`` each)."""

    input_uri: str
    output_uri: str
    kms_key_arn: str | None


def async_output_config(output_uri: str, kms_key_arn: Any) -> dict[str, Any]:
    """``AsyncInferenceConfig.OutputConfig``: responses under ``<prefix>output/``, failures under
    ``<prefix>failure/``, both encrypted with the key."""
    return {"s3_output_path": output_uri + OUTPUT_FOLDER, "s3_failure_path": output_uri + FAILURE_FOLDER,
            "kms_key_id": kms_key_arn}


def _async_statements(partition: str, io: AsyncIo) -> list[dict[str, Any]]:
    in_bucket, in_prefix = s3_bucket_prefix(io.input_uri)
    out_bucket, out_prefix = s3_bucket_prefix(io.output_uri)
    out: list[dict[str, Any]] = [
        {"Sid": "AsyncReadRequests", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:{partition}:s3:::{in_bucket}/{in_prefix}*"]},
        {"Sid": "AsyncWriteResults", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": [f"arn:{partition}:s3:::{out_bucket}/{out_prefix}{OUTPUT_FOLDER}*",
                      f"arn:{partition}:s3:::{out_bucket}/{out_prefix}{FAILURE_FOLDER}*"]},
    ]
    if io.kms_key_arn:
        out.append({"Sid": "AsyncKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": [io.kms_key_arn]})
    return out


def execution_role_policy(*, partition: str, region: str, account: str, repository_arn: str,
                          s3_model: tuple[str, str] | None, kms_key_arn: str | None,
                          vpc_arn: str | None, async_io: AsyncIo | None = None) -> dict[str, Any]:
    """What the endpoint's execution role may do: pull its image, read its model prefix, write its logs and
    metrics, use its KMS key (when the instance type takes one), and, in a VPC, manage network interfaces in that
    VPC only (``ec2:Vpc`` condition; the Describe calls have no resource-level permissions). An asynchronous endpoint
    also reads its requests' prefix, writes its output and failure folders and uses their key. No ``*`` actions."""
    statements: list[dict[str, Any]] = [
        {"Sid": "EcrAuth", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {"Sid": "EcrPull", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Resource": [repository_arn]},
        {"Sid": "Logs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
         "Resource": [f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/*",
                      f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/*:log-stream:*"]},
        {"Sid": "Metrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
         "Condition": {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints*", "AWS/SageMaker*"]}}},
    ]
    if kms_key_arn:
        statements.append({"Sid": "Kms", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey",
                                                                       "kms:GenerateDataKey"],
                           "Resource": [kms_key_arn]})
        statements.append({"Sid": "KmsGrant", "Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": [kms_key_arn],
                           "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}})
    if s3_model is not None:
        bucket, prefix = s3_model
        statements.append({"Sid": "ModelRead", "Effect": "Allow", "Action": ["s3:GetObject"],
                           "Resource": [f"arn:{partition}:s3:::{bucket}/{prefix}*"]})
        statements.append({"Sid": "ModelList", "Effect": "Allow", "Action": ["s3:ListBucket"],
                           "Resource": [f"arn:{partition}:s3:::{bucket}"],
                           "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}})
    if vpc_arn:
        statements.append({"Sid": "VpcEni", "Effect": "Allow", "Action": list(ENI_WRITES), "Resource": "*",
                           "Condition": {"ArnEquals": {"ec2:Vpc": vpc_arn}}})
        statements.append({"Sid": "VpcDescribe", "Effect": "Allow", "Action": list(ENI_READS), "Resource": "*"})
    if async_io is not None:
        statements += _async_statements(partition, async_io)
    return {"Version": "2012-10-17", "Statement": statements}


def assume_role_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def invoke_policy(endpoint_arn: str, mode: str = "real-time") -> dict[str, Any]:
    """Lets a serving role call exactly this endpoint: buffered and streaming for a real-time endpoint,
    ``InvokeEndpointAsync`` for an asynchronous one."""
    if mode == "async":
        return {"Version": "2012-10-17", "Statement": [{
            "Sid": "InvokeEndpointAsync", "Effect": "Allow", "Action": ["sagemaker:InvokeEndpointAsync"],
            "Resource": [endpoint_arn]}]}
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "InvokeEndpoint", "Effect": "Allow",
        "Action": ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
        "Resource": [endpoint_arn]}]}


def backlog_tracking(endpoint_name: Any, target: float, *, scale_in_cooldown: int,
                     scale_out_cooldown: int) -> dict[str, Any]:
    """Target tracking on the endpoint's backlog per instance (the customized metric AWS documents for async)."""
    return {"target_value": target,
            "customized_metric_specification": {
                "metric_name": BACKLOG_METRIC, "namespace": METRIC_NAMESPACE, "statistic": "Average",
                "dimensions": [{"name": "EndpointName", "value": endpoint_name}]},
            "scale_in_cooldown": scale_in_cooldown, "scale_out_cooldown": scale_out_cooldown}


def scale_from_zero_step(cooldown: int) -> dict[str, Any]:
    """Step scaling: one more instance whenever the HasBacklogWithoutCapacity alarm fires."""
    return {"adjustment_type": "ChangeInCapacity", "metric_aggregation_type": "Average", "cooldown": cooldown,
            "step_adjustments": [{"metric_interval_lower_bound": "0", "scaling_adjustment": 1}]}


def no_capacity_alarm(endpoint_name: Any) -> dict[str, Any]:
    """The CloudWatch alarm (inputs of ``aws.cloudwatch.MetricAlarm``) that drives :func:`scale_from_zero_step`."""
    return {"metric_name": NO_CAPACITY_METRIC, "namespace": METRIC_NAMESPACE, "statistic": "Average",
            "period": 60, "evaluation_periods": 2, "datapoints_to_alarm": 2, "threshold": 1,
            "comparison_operator": "GreaterThanOrEqualToThreshold", "treat_missing_data": "missing",
            "dimensions": {"EndpointName": endpoint_name}}


def scaling_resource_id(endpoint_name: str, variant: str = VARIANT_NAME) -> str:
    """Application Auto Scaling resource id of an endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant}"


def endpoint_timeout_minutes(download_seconds: int, startup_seconds: int, *, provisioning_minutes: int = 20) -> int:
    """How long Pulumi should wait for create/update: instance provisioning plus the download and start-up budgets."""
    return provisioning_minutes + -(-(download_seconds + startup_seconds) // 60)
