"""EksCluster: an EKS control plane with secure defaults, a CPU system node group and a Kubernetes provider.

Creates
  - ``aws.kms.Key`` ``<name>-secrets`` (rotation on) for envelope encryption of Kubernetes secrets.
  - ``aws.iam.Role`` ``<name>-cluster`` (AmazonEKSClusterPolicy) and ``<name>-node`` (worker, ECR pull-only).
  - ``aws.cloudwatch.LogGroup`` ``<name>-logs`` (``/aws/eks/<cluster>/cluster``, retention set) before the cluster,
    so control-plane logs never land in a never-expiring group.
  - ``aws.eks.Cluster`` ``<name>``: API authentication mode with access entries, private endpoint on, public endpoint
    off (or limited to listed CIDRs), api/audit/authenticator/controllerManager/scheduler logs, STANDARD support
    (no extended-support charges), self-managed add-ons not bootstrapped (the managed ones below replace them).
  - ``aws.iam.OpenIdConnectProvider`` ``<name>-oidc`` for IRSA; an IRSA role for the VPC CNI.
  - ``aws.eks.Addon`` ``<name>-<addon>`` for vpc-cni (NetworkPolicy enforcement on), kube-proxy,
    eks-pod-identity-agent, coredns and aws-ebs-csi-driver (IRSA role), pinned; a default ``gp3`` StorageClass
    (encrypted) for persistent volumes such as Prometheus's.
  - ``aws.eks.Addon`` ``<name>-metrics-server`` (the EKS community add-on, pinned; ``metrics_server=False`` leaves it
    out): the resource metrics API (``metrics.k8s.io``) that CPU/memory HorizontalPodAutoscalers (the gateway's) and
    ``kubectl top`` read. EKS does not install it; without it such an HPA never gets a metric and stays at its minimum.
  - ``aws.ec2.LaunchTemplate`` + ``aws.eks.NodeGroup`` ``<name>-system``: CPU nodes for operators and gateways.
  - ``aws.eks.AccessEntry`` + ``aws.eks.AccessPolicyAssociation`` ``<name>-admin-<principal>`` per admin principal,
    named after the principal (``arn:aws:iam::111122223333:role/ops/Admin`` -> ``<name>-admin-role-ops-Admin``; they
    were ``<name>-admin-<i>`` by position before and carry that name as an alias).
  - ``pulumi_kubernetes.Provider`` ``<name>-k8s`` from the cluster's outputs (token via ``aws eks get-token``).

Components that join the cluster (GpuNodeGroup, ClusterAutoscaler, LbController, VllmService, Gateway, Keda,
Monitoring) take ``cluster=<EksCluster>`` and read its name, node role, subnets, VPC, version and OIDC provider from it
(:func:`from_cluster`; explicit inputs win), and its Kubernetes provider when their ``opts`` name none
(:func:`with_cluster_provider`).

Defaults: Kubernetes 1.35, private endpoint only, 2-4 m7i.large system nodes, 90-day log retention, metrics-server on.
Security: secrets encrypted with a rotating KMS key, no public endpoint unless CIDRs are listed (never 0.0.0.0/0 by
default), IMDSv2-only system nodes with encrypted volumes, IRSA for add-ons instead of node-role permissions.
Cost drivers: cluster hour ($0.10/h standard support), system nodes, CloudWatch log ingestion, KMS key ($1/month).
Quotas: EKS clusters per Region (100), managed node groups per cluster (30), nodes per node group (450).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions

from components.foundation import irsa as _irsa
from components.foundation._names import duplicates, name_part, renamed
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput
from components.naming import aws_name, current_stack
from problems import Problem, missing

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GP3_STORAGE_CLASS = "gp3"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")
METRICS_SERVER_ADDON = "metrics-server"
"""EKS add-on name of the Kubernetes Metrics Server (a community add-on)."""
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d+:(?P<resource>(role|user)/.+)$")


def admin_child_name(name: str, principal_arn: str) -> str:
    """Logical name of the access entry (and policy association) of one admin principal: the ARN's resource part
    (``role/<path>/<name>`` or ``user/...``), e.g. ``<name>-admin-role-ops-Admin``."""
    m = _PRINCIPAL_ARN.match(principal_arn)
    return f"{name}-admin-{name_part(m['resource'] if m else principal_arn)}"


CLUSTER_REQUIRED = "required (or pass cluster=EksCluster)"
"""What a component says about a cluster input that is neither given nor taken from ``cluster=``."""


def from_cluster(explicit: Any, cluster: Any, attribute: str) -> Any:
    """``explicit`` when given (explicit inputs always win), else ``cluster.<attribute>``; None without either."""
    if explicit is not None or cluster is None:
        return explicit
    return getattr(cluster, attribute, None)


def cluster_input_problems(args: Any, inputs: Mapping[str, str], required: Iterable[str] = ()) -> list[Problem]:
    """Problems of the inputs a component may take from its ``cluster`` field.

    ``inputs`` maps an args field to the :class:`EksCluster` attribute it defaults from. A given cluster must have the
    attributes of every field left unset; without a cluster, each ``required`` field must be given.
    """
    cluster = getattr(args, "cluster", None)
    if cluster is None:
        return [missing(f, CLUSTER_REQUIRED, related=("cluster",)) for f in required if getattr(args, f) is None]
    lacking = [attr for f, attr in inputs.items() if getattr(args, f) is None and not hasattr(cluster, attr)]
    if not lacking:
        return []
    shown = cluster if isinstance(cluster, (str, int, float, bool, list, dict)) else f"<{type(cluster).__name__}>"
    return [Problem("cluster", shown, f"an EksCluster (an object with {', '.join(lacking)}), or give "
                    + ", ".join(f for f, attr in inputs.items() if attr in lacking) + " explicitly")]


def with_cluster_provider(opts: pulumi.ResourceOptions | None, cluster: Any) -> pulumi.ResourceOptions | None:
    """``opts`` plus the cluster's Kubernetes provider, for a Kubernetes component given ``cluster=`` whose ``opts``
    name no provider (a provider in ``opts`` wins)."""
    provider = getattr(cluster, "k8s_provider", None)
    if provider is None or (opts is not None and (opts.provider is not None or opts.providers)):
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider))


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with ``aws eks get-token`` (no long-lived credentials)."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "eks",
        "clusters": [{"name": "eks", "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
        "users": [{"name": "eks", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            "interactiveMode": "Never"}}}],
    })


class EksClusterArgs(ArgsModel):
    """Arguments of :class:`EksCluster`."""

    vpc_id: PulumiInput
    """VPC of the cluster."""
    cluster_name: str | None = Field(default=None, pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
    """Physical EKS cluster name. Default: ``<stack>-<component name>``, unique per stack (made a valid EKS name by
    ``components.naming.aws_name`` when the stack name is not one, e.g. longer than 100 characters)."""
    subnet_ids: PulumiInput
    """Private subnets for the control-plane network interfaces and the system node group."""
    version: str = Field(default=versions.KUBERNETES_VERSION, pattern=r"^1\.\d{2}$")
    """Kubernetes minor version. Default: the pinned version (in EKS standard support)."""
    endpoint_public_access: bool = False
    """Expose the API endpoint publicly (limited to ``public_access_cidrs``). Default: private only."""
    public_access_cidrs: list[str] = Field(default_factory=list)
    """CIDRs allowed to reach a public endpoint. Required when the public endpoint is on. Default: none."""
    log_types: list[str] = Field(default_factory=lambda: list(LOG_TYPES))
    """Control-plane log types sent to CloudWatch. Default: all five."""
    log_retention_days: int = Field(default=90, ge=1, le=3653)
    """Retention of the control-plane log group. Default: 90 days."""
    admin_principal_arns: list[str] = Field(default_factory=list)
    """IAM roles/users granted cluster-admin through access entries. Default: only the creator."""
    system_instance_type: str = "m7i.large"
    """Instance type of the CPU system node group. Default: m7i.large."""
    system_min_size: int = Field(default=2, ge=1, le=100)
    """Fewest system nodes. Default: 2 (operators survive one node loss)."""
    system_max_size: int = Field(default=4, ge=1, le=100)
    """Most system nodes. Default: 4."""
    system_disk_size_gib: int = Field(default=50, ge=20, le=1000)
    """System node volume size in GiB. Default: 50."""
    metrics_server: bool = True
    """Install the metrics-server EKS add-on, the source of the CPU and memory metrics HorizontalPodAutoscalers scale
    on (``metrics.k8s.io``). Off: no resource metrics in the cluster (bring your own metrics-server). Default: on."""
    addon_versions: dict[str, str] = Field(default_factory=dict)
    """Override pinned EKS add-on versions by add-on name. Default: the pinned versions for ``version``."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags for every taggable child. Default: none."""

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        if self.endpoint_public_access and not self.public_access_cidrs:
            out.append(Problem("public_access_cidrs", [], "list the CIDRs allowed to reach the public endpoint "
                               "(the endpoint is never opened to the world by default)"))
        for i, cidr in enumerate(self.public_access_cidrs):
            if cidr in ("0.0.0.0/0", "::/0"):
                out.append(Problem(f"public_access_cidrs[{i}]", cidr,
                                   "the API endpoint must not be open to the whole internet; list your CIDRs"))
        for i, arn in enumerate(self.admin_principal_arns):
            if not _PRINCIPAL_ARN.match(arn):
                out.append(Problem(f"admin_principal_arns[{i}]", arn,
                                   "an IAM role or user ARN, e.g. arn:aws:iam::111122223333:role/Admin"))
        arns = self.admin_principal_arns
        for n, idx in duplicates([admin_child_name("", a) for a in arns]).items():
            first = idx[0]
            for i in idx[1:]:
                out.append(Problem(f"admin_principal_arns[{i}]", arns[i],
                                   f"listed already as admin_principal_arns[{first}] (one access entry per principal)"
                                   if arns[i] == arns[first] else
                                   f"a principal whose access entry name (<cluster>{n}) differs from that of "
                                   f"admin_principal_arns[{first}] ({arns[first]}); entries are named after the "
                                   "ARN's role/user part", related=(f"admin_principal_arns[{first}]",)))
        for i, lt in enumerate(self.log_types):
            if lt not in LOG_TYPES:
                out.append(Problem(f"log_types[{i}]", lt, f"one of {', '.join(LOG_TYPES)}"))
        missing_logs = [t for t in REQUIRED_LOG_TYPES if t not in self.log_types]
        if missing_logs:
            out.append(Problem("log_types", self.log_types, f"must include {', '.join(missing_logs)}"))
        if self.system_min_size > self.system_max_size:
            out.append(Problem("system_min_size", self.system_min_size,
                               f"must be <= system_max_size ({self.system_max_size})"))
        for addon in versions.EKS_ADDONS:
            if addon == METRICS_SERVER_ADDON and not self.metrics_server:
                continue
            if addon not in self.addon_versions and self.version not in versions.EKS_ADDONS[addon]:
                out.append(Problem("version", self.version,
                                   f"no pinned {addon} version for Kubernetes {self.version}; pinned: "
                                   f"{', '.join(versions.EKS_ADDONS[addon])} (or set addon_versions)"))
                break
        return out


def _managed(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


def _service_role(name: str, service: str, policies: list[str], tags: dict, parent) -> aws.iam.Role:
    role = aws.iam.Role(name, assume_role_policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": ["sts:AssumeRole", "sts:TagSession"]
                       if service == "eks.amazonaws.com" else "sts:AssumeRole"}]}),
        tags=tags, opts=pulumi.ResourceOptions(parent=parent))
    for p in policies:
        aws.iam.RolePolicyAttachment(f"{name}-{p.lower()}", role=role.name, policy_arn=_managed(p),
                                     opts=pulumi.ResourceOptions(parent=parent))
    return role


class EksCluster(pulumi.ComponentResource):
    """EKS control plane, system nodes, add-ons and a Kubernetes provider. See the module docstring."""

    cluster: aws.eks.Cluster
    """The EKS control plane."""
    cluster_name: pulumi.Output[str]
    """Name of the EKS cluster."""
    endpoint: pulumi.Output[str]
    """API server endpoint."""
    certificate_authority: pulumi.Output[str]
    """Base64 CA data of the API server."""
    oidc_provider_arn: pulumi.Output[str]
    """ARN of the IAM OIDC provider (for IRSA)."""
    oidc_issuer: pulumi.Output[str]
    """OIDC issuer host and path (no ``https://``), as IRSA trust conditions use it."""
    cluster_security_group_id: pulumi.Output[str]
    """Security group EKS created for the control plane and managed nodes."""
    node_security_group_id: pulumi.Output[str]
    """Security group on every managed node (the cluster security group)."""
    node_role_arn: pulumi.Output[str]
    """IAM role of the nodes; pass it to GpuNodeGroup."""
    secrets_kms_key_arn: pulumi.Output[str]
    """KMS key that encrypts Kubernetes secrets."""
    k8s_provider: k8s.Provider
    """Kubernetes provider for this cluster; pass it to every Kubernetes child."""
    storage_class: k8s.storage.v1.StorageClass
    """Default StorageClass ``gp3`` (encrypted EBS gp3 through the EBS CSI driver)."""
    system_node_group: aws.eks.NodeGroup
    """CPU node group for operators and gateways (label ``genai-scale/node-group=system``)."""
    version: str
    """Kubernetes minor version."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (exec-based, no credentials inside)."""
    subnet_ids: pulumi.Output[list[str]]
    """Private subnets of the control plane and the system nodes (node groups default to them)."""
    vpc_id: pulumi.Output[str]
    """VPC of the cluster."""

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        self.version = args.version
        self.subnet_ids = pulumi.Output.from_input(args.subnet_ids)
        self.vpc_id = pulumi.Output.from_input(args.vpc_id)
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region

        key = aws.kms.Key(f"{name}-secrets", description=f"EKS secrets encryption for {name}",
                          enable_key_rotation=True, deletion_window_in_days=30, tags=tags, opts=child)
        cluster_role = _service_role(f"{name}-cluster", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"], tags, self)
        node_role = _service_role(f"{name}-node", "ec2.amazonaws.com",
                                  ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"], tags, self)
        cluster_name = args.cluster_name or aws_name("eks-cluster", current_stack(), name)
        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/eks/{cluster_name}/cluster",
                                            retention_in_days=args.log_retention_days, tags=tags, opts=child)

        self.cluster = aws.eks.Cluster(
            name,
            name=cluster_name,
            version=args.version,
            role_arn=cluster_role.arn,
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            vpc_config={"subnet_ids": args.subnet_ids, "endpoint_private_access": True,
                        "endpoint_public_access": args.endpoint_public_access,
                        "public_access_cidrs": list(args.public_access_cidrs) if args.endpoint_public_access else None},
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(args.log_types),
            upgrade_policy={"support_type": "STANDARD"},
            bootstrap_self_managed_addons=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        self.cluster_name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.certificate_authority = self.cluster.certificate_authority.apply(lambda ca: ca["data"])
        issuer_url = self.cluster.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"])
        self.oidc_issuer = issuer_url.apply(lambda u: u.replace("https://", ""))
        oidc = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=issuer_url, client_id_lists=["sts.amazonaws.com"],
                                             tags=tags, opts=child)
        self.oidc_provider_arn = oidc.arn
        self.cluster_security_group_id = self.cluster.vpc_config.apply(lambda v: v["cluster_security_group_id"])
        self.node_security_group_id = self.cluster_security_group_id
        self.node_role_arn = node_role.arn
        self.secrets_kms_key_arn = key.arn

        for i, principal in enumerate(args.admin_principal_arns):
            admin = admin_child_name(name, principal)
            entry = aws.eks.AccessEntry(admin, cluster_name=self.cluster.name, principal_arn=principal,
                                        type="STANDARD", tags=tags, opts=renamed(self, f"{name}-admin-{i}", admin))
            aws.eks.AccessPolicyAssociation(
                admin, cluster_name=self.cluster.name, principal_arn=principal,
                policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                access_scope={"type": "cluster"},
                opts=renamed(self, f"{name}-admin-{i}", admin, depends_on=[entry]))

        def addon_version(addon: str) -> str:
            return args.addon_versions.get(addon) or versions.EKS_ADDONS[addon][args.version]

        cni_role = _irsa.irsa_role(
            f"{name}-vpc-cni", oidc_provider_arn=oidc.arn, oidc_issuer=self.oidc_issuer, namespace="kube-system",
            service_account="aws-node", tags=tags, parent=self,
            managed_policy_arns=[_managed("AmazonEKS_CNI_Policy")])
        pre_nodes = [
            aws.eks.Addon(f"{name}-{addon}", cluster_name=self.cluster.name, addon_name=addon,
                          addon_version=addon_version(addon), resolve_conflicts_on_create="OVERWRITE",
                          resolve_conflicts_on_update="OVERWRITE",
                          service_account_role_arn=cni_role.arn if addon == "vpc-cni" else None,
                          # the VPC CNI enforces Kubernetes NetworkPolicies (the serving namespaces use them)
                          configuration_values=json.dumps({"enableNetworkPolicy": "true"})
                          if addon == "vpc-cni" else None,
                          tags=tags, opts=child)
            for addon in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
        ]

        lt = aws.ec2.LaunchTemplate(
            f"{name}-system",
            description=f"genai-scale {name} system nodes",
            update_default_version=True,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {
                "volume_size": args.system_disk_size_gib, "volume_type": "gp3", "encrypted": "true",
                "delete_on_termination": "true"}}],
            tag_specifications=[{"resource_type": "instance", "tags": {**tags, "genai-scale/node-group": "system"}},
                                {"resource_type": "volume", "tags": {**tags, "genai-scale/node-group": "system"}}],
            tags=tags, opts=child)
        self.system_node_group = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=self.cluster.name, node_role_arn=node_role.arn, subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_STANDARD", capacity_type="ON_DEMAND", instance_types=[args.system_instance_type],
            scaling_config={"min_size": args.system_min_size, "max_size": args.system_max_size,
                            "desired_size": args.system_min_size},
            update_config={"max_unavailable": 1},
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            labels={"genai-scale/node-group": "system"},
            node_repair_config={"enabled": True},
            tags={**tags, "genai-scale/node-group": "system"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=pre_nodes, ignore_changes=["scalingConfig.desiredSize"]),
        )
        aws.eks.Addon(f"{name}-coredns", cluster_name=self.cluster.name, addon_name="coredns",
                      addon_version=addon_version("coredns"), resolve_conflicts_on_create="OVERWRITE",
                      resolve_conflicts_on_update="OVERWRITE", tags=tags,
                      opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_node_group]))
        ebs_role = _irsa.irsa_role(
            f"{name}-ebs-csi", oidc_provider_arn=oidc.arn, oidc_issuer=self.oidc_issuer, namespace="kube-system",
            service_account="ebs-csi-controller-sa", tags=tags, parent=self,
            managed_policy_arns=[_managed("service-role/AmazonEBSCSIDriverPolicy")])
        ebs_csi = aws.eks.Addon(f"{name}-aws-ebs-csi-driver", cluster_name=self.cluster.name,
                                addon_name="aws-ebs-csi-driver", addon_version=addon_version("aws-ebs-csi-driver"),
                                service_account_role_arn=ebs_role.arn, resolve_conflicts_on_create="OVERWRITE",
                                resolve_conflicts_on_update="OVERWRITE", tags=tags,
                                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_node_group]))

        if args.metrics_server:
            # a community add-on; its pods run on the system nodes (accelerator nodes are tainted)
            aws.eks.Addon(f"{name}-{METRICS_SERVER_ADDON}", cluster_name=self.cluster.name,
                          addon_name=METRICS_SERVER_ADDON, addon_version=addon_version(METRICS_SERVER_ADDON),
                          resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", tags=tags,
                          opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_node_group]))

        self.kubeconfig = pulumi.Output.all(self.cluster.name, self.endpoint, self.certificate_authority, region).apply(
            lambda a: kubeconfig(a[0], a[1], a[2], a[3]))
        self.k8s_provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig,
                                         enable_server_side_apply=True,
                                         opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system_node_group]))
        # Persistent volumes (Prometheus, ...) get encrypted gp3 by default.
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3", metadata={"name": GP3_STORAGE_CLASS, "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner="ebs.csi.aws.com", parameters={"type": "gp3", "encrypted": "true", "fsType": "ext4"},
            volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True, reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.k8s_provider, depends_on=[ebs_csi]))
        self.register_outputs({"cluster_name": self.cluster_name, "endpoint": self.endpoint,
                               "oidc_provider_arn": self.oidc_provider_arn, "node_role_arn": self.node_role_arn})
