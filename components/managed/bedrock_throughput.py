"""BedrockProvisionedThroughput: a Bedrock model to invoke, bought as Provisioned Throughput or used on demand.

Creates
    An application inference profile (``aws.bedrock.InferenceProfile``) that copies the model's on-demand source
    (the in-Region foundation model, or a system-defined ``us.``/``eu.``/``apac.``/``global.`` cross-Region profile)
    so on-demand spend carries the stack's cost-allocation tags; when ``purchase`` is set, an
    ``aws.bedrock.ProvisionedModelThroughput`` for the model's contextual variant; and a customer managed IAM policy
    that lets the serving roles invoke exactly these (no ``bedrock:*``).
Defaults
    Nothing is bought (``purchase=False``): invocations go on demand through the application profile, billed per
    token. With ``purchase=True``: 1 model unit, no commitment.
Security posture
    The invoke policy names the provisioned model, the profile, and the models behind the profile only under the
    ``bedrock:InferenceProfileArn`` condition. A committed purchase (``OneMonth``/``SixMonths``) is created with
    ``protect=True``: AWS refuses to delete it before the term ends, so ``pulumi destroy`` refuses too, instead of
    failing half-way (unprotect it with ``pulumi state unprotect`` once the term is over).
Cost drivers
    Provisioned Throughput bills every hour per model unit until deleted, whether used or not; longer commitments
    lower the hourly rate. The profile itself costs nothing; on-demand tokens are billed per model price.
Quotas and prerequisites
    Model access must be granted in the Bedrock console for the Region; model units for PT (with or without
    commitment) must first be requested from AWS Support or the account team; PT is bought in the Regions the
    catalogue lists for the variant; on-demand and cross-Region token quotas apply per model.
"""

from __future__ import annotations

import json
from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components.managed import _bedrock as br
from components.base import TYPE_PREFIX, ArgsModel, merge_tags
from components.naming import current_stack
from problems import Problem, did_you_mean
from components.catalog import bedrock_models as catalog

Commitment = Literal["none", "OneMonth", "SixMonths"]
OnDemandSource = Literal["in-region", "us", "eu", "apac", "global"]


class BedrockProvisionedThroughputArgs(ArgsModel):
    """Typed arguments of :class:`BedrockProvisionedThroughput`."""

    model_id: str
    """Contextual-variant model id from ``components.catalog.bedrock_models`` (e.g. ``amazon.nova-lite-v1:0:24k``).
    The on-demand profile uses its base model (``amazon.nova-lite-v1:0``)."""
    region: str
    """Region of the stack (PT availability is checked against it)."""
    purchase: bool = False
    """Buy Provisioned Throughput. Default: False (nothing is bought; invoke on demand through the profile)."""
    model_units: int = Field(default=1, ge=1)
    """Model units to buy (>= 1, each a fixed tokens-per-minute capacity). Default: 1. Used only with ``purchase``."""
    commitment: Commitment = "none"
    """Term: ``none`` (delete any time), ``OneMonth`` or ``SixMonths`` (cannot be deleted before the term ends;
    the resource is protected). Default: ``none``."""
    on_demand_source: OnDemandSource = "in-region"
    """What the application profile routes to: the in-Region model, or a system-defined cross-Region profile of that
    geography (more throughput; prompts may be processed in other Regions of the geography). Default: in-Region."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the profile, the purchase and the policy."""

    @property
    def model(self) -> catalog.BedrockModel:
        found = catalog.lookup(self.model_id)
        assert found is not None
        return found

    @property
    def committed(self) -> bool:
        return self.purchase and self.commitment != "none"

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        model = catalog.lookup(self.model_id)
        if model is None:
            variants = catalog.variants_of(self.model_id)
            if variants:
                expected = ("a contextual variant id; Provisioned Throughput is bought per variant: "
                            + ", ".join(variants))
            else:
                expected = ("a model id from the Provisioned Throughput catalogue: " + ", ".join(sorted(catalog.MODELS))
                            + did_you_mean(self.model_id, catalog.MODELS))
            out.append(Problem("model_id", self.model_id, expected))
        if self.commitment != "none" and not self.purchase:
            out.append(Problem("commitment", self.commitment, "'none' unless purchase is true"))
        if model is None:
            return out
        if self.purchase and self.region not in model.pt_regions:
            out.append(Problem("region", self.region, f"a Region where {self.model_id} can be bought as Provisioned "
                               "Throughput: " + ", ".join(model.pt_regions)))
        if self.purchase and self.commitment == "none" and model.no_commit is False:
            out.append(Problem("commitment", "none", f"OneMonth or SixMonths: {self.model_id} is not offered "
                               "without commitment"))
        if self.on_demand_source != "in-region":
            if self.on_demand_source not in model.profiles:
                offered = ", ".join(model.profiles) or "none"
                out.append(Problem("on_demand_source", self.on_demand_source,
                                   f"'in-region' or a geography with a system-defined profile for {model.base_id} "
                                   f"({offered})"))
            elif not catalog.geo_serves_region(self.on_demand_source, self.region):
                out.append(Problem("on_demand_source", self.on_demand_source,
                                   f"a geography that Region {self.region} belongs to (or 'in-region')"))
        return out


class BedrockProvisionedThroughput(pulumi.ComponentResource):
    """A Bedrock model to invoke; see the module docstring for what it creates, costs and protects."""

    model_arn: pulumi.Output[str]
    """What the serving clients pass as ``modelId``: the provisioned model ARN when bought, else the application
    inference profile ARN."""
    profile_arn: pulumi.Output[str]
    """Application inference profile ARN (on-demand path, tagged for cost allocation)."""
    provisioned_model_arn: pulumi.Output[str] | None
    """Provisioned model ARN, or None when nothing is bought."""
    invoke_policy_arn: pulumi.Output[str]
    """Customer managed policy to attach to serving roles."""
    provisioned: bool
    """Whether Provisioned Throughput was bought (``purchase``); False means on demand through the application
    inference profile."""
    committed: bool
    """Whether the purchase has a commitment term (``OneMonth``/``SixMonths``; protected from ``pulumi destroy``)."""
    model_id: str
    """The contextual-variant Bedrock model id the component was built for, e.g. ``amazon.nova-lite-v1:0:24k``."""

    def __init__(self, name: str, args: BedrockProvisionedThroughputArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}BedrockProvisionedThroughput", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = merge_tags(args.tags, {"genai-scale/component": "bedrock"})
        model = args.model
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))

        source_arn = pulumi.Output.all(partition.partition, identity.account_id).apply(
            lambda a: br.profile_source_arn(a[0], args.region, a[1], model.base_id, args.on_demand_source))
        profile = aws.bedrock.InferenceProfile(
            f"{name}-profile",
            description=br.profile_description(name, model.base_id, args.on_demand_source),
            model_source={"copy_from": source_arn}, tags=tags, opts=child)

        pt = None
        if args.purchase:
            pt_opts = pulumi.ResourceOptions(parent=self, protect=True) if args.committed else child
            pt = aws.bedrock.ProvisionedModelThroughput(
                f"{name}-pt", provisioned_model_name=br.provisioned_model_name(current_stack(), name),
                model_arn=partition.partition.apply(lambda p: br.foundation_model_arn(p, args.region, model.model_id)),
                model_units=args.model_units,
                commitment_duration=None if args.commitment == "none" else args.commitment,
                tags=tags, opts=pt_opts)

        provisioned_arn = pt.provisioned_model_arn if pt is not None else None
        doc = pulumi.Output.all(partition.partition, identity.account_id, profile.arn, provisioned_arn).apply(
            lambda a: json.dumps(br.invoke_policy(partition=a[0], region=args.region, account=a[1],
                                                  base_id=model.base_id, source=args.on_demand_source,
                                                  profile_arn=a[2], provisioned_arn=a[3])))
        invoke = aws.iam.Policy(f"{name}-invoke", policy=doc, description=f"Invoke Bedrock model {name}",
                                tags=tags, opts=child)

        self.model_id = args.model_id
        self.provisioned = pt is not None
        self.committed = args.committed
        self.profile_arn = profile.arn
        self.provisioned_model_arn = provisioned_arn
        self.model_arn = provisioned_arn if provisioned_arn is not None else profile.arn
        self.invoke_policy_arn = invoke.arn
        self.register_outputs({"model_arn": self.model_arn, "profile_arn": profile.arn,
                               "invoke_policy_arn": invoke.arn})
