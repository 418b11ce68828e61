"""The policy gaps of issue 14, each closed by a rule that fires on an insecure mutation of a real plan of a shipped
stack (and stays quiet on the shipped plan): SageMaker endpoint KMS, accelerator AMI types, vendor taints and the
autoscaler's taint tags, literal secrets, and idle accelerator workloads in a tier that requires scale to zero.

Every case runs through ``policies.engine.evaluate`` under the pack config the stack's tier gets."""

import pytest

from infra.program import plan_stack
from infra.tiers import pack_config_for
from policies._accel import VENDORS
from policies.engine import evaluate
from policies.pack import RULES
from policies.security_secrets import masked, secret_like
from tests.policies.kit import dropped, mutated, res, violations

NG = "aws:eks/nodeGroup:NodeGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
TAG = "aws:autoscaling/tag:Tag"
HELM = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
DEPLOY = "kubernetes:apps/v1:Deployment"
CA = "k8s.io/cluster-autoscaler/node-template"
NEW_RULES = ("accelerator-node-group-vendor-taint", "autoscaler-taint-tags-match-taints", "no-literal-secrets",
             "accelerator-workload-scales-to-zero")


@pytest.fixture(scope="module")
def prod():
    plan, cfg = plan_stack(stack="prod")
    return plan.resources, cfg.tier


@pytest.fixture(scope="module")
def dev():
    plan, cfg = plan_stack(stack="dev")
    return plan.resources, cfg.tier


def found(resources, tier, policy):
    """(resource name, message, level) of one policy's violations."""
    report = evaluate(resources, config=pack_config_for(tier))
    return [(v.resource_name, v.message, v.level) for v in report.by_policy(policy)]


def messages(resources, tier, policy):
    return [m for _, m, _ in found(resources, tier, policy)]


def test_the_new_rules_are_registered_and_the_shipped_plans_pass(dev, prod):
    assert set(NEW_RULES) <= set(RULES)
    for resources, tier in (dev, prod):
        report = evaluate(resources, config=pack_config_for(tier))
        assert [v for v in report.violations if v.policy in NEW_RULES] == []


# --- SageMaker endpoint KMS -------------------------------------------------------------------------------------------

class TestSageMakerKms:
    rule = "sagemaker-endpoint-kms"

    def test_removing_the_key_of_an_ebs_only_endpoint_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "sagemaker-qwen7b-inf2-config", lambda i: i.pop("kmsKeyArn"))
        [(name, msg, level)] = found(bad, tier, self.rule)
        assert name == "sagemaker-qwen7b-inf2-config" and level == "mandatory"
        assert msg.startswith("kmsKeyArn is unset: the ML storage volume of ml.inf2.8xlarge")

    def test_a_local_nvme_endpoint_must_not_set_the_key(self, prod):
        # ml.g6e has local NVMe: CreateEndpointConfig refuses KmsKeyId there (the shipped config omits it)
        resources, tier = prod
        assert found(resources, tier, self.rule) == []
        bad = mutated(resources, "sagemaker-qwen32b-config",
                      lambda i: i.update({"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}))
        [msg] = messages(bad, tier, self.rule)
        assert msg.startswith("kmsKeyArn is set but ml.g6e.12xlarge has local NVMe storage")

    def test_a_mixed_config_with_a_local_nvme_variant_may_not_have_a_key(self):
        ec = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
        mixed = {"productionVariants": [{"instanceType": "ml.g5.2xlarge"}, {"instanceType": "ml.inf2.xlarge"}]}
        assert violations([res(ec, "ec", mixed)], self.rule) == []


# --- AMI type per vendor ----------------------------------------------------------------------------------------------

class TestAmiTypes:
    def test_one_rule_per_vendor_of_the_registry(self):
        for vendor in VENDORS:
            assert f"{vendor}-instance-{vendor}-ami" in RULES

    @pytest.mark.parametrize("group, ami, rule, expected", [
        ("a10g", "AL2023_x86_64_STANDARD", "nvidia-instance-nvidia-ami",
         "a10g: g5.12xlarge is a NVIDIA GPU instance but amiType is 'AL2023_x86_64_STANDARD' (no NVIDIA GPU driver); "
         "expected one of AL2023_x86_64_NVIDIA, AL2_x86_64_GPU, BOTTLEROCKET_x86_64_NVIDIA, "
         "BOTTLEROCKET_x86_64_NVIDIA_FIPS"),
        ("a10g", "AL2023_x86_64_NEURON", "nvidia-instance-nvidia-ami",
         "a10g: g5.12xlarge is a NVIDIA GPU instance but amiType is 'AL2023_x86_64_NEURON' (Neuron AMI type); "
         "expected one of"),
        ("inf2", "AL2023_x86_64_NVIDIA", "neuron-instance-neuron-ami",
         "inf2: inf2.48xlarge is a Neuron instance but amiType is 'AL2023_x86_64_NVIDIA' (NVIDIA GPU AMI type); "
         "expected one of AL2023_x86_64_NEURON, AL2_x86_64_GPU, BOTTLEROCKET_x86_64, BOTTLEROCKET_x86_64_FIPS"),
        ("inf2", "AL2023_x86_64_STANDARD", "neuron-instance-neuron-ami",
         "inf2: inf2.48xlarge is a Neuron instance but amiType is 'AL2023_x86_64_STANDARD' (no Neuron driver)"),
        ("h100", None, "nvidia-instance-nvidia-ami",
         "h100: p5.48xlarge is a NVIDIA GPU instance but amiType is unset (EKS picks a standard AMI without the "
         "drivers)"),
    ])
    def test_wrong_ami_on_the_real_node_groups_fires(self, prod, group, ami, rule, expected):
        resources, tier = prod
        bad = mutated(resources, group, lambda i: i.update({"amiType": ami}) if ami else i.pop("amiType"), type_=NG)
        [(name, msg, level)] = found(bad, tier, rule)
        assert name == group and level == "mandatory" and msg.startswith(expected)

    def test_a_custom_ami_cannot_be_judged(self, prod):
        # an imageId in the launch template (amiType unset) or amiType CUSTOM: the plan does not say what the AMI holds
        resources, tier = prod
        custom = mutated(mutated(resources, "a10g", lambda i: i.pop("amiType"), type_=NG),
                         "a10g-lt", lambda i: i.update({"imageId": "ami-0123456789abcdef0"}))
        assert found(custom, tier, "nvidia-instance-nvidia-ami") == []
        assert found(mutated(resources, "inf2", lambda i: i.update({"amiType": "CUSTOM"}), type_=NG), tier,
                     "neuron-instance-neuron-ami") == []


# --- Vendor taint and the autoscaler's taint tags ---------------------------------------------------------------------

class TestVendorTaint:
    rule = "accelerator-node-group-vendor-taint"

    def test_an_untainted_gpu_group_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "a10g", lambda i: i.update({"taints": []}), type_=NG)
        assert messages(bad, tier, self.rule) == [
            "a10g: taints lacks nvidia.com/gpu=true:NoSchedule (g5.12xlarge is a NVIDIA GPU instance): pods that do "
            "not need the device can fill its nodes and keep them up; add {key: nvidia.com/gpu, value: 'true', "
            "effect: NO_SCHEDULE}"]

    def test_a_neuron_group_with_another_effect_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "inf2", lambda i: i["taints"][0].update({"effect": "NO_EXECUTE"}), type_=NG)
        [msg] = messages(bad, tier, self.rule)
        assert msg.startswith("inf2: taints has aws.amazon.com/neuron=true:NoExecute, expected "
                              "aws.amazon.com/neuron=true:NoSchedule for inf2.48xlarge")

    def test_a_gpu_group_with_the_other_vendors_taint_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "h100", lambda i: i["taints"][0].update({"key": "aws.amazon.com/neuron"}), type_=NG)
        [msg] = messages(bad, tier, self.rule)
        assert msg.startswith("h100: taints lacks nvidia.com/gpu=true:NoSchedule (p5.48xlarge")

    def test_cpu_groups_are_not_judged(self):
        cpu = res(NG, "system", {"instanceTypes": ["m7i.xlarge"], "amiType": "AL2023_x86_64_STANDARD"})
        assert violations([cpu], self.rule) == []


class TestAutoscalerTaintTags:
    rule = "autoscaler-taint-tags-match-taints"

    def test_a_missing_taint_tag_fires_even_on_a_group_with_a_minimum(self, prod):
        # a10g has minSize 2, so scale-from-zero-autoscaler-tags does not judge it
        resources, tier = prod
        assert messages(dropped(resources, "a10g-ca-taint-nvidia.com-gpu"), tier, self.rule) == [
            f"a10g: ASG taint tags do not match taints: missing {CA}/taint/nvidia.com/gpu=true:NoSchedule"]

    def test_a_different_taint_tag_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "h100-ca-taint-nvidia.com-gpu", lambda i: i["tag"].update({"value": "true:NoExecute"}))
        assert messages(bad, tier, self.rule) == [
            f"h100: ASG taint tags do not match taints: {CA}/taint/nvidia.com/gpu=true:NoExecute but the taint is "
            "nvidia.com/gpu=true:NoSchedule"]

    def test_an_extra_taint_tag_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "inf2", lambda i: i.update({"taints": []}), type_=NG)
        assert messages(bad, tier, self.rule) == [
            f"inf2: ASG taint tags do not match taints: extra {CA}/taint/aws.amazon.com/neuron=true:NoSchedule "
            "(the node group has no aws.amazon.com/neuron taint)"]

    def test_groups_without_template_hints_are_not_judged(self):
        ng = res(NG, "g", {"instanceTypes": ["g5.xlarge"], "scalingConfig": {"minSize": 1},
                           "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]})
        assert violations([ng], self.rule) == []


# --- Literal secrets --------------------------------------------------------------------------------------------------

class TestLiteralSecrets:
    rule = "no-literal-secrets"

    def test_a_literal_grafana_admin_password_in_helm_values_fires(self, prod):
        resources, tier = prod

        def literal(values):
            grafana = values["values"]["grafana"]
            grafana.pop("admin")
            grafana["adminPassword"] = "hunter2-prod"

        [(name, msg, level)] = found(mutated(resources, "monitoring", literal, type_=HELM), tier, self.rule)
        assert name == "monitoring" and level == "mandatory"
        assert msg.startswith("monitoring: values.grafana.adminPassword is a literal 'hu***' (12 characters), not "
                              "computed from a generated secret")
        assert msg.endswith("generate it and reference it (existingSecret / secretKeyRef)")

    def test_the_shipped_grafana_secret_comes_from_a_random_password(self, prod):
        resources, tier = prod
        [s] = [r for r in resources if r.type == SECRET and r.name == "monitoring-grafana-admin"]
        assert any(u.endswith("RandomPassword::monitoring-grafana-admin") for u in s.property_dependencies["stringData"])
        bad = mutated(resources, "monitoring-grafana-admin",
                      lambda i: i.update({"stringData": {"admin-user": "admin", "admin-password": "s3cret-literal"}}),
                      type_=SECRET, drop_sources=["stringData"])
        assert sorted(messages(bad, tier, self.rule)) == [
            f"monitoring-grafana-admin: stringData.{key} is a literal {shown}, not computed from a generated secret "
            "(AccessKey, PrivateKey, RandomBytes, RandomPassword, SecretVersion): it sits in source control or stack "
            "config; generate it and reference it (existingSecret / secretKeyRef)"
            for key, shown in (("admin-password", masked("s3cret-literal")), ("admin-user", masked("admin")))]

    def test_a_literal_token_in_container_env_fires(self, prod):
        resources, tier = prod

        def add_token(inputs):
            inputs["spec"]["template"]["spec"]["containers"][0]["env"].append(
                {"name": "HF_TOKEN", "value": "hf_abcdefghijklmnop"})

        bad = mutated(resources, "llama-8b-deployment", add_token, type_=DEPLOY)
        [msg] = messages(bad, tier, self.rule)
        assert msg.startswith("llama-8b-deployment: spec.template.spec.containers[0].env[name=HF_TOKEN].value is a "
                              "literal 'hf***' (19 characters)")

    def test_a_secret_like_config_map_key_fires(self, prod):
        resources, tier = prod
        bad = mutated(resources, "gateway-config", lambda i: i["data"].update({"redisPassword": "plain-text"}))
        [msg] = messages(bad, tier, self.rule)
        assert msg.startswith("gateway-config: data.redisPassword is a literal 'pl***' (10 characters)")

    def test_a_password_inside_a_config_file_of_a_config_map_fires(self, prod):
        resources, tier = prod

        def add(inputs):
            inputs["data"]["gateway.yaml"] = inputs["data"]["gateway.yaml"].replace(
                "redis:\n", "redis:\n  password: plain-text-in-yaml\n", 1)

        [msg] = messages(mutated(resources, "gateway-config", add), tier, self.rule)
        assert msg.startswith("gateway-config: data.gateway.yaml.redis.password is a literal 'pl***' (18 characters)")

    def test_references_empty_values_booleans_and_generated_values_pass(self):
        values = {"grafana": {"admin": {"existingSecret": "grafana-admin", "passwordKey": "admin-password"},
                              "adminPassword": "", "auth": {"anonymous": {"enabled": False}}},
                  "secretName": "tls", "token": "arn:aws:secretsmanager:us-east-1:1:secret:hf",
                  "extraEnv": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "api-key"}}},
                               {"name": "DB_PASSWORD", "value": "$(DB_PASSWORD_FROM_FILE)"}]}
        assert violations([res(HELM, "r", {"values": values})], self.rule) == []
        pw = res("random:index/randomPassword:RandomPassword", "pw", {"length": 32})
        generated = res(HELM, "g", {"values": {"adminPassword": "Az7xMbYJKhaBYZsZ"}},
                        property_dependencies={"values": [pw]}, deps=[pw])
        assert violations([pw, generated], self.rule) == []

    def test_env_lists_inside_helm_values_are_judged_by_name(self):
        values = {"controller": {"env": [{"name": "OPENAI_API_KEY", "value": "sk-live-123"}]}}
        assert violations([res(HELM, "r", {"values": values})], self.rule) == [
            "r: values.controller.env[0][name=OPENAI_API_KEY].value is a literal 'sk***' (11 characters), not computed "
            "from a generated secret (AccessKey, PrivateKey, RandomBytes, RandomPassword, SecretVersion): it sits in "
            "source control or stack config; generate it and reference it (existingSecret / secretKeyRef)"]

    def test_secret_like_keys(self):
        for key in ("adminPassword", "password", "PASSWD", "client_secret", "HF_TOKEN", "apiKey", "api_key",
                    "AWS_SECRET_ACCESS_KEY", "accessKey", "secretKey", "privateKey", "credentials", "auth"):
            assert secret_like(key), key
        for key in ("existingSecret", "passwordKey", "secretName", "secretKeyRef", "tokenPeriod", "key", "userKey",
                    "authType", "serviceAccountName"):
            assert not secret_like(key), key

    def test_unknown_values_are_not_literals(self):
        unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
        assert violations([res(HELM, "r", {"values": {"adminPassword": unknown}})], self.rule) == []
        assert violations([res(HELM, "r", {"values": unknown}), res(SECRET, "s", {"stringData": unknown})],
                          self.rule) == []

    def test_a_secret_that_declares_its_deploy_time_source_passes(self):
        def token_secret(annotations):
            return res(SECRET, "llama-8b-hf-token", {"metadata": {"name": "llama-8b-hf-token",
                                                                   "annotations": annotations},
                                                      "stringData": {"token": "hf_abcdefghijklmnop"}})
        for source in ("secretsmanager:genai/hf-token", "pulumi-config:genai-scale:serving.huggingFaceToken"):
            assert violations([token_secret({"genai-scale.io/secret-source": source})], self.rule) == [], source
        for annotations in ({}, {"genai-scale.io/secret-source": "literal"},
                            {"genai-scale.io/secret-source": "pulumi-config:"}, {"other": "secretsmanager:x"}):
            [msg] = violations([token_secret(annotations)], self.rule)
            assert msg.startswith("llama-8b-hf-token: stringData.token is a literal 'hf***' (19 characters)"), annotations

    def test_the_declared_source_covers_only_a_secrets_own_data(self):
        values = {"metadata": {"annotations": {"genai-scale.io/secret-source": "secretsmanager:x"}},
                  "adminPassword": "hunter2-prod"}
        [msg] = violations([res(HELM, "r", {"values": values})], self.rule)
        assert msg.startswith("r: values.adminPassword is a literal")


# --- Idle accelerator workloads ---------------------------------------------------------------------------------------

class TestAcceleratorWorkloadScalesToZero:
    rule = "accelerator-workload-scales-to-zero"

    def test_fixed_replicas_without_an_autoscaler_fire_in_the_prototype_tier(self, dev):
        resources, tier = dev
        assert tier == "prototype"
        pinned = mutated(dropped(resources, "llama-8b-scaledobject"), "llama-8b-deployment",
                         lambda i: i["spec"].update({"replicas": 1}), type_=DEPLOY)
        assert found(pinned, tier, self.rule) == [(
            "llama-8b-deployment",
            "llama-8b-deployment: spec.replicas = 1 for Deployment genai-serving/llama-8b, which requests "
            "nvidia.com/gpu, and no ScaledObject or HorizontalPodAutoscaler targets it: in the prototype tier its "
            "accelerator node bills around the clock; add a ScaledObject with minReplicaCount 0 or set spec.replicas "
            "to 0", "mandatory")]

    def test_unset_replicas_count_as_one(self, dev):
        resources, tier = dev
        unset = mutated(dropped(resources, "llama-8b-scaledobject"), "llama-8b-deployment",
                        lambda i: i["spec"].pop("replicas"), type_=DEPLOY)
        [msg] = messages(unset, tier, self.rule)
        assert "spec.replicas = unset (Kubernetes default 1)" in msg

    def test_an_autoscaler_or_zero_replicas_pass(self, dev):
        resources, tier = dev
        scaled = mutated(resources, "llama-8b-deployment", lambda i: i["spec"].update({"replicas": 1}), type_=DEPLOY)
        assert found(scaled, tier, self.rule) == []
        assert found(dropped(resources, "llama-8b-scaledobject"), tier, self.rule) == []  # replicas 0

    def test_an_autoscaler_in_another_namespace_does_not_count(self, dev):
        resources, tier = dev
        moved = mutated(mutated(resources, "llama-8b-scaledobject",
                                lambda i: i["metadata"].update({"namespace": "elsewhere"})),
                        "llama-8b-deployment", lambda i: i["spec"].update({"replicas": 1}), type_=DEPLOY)
        assert len(found(moved, tier, self.rule)) == 1

    def test_warm_pool_placeholders_are_left_to_the_warm_pool_rule(self):
        pc = res("kubernetes:scheduling.k8s.io/v1:PriorityClass", "warm", {"metadata": {"name": "warm"}, "value": -10})
        pod = {"containers": [{"name": "pause", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}
        placeholder = res(DEPLOY, "llama-warm", {"metadata": {"name": "llama-warm", "namespace": "s"}, "spec": {
            "replicas": 1, "template": {"spec": {**pod, "priorityClassName": "warm"}}}})
        assert violations([pc, placeholder], self.rule, tier="prototype") == []
        pinned = res(DEPLOY, "llama", {"metadata": {"name": "llama", "namespace": "s"},
                                       "spec": {"replicas": 2, "template": {"spec": pod}}})
        [msg] = violations([pc, pinned], self.rule, tier="prototype")
        assert msg.startswith("llama: spec.replicas = 2 for Deployment s/llama, which requests nvidia.com/gpu")

    def test_tiers_that_keep_warm_capacity_are_not_judged(self, prod):
        resources, tier = prod
        pinned = mutated(dropped(resources, "llama-8b-scaledobject"), "llama-8b-deployment",
                         lambda i: i["spec"].update({"replicas": 1}), type_=DEPLOY)
        assert found(pinned, tier, self.rule) == []


def test_the_crossguard_analyzer_sees_literal_secrets_as_the_offline_engine_does():
    """Under ``pulumi preview --policy-pack`` a secret reaches the rule unwrapped: secretness cannot be read from the
    value, only where it came from (property dependencies). pulumi_policy's own servicer, fed the protobuf request the
    CLI sends, must agree with the offline engine on a secret-wrapped literal (fires) and a generated value (passes)."""
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime import proto
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from policies.pack import ALL_POLICIES, PACK_NAME

    envelope = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2-literal"}
    pw = res("random:index/randomPassword:RandomPassword", "pw", {"length": 32})
    literal = res(HELM, "literal", {"values": {"grafana": {"adminPassword": envelope}}})
    generated = res(HELM, "generated", {"values": {"grafana": {"adminPassword": envelope}}}, deps=[pw],
                    property_dependencies={"values": [pw]})
    resources = [pw, literal, generated]

    def struct(values):
        s = struct_pb2.Struct()
        json_format.ParseDict(values, s)
        return s

    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", ALL_POLICIES, EnforcementLevel.MANDATORY)
    request = proto.AnalyzeStackRequest(resources=[proto.AnalyzerResource(
        type=r["type"], properties=struct(r["inputs"]), urn=r["urn"], name=r["name"], dependencies=r["dependencies"],
        propertyDependencies={k: proto.AnalyzerPropertyDependencies(urns=v)
                              for k, v in r["property_dependencies"].items()}) for r in resources])
    got = {(d.urn, d.message.split("\n", 1)[1]) for d in servicer.AnalyzeStack(request, None).diagnostics
           if d.policyName == "no-literal-secrets"}
    offline = {(v.urn, v.message) for v in evaluate(resources, config=pack_config_for("scale")).violations
               if v.policy == "no-literal-secrets"}
    assert got == offline and [u for u, _ in offline] == [literal["urn"]]
