"""Pure functions behind BedrockProvisionedThroughput: ARNs, names and the invoke policy.

ARN formats (Bedrock API reference): foundation models ``arn:<p>:bedrock:<region>::foundation-model/<id>`` (no
account), system-defined profiles ``arn:<p>:bedrock:<region>:<account>:inference-profile/<geo>.<id>``, application
profiles ``...:application-inference-profile/<id>``, provisioned models ``...:provisioned-model/<id>``.
Invoke permissions (Bedrock user guide, "Prerequisites for inference profiles"): calling an application inference
profile needs ``bedrock:InvokeModel*`` on the profile *and* on the models it routes to; for a geographic or global
profile that means the foundation model in every destination Region and the system-defined profile. The model
statements are narrowed with the ``bedrock:InferenceProfileArn`` condition key so the role cannot call the model
directly. Converse uses ``bedrock:InvokeModel``; ConverseStream uses ``bedrock:InvokeModelWithResponseStream``.
"""

from __future__ import annotations

import re
from typing import Any

from components.naming import aws_name

INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
PT_NAME = re.compile(r"^([0-9a-zA-Z][_-]?)+$")


def foundation_model_arn(partition: str, region: str, model_id: str) -> str:
    return f"arn:{partition}:bedrock:{region}::foundation-model/{model_id}"


def system_profile_arn(partition: str, region: str, account: str, geo: str, base_id: str) -> str:
    return f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{geo}.{base_id}"


def profile_source_arn(partition: str, region: str, account: str, base_id: str, source: str) -> str:
    """What the application inference profile copies: the in-Region foundation model or a system profile."""
    if source == "in-region":
        return foundation_model_arn(partition, region, base_id)
    return system_profile_arn(partition, region, account, source, base_id)


def provisioned_model_name(stack: str, name: str) -> str:
    """The ``provisionedModelName`` of a component in a stack: ``<stack>-<name>`` when the API's pattern
    (1-63 chars of ``([0-9a-zA-Z][_-]?)+``) accepts it, else rewritten by :func:`components.naming.aws_name`."""
    return aws_name("bedrock-provisioned-model", stack, name)


def profile_description(name: str, base_id: str, source: str) -> str:
    """A description matching CreateInferenceProfile's pattern ``([0-9a-zA-Z:.][ _-]?)+`` (max 200 chars)."""
    text = f"genai-scale {name} on-demand {base_id} via {source}"
    text = re.sub(r"[^0-9a-zA-Z:. _-]+", " ", text)
    text = re.sub(r"([ _-])[ _-]+", r"\1", text).strip(" _-")
    return text[:200].rstrip(" _-")


def invoke_policy(*, partition: str, region: str, account: str, base_id: str, source: str,
                  profile_arn: str, provisioned_arn: str | None) -> dict[str, Any]:
    """Least-privilege invoke policy for the serving roles: the provisioned model (if bought), the application
    profile, and the models behind the profile only when called through it."""
    statements: list[dict[str, Any]] = []
    if provisioned_arn:
        statements.append({"Sid": "ProvisionedThroughput", "Effect": "Allow", "Action": INVOKE_ACTIONS,
                           "Resource": [provisioned_arn]})
    statements.append({"Sid": "ApplicationProfile", "Effect": "Allow", "Action": INVOKE_ACTIONS,
                       "Resource": [profile_arn]})
    if source == "in-region":
        behind = [foundation_model_arn(partition, region, base_id)]
    else:
        behind = [foundation_model_arn(partition, "*", base_id),
                  system_profile_arn(partition, region, account, source, base_id)]
    statements.append({"Sid": "ModelsBehindProfile", "Effect": "Allow", "Action": INVOKE_ACTIONS,
                       "Resource": behind,
                       "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}})
    return {"Version": "2012-10-17", "Statement": statements}
