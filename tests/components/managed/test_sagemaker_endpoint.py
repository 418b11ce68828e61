"""SageMakerLmiEndpoint: image resolution, container environment, validation messages, and the recorded resources."""

import json

import pytest

from components.managed import _sagemaker as sm
from components.catalog import lmi_images
from components.managed.sagemaker_endpoint import SageMakerLmiEndpoint, SageMakerLmiEndpointArgs
from infra.plan import run_program
from tests.kit.plan import errors_of, plan_component

BASE = {"instance_type": "ml.g6.12xlarge", "model": "Qwen/Qwen2.5-32B-Instruct", "region": "us-east-1"}


def args(**kw):
    return SageMakerLmiEndpointArgs(**{**BASE, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


def plan(**kw):
    return plan_component(lambda: SageMakerLmiEndpoint("llm", args(**kw)))


# --- pure resolution --------------------------------------------------------------------------------------------

def test_lmi_image_uri_uses_the_region_registry_and_the_pinned_release():
    assert lmi_images.lmi_image_uri(28, "us-east-1") == \
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.36.0-lmi28.0.0-cu130"
    assert lmi_images.lmi_image_uri(28, "af-south-1").startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert lmi_images.lmi_image_uri(28, "cn-north-1").startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")


def test_neuron_instances_get_the_huggingface_vllm_neuron_image_not_djl():
    image = sm.resolve_image(sm.accelerator_for("ml.inf2.8xlarge"), "us-east-1", lmi=28)
    assert image.engine == "neuron-vllm"
    assert image.uri == ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-vllm-inference-neuronx:"
                         "0.11.0-optimum0.4.5-neuronx-py310-sdk2.26.1-ubuntu22.04")
    assert image.inference_ami_version is None


def test_cuda_13_images_run_on_the_driver_580_host_ami():
    image = sm.resolve_image(sm.accelerator_for("ml.g6.2xlarge"), "us-east-1", lmi=28)
    assert image.inference_ami_version == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert sm.resolve_image(sm.accelerator_for("ml.g6.2xlarge"), "us-east-1", lmi=13).inference_ami_version == \
        "al2-ami-sagemaker-inference-gpu-3-1"


def test_every_catalogued_host_ami_exists_in_the_api_model():
    assert {i.inference_ami_version for i in lmi_images.LMI_IMAGES.values()} <= set(sm.inference_ami_versions())


def test_ecr_repository_arn_is_derived_from_the_image_uri():
    assert sm.ecr_repository_arn("763104351884.dkr.ecr.us-west-2.amazonaws.com/djl-inference:0.36.0-lmi28.0.0-cu130") \
        == "arn:aws:ecr:us-west-2:763104351884:repository/djl-inference"
    assert sm.ecr_repository_arn("docker.io/vllm/vllm-openai:latest") is None


def test_tensor_parallel_degree_defaults_to_every_gpu_and_neuroncore():
    assert args().tp_degree == 4
    assert args(instance_type="ml.inf2.24xlarge").tp_degree == 12
    assert sm.valid_tp_degrees(8) == [1, 2, 4, 8]


def test_lmi_environment_always_sets_tp_and_matches_loading_timeout_to_the_health_check():
    env = sm.container_environment("lmi", model="Qwen/Qwen2.5-7B-Instruct", revision="abc123", tp_degree=2,
                                   max_model_len=8192, max_batch_size=32, loading_timeout_seconds=1500,
                                   extra={"OPTION_GPU_MEMORY_UTILIZATION": "0.9"})
    assert env == {"HF_MODEL_ID": "Qwen/Qwen2.5-7B-Instruct", "HF_REVISION": "abc123",
                   "OPTION_GPU_MEMORY_UTILIZATION": "0.9", "OPTION_MAX_MODEL_LEN": "8192",
                   "OPTION_MAX_ROLLING_BATCH_SIZE": "32", "OPTION_MODEL_LOADING_TIMEOUT": "1500",
                   "OPTION_TENSOR_PARALLEL_DEGREE": "2"}


def test_s3_models_are_read_from_the_mount_point():
    env = sm.container_environment("lmi", model="s3://models-bucket/qwen/7b/", revision=None, tp_degree=1,
                                   max_model_len=None, max_batch_size=None, loading_timeout_seconds=600, extra={})
    assert env["HF_MODEL_ID"] == "/opt/ml/model"
    neuron = sm.container_environment("neuron-vllm", model="s3://models-bucket/qwen/7b/", revision=None, tp_degree=2,
                                      max_model_len=4096, max_batch_size=4, loading_timeout_seconds=600, extra={})
    assert neuron == {"SM_ON_BATCH_SIZE": "4", "SM_ON_MODEL": "/opt/ml/model", "SM_ON_SEQUENCE_LENGTH": "4096",
                      "SM_ON_TENSOR_PARALLEL_SIZE": "2"}


# What the pinned Hugging Face vLLM Neuron image reads (optimum-neuron v0.4.5, checked 2026-12-05): its entrypoint
# (docker/vllm/Dockerfile) passes SM_ON_<X>=v as --<x> v to `optimum-cli neuron serve`, whose own options
# (optimum/commands/neuron/serve.py) are these; any other flag goes to vLLM unchanged (vLLM's --revision).
OPTIMUM_NEURON_SERVE_ENV = {"SM_ON_MODEL", "SM_ON_TENSOR_PARALLEL_SIZE", "SM_ON_BATCH_SIZE", "SM_ON_SEQUENCE_LENGTH"}
VLLM_PASS_THROUGH_ENV = {"SM_ON_REVISION"}


def test_neuron_environment_uses_the_names_the_optimum_neuron_entrypoint_reads():
    env = sm.container_environment("neuron-vllm", model="Qwen/Qwen2.5-7B-Instruct", revision="abc123", tp_degree=2,
                                   max_model_len=4096, max_batch_size=8, loading_timeout_seconds=600, extra={})
    assert env == {"SM_ON_BATCH_SIZE": "8", "SM_ON_MODEL": "Qwen/Qwen2.5-7B-Instruct", "SM_ON_REVISION": "abc123",
                   "SM_ON_SEQUENCE_LENGTH": "4096", "SM_ON_TENSOR_PARALLEL_SIZE": "2"}
    assert set(env) <= OPTIMUM_NEURON_SERVE_ENV | VLLM_PASS_THROUGH_ENV
    assert sm.NEURON_MANAGED_ENV == OPTIMUM_NEURON_SERVE_ENV | VLLM_PASS_THROUGH_ENV
    assert not {"SM_ON_MAX_NUM_SEQS", "SM_ON_MAX_MODEL_LEN"} & set(env), "not read by optimum-cli neuron serve"


def test_execution_role_policy_has_no_wildcard_actions_and_scopes_model_reads():
    doc = sm.execution_role_policy(partition="aws", region="us-east-1", account="123456789012",
                                   repository_arn="arn:aws:ecr:us-east-1:763104351884:repository/djl-inference",
                                   s3_model=("models-bucket", "qwen/7b/"), kms_key_arn="arn:aws:kms:us-east-1:1:key/k",
                                   vpc_arn=None)
    actions = [a for st in doc["Statement"] for a in st["Action"]]
    assert not [a for a in actions if "*" in a]
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["ModelRead"]["Resource"] == ["arn:aws:s3:::models-bucket/qwen/7b/*"]
    assert by_sid["ModelList"]["Condition"] == {"StringLike": {"s3:prefix": ["qwen/7b/*"]}}
    assert by_sid["EcrPull"]["Resource"] == ["arn:aws:ecr:us-east-1:763104351884:repository/djl-inference"]
    assert "VpcEni" not in by_sid
    assert by_sid["Kms"]["Resource"] == ["arn:aws:kms:us-east-1:1:key/k"]
    # only the actions that AWS does not scope to a resource use "*"
    assert {st["Sid"] for st in doc["Statement"] if st["Resource"] == "*"} == {"EcrAuth", "Metrics"}


def test_eni_writes_are_limited_to_the_endpoint_vpc_and_no_key_means_no_kms_grant():
    doc = sm.execution_role_policy(partition="aws", region="us-east-1", account="123456789012",
                                   repository_arn="arn:aws:ecr:us-east-1:763104351884:repository/djl-inference",
                                   s3_model=None, kms_key_arn=None, vpc_arn="arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1")
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["VpcEni"]["Condition"] == {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"}}
    assert all(a.startswith("ec2:Describe") for a in by_sid["VpcDescribe"]["Action"])
    assert not {"Kms", "KmsGrant", "ModelRead"} & set(by_sid)


def test_endpoint_timeout_covers_download_and_startup():
    assert sm.endpoint_timeout_minutes(1200, 1200) == 20 + 40
    assert sm.endpoint_timeout_minutes(61, 60) == 20 + 3


# --- validation messages ---------------------------------------------------------------------------------------

def test_unknown_instance_type_names_the_field_and_suggests():
    msg = errors(instance_type="ml.g6.12xlarg")
    assert "instance_type = 'ml.g6.12xlarg'" in msg and 'did you mean "ml.g6.12xlarge"' in msg


def test_cpu_instance_types_are_refused():
    assert "an accelerated instance type from the accelerator catalogue" in errors(instance_type="ml.m5.xlarge")


def test_tensor_parallel_degree_must_divide_the_gpus():
    msg = errors(tensor_parallel_degree=3)
    assert "tensor_parallel_degree = 3: a divisor of the 4 GPUs of ml.g6.12xlarge: 1, 2, 4" in msg


def test_tensor_parallel_degree_on_neuron_counts_neuroncores():
    assert "a divisor of the 2 NeuronCores of ml.inf2.8xlarge: 1, 2" in errors(instance_type="ml.inf2.8xlarge",
                                                                               tensor_parallel_degree=4)


@pytest.mark.parametrize("field", ["startup_health_check_timeout_seconds", "model_download_timeout_seconds"])
@pytest.mark.parametrize("value,bound", [(59, ">= 60"), (3601, "<= 3600")])
def test_timeouts_are_limited_to_the_api_range(field, value, bound):
    assert f"{field} = {value}: expected a number {bound}" in errors(**{field: value})


@pytest.mark.parametrize("value,bound", [(0, ">= 1"), (513, "<= 512")])
def test_volume_size_range(value, bound):
    assert f"volume_size_gb = {value}: expected a number {bound}" in errors(instance_type="ml.inf2.8xlarge",
                                                                            volume_size_gb=value)


def test_kms_key_is_refused_on_instance_store_families():
    assert "kms_key_arn = 'arn:aws:kms:us-east-1:1:key/k': unset: ml.g6.12xlarge has NVMe instance storage" in \
        errors(kms_key_arn="arn:aws:kms:us-east-1:1:key/k")


def test_ebs_only_families_get_a_rotating_key_by_default():
    result, _ = plan(instance_type="ml.inf2.8xlarge")
    key = result.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    config = result.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["kmsKeyArn"] == key.outputs["arn"]
    sids = {st["Sid"] for st in json.loads(result.one("aws:iam/policy:Policy", "llm-execution").inputs["policy"])["Statement"]}
    assert {"Kms", "KmsGrant"} <= sids


def test_volume_size_is_refused_on_instance_store_families():
    assert "ml.g6.12xlarge keeps the model on NVMe instance storage" in errors(volume_size_gb=100)
    assert args(instance_type="ml.inf2.8xlarge", volume_size_gb=100).volume_size_gb == 100


def test_compressed_model_archives_get_a_specific_hint():
    assert "compressed archives are not supported" in errors(model="s3://bucket/model.tar.gz")
    assert "an uncompressed S3 prefix 's3://bucket/prefix/' ending with '/'" in errors(model="s3://bucket/prefix")


def test_network_isolation_needs_an_s3_model():
    assert "enable_network_isolation = True: false for a Hugging Face Hub model" in \
        errors(enable_network_isolation=True)
    assert args(model="s3://models-bucket/qwen/", enable_network_isolation=True).enable_network_isolation


def test_revision_is_meaningless_for_s3_models():
    assert "model_revision = 'main': unset for an S3 model" in errors(model="s3://b-1/p/", model_revision="main")


def test_unknown_region_and_lmi_release_are_named():
    msg = errors(region="xx-nowhere-1", lmi_version=99)
    assert "region = 'xx-nowhere-1': a Region with an LMI registry" in msg
    assert "lmi_version = 99: a known LMI release" in msg


def test_neuron_image_region_is_checked():
    assert "a Region that hosts the Hugging Face vLLM Neuron image" in errors(instance_type="ml.inf2.8xlarge",
                                                                              region="ca-central-1")


def test_explicit_image_must_be_ecr():
    assert "image_uri = 'vllm/vllm-openai:v0.11'" in errors(image_uri="vllm/vllm-openai:v0.11")
    ok = args(image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-vllm:1.0")
    assert ok.image_uri.endswith("my-vllm:1.0")


def test_environment_may_not_override_managed_keys():
    assert "environment = ['HF_MODEL_ID', 'OPTION_TENSOR_PARALLEL_DEGREE']: keys the component sets itself" in \
        errors(environment={"HF_MODEL_ID": "x", "OPTION_TENSOR_PARALLEL_DEGREE": "8"})
    assert "upper-case variable names" in errors(environment={"hf_token": "x"})


def test_instance_bounds_and_routing_and_ami_are_checked_together():
    msg = errors(min_instances=3, max_instances=2, initial_instance_count=1, routing_strategy="ROUND_ROBIN",
                 inference_ami_version="al2-gpu-9")
    assert "min_instances = 3: <= max_instances (2)" in msg
    assert "initial_instance_count = 1: between min_instances (3) and max_instances (2)" in msg
    assert "routing_strategy = 'ROUND_ROBIN': one of LEAST_OUTSTANDING_REQUESTS, RANDOM" in msg
    assert "inference_ami_version = 'al2-gpu-9'" in msg
    assert msg.startswith("invalid SageMakerLmiEndpointArgs: 4 problems")


def test_initial_instances_default_to_the_minimum():
    """One default, in the args: without initial_instance_count the endpoint starts at min_instances."""
    msg = errors(min_instances=3, max_instances=2)
    assert "initial_instance_count" not in msg and msg.startswith("invalid SageMakerLmiEndpointArgs: 1 problem")
    plan, _ = plan_component(lambda: SageMakerLmiEndpoint("ep", args(min_instances=2, max_instances=3)))
    cfg = plan.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert cfg.inputs["productionVariants"][0]["initialInstanceCount"] == 2


def test_vpc_and_subnets_go_together():
    assert "subnet_ids = None: set together with vpc_id" in errors(vpc_id="vpc-1")


# --- recorded resources ----------------------------------------------------------------------------------------

def test_model_config_and_endpoint_are_auto_named_and_wired():
    result, ep = plan(max_model_len=16384, max_batch_size=64, min_instances=2, max_instances=6,
                      initial_instance_count=2, bake_seconds=600)
    model = result.one("aws:sagemaker/model:Model")
    config = result.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    endpoint = result.one("aws:sagemaker/endpoint:Endpoint")
    assert "name" not in model.inputs and "name" not in config.inputs and "name" not in endpoint.inputs
    container = model.inputs["primaryContainer"]
    assert container["image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.36.0-lmi28.0.0-cu130"
    assert container["environment"]["OPTION_TENSOR_PARALLEL_DEGREE"] == "4"
    assert container["environment"]["OPTION_MODEL_LOADING_TIMEOUT"] == "1200"
    assert "modelDataSource" not in container
    variant = config.inputs["productionVariants"][0]
    assert variant["modelName"] == model.outputs["name"]
    assert variant["instanceType"] == "ml.g6.12xlarge"
    assert variant["initialInstanceCount"] == 2
    assert variant["routingConfigs"] == [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}]
    assert variant["containerStartupHealthCheckTimeoutInSeconds"] == 1200
    assert variant["modelDataDownloadTimeoutInSeconds"] == 1200
    assert variant["inferenceAmiVersion"] == "al2023-ami-sagemaker-inference-gpu-4-1"
    assert "volumeSizeInGb" not in variant
    # NVMe instance storage: no KMS key on the configuration (the API refuses one), none created
    assert "kmsKeyArn" not in config.inputs
    assert result.by_type("aws:kms/key:Key") == []
    assert endpoint.inputs["endpointConfigName"] == config.outputs["name"]
    assert endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["terminationWaitInSeconds"] == 600
    assert ep.engine == "lmi" and ep.tensor_parallel_degree == 4


def test_autoscaling_tracks_invocations_and_concurrency_with_cooldowns():
    result, _ = plan(min_instances=1, max_instances=4, invocations_per_instance_target=90,
                     concurrent_requests_target=24, scale_in_cooldown_seconds=900, scale_out_cooldown_seconds=60)
    target = result.one("aws:appautoscaling/target:Target")
    endpoint = result.one("aws:sagemaker/endpoint:Endpoint")
    assert target.inputs["resourceId"] == f"endpoint/{endpoint.outputs['name']}/variant/AllTraffic"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (1, 4)
    policies = {p.name: p.inputs for p in result.by_type("aws:appautoscaling/policy:Policy")}
    inv = policies["llm-invocations"]["targetTrackingScalingPolicyConfiguration"]
    conc = policies["llm-concurrency"]["targetTrackingScalingPolicyConfiguration"]
    assert inv["predefinedMetricSpecification"]["predefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert inv["targetValue"] == 90
    assert conc["predefinedMetricSpecification"]["predefinedMetricType"] == \
        "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    assert conc["targetValue"] == 24
    assert {inv["scaleInCooldown"], conc["scaleInCooldown"]} == {900}
    assert {inv["scaleOutCooldown"], conc["scaleOutCooldown"]} == {60}
    assert all(p["policyType"] == "TargetTrackingScaling" for p in policies.values())


def test_invoke_policy_allows_exactly_this_endpoint():
    result, _ = plan()
    endpoint = result.one("aws:sagemaker/endpoint:Endpoint")
    invoke = json.loads(result.one("aws:iam/policy:Policy", "llm-invoke").inputs["policy"])
    assert invoke["Statement"] == [{"Sid": "InvokeEndpoint", "Effect": "Allow",
                                    "Action": ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                                    "Resource": [endpoint.outputs["arn"]]}]


def test_execution_role_is_trusted_by_sagemaker_and_never_full_access():
    result, _ = plan()
    role = result.one("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    attachments = result.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert [a.inputs["policyArn"] for a in attachments] == [result.one("aws:iam/policy:Policy", "llm-execution").outputs["arn"]]
    assert "AmazonSageMakerFullAccess" not in json.dumps([r.inputs for r in result.resources])
    model = result.one("aws:sagemaker/model:Model")
    assert any(d.endswith("llm-execution") for d in model.dependencies)


def test_s3_model_in_a_vpc_with_isolation_mounts_the_prefix_and_adds_eni_permissions():
    result, _ = plan(instance_type="ml.inf2.8xlarge", model="s3://models-bucket/qwen/7b/", enable_network_isolation=True,
                     vpc_id="vpc-0abc", subnet_ids=["subnet-a", "subnet-b"], volume_size_gb=200, kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/given")
    model = result.one("aws:sagemaker/model:Model")
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["primaryContainer"]["modelDataSource"] == {"s3DataSources": [
        {"s3Uri": "s3://models-bucket/qwen/7b/", "s3DataType": "S3Prefix", "compressionType": "None"}]}
    assert model.inputs["primaryContainer"]["environment"]["SM_ON_MODEL"] == "/opt/ml/model"
    assert model.inputs["vpcConfig"]["subnets"] == ["subnet-a", "subnet-b"]
    sg = result.one("aws:ec2/securityGroup:SecurityGroup")
    assert model.inputs["vpcConfig"]["securityGroupIds"] == [sg.outputs["id"]]
    egress = result.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert (egress.inputs["fromPort"], egress.inputs["toPort"]) == (443, 443)
    assert result.by_type("aws:kms/key:Key") == []
    config = result.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert config.inputs["kmsKeyArn"] == "arn:aws:kms:us-east-1:123456789012:key/given"
    assert config.inputs["productionVariants"][0]["volumeSizeInGb"] == 200
    assert "inferenceAmiVersion" not in config.inputs["productionVariants"][0]
    sids = {st["Sid"] for st in json.loads(result.one("aws:iam/policy:Policy", "llm-execution").inputs["policy"])["Statement"]}
    assert {"ModelRead", "ModelList", "VpcEni", "VpcDescribe", "Kms"} <= sids


def test_every_taggable_child_carries_the_callers_tags():
    result = run_program(lambda: SageMakerLmiEndpoint("llm", args(tags={"team": "ml", "tier": "scale"})))
    tagged = [r for r in result.resources if r.custom and "tags" in r.inputs]
    assert tagged and all(r.inputs["tags"]["team"] == "ml" for r in tagged)
