"""Rules for the managed batch backends: SageMaker asynchronous endpoints (results encrypted, scale to zero where the
tier requires idle accelerators to) and the Bedrock batch service role (trust limited to this account's jobs)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from pulumi_policy import EnforcementLevel, Severity

from policies._props import as_list, get, is_map, json_doc, to_int
from policies._rule import Rule, Subject, resource_policy, stack_policy

ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
IAM_ROLE = "aws:iam/role:Role"
BEDROCK = "bedrock.amazonaws.com"


def _async_config(props: Any) -> Any:
    config = get(props, "asyncInferenceConfig")
    return config if is_map(config) else None


@resource_policy(Rule(
    id="sagemaker-async-output-encrypted",
    title="SageMaker async endpoint results are encrypted with a KMS key",
    description="An endpoint configuration with an AsyncInferenceConfig must name a KMS key in its OutputConfig "
                "(KmsKeyId), so the responses and failures it writes to S3 (tenants' completions) are encrypted "
                "with a key the account controls.",
    concern="security", severity=Severity.HIGH,
    remediation="Set async_kms_key_arn on the SageMakerLmiEndpoint (the stack passes the batch bucket's key).",
), types={ENDPOINT_CONFIG})
def async_output_encrypted(s: Subject, cfg: dict) -> Iterable[str]:
    config = _async_config(s.props)
    if config is not None and not get(config, "outputConfig.kmsKeyId"):
        yield "asyncInferenceConfig.outputConfig has no kmsKeyId: the async results are written without a KMS key"


def _by_urn(resources: Sequence[Any]) -> dict[str, Any]:
    return {r.urn: r for r in resources}


def _deps(r: Any, index: dict[str, Any], type_token: str) -> list[Any]:
    out = []
    for d in getattr(r, "dependencies", None) or []:
        dep = index.get(d) if isinstance(d, str) else d
        if dep is not None and dep.resource_type == type_token:
            out.append(dep)
    return out


@stack_policy(Rule(
    id="sagemaker-async-scale-to-zero",
    title="SageMaker async endpoints scale to zero where the tier requires it",
    description="In a tier whose accelerators must scale to zero (tier fact acceleratorsScaleToZero), the "
                "Application Auto Scaling target of an asynchronous endpoint must have minCapacity 0: its "
                "requests wait in SageMaker's queue while the first instance starts.",
    concern="cost", severity=Severity.HIGH,
    remediation="Set minInstances: 0 on the async endpoint (sagemaker.endpoints.<name>); the HasBacklogWithoutCapacity "
                "alarm brings the first instance up when a request waits.",
    config={"required": {"type": "boolean", "default": True,
                         "description": "Every async endpoint must scale to zero (the tier's "
                                        "acceleratorsScaleToZero)."}},
    facts={"required": "acceleratorsScaleToZero"},
    fixed_level=EnforcementLevel.MANDATORY,
))
def async_scale_to_zero(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    if not cfg["required"]:
        return
    index = _by_urn(resources)
    for target in resources:
        if target.resource_type != SCALING_TARGET or get(target.props, "serviceNamespace") != "sagemaker":
            continue
        configs = [c for e in _deps(target, index, ENDPOINT) for c in _deps(e, index, ENDPOINT_CONFIG)]
        if not any(_async_config(c.props) is not None for c in configs):
            continue
        low = to_int(get(target.props, "minCapacity"))
        if low != 0:
            yield (f"{target.name}: minCapacity is {low} on an async endpoint; this tier keeps no idle accelerator "
                   "(minCapacity 0)"), target.urn


def _trusts_bedrock(statement: Any) -> bool:
    principal = get(statement, "Principal.Service")
    return get(statement, "Effect") == "Allow" and BEDROCK in (as_list(principal) or [principal])


def _condition_keys(statement: Any) -> set[str]:
    condition = get(statement, "Condition")
    keys: set[str] = set()
    if is_map(condition):
        for block in condition.values():
            if is_map(block):
                keys.update(k.lower() for k in block)
    return keys


@resource_policy(Rule(
    id="bedrock-service-role-source-conditions",
    title="Bedrock service roles trust only this account's Bedrock resources",
    description="A role trusted by bedrock.amazonaws.com (a batch inference service role, ...) must limit the trust "
                "with aws:SourceAccount and aws:SourceArn conditions, so Bedrock cannot be made to assume it for "
                "another account's jobs (the confused-deputy problem).",
    concern="security", severity=Severity.HIGH,
    remediation="Add \"Condition\": {\"StringEquals\": {\"aws:SourceAccount\": \"<account>\"}, \"ArnEquals\": "
                "{\"aws:SourceArn\": \"arn:aws:bedrock:<region>:<account>:model-invocation-job/*\"}} to the trust "
                "statement (BedrockBatchServiceRole does).",
), types={IAM_ROLE})
def bedrock_trust_conditions(s: Subject, cfg: dict) -> Iterable[str]:
    doc = json_doc(get(s.props, "assumeRolePolicy")) or {}
    for statement in as_list(get(doc, "Statement")):
        if not is_map(statement) or not _trusts_bedrock(statement):
            continue
        keys = _condition_keys(statement)
        missing = [k for k in ("aws:SourceAccount", "aws:SourceArn") if k.lower() not in keys]
        if missing:
            yield ("the trust of bedrock.amazonaws.com has no " + " or ".join(missing) + " condition: Bedrock could "
                   "assume the role for another account's resources")
