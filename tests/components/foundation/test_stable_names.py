"""Children are named after what they hold (tag key, CIDR, policy, principal), never by position, and every renamed
child carries an alias to the positional name it had, so live stacks update in place. Also: ``extra_taints``."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from components.edge.alb import Alb, AlbArgs
from components.foundation.eks_cluster import EksCluster, EksClusterArgs
from components.foundation.gpu_node_group import (GpuNodeGroup, GpuNodeGroupArgs, NodeTaint, autoscaler_tag_suffix,
                                                  node_taints)
from components.foundation.irsa import managed_attachment_names
from components.foundation.network import Network, NetworkArgs
from components.catalog.accelerators import lookup
from infra.plan import run_program
from tests.kit.plan import errors_of

TAG = "aws:autoscaling/tag:Tag"
CA = "k8s.io/cluster-autoscaler"
WIRING = dict(cluster_name="prod-eks", node_role_arn="arn:aws:iam::123456789012:role/node", subnet_ids=["subnet-a"])


def node_group(**kw):
    return run_program(lambda: GpuNodeGroup("gpu", GpuNodeGroupArgs(**{**WIRING, "instance_type": "g5.2xlarge", **kw})))


def tag_names(result) -> dict[str, str]:
    """Tag key -> the name of the Tag resource that writes it."""
    return {t.inputs["tag"]["key"]: t.name for t in result.by_type(TAG)}


# --- autoscaler tags ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, suffix", [
    (f"{CA}/enabled", "enabled"),
    (f"{CA}/node-template/label/genai-scale/node-group", "label-genai-scale-node-group"),
    (f"{CA}/node-template/resources/nvidia.com/gpu", "resources-nvidia.com-gpu"),
    (f"{CA}/node-template/taint/nvidia.com/gpu", "taint-nvidia.com-gpu"),
    (f"{CA}/node-template/autoscaling-options/scaledownunneededtime", "autoscaling-options-scaledownunneededtime"),
])
def test_autoscaler_tag_names_come_from_the_key(key, suffix):
    assert autoscaler_tag_suffix(key) == suffix


def test_every_autoscaler_tag_is_named_after_its_key():
    names = tag_names(node_group())
    assert names[f"{CA}/prod-eks"] == "gpu-ca-owned"
    assert names[f"{CA}/enabled"] == "gpu-ca-enabled"
    assert names[f"{CA}/node-template/resources/nvidia.com/gpu"] == "gpu-ca-resources-nvidia.com-gpu"
    assert names[f"{CA}/node-template/label/k8s.amazonaws.com/accelerator"] == \
        "gpu-ca-label-k8s.amazonaws.com-accelerator"
    assert all(n == f"gpu-ca-{autoscaler_tag_suffix(k)}" for k, n in names.items() if k != f"{CA}/prod-eks")


def test_adding_a_label_or_taint_renames_no_existing_tag_resource():
    before = tag_names(node_group())
    after = tag_names(node_group(extra_labels={"aaa/first": "x"}, extra_taints=[{"key": "aaa", "value": "y"}],
                                 scale_down_unneeded_time="10m"))
    assert {k: after[k] for k in before} == before  # every old tag keeps its resource name
    assert len(after) == len(before) + 3


def test_each_tag_is_aliased_to_its_old_positional_name():
    r = node_group(extra_labels={"team": "ml"})
    tags = r.by_type(TAG)
    owner = f"{CA}/prod-eks"
    # the order the tags were created in before: the owner tag, then the others sorted by key
    order = [owner] + sorted(t.inputs["tag"]["key"] for t in tags if t.inputs["tag"]["key"] != owner)
    for t in tags:
        assert t.alias_names() == [f"gpu-ca-{order.index(t.inputs['tag']['key'])}"], t.name


def test_label_keys_that_would_share_a_tag_name_are_rejected():
    text = errors_of(GpuNodeGroupArgs, **WIRING, instance_type="g5.2xlarge",
                     extra_labels={"example.com/a-b": "1", "example.com-a/b": "2"})
    assert ("extra_labels.example.com/a-b = 'example.com/a-b': a key whose autoscaler tag resource name "
            "(<group>-ca-label-example.com-a-b) differs from that of label/example.com-a/b") in text
    assert "extra_labels.example.com-a/b" in text


# --- extra taints ---------------------------------------------------------------------------------------------------

def test_extra_taints_reach_the_node_group_the_output_and_the_autoscaler_tags():
    holder = {}

    def program():
        holder["g"] = GpuNodeGroup("gpu", GpuNodeGroupArgs(**WIRING, instance_type="g5.2xlarge", extra_taints=[
            NodeTaint(key="example.com/dedicated", value="llm", effect="NoExecute"), {"key": "spot"}]))

    r = run_program(program)
    assert r.one("aws:eks/nodeGroup:NodeGroup").inputs["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
        {"key": "example.com/dedicated", "value": "llm", "effect": "NO_EXECUTE"},
        {"key": "spot", "value": "", "effect": "NO_SCHEDULE"}]
    assert holder["g"].taints == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
                                  {"key": "example.com/dedicated", "value": "llm", "effect": "NoExecute"},
                                  {"key": "spot", "value": "", "effect": "NoSchedule"}]
    by_key = {t.inputs["tag"]["key"]: (t.name, t.inputs["tag"]["value"]) for t in r.by_type(TAG)}
    assert by_key[f"{CA}/node-template/taint/example.com/dedicated"] == ("gpu-ca-taint-example.com-dedicated",
                                                                          "llm:NoExecute")
    assert by_key[f"{CA}/node-template/taint/spot"] == ("gpu-ca-taint-spot", ":NoSchedule")
    assert node_taints(lookup("g5.2xlarge"), [NodeTaint(key="spot")])[1] == {"key": "spot", "value": "",
                                                                             "effect": "NoSchedule"}


@pytest.mark.parametrize("taints, message", [
    ([{"key": "a", "effect": "NoRun"}], "extra_taints[0].effect = 'NoRun': expected one of"),
    ([{"key": "Bad Key"}], "extra_taints[0].key = 'Bad Key': a taint key: an optional DNS-subdomain prefix and '/', "
                           "then letters, digits, '-', '_', '.' starting and ending alphanumeric; at most 63 "
                           "characters (EKS), e.g. example.com/dedicated"),
    ([{"key": "example.com/" + "x" * 52}], "extra_taints[0].key = 'example.com/xxx"),
    ([{"key": "a", "value": "-x"}], "extra_taints[0].value = '-x': empty, or up to 63 letters, digits, '-', '_', '.' "
                                    "starting and ending alphanumeric"),
    ([{"key": "nvidia.com/gpu", "value": "x"}], "extra_taints[0].key = 'nvidia.com/gpu': another key: the node group "
                                                "already carries the accelerator's taint nvidia.com/gpu=true:NoSchedule"),
    ([{"key": "a"}, {"key": "a", "effect": "NoExecute"}],
     "extra_taints[1].key = 'a': one taint per key (extra_taints[0] has it already; the autoscaler's node-template "
     "tag holds one taint per key)"),
])
def test_extra_taint_validation_messages(taints, message):
    assert message in errors_of(GpuNodeGroupArgs, **WIRING, instance_type="g5.2xlarge", extra_taints=taints)


def test_neuron_groups_reject_their_own_taint_key():
    text = errors_of(GpuNodeGroupArgs, **WIRING, instance_type="inf2.xlarge",
                     extra_taints=[{"key": "aws.amazon.com/neuron"}])
    assert "already carries the accelerator's taint aws.amazon.com/neuron=true:NoSchedule" in text


# --- network --------------------------------------------------------------------------------------------------------

def test_network_children_are_named_by_role_and_cidr_and_aliased_to_their_az_position():
    r = run_program(lambda: Network("net", NetworkArgs(az_count=2, nat_gateways="per_az")))
    expected = {
        "aws:ec2/subnet:Subnet": {"net-private-10.0.0.0-19": "net-private-0", "net-private-10.0.32.0-19": "net-private-1",
                                  "net-public-10.0.224.0-22": "net-public-0", "net-public-10.0.228.0-22": "net-public-1"},
        "aws:ec2/routeTableAssociation:RouteTableAssociation": {
            "net-private-10.0.0.0-19": "net-private-0", "net-private-10.0.32.0-19": "net-private-1",
            "net-public-10.0.224.0-22": "net-public-0", "net-public-10.0.228.0-22": "net-public-1"},
        "aws:ec2/routeTable:RouteTable": {"net-private-10.0.0.0-19": "net-private-0",
                                          "net-private-10.0.32.0-19": "net-private-1", "net-public": None},
        "aws:ec2/natGateway:NatGateway": {"net-nat-10.0.224.0-22": "net-nat-0", "net-nat-10.0.228.0-22": "net-nat-1"},
        "aws:ec2/eip:Eip": {"net-nat-10.0.224.0-22": "net-nat-0", "net-nat-10.0.228.0-22": "net-nat-1"},
    }
    for type_, names in expected.items():
        got = {x.name: (x.alias_names() or [None])[0] for x in r.by_type(type_)}
        assert got == names, type_
    for sn in r.by_type("aws:ec2/subnet:Subnet"):  # the Name tag keeps the positional form (no in-place change)
        assert sn.inputs["tags"]["Name"] == sn.alias_names()[0]
    nat = r.one("aws:ec2/natGateway:NatGateway", "net-nat-10.0.228.0-22")
    assert nat.inputs["subnetId"] == r.one("aws:ec2/subnet:Subnet", "net-public-10.0.228.0-22").outputs["id"]


def test_a_third_az_adds_children_without_renaming_the_others():
    names = [{(x.type, x.name) for x in run_program(lambda n=n: Network("net", NetworkArgs(az_count=n))).resources}
             for n in (2, 3)]
    assert names[0] < names[1]


def test_a_renamed_child_keeps_the_identity_of_its_old_name():
    """Under the engine an aliased child is the resource it was; the offline plan gives it the old name's id."""
    new = run_program(lambda: Network("net", NetworkArgs(az_count=1, nat_gateways="none")))
    old = run_program(lambda: aws.ec2.Subnet("net-private-0", vpc_id="v", cidr_block="10.0.0.0/19"))
    assert new.one("aws:ec2/subnet:Subnet", "net-private-10.0.0.0-19").id == old.one("aws:ec2/subnet:Subnet").id
    subnet = new.to_json()["resources"]
    assert [r["aliases"] for r in subnet if r["name"] == "net-private-10.0.0.0-19" and "Subnet" in r["type"]] == \
        [[{"name": "net-private-0"}]]
    assert all("aliases" not in r for r in subnet if r["name"] in ("net", "net-igw"))


# --- IRSA, access entries, ALB rules --------------------------------------------------------------------------------

def test_managed_policy_attachments_are_named_after_the_policy():
    arns = ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy", "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    assert managed_attachment_names("r", arns) == [
        ("r-managed-amazoneks_cni_policy", "r-managed-0", arns[0]),
        ("r-managed-amazonebscsidriverpolicy", "r-managed-1", arns[1])]
    out = pulumi.Output.from_input("arn:aws:iam::1:policy/x")
    assert managed_attachment_names("r", {"bedrock": out})[0][:2] == ("r-managed-bedrock", "r-managed-0")
    assert managed_attachment_names("r", [out])[0][:2] == ("r-managed-0", "r-managed-0")  # no key until deploy
    with pytest.raises(ValueError, match="would share attachment names: r-managed-x \\(entries 0, 1\\)"):
        managed_attachment_names("r", ["arn:aws:iam::1:policy/X", "arn:aws:iam::2:policy/x"])


def test_eks_cluster_children_named_by_policy_and_principal_carry_their_old_names():
    admins = ["arn:aws:iam::111122223333:role/ops/Admin", "arn:aws:iam::111122223333:user/alice"]
    r = run_program(lambda: EksCluster("eks", EksClusterArgs(vpc_id="v", subnet_ids=["s"], admin_principal_arns=admins)))
    att = {x.name: x.alias_names() for x in r.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
           if "managed" in x.name}
    assert att == {"eks-vpc-cni-managed-amazoneks_cni_policy": ["eks-vpc-cni-managed-0"],
                   "eks-ebs-csi-managed-amazonebscsidriverpolicy": ["eks-ebs-csi-managed-0"]}
    for type_ in ("aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        got = {x.name: (x.alias_names(), x.inputs["principalArn"]) for x in r.by_type(type_)}
        assert got == {"eks-admin-role-ops-Admin": (["eks-admin-0"], admins[0]),
                       "eks-admin-user-alice": (["eks-admin-1"], admins[1])}


@pytest.mark.parametrize("admins, message", [
    (["arn:aws:sts::111122223333:assumed-role/Admin/me"], "admin_principal_arns[0] = 'arn:aws:sts::111122223333:"
                                                          "assumed-role/Admin/me': an IAM role or user ARN"),
    (["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/a"],
     "admin_principal_arns[1] = 'arn:aws:iam::1:role/a': listed already as admin_principal_arns[0]"),
    (["arn:aws:iam::1:role/a", "arn:aws:iam::2:role/a"],
     "admin_principal_arns[1] = 'arn:aws:iam::2:role/a': a principal whose access entry name (<cluster>-admin-role-a) differs "
     "from that of admin_principal_arns[0]"),
])
def test_admin_principal_validation(admins, message):
    assert message in errors_of(EksClusterArgs, vpc_id="v", subnet_ids=["s"], admin_principal_arns=admins)


ALB = dict(vpc_id="vpc-1", subnet_ids=["s1", "s2"], node_security_group_id="sg-1", region="us-east-1",
           certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555")


def test_alb_ingress_rules_are_named_by_cidr_and_aliased():
    r = run_program(lambda: Alb("alb", AlbArgs(**ALB, ingress_cidrs=["203.0.113.0/24", "198.51.100.0/24"])))
    rules = {x.name: x.alias_names() for x in r.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if x.name.startswith("alb-in-")}
    assert rules == {"alb-in-https-203.0.113.0-24": ["alb-in-https-0"],
                     "alb-in-http-redirect-203.0.113.0-24": ["alb-in-http-redirect-0"],
                     "alb-in-https-198.51.100.0-24": ["alb-in-https-1"],
                     "alb-in-http-redirect-198.51.100.0-24": ["alb-in-http-redirect-1"]}
    text = errors_of(AlbArgs, **ALB, ingress_cidrs=["203.0.113.0/24", "203.0.113.0/24"])
    assert "ingress_cidrs[1] = '203.0.113.0/24': listed already as ingress_cidrs[0]" in text
