"""IAM roles for Kubernetes service accounts (IRSA): trust one service account, attach one customer-managed policy."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def trust_policy(oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str) -> dict[str, Any]:
    """Trust policy that lets exactly ``namespace/service_account`` assume the role through the cluster's OIDC."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{oidc_issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{oidc_issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    }


def irsa_role(name: str, *, oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str,
              service_account: str, policy_document: Any = None, tags: dict[str, str] | None = None,
              parent: pulumi.Resource | None = None, description: str = "",
              managed_policy_arns: list[str] | None = None) -> aws.iam.Role:
    """Create ``<name>-role`` trusted by one service account and ``<name>-policy`` attached to it.

    ``policy_document`` is a dict or an Output of one (serialized here); ``managed_policy_arns`` attach AWS-managed
    policies instead where AWS publishes a scoped one (the VPC CNI's).
    """
    opts = pulumi.ResourceOptions(parent=parent)
    assume = pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda a: json.dumps(trust_policy(a[0], a[1], namespace, service_account)))
    role = aws.iam.Role(f"{name}-role", assume_role_policy=assume, tags=tags or {},
                        description=description or f"IRSA role for {namespace}/{service_account}", opts=opts)
    if policy_document is not None:
        doc = pulumi.Output.from_input(policy_document).apply(lambda d: d if isinstance(d, str) else json.dumps(d))
        policy = aws.iam.Policy(f"{name}-policy", policy=doc, tags=tags or {},
                                description=f"Least-privilege policy for {namespace}/{service_account}", opts=opts)
        aws.iam.RolePolicyAttachment(f"{name}-attach", role=role.name, policy_arn=policy.arn, opts=opts)
    for i, arn in enumerate(managed_policy_arns or []):
        aws.iam.RolePolicyAttachment(f"{name}-managed-{i}", role=role.name, policy_arn=arn, opts=opts)
    return role
