"""SharedCacheFileSystem: an encrypted EFS file system with a TLS-only policy, mount targets guarded by a security group
that admits NFS from the node security group only, the pinned EFS CSI add-on with its IRSA role, and a StorageClass
whose access points carry the vLLM container's identity; the claim it hands to the serving namespace."""

from __future__ import annotations

import json
from types import SimpleNamespace

import kubernetes_validate
import pytest

from components import versions
from components.errors import ArgsError
from components.foundation.shared_cache import (CSI_POLICY_ARN, SharedCacheFileSystem, SharedCacheFileSystemArgs,
                                                claim_manifest, file_system_policy, lifecycle_policies)
from components.objects import RUN_AS_GROUP, RUN_AS_USER
from components.serving.vllm.manifests import pod_base
from infra.plan import run_program
from tests.infra.test_k8s_schema import SCHEMA_VERSION
from tests.kit.vllm import placement

FS = "aws:efs/fileSystem:FileSystem"
MOUNT_TARGET = "aws:efs/mountTarget:MountTarget"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
CLUSTER = SimpleNamespace(version="1.35", vpc_id="vpc-0123456789abcdef0", node_security_group_id="sg-0nodes",
                          cluster_name="genai-scale-eks",
                          oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
                          oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/X", k8s_provider=None)
SUBNETS = {"private-0": "subnet-0a", "private-1": "subnet-0b", "private-2": "subnet-0c"}


def args(**kw) -> SharedCacheFileSystemArgs:
    return SharedCacheFileSystemArgs(**{"cluster": CLUSTER, "subnet_ids": SUBNETS, **kw})


@pytest.fixture(scope="module")
def plan():
    return run_program(lambda: SharedCacheFileSystem("compile-cache", args(tags={"team": "ml"})))


def test_children_and_names(plan):
    names = sorted((r.type, r.name) for r in plan.resources)
    assert names == sorted([
        ("genai-scale:index:SharedCacheFileSystem", "compile-cache"),
        (FS, "compile-cache"), ("aws:efs/backupPolicy:BackupPolicy", "compile-cache"),
        ("aws:efs/fileSystemPolicy:FileSystemPolicy", "compile-cache"),
        ("aws:ec2/securityGroup:SecurityGroup", "compile-cache-mount-targets"),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "compile-cache-nfs"),
        (MOUNT_TARGET, "compile-cache-private-0"), (MOUNT_TARGET, "compile-cache-private-1"),
        (MOUNT_TARGET, "compile-cache-private-2"),
        ("aws:iam/role:Role", "compile-cache-csi-role"),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "compile-cache-csi-managed-amazonefscsidriverpolicy"),
        ("aws:eks/addon:Addon", "compile-cache-aws-efs-csi-driver"),
        (STORAGE_CLASS, "compile-cache")])


def test_file_system_encrypted_elastic_lifecycle_and_no_backups(plan):
    fs = plan.one(FS).inputs
    assert fs["encrypted"] is True and "kmsKeyId" not in fs  # the AWS-managed key
    assert fs["throughputMode"] == "elastic" and fs["performanceMode"] == "generalPurpose"
    assert fs["lifecyclePolicies"] == [{"transitionToIa": "AFTER_30_DAYS"},
                                       {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"}]
    assert fs["tags"] == {"team": "ml", "genai-scale/component": "shared-cache", "Name": "compile-cache"}
    assert plan.one("aws:efs/backupPolicy:BackupPolicy").inputs["backupPolicy"] == {"status": "DISABLED"}


def test_customer_key_backups_and_ia_setting():
    r = run_program(lambda: SharedCacheFileSystem("c", args(
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/abc", backups=True, transition_to_ia_days=1)))
    assert r.one(FS).inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/abc"
    assert r.one(FS).inputs["lifecyclePolicies"][0] == {"transitionToIa": "AFTER_1_DAY"}
    assert r.one("aws:efs/backupPolicy:BackupPolicy").inputs["backupPolicy"] == {"status": "ENABLED"}
    assert lifecycle_policies(None) == []


def test_file_system_policy_requires_tls_and_grants_no_root(plan):
    doc = json.loads(plan.one("aws:efs/fileSystemPolicy:FileSystemPolicy").inputs["policy"])
    arn = plan.one(FS).outputs["arn"]
    assert doc == file_system_policy(arn)
    allow, deny = doc["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == {"AWS": "*"} and deny["Resource"] == arn
    assert allow["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert "elasticfilesystem:ClientRootAccess" not in json.dumps(doc)
    assert allow["Condition"] == {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}


def test_mount_targets_guarded_by_nfs_from_the_node_group_only(plan):
    rule = plan.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 2049, 2049)
    assert rule["referencedSecurityGroupId"] == "sg-0nodes"
    assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule)
    sg = plan.one("aws:ec2/securityGroup:SecurityGroup")
    assert sg.inputs["vpcId"] == CLUSTER.vpc_id and "ingress" not in sg.inputs and "egress" not in sg.inputs
    subnets = {r.name: r.inputs["subnetId"] for r in plan.by_type(MOUNT_TARGET)}
    assert subnets == {f"compile-cache-{k}": v for k, v in SUBNETS.items()}
    assert all(r.inputs["securityGroups"] == [sg.outputs["id"]] for r in plan.by_type(MOUNT_TARGET))


def test_csi_addon_pinned_with_its_irsa_role(plan):
    addon = plan.one("aws:eks/addon:Addon").inputs
    assert addon["addonName"] == "aws-efs-csi-driver" and addon["clusterName"] == "genai-scale-eks"
    assert addon["addonVersion"] == versions.EFS_CSI_DRIVER_ADDON["1.35"] == "v3.3.0-eksbuild.1"
    role = plan.one("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert trust[f"{CLUSTER.oidc_issuer}:sub"] == "system:serviceaccount:kube-system:efs-csi-controller-sa"
    assert addon["serviceAccountRoleArn"] == role.outputs["arn"]
    assert plan.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs["policyArn"] == CSI_POLICY_ARN
    assert CSI_POLICY_ARN == "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"


def test_storage_class_access_points_carry_the_vllm_identity(plan):
    sc = plan.one(STORAGE_CLASS).inputs
    assert sc["provisioner"] == "efs.csi.aws.com" and sc["metadata"]["name"] == "efs-compile-cache"
    assert sc["parameters"] == {"provisioningMode": "efs-ap", "fileSystemId": plan.one(FS).outputs["id"],
                                "directoryPerms": "700", "uid": "10001", "gid": "0", "basePath": "/genai-scale"}
    pod = pod_base({}, service_account="x", grace_seconds=1, placement=placement("a10g", "g5.2xlarge"))
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == \
        (sc["parameters"]["uid"], sc["parameters"]["gid"]) == (str(RUN_AS_USER), str(RUN_AS_GROUP))
    # no mount option turns TLS off (the driver's default is encryptInTransit on)
    assert "mountOptions" not in sc
    kubernetes_validate.validate(json.loads(json.dumps(sc)), SCHEMA_VERSION, strict=True)


def test_claim_is_read_write_many_on_the_class_and_valid():
    claim = claim_manifest("compile-cache", "genai-serving", "efs-compile-cache", 50)
    assert claim["spec"] == {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-compile-cache",
                             "resources": {"requests": {"storage": "50Gi"}}}
    kubernetes_validate.validate(claim, SCHEMA_VERSION, strict=True)


def test_problems_name_the_field_and_value():
    with pytest.raises(ArgsError) as exc:
        args(transition_to_ia_days=45)
    assert ("transition_to_ia_days = 45: one of 1, 7, 14, 30, 60, 90, 180, 270, 365 (or none: stay in Standard)"
            in str(exc.value))
    with pytest.raises(ArgsError) as exc:
        args(kubernetes_version="1.29")
    assert ("kubernetes_version = '1.29': no pinned aws-efs-csi-driver version for Kubernetes 1.29; pinned: 1.34, "
            "1.35 (or set addon_version)") in str(exc.value)
    assert args(kubernetes_version="1.29", addon_version="v3.3.0-eksbuild.1").resolved_addon_version() == \
        "v3.3.0-eksbuild.1"
    with pytest.raises(ArgsError) as exc:
        SharedCacheFileSystemArgs(subnet_ids=SUBNETS)
    assert "vpc_id: required (or pass cluster=EksCluster)" in str(exc.value)
    with pytest.raises(ArgsError) as exc:
        args(subnet_ids={})
    assert "subnet_ids" in str(exc.value)
    with pytest.raises(ArgsError) as exc:
        args(kms_key_arn="my-key")
    assert "kms_key_arn = 'my-key'" in str(exc.value)


def test_an_alias_arn_for_the_key_is_refused_with_the_reason():
    alias = "arn:aws:kms:us-east-1:123456789012:alias/compile-cache"
    with pytest.raises(ArgsError) as exc:
        args(kms_key_arn=alias)
    assert [(p.path, p.value, p.expected) for p in exc.value.problems] == [
        ("kms_key_arn", alias, "the key's ARN (arn:aws:kms:<region>:<account>:key/<key id>), not an alias: EFS keeps "
         "the resolved key, so an alias ARN would replace the file system on every update")]
