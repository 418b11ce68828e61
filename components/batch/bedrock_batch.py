"""BedrockBatchServiceRole: what Bedrock batch inference (``CreateModelInvocationJob``) needs on the batches bucket.

Creates
  - ``aws.iam.Role`` ``<name>-role``, the batch inference *service role* Bedrock assumes while a job runs, trusted by
    ``bedrock.amazonaws.com`` only for this account's jobs in this Region (``aws:SourceAccount`` and
    ``aws:SourceArn`` = ``arn:aws:bedrock:<region>:<account>:model-invocation-job/*``), with ``aws.iam.Policy``
    ``<name>-policy`` (attached as ``<name>-attach``): read ``batches/*/bedrock/input/*``, list ``batches/``, write
    ``batches/*/bedrock/output/*`` of the bucket (this account's bucket only), the bucket key through S3, and, when
    the model is an inference profile, ``bedrock:InvokeModel`` on the profile and the models it routes to.
  - ``aws.iam.Policy`` ``<name>-submit`` for the submitter (the gateway's IRSA role): create jobs on this model
    (tagging them as they are created), get and stop jobs, ``iam:PassRole`` of the service role with
    ``iam:PassedToService: bedrock.amazonaws.com``. No ``ListModelInvocationJobs``: the gateway keeps each job's ARN.

Defaults: none beyond the model: the bucket and key are a :class:`~components.batch.batch_inference.BatchInference`'s.

Security: no wildcard actions; the role cannot be assumed for another account's jobs (confused deputy), reads only
the inputs and writes only the outputs of batches; the submitter can pass this role to Bedrock and nowhere else.

Cost drivers: Bedrock batch bills input and output tokens (AWS states 50% below on-demand; the Nova figures are in
components/catalog/prices.py), and S3 for the input and output files. The role costs nothing.
Quotas: Bedrock's per-model "records per batch inference job" minimum and maximum, "batch inference job size", and
"concurrent batch inference jobs" (Service Quotas, per Region); the gateway enforces the record bounds at submit.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components.base import TYPE_PREFIX, ArgsModel, PulumiInput, merge_tags
from components.batch import _bedrock_batch as bb
from problems import Problem


class BedrockBatchServiceRoleArgs(ArgsModel):
    """Arguments of :class:`BedrockBatchServiceRole`."""

    model_id: str
    """The ``modelId`` of the jobs: a base model id (``amazon.nova-lite-v1:0``), a cross-Region inference profile id
    (``us.amazon.nova-lite-v1:0``), or a foundation-model / inference-profile ARN. Never a Provisioned Throughput
    variant or provisioned-model ARN (batch jobs do not run on those)."""
    bucket: PulumiInput
    """The batches bucket (``BatchInference.bucket``)."""
    kms_key_arn: PulumiInput
    """The key of the bucket (``BatchInference.kms_key_arn``)."""
    region: str
    """AWS Region of the jobs (the trust condition's ``aws:SourceArn`` names it)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the role and the policies. Default: none."""

    def problems(self) -> list[Problem]:
        expected = bb.model_id_problem(self.model_id)
        return [Problem("model_id", self.model_id, expected)] if expected else []


class BedrockBatchServiceRole(pulumi.ComponentResource):
    """The Bedrock batch inference service role and its submitter policy. See the module docstring."""

    role_arn: pulumi.Output[str]
    """ARN of the service role (``roleArn`` of ``CreateModelInvocationJob``)."""
    submit_policy_arn: pulumi.Output[str]
    """Customer managed policy for whoever submits the jobs (attach it to the gateway's role)."""
    model_id: str
    """The jobs' ``modelId``."""

    def __init__(self, name: str, args: BedrockBatchServiceRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}BedrockBatchServiceRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = merge_tags(args.tags, {"genai-scale/component": "bedrock-batch"})
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        where = pulumi.Output.all(partition.partition, identity.account_id)
        role = aws.iam.Role(
            f"{name}-role", assume_role_policy=where.apply(lambda a: json.dumps(bb.trust_policy(
                partition=a[0], region=args.region, account=a[1]))),
            description=f"Bedrock batch inference jobs of {name}: read inputs, write outputs", tags=tags, opts=child)
        doc = pulumi.Output.all(partition.partition, identity.account_id, args.bucket, args.kms_key_arn).apply(
            lambda a: json.dumps(bb.service_role_policy(partition=a[0], region=args.region, account=a[1],
                                                        bucket=a[2], kms_key_arn=a[3], model_id=args.model_id)))
        policy = aws.iam.Policy(f"{name}-policy", policy=doc, description=f"Bedrock batch jobs of {name}",
                                tags=tags, opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-attach", role=role.name, policy_arn=policy.arn, opts=child)
        submit_doc = pulumi.Output.all(partition.partition, identity.account_id, role.arn).apply(
            lambda a: json.dumps(bb.submit_policy(partition=a[0], region=args.region, account=a[1], role_arn=a[2],
                                                  model_id=args.model_id)))
        submit = aws.iam.Policy(f"{name}-submit", policy=submit_doc,
                                description=f"Submit and manage the Bedrock batch jobs of {name}", tags=tags,
                                opts=child)
        self.role_arn = role.arn
        self.submit_policy_arn = submit.arn
        self.model_id = args.model_id
        self.register_outputs({"role_arn": role.arn, "submit_policy_arn": submit.arn})
