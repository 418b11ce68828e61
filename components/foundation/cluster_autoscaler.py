"""ClusterAutoscaler: the Kubernetes cluster autoscaler (Helm) with a least-privilege IRSA role.

Creates
  - IRSA role ``<name>-role`` + policy ``<name>-policy``: describe actions on ``*`` (they cannot be scoped), and
    ``SetDesiredCapacity`` / ``TerminateInstanceInAutoScalingGroup`` only on Auto Scaling
    groups tagged ``k8s.io/cluster-autoscaler/<cluster>=owned`` (GpuNodeGroup writes that tag).
  - ``kubernetes:helm.sh/v3:Release`` ``<name>`` of the ``cluster-autoscaler`` chart (pinned), image tag matching the
    cluster's minor version, auto-discovery by cluster name, an expander, balance-similar-node-groups, and scale-down
    timing per tier (the seeds: scale down after 10-15 minutes of sustained low use).

Give ``cluster=<EksCluster>`` and the cluster name, Kubernetes version and OIDC provider come from it (explicit inputs
win), and its Kubernetes provider when ``opts`` names none.

Defaults: expander ``least-waste``, scale-down after 15 min unneeded, utilization threshold 0.5.
Security: IRSA scoped to one service account; mutating actions conditioned on the cluster's ASG tag.
Cost drivers: one small pod on the system nodes; its decisions drive GPU node hours.
Quotas: EC2 instance quotas bound what it can start.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions

from components.foundation import irsa as _irsa
from components.foundation.eks_cluster import cluster_input_problems, from_cluster, with_cluster_provider
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from problems import Problem

SERVICE_ACCOUNT = "cluster-autoscaler"
NAMESPACE = "kube-system"

# IAM actions from the cluster-autoscaler AWS README / eks-blueprints-addons policy (checked 2026-11).
DESCRIBE_ACTIONS = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
]
# Scaling needs exactly these two: SetDesiredCapacity to grow or shrink a group, TerminateInstanceInAutoScalingGroup
# to remove one chosen node. (Some public policies add UpdateAutoScalingGroup; the autoscaler's ASG scaling does not
# call it, so it is left out.)
MUTATING_ACTIONS = [
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
]


def iam_policy(cluster_name: str) -> dict[str, Any]:
    """Least-privilege policy: read anything, change only this cluster's tagged Auto Scaling groups."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Describe", "Effect": "Allow", "Action": DESCRIBE_ACTIONS, "Resource": "*"},
            {"Sid": "ScaleOwnGroups", "Effect": "Allow", "Action": MUTATING_ACTIONS, "Resource": "*",
             "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
        ],
    }


class ClusterAutoscalerArgs(ArgsModel):
    """Arguments of :class:`ClusterAutoscaler`."""

    region: PulumiInput
    """AWS Region of the cluster."""
    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster` to scale: ``cluster_name``, ``kubernetes_version``,
    ``oidc_provider_arn`` and ``oidc_issuer`` default from it (explicit values win), and its Kubernetes provider is used
    when ``opts`` names none. Default: none (give those inputs explicitly)."""
    cluster_name: PulumiInput = None
    """Name of the EKS cluster (auto-discovery and the IAM condition). Default: ``cluster.cluster_name`` (required
    without ``cluster``)."""
    kubernetes_version: str | None = None
    """Cluster minor version, e.g. ``1.35``; picks the matching autoscaler image. Default: ``cluster.version``
    (required without ``cluster``)."""
    oidc_provider_arn: PulumiInput = None
    """IAM OIDC provider of the cluster (IRSA). Default: ``cluster.oidc_provider_arn`` (required without ``cluster``)."""
    oidc_issuer: PulumiInput = None
    """OIDC issuer host/path of the cluster (IRSA). Default: ``cluster.oidc_issuer`` (required without ``cluster``)."""
    chart_version: str = versions.CLUSTER_AUTOSCALER_CHART.version
    """Chart version. Default: the pinned version."""
    image_tag: str | None = None
    """Autoscaler image tag. Default: the pinned tag for ``kubernetes_version``."""
    expander: Literal["least-waste", "priority", "most-pods", "random", "price"] = "least-waste"
    """How to choose among node groups that fit. Default: least-waste."""
    expander_priorities: dict[int, list[str]] = Field(default_factory=dict)
    """For ``priority``: priority -> node-group name regexes. Default: none."""
    balance_similar_node_groups: bool = True
    """Keep similar node groups (same instance type in several AZs) the same size. Default: on."""
    scale_down_unneeded_time: str = Field(default="15m", pattern=r"^\d+[smh]$")
    """How long a node must be unneeded before removal. Default: 15m (the seeds: 10-15 min)."""
    scale_down_delay_after_add: str = Field(default="10m", pattern=r"^\d+[smh]$")
    """Pause scale-down after a scale-up. Default: 10m."""
    scale_down_utilization_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Node utilization (requests/allocatable) below which a node may be removed. Default: 0.5."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags for the IAM role and policy. Default: none."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where the autoscaler pod runs. Default: the system node group."""

    def problems(self) -> list[Problem]:
        out = cluster_input_problems(self, CLUSTER_INPUTS, required=CLUSTER_INPUTS)
        version = self.resolved_kubernetes_version()
        if self.image_tag is None and version is not None and version not in versions.CLUSTER_AUTOSCALER_IMAGE_TAGS:
            out.append(Problem("kubernetes_version", version,
                               "no pinned cluster-autoscaler image for this minor; pinned: "
                               + ", ".join(versions.CLUSTER_AUTOSCALER_IMAGE_TAGS) + " (or set image_tag)",
                               ("cluster",) if self.kubernetes_version is None else ()))
        if self.expander == "priority" and not self.expander_priorities:
            out.append(Problem("expander_priorities", {}, "required when expander is priority"))
        return out

    def resolved_kubernetes_version(self) -> str | None:
        """``kubernetes_version``, else the cluster's version."""
        return from_cluster(self.kubernetes_version, self.cluster, "version")


CLUSTER_INPUTS = {"cluster_name": "cluster_name", "kubernetes_version": "version",
                  "oidc_provider_arn": "oidc_provider_arn", "oidc_issuer": "oidc_issuer"}
"""ClusterAutoscalerArgs fields -> the EksCluster attribute each defaults from."""


def render_values(args: ClusterAutoscalerArgs, *, cluster_name: str, region: str, role_arn: str) -> dict[str, Any]:
    """Helm values of the cluster-autoscaler chart."""
    values: dict[str, Any] = {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": args.image_tag or versions.CLUSTER_AUTOSCALER_IMAGE_TAGS[args.resolved_kubernetes_version()]},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT,
                                    "annotations": {"eks.amazonaws.com/role-arn": role_arn}}},
        "extraArgs": {
            "expander": args.expander,
            "balance-similar-node-groups": args.balance_similar_node_groups,
            "skip-nodes-with-system-pods": False,
            "scale-down-unneeded-time": args.scale_down_unneeded_time,
            "scale-down-delay-after-add": args.scale_down_delay_after_add,
            "scale-down-utilization-threshold": args.scale_down_utilization_threshold,
        },
        "nodeSelector": dict(args.node_selector),
        "podDisruptionBudget": {"maxUnavailable": 1},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                     "capabilities": {"drop": ["ALL"]}},
    }
    if args.expander == "priority":
        values["expanderPriorities"] = {int(k): list(v) for k, v in args.expander_priorities.items()}
    return values


class ClusterAutoscaler(pulumi.ComponentResource):
    """Cluster autoscaler with auto-discovery and IRSA. See the module docstring."""

    release: k8s.helm.v3.Release
    """The cluster-autoscaler Helm release."""
    role: Any
    """IRSA role of the autoscaler."""

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}ClusterAutoscaler", name, None, with_cluster_provider(opts, args.cluster))
        c = args.cluster
        cluster_name = from_cluster(args.cluster_name, c, "cluster_name")
        policy = pulumi.Output.from_input(cluster_name).apply(iam_policy)
        self.role = _irsa.irsa_role(name, oidc_provider_arn=from_cluster(args.oidc_provider_arn, c, "oidc_provider_arn"),
                                    oidc_issuer=from_cluster(args.oidc_issuer, c, "oidc_issuer"),
                                    namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, policy_document=policy,
                                    tags=dict(args.tags), parent=self)
        values = pulumi.Output.all(cluster_name, args.region, self.role.arn).apply(
            lambda a: render_values(args, cluster_name=a[0], region=a[1], role_arn=a[2]))
        self.release = k8s.helm.v3.Release(
            name, chart=versions.CLUSTER_AUTOSCALER_CHART.name, version=args.chart_version,
            repository_opts={"repo": versions.CLUSTER_AUTOSCALER_CHART.repository}, namespace=NAMESPACE,
            values=values, atomic=True, cleanup_on_fail=True, timeout=600, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
