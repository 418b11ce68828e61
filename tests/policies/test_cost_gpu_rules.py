"""Cost and GPU-correctness rules: passing and failing cases from minimal resource inputs."""

import pytest

from tests.policies.kit import res, run, violations, with_

NG = "aws:eks/nodeGroup:NodeGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
TAG = "aws:autoscaling/tag:Tag"
DEPLOY = "kubernetes:apps/v1:Deployment"


def node_group(name="a10g", instance="g5.xlarge", *, min_size=0, max_size=2, desired=0, ami="AL2023_x86_64_NVIDIA",
               capacity="ON_DEMAND", labels=None, taints=None):
    inputs = {"instanceTypes": [instance], "amiType": ami, "capacityType": capacity,
              "scalingConfig": {"minSize": min_size, "maxSize": max_size, "desiredSize": desired},
              "labels": labels or {}, "taints": taints or []}
    return res(NG, name, inputs)


class TestScaleToZeroInPrototype:
    rule = "accelerator-scale-to-zero-in-prototype"

    def test_zero_passes(self):
        assert violations([node_group()], self.rule, tier="prototype") == []

    def test_warm_gpu_in_prototype_fails_and_is_mandatory(self):
        report = run([node_group(min_size=1, desired=1)], tier="prototype")
        [v] = report.by_policy(self.rule)
        assert v.message == "a10g: g5.xlarge node group has minSize 1, desiredSize 1: accelerators bill while idle"
        assert v.level == "mandatory"

    def test_other_tiers_and_cpu_groups_are_not_judged(self):
        assert violations([node_group(min_size=1, desired=1)], self.rule, tier="growth") == []
        assert violations([node_group("system", "m7i.large", min_size=2, desired=2, ami="AL2023_x86_64_STANDARD")],
                          self.rule, tier="prototype") == []

    def test_instance_type_from_the_launch_template(self):
        lt = res(LT, "h100-lt", {"instanceType": "p5.48xlarge"})
        ng = res(NG, "h100", {"capacityType": "CAPACITY_BLOCK", "scalingConfig": {"minSize": 1, "maxSize": 1}},
                 deps=[lt])
        assert violations([lt, ng], self.rule, tier="prototype") == [
            "h100: p5.48xlarge node group has minSize 1, desiredSize 0: accelerators bill while idle"]


class TestBedrock:
    PT = "aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput"

    def test_commitment_only_in_scale(self):
        committed = res(self.PT, "pt", {"modelUnits": 1, "commitmentDuration": "OneMonth", "modelArn": "m"})
        assert violations([committed], "bedrock-commitment-outside-scale", tier="scale") == []
        assert violations([committed], "bedrock-commitment-outside-scale", tier="growth") == [
            "commitmentDuration is 'OneMonth' in the growth tier: a committed purchase cannot be cancelled before its term"]

    def test_prototype_buys_no_throughput(self):
        hourly = res(self.PT, "pt", {"modelUnits": 1, "modelArn": "m"})
        assert violations([hourly], "bedrock-commitment-outside-scale", tier="growth") == []
        report = run([hourly], tier="prototype")
        [v] = report.by_policy("bedrock-commitment-outside-scale")
        assert v.message.startswith("1 model unit(s) of provisioned throughput in the prototype tier")
        assert v.level == "advisory"  # cost rules are advisory in prototype


class TestH100Cap:
    rule = "on-demand-h100-max-size-cap"

    def test_within_cap_passes(self):
        assert violations([node_group("h100", "p5.48xlarge", max_size=4)], self.rule, tier="scale") == []

    def test_above_cap_fails(self):
        assert violations([node_group("h100", "p5.48xlarge", max_size=3)], self.rule, tier="growth") == [
            "h100: on-demand p5.48xlarge node group maxSize 3 exceeds the growth tier cap of 2"]

    def test_capacity_blocks_and_smaller_gpus_are_not_capped(self):
        assert violations([node_group("h100", "p5.48xlarge", max_size=16, capacity="CAPACITY_BLOCK")], self.rule) == []
        assert violations([node_group("a10g", "g5.48xlarge", max_size=16)], self.rule) == []

    def test_cap_is_configurable(self):
        over = {self.rule: {"maxNodes": 16}}
        assert violations([node_group("h100", "p5e.48xlarge", max_size=16)], self.rule, overrides=over) == []
        assert violations([node_group("h100", "p5e.48xlarge", max_size=17)], self.rule, overrides=over) == [
            "h100: on-demand p5e.48xlarge node group maxSize 17 exceeds the scale tier cap of 16"]


class TestCostTags:
    rule = "cost-allocation-tags"
    TAGS = {"team": "ml", "environment": "prod", "tier": "scale"}

    def test_tagged_resource_passes(self):
        assert violations([res("aws:eks/cluster:Cluster", "eks", {"tags": self.TAGS})], self.rule) == []

    def test_missing_and_empty_tags_fail(self):
        assert violations([res("aws:eks/cluster:Cluster", "eks", {"tags": {"team": "ml", "tier": ""}})], self.rule) == [
            "missing cost-allocation tag(s) environment, tier"]

    def test_provider_default_tags_count(self):
        provider = res("pulumi:providers:aws", "aws", {"defaultTags": {"tags": self.TAGS}})
        cache = res("aws:elasticache/replicationGroup:ReplicationGroup", "c", {},
                    provider=provider["urn"] + "::provider-id")
        assert violations([provider, cache], self.rule) == []

    def test_launch_templates_must_tag_instances_and_volumes(self):
        specs = [{"resourceType": k, "tags": self.TAGS} for k in ("instance", "volume")]
        ok = res(LT, "lt", {"tags": self.TAGS, "tagSpecifications": specs})
        assert violations([ok], self.rule) == []
        only_instance = res(LT, "lt", {"tags": self.TAGS, "tagSpecifications": specs[:1]})
        assert violations([only_instance], self.rule) == [
            "tagSpecifications for volume lack team, environment, tier: the volumes this template launches are unattributed"]

    def test_non_billable_types_are_not_judged(self):
        assert violations([res("aws:iam/role:Role", "r", {})], self.rule) == []

    def test_advisory_in_prototype_mandatory_in_scale(self):
        bare = res("aws:eks/cluster:Cluster", "eks", {})
        assert {v.level for v in run([bare], tier="prototype").by_policy(self.rule)} == {"advisory"}
        assert {v.level for v in run([bare], tier="scale").by_policy(self.rule)} == {"mandatory"}


def accel_deployment(name="llama", *, gpus=1, priority=None, replicas=1, ports=True):
    spec = {"containers": [{"name": "c", "image": "i:1", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                            **({"ports": [{"containerPort": 8000}]} if ports else {})}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    if priority:
        spec["priorityClassName"] = priority
    return res(DEPLOY, name, {"metadata": {"name": name, "namespace": "serving"},
                              "spec": {"replicas": replicas, "template": {"spec": spec}}})


class TestWarmPool:
    rule = "warm-pool-within-tier"
    PC = "kubernetes:scheduling.k8s.io/v1:PriorityClass"

    def test_placeholders_within_allowance(self):
        pc = res(self.PC, "warm", {"metadata": {"name": "genai-warm"}, "value": -10})
        ph = accel_deployment("llama-warm", priority="genai-warm", replicas=2, ports=False)
        assert violations([pc, ph], self.rule, tier="growth") == []
        assert violations([pc, ph], self.rule, tier="prototype") == [
            "llama-warm: 2 placeholder replica(s) hold accelerator nodes warm; the prototype tier allows 0"]

    def test_keda_minimum_of_accelerator_workload(self):
        d = accel_deployment()
        so = res("kubernetes:keda.sh/v1alpha1:ScaledObject", "llama-so", {
            "metadata": {"namespace": "serving"},
            "spec": {"minReplicaCount": 3, "scaleTargetRef": {"name": "llama"}}})
        assert violations([d, so], self.rule, tier="growth") == [
            "llama-so: keeps 3 replica(s) of accelerator workload llama warm; the growth tier allows 2"]
        assert violations([d, with_(so, "inputs.spec.minReplicaCount", 0)], self.rule, tier="prototype") == []

    def test_asg_warm_pool(self):
        asg = res("aws:autoscaling/group:Group", "asg", {"minSize": 0, "maxSize": 2, "warmPool": {"minSize": 1}})
        assert violations([asg], self.rule, tier="prototype") == [
            "asg: ASG warm pool keeps 1 instance(s); the prototype tier allows 0"]


class TestAmiTypes:
    def test_nvidia(self):
        assert violations([node_group()], "nvidia-instance-nvidia-ami") == []
        [msg] = violations([node_group(ami="AL2023_x86_64_STANDARD")], "nvidia-instance-nvidia-ami")
        assert msg.startswith("a10g: g5.xlarge is a NVIDIA GPU instance but amiType is 'AL2023_x86_64_STANDARD'")
        [msg] = violations([node_group(ami=None)], "nvidia-instance-nvidia-ami")
        assert "unset (EKS picks a standard AMI without the drivers)" in msg
        assert violations([node_group("g5g", "g5g.xlarge", ami="AL2023_x86_64_NVIDIA")], "nvidia-instance-nvidia-ami")
        assert violations([node_group("g5g", "g5g.xlarge", ami="AL2023_ARM_64_NVIDIA")], "nvidia-instance-nvidia-ami") == []
        assert violations([node_group(ami="CUSTOM")], "nvidia-instance-nvidia-ami") == []

    def test_neuron(self):
        assert violations([node_group("inf2", "inf2.xlarge", ami="AL2023_x86_64_NEURON")],
                          "neuron-instance-neuron-ami") == []
        [msg] = violations([node_group("inf2", "inf2.xlarge", ami="AL2023_x86_64_NVIDIA")],
                           "neuron-instance-neuron-ami")
        assert msg.startswith("inf2: inf2.xlarge is a Neuron instance but amiType is 'AL2023_x86_64_NVIDIA'")


def pod(containers, *, tolerations=(), node_selector=None, kind=DEPLOY, name="w"):
    spec = {"containers": containers, "tolerations": list(tolerations)}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return res(kind, name, {"metadata": {"name": name}, "spec": {"template": {"spec": spec}}})


GPU_TOL = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
NEURON_TOL = {"key": "aws.amazon.com/neuron", "operator": "Equal", "value": "true", "effect": "NoSchedule"}


class TestAcceleratorPods:
    rule = "accelerator-pods-request-and-tolerate"

    def test_gpu_pod_with_limit_and_toleration_passes(self):
        c = {"name": "c", "image": "i:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}
        assert violations([pod([c], tolerations=[GPU_TOL])], self.rule) == []

    def test_gpu_request_without_toleration_fails(self):
        c = {"name": "c", "image": "i:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}
        assert violations([pod([c])], self.rule) == [
            "the pod targets nvidia nodes but does not tolerate the nvidia.com/gpu=true:NoSchedule taint: it stays Pending"]

    def test_selector_without_limit_fails(self):
        c = {"name": "c", "image": "i:1"}
        msgs = violations([pod([c], tolerations=[GPU_TOL], node_selector={"genai-scale/accelerator-vendor": "nvidia"})],
                          self.rule)
        assert msgs == ["the pod targets nvidia nodes but no container sets a limit for nvidia.com/gpu: it would be "
                        "scheduled without a device"]

    def test_neuron_pod(self):
        ok = {"name": "c", "image": "i:1", "resources": {"limits": {"aws.amazon.com/neuroncore": 2}}}
        assert violations([pod([ok], tolerations=[NEURON_TOL])], self.rule) == []
        assert len(violations([pod([ok])], self.rule)) == 1
        assert violations([pod([{"name": "c", "image": "i:1"}], tolerations=[NEURON_TOL])], self.rule) == [
            "the pod targets neuron nodes but no container sets a limit for aws.amazon.com/neuron or "
            "aws.amazon.com/neuroncore: it would be scheduled without a device"]

    def test_cpu_pods_and_daemonsets_are_not_judged(self):
        assert violations([pod([{"name": "c", "image": "i:1"}])], self.rule) == []
        ds = pod([{"name": "plugin", "image": "i:1"}], tolerations=[GPU_TOL], kind="kubernetes:apps/v1:DaemonSet")
        assert violations([ds], self.rule) == []

    def test_catch_all_toleration_counts(self):
        c = {"name": "c", "image": "i:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}
        assert violations([pod([c], tolerations=[{"operator": "Exists"}])], self.rule) == []


def vllm(args, limits):
    return {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "args": args, "resources": {"limits": limits}}


class TestTensorParallel:
    rule = "tensor-parallel-matches-accelerators"

    @pytest.mark.parametrize("args,limits", [
        (["--model", "m", "--tensor-parallel-size", "4"], {"nvidia.com/gpu": "4"}),
        (["--model", "m", "--tensor-parallel-size=2", "--pipeline-parallel-size", "2"], {"nvidia.com/gpu": 4}),
        (["--model", "m"], {"nvidia.com/gpu": 1}),
        (["--model", "m", "--tensor-parallel-size", "2"], {"aws.amazon.com/neuroncore": 2}),
        (["--model", "m", "--tensor-parallel-size", "24"], {"aws.amazon.com/neuron": 12}),
    ])
    def test_matching_sizes_pass(self, args, limits):
        assert violations([pod([vllm(args, limits)], tolerations=[GPU_TOL, NEURON_TOL])], self.rule) == []

    def test_mismatch_fails(self):
        c = vllm(["--model", "m", "--tensor-parallel-size", "8"], {"nvidia.com/gpu": 4})
        assert violations([pod([c], tolerations=[GPU_TOL])], self.rule) == [
            "container vllm: tensor-parallel-size 8 x pipeline-parallel-size 1 = 8, but it requests 4 x nvidia.com/gpu"]

    def test_neuron_devices_count_cores_per_device_of_the_family(self):
        c = vllm(["--model", "m", "--tensor-parallel-size", "8"], {"aws.amazon.com/neuron": 1})
        trn2 = pod([c], tolerations=[NEURON_TOL], node_selector={"node.kubernetes.io/instance-type": "trn2.48xlarge"})
        assert violations([trn2], self.rule) == []
        inf2 = pod([c], tolerations=[NEURON_TOL], node_selector={"node.kubernetes.io/instance-type": "inf2.xlarge"})
        assert violations([inf2], self.rule) == [
            "container vllm: tensor-parallel-size 8 x pipeline-parallel-size 1 = 8, but it requests 1 x "
            "aws.amazon.com/neuron (2 NeuronCores)"]

    def test_shell_wrapped_command_is_parsed(self):
        c = {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "command": ["/bin/sh", "-c"],
             "args": ["exec python3 -m vllm.entrypoints.openai.api_server --model m --tensor-parallel-size 2"],
             "resources": {"limits": {"nvidia.com/gpu": 1}}}
        assert len(violations([pod([c], tolerations=[GPU_TOL])], self.rule)) == 1


class TestSageMakerTensorParallel:
    rule = "sagemaker-tensor-parallel-matches-instance"

    def pair(self, instance, env):
        model = res("aws:sagemaker/model:Model", "llm-model", {"primaryContainer": {"image": "lmi", "environment": env}})
        ec = res("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "llm-config", {"productionVariants": [
            {"variantName": "v", "modelName": "m", "instanceType": instance, "initialInstanceCount": 1}]}, deps=[model])
        return [model, ec]

    def test_matching_degree_passes(self):
        assert violations(self.pair("ml.g5.12xlarge", {"OPTION_TENSOR_PARALLEL_DEGREE": "4"}), self.rule) == []
        assert violations(self.pair("ml.inf2.24xlarge", {"OPTION_TENSOR_PARALLEL_DEGREE": "12"}), self.rule) == []
        assert violations(self.pair("ml.g5.12xlarge", {"OPTION_TENSOR_PARALLEL_DEGREE": "max"}), self.rule) == []

    def test_mismatch_or_missing_fails(self):
        assert violations(self.pair("ml.g5.12xlarge", {"OPTION_TENSOR_PARALLEL_DEGREE": "8"}), self.rule) == [
            "llm-model: OPTION_TENSOR_PARALLEL_DEGREE=8 but ml.g5.12xlarge has 4 GPUs"]
        [msg] = violations(self.pair("ml.g5.12xlarge", {}), self.rule)
        assert msg.startswith("llm-model: no tensor parallel degree set")


class TestScaleFromZeroTags:
    rule = "scale-from-zero-autoscaler-tags"
    LABELS = {"genai-scale/node-group": "a10g", "genai-scale/accelerator": "a10g"}
    TAINTS = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    T = "k8s.io/cluster-autoscaler/node-template"

    def tags(self, ng, pairs):
        return [res(TAG, f"{ng['name']}-ca-{i}", {"autoscalingGroupName": "asg", "tag": {"key": k, "value": v}},
                    deps=[ng]) for i, (k, v) in enumerate(pairs)]

    def complete(self):
        return [(f"{self.T}/label/{k}", v) for k, v in self.LABELS.items()] + [
            (f"{self.T}/taint/nvidia.com/gpu", "true:NoSchedule"), (f"{self.T}/resources/nvidia.com/gpu", "1")]

    def test_complete_hints_pass(self):
        ng = node_group(labels=self.LABELS, taints=self.TAINTS)
        assert violations([ng, *self.tags(ng, self.complete())], self.rule) == []

    def test_missing_hints_fail(self):
        ng = node_group(labels=self.LABELS, taints=self.TAINTS)
        assert violations([ng], self.rule) == [
            f"a10g: minSize 0 but its ASG lacks {self.T}/label/genai-scale/node-group=a10g, "
            f"{self.T}/label/genai-scale/accelerator=a10g, {self.T}/taint/nvidia.com/gpu=true:NoSchedule, "
            f"{self.T}/resources/nvidia.com/gpu=<count>"]

    def test_wrong_taint_effect_format_fails(self):
        ng = node_group(labels=self.LABELS, taints=self.TAINTS)
        pairs = [p if "taint" not in p[0] else (p[0], "true:NO_SCHEDULE") for p in self.complete()]
        [msg] = violations([ng, *self.tags(ng, pairs)], self.rule)
        assert msg == f"a10g: minSize 0 but its ASG lacks {self.T}/taint/nvidia.com/gpu=true:NoSchedule"

    def test_tags_on_another_group_do_not_count(self):
        ng = node_group(labels=self.LABELS, taints=self.TAINTS)
        other = node_group("other", labels=self.LABELS, taints=self.TAINTS, min_size=1, desired=1)
        assert len(violations([ng, other, *self.tags(other, self.complete())], self.rule)) == 1

    def test_groups_with_a_minimum_are_not_judged(self):
        assert violations([node_group(min_size=1, desired=1, labels=self.LABELS)], self.rule) == []


class TestVllmFit:
    rule = "vllm-model-fits-accelerators"

    def test_fit_problems_are_reported(self, monkeypatch):
        import policies.gpu as gpu

        seen = {}

        def fake(argv, annotations):
            seen["argv"], seen["annotations"] = argv, annotations
            return ["llama-70b needs 151.2 GiB but 1 x A10G offers 21.1 GiB"]

        monkeypatch.setattr(gpu, "_fit_checker", lambda: fake)
        d = res(DEPLOY, "llama", {"metadata": {"annotations": {"genai-scale/params-b": "70"}}, "spec": {"template": {
            "metadata": {"annotations": {"genai-scale/dtype": "bfloat16"}},
            "spec": {"containers": [vllm(["--model", "meta-llama/Llama-3.1-70B"], {"nvidia.com/gpu": 1})],
                     "tolerations": [GPU_TOL]}}}})
        assert violations([d], self.rule) == ["container vllm: llama-70b needs 151.2 GiB but 1 x A10G offers 21.1 GiB"]
        assert seen == {"argv": ["--model", "meta-llama/Llama-3.1-70B"],
                        "annotations": {"genai-scale/params-b": "70", "genai-scale/dtype": "bfloat16"}}

    def test_non_vllm_containers_are_not_checked(self, monkeypatch):
        import policies.gpu as gpu

        monkeypatch.setattr(gpu, "_fit_checker", lambda: (lambda a, b: ["boom"]))
        assert violations([pod([{"name": "c", "image": "nginx:1.27"}])], self.rule) == []
