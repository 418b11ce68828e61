"""Pure parts of :class:`components.batch.bedrock_batch.BedrockBatchServiceRole`: which model ids Bedrock batch
inference takes, and the IAM documents. No Pulumi.

Sources (checked 2026-12):
- Model ids: Amazon Bedrock user guide, "Supported Regions and models for batch inference"
  (docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-supported.html): a job runs on a foundation model (its
  base id, e.g. ``amazon.nova-lite-v1:0``) or a cross-Region inference profile (``us.amazon.nova-lite-v1:0``); Nova
  Lite, Micro and Pro list us-east-1 for the foundation model and the US, EU and APAC Regions for the profiles. The
  ids come from :mod:`components.catalog.bedrock_models` (a contextual variant such as ``...:24k`` is a Provisioned
  Throughput id, and a provisioned model is not a batch target).
- Service role: "Create a custom service role for batch inference"
  (docs.aws.amazon.com/bedrock/latest/userguide/batch-iam-sr.html): trusted by ``bedrock.amazonaws.com`` with the
  ``aws:SourceAccount`` and ``aws:SourceArn`` (``model-invocation-job/*``) conditions; S3 read of the input and write
  of the output; with an inference profile, ``bedrock:InvokeModel`` on the profile and the foundation models it routes
  to.
- Submitter: "Required permissions for batch inference" (batch-inference-permissions.html):
  ``bedrock:CreateModelInvocationJob`` on the model and ``model-invocation-job/*``, Get/Stop on the jobs,
  ``bedrock:TagResource`` on the jobs (the gateway tags them when it creates them), and ``iam:PassRole`` of the
  service role (condition ``iam:PassedToService``). ``ListModelInvocationJobs`` is not granted: the gateway keeps
  each job's ARN in the batch manifest.

S3 layout (the batch contract): ``batches/<batch id>/bedrock/input/records.jsonl`` in,
``batches/<batch id>/bedrock/output/`` out.
"""

from __future__ import annotations

import re
from typing import Any

from components.catalog import bedrock_models
from components.batch._batch import BATCH_PREFIX

BEDROCK_PRINCIPAL = "bedrock.amazonaws.com"
INPUT_PATTERN = f"{BATCH_PREFIX}*/bedrock/input/*"
"""Objects the service role may read: the input files the gateway writes under each batch."""
OUTPUT_PATTERN = f"{BATCH_PREFIX}*/bedrock/output/*"
"""Objects the service role may write: the job outputs under each batch."""
GEOS = ("us", "eu", "apac", "global")
ARN = re.compile(r"^arn:aws(?:-[a-z-]+)?:bedrock:(?P<region>[a-z0-9-]*):(?P<account>\d{12})?:"
                 r"(?P<kind>[a-z-]+)/(?P<id>.+)$")
ARN_KINDS = ("foundation-model", "inference-profile", "application-inference-profile")


def batch_model_ids() -> tuple[str, ...]:
    """Every text model id of the catalogue Bedrock batch takes: base ids and their system-defined profiles."""
    out: set[str] = set()
    for m in bedrock_models.MODELS.values():
        if m.kind != "text":
            continue
        out.add(m.base_id)
        out.update(f"{g}.{m.base_id}" for g in m.profiles)
    return tuple(sorted(out))


def model_id_problem(model_id: str) -> str | None:
    """What is wrong with ``model_id`` as a batch job's ``modelId`` (None: fine)."""
    m = ARN.match(model_id)
    if m is not None:
        if m["kind"] in ARN_KINDS:
            return None
        hint = " (Provisioned Throughput serves real-time requests only)" if m["kind"] == "provisioned-model" else ""
        return ("a foundation-model or inference-profile ARN, a base model id or a cross-Region profile id such as "
                f"us.amazon.nova-lite-v1:0, not a {m['kind']} ARN{hint}")
    if model_id in batch_model_ids():
        return None
    row = bedrock_models.lookup(model_id)
    if row is not None:
        return (f"a base model id or cross-Region profile id, not the Provisioned Throughput variant: use "
                f"{row.base_id}" + (f" or {row.profiles[0]}.{row.base_id}" if row.profiles else ""))
    return ("a text model Bedrock batch inference takes: " + ", ".join(batch_model_ids())
            + " (or a foundation-model / inference-profile ARN)")


def model_resources(model_id: str, *, partition: str, region: str, account: str) -> list[str]:
    """ARNs a job on ``model_id`` invokes: the foundation model, or the profile and the models it routes to
    (in any Region of its geography)."""
    m = ARN.match(model_id)
    if m is not None:
        if m["kind"] == "inference-profile":
            base = model_id.split("/", 1)[1].split(".", 1)[1]
            return [model_id, f"arn:{partition}:bedrock:*::foundation-model/{base}"]
        if m["kind"] == "application-inference-profile":
            return [model_id, f"arn:{partition}:bedrock:*::foundation-model/*"]
        return [model_id]
    geo, _, base = model_id.partition(".")
    if geo in GEOS and base:
        return [f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model_id}",
                f"arn:{partition}:bedrock:*::foundation-model/{base}"]
    return [f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"]


def uses_profile(model_id: str) -> bool:
    """Whether the job runs through an inference profile (the service role then invokes the model itself)."""
    m = ARN.match(model_id)
    if m is not None:
        return m["kind"] != "foundation-model"
    geo, _, base = model_id.partition(".")
    return geo in GEOS and bool(base)


def job_arn_pattern(*, partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:bedrock:{region}:{account}:model-invocation-job/*"


def trust_policy(*, partition: str, region: str, account: str) -> dict[str, Any]:
    """Bedrock may assume the role only for batch jobs of this account and Region (confused-deputy conditions)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": BEDROCK_PRINCIPAL}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnEquals": {"aws:SourceArn": job_arn_pattern(partition=partition, region=region,
                                                                     account=account)}}}]}


def service_role_policy(*, partition: str, region: str, account: str, bucket: str, kms_key_arn: str,
                        model_id: str) -> dict[str, Any]:
    """What a batch job may do: read the batches' Bedrock inputs, write their outputs (in this account's bucket
    only), use the bucket's key through S3, and, through a profile, invoke the model."""
    own = {"StringEquals": {"aws:ResourceAccount": account}}
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadInput", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": [f"arn:{partition}:s3:::{bucket}/{INPUT_PATTERN}"], "Condition": own},
        {"Sid": "ListBatches", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": [f"arn:{partition}:s3:::{bucket}"],
         "Condition": {**own, "StringLike": {"s3:prefix": [f"{BATCH_PREFIX}*"]}}},
        {"Sid": "WriteOutput", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": [f"arn:{partition}:s3:::{bucket}/{OUTPUT_PATTERN}"], "Condition": own},
        {"Sid": "BatchKeyThroughS3", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": [kms_key_arn], "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ]
    if uses_profile(model_id):
        statements.append({"Sid": "InvokeThroughProfile", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
                           "Resource": model_resources(model_id, partition=partition, region=region,
                                                       account=account)})
    return {"Version": "2012-10-17", "Statement": statements}


def submit_policy(*, partition: str, region: str, account: str, role_arn: str, model_id: str) -> dict[str, Any]:
    """What the gateway needs to run Bedrock batches: create jobs on this model, read and stop them, and pass the
    service role to Bedrock (and to nothing else)."""
    jobs = job_arn_pattern(partition=partition, region=region, account=account)
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "CreateJobs", "Effect": "Allow", "Action": ["bedrock:CreateModelInvocationJob"],
         "Resource": [jobs, *model_resources(model_id, partition=partition, region=region, account=account)]},
        {"Sid": "ManageJobs", "Effect": "Allow",
         "Action": ["bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"], "Resource": [jobs]},
        # the gateway tags each job (batch id, tenant) in CreateModelInvocationJob: tag-on-create needs TagResource
        {"Sid": "TagJobsOnCreate", "Effect": "Allow", "Action": ["bedrock:TagResource"], "Resource": [jobs]},
        {"Sid": "PassServiceRole", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": [role_arn],
         "Condition": {"StringEquals": {"iam:PassedToService": BEDROCK_PRINCIPAL}}},
    ]}
