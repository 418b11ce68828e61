"""Components that join a cluster take ``cluster=<EksCluster>``: the same children as explicit inputs, explicit inputs
win, a clear message when neither is given, and the cluster's Kubernetes provider when ``opts`` names none."""

from __future__ import annotations

import pulumi
import pytest

from components.foundation.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.foundation.eks_cluster import EksCluster, EksClusterArgs, with_cluster_provider
from components.foundation.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from components.serving.keda import Keda, KedaArgs
from components.serving.monitoring import Monitoring, MonitoringArgs
from components import GpuOperator, GpuOperatorArgs, NeuronDevicePlugin, NeuronDevicePluginArgs
from infra.plan import run_program
from tests.kit.plan import errors_of

SUBNETS = ["subnet-0a", "subnet-0b"]
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"


def cluster() -> EksCluster:
    return EksCluster("eks", EksClusterArgs(vpc_id="vpc-0123456789abcdef0", subnet_ids=SUBNETS, version="1.34"))


def children(result, component_type: str) -> list[tuple[str, str, dict]]:
    """(type, name, inputs) of every child of the one component of this type."""
    urn = result.one(component_type).urn
    return [(r.type, r.name, r.inputs) for r in result.resources if r.parent == urn]


def explicit_node_group_wiring(c: EksCluster) -> dict:
    return dict(cluster_name=c.cluster_name, node_role_arn=c.node_role_arn, subnet_ids=c.subnet_ids,
                kubernetes_version=c.version, node_security_group_ids=[c.node_security_group_id], vpc_id=c.vpc_id)


# --- GpuNodeGroup ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(instance_type="g5.2xlarge"),
                                dict(instance_type="p5.48xlarge", efa=True)], ids=["gpu", "efa"])
def test_node_group_from_the_cluster_equals_one_with_explicit_inputs(kw):
    def with_cluster():
        GpuNodeGroup("gpu", GpuNodeGroupArgs(cluster=cluster(), **kw))

    def explicit():
        GpuNodeGroup("gpu", GpuNodeGroupArgs(**explicit_node_group_wiring(cluster()), **kw))

    a, b = run_program(with_cluster), run_program(explicit)
    assert children(a, "genai-scale:index:GpuNodeGroup") == children(b, "genai-scale:index:GpuNodeGroup")
    ng = a.one(NODE_GROUP, "gpu")
    eks = a.one("aws:eks/cluster:Cluster", "eks")
    assert ng.inputs["clusterName"] == eks.outputs["name"]
    assert ng.inputs["nodeRoleArn"] == a.one("aws:iam/role:Role", "eks-node").outputs["arn"]
    assert ng.inputs["subnetIds"] == (SUBNETS[:1] if kw.get("efa") else SUBNETS)
    assert ng.inputs["version"] == "1.34"  # the nodes follow the control plane's version
    owner = [t for t in a.by_type("aws:autoscaling/tag:Tag") if t.name == "gpu-ca-owned"][0]
    assert owner.inputs["tag"]["key"] == f"k8s.io/cluster-autoscaler/{eks.outputs['name']}"
    if kw.get("efa"):
        sg = a.one("aws:ec2/securityGroup:SecurityGroup", "gpu-efa")
        assert sg.inputs["vpcId"] == "vpc-0123456789abcdef0"
        nics = a.one("aws:ec2/launchTemplate:LaunchTemplate", "gpu-lt").inputs["networkInterfaces"]
        assert nics[0]["securityGroups"][0] == eks.outputs["vpcConfig"]["clusterSecurityGroupId"]


def test_explicit_node_group_inputs_win_over_the_cluster():
    r = run_program(lambda: GpuNodeGroup("gpu", GpuNodeGroupArgs(
        cluster=cluster(), instance_type="g5.2xlarge", cluster_name="other", subnet_ids=["subnet-x"],
        kubernetes_version="1.33")))
    ng = r.one(NODE_GROUP, "gpu")
    assert (ng.inputs["clusterName"], ng.inputs["subnetIds"], ng.inputs["version"]) == ("other", ["subnet-x"], "1.33")
    assert ng.inputs["nodeRoleArn"] == r.one("aws:iam/role:Role", "eks-node").outputs["arn"]  # not given: the cluster's


def test_without_cluster_the_node_group_leaves_the_version_to_eks():
    r = run_program(lambda: GpuNodeGroup("gpu", GpuNodeGroupArgs(
        cluster_name="c", node_role_arn="arn:aws:iam::123456789012:role/node", subnet_ids=SUBNETS,
        instance_type="g5.2xlarge")))
    assert "version" not in r.one(NODE_GROUP).inputs


def test_missing_cluster_inputs_name_both_ways():
    text = errors_of(GpuNodeGroupArgs, instance_type="g5.2xlarge")
    for field in ("cluster_name", "node_role_arn", "subnet_ids"):
        assert f"{field}: required (or pass cluster=EksCluster)" in text
    text = errors_of(GpuNodeGroupArgs, instance_type="p5.48xlarge", efa=True, cluster_name="c", node_role_arn="r",
                     subnet_ids=SUBNETS)
    assert "node_security_group_ids: required when efa is on (or pass cluster=EksCluster)" in text
    assert "vpc_id: required when efa is on (or pass cluster=EksCluster)" in text


def test_a_cluster_without_the_attributes_is_named():
    text = errors_of(GpuNodeGroupArgs, instance_type="g5.2xlarge", cluster="eks", node_role_arn="r")
    assert ("cluster = 'eks': an EksCluster (an object with cluster_name, subnet_ids), or give cluster_name, "
            "subnet_ids explicitly") in text
    assert "required (or pass" not in text


def test_eks_cluster_exposes_its_subnets_and_vpc():
    def program():
        c = cluster()
        pulumi.export("subnets", c.subnet_ids)
        pulumi.export("vpc", c.vpc_id)

    assert run_program(program).outputs == {"subnets": SUBNETS, "vpc": "vpc-0123456789abcdef0"}


# --- ClusterAutoscaler ----------------------------------------------------------------------------------------------

def test_cluster_autoscaler_from_the_cluster_equals_explicit_inputs_and_uses_its_provider():
    def with_cluster():
        ClusterAutoscaler("ca", ClusterAutoscalerArgs(cluster=cluster(), region="us-east-1"))

    def explicit():
        c = cluster()
        ClusterAutoscaler("ca", ClusterAutoscalerArgs(
            cluster_name=c.cluster_name, kubernetes_version=c.version, oidc_provider_arn=c.oidc_provider_arn,
            oidc_issuer=c.oidc_issuer, region="us-east-1"), opts=pulumi.ResourceOptions(provider=c.k8s_provider))

    a, b = run_program(with_cluster), run_program(explicit)
    assert children(a, "genai-scale:index:ClusterAutoscaler") == children(b, "genai-scale:index:ClusterAutoscaler")
    release = a.one(RELEASE, "ca")
    assert release.inputs["values"]["image"]["tag"].startswith("v1.34.")  # the cluster's minor picks the image
    assert release.provider.startswith(a.one("pulumi:providers:kubernetes", "eks-k8s").urn)
    assert release.provider == b.one(RELEASE, "ca").provider


def test_cluster_autoscaler_missing_inputs_and_the_clusters_unpinned_version():
    text = errors_of(ClusterAutoscalerArgs, region="us-east-1")
    for field in ("cluster_name", "kubernetes_version", "oidc_provider_arn", "oidc_issuer"):
        assert f"{field}: required (or pass cluster=EksCluster)" in text

    class OldCluster:
        cluster_name, version, oidc_provider_arn, oidc_issuer = "c", "1.20", "arn", "issuer"

    text = errors_of(ClusterAutoscalerArgs, region="us-east-1", cluster=OldCluster())
    assert "kubernetes_version = '1.20': no pinned cluster-autoscaler image for this minor" in text
    ClusterAutoscalerArgs(region="us-east-1", cluster=OldCluster(), kubernetes_version="1.34")  # explicit wins


# --- the Kubernetes provider ----------------------------------------------------------------------------------------

class _Cluster:
    k8s_provider = "cluster-provider"


def test_with_cluster_provider_adds_the_clusters_provider_only_when_opts_name_none():
    assert with_cluster_provider(None, None) is None
    assert with_cluster_provider(None, _Cluster()).provider == "cluster-provider"
    mine = pulumi.ResourceOptions(provider="mine")
    assert with_cluster_provider(mine, _Cluster()) is mine
    keyed = pulumi.ResourceOptions(providers={"kubernetes": "mine"})
    assert with_cluster_provider(keyed, _Cluster()) is keyed
    merged = with_cluster_provider(pulumi.ResourceOptions(protect=True), _Cluster())
    assert (merged.provider, merged.protect) == ("cluster-provider", True)


@pytest.mark.parametrize("make", [lambda c: Keda("keda", KedaArgs(cluster=c)),
                                  lambda c: Monitoring("monitoring", MonitoringArgs(cluster=c)),
                                  lambda c: GpuOperator("gpu-operator", GpuOperatorArgs(cluster=c)),
                                  lambda c: NeuronDevicePlugin("neuron", NeuronDevicePluginArgs(cluster=c))],
                         ids=["keda", "monitoring", "gpu-operator", "neuron"])
def test_kubernetes_components_install_with_the_clusters_provider(make):
    r = run_program(lambda: make(cluster()))
    provider = r.one("pulumi:providers:kubernetes", "eks-k8s").urn
    k8s_children = [x for x in r.resources if x.type.startswith("kubernetes:") and not x.name.startswith("eks-")]
    assert k8s_children and all(x.provider.startswith(provider) for x in k8s_children)


# --- Gateway and VllmService: the OIDC provider of their IRSA roles -------------------------------------------------

def _federated(result, role: str) -> str:
    import json

    return json.loads(result.one("aws:iam/role:Role", role).inputs["assumeRolePolicy"])["Statement"][0]["Principal"][
        "Federated"]


def test_gateway_takes_the_oidc_provider_and_the_kubernetes_provider_from_the_cluster():
    from components.gateway.gateway import Gateway, GatewayArgs, TenantSpec

    base = dict(config={"upstreams": {}, "routes": {}}, tenants={"acme": TenantSpec()}, image="gw:1",
                invoke_policy_arns=["arn:aws:iam::123456789012:policy/invoke"])
    r = run_program(lambda: Gateway("gw", GatewayArgs(**base, cluster=cluster())))
    oidc = r.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "eks-oidc").outputs["arn"]
    assert _federated(r, "gw-irsa-role") == oidc
    provider = r.one("pulumi:providers:kubernetes", "eks-k8s").urn
    assert r.one("kubernetes:apps/v1:Deployment", "gw-deployment").provider.startswith(provider)
    text = errors_of(GatewayArgs, **base)
    assert "its pods get an IRSA role (or pass cluster=EksCluster)" in text


def test_vllm_service_takes_the_oidc_provider_and_the_kubernetes_provider_from_the_cluster():
    from components.serving.vllm.args import AutoscalingSettings, VllmModelSettings, VllmServiceArgs
    from components.serving.vllm.service import VllmService
    from tests.kit.vllm import placement

    base = dict(model=VllmModelSettings(model_id="meta-llama/Llama-3.1-8B-Instruct", weights_uri="s3://models/llama/",
                                        max_model_len=4096, max_num_seqs=16, kv_tokens_per_sequence=1024),
                placement=placement("a10g", "g5.2xlarge"), image="vllm:1", keda=False,
                autoscaling=AutoscalingSettings(min_replicas=1, max_replicas=2))
    r = run_program(lambda: VllmService("llama", VllmServiceArgs(**base, cluster=cluster())))
    oidc = r.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "eks-oidc").outputs["arn"]
    assert _federated(r, "llama-weights-role") == oidc
    provider = r.one("pulumi:providers:kubernetes", "eks-k8s").urn
    assert r.one("kubernetes:apps/v1:Deployment", "llama-deployment").provider.startswith(provider)
    assert "or pass cluster=EksCluster" in errors_of(VllmServiceArgs, **base)


# --- the edge components that sit in the cluster's network ----------------------------------------------------------

_CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_semantic_cache_and_alb_from_the_cluster_equal_explicit_inputs():
    from components import Alb, AlbArgs, SemanticCache, SemanticCacheArgs

    def with_cluster():
        c = cluster()
        SemanticCache("cache", SemanticCacheArgs(cluster=c))
        Alb("alb", AlbArgs(cluster=c, subnet_ids=["subnet-pub-a", "subnet-pub-b"], certificate_arn=_CERT,
                           region="us-east-1"))

    def explicit():
        c = cluster()
        SemanticCache("cache", SemanticCacheArgs(vpc_id=c.vpc_id, subnet_ids=c.subnet_ids,
                                                 node_security_group_id=c.node_security_group_id))
        Alb("alb", AlbArgs(vpc_id=c.vpc_id, node_security_group_id=c.node_security_group_id,
                           subnet_ids=["subnet-pub-a", "subnet-pub-b"], certificate_arn=_CERT, region="us-east-1"))

    a, b = run_program(with_cluster), run_program(explicit)
    for token in ("genai-scale:index:SemanticCache", "genai-scale:index:Alb"):
        assert children(a, token) == children(b, token)


def test_semantic_cache_and_alb_need_the_network_inputs_or_a_cluster():
    from components import AlbArgs, SemanticCacheArgs

    msg = errors_of(SemanticCacheArgs)
    for field in ("vpc_id", "subnet_ids", "node_security_group_id"):
        assert f"{field}: required (or pass cluster=EksCluster)" in msg
    msg = errors_of(AlbArgs, subnet_ids=["subnet-pub-a"], certificate_arn=_CERT, region="us-east-1")
    assert "vpc_id: required (or pass cluster=EksCluster)" in msg
    assert "node_security_group_id: required (or pass cluster=EksCluster)" in msg
