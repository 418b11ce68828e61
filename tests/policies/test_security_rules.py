"""Security rules: one compliant baseline per resource type, and failing cases that change one field.

Every case runs through ``policies.engine.evaluate`` (the policy objects CrossGuard registers, with props wrapped in
pulumi_policy's unknown-checking proxy), and asserts the rule's name and message.
"""

import json

import pytest

from tests.policies.kit import found, res, run, violations, with_

EKS = "aws:eks/cluster:Cluster"
CLUSTER = {
    "roleArn": "arn:aws:iam::123456789012:role/eks",
    "vpcConfig": {"subnetIds": ["subnet-a", "subnet-b"], "endpointPrivateAccess": True,
                  "endpointPublicAccess": False},
    "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"}},
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
}


def eks(inputs):
    return [res(EKS, "eks", inputs)]


class TestEksPublicEndpoint:
    rule = "eks-public-endpoint-restricted"

    def test_private_endpoint_passes(self):
        assert violations(eks(CLUSTER), self.rule) == []

    def test_public_endpoint_with_listed_cidrs_passes(self):
        ok = with_(with_(CLUSTER, "vpcConfig.endpointPublicAccess", True), "vpcConfig.publicAccessCidrs",
                   ["203.0.113.0/24"])
        assert violations(eks(ok), self.rule) == []

    def test_open_to_world_fails(self):
        bad = with_(with_(CLUSTER, "vpcConfig.endpointPublicAccess", True), "vpcConfig.publicAccessCidrs",
                    ["10.0.0.0/8", "0.0.0.0/0"])
        assert violations(eks(bad), self.rule) == [
            "vpcConfig.publicAccessCidrs contains 0.0.0.0/0: the Kubernetes API is open to the world"]

    def test_unset_public_access_is_the_insecure_aws_default(self):
        bad = with_(CLUSTER, "vpcConfig.endpointPublicAccess", None)
        [msg] = violations(eks(bad), self.rule)
        assert "the AWS default when unset" in msg and "0.0.0.0/0" in msg


class TestEksSecretsAndLogs:
    def test_secrets_encryption(self):
        assert violations(eks(CLUSTER), "eks-secrets-encryption") == []
        for bad in (with_(CLUSTER, "encryptionConfig", None),
                    with_(CLUSTER, "encryptionConfig.resources", ["configmaps"]),
                    with_(CLUSTER, "encryptionConfig.provider", {})):
            [msg] = violations(eks(bad), "eks-secrets-encryption")
            assert "does not encrypt 'secrets' with a KMS key" in msg

    def test_control_plane_logs(self):
        assert violations(eks(CLUSTER), "eks-control-plane-logging") == []
        bad = with_(CLUSTER, "enabledClusterLogTypes", ["api"])
        assert violations(eks(bad), "eks-control-plane-logging") == [
            "enabledClusterLogTypes is missing audit, authenticator (enabled: api)"]

    def test_required_log_types_are_configurable(self):
        bad = with_(CLUSTER, "enabledClusterLogTypes", ["api", "audit", "authenticator"])
        msgs = violations(eks(bad), "eks-control-plane-logging",
                          overrides={"eks-control-plane-logging": {"requiredLogTypes": ["api", "scheduler"]}})
        assert msgs == ["enabledClusterLogTypes is missing scheduler (enabled: api, audit, authenticator)"]


LT = "aws:ec2/launchTemplate:LaunchTemplate"
TEMPLATE = {
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "volumeSize": 200}}],
}


class TestNodeMetadataAndDisks:
    def test_imdsv2(self):
        assert violations([res(LT, "lt", TEMPLATE)], "imdsv2-required") == []
        [msg] = violations([res(LT, "lt", with_(TEMPLATE, "metadataOptions.httpTokens", "optional"))], "imdsv2-required")
        assert msg.startswith("metadataOptions.httpTokens is 'optional': IMDSv1 stays enabled")
        [msg] = violations([res(LT, "lt", with_(TEMPLATE, "metadataOptions", None))], "imdsv2-required")
        assert "unset (AWS default: optional)" in msg

    def test_metadata_disabled_passes_imdsv2(self):
        off = with_(TEMPLATE, "metadataOptions", {"httpEndpoint": "disabled"})
        assert violations([res(LT, "lt", off)], "imdsv2-required") == []

    def test_hop_limit(self):
        two = with_(TEMPLATE, "metadataOptions.httpPutResponseHopLimit", 2)
        assert violations([res(LT, "lt", two)], "imds-hop-limit") == []
        three = with_(TEMPLATE, "metadataOptions.httpPutResponseHopLimit", 3)
        assert violations([res(LT, "lt", three)], "imds-hop-limit") == [
            "metadataOptions.httpPutResponseHopLimit is 3 (> 2): containers several hops away can read IMDS"]
        assert violations([res(LT, "lt", two)], "imds-hop-limit",
                          overrides={"imds-hop-limit": {"maxHopLimit": 1}}) != []

    def test_ebs_encrypted(self):
        assert violations([res(LT, "lt", TEMPLATE)], "ebs-encrypted") == []
        bad = with_(TEMPLATE, "blockDeviceMappings.0.ebs.encrypted", "false")
        assert violations([res(LT, "lt", bad)], "ebs-encrypted") == [
            "blockDeviceMappings[0] (/dev/xvda) has ebs.encrypted='false'"]
        assert violations([res("aws:ebs/volume:Volume", "v", {"size": 10})], "ebs-encrypted") == [
            "encrypted is not true"]
        assert violations([res("aws:ebs/volume:Volume", "v", {"size": 10, "encrypted": True})], "ebs-encrypted") == []


NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_CLASS_SPEC = {"spec": {"role": "node-role", "amiSelectorTerms": [{"alias": "al2023@latest"}],
                            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
                            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True,
                                                     "ebs": {"volumeSize": "200Gi", "encrypted": True}}]}}


class TestKarpenterNodeClasses:
    """Karpenter starts nodes from its EC2NodeClass: the same metadata and disk rules as a launch template."""

    def test_compliant_and_crd_defaults_pass(self):
        for rule in ("imdsv2-required", "imds-hop-limit", "ebs-encrypted"):
            assert violations([res(NODE_CLASS, "nc", NODE_CLASS_SPEC)], rule) == []
        # an unset metadataOptions takes the CRD's defaults (required, hop limit 1)
        assert violations([res(NODE_CLASS, "nc", with_(NODE_CLASS_SPEC, "spec.metadataOptions", None))],
                          "imdsv2-required") == []

    def test_optional_tokens_fail(self):
        bad = with_(NODE_CLASS_SPEC, "spec.metadataOptions.httpTokens", "optional")
        [msg] = violations([res(NODE_CLASS, "nc", bad)], "imdsv2-required")
        assert msg.startswith("spec.metadataOptions.httpTokens is 'optional': IMDSv1 stays enabled on the nodes "
                              "Karpenter starts")

    def test_hop_limit_fails_above_the_maximum(self):
        bad = with_(NODE_CLASS_SPEC, "spec.metadataOptions.httpPutResponseHopLimit", 3)
        assert violations([res(NODE_CLASS, "nc", bad)], "imds-hop-limit") == [
            "spec.metadataOptions.httpPutResponseHopLimit is 3 (> 2): containers several hops away can read IMDS"]

    def test_unencrypted_or_unset_volume_fails(self):
        off = with_(NODE_CLASS_SPEC, "spec.blockDeviceMappings.0.ebs.encrypted", False)
        assert violations([res(NODE_CLASS, "nc", off)], "ebs-encrypted") == [
            "spec.blockDeviceMappings[0] (/dev/xvda) has ebs.encrypted=False"]
        unset = with_(NODE_CLASS_SPEC, "spec.blockDeviceMappings.0.ebs.encrypted", None)
        assert violations([res(NODE_CLASS, "nc", unset)], "ebs-encrypted") == [
            "spec.blockDeviceMappings[0] (/dev/xvda) has ebs.encrypted=None"]


NG = "aws:eks/nodeGroup:NodeGroup"


class TestSsh:
    def test_node_group_remote_access(self):
        ok = {"remoteAccess": {"ec2SshKey": "ops", "sourceSecurityGroupIds": ["sg-bastion"]}}
        assert violations([res(NG, "ng", ok)], "node-group-ssh-restricted") == []
        assert violations([res(NG, "ng", {})], "node-group-ssh-restricted") == []
        [msg] = violations([res(NG, "ng", {"remoteAccess": {"ec2SshKey": "ops"}})], "node-group-ssh-restricted")
        assert "opens port 22 on the nodes to 0.0.0.0/0" in msg

    @pytest.mark.parametrize("type_,inputs,expected", [
        ("aws:ec2/securityGroup:SecurityGroup",
         {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
                      {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]},
         "ingress[1] allows port 22 from 0.0.0.0/0"),
        ("aws:ec2/securityGroup:SecurityGroup",
         {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
         "ingress[0] allows port 22 from ::/0"),
        ("aws:ec2/securityGroupRule:SecurityGroupRule",
         {"type": "ingress", "protocol": "tcp", "fromPort": 0, "toPort": 1024, "cidrBlocks": ["0.0.0.0/0"]},
         "allows port 22 from 0.0.0.0/0"),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
         {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"},
         "ingress rule allows port 22 from the internet"),
    ])
    def test_security_group_ssh_from_internet_fails(self, type_, inputs, expected):
        assert violations([res(type_, "sg", inputs)], "security-group-ssh-not-public") == [expected]

    @pytest.mark.parametrize("type_,inputs", [
        ("aws:ec2/securityGroup:SecurityGroup",
         {"ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
                      {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/16"]}]}),
        ("aws:ec2/securityGroupRule:SecurityGroupRule",
         {"type": "egress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
         {"ipProtocol": "tcp", "fromPort": 6379, "toPort": 6379, "referencedSecurityGroupId": "sg-nodes"}),
    ])
    def test_restricted_or_other_ports_pass(self, type_, inputs):
        assert violations([res(type_, "sg", inputs)], "security-group-ssh-not-public") == []


RG = "aws:elasticache/replicationGroup:ReplicationGroup"
PW = "random:index/randomPassword:RandomPassword"
CACHE = {"engine": "valkey", "engineVersion": "8.2", "transitEncryptionEnabled": True, "atRestEncryptionEnabled": True,
         "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k", "userGroupIds": ["ug-1"], "numCacheClusters": 2,
         "automaticFailoverEnabled": True, "multiAzEnabled": True}


class TestElastiCache:
    def test_compliant_cache_passes_every_cache_security_rule(self):
        report = run([res(RG, "cache", CACHE)])
        for rule in ("elasticache-transit-encryption", "elasticache-at-rest-encryption", "elasticache-auth-required",
                     "elasticache-auth-token-not-literal"):
            assert found(report, rule) == [], rule

    def test_transit(self):
        assert violations([res(RG, "c", with_(CACHE, "transitEncryptionEnabled", None))],
                          "elasticache-transit-encryption") == [
            "transitEncryptionEnabled is not true: clients talk to the cache in plaintext"]
        preferred = with_(CACHE, "transitEncryptionMode", "preferred")
        assert violations([res(RG, "c", preferred)], "elasticache-transit-encryption") == [
            "transitEncryptionMode is 'preferred': plaintext connections are still accepted"]

    def test_at_rest(self):
        [msg] = violations([res(RG, "c", with_(CACHE, "atRestEncryptionEnabled", False))],
                           "elasticache-at-rest-encryption")
        assert msg.startswith("atRestEncryptionEnabled is not true")
        [msg] = violations([res(RG, "c", with_(CACHE, "kmsKeyId", None))], "elasticache-at-rest-encryption")
        assert msg.startswith("kmsKeyId is unset")
        assert violations([res(RG, "c", with_(CACHE, "kmsKeyId", None))], "elasticache-at-rest-encryption",
                          overrides={"elasticache-at-rest-encryption": {"requireCustomerManagedKey": False}}) == []

    def test_auth(self):
        [msg] = violations([res(RG, "c", with_(CACHE, "userGroupIds", None))], "elasticache-auth-required")
        assert msg.startswith("neither authToken nor userGroupIds is set")

    def test_literal_auth_token_fails(self):
        literal = with_(with_(CACHE, "userGroupIds", None), "authToken", "hunter2hunter2hunter2")
        [msg] = violations([res(RG, "cache", literal)], "elasticache-auth-token-not-literal")
        assert msg.startswith("cache: authToken does not come from a generated secret")

    def test_generated_auth_token_passes(self):
        pw = res(PW, "cache-token", {"length": 32})
        secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "x" * 32}
        token = with_(with_(CACHE, "userGroupIds", None), "authToken", secret)
        cache = res(RG, "cache", token, deps=[pw], property_dependencies={"authToken": [pw]})
        report = run([pw, cache])
        assert found(report, "elasticache-auth-token-not-literal") == []
        assert found(report, "elasticache-auth-required") == []

    def test_property_dependencies_win_over_other_dependencies(self):
        # the cache depends on a RandomPassword for something else; the token itself is a literal
        pw = res(PW, "other", {"length": 32})
        token = with_(CACHE, "authToken", "literal-token-literal-token")
        cache = res(RG, "cache", token, deps=[pw], property_dependencies={"authToken": []})
        assert len(violations([pw, cache], "elasticache-auth-token-not-literal")) == 1


EC = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


class TestSageMakerKms:
    def variant(self, instance):
        return {"productionVariants": [{"variantName": "v", "modelName": "m", "instanceType": instance,
                                        "initialInstanceCount": 1}]}

    def test_ebs_only_instance_needs_a_key(self):
        assert violations([res(EC, "ec", {**self.variant("ml.inf2.xlarge"), "kmsKeyArn": "arn:k"})],
                          "sagemaker-endpoint-kms") == []
        [msg] = violations([res(EC, "ec", self.variant("ml.inf2.xlarge"))], "sagemaker-endpoint-kms")
        assert msg.startswith("kmsKeyArn is unset: the ML storage volume of ml.inf2.xlarge")

    def test_local_nvme_instance_must_not_set_a_key(self):
        assert violations([res(EC, "ec", self.variant("ml.g5.2xlarge"))], "sagemaker-endpoint-kms") == []
        [msg] = violations([res(EC, "ec", {**self.variant("ml.g5.2xlarge"), "kmsKeyArn": "arn:k"})],
                           "sagemaker-endpoint-kms")
        assert "ml.g5.2xlarge has local NVMe storage: CreateEndpointConfig fails" in msg


def policy_doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class TestIam:
    def test_sagemaker_full_access_fails(self):
        att = res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "att",
                  {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"})
        [msg] = violations([att], "iam-no-broad-managed-policies")
        assert msg.startswith("attaches the AWS managed policy AmazonSageMakerFullAccess")
        role = res("aws:iam/role:Role", "role", {"assumeRolePolicy": "{}", "managedPolicyArns": [
            "arn:aws:iam::aws:policy/AdministratorAccess"]})
        assert len(violations([role], "iam-no-broad-managed-policies")) == 1

    def test_narrow_managed_policy_passes(self):
        att = res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "att",
                  {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"})
        assert violations([att], "iam-no-broad-managed-policies") == []

    def test_wildcard_actions(self):
        ok = res("aws:iam/policy:Policy", "p", {"policy": policy_doc(
            {"Effect": "Allow", "Action": ["bedrock:InvokeModel"], "Resource": "arn:aws:bedrock:*:1:x/y"},
            {"Effect": "Deny", "Action": "*", "Resource": "*"})})
        assert violations([ok], "iam-no-wildcard-actions") == []
        bad = res("aws:iam/policy:Policy", "p", {"policy": policy_doc(
            {"Sid": "All", "Effect": "Allow", "Action": ["bedrock:*", "s3:GetObject"], "Resource": "arn:x"},
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})})
        assert violations([bad], "iam-no-wildcard-actions") == [
            "policy Statement[0] (All) allows bedrock:*",
            "policy Statement[1] allows NotAction: every action except a few"]

    def test_wildcard_actions_in_role_inline_policy(self):
        role = res("aws:iam/role:Role", "role", {"assumeRolePolicy": "{}", "inlinePolicies": [
            {"name": "x", "policy": policy_doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}]})
        assert violations([role], "iam-no-wildcard-actions") == ["inlinePolicies[0] Statement[0] allows *"]

    def test_wildcard_resources(self):
        ok = res("aws:iam/rolePolicy:RolePolicy", "p", {"role": "r", "policy": policy_doc(
            {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups",
                                           "ecr:GetAuthorizationToken"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["autoscaling:SetDesiredCapacity"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/prod": "owned"}}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::models/llama/*"})})
        assert violations([ok], "iam-no-wildcard-resources") == []
        bad = res("aws:iam/rolePolicy:RolePolicy", "p", {"role": "r", "policy": policy_doc(
            {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:CreateSecurityGroup"], "Resource": "*"})})
        assert violations([bad], "iam-no-wildcard-resources") == [
            "policy Statement[0] grants ec2:CreateSecurityGroup on Resource '*' without a scoping condition"]

    @pytest.mark.parametrize("condition,scoped", [
        ({"ArnEquals": {"ec2:Vpc": "arn:aws:ec2:us-east-1:1:vpc/vpc-1"}}, True),
        ({"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}, True),
        ({"Null": {"aws:RequestTag/elbv2.k8s.aws/cluster": "false"}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, False),
    ])
    def test_scoping_conditions(self, condition, scoped):
        doc = res("aws:iam/policy:Policy", "p", {"policy": policy_doc(
            {"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*", "Condition": condition})})
        assert (violations([doc], "iam-no-wildcard-resources") == []) is scoped


LISTENER = "aws:lb/listener:Listener"
LB = "aws:lb/loadBalancer:LoadBalancer"


class TestAlb:
    def test_http_listener_redirect(self):
        redirect = {"protocol": "HTTP", "port": 80, "defaultActions": [
            {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}]}
        assert violations([res(LISTENER, "http", redirect)], "alb-http-redirects-to-https") == []
        forward = with_(redirect, "defaultActions", [{"type": "forward", "targetGroupArn": "arn:tg"}])
        assert violations([res(LISTENER, "http", forward)], "alb-http-redirects-to-https") == [
            "HTTP listener's default actions are [forward], not a single redirect to HTTPS"]
        # the alb alias token is judged too (AWSGuard's elb rules miss aliases)
        assert violations([res("aws:alb/listener:Listener", "http", forward)], "alb-http-redirects-to-https") != []

    def test_tls_policy(self):
        https = {"protocol": "HTTPS", "port": 443, "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}
        assert violations([res(LISTENER, "https", https)], "alb-tls-1-2-minimum") == []
        for weak in ("ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS13-1-0-2021-06", "ELBSecurityPolicy-TLS-1-1-2017-01"):
            [msg] = violations([res(LISTENER, "https", with_(https, "sslPolicy", weak))], "alb-tls-1-2-minimum")
            assert msg == f"sslPolicy is {weak!r}: TLS 1.0/1.1 would be accepted"
        [msg] = violations([res(LISTENER, "https", with_(https, "sslPolicy", None))], "alb-tls-1-2-minimum")
        assert "unset (API default ELBSecurityPolicy-2016-08)" in msg

    def test_drop_invalid_headers(self):
        assert violations([res(LB, "alb", {"dropInvalidHeaderFields": True})], "alb-drop-invalid-headers") == []
        assert violations([res(LB, "alb", {})], "alb-drop-invalid-headers") == ["dropInvalidHeaderFields is not true"]
        assert violations([res(LB, "nlb", {"loadBalancerType": "network"})], "alb-drop-invalid-headers") == []

    def test_waf_on_public_alb_in_growth_and_scale(self):
        alb = res(LB, "alb", {"internal": False}, outputs={"arn": "arn:aws:elasticloadbalancing:lb/alb"})
        acl = res("aws:wafv2/webAcl:WebAcl", "acl", {"scope": "REGIONAL"})
        assoc = res("aws:wafv2/webAclAssociation:WebAclAssociation", "assoc",
                    {"resourceArn": "arn:aws:elasticloadbalancing:lb/alb", "webAclArn": "arn:acl"}, deps=[acl, alb])
        assert violations([alb, acl, assoc], "alb-waf-on-public", tier="growth") == []
        assert violations([alb], "alb-waf-on-public", tier="scale") == [
            "alb: internet-facing ALB has no WAFv2 web ACL association"]
        assert violations([alb], "alb-waf-on-public", tier="prototype") == []
        internal = res(LB, "alb", {"internal": True})
        assert violations([internal], "alb-waf-on-public", tier="scale") == []

    def test_ingress_annotations_are_judged(self):
        ing = res("kubernetes:networking.k8s.io/v1:Ingress", "ing", {"metadata": {"annotations": {
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]'}}})
        report = run([ing], tier="scale")
        assert found(report, "alb-http-redirects-to-https") == [
            "the Ingress listens on HTTP without alb.ingress.kubernetes.io/ssl-redirect: requests are served in plaintext"]
        assert found(report, "alb-tls-1-2-minimum") == [
            "alb.ingress.kubernetes.io/ssl-policy is unset (controller default ELBSecurityPolicy-2016-08): TLS 1.0/1.1 "
            "would be accepted"]
        assert found(report, "alb-waf-on-public") == [
            "ing: internet-facing Ingress has no alb.ingress.kubernetes.io/wafv2-acl-arn"]
        assert len(found(report, "alb-drop-invalid-headers")) == 1


class TestEcrAndS3:
    def test_ecr_immutable(self):
        repo = "aws:ecr/repository:Repository"
        assert violations([res(repo, "r", {"imageTagMutability": "IMMUTABLE"})], "ecr-immutable-tags") == []
        [msg] = violations([res(repo, "r", {})], "ecr-immutable-tags")
        assert msg.startswith("imageTagMutability is 'MUTABLE'")

    def test_ecr_scan(self):
        repo = "aws:ecr/repository:Repository"
        ok = res(repo, "r", {"imageScanningConfiguration": {"scanOnPush": True}})
        assert violations([ok], "ecr-scan-on-push") == []
        bad = res(repo, "r", {})
        [msg] = violations([bad], "ecr-scan-on-push")
        assert msg.startswith("r: imageScanningConfiguration.scanOnPush is not true")
        registry = res("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration", "scan", {
            "scanType": "ENHANCED", "rules": [{"scanFrequency": "CONTINUOUS_SCAN",
                                               "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]})
        assert violations([bad, registry], "ecr-scan-on-push") == []

    def test_s3_public_access_block(self):
        bucket = res("aws:s3/bucket:Bucket", "logs", {}, outputs={"id": "logs-123", "bucket": "logs-123"})
        flags = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
                 "restrictPublicBuckets": True}
        pab = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "logs-pab", {"bucket": "logs-123", **flags},
                  deps=[bucket])
        assert violations([bucket, pab], "s3-public-access-block") == []
        assert violations([bucket], "s3-public-access-block") == ["logs: no BucketPublicAccessBlock for this bucket"]
        half = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "logs-pab",
                   {"bucket": "logs-123", "blockPublicAcls": True, "ignorePublicAcls": True})
        assert violations([bucket, half], "s3-public-access-block") == [
            "logs: public access block leaves blockPublicPolicy, restrictPublicBuckets off"]

    def test_kms_rotation(self):
        key = "aws:kms/key:Key"
        assert violations([res(key, "k", {"enableKeyRotation": True})], "kms-key-rotation") == []
        assert violations([res(key, "k", {})], "kms-key-rotation") == ["enableKeyRotation is not true"]
        assert violations([res(key, "k", {"customerMasterKeySpec": "RSA_2048"})], "kms-key-rotation") == []


DEPLOY = "kubernetes:apps/v1:Deployment"


def deployment(container=None, pod=None, namespace="serving"):
    c = {"name": "app", "image": "registry.example/app:1.2.3",
         "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False}}
    c.update(container or {})
    spec = {"containers": [c]}
    spec.update(pod or {})
    return {"metadata": {"name": "app", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": spec}}}


class TestWorkloads:
    def test_baseline_passes(self):
        report = run([res(DEPLOY, "d", deployment())])
        for rule in ("k8s-no-privileged-containers", "k8s-run-as-non-root", "k8s-image-tag-pinned"):
            assert found(report, rule) == [], rule

    def test_privileged(self):
        bad = deployment({"securityContext": {"privileged": True, "runAsNonRoot": True}})
        assert violations([res(DEPLOY, "d", bad)], "k8s-no-privileged-containers") == ["container app runs privileged"]
        esc = deployment({"securityContext": {"allowPrivilegeEscalation": True, "runAsNonRoot": True}})
        assert violations([res(DEPLOY, "d", esc)], "k8s-no-privileged-containers") == [
            "container app sets allowPrivilegeEscalation=true"]
        assert violations([res(DEPLOY, "d", deployment({"securityContext": {"privileged": True}},
                                                       namespace="kube-system"))],
                          "k8s-no-privileged-containers") == []

    def test_root(self):
        root = deployment({"securityContext": {}})
        assert violations([res(DEPLOY, "d", root)], "k8s-run-as-non-root") == [
            "container app may run as root: neither runAsNonRoot=true nor a non-zero runAsUser"]
        uid0 = deployment({"securityContext": {"runAsUser": 0}}, {"securityContext": {"runAsNonRoot": True}})
        assert violations([res(DEPLOY, "d", uid0)], "k8s-run-as-non-root") == ["container app sets runAsUser=0 (root)"]
        pod_level = deployment({"securityContext": {}}, {"securityContext": {"runAsUser": 2000}})
        assert violations([res(DEPLOY, "d", pod_level)], "k8s-run-as-non-root") == []
        exempt = {"k8s-run-as-non-root": {"exemptImages": ["registry.example/app"]}}
        assert violations([res(DEPLOY, "d", root)], "k8s-run-as-non-root", overrides=exempt) == []

    @pytest.mark.parametrize("image,ok", [
        ("vllm/vllm-openai:v0.11.0", True), ("repo@sha256:" + "a" * 64, True), ("localhost:5000/app:1", True),
        ("vllm/vllm-openai:latest", False), ("vllm/vllm-openai", False), ("localhost:5000/app", False),
    ])
    def test_image_tags(self, image, ok):
        msgs = violations([res(DEPLOY, "d", deployment({"image": image}))], "k8s-image-tag-pinned")
        assert msgs == ([] if ok else [f"container app uses {image!r}: a floating tag changes under you"])

    def test_helm_versions(self):
        rel = "kubernetes:helm.sh/v3:Release"
        assert violations([res(rel, "r", {"chart": "keda", "version": "2.17.2"})], "helm-chart-version-pinned") == []
        assert violations([res(rel, "r", {"chart": "keda"})], "helm-chart-version-pinned") == [
            "chart 'keda' has no version: every install may pull a different chart"]
        assert violations([res(rel, "r", {"chart": "keda", "version": "^2.0"})], "helm-chart-version-pinned") == [
            "chart 'keda' version '^2.0' is a range, not an exact version"]
