"""LbController: the AWS Load Balancer Controller (Helm), with IRSA and its documented IAM policy.

Creates
    An IRSA role (``components.foundation.irsa.irsa_role``) trusted only by ``kube-system/aws-load-balancer-controller`` with a
    customer managed policy: the controller's reference policy (kept verbatim as data in
    ``components/catalog/lb_controller_iam_policy.json``) narrowed where it grants writes on ``*`` without a
    condition (see :func:`controller_policy`: security-group ingress limited to this VPC as the install guide
    recommends, security-group creation and listener/rule writes limited to resources carrying the controller's
    ``elbv2.k8s.aws/cluster`` tag, WAF/Shield association writes dropped because those features are off); and the
    ``aws-load-balancer-controller`` Helm release (chart pinned in
    ``components.versions.LB_CONTROLLER_CHART``) that reconciles ``TargetGroupBinding`` resources.
Defaults
    Two replicas (one in small clusters if asked) with a PodDisruptionBudget of one unavailable, Region and VPC passed
    explicitly (nodes with IMDSv2 hop limit 1 cannot look them up), the Service mutating webhook off (Services stay
    ClusterIP/LoadBalancer as written; the ALB is owned by Pulumi), WAF/WAFv2/Shield integration off (the web ACL is a
    Pulumi resource), resources requested so the scheduler places it.
Security posture
    No node-role permissions: credentials come from IRSA. The policy has no ``*`` actions, and no write on ``*``
    without a scoping condition. If you add Ingress- or Service-managed load balancers later and see AccessDenied on
    listener calls for resources without the controller's tag, revisit :func:`controller_policy`.
Cost drivers
    Two small pods on the system nodes. Load balancers are not created by it here (targets only).
Quotas
    None beyond the cluster's pods and the IAM policy size limit (the reference policy is about 5 KB).
Source
    kubernetes-sigs/aws-load-balancer-controller tag v3.5.0 (2026-08-03): ``docs/install/iam_policy.json`` (last
    changed 2025-03-27), ``docs/deploy/installation.md`` (IMDSv2, scoping), ``helm/aws-load-balancer-controller``
    ``values.yaml``. Checked 2026-11.
Cluster inputs
    Give ``cluster=<EksCluster>`` and the cluster name, OIDC provider and VPC come from it (explicit inputs win), and
    its Kubernetes provider when ``opts`` names none.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput, merge_tags
from components.foundation.eks_cluster import cluster_input_problems, from_cluster, with_cluster_provider
from components.foundation.irsa import irsa_role
from problems import Problem

POLICY_SOURCE = ("kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json "
                 "(last changed 2025-03-27)")
POLICY_CHECKED = "2026-11"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
SG_INGRESS_ACTIONS = frozenset({"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"})
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
WAF_SHIELD_WRITES = frozenset({"waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL",
                               "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "shield:CreateProtection",
                               "shield:DeleteProtection"})
"""Dropped: the controller runs with ``enableWaf``/``enableWafv2``/``enableShield`` off (the ALB's web ACL is a Pulumi
resource), so it never calls them."""
TAG_SCOPED_LB_WRITES = frozenset({
    "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener", "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteRule", "elasticloadbalancing:SetWebAcl", "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities"})
"""Limited to load balancers the controller made (they carry ``elbv2.k8s.aws/cluster``, the condition upstream already
puts on its other load-balancer writes): the controller can never edit the Pulumi-owned ALB's listeners."""


@cache
def reference_policy() -> dict[str, Any]:
    """The upstream reference IAM policy, as published."""
    text = resources.files("components.catalog").joinpath("lb_controller_iam_policy.json").read_text()
    return json.loads(text)


def _actions(st: dict[str, Any]) -> list[str]:
    return st["Action"] if isinstance(st["Action"], list) else [st["Action"]]


def controller_policy(vpc_arn: str) -> dict[str, Any]:
    """The reference policy, narrowed where it grants writes on ``*`` without a condition:

    1. ``ec2:Authorize/RevokeSecurityGroupIngress``: ``ArnEquals ec2:Vpc`` (the install guide's recommendation);
    2. ``ec2:CreateSecurityGroup``: only with the ``elbv2.k8s.aws/cluster`` request tag (the controller tags what it
       creates; upstream's CreateTags statement already relies on that tag);
    3. listener and rule writes: only on resources tagged ``elbv2.k8s.aws/cluster``;
    4. WAF/Shield association writes: removed (those controller features are switched off in the Helm values).
    Read-only calls stay on ``*``, as published.
    """
    doc = copy.deepcopy(reference_policy())
    out = []
    for st in doc["Statement"]:
        actions = _actions(st)
        unconditioned = st.get("Resource") == "*" and "Condition" not in st
        if unconditioned and set(actions) == SG_INGRESS_ACTIONS:
            st["Condition"] = {"ArnEquals": {"ec2:Vpc": vpc_arn}}
        elif unconditioned and actions == ["ec2:CreateSecurityGroup"]:
            st["Condition"] = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"}}
        elif unconditioned and set(actions) <= TAG_SCOPED_LB_WRITES:
            st["Condition"] = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}
        elif unconditioned and set(actions) & WAF_SHIELD_WRITES:
            st["Action"] = [a for a in actions if a not in WAF_SHIELD_WRITES]
        out.append(st)
    doc["Statement"] = out
    return doc


class LbControllerArgs(ArgsModel):
    """Typed arguments of :class:`LbController`."""

    region: str
    """Cluster Region (passed to the controller so it does not need IMDS)."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` the controller runs in: ``cluster_name``,
    ``oidc_provider_arn``, ``oidc_issuer`` and ``vpc_id`` default from it (explicit values win), and its Kubernetes
    provider is used when ``opts`` names none. Default: none (give those inputs explicitly)."""
    cluster_name: PulumiInput = None
    """EKS cluster name (tags and discovery). Default: ``cluster.cluster_name`` (required without ``cluster``)."""
    oidc_provider_arn: PulumiInput = None
    """ARN of the cluster's IAM OIDC provider. Default: ``cluster.oidc_provider_arn`` (required without ``cluster``)."""
    oidc_issuer: PulumiInput = None
    """OIDC issuer host/path without ``https://``. Default: ``cluster.oidc_issuer`` (required without ``cluster``)."""
    vpc_id: PulumiInput = None
    """VPC of the cluster (passed to the controller and used to scope its security-group permissions). Default:
    ``cluster.vpc_id`` (required without ``cluster``)."""
    replicas: int = Field(default=2, ge=1, le=5)
    """Controller replicas (leader election keeps one active). Default: 2."""
    chart_version: str = versions.LB_CONTROLLER_CHART.version
    """Chart version. Default: the pinned one."""
    image_tag: str = versions.LB_CONTROLLER_IMAGE.version
    """Controller image tag. Default: the pinned one (matches the chart's appVersion)."""
    namespace: str = "kube-system"
    """Namespace of the release. Default: ``kube-system`` (where the chart's webhook expects it)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Cost-allocation tags for the IAM resources and, through ``defaultTags``, AWS resources the controller makes."""

    def problems(self) -> list[Problem]:
        return cluster_input_problems(self, CLUSTER_INPUTS, required=CLUSTER_INPUTS)


CLUSTER_INPUTS = {"cluster_name": "cluster_name", "oidc_provider_arn": "oidc_provider_arn",
                  "oidc_issuer": "oidc_issuer", "vpc_id": "vpc_id"}
"""LbControllerArgs fields -> the EksCluster attribute each defaults from."""


def render_values(args: LbControllerArgs, *, cluster_name: str, vpc_id: str, role_arn: str) -> dict[str, Any]:
    """Helm values for the controller."""
    values: dict[str, Any] = {
        "clusterName": cluster_name,
        "region": args.region,
        "vpcId": vpc_id,
        "replicaCount": args.replicas,
        "image": {"repository": versions.LB_CONTROLLER_IMAGE.repository, "tag": args.image_tag},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT,
                           "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "enableServiceMutatorWebhook": False,
        "enableWaf": False,
        "enableWafv2": False,
        "enableShield": False,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "defaultTags": dict(args.tags),
    }
    if args.replicas > 1:
        values["podDisruptionBudget"] = {"maxUnavailable": 1}
    return values


class LbController(pulumi.ComponentResource):
    """The AWS Load Balancer Controller. See the module docstring."""

    release: k8s.helm.v3.Release
    """The Helm release (TargetGroupBindings should ``depends_on`` it)."""
    role: aws.iam.Role
    """IRSA role of the controller."""
    values: pulumi.Output[dict[str, Any]]
    """Rendered Helm values."""

    def __init__(self, name: str, args: LbControllerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}LbController", name, None, with_cluster_provider(opts, args.cluster))
        c = args.cluster
        cluster_name, vpc_id = from_cluster(args.cluster_name, c, "cluster_name"), from_cluster(args.vpc_id, c, "vpc_id")
        tags = merge_tags(args.tags, {"genai-scale/component": "lb-controller"})
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        doc = pulumi.Output.all(partition.partition, identity.account_id, vpc_id).apply(
            lambda a: controller_policy(f"arn:{a[0]}:ec2:{args.region}:{a[1]}:vpc/{a[2]}"))
        self.role = irsa_role(name, oidc_provider_arn=from_cluster(args.oidc_provider_arn, c, "oidc_provider_arn"),
                              oidc_issuer=from_cluster(args.oidc_issuer, c, "oidc_issuer"),
                              namespace=args.namespace, service_account=SERVICE_ACCOUNT, policy_document=doc,
                              tags=tags, parent=self, description="AWS Load Balancer Controller")
        self.values = pulumi.Output.all(cluster_name, vpc_id, self.role.arn).apply(
            lambda a: render_values(args, cluster_name=a[0], vpc_id=a[1], role_arn=a[2]))
        self.release = k8s.helm.v3.Release(
            name, chart=versions.LB_CONTROLLER_CHART.name, version=args.chart_version,
            repository_opts={"repo": versions.LB_CONTROLLER_CHART.repository}, namespace=args.namespace,
            values=self.values, atomic=True, cleanup_on_fail=True, timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role]))
        self.register_outputs({"role_arn": self.role.arn})
