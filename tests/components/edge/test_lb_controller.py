"""LbController: pinned chart, Helm values (snapshot + named assertions), IRSA, and the reference IAM policy."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import versions
from components.errors import ArgsError
from components.edge.lb_controller import LbController, LbControllerArgs, controller_policy, reference_policy, render_values
from infra.plan import run_program

ARGS = dict(cluster_name="prod-eks", oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks/ABC",
            oidc_issuer="oidc.eks.us-east-1.amazonaws.com/id/ABC", vpc_id="vpc-0abc", region="us-east-1")


def plan(**kw):
    def prog():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        LbController("lbc", LbControllerArgs(**{**ARGS, **kw}), opts=pulumi.ResourceOptions(provider=provider))
    return run_program(prog)


def test_values_snapshot_and_named_properties():
    values = render_values(LbControllerArgs(**ARGS, tags={"team": "ml"}), cluster_name="prod-eks", vpc_id="vpc-0abc",
                           role_arn="arn:aws:iam::123456789012:role/lbc-role")
    assert values == {
        "clusterName": "prod-eks", "region": "us-east-1", "vpcId": "vpc-0abc", "replicaCount": 2,
        "image": {"repository": "public.ecr.aws/eks/aws-load-balancer-controller", "tag": "v3.5.0"},
        "serviceAccount": {"create": True, "name": "aws-load-balancer-controller",
                           "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/lbc-role"}},
        "enableServiceMutatorWebhook": False, "enableWaf": False, "enableWafv2": False, "enableShield": False,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "defaultTags": {"team": "ml"},
        "podDisruptionBudget": {"maxUnavailable": 1},
    }
    # named: IMDS-free discovery, IRSA, no takeover of LoadBalancer Services
    assert values["region"] and values["vpcId"]
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("lbc-role")
    assert values["enableServiceMutatorWebhook"] is False


def test_single_replica_has_no_disruption_budget():
    values = render_values(LbControllerArgs(**ARGS, replicas=1), cluster_name="c", vpc_id="v", role_arn="r")
    assert values["replicaCount"] == 1 and "podDisruptionBudget" not in values


def test_release_is_pinned_and_uses_the_cluster_provider():
    result = plan()
    release = result.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "aws-load-balancer-controller"
    assert release.inputs["version"] == versions.LB_CONTROLLER_CHART.version == "3.5.0"
    assert release.inputs["repositoryOpts"]["repo"] == "https://aws.github.io/eks-charts"
    assert release.inputs["namespace"] == "kube-system"
    assert release.inputs["values"]["clusterName"] == "prod-eks"
    assert release.provider.startswith(result.one("pulumi:providers:kubernetes").urn)
    role = result.one("aws:iam/role:Role")
    assert release.inputs["values"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == role.outputs["arn"]


def test_irsa_trust_is_limited_to_the_controller_service_account():
    result = plan()
    trust = json.loads(result.one("aws:iam/role:Role").inputs["assumeRolePolicy"])
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    assert cond["oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"] == \
        "system:serviceaccount:kube-system:aws-load-balancer-controller"
    assert cond["oidc.eks.us-east-1.amazonaws.com/id/ABC:aud"] == "sts.amazonaws.com"


def test_policy_is_the_reference_policy_narrowed_where_it_writes_on_star():
    ref = reference_policy()
    doc = controller_policy("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc")
    assert len(doc["Statement"]) == len(ref["Statement"]) == 16
    changed = {i: (a, b) for i, (a, b) in enumerate(zip(ref["Statement"], doc["Statement"])) if a != b}
    assert sorted(changed) == [2, 3, 4, 9, 15]
    assert changed[3][1]["Condition"] == {"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc"}}
    assert changed[4][1]["Condition"] == {"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}
    for i in (9, 15):
        assert changed[i][1]["Condition"] == {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
        assert changed[i][0]["Action"] == changed[i][1]["Action"]
    dropped = set(changed[2][0]["Action"]) - set(changed[2][1]["Action"])
    assert dropped == {"waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL", "wafv2:AssociateWebACL",
                       "wafv2:DisassociateWebACL", "shield:CreateProtection", "shield:DeleteProtection"}
    actions = [a for s in doc["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert not [a for a in actions if "*" in a]
    assert "elasticloadbalancing:RegisterTargets" in actions


def test_no_write_on_star_is_left_without_a_condition():
    doc = controller_policy("arn:aws:ec2:us-east-1:1:vpc/v")
    reads = ("Describe", "List", "Get")
    for st in doc["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if st["Resource"] == "*" and "Condition" not in st:
            assert all(a.split(":")[1].startswith(reads) for a in actions), actions


def test_recorded_policy_document_carries_the_vpc_condition():
    result = plan()
    doc = json.loads(result.one("aws:iam/policy:Policy").inputs["policy"])
    conds = [s.get("Condition", {}).get("ArnEquals") for s in doc["Statement"]]
    assert {"ec2:Vpc": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0abc"} in conds


def test_replicas_range_is_validated():
    with pytest.raises(ArgsError, match=r"replicas = 0: expected a number >= 1"):
        LbControllerArgs(**ARGS, replicas=0)


# --- cluster= -------------------------------------------------------------------------------------------------------

def _cluster():
    from components.foundation.eks_cluster import EksCluster, EksClusterArgs

    return EksCluster("eks", EksClusterArgs(vpc_id="vpc-0abc", subnet_ids=["subnet-a", "subnet-b"]))


def test_controller_from_the_cluster_equals_explicit_inputs_and_uses_its_provider():
    def with_cluster():
        LbController("lbc", LbControllerArgs(cluster=_cluster(), region="us-east-1"))

    def explicit():
        c = _cluster()
        LbController("lbc", LbControllerArgs(cluster_name=c.cluster_name, oidc_provider_arn=c.oidc_provider_arn,
                                             oidc_issuer=c.oidc_issuer, vpc_id=c.vpc_id, region="us-east-1"),
                     opts=pulumi.ResourceOptions(provider=c.k8s_provider))

    def children(r):
        urn = r.one("genai-scale:index:LbController").urn
        return [(x.type, x.name, x.inputs, x.provider) for x in r.resources if x.parent == urn]

    a, b = run_program(with_cluster), run_program(explicit)
    assert children(a) == children(b)
    release = a.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["values"]["clusterName"] == a.one("aws:eks/cluster:Cluster").outputs["name"]
    assert release.inputs["values"]["vpcId"] == "vpc-0abc"
    assert release.provider.startswith(a.one("pulumi:providers:kubernetes", "eks-k8s").urn)
    trust = json.loads(a.one("aws:iam/role:Role", "lbc-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"]["Federated"] == a.one(
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider").outputs["arn"]


def test_explicit_inputs_win_over_the_cluster():
    r = run_program(lambda: LbController("lbc", LbControllerArgs(cluster=_cluster(), region="us-east-1",
                                                                 cluster_name="other", vpc_id="vpc-other")))
    values = r.one("kubernetes:helm.sh/v3:Release").inputs["values"]
    assert (values["clusterName"], values["vpcId"]) == ("other", "vpc-other")


def test_missing_cluster_inputs_name_both_ways():
    with pytest.raises(ArgsError) as exc:
        LbControllerArgs(region="us-east-1", vpc_id="vpc-0abc")
    text = str(exc.value)
    for field in ("cluster_name", "oidc_provider_arn", "oidc_issuer"):
        assert f"{field}: required (or pass cluster=EksCluster)" in text
    assert "vpc_id" not in text
