"""Cases built from real component output (``infra.plan.run_program``), including users' own programs.

Where stack-config validation (or component args validation) already rejects a setting a rule forbids, a user who
composes the components in their own program can still produce the resource, for example with a resource
transformation or by building the resource directly. The pack must catch it there too.
"""

import copy

import pulumi
import pulumi_aws as aws
import pytest

from components.foundation.eks_cluster import EksCluster, EksClusterArgs
from components.foundation.gpu_node_group import GpuNodeGroup, GpuNodeGroupArgs
from infra.plan import run_program
from policies.engine import evaluate
from tests.policies.kit import config_for

TAGS = {"team": "ml", "environment": "test", "tier": "scale", "project": "genai-scale"}


def _set(props: dict, path: str, value) -> dict:
    cur = props
    *head, last = path.split(".")
    for p in head:
        cur = cur.setdefault(p, {})
    cur[last] = value
    return props


def transformation(type_, path, value):
    """A legacy resource transformation (runs in-process, so also under the mocks) that overrides one input."""
    def fn(args: pulumi.ResourceTransformationArgs):
        if args.type_ == type_:
            return pulumi.ResourceTransformationResult(_set(dict(args.props), path, value), args.opts)
        return None
    return fn


def node_group(name="a10g", *, opts=None, tags=TAGS, **kw):
    args = dict(cluster_name="prod-eks", node_role_arn="arn:aws:iam::123456789012:role/node",
                subnet_ids=["subnet-a", "subnet-b"], instance_type="g5.xlarge", tags=tags)
    args.update(kw)
    return GpuNodeGroup(name, GpuNodeGroupArgs(**args), opts)


def report_of(fn, tier=None):
    plan = run_program(fn)
    return evaluate(plan.resources, config=config_for(tier)), plan


class TestRealComponents:
    def test_gpu_node_group_passes_every_rule(self):
        report, plan = report_of(lambda: node_group(), tier="scale")
        assert plan.by_type("aws:autoscaling/tag:Tag"), "the component tags its ASG"
        assert report.violations == []

    @pytest.mark.parametrize("instance,efa", [("inf2.xlarge", False), ("p5.48xlarge", False)])
    def test_other_accelerators_pass_the_gpu_rules(self, instance, efa):
        report, _ = report_of(lambda: node_group("g", instance_type=instance, efa=efa, max_size=2), tier="scale")
        gpu_rules = {"nvidia-instance-nvidia-ami", "neuron-instance-neuron-ami", "scale-from-zero-autoscaler-tags",
                     "imdsv2-required", "ebs-encrypted", "on-demand-h100-max-size-cap"}
        assert [v for v in report.violations if v.policy in gpu_rules] == []

    def test_warm_gpu_group_in_prototype_is_caught_from_its_tags(self):
        # no tier in the pack config: the rule reads the `tier` cost-allocation tag of the node group
        report, _ = report_of(lambda: node_group(min_size=1, desired_size=1, tags={**TAGS, "tier": "prototype"}))
        [v] = report.by_policy("accelerator-scale-to-zero-in-prototype")
        assert v.message == "a10g: g5.xlarge node group has minSize 1, desiredSize 1: accelerators bill while idle"

    def test_h100_group_above_the_cap(self):
        report, _ = report_of(lambda: node_group("h100", instance_type="p5.48xlarge", max_size=6), tier="scale")
        [v] = report.by_policy("on-demand-h100-max-size-cap")
        assert v.message == "h100: on-demand p5.48xlarge node group maxSize 6 exceeds the scale tier cap of 4"


class TestUserProgramsBypassingValidation:
    def test_imdsv1_through_a_transformation(self):
        # GpuNodeGroupArgs has no way to turn IMDSv1 on; a user's transformation does
        opts = pulumi.ResourceOptions(transformations=[
            transformation("aws:ec2/launchTemplate:LaunchTemplate", "metadataOptions.httpTokens", "optional")])
        report, _ = report_of(lambda: node_group(opts=opts), tier="scale")
        [v] = report.by_policy("imdsv2-required")
        assert v.urn.endswith("::a10g-lt") and v.level == "mandatory"
        assert v.message.startswith("metadataOptions.httpTokens is 'optional': IMDSv1 stays enabled")

    def test_ami_type_overridden_through_a_transformation(self):
        opts = pulumi.ResourceOptions(transformations=[
            transformation("aws:eks/nodeGroup:NodeGroup", "amiType", "AL2023_x86_64_STANDARD")])
        report, _ = report_of(lambda: node_group(opts=opts), tier="scale")
        [v] = report.by_policy("nvidia-instance-nvidia-ami")
        assert "amiType is 'AL2023_x86_64_STANDARD'" in v.message

    def test_public_endpoint_open_to_the_world_through_a_transformation(self):
        # config validation and EksClusterArgs both reject 0.0.0.0/0; the policy still catches the cluster
        with pytest.raises(Exception, match="must not be open to the whole internet"):
            EksClusterArgs(vpc_id="vpc-1", subnet_ids=["s"], endpoint_public_access=True,
                           public_access_cidrs=["0.0.0.0/0"])

        def program():
            opts = pulumi.ResourceOptions(transformations=[
                transformation("aws:eks/cluster:Cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
                transformation("aws:eks/cluster:Cluster", "vpcConfig.endpointPublicAccess", True)])
            EksCluster("eks", EksClusterArgs(vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], tags=TAGS), opts)

        report, _ = report_of(program, tier="scale")
        [v] = report.by_policy("eks-public-endpoint-restricted")
        assert v.message == "vpcConfig.publicAccessCidrs contains 0.0.0.0/0: the Kubernetes API is open to the world"

    def test_raw_cluster_in_a_user_program(self):
        def program():
            aws.eks.Cluster("mine", role_arn="arn:aws:iam::123456789012:role/eks",
                            vpc_config={"subnet_ids": ["a", "b"], "endpoint_public_access": True}, tags=TAGS)

        report, _ = report_of(program, tier="scale")
        assert {v.policy for v in report.mandatory} >= {
            "eks-public-endpoint-restricted", "eks-secrets-encryption", "eks-control-plane-logging"}


CERT = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-4000-8000-000000000000"


def alb(tier="growth", opts=None, **kw):
    from components.edge.alb import Alb, AlbArgs

    args = dict(vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], node_security_group_id="sg-1",
                certificate_arn=CERT, region="us-east-1", tags={**TAGS, "tier": tier})
    args.update(kw)
    return Alb("alb", AlbArgs(**args), opts)


def cache(tier="growth", opts=None, **kw):
    from components.edge.semantic_cache import SemanticCache, SemanticCacheArgs

    args = dict(vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], node_security_group_id="sg-1",
                tags={**TAGS, "tier": tier})
    args.update(kw)
    return SemanticCache("cache", SemanticCacheArgs(**args), opts)


ALB_RULES = {"alb-http-redirects-to-https", "alb-tls-1-2-minimum", "alb-drop-invalid-headers", "alb-waf-on-public",
             "s3-public-access-block", "alb-deregistration-covers-drain", "security-group-ssh-not-public"}
CACHE_RULES = {"elasticache-transit-encryption", "elasticache-at-rest-encryption", "elasticache-auth-required",
               "elasticache-auth-token-not-literal", "cache-multi-az", "cache-automatic-failover"}


class TestEdgeComponents:
    def test_alb_with_waf_passes_every_alb_rule(self):
        report, plan = report_of(lambda: alb("scale", waf=True))
        assert plan.by_type("aws:wafv2/webAclAssociation:WebAclAssociation")
        assert [v for v in report.violations if v.policy in ALB_RULES] == []

    def test_public_alb_without_waf_in_growth(self):
        # the tier presets turn the WAF on; a user program that leaves the default off is caught
        report, _ = report_of(lambda: alb("growth"))
        [v] = report.by_policy("alb-waf-on-public")
        assert v.message == "alb-lb: internet-facing ALB has no WAFv2 web ACL association"
        report, _ = report_of(lambda: alb("prototype"))
        assert report.by_policy("alb-waf-on-public") == []

    def test_tls13_policy_that_still_accepts_tls10(self):
        # AlbArgs rejects TLS13-1-0 (it still negotiates TLS 1.0); a transformation in a user's program bypasses that
        opts = pulumi.ResourceOptions(transformations=[
            transformation("aws:lb/listener:Listener", "sslPolicy", "ELBSecurityPolicy-TLS13-1-0-2021-06")])
        report, _ = report_of(lambda: alb("scale", waf=True, opts=opts))
        [v] = report.by_policy("alb-tls-1-2-minimum")
        assert v.message == "sslPolicy is 'ELBSecurityPolicy-TLS13-1-0-2021-06': TLS 1.0/1.1 would be accepted"

    def test_http_listener_forwarding_through_a_transformation(self):
        opts = pulumi.ResourceOptions(transformations=[
            transformation("aws:lb/listener:Listener", "defaultActions",
                           [{"type": "forward", "targetGroupArn": "arn:tg"}])])
        report, _ = report_of(lambda: alb("scale", waf=True, opts=opts))
        msgs = [v.message for v in report.by_policy("alb-http-redirects-to-https")]
        assert msgs == ["HTTP listener's default actions are [forward], not a single redirect to HTTPS"]

    def test_ha_cache_passes_every_cache_rule(self):
        report, _ = report_of(lambda: cache("scale", replicas=1, automatic_failover=True, multi_az=True))
        assert [v for v in report.violations if v.policy in CACHE_RULES] == []

    def test_single_node_cache_in_growth(self):
        report, _ = report_of(lambda: cache("growth"))
        assert [v.message for v in report.by_policy("cache-multi-az")] == [
            "cache-valkey: 1 cache node(s): one AZ or node failure loses the cache"]

    def test_cache_without_tls_through_a_transformation(self):
        # SemanticCacheArgs has no way to turn TLS off
        opts = pulumi.ResourceOptions(transformations=[
            transformation("aws:elasticache/replicationGroup:ReplicationGroup", "transitEncryptionEnabled", False)])
        report, _ = report_of(lambda: cache("prototype", opts=opts))
        [v] = report.by_policy("elasticache-transit-encryption")
        assert v.level == "mandatory" and v.message.startswith("transitEncryptionEnabled is not true")

    def test_literal_auth_token_through_a_transformation(self):
        opts = pulumi.ResourceOptions(transformations=[
            transformation("aws:elasticache/replicationGroup:ReplicationGroup", "authToken",
                           "a-literal-token-in-source-control")])
        report, _ = report_of(lambda: cache("prototype", opts=opts))
        [v] = report.by_policy("elasticache-auth-token-not-literal")
        assert v.message.startswith("cache-valkey: authToken does not come from a generated secret")


class TestManagedComponents:
    def bedrock(self, tier, **kw):
        from components.managed.bedrock_throughput import BedrockProvisionedThroughput, BedrockProvisionedThroughputArgs

        return lambda: BedrockProvisionedThroughput("bedrock", BedrockProvisionedThroughputArgs(
            model_id="amazon.nova-lite-v1:0:24k", region="us-east-1", tags={**TAGS, "tier": tier}, **kw))

    def test_committed_throughput_outside_scale(self):
        report, _ = report_of(self.bedrock("growth", purchase=True, commitment="OneMonth"))
        [v] = report.by_policy("bedrock-commitment-outside-scale")
        assert v.level == "mandatory" and "commitmentDuration is 'OneMonth' in the growth tier" in v.message
        report, _ = report_of(self.bedrock("scale", purchase=True, commitment="OneMonth"))
        assert report.by_policy("bedrock-commitment-outside-scale") == []

    def test_on_demand_profile_buys_nothing(self):
        report, plan = report_of(self.bedrock("prototype"))
        assert not plan.by_type("aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput")
        assert report.by_policy("bedrock-commitment-outside-scale") == []


def test_first_preview_unknown_outputs_do_not_change_the_verdicts():
    """On a first `pulumi preview` computed outputs (ARNs, ids) are unknown. Stack rules that use them only to match
    resources (WAF association -> ALB, public-access block -> bucket) must still decide through dependencies."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

    def program():
        alb("growth", waf=True)
        cache("growth")

    plan = run_program(program)
    known = evaluate(plan.resources, config=config_for(None))
    previewed = []
    for r in plan.resources:
        outputs = {k: (v if k in r.inputs else unknown) for k, v in r.outputs.items()}
        previewed.append({"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "inputs": r.inputs,
                          "outputs": outputs, "dependencies": r.dependencies, "provider": r.provider})
    preview = evaluate(previewed, config=config_for(None))
    as_set = lambda rep: {(v.policy, v.urn, v.message) for v in rep.violations}  # noqa: E731
    assert as_set(preview) == as_set(known)
    assert {p for p, *_ in as_set(known)} == {"cache-multi-az"}
    assert preview.unknowns == []


class TestServingComponents:
    """VllmService output (Deployment, placeholders, ScaledObject, PDB) against the serving and GPU rules."""

    def service(self, tier="growth", opts=None, instance="g5.xlarge", placeholders=1, min_replicas=1, **kw):
        from components.foundation.gpu_node_group import node_labels, node_taints
        from components.serving.vllm.args import VllmModelSettings
        from components.catalog.accelerators import lookup
        from components import AutoscalingSettings, NodeGroupPlacement, VllmService, VllmServiceArgs

        spec = lookup(instance)
        placement = NodeGroupPlacement(name="gpu", accelerator=spec, labels=node_labels("gpu", spec),
                                       taints=node_taints(spec))
        issuer = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
        args = VllmServiceArgs(
            model=VllmModelSettings(model_id="Qwen/Qwen2.5-7B-Instruct", weights_uri="s3://models/qwen7b/",
                                    tensor_parallel_size=spec.parallel_units if spec.vendor == "neuron" else 1),
            placement=placement, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm:0.11.0",
            prometheus_url="http://prometheus.monitoring:9090", oidc_issuer=issuer,
            oidc_provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{issuer}", warm_pool_placeholders=placeholders,
            autoscaling=AutoscalingSettings(min_replicas=min_replicas, max_replicas=3),
            tags={**TAGS, "tier": tier}, **kw)
        return lambda: VllmService("llama", args, opts)

    @staticmethod
    def edit_deployment(edit):
        """A transformation that edits the serving Deployment's props (not the warm-pool one)."""
        def fn(a: pulumi.ResourceTransformationArgs):
            if a.type_ == "kubernetes:apps/v1:Deployment" and a.name == "llama-deployment":
                props = copy.deepcopy(dict(a.props))
                edit(props)
                return pulumi.ResourceTransformationResult(props, a.opts)
            return None
        return pulumi.ResourceOptions(transformations=[fn])

    @staticmethod
    def pod_spec(props):
        return props["spec"]["template"]["spec"]

    @pytest.mark.parametrize("instance", ["g5.xlarge", "inf2.xlarge"])
    def test_real_service_passes_every_rule(self, instance):
        report, plan = report_of(self.service("growth", instance=instance))
        assert plan.by_type("kubernetes:policy/v1:PodDisruptionBudget")
        assert report.violations == [] and report.unknowns == []

    def test_warm_capacity_in_prototype_is_advisory(self):
        report, _ = report_of(self.service("prototype"), tier="prototype")
        assert {(v.policy, v.level) for v in report.violations} == {("warm-pool-within-tier", "advisory")}
        assert len(report.violations) == 2  # one placeholder replica, KEDA minimum of 1

    def test_model_that_does_not_fit_through_a_transformation(self):
        # VllmServiceArgs runs the fit check at construction; a user editing the manifest afterwards is caught here
        opts = self.edit_deployment(
            lambda p: p["metadata"]["annotations"].update({"genai-scale/model-parameters-billion": "70"}))
        report, _ = report_of(self.service(opts=opts))
        [v] = report.by_policy("vllm-model-fits-accelerators")
        assert v.message.startswith("container vllm: Qwen/Qwen2.5-7B-Instruct does not fit: weights 130.4 GiB")

    def test_tensor_parallel_larger_than_the_gpus_requested(self):
        def edit(p):
            args = self.pod_spec(p)["containers"][0]["args"]
            args[args.index("--tensor-parallel-size") + 1] = "2"
        report, _ = report_of(self.service(opts=self.edit_deployment(edit)))
        [v] = report.by_policy("tensor-parallel-matches-accelerators")
        assert v.message == ("container vllm: tensor-parallel-size 2 x pipeline-parallel-size 1 = 2, but it requests "
                             "1 x nvidia.com/gpu")

    def test_grace_period_shorter_than_the_drain(self):
        report, _ = report_of(self.service(opts=self.edit_deployment(
            lambda p: self.pod_spec(p).update({"terminationGracePeriodSeconds": 30}))))
        [v] = report.by_policy("serving-graceful-drain")
        assert v.message == ("container vllm: terminationGracePeriodSeconds 30 < preStop 15 s + drain 60 s = 75 s: "
                             "streams are killed mid-response")

    def test_missing_toleration(self):
        report, _ = report_of(self.service(opts=self.edit_deployment(
            lambda p: self.pod_spec(p).update({"tolerations": []}))))
        [v] = report.by_policy("accelerator-pods-request-and-tolerate")
        assert "does not tolerate the nvidia.com/gpu=true:NoSchedule taint" in v.message
