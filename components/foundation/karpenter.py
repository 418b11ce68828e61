"""Karpenter: the Karpenter node provisioner (controller, CRDs, IAM, interruption queue) on an EKS cluster.

Creates
  - ``kubernetes:helm.sh/v3:Release`` ``<name>-crd`` of the ``karpenter-crd`` chart: NodePool, EC2NodeClass, NodeClaim
    CRDs as their own release, so upgrading or removing the controller never deletes them (Helm neither upgrades nor
    deletes a chart's ``crds/``);
  - ``kubernetes:helm.sh/v3:Release`` ``<name>`` of the ``karpenter`` chart (pinned, ``skip_crds``): ``settings.
    clusterName``, ``settings.interruptionQueue``, two replicas on the system node group (never on nodes it launches);
  - the controller's IAM: ``<name>-controller-role`` for EKS Pod Identity (associated with ``kube-system/karpenter``)
    with ``<name>-controller-policy``, the upstream controller policy (v1.14.1 getting-started CloudFormation, in one
    document, without the ZonalShift statement: zonal shift is off): launches, tags and terminations only of
    resources tagged for this cluster and a NodePool, PassRole only of the node role, the queue only;
  - the node IAM: ``<name>-node`` (EC2 trust; AmazonEKSWorkerNodePolicy and AmazonEC2ContainerRegistryPullOnly, like
    the managed node groups' role: the VPC CNI has its own IRSA role, and no SSM shell) and an EKS access entry
    ``<name>-node`` of type ``EC2_LINUX`` so its nodes join; Karpenter creates the instance profiles itself;
  - ``aws.sqs.Queue`` ``<name>-interruptions`` (SQS-managed SSE, 300 s retention) with a policy letting EventBridge
    (``events.amazonaws.com``) and SQS send and denying non-TLS access, and ``aws.cloudwatch.EventRule`` +
    ``EventTarget`` ``<name>-<rule>`` for the spot interruption warning, rebalance recommendation, instance state
    change, AWS Health scheduled change and capacity reservation interruption events. Karpenter handles these
    natively: do not run aws-node-termination-handler beside it (both acting on a rebalance recommendation relaunch
    nodes in a loop; disruption.md, troubleshooting.md v1.14).

Give ``cluster=<EksCluster>`` and the cluster name comes from it, and its Kubernetes provider when ``opts`` names none.

Defaults: pinned chart, 2 controller replicas on ``genai-scale/node-group=system``, 1 CPU / 1 GiB per replica.
Security: Pod Identity scoped to one service account; the upstream least-privilege policy scoped by cluster tags;
encrypted queue, TLS only.
Cost drivers: two small controller pods on the system nodes; the SQS queue and EventBridge rules (cents a month).
Quotas: the EC2 vCPU quotas of the instance families the NodePools allow (Karpenter reports "insufficient capacity"
or a quota error on the NodeClaim); one SQS queue and five EventBridge rules of the account's limits.
Source: aws/karpenter-provider-aws v1.14.1 (tests/upstream/karpenter/iam-v1.14.1/cloudformation.yaml, checked
2026-12-06).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.foundation.eks_cluster import cluster_input_problems, from_cluster, with_cluster_provider
from components.queues import pod_identity_role
from problems import Problem

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
CHART = f"{versions.KARPENTER_CHART.repository}/{versions.KARPENTER_CHART.name}"
CRD_CHART = f"{versions.KARPENTER_CHART.repository}/{versions.KARPENTER_CRD_CHART}"

# The EventBridge events Karpenter reads from its queue (v1.14.1 getting-started CloudFormation): rule key -> pattern.
EVENT_RULES: dict[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation-interruption": {"source": ["aws.ec2"],
                                          "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
}
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")


def controller_policy(*, partition: str, region: str, account_id: str, cluster_name: str, node_role_arn: str,
                      queue_arn: str) -> dict[str, Any]:
    """The Karpenter controller's IAM policy: the policies of the v1.14.1 getting-started CloudFormation
    (NodeLifecycle, IAMIntegration, EKSIntegration, Interruption, ResourceDiscovery) as one document. ZonalShift
    (``arc-zonal-shift:GetManagedResource``) is left out: it serves ``settings.enableZonalShift``, off here."""
    p, r, a, c = partition, region, account_id, cluster_name
    return {"Version": "2012-10-17", "Statement": (
        [{"Sid": "AllowScopedEC2InstanceAccessActions",
          "Effect": "Allow",
          "Resource": [f"arn:{p}:ec2:{r}::image/*",
                       f"arn:{p}:ec2:{r}::snapshot/*",
                       f"arn:{p}:ec2:{r}:*:security-group/*",
                       f"arn:{p}:ec2:{r}:*:subnet/*",
                       f"arn:{p}:ec2:{r}:*:capacity-reservation/*",
                       f"arn:{p}:ec2:{r}:*:placement-group/*"],
          "Action": ["ec2:RunInstances", "ec2:CreateFleet"]},
         {"Sid": "AllowScopedEC2LaunchTemplateAccessActions",
          "Effect": "Allow",
          "Resource": f"arn:{p}:ec2:{r}:*:launch-template/*",
          "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
          "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{c}": "owned"},
                        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
         {"Sid": "AllowScopedEC2InstanceActionsWithTags",
          "Effect": "Allow",
          "Resource": [f"arn:{p}:ec2:{r}:*:fleet/*",
                       f"arn:{p}:ec2:{r}:*:instance/*",
                       f"arn:{p}:ec2:{r}:*:volume/*",
                       f"arn:{p}:ec2:{r}:*:network-interface/*",
                       f"arn:{p}:ec2:{r}:*:launch-template/*",
                       f"arn:{p}:ec2:{r}:*:spot-instances-request/*"],
          "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
          "Condition": {"StringEquals": {f"aws:RequestTag/kubernetes.io/cluster/{c}": "owned",
                                         "aws:RequestTag/eks:eks-cluster-name": f"{c}"},
                        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
         {"Sid": "AllowScopedResourceCreationTagging",
          "Effect": "Allow",
          "Resource": [f"arn:{p}:ec2:{r}:*:fleet/*",
                       f"arn:{p}:ec2:{r}:*:instance/*",
                       f"arn:{p}:ec2:{r}:*:volume/*",
                       f"arn:{p}:ec2:{r}:*:network-interface/*",
                       f"arn:{p}:ec2:{r}:*:launch-template/*",
                       f"arn:{p}:ec2:{r}:*:spot-instances-request/*"],
          "Action": "ec2:CreateTags",
          "Condition": {"StringEquals": {f"aws:RequestTag/kubernetes.io/cluster/{c}": "owned",
                                         "aws:RequestTag/eks:eks-cluster-name": f"{c}",
                                         "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
         {"Sid": "AllowScopedResourceTagging",
          "Effect": "Allow",
          "Resource": f"arn:{p}:ec2:{r}:*:instance/*",
          "Action": "ec2:CreateTags",
          "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{c}": "owned"},
                        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                        "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": f"{c}"},
                        "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name",
                                                                      "karpenter.sh/nodeclaim",
                                                                      "Name"]}}},
         {"Sid": "AllowScopedDeletion",
          "Effect": "Allow",
          "Resource": [f"arn:{p}:ec2:{r}:*:instance/*", f"arn:{p}:ec2:{r}:*:launch-template/*"],
          "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
          "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{c}": "owned"},
                        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
         {"Sid": "AllowPassingInstanceRole",
          "Effect": "Allow",
          "Resource": f"{node_role_arn}",
          "Action": "iam:PassRole",
          "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
         {"Sid": "AllowScopedInstanceProfileCreationActions",
          "Effect": "Allow",
          "Resource": f"arn:{p}:iam::{a}:instance-profile/*",
          "Action": ["iam:CreateInstanceProfile"],
          "Condition": {"StringEquals": {f"aws:RequestTag/kubernetes.io/cluster/{c}": "owned",
                                         "aws:RequestTag/eks:eks-cluster-name": f"{c}",
                                         "aws:RequestTag/topology.kubernetes.io/region": f"{r}"},
                        "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
         {"Sid": "AllowScopedInstanceProfileTagActions",
          "Effect": "Allow",
          "Resource": f"arn:{p}:iam::{a}:instance-profile/*",
          "Action": ["iam:TagInstanceProfile"],
          "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{c}": "owned",
                                         "aws:ResourceTag/topology.kubernetes.io/region": f"{r}",
                                         f"aws:RequestTag/kubernetes.io/cluster/{c}": "owned",
                                         "aws:RequestTag/eks:eks-cluster-name": f"{c}",
                                         "aws:RequestTag/topology.kubernetes.io/region": f"{r}"},
                        "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                       "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
         {"Sid": "AllowScopedInstanceProfileActions",
          "Effect": "Allow",
          "Resource": f"arn:{p}:iam::{a}:instance-profile/*",
          "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
          "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{c}": "owned",
                                         "aws:ResourceTag/topology.kubernetes.io/region": f"{r}"},
                        "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
         {"Sid": "AllowAPIServerEndpointDiscovery",
          "Effect": "Allow",
          "Resource": f"arn:{p}:eks:{r}:{a}:cluster/{c}",
          "Action": "eks:DescribeCluster"},
         {"Sid": "AllowInterruptionQueueActions",
          "Effect": "Allow",
          "Resource": f"{queue_arn}",
          "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]},
         {"Sid": "AllowRegionalReadActions",
          "Effect": "Allow",
          "Resource": "*",
          "Action": ["ec2:DescribeCapacityReservations",
                     "ec2:DescribeImages",
                     "ec2:DescribeInstances",
                     "ec2:DescribeInstanceStatus",
                     "ec2:DescribeInstanceTypeOfferings",
                     "ec2:DescribeInstanceTypes",
                     "ec2:DescribeLaunchTemplates",
                     "ec2:DescribePlacementGroups",
                     "ec2:DescribeSecurityGroups",
                     "ec2:DescribeSpotPriceHistory",
                     "ec2:DescribeSubnets"],
          "Condition": {"StringEquals": {"aws:RequestedRegion": f"{r}"}}},
         {"Sid": "AllowSSMReadActions",
          "Effect": "Allow",
          "Resource": f"arn:{p}:ssm:{r}::parameter/aws/service/*",
          "Action": "ssm:GetParameter"},
         {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
         {"Sid": "AllowUnscopedInstanceProfileListAction",
          "Effect": "Allow",
          "Resource": "*",
          "Action": "iam:ListInstanceProfiles"},
         {"Sid": "AllowInstanceProfileReadActions",
          "Effect": "Allow",
          "Resource": f"arn:{p}:iam::{a}:instance-profile/*",
          "Action": "iam:GetInstanceProfile"}]
    )}


def queue_policy(queue_arn: str) -> dict[str, Any]:
    """EventBridge and SQS may send; nothing may reach the queue without TLS."""
    return {"Version": "2012-10-17", "Id": "EC2InterruptionPolicy", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
         "Action": "sqs:SendMessage", "Resource": queue_arn},
        {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Principal": "*"},
    ]}


class KarpenterArgs(ArgsModel):
    """Arguments of :class:`Karpenter`."""

    cluster: PulumiInput = None
    """The :class:`~components.foundation.eks_cluster.EksCluster`: ``cluster_name`` defaults from it and its Kubernetes
    provider is used when ``opts`` names none. Default: none (give ``cluster_name``)."""
    cluster_name: PulumiInput = None
    """EKS cluster name. Default: ``cluster.cluster_name`` (required without ``cluster``)."""
    chart_version: str = versions.KARPENTER_CHART.version
    """Version of the ``karpenter`` and ``karpenter-crd`` charts (released together). Default: the pinned version."""
    replicas: int = Field(default=2, ge=1, le=5)
    """Controller replicas (one leader, the rest stand by). Default: 2."""
    cpu: str = "1"
    """CPU request and limit per replica. Default: 1."""
    memory: str = "1Gi"
    """Memory request and limit per replica. Default: 1Gi."""
    node_selector: dict[str, str] = Field(default_factory=lambda: {"genai-scale/node-group": "system"})
    """Where the controller runs: never on nodes it launches. Default: the system node group."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags for the IAM roles, queue and rules. Default: none."""

    def problems(self) -> list[Problem]:
        out = cluster_input_problems(self, {"cluster_name": "cluster_name"}, required=("cluster_name",))
        if not self.node_selector:
            out.append(Problem("node_selector", {}, "a node selector that keeps the controller off the nodes it "
                               "launches (e.g. genai-scale/node-group: system)"))
        return out


def render_values(args: KarpenterArgs, *, cluster_name: str, queue_name: str) -> dict[str, Any]:
    """Helm values of the karpenter chart."""
    res = {"cpu": args.cpu, "memory": args.memory}
    return {
        "settings": {"clusterName": cluster_name, "interruptionQueue": queue_name},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": args.replicas,
        "nodeSelector": {"kubernetes.io/os": "linux", **args.node_selector},
        "controller": {"resources": {"requests": res, "limits": res}},
    }


class Karpenter(pulumi.ComponentResource):
    """Karpenter controller, CRDs, IAM and interruption queue. See the module docstring."""

    release: k8s.helm.v3.Release
    """The karpenter release."""
    crd_release: k8s.helm.v3.Release
    """The karpenter-crd release."""
    node_role: aws.iam.Role
    """Role of the nodes Karpenter launches (EC2NodeClass ``spec.role`` takes its name)."""
    queue: aws.sqs.Queue
    """The interruption queue."""
    queue_name: pulumi.Output[str]
    """Name of the interruption queue (the chart's ``settings.interruptionQueue``)."""
    node_role_name: pulumi.Output[str]
    """Name of the node role (what EC2NodeClass ``spec.role`` takes)."""
    controller_role: aws.iam.Role
    """Pod Identity role of the controller (``kube-system/karpenter``)."""

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}Karpenter", name, None, with_cluster_provider(opts, args.cluster))
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        cluster_name = from_cluster(args.cluster_name, args.cluster, "cluster_name")

        self.queue = aws.sqs.Queue(f"{name}-interruptions", message_retention_seconds=300, sqs_managed_sse_enabled=True,
                                   tags=tags, opts=child)
        aws.sqs.QueuePolicy(f"{name}-interruptions", queue_url=self.queue.url,
                            policy=self.queue.arn.apply(lambda arn: json.dumps(queue_policy(arn))), opts=child)
        for rule, pattern in EVENT_RULES.items():
            r = aws.cloudwatch.EventRule(f"{name}-{rule}", event_pattern=json.dumps(pattern),
                                         description=f"Karpenter interruption handling: {pattern['detail-type'][0]}",
                                         tags=tags, opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{rule}", rule=r.name, arn=self.queue.arn,
                                       target_id="KarpenterInterruptionQueueTarget", opts=child)

        self.node_role = aws.iam.Role(f"{name}-node", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}),
            description=f"Nodes launched by Karpenter ({name})", tags=tags, opts=child)
        for policy in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=self.node_role.name,
                                         policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=child)
        aws.eks.AccessEntry(f"{name}-node", cluster_name=cluster_name, principal_arn=self.node_role.arn,
                            type="EC2_LINUX", tags=tags, opts=child)

        ident = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        policy = pulumi.Output.all(partition.partition, region.region, ident.account_id, cluster_name,
                                   self.node_role.arn, self.queue.arn).apply(lambda a: json.dumps(controller_policy(
                                       partition=a[0], region=a[1], account_id=a[2], cluster_name=a[3],
                                       node_role_arn=a[4], queue_arn=a[5])))
        self.controller_role = pod_identity_role(
            self, f"{name}-controller", cluster_name=cluster_name, namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT, description=f"Karpenter controller ({name})", tags=tags, policy=policy)

        self.crd_release = k8s.helm.v3.Release(
            f"{name}-crd", chart=CRD_CHART, version=args.chart_version, namespace=NAMESPACE, atomic=True,
            cleanup_on_fail=True, timeout=300, opts=child)
        values = pulumi.Output.all(cluster_name, self.queue.name).apply(
            lambda a: render_values(args, cluster_name=a[0], queue_name=a[1]))
        self.release = k8s.helm.v3.Release(
            name, chart=CHART, version=args.chart_version, namespace=NAMESPACE, values=values, skip_crds=True,
            atomic=True, cleanup_on_fail=True, timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crd_release, self.controller_role]))
        self.node_role_name = self.node_role.name
        self.queue_name = self.queue.name
        self.register_outputs({"queue_name": self.queue.name, "node_role_name": self.node_role.name})
