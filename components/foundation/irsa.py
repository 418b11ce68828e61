"""IAM roles for Kubernetes service accounts (IRSA): trust one service account, attach one customer-managed policy.

Children of :func:`irsa_role` ``<name>``: ``aws.iam.Role`` ``<name>-role``; with a policy document, ``aws.iam.Policy``
``<name>-policy`` and its ``aws.iam.RolePolicyAttachment`` ``<name>-attach``; per managed policy, a
``RolePolicyAttachment`` ``<name>-managed-<key>`` named after the policy (see :func:`managed_attachment_names`).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.foundation._names import duplicates, name_part, renamed


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


ManagedPolicies = Sequence[Any] | Mapping[str, Any]
"""Policy ARNs to attach: a list (plain ARNs are named after the policy) or a map key -> ARN (named after the key)."""


def managed_attachment_names(name: str, policies: ManagedPolicies) -> list[tuple[str, str, Any]]:
    """``(child name, old positional name, ARN)`` of each managed-policy attachment of role ``name``.

    A map is named by its keys (``<name>-managed-<key>``), a plain ARN by the policy's name, its last segment, in lower
    case (IAM policy names are unique regardless of case): ``arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy`` ->
    ``<name>-managed-amazoneks_cni_policy``. An ARN only known at deploy time (an Output in a list) keeps its
    positional name ``<name>-managed-<i>``: pass a map to name it. The old name is the positional one every
    attachment had before (the alias target).
    """
    items = list(policies.items()) if isinstance(policies, Mapping) else [(None, arn) for arn in policies]
    out = []
    for i, (key, arn) in enumerate(items):
        old = f"{name}-managed-{i}"
        if key is not None:
            new = f"{name}-managed-{name_part(str(key))}"
        elif isinstance(arn, str):
            new = f"{name}-managed-{name_part(arn.rsplit('/', 1)[-1].rsplit(':', 1)[-1]).lower()}"
        else:
            new = old
        out.append((new, old, arn))
    clash = duplicates([n for n, _, _ in out])
    if clash:
        raise ValueError(f"managed policies of {name} would share attachment names: "
                         + "; ".join(f"{n} (entries {', '.join(map(str, idx))})" for n, idx in clash.items())
                         + "; pass a map key -> ARN with distinct keys")
    return out


def irsa_role(name: str, *, oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str,
              service_account: str, policy_document: Any = None, tags: dict[str, str] | None = None,
              parent: pulumi.Resource | None = None, description: str = "",
              managed_policy_arns: ManagedPolicies | None = None) -> aws.iam.Role:
    """Create ``<name>-role`` trusted by one service account and ``<name>-policy`` attached to it.

    ``policy_document`` is a dict or an Output of one (serialized here); ``managed_policy_arns`` attach AWS-managed
    policies instead where AWS publishes a scoped one (the VPC CNI's), each as ``<name>-managed-<key>``
    (:func:`managed_attachment_names`; aliased to the positional ``<name>-managed-<i>`` they had before).
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
    for child, old, arn in managed_attachment_names(name, managed_policy_arns or []):
        aws.iam.RolePolicyAttachment(child, role=role.name, policy_arn=arn, opts=renamed(parent, old, child))
    return role
