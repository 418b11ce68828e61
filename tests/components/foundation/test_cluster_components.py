"""Network, EksCluster and the Helm add-ons under mocks, with Helm-values snapshots and named assertions."""

import json
from types import SimpleNamespace

import pytest

from components.errors import ArgsError
from components.foundation.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs, iam_policy, render_values
from components.foundation.eks_cluster import EksCluster, EksClusterArgs
from components.foundation.gpu_operator import GpuOperator, GpuOperatorArgs, render_values as gpu_values, time_slicing_config
from components.foundation.network import Network, NetworkArgs
from components.foundation.neuron_device_plugin import (SCHEDULER_NAME, NeuronDevicePlugin, NeuronDevicePluginArgs,
                                                        render_values as neuron_values)
from infra.plan import run_program


def test_network_three_azs_nat_per_az():
    r = run_program(lambda: Network("net", NetworkArgs(az_count=3, nat_gateways="per_az", cluster_name="c",
                                                       interface_endpoints=["ecr.api", "sts"])))
    assert len(r.by_type("aws:ec2/natGateway:NatGateway")) == 3
    private = [s for s in r.by_type("aws:ec2/subnet:Subnet") if "private" in s.name]
    public = [s for s in r.by_type("aws:ec2/subnet:Subnet") if "public" in s.name]
    assert len(private) == len(public) == 3
    assert all(s.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1" for s in private)
    assert all(s.inputs["tags"]["kubernetes.io/role/elb"] == "1" for s in public)
    assert all(s.inputs["tags"]["kubernetes.io/cluster/c"] == "shared" for s in private + public)
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in public)
    assert {s.inputs["availabilityZone"] for s in private} == {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert sorted(s.inputs["cidrBlock"] for s in private) == ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]
    # each private route table routes to its own AZ's NAT
    nat_ids = {n.outputs["id"] for n in r.by_type("aws:ec2/natGateway:NatGateway")}
    routes = [rt.inputs["routes"][0]["natGatewayId"] for rt in r.by_type("aws:ec2/routeTable:RouteTable")
              if "private" in rt.name]
    assert set(routes) == nat_ids
    s3 = r.one("aws:ec2/vpcEndpoint:VpcEndpoint", "net-s3")
    assert s3.inputs["serviceName"] == "com.amazonaws.us-east-1.s3" and s3.inputs["vpcEndpointType"] == "Gateway"
    ecr = r.one("aws:ec2/vpcEndpoint:VpcEndpoint", "net-ecr-api")
    assert ecr.inputs["privateDnsEnabled"] is True and ecr.inputs["serviceName"] == "com.amazonaws.us-east-1.ecr.api"


def test_network_single_nat_and_none():
    r = run_program(lambda: Network("net", NetworkArgs(az_count=2, nat_gateways="single")))
    assert len(r.by_type("aws:ec2/natGateway:NatGateway")) == 1
    r = run_program(lambda: Network("net", NetworkArgs(az_count=2, nat_gateways="none")))
    assert r.by_type("aws:ec2/natGateway:NatGateway") == []


def test_network_adopts_existing_vpc_without_creating_anything():
    args = NetworkArgs(existing={"vpc_id": "vpc-0123456789abcdef0", "private_subnet_ids": ["subnet-1", "subnet-2"]})
    r = run_program(lambda: Network("net", args))
    assert [x.type for x in r.resources] == ["genai-scale:index:Network"]


def test_eks_cluster_secure_defaults():
    r = run_program(lambda: EksCluster("eks", EksClusterArgs(vpc_id="vpc-1", subnet_ids=["s1", "s2"],
                                                            admin_principal_arns=["arn:aws:iam::1:role/admin"])))
    c = r.one("aws:eks/cluster:Cluster")
    assert c.inputs["version"] == "1.35"
    assert c.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert c.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in c.inputs["vpcConfig"]
    assert c.inputs["accessConfig"]["authenticationMode"] == "API"
    assert c.inputs["encryptionConfig"]["resources"] == ["secrets"]
    key = r.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert c.inputs["encryptionConfig"]["provider"]["keyArn"] == key.outputs["arn"]
    assert {"api", "audit", "authenticator"} <= set(c.inputs["enabledClusterLogTypes"])
    assert c.inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in r.by_type("aws:eks/addon:Addon")}
    assert addons == {"vpc-cni": "v1.21.1-eksbuild.3", "coredns": "v1.13.2-eksbuild.1",
                      "kube-proxy": "v1.35.0-eksbuild.2", "eks-pod-identity-agent": "v1.3.10-eksbuild.3",
                      "aws-ebs-csi-driver": "v1.62.0-eksbuild.1", "metrics-server": "v0.8.1-eksbuild.6"}
    metrics = next(a for a in r.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "metrics-server")
    assert metrics.name == "eks-metrics-server"
    assert r.one("aws:eks/nodeGroup:NodeGroup", "eks-system").urn in metrics.dependencies, \
        "an add-on goes ACTIVE only once its pods run, on the system nodes"
    ebs = next(a for a in r.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-ebs-csi-driver")
    ebs_role = r.one("aws:iam/role:Role", "eks-ebs-csi-role")
    assert ebs.inputs["serviceAccountRoleArn"] == ebs_role.outputs["arn"]
    assert any(v == "system:serviceaccount:kube-system:ebs-csi-controller-sa" for v in json.loads(
        ebs_role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"].values())
    sc = r.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
    assert sc.inputs["parameters"] == {"type": "gp3", "encrypted": "true", "fsType": "ext4"}
    assert sc.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    cni = next(a for a in r.by_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni")
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    oidc = r.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    sysng = r.one("aws:eks/nodeGroup:NodeGroup", "eks-system")
    assert sysng.inputs["amiType"] == "AL2023_x86_64_STANDARD" and sysng.inputs["scalingConfig"]["minSize"] == 2
    lt = r.one("aws:ec2/launchTemplate:LaunchTemplate", "eks-system")
    assert lt.inputs["metadataOptions"]["httpTokens"] == "required"
    assoc = r.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert assoc.inputs["policyArn"].endswith("AmazonEKSClusterAdminPolicy")
    log = r.one("aws:cloudwatch/logGroup:LogGroup")
    assert log.inputs["name"] == "/aws/eks/test-eks/cluster" and log.inputs["retentionInDays"] == 90
    prov = r.one("pulumi:providers:kubernetes")
    kube = json.loads(prov.inputs["kubeconfig"])
    assert kube["users"][0]["user"]["exec"]["args"][:2] == ["eks", "get-token"]
    cni_role = r.one("aws:iam/role:Role", "eks-vpc-cni-role")
    trust = json.loads(cni_role.inputs["assumeRolePolicy"])
    cond = trust["Statement"][0]["Condition"]["StringEquals"]
    assert any(v == "system:serviceaccount:kube-system:aws-node" for v in cond.values())


def test_eks_cluster_metrics_server_can_be_left_out():
    r = run_program(lambda: EksCluster("eks", EksClusterArgs(vpc_id="vpc-1", subnet_ids=["s1"], metrics_server=False)))
    assert "metrics-server" not in {a.inputs["addonName"] for a in r.by_type("aws:eks/addon:Addon")}
    # without the add-on, a Kubernetes version with no metrics-server pin is fine
    EksClusterArgs(vpc_id="v", subnet_ids=["s"], metrics_server=False,
                   addon_versions={"vpc-cni": "v1", "coredns": "v1", "kube-proxy": "v1", "eks-pod-identity-agent": "v1",
                                   "aws-ebs-csi-driver": "v1"}, version="1.33")
    with pytest.raises(ArgsError, match="no pinned metrics-server version for Kubernetes 1.33"):
        EksClusterArgs(vpc_id="v", subnet_ids=["s"], version="1.33",
                       addon_versions={"vpc-cni": "v1", "coredns": "v1", "kube-proxy": "v1",
                                       "eks-pod-identity-agent": "v1", "aws-ebs-csi-driver": "v1"})


@pytest.mark.parametrize("kw, fragment", [
    (dict(endpoint_public_access=True), "public_access_cidrs = []: list the CIDRs"),
    (dict(endpoint_public_access=True, public_access_cidrs=["0.0.0.0/0"]),
     "public_access_cidrs[0] = '0.0.0.0/0': the API endpoint must not be open to the whole internet"),
    (dict(log_types=["api"]), "log_types = ['api']: must include audit, authenticator"),
    (dict(log_types=["api", "audit", "authenticator", "kubelet"]), "log_types[3] = 'kubelet': one of"),
    (dict(system_min_size=5, system_max_size=2), "system_min_size = 5: must be <= system_max_size (2)"),
    (dict(version="1.29"), "no pinned vpc-cni version for Kubernetes 1.29"),
])
def test_eks_cluster_validation(kw, fragment):
    with pytest.raises(ArgsError) as exc:
        EksClusterArgs(vpc_id="v", subnet_ids=["s"], **kw)
    assert fragment in str(exc.value)


def test_gpu_operator_values_snapshot(snapshot):
    values = gpu_values(GpuOperatorArgs())
    assert values == snapshot
    assert values["driver"]["enabled"] is False, "EKS NVIDIA AMIs ship the driver"
    assert values["toolkit"]["enabled"] is False, "EKS NVIDIA AMIs ship the container toolkit"
    assert values["dcgmExporter"]["enabled"] is True
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["daemonsets"]["tolerations"]
    assert values["mig"]["strategy"] == "none" and values["migManager"]["enabled"] is False


def test_gpu_operator_time_slicing_and_mig():
    r = run_program(lambda: GpuOperator("gpu-operator", GpuOperatorArgs(time_slicing_replicas=4)))
    rel = r.one("kubernetes:helm.sh/v3:Release")
    assert rel.inputs["chart"] == "gpu-operator" and rel.inputs["version"] == "v26.7.1"
    assert rel.inputs["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nvidia"
    assert rel.inputs["values"]["devicePlugin"]["config"] == {"name": "time-slicing-config", "default": "any"}
    cm = r.one("kubernetes:core/v1:ConfigMap")
    assert "replicas: 4" in cm.inputs["data"]["any"]
    assert "replicas: 2" in time_slicing_config(2)
    mig = gpu_values(GpuOperatorArgs(mig_strategy="mixed"))
    assert mig["mig"]["strategy"] == "mixed" and mig["migManager"]["enabled"] is True
    with pytest.raises(ArgsError, match="time-slicing cannot be combined with MIG strategy 'single'"):
        GpuOperatorArgs(mig_strategy="single", time_slicing_replicas=2)


def test_neuron_values_snapshot(snapshot):
    values = neuron_values(NeuronDevicePluginArgs())
    assert values == snapshot
    assert values["devicePlugin"]["nodeSelector"] == {"aws.amazon.com/neuron.present": "true"}
    assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in \
        values["devicePlugin"]["tolerations"]
    assert values["scheduler"] == {"enabled": False}, "off by default: one device (or a whole node) per pod"


def test_neuron_scheduler_extension_matches_the_cluster_version(snapshot):
    values = neuron_values(NeuronDevicePluginArgs(scheduler_extension=True, kubernetes_version="1.35"))
    assert values == snapshot
    custom = values["scheduler"]["customScheduler"]
    assert custom["image"] == {"repository": "registry.k8s.io/kube-scheduler", "tag": "v1.35.0"}
    assert custom["fullnameOverride"] == SCHEDULER_NAME == "my-scheduler"
    assert values["scheduler"]["nodeSelector"] == custom["nodeSelector"] == {"genai-scale/node-group": "system"}
    old = neuron_values(NeuronDevicePluginArgs(scheduler_extension=True, kubernetes_version="1.34"))
    assert old["scheduler"]["customScheduler"]["image"]["tag"] == "v1.34.1"
    pinned = neuron_values(NeuronDevicePluginArgs(scheduler_extension=True, scheduler_image_tag="v1.35.2"))
    assert pinned["scheduler"]["customScheduler"]["image"]["tag"] == "v1.35.2"
    assert NeuronDevicePluginArgs(cluster=SimpleNamespace(version="1.34")).resolved_kubernetes_version() == "1.34"
    with pytest.raises(ArgsError) as exc:
        NeuronDevicePluginArgs(scheduler_extension=True, kubernetes_version="1.30")
    assert "kubernetes_version = '1.30': a Kubernetes minor with a pinned kube-scheduler tag for the scheduler " \
           "extension: 1.34, 1.35 (or set scheduler_image_tag)" in str(exc.value)
    NeuronDevicePluginArgs(kubernetes_version="1.30")  # no tag needed while the extension is off


def test_neuron_plugin_names_its_scheduler_only_when_on():
    off = run_program(lambda: NeuronDevicePlugin("neuron", NeuronDevicePluginArgs()))
    assert off.one("kubernetes:helm.sh/v3:Release").inputs["values"]["scheduler"] == {"enabled": False}
    plugins = []
    run_program(lambda: plugins.append(NeuronDevicePlugin("neuron", NeuronDevicePluginArgs(scheduler_extension=True))))
    assert plugins[0].scheduler_name == "my-scheduler"


def _ca_args(**kw):
    base = dict(cluster_name="prod-eks", kubernetes_version="1.35", region="us-east-1",
                oidc_provider_arn="arn:aws:iam::1:oidc-provider/x", oidc_issuer="oidc.eks/id/X")
    return ClusterAutoscalerArgs(**{**base, **kw})


def test_cluster_autoscaler_values_snapshot(snapshot):
    values = render_values(_ca_args(), cluster_name="prod-eks", region="us-east-1", role_arn="arn:role")
    assert values == snapshot
    assert values["image"]["tag"] == "v1.35.0", "image minor must match the cluster's"
    assert values["autoDiscovery"]["clusterName"] == "prod-eks"
    assert values["extraArgs"]["balance-similar-node-groups"] is True
    assert values["extraArgs"]["scale-down-unneeded-time"] == "15m"
    assert values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:role"


def test_cluster_autoscaler_iam_is_least_privilege():
    doc = iam_policy("prod-eks")
    describe, scale = doc["Statement"]
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in describe["Action"])
    assert set(scale["Action"]) == {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}
    assert scale["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/prod-eks": "owned"}}
    r = run_program(lambda: ClusterAutoscaler("ca", _ca_args()))
    pol = json.loads(r.one("aws:iam/policy:Policy").inputs["policy"])
    assert pol == doc
    rel = r.one("kubernetes:helm.sh/v3:Release")
    assert rel.inputs["chart"] == "cluster-autoscaler" and rel.inputs["version"] == "9.58.0"
    assert rel.inputs["namespace"] == "kube-system"


def test_cluster_autoscaler_validation():
    with pytest.raises(ArgsError, match="no pinned cluster-autoscaler image for this minor"):
        _ca_args(kubernetes_version="1.20")
    with pytest.raises(ArgsError, match="expander_priorities = {}: required when expander is priority"):
        _ca_args(expander="priority")
    assert render_values(_ca_args(expander="priority", expander_priorities={10: [".*h100.*"]}), cluster_name="c",
                         region="r", role_arn="a")["expanderPriorities"] == {10: [".*h100.*"]}
