"""Stack section: managed inference. Bedrock (on demand or Provisioned Throughput) and SageMaker LMI endpoints.

Config keys: ``genai-scale:bedrock`` and ``genai-scale:sagemaker``. ``build`` puts ``ctx.bedrock``
(:class:`components.managed.bedrock_throughput.BedrockProvisionedThroughput`, or None when ``bedrock.enabled`` is false) and
``ctx.sagemaker`` (endpoint name -> :class:`components.managed.sagemaker_endpoint.SageMakerLmiEndpoint`) on the context.

Tier rules checked here, from the tier's facts (``stacks/tiers/<tier>/tier.yaml``, :mod:`infra.tiers`): Provisioned
Throughput only where ``bedrock.provisionedThroughput`` (not in prototype), a commitment term only where
``bedrock.commitment`` (scale), SageMaker endpoints only where ``sagemakerEndpoints`` (not in prototype: a real-time
endpoint keeps at least one GPU instance running; scale to zero needs inference components, which pulumi-aws 7.51.1
cannot create). An asynchronous endpoint (``sagemaker.endpoints.<name>.mode: async``) is allowed in every tier: it
serves batches only (no real-time route; the gateway's ``batch.backends.<name>``, run by the batch section's
dispatcher workers), writes its results under the batch bucket, and where real-time endpoints are not allowed it must
scale to zero (``minInstances: 0``). It needs ``batch.enabled``: the batch section builds after this one and hands
the bucket and key over through deferred Outputs (:func:`resolve_async_wiring`).
"""

from __future__ import annotations


import pulumi
from pydantic import Field

from components.batch.batch_inference import ASYNC_PREFIX, BATCH_PREFIX
from components.errors import ArgsError

from problems import Problem, missing
from components.managed.bedrock_throughput import BedrockProvisionedThroughput, BedrockProvisionedThroughputArgs
from components.managed.sagemaker_endpoint import SageMakerLmiEndpoint, SageMakerLmiEndpointArgs
from components.naming import autoname_problems, longest_key
from infra.sections.base import BuildContext, SettingsModel, args_from, derive_settings, optional, translate
from infra.tiers import load_tier


WIRING = ("tags", "region", "vpc_id", "subnet_ids", "kms_key_arn")
"""Args the program supplies; never stack config."""

BedrockSettings = derive_settings(
    BedrockProvisionedThroughputArgs, name="BedrockSettings", exclude=WIRING, module=__name__,
    doc="A Bedrock model for the gateway to route to.",
    extra={"enabled": (bool, Field(default=False, description=(
               "Set up a Bedrock model (profile + invoke policy, PT if purchased). Default: off."))),
           **optional(BedrockProvisionedThroughputArgs, "model_id")})
SageMakerEndpointSettings = derive_settings(SageMakerLmiEndpointArgs, name="SageMakerEndpointSettings",
                                            exclude=WIRING, module=__name__,
                                            doc="One SageMaker LMI endpoint (the map key is its name).")


class SageMakerSettings(SettingsModel):
    in_vpc: bool = True
    """Put endpoints' network interfaces in the stack's private subnets. Default: on."""
    endpoints: dict[str, SageMakerEndpointSettings] = Field(default_factory=dict)  # type: ignore[valid-type]
    """Endpoints by name. Default: none."""


KEYS = {"bedrock": BedrockSettings, "sagemaker": SageMakerSettings}
"""Top-level `genai-scale:<key>` config keys this section owns, each with its settings model."""


ENDPOINT_NAMES = (("sagemaker-model", "sagemaker-{}-model"), ("sagemaker-endpoint-config", "sagemaker-{}-config"),
                  ("sagemaker-endpoint", "sagemaker-{}-endpoint"), ("iam-role", "sagemaker-{}-role"),
                  ("iam-policy", "sagemaker-{}-execution"))
"""AWS names Pulumi generates from an endpoint's key (``<logical name>-<7 random characters>``)."""


def endpoint_key_problems(name: str) -> list[Problem]:
    """The endpoint's key must give valid AWS names: SageMaker's alphabet and the shortest length limit."""
    if not any(autoname_problems(service, template.format(name)) for service, template in ENDPOINT_NAMES):
        return []
    longest = min(longest_key(service, template) for service, template in ENDPOINT_NAMES)
    return [Problem(f"sagemaker.endpoints.{name}", name, f"an endpoint name of letters, digits and hyphens, at most "
                    f"{longest} characters (its SageMaker endpoint is named sagemaker-<name>-endpoint-<7 random "
                    f"characters>, at most 63 of [a-zA-Z0-9-])")]


def _bedrock_args(b, *, region: str, tags: dict[str, str] | None = None) -> BedrockProvisionedThroughputArgs:
    return args_from(b, BedrockProvisionedThroughputArgs, model_id=b.model_id or "", region=region, tags=tags or {})


def _endpoint_args(e, *, region: str, **wiring) -> SageMakerLmiEndpointArgs:
    return args_from(e, SageMakerLmiEndpointArgs, region=region, **wiring)


ASYNC_WIRING = "managed-async-wiring"
"""``ctx.extras`` key of the resolvers of the async endpoints' bucket and key (:func:`resolve_async_wiring`)."""
_ASYNC_PLACEHOLDER = {"async_input_s3_uri": "s3://placeholder-bucket/batches/",
                      "async_output_s3_uri": "s3://placeholder-bucket/batches/sagemaker-async/x/",
                      "async_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/placeholder"}


def async_endpoint_names(cfg) -> list[str]:
    """Names of the asynchronous endpoints of ``sagemaker.endpoints`` (batch backends, no real-time route)."""
    return sorted(n for n, e in cfg.sagemaker.endpoints.items() if e.mode == "async")


def _async_wiring(ctx: BuildContext, name: str) -> dict[str, object]:
    """The async endpoint's S3 prefixes and key, from the batch section's bucket and key (deferred Outputs)."""
    deferred = ctx.extras.get(ASYNC_WIRING)
    if deferred is None:
        bucket, resolve_bucket = ctx.deferred()
        key, resolve_key = ctx.deferred()
        deferred = ctx.extras[ASYNC_WIRING] = {"bucket": bucket, "key": key,
                                               "resolvers": {"bucket": resolve_bucket, "key": resolve_key}}
    return {"async_input_s3_uri": pulumi.Output.concat("s3://", deferred["bucket"], "/", BATCH_PREFIX),
            "async_output_s3_uri": pulumi.Output.concat("s3://", deferred["bucket"], "/", ASYNC_PREFIX, name, "/"),
            "async_kms_key_arn": deferred["key"]}


def resolve_async_wiring(ctx: BuildContext, bucket: object, kms_key_arn: object) -> None:
    """Hand the batch bucket and key to the async endpoints' deferred inputs (no-op without async endpoints)."""
    deferred = ctx.extras.pop(ASYNC_WIRING, None)
    if deferred is None:
        return
    deferred["resolvers"]["bucket"](pulumi.Output.from_input(bucket))
    deferred["resolvers"]["key"](pulumi.Output.from_input(kms_key_arn))


def problems(cfg) -> list[Problem]:
    """Tier rules and every component rule in config terms."""
    out: list[Problem] = []
    tier = cfg.tier
    facts = load_tier(tier)
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
        if b.purchase and not facts.bedrock.provisioned_throughput:
            out.append(Problem("bedrock.purchase", True, f"false in the {tier} tier (it buys no provisioned "
                               "throughput, tier fact bedrock.provisionedThroughput: invoke on demand through the "
                               "application inference profile)"))
        if b.commitment != "none" and not facts.bedrock.commitment:
            out.append(Problem("bedrock.commitment", b.commitment, f"'none' in the {tier} tier (committed terms "
                               "cannot be cancelled; only a tier whose fact bedrock.commitment is true may commit)"))
    sm = cfg.sagemaker
    real_time = sorted(n for n, e in sm.endpoints.items() if e.mode != "async")
    if real_time and not facts.sagemaker_endpoints:
        out.append(Problem("sagemaker.endpoints", real_time, f"empty in the {tier} tier but for async endpoints: "
                           "a real-time endpoint keeps at least one GPU instance running (tier fact sagemakerEndpoints "
                           "is false; use the vLLM node groups that scale to zero, Bedrock on demand, or mode: async "
                           "with minInstances: 0 for batches)"))
    for name in async_endpoint_names(cfg):
        e = sm.endpoints[name]
        if not cfg.batch.enabled:
            out.append(Problem(f"sagemaker.endpoints.{name}.mode", "async", "real-time, or turn batch on "
                               "(batch.enabled): an async endpoint serves batches only, through the batch section's "
                               "dispatcher workers, and writes its results to the batch bucket", ("batch.enabled",)))
        if e.min_instances != 0 and not facts.sagemaker_endpoints:
            out.append(Problem(f"sagemaker.endpoints.{name}.minInstances", e.min_instances, f"0 in the {tier} tier "
                               "(tier fact sagemakerEndpoints is false: no instance may stay up while the queue is "
                               "empty)"))
    for name, e in sm.endpoints.items():
        out.extend(endpoint_key_problems(name))
        wiring: dict[str, object] = {"vpc_id": "vpc", "subnet_ids": ["subnet"]} if sm.in_vpc else {}
        if e.mode == "async":
            wiring.update(_ASYNC_PLACEHOLDER)
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
        if e.mode == "async":
            wiring.update(_async_wiring(ctx, name))
        ctx.sagemaker[name] = SageMakerLmiEndpoint(f"sagemaker-{name}", _endpoint_args(
            e, region=ctx.region, tags=ctx.tags, **wiring))
    if ctx.sagemaker:
        ctx.export("sagemakerEndpoints", {n: ep.endpoint_name for n, ep in ctx.sagemaker.items()})

