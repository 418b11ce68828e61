"""SharedCacheFileSystem: an encrypted Amazon EFS file system that serving pods mount read-write-many, so the vLLM
compile caches (torch.compile / Inductor / Triton, Neuron compiled graphs) outlive the pod that built them.

Why EFS: the caches used to live in each pod's ``cache`` emptyDir, so every new pod (a rollout, an eviction, a
scale-from-zero, a recreated LeaderWorkerSet group) compiled again. A ``hostPath`` breaks the restricted Pod Security
Standard the serving namespace enforces, and a node-pinned local volume breaks scale-to-zero; one shared file system
mounted through the EFS CSI driver keeps the restricted profile and follows the pods to any node. Replicas may share a
directory: vLLM writes its compile artefacts atomically (write to a temporary file, then ``os.replace``), so concurrent
compiles never leave a torn file.

Creates
  - ``aws.efs.FileSystem`` ``<name>``: encrypted at rest (``kms_key_arn``, else the AWS-managed ``aws/elasticfilesystem``
    key), general purpose, elastic throughput, files not read for ``transition_to_ia_days`` move to Infrequent Access
    and back to Standard on their first read; automatic backups off (a cache is rebuilt, not restored).
  - ``aws.efs.BackupPolicy`` ``<name>``: ``DISABLED`` unless ``backups`` (the EFS console turns automatic backups
    on by default; stating the policy keeps the plan explicit whatever created the file system).
  - ``aws.efs.FileSystemPolicy`` ``<name>``: denies every request not made over TLS (``aws:SecureTransport`` false),
    and allows NFS clients to mount and write only through a mount target, never root access
    (:func:`file_system_policy`).
  - ``aws.ec2.SecurityGroup`` ``<name>-mount-targets`` with one ``aws.vpc.SecurityGroupIngressRule`` ``<name>-nfs``:
    NFS (TCP 2049) from the cluster's node security group only; no CIDR ingress, no egress (NFS replies ride the
    tracked connection).
  - ``aws.efs.MountTarget`` ``<name>-<key>`` per entry of ``subnet_ids`` (one private subnet per Availability Zone).
  - ``aws.iam.Role`` ``<name>-csi-role`` (IRSA for ``kube-system/efs-csi-controller-sa``) with the AWS managed policy
    ``service-role/AmazonEFSCSIDriverPolicy`` (create and delete access points). Only the controller is trusted (the
    EKS guide's ``efs-csi-*`` pattern also trusts the node DaemonSet): the nodes mount without IAM authorization,
    which the file system policy allows through mount targets, so they need no AWS permissions. And the ``aws.eks.Addon``
    ``<name>-aws-efs-csi-driver`` (pinned per Kubernetes version in components.versions).
  - ``kubernetes:storage.k8s.io/v1:StorageClass`` ``<name>`` (``storage_class_name``): dynamic provisioning with one
    EFS access point per claim (``provisioningMode: efs-ap``) under ``base_path``, owned by ``posix_uid``/``posix_gid``
    (the vLLM container's user and group) with ``directoryPerms`` 700. The access point enforces that identity on
    every NFS operation, so the pods need no root and no ``fsGroup`` change.

Callers create the PersistentVolumeClaims (:func:`claim_manifest`: ReadWriteMany on this class) in their namespaces.

Defaults: elastic throughput, general purpose, Infrequent Access after 30 days without access (the EFS console's
default, EFS User Guide "Configuring lifecycle policies", checked 2026-12-06) and back to Standard on first access,
backups off, access points under ``/genai-scale`` owned by UID 10001 / GID 0.
Security: encrypted at rest (KMS) and in transit (the EFS CSI driver mounts with TLS by default, "Encryption In
Transit" in the driver's docs/parameters.md, and the file system policy refuses anything else); reachable on NFS only
from the node security group; no root access over NFS; the CSI controller's permissions come from IRSA on its own
service account, not from the node role.
Cost drivers: EFS storage per GB-month (Standard, much less in Infrequent Access) and elastic throughput per GB read
and written; a compile cache is a few GB per model. Mount targets and the add-on cost nothing.
Quotas: 1,000 file systems per Region, one mount target per Availability Zone per file system, 10,000 access points per
file system (one per claim).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import versions
from components.base import TYPE_PREFIX, ArgsModel, PulumiInput, merge_tags
from components.foundation import irsa as _irsa
from components.foundation._names import name_part
from components.foundation.eks_cluster import cluster_input_problems, from_cluster, with_cluster_provider
from components.objects import RUN_AS_GROUP, RUN_AS_USER
from problems import Problem

NFS_PORT = 2049
"""The port EFS mount targets serve NFSv4.1 on."""
PROVISIONER = "efs.csi.aws.com"
"""The EFS CSI driver's provisioner name."""
ADDON = "aws-efs-csi-driver"
"""EKS add-on name of the EFS CSI driver."""
CONTROLLER_SERVICE_ACCOUNT = "efs-csi-controller-sa"
"""The add-on's controller service account (kube-system), the one that creates access points."""
CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
"""AWS managed policy of the EFS CSI controller (EKS user guide, "Use elastic file system storage with Amazon EFS")."""
IA_DAYS = (1, 7, 14, 30, 60, 90, 180, 270, 365)
"""Values EFS accepts for the transition into Infrequent Access (``AFTER_<n>_DAY(S)``, EFS API LifecyclePolicy)."""

CLUSTER_INPUTS = {"vpc_id": "vpc_id", "node_security_group_id": "node_security_group_id",
                  "cluster_name": "cluster_name", "oidc_provider_arn": "oidc_provider_arn",
                  "oidc_issuer": "oidc_issuer", "kubernetes_version": "version"}
"""Args taken from ``cluster=`` when not given."""


class SharedCacheFileSystemArgs(ArgsModel):
    """Arguments of :class:`SharedCacheFileSystem`."""

    subnet_ids: dict[str, PulumiInput] = Field(min_length=1)
    """Private subnets to put a mount target in, keyed by a stable name (the child is ``<name>-<key>``): one per
    Availability Zone the pods run in (EFS allows one mount target per zone)."""
    cluster: PulumiInput = None
    """The EksCluster whose pods mount the file system: VPC, node security group, cluster name, OIDC provider and
    Kubernetes version default from it (explicit values win), and its Kubernetes provider is used when ``opts`` names
    none. Default: none."""
    vpc_id: PulumiInput = None
    """VPC of the mount targets' security group. Default: the cluster's."""
    node_security_group_id: PulumiInput = None
    """Security group of the nodes, the only source admitted on NFS. Default: the cluster's."""
    cluster_name: PulumiInput = None
    """EKS cluster the CSI driver add-on is installed on. Default: the cluster's."""
    oidc_provider_arn: PulumiInput = None
    """OIDC provider of the cluster, trusted by the CSI controller's IRSA role. Default: the cluster's."""
    oidc_issuer: PulumiInput = None
    """OIDC issuer (host/path, no scheme). Default: the cluster's."""
    kubernetes_version: str | None = None
    """Kubernetes minor version, which selects the pinned add-on version. Default: the cluster's."""
    addon_version: str | None = None
    """``aws-efs-csi-driver`` add-on version. Default: the pin for ``kubernetes_version`` (components.versions)."""
    kms_key_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
    """Customer-managed KMS key for encryption at rest, by its key ARN (``...:key/<id>``; an alias ARN is refused:
    EFS stores the resolved key, so an alias would show a change, and a replacement, on every update). Default: the
    AWS-managed key ``aws/elasticfilesystem``."""
    throughput_mode: Literal["elastic", "bursting"] = "elastic"
    """EFS throughput mode. ``elastic``: pay per GB transferred, bursts of compile-cache reads at pod start are served
    at once; ``bursting``: throughput grows with the stored size (a few GB of cache earns little). Default: elastic."""
    transition_to_ia_days: int | None = 30
    """Days without access after which a file moves to Infrequent Access (one of 1, 7, 14, 30, 60, 90, 180, 270,
    365); it moves back to Standard on its first read. None: files stay in Standard. Default: 30 (the EFS console's
    default)."""
    backups: bool = False
    """AWS Backup of the file system. Default: off (a cache is rebuilt by the next compile, not restored)."""
    storage_class_name: str = Field(default="efs-compile-cache", pattern=r"^[a-z0-9]([a-z0-9.\-]{0,61}[a-z0-9])?$")
    """Name of the Kubernetes StorageClass. Default: efs-compile-cache."""
    base_path: str = Field(default="/genai-scale", pattern=r"^/[A-Za-z0-9._\-/]*$")
    """Directory of the file system under which each claim's access point directory is created.
    Default: /genai-scale."""
    posix_uid: int = Field(default=RUN_AS_USER, ge=0)
    """Owner of each access point's directory, enforced on every NFS operation through it. Default: the vLLM
    container's ``runAsUser`` (10001)."""
    posix_gid: int = Field(default=RUN_AS_GROUP, ge=0)
    """Group of each access point's directory. Default: the vLLM container's ``runAsGroup`` (0)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags for every taggable AWS child. Default: none."""

    def problems(self) -> list[Problem]:
        required = [f for f in CLUSTER_INPUTS if not (f == "kubernetes_version" and self.addon_version)]
        out = cluster_input_problems(self, CLUSTER_INPUTS, required=required)
        if self.kms_key_arn and ":alias/" in self.kms_key_arn:
            out.append(Problem("kms_key_arn", self.kms_key_arn, "the key's ARN (arn:aws:kms:<region>:<account>:key/"
                               "<key id>), not an alias: EFS keeps the resolved key, so an alias ARN would replace the "
                               "file system on every update"))
        if self.transition_to_ia_days is not None and self.transition_to_ia_days not in IA_DAYS:
            out.append(Problem("transition_to_ia_days", self.transition_to_ia_days,
                               f"one of {', '.join(map(str, IA_DAYS))} (or none: stay in Standard)"))
        version = self.kubernetes_version or getattr(self.cluster, "version", None)
        if self.addon_version is None and isinstance(version, str) and version not in versions.EFS_CSI_DRIVER_ADDON:
            out.append(Problem("kubernetes_version", version,
                               f"no pinned {ADDON} version for Kubernetes {version}; pinned: "
                               f"{', '.join(versions.EFS_CSI_DRIVER_ADDON)} (or set addon_version)"))
        return out

    def resolved_addon_version(self) -> str:
        """The add-on version to install: ``addon_version``, else the pin for the Kubernetes version."""
        version = self.kubernetes_version or getattr(self.cluster, "version", None)
        return self.addon_version or versions.EFS_CSI_DRIVER_ADDON[version]


# --- pure parts ---

def file_system_policy(file_system_arn: str) -> dict[str, Any]:
    """The file system's resource policy: NFS clients may mount and write through a mount target (no root access:
    the access points set the identity), and every request without TLS is denied."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "MountAndWriteThroughMountTargets", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
             "Resource": file_system_arn,
             "Condition": {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}},
            {"Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
             "Resource": file_system_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }


def lifecycle_policies(transition_to_ia_days: int | None) -> list[dict[str, str]]:
    """``lifecycle_policies`` of the file system: into IA after ``n`` days, back to Standard on first access."""
    if transition_to_ia_days is None:
        return []
    unit = "DAY" if transition_to_ia_days == 1 else "DAYS"
    return [{"transition_to_ia": f"AFTER_{transition_to_ia_days}_{unit}"},
            {"transition_to_primary_storage_class": "AFTER_1_ACCESS"}]


def storage_class_parameters(file_system_id: Any, args: SharedCacheFileSystemArgs) -> dict[str, Any]:
    """StorageClass ``parameters`` (aws-efs-csi-driver docs/parameters.md): one access point per claim under
    ``base_path``, owned by the container's user and group, mode 700. In-transit encryption is the driver's default."""
    return {"provisioningMode": "efs-ap", "fileSystemId": file_system_id, "directoryPerms": "700",
            "uid": str(args.posix_uid), "gid": str(args.posix_gid), "basePath": args.base_path}


def claim_manifest(name: str, namespace: str, storage_class: str, size_gib: int) -> dict[str, Any]:
    """A ReadWriteMany PersistentVolumeClaim on the shared class. EFS is elastic and does not enforce the size; the
    request is nominal (Kubernetes requires one)."""
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "genai-scale",
                                    "app.kubernetes.io/component": "compile-cache"}},
            "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": f"{size_gib}Gi"}}}}


# --- component ---

class SharedCacheFileSystem(pulumi.ComponentResource):
    """An encrypted EFS file system, its mount targets, the EFS CSI driver and a StorageClass. See the module
    docstring."""

    file_system: aws.efs.FileSystem
    """The EFS file system."""
    file_system_id: pulumi.Output[str]
    """Id of the file system (``fs-...``)."""
    security_group_id: pulumi.Output[str]
    """Security group of the mount targets: NFS from the node security group only."""
    mount_targets: dict[str, aws.efs.MountTarget]
    """Mount targets by ``subnet_ids`` key."""
    storage_class: k8s.storage.v1.StorageClass
    """The StorageClass claims ask for (ReadWriteMany, one access point per claim)."""
    storage_class_name: str
    """Name of the StorageClass."""

    def __init__(self, name: str, args: SharedCacheFileSystemArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"{TYPE_PREFIX}SharedCacheFileSystem", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = merge_tags(args.tags, {"genai-scale/component": "shared-cache"})
        cluster = args.cluster
        vpc_id, node_sg, cluster_name, oidc_arn, oidc_issuer = (
            from_cluster(getattr(args, f), cluster, CLUSTER_INPUTS[f])
            for f in ("vpc_id", "node_security_group_id", "cluster_name", "oidc_provider_arn", "oidc_issuer"))

        self.file_system = aws.efs.FileSystem(
            name, encrypted=True, kms_key_id=args.kms_key_arn, performance_mode="generalPurpose",
            throughput_mode=args.throughput_mode, lifecycle_policies=lifecycle_policies(args.transition_to_ia_days),
            tags={**tags, "Name": name}, opts=child)
        self.file_system_id = self.file_system.id
        aws.efs.BackupPolicy(name, file_system_id=self.file_system.id,
                             backup_policy={"status": "ENABLED" if args.backups else "DISABLED"}, opts=child)
        aws.efs.FileSystemPolicy(name, file_system_id=self.file_system.id,
                                 policy=self.file_system.arn.apply(lambda arn: json.dumps(file_system_policy(arn))),
                                 opts=child)

        sg = aws.ec2.SecurityGroup(f"{name}-mount-targets", vpc_id=vpc_id,
                                   description=f"EFS {name} mount targets: NFS from the cluster nodes only",
                                   tags=tags, opts=child)
        self.security_group_id = sg.id
        aws.vpc.SecurityGroupIngressRule(f"{name}-nfs", security_group_id=sg.id, ip_protocol="tcp",
                                         from_port=NFS_PORT, to_port=NFS_PORT, referenced_security_group_id=node_sg,
                                         description="NFS (TLS via efs-utils) from cluster nodes", tags=tags,
                                         opts=child)
        self.mount_targets = {
            key: aws.efs.MountTarget(f"{name}-{name_part(key)}", file_system_id=self.file_system.id, subnet_id=subnet,
                                     security_groups=[sg.id], opts=child)
            for key, subnet in args.subnet_ids.items()}

        role = _irsa.irsa_role(f"{name}-csi", oidc_provider_arn=oidc_arn, oidc_issuer=oidc_issuer,
                               namespace="kube-system", service_account=CONTROLLER_SERVICE_ACCOUNT, tags=tags,
                               parent=self, managed_policy_arns=[CSI_POLICY_ARN])
        addon = aws.eks.Addon(f"{name}-{ADDON}", cluster_name=cluster_name, addon_name=ADDON,
                              addon_version=args.resolved_addon_version(), service_account_role_arn=role.arn,
                              resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                              tags=tags, opts=child)

        k8s_opts = with_cluster_provider(pulumi.ResourceOptions(parent=self, depends_on=[addon]), cluster)
        self.storage_class_name = args.storage_class_name
        self.storage_class = k8s.storage.v1.StorageClass(
            name, metadata={"name": args.storage_class_name, "labels": {"app.kubernetes.io/part-of": "genai-scale"}},
            provisioner=PROVISIONER, parameters=storage_class_parameters(self.file_system.id, args),
            reclaim_policy="Delete", volume_binding_mode="Immediate", opts=k8s_opts)
        self.register_outputs({"file_system_id": self.file_system_id, "security_group_id": self.security_group_id})
