"""Stack section: managed inference. Bedrock (on demand or Provisioned Throughput) and SageMaker LMI endpoints.

Config keys: ``genai-scale:bedrock`` and ``genai-scale:sagemaker``. ``build`` puts ``ctx.bedrock``
(:class:`components.managed.bedrock_throughput.BedrockProvisionedThroughput`, or None when ``bedrock.enabled`` is false) and
``ctx.sagemaker`` (endpoint name -> :class:`components.managed.sagemaker_endpoint.SageMakerLmiEndpoint`) on the context.

Tier rules checked here: the prototype tier buys no Provisioned Throughput and runs no SageMaker endpoint (a real-time
endpoint keeps at least one GPU instance running; scale to zero needs inference components, which pulumi-aws 7.51.1
cannot create); committed Bedrock terms are allowed in the scale tier only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.errors import ArgsError

from problems import Problem, missing
from components.managed.bedrock_throughput import BedrockProvisionedThroughput, BedrockProvisionedThroughputArgs
from components.managed.sagemaker_endpoint import SageMakerLmiEndpoint, SageMakerLmiEndpointArgs
from infra.sections.base import BuildContext, SettingsModel, translate


class BedrockSettings(SettingsModel):
    """A Bedrock model for the gateway to route to."""

    enabled: bool = False
    """Set up a Bedrock model (profile + invoke policy, PT if purchased). Default: off."""
    model_id: str | None = None
    """Contextual-variant id from the PT catalogue, e.g. amazon.nova-lite-v1:0:24k. Required when enabled."""
    purchase: bool = False
    """Buy Provisioned Throughput. Default: off (on demand)."""
    model_units: int = 1
    """Model units when purchasing. Default: 1."""
    commitment: Literal["none", "OneMonth", "SixMonths"] = "none"
    """PT term. Default: none."""
    on_demand_source: Literal["in-region", "us", "eu", "apac", "global"] = "in-region"
    """On-demand routing of the application profile. Default: in-region."""


class SageMakerEndpointSettings(SettingsModel):
    """One SageMaker LMI endpoint (the map key is its name)."""

    instance_type: str
    """ml.* instance type."""
    model: str
    """Hugging Face id or uncompressed s3:// prefix."""
    model_revision: str | None = None
    """Hub revision to pin. Default: unset."""
    lmi_version: int | None = None
    """LMI release. Default: the pinned one."""
    image_uri: str | None = None
    """Explicit ECR image. Default: from the catalogue."""
    tensor_parallel_degree: int | None = None
    """GPUs/NeuronCores per model copy. Default: all."""
    max_model_len: int | None = None
    """Max context length. Default: the model's."""
    max_batch_size: int | None = None
    """Max concurrent sequences per copy. Default: the engine's."""
    environment: dict[str, str] = Field(default_factory=dict)
    """Extra container variables. Default: none."""
    initial_instance_count: int | None = None
    """Instances at creation. Default: minInstances."""
    min_instances: int = 1
    """Autoscaling floor. Default: 1."""
    max_instances: int = 1
    """Autoscaling ceiling. Default: 1."""
    invocations_per_instance_target: float = 60.0
    """Invocations per instance per minute target. Default: 60."""
    concurrent_requests_target: float = 16.0
    """Concurrent requests per model target (high resolution). Default: 16."""
    scale_out_cooldown_seconds: int = 120
    """Scale-out cooldown. Default: 120."""
    scale_in_cooldown_seconds: int = 600
    """Scale-in cooldown. Default: 600."""
    startup_health_check_timeout_seconds: int = 1200
    """Start-up health check budget (60-3600). Default: 1200."""
    model_download_timeout_seconds: int = 1200
    """S3 model download budget (60-3600). Default: 1200."""
    volume_size_gb: int | None = None
    """EBS model volume for EBS-only families. Default: unset."""
    enable_network_isolation: bool = False
    """Network isolation (S3 models only). Default: off."""
    routing_strategy: str = "LEAST_OUTSTANDING_REQUESTS"
    """Variant routing strategy. Default: LEAST_OUTSTANDING_REQUESTS."""
    bake_seconds: int = 0
    """Blue/green bake time on updates. Default: 0."""


class SageMakerSettings(SettingsModel):
    in_vpc: bool = True
    """Put endpoints' network interfaces in the stack's private subnets. Default: on."""
    endpoints: dict[str, SageMakerEndpointSettings] = Field(default_factory=dict)
    """Endpoints by name. Default: none."""


KEYS = {"bedrock": BedrockSettings, "sagemaker": SageMakerSettings}
"""Top-level `genai-scale:<key>` config keys this section owns, each with its settings model."""


def _bedrock_args(b: BedrockSettings, *, region: str, tags: dict[str, str] | None = None) -> BedrockProvisionedThroughputArgs:
    return BedrockProvisionedThroughputArgs(model_id=b.model_id or "", region=region, purchase=b.purchase,
                                            model_units=b.model_units, commitment=b.commitment,
                                            on_demand_source=b.on_demand_source, tags=tags or {})


def _endpoint_args(e: SageMakerEndpointSettings, *, region: str, **wiring) -> SageMakerLmiEndpointArgs:
    extra = {} if e.lmi_version is None else {"lmi_version": e.lmi_version}
    return SageMakerLmiEndpointArgs(
        instance_type=e.instance_type, model=e.model, region=region, model_revision=e.model_revision,
        image_uri=e.image_uri, tensor_parallel_degree=e.tensor_parallel_degree, max_model_len=e.max_model_len,
        max_batch_size=e.max_batch_size, environment=dict(e.environment),
        initial_instance_count=e.initial_instance_count or e.min_instances, min_instances=e.min_instances,
        max_instances=e.max_instances, invocations_per_instance_target=e.invocations_per_instance_target,
        concurrent_requests_target=e.concurrent_requests_target,
        scale_out_cooldown_seconds=e.scale_out_cooldown_seconds, scale_in_cooldown_seconds=e.scale_in_cooldown_seconds,
        startup_health_check_timeout_seconds=e.startup_health_check_timeout_seconds,
        model_download_timeout_seconds=e.model_download_timeout_seconds, volume_size_gb=e.volume_size_gb,
        enable_network_isolation=e.enable_network_isolation, routing_strategy=e.routing_strategy,
        bake_seconds=e.bake_seconds, **extra, **wiring)


def problems(cfg) -> list[Problem]:
    """Tier rules and every component rule in config terms."""
    out: list[Problem] = []
    tier = cfg.tier
    b = cfg.bedrock
    if b.enabled:
        if not b.model_id:
            out.append(missing("bedrock.modelId", "required when bedrock.enabled: a contextual-variant id such as "
                               "amazon.nova-lite-v1:0:24k"))
        else:
            try:
                args = _bedrock_args(b, region=cfg.region)
                if args.model.kind != "text":
                    out.append(Problem("bedrock.modelId", b.model_id, "a text model: the gateway sends chat "
                                       f"requests through Converse ({b.model_id} is an {args.model.kind} model)"))
            except ArgsError as err:
                out.extend(translate(err, "bedrock"))
        if b.purchase and tier == "prototype":
            out.append(Problem("bedrock.purchase", True, "false in the prototype tier (it buys nothing: invoke on "
                               "demand through the application inference profile)"))
        if b.commitment != "none" and tier != "scale":
            out.append(Problem("bedrock.commitment", b.commitment, f"'none' in the {tier} tier (committed terms "
                               "cannot be cancelled; only the scale tier may commit)"))
    sm = cfg.sagemaker
    if tier == "prototype" and sm.endpoints:
        out.append(Problem("sagemaker.endpoints", sorted(sm.endpoints), "empty in the prototype tier: a real-time "
                           "endpoint keeps at least one GPU instance running (no idle GPUs in prototype; use the "
                           "vLLM node groups that scale to zero, or Bedrock on demand)"))
    for name, e in sm.endpoints.items():
        wiring = {"vpc_id": "vpc", "subnet_ids": ["subnet"]} if sm.in_vpc else {}
        try:
            _endpoint_args(e, region=cfg.region, **wiring)
        except ArgsError as err:
            out.extend(translate(err, f"sagemaker.endpoints.{name}", {"region": "region"}))
    return out


def build(ctx: BuildContext, cfg) -> None:
    """Bedrock model (if enabled) and one SageMaker endpoint per ``sagemaker.endpoints`` entry."""
    b = cfg.bedrock
    if b.enabled:
        ctx.bedrock = BedrockProvisionedThroughput("bedrock", _bedrock_args(b, region=ctx.region, tags=ctx.tags))
        ctx.export("bedrockModelArn", ctx.bedrock.model_arn)
        ctx.export("bedrockInvokePolicyArn", ctx.bedrock.invoke_policy_arn)
    else:
        ctx.bedrock = None
    sm = cfg.sagemaker
    for name, e in sm.endpoints.items():
        wiring = {"vpc_id": ctx.network.vpc_id, "subnet_ids": ctx.network.private_subnet_ids} if sm.in_vpc else {}
        ctx.sagemaker[name] = SageMakerLmiEndpoint(f"sagemaker-{name}", _endpoint_args(
            e, region=ctx.region, tags=ctx.tags, **wiring))
    if ctx.sagemaker:
        ctx.export("sagemakerEndpoints", {n: ep.endpoint_name for n, ep in ctx.sagemaker.items()})

