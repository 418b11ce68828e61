"""Security rules for AWS resources: EKS control plane, node metadata and disks, SSH, ElastiCache, SageMaker, IAM, KMS.

The edge (ALB, WAF, S3 log buckets, ECR) is in ``security_edge``; Kubernetes workloads in ``security_workloads``.

Each rule judges resource inputs (camelCase wire names). Where AWS's default is the insecure choice (EKS public
endpoint, ElastiCache encryption, IMDSv1), an unset property is a violation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Iterable

from pulumi_policy import Severity

from policies._props import (
    SG_INGRESS_RULE,
    address_sources,
    as_list,
    as_map,
    get,
    has,
    is_false,
    json_doc,
    to_int,
    truthy,
)
from policies._rule import Rule, Subject, resource_policy, stack_policy

OPEN_CIDRS = ("0.0.0.0/0", "::/0")
EKS_CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
"""Karpenter's launch settings for the nodes it starts: metadata options and volumes under ``spec`` (its CRD defaults
IMDSv2 ``required`` and hop limit 1 field by field, so only an explicit value can weaken them; ``ebs.encrypted`` has
no default)."""
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
IAM_DOC_TYPES = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
IAM_ROLE = "aws:iam/role:Role"


# --- EKS control plane -----------------------------------------------------------------------------------------------

@resource_policy(Rule(
    id="eks-public-endpoint-restricted",
    title="EKS API endpoint not open to the world",
    description="An EKS cluster's public API endpoint must be off or limited to listed CIDRs (never 0.0.0.0/0).",
    concern="security", severity=Severity.CRITICAL,
    remediation="Set vpcConfig.endpointPublicAccess=false (reach the API through the VPC), or keep it on and set "
                "vpcConfig.publicAccessCidrs to your office/VPN ranges. EksClusterArgs: public_access_cidrs=[...].",
    checkov=("CKV_AWS_38", "CKV_AWS_39"),
), types={EKS_CLUSTER})
def eks_public_endpoint(s: Subject, cfg: dict) -> Iterable[str]:
    vpc = as_map(get(s.props, "vpcConfig"))
    if is_false(get(vpc, "endpointPublicAccess")):
        return
    cidrs = [str(c) for c in as_list(get(vpc, "publicAccessCidrs"))]
    if not cidrs:
        yield ("vpcConfig.endpointPublicAccess is on (the AWS default when unset) and vpcConfig.publicAccessCidrs is "
               "unset, so the Kubernetes API is reachable from 0.0.0.0/0")
        return
    wide = [c for c in cidrs if c in OPEN_CIDRS]
    if wide:
        yield f"vpcConfig.publicAccessCidrs contains {', '.join(wide)}: the Kubernetes API is open to the world"


@resource_policy(Rule(
    id="eks-secrets-encryption",
    title="EKS secrets envelope-encrypted with KMS",
    description="An EKS cluster must encrypt Kubernetes secrets with a KMS key (encryptionConfig for 'secrets').",
    concern="security", severity=Severity.HIGH,
    remediation="Set encryptionConfig={resources: ['secrets'], provider: {keyArn: <KMS key ARN>}} on the cluster "
                "(EksCluster creates a rotating key for this by default).",
    checkov=("CKV_AWS_58",),
), types={EKS_CLUSTER})
def eks_secrets_encryption(s: Subject, cfg: dict) -> Iterable[str]:
    configs = as_list(get(s.props, "encryptionConfig"))  # an object in pulumi-aws 7, a list in older versions
    for c in configs:
        if "secrets" in [str(r) for r in as_list(get(c, "resources"))] and has(as_map(get(c, "provider")), "keyArn"):
            return
    yield "encryptionConfig does not encrypt 'secrets' with a KMS key (provider.keyArn): secrets sit in etcd unencrypted by a key you control"


@resource_policy(Rule(
    id="eks-control-plane-logging",
    title="EKS control-plane audit logs on",
    description="An EKS cluster must ship the api, audit and authenticator control-plane logs to CloudWatch.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Add the missing types to enabledClusterLogTypes (EksClusterArgs.log_types).",
    checkov=("CKV_AWS_37",),
    config={"requiredLogTypes": {"type": "array", "items": {"type": "string"},
                                 "default": ["api", "audit", "authenticator"],
                                 "description": "Log types that must be enabled (checkov CKV_AWS_37 asks for all five)."}},
), types={EKS_CLUSTER})
def eks_logging(s: Subject, cfg: dict) -> Iterable[str]:
    enabled = {str(t) for t in as_list(get(s.props, "enabledClusterLogTypes"))}
    missing = [t for t in cfg["requiredLogTypes"] if t not in enabled]
    if missing:
        yield f"enabledClusterLogTypes is missing {', '.join(missing)} (enabled: {', '.join(sorted(enabled)) or 'none'})"


# --- Nodes: metadata service, disks, SSH --------------------------------------------------------------------------------

@resource_policy(Rule(
    id="imdsv2-required",
    title="IMDSv2 required on node launch templates",
    description="Launch templates, instances and Karpenter EC2NodeClasses must require IMDSv2 session tokens "
                "(IMDSv1 off).",
    concern="security", severity=Severity.HIGH,
    remediation="Set metadataOptions.httpTokens='required' (GpuNodeGroup's launch template and the Karpenter node "
                "classes do this).",
    checkov=("CKV_AWS_79",),
), types={LAUNCH_TEMPLATE, EC2_INSTANCE, EC2_NODE_CLASS})
def imdsv2_required(s: Subject, cfg: dict) -> Iterable[str]:
    if s.type == EC2_NODE_CLASS:
        tokens = get(s.props, "spec.metadataOptions.httpTokens")
        if tokens is not None and tokens != "required":
            yield (f"spec.metadataOptions.httpTokens is {tokens!r}: IMDSv1 stays enabled on the nodes Karpenter "
                   "starts, so any SSRF in a pod can read node credentials")
        return
    meta = as_map(get(s.props, "metadataOptions"))
    if get(meta, "httpEndpoint") == "disabled":
        return
    tokens = get(meta, "httpTokens")
    if tokens != "required":
        shown = repr(tokens) if tokens is not None else "unset (AWS default: optional)"
        yield f"metadataOptions.httpTokens is {shown}: IMDSv1 stays enabled, so any SSRF in a pod can read node credentials"


@resource_policy(Rule(
    id="imds-hop-limit",
    title="IMDS response hop limit at most 2",
    description="Launch templates must not let instance-metadata responses travel more than 2 network hops.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set metadataOptions.httpPutResponseHopLimit to 1 (pods cannot reach IMDS; use IRSA) or 2.",
    checkov=("CKV_AWS_341",),
    config={"maxHopLimit": {"type": "integer", "minimum": 1, "default": 2,
                            "description": "Largest hop limit allowed (checkov CKV_AWS_341 wants 1)."}},
), types={LAUNCH_TEMPLATE, EC2_INSTANCE, EC2_NODE_CLASS})
def imds_hop_limit(s: Subject, cfg: dict) -> Iterable[str]:
    where = "spec.metadataOptions" if s.type == EC2_NODE_CLASS else "metadataOptions"
    limit = to_int(get(s.props, f"{where}.httpPutResponseHopLimit"))
    if limit is not None and limit > cfg["maxHopLimit"]:
        yield f"{where}.httpPutResponseHopLimit is {limit} (> {cfg['maxHopLimit']}): containers several hops away can read IMDS"


@resource_policy(Rule(
    id="ebs-encrypted",
    title="EBS volumes encrypted",
    description="Every EBS volume a launch template, instance, Karpenter EC2NodeClass or volume resource defines must "
                "be encrypted.",
    concern="security", severity=Severity.HIGH,
    remediation="Set ebs.encrypted='true' on each blockDeviceMappings entry (optionally ebs.kmsKeyId; on an "
                "EC2NodeClass, spec.blockDeviceMappings[].ebs.encrypted: true), or encrypted=true on aws.ebs.Volume.",
    checkov=("CKV_AWS_3", "CKV_AWS_8"),
), types={LAUNCH_TEMPLATE, EC2_INSTANCE, EC2_NODE_CLASS, "aws:ebs/volume:Volume"})
def ebs_encrypted(s: Subject, cfg: dict) -> Iterable[str]:
    if s.type == EC2_NODE_CLASS:  # no CRD default: an unset value leaves it to the account's EBS default
        for i, mapping in enumerate(as_list(get(s.props, "spec.blockDeviceMappings"))):
            ebs = get(mapping, "ebs")
            if ebs is not None and get(ebs, "encrypted") is not True:
                yield (f"spec.blockDeviceMappings[{i}] ({get(mapping, 'deviceName')}) has ebs.encrypted="
                       f"{get(ebs, 'encrypted')!r}")
        return
    if s.type == "aws:ebs/volume:Volume":
        if not truthy(get(s.props, "encrypted")):
            yield "encrypted is not true"
        return
    if s.type == EC2_INSTANCE:
        if has(s.props, "rootBlockDevice") and not truthy(get(s.props, "rootBlockDevice.encrypted")):
            yield "rootBlockDevice.encrypted is not true"
        for i, dev in enumerate(as_list(get(s.props, "ebsBlockDevices"))):
            if not truthy(get(dev, "encrypted")):
                yield f"ebsBlockDevices[{i}] ({get(dev, 'deviceName')}) is not encrypted"
        return
    for i, mapping in enumerate(as_list(get(s.props, "blockDeviceMappings"))):
        ebs = get(mapping, "ebs")
        if ebs is not None and not truthy(get(ebs, "encrypted")):
            yield f"blockDeviceMappings[{i}] ({get(mapping, 'deviceName')}) has ebs.encrypted={get(ebs, 'encrypted')!r}"


@resource_policy(Rule(
    id="node-group-ssh-restricted",
    title="No SSH from 0.0.0.0/0 on node groups",
    description="An EKS node group with an SSH key must restrict SSH to source security groups.",
    concern="security", severity=Severity.HIGH,
    remediation="Remove remoteAccess (use SSM Session Manager), or set remoteAccess.sourceSecurityGroupIds.",
    checkov=("CKV_AWS_100",),
), types={NODE_GROUP})
def node_group_ssh(s: Subject, cfg: dict) -> Iterable[str]:
    remote = as_map(get(s.props, "remoteAccess"))
    if has(remote, "ec2SshKey") and not as_list(get(remote, "sourceSecurityGroupIds")):
        yield ("remoteAccess.ec2SshKey is set without sourceSecurityGroupIds: EKS then opens port 22 on the nodes to "
               "0.0.0.0/0")


def _covers_ssh(proto: Any, from_port: Any, to_port: Any) -> bool:
    if str(proto) in ("-1", "all"):
        return True
    if str(proto).lower() not in ("tcp", "6"):
        return False
    lo, hi = to_int(from_port), to_int(to_port)
    if lo is None or hi is None:
        return False
    return lo <= 22 <= hi or (lo == -1 or hi == -1)


@resource_policy(Rule(
    id="security-group-ssh-not-public",
    title="No security group opens SSH to the internet",
    description="Security groups and rules must not allow port 22 from 0.0.0.0/0 or ::/0.",
    concern="security", severity=Severity.HIGH,
    remediation="Drop the rule (use SSM Session Manager) or limit its source to a bastion security group or VPN CIDR.",
    checkov=("CKV_AWS_24",),
), types={"aws:ec2/securityGroup:SecurityGroup", "aws:ec2/securityGroupRule:SecurityGroupRule", SG_INGRESS_RULE})
def sg_ssh_public(s: Subject, cfg: dict) -> Iterable[str]:
    p = s.props
    if s.type == SG_INGRESS_RULE:
        src = [v for _, v in address_sources(s.type, p)]
        if any(c in OPEN_CIDRS for c in src) and _covers_ssh(get(p, "ipProtocol"), get(p, "fromPort"), get(p, "toPort")):
            yield "ingress rule allows port 22 from the internet"
        return
    rules = [p] if s.type == "aws:ec2/securityGroupRule:SecurityGroupRule" else as_list(get(p, "ingress"))
    if s.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and get(p, "type") != "ingress":
        return
    for i, r in enumerate(rules):
        open_src = [c for _, c in address_sources(s.type, r) if c in OPEN_CIDRS]
        if open_src and _covers_ssh(get(r, "protocol"), get(r, "fromPort"), get(r, "toPort")):
            where = "" if s.type != "aws:ec2/securityGroup:SecurityGroup" else f"ingress[{i}] "
            yield f"{where}allows port 22 from {', '.join(open_src)}"


# --- ElastiCache ---------------------------------------------------------------------------------------------------------

@resource_policy(Rule(
    id="elasticache-transit-encryption",
    title="ElastiCache encrypted in transit",
    description="ElastiCache replication groups and clusters must require TLS.",
    concern="security", severity=Severity.HIGH,
    remediation="Set transitEncryptionEnabled=true and leave transitEncryptionMode unset or 'required'.",
    checkov=("CKV_AWS_30",),
), types={REPLICATION_GROUP, CACHE_CLUSTER})
def cache_transit(s: Subject, cfg: dict) -> Iterable[str]:
    if not truthy(get(s.props, "transitEncryptionEnabled")):
        yield "transitEncryptionEnabled is not true: clients talk to the cache in plaintext"
    elif get(s.props, "transitEncryptionMode") == "preferred":
        yield "transitEncryptionMode is 'preferred': plaintext connections are still accepted"


@resource_policy(Rule(
    id="elasticache-at-rest-encryption",
    title="ElastiCache encrypted at rest with a customer-managed key",
    description="ElastiCache replication groups must encrypt data at rest, with a KMS key you manage.",
    concern="security", severity=Severity.HIGH,
    remediation="Set atRestEncryptionEnabled=true and kmsKeyId=<KMS key ARN> (SemanticCache does both).",
    checkov=("CKV_AWS_29", "CKV_AWS_191"),
    config={"requireCustomerManagedKey": {"type": "boolean", "default": True,
                                          "description": "Also require kmsKeyId (CKV_AWS_191)."}},
), types={REPLICATION_GROUP})
def cache_at_rest(s: Subject, cfg: dict) -> Iterable[str]:
    if not truthy(get(s.props, "atRestEncryptionEnabled")):
        yield "atRestEncryptionEnabled is not true: snapshots and swap hold cached prompts and answers unencrypted"
    elif cfg["requireCustomerManagedKey"] and not has(s.props, "kmsKeyId"):
        yield "kmsKeyId is unset: data is encrypted with the AWS-owned key, not one you can audit or revoke"


@resource_policy(Rule(
    id="elasticache-auth-required",
    title="ElastiCache requires authentication",
    description="ElastiCache replication groups must require clients to authenticate (RBAC user group or auth token).",
    concern="security", severity=Severity.HIGH,
    remediation="Set userGroupIds (RBAC) or authToken from a random.RandomPassword; both need transit encryption.",
    checkov=("CKV_AWS_31",),
), types={REPLICATION_GROUP})
def cache_auth(s: Subject, cfg: dict) -> Iterable[str]:
    if not has(s.props, "authToken") and not as_list(get(s.props, "userGroupIds")):
        yield "neither authToken nor userGroupIds is set: anyone who reaches port 6379 can read and write the cache"


SECRET_SOURCES_DEFAULT = ["random:index/randomPassword:RandomPassword"]


@stack_policy(Rule(
    id="elasticache-auth-token-not-literal",
    title="ElastiCache auth token generated, never a literal",
    description="An ElastiCache auth token must come from a generated secret resource, not a literal in code or config.",
    concern="security", severity=Severity.HIGH,
    remediation="Create the token with random.RandomPassword (special characters limited to those ElastiCache "
                "accepts) and pass its result; store it in Secrets Manager for clients.",
    config={"allowedSources": {"type": "array", "items": {"type": "string"}, "default": SECRET_SOURCES_DEFAULT,
                               "description": "Resource types the token may be derived from."}},
))
def cache_token_literal(resources: Sequence[Any], cfg: dict) -> Iterable[tuple[str, str | None]]:
    allowed = set(cfg["allowedSources"])
    for r in resources:
        if r.resource_type != REPLICATION_GROUP or "authToken" not in list(r.props):
            continue
        prop_deps = getattr(r, "property_dependencies", None) or {}
        sources = prop_deps.get("authToken") if "authToken" in prop_deps else getattr(r, "dependencies", [])
        if not any(getattr(d, "resource_type", None) in allowed for d in sources or []):
            yield (f"{r.name}: authToken does not come from a generated secret ({', '.join(sorted(allowed))}); "
                   "a literal token sits in source control or stack config", r.urn)


# --- SageMaker and IAM -------------------------------------------------------------------------------------------------

LOCAL_NVME_FAMILIES: frozenset[str] = frozenset("""
c1 c3 c5ad c5d c6gd c6id c7gd c8gd c8id c9gd d2 d3 d3en f2 g4dn g5 g6 g6e g6f g7 g7e gr6 gr6f h1 hpc6id i2 i3
i3en i4g i4i i7i i7ie i8g i8ge im4gn is4gen m1 m2 m3 m5ad m5d m5dn m6gd m6id m6idn m7gd m8gd m8id m8idb m8idn
m9gd mac-m4 mac-m4pro p3dn p4d p4de p5 p5e p5en p6-b200 p6-b300 r3 r5ad r5d r5dn r6gd r6id r6idn r7gd r8gd
r8id r8idb r8idn r9gd trn1 trn1n trn2 trn2u x1 x1e x2gd x2idn x2iedn x8aedz z1d
""".split())
"""Instance families with local NVMe instance storage (EC2 DescribeInstanceTypes ``InstanceStorageSupported``, from
moto 5.2.5's bundled AWS data, checked 2026-11). SageMaker rejects a KMS key for endpoint volumes on these
("You can't request a KmsKeyId when using an instance type with local storage", CreateEndpointConfig API reference);
their local volumes are encrypted by the instance's hardware module instead."""


def has_local_storage(instance_type: str) -> bool:
    it = instance_type.lower()
    it = it[3:] if it.startswith("ml.") else it
    return it.split(".", 1)[0] in LOCAL_NVME_FAMILIES


@resource_policy(Rule(
    id="sagemaker-endpoint-kms",
    title="SageMaker endpoint volumes encrypted with KMS",
    description="A SageMaker endpoint configuration must set a KMS key for its ML storage volumes, except when a "
                "variant runs on an instance type with local NVMe storage, where SageMaker forbids the key "
                "(CreateEndpointConfig KmsKeyId) and the instance's hardware module encrypts the local volume.",
    concern="security", severity=Severity.HIGH,
    remediation="Set kmsKeyArn on the endpoint configuration (SageMakerLmiEndpointArgs.kms_key_arn); leave it unset "
                "only for local-NVMe instance types (ml.g5, ml.g6, ml.p4d, ml.p5, ...).",
    checkov=("CKV_AWS_98",),
), types={"aws:sagemaker/endpointConfiguration:EndpointConfiguration"})
def sagemaker_kms(s: Subject, cfg: dict) -> Iterable[str]:
    types = [str(get(v, "instanceType")) for v in as_list(get(s.props, "productionVariants")) if get(v, "instanceType")]
    local = [t for t in types if has_local_storage(t)]
    ebs_only = [t for t in types if not has_local_storage(t)]
    if has(s.props, "kmsKeyArn"):
        if local:
            yield (f"kmsKeyArn is set but {', '.join(local)} has local NVMe storage: CreateEndpointConfig fails "
                   "(the local volume is hardware-encrypted; drop the key for this variant)")
    elif not local and (ebs_only or not types):  # with any local-NVMe variant the API refuses a key altogether
        yield (f"kmsKeyArn is unset: the ML storage volume of {', '.join(ebs_only) or 'the endpoint'} (model weights, "
               "logs) is encrypted only with an AWS-managed key")


FORBIDDEN_MANAGED_DEFAULT = ["AmazonSageMakerFullAccess", "AdministratorAccess"]
ATTACHMENT_TYPES = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
}


@resource_policy(Rule(
    id="iam-no-broad-managed-policies",
    title="No AmazonSageMakerFullAccess (or admin) on package roles",
    description="Roles the package creates must not attach AmazonSageMakerFullAccess or AdministratorAccess.",
    concern="security", severity=Severity.HIGH,
    remediation="Attach a customer-managed policy with only the actions the role needs (ECR pull for the image, S3 "
                "read of the model prefix, CloudWatch Logs, KMS decrypt), scoped to those resources.",
    checkov=("CKV_AWS_274",),
    config={"forbiddenPolicies": {"type": "array", "items": {"type": "string"}, "default": FORBIDDEN_MANAGED_DEFAULT,
                                  "description": "AWS managed policy names that may not be attached."}},
), types={*ATTACHMENT_TYPES, IAM_ROLE})
def iam_broad_managed(s: Subject, cfg: dict) -> Iterable[str]:
    arns = ([get(s.props, ATTACHMENT_TYPES[s.type])] if s.type in ATTACHMENT_TYPES
            else as_list(get(s.props, "managedPolicyArns")))
    for arn in arns:
        if not isinstance(arn, str):
            continue
        name = arn.rsplit("/", 1)[-1]
        if name in cfg["forbiddenPolicies"]:
            yield f"attaches the AWS managed policy {name} ({arn}): far broader than the role needs"


def _policy_docs(s: Subject) -> list[tuple[str, Mapping[str, Any]]]:
    docs = []
    if s.type in IAM_DOC_TYPES:
        doc = json_doc(get(s.props, IAM_DOC_TYPES[s.type]))
        if doc is not None:
            docs.append(("policy", doc))
    elif s.type == IAM_ROLE:
        for i, p in enumerate(as_list(get(s.props, "inlinePolicies"))):
            doc = json_doc(get(p, "policy"))
            if doc is not None:
                docs.append((f"inlinePolicies[{i}]", doc))
    return docs


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [st for st in as_list(get(doc, "Statement")) if isinstance(st, Mapping)]


def _sid(st: Mapping[str, Any], i: int) -> str:
    sid = get(st, "Sid")
    return f"Statement[{i}]" + (f" ({sid})" if sid else "")


@resource_policy(Rule(
    id="iam-no-wildcard-actions",
    title="No '*' actions in package IAM policies",
    description="IAM policies the package creates must not allow '*' or '<service>:*' actions (or NotAction).",
    concern="security", severity=Severity.HIGH,
    remediation="List the exact actions the workload calls (for example bedrock:InvokeModel and "
                "bedrock:InvokeModelWithResponseStream instead of bedrock:*).",
    checkov=("CKV_AWS_63", "CKV_AWS_62"),
), types={*IAM_DOC_TYPES, IAM_ROLE})
def iam_wildcard_actions(s: Subject, cfg: dict) -> Iterable[str]:
    for where, doc in _policy_docs(s):
        for i, st in enumerate(_statements(doc)):
            if get(st, "Effect") != "Allow":
                continue
            if has(st, "NotAction"):
                yield f"{where} {_sid(st, i)} allows NotAction: every action except a few"
            wild = [a for a in as_list(get(st, "Action")) if isinstance(a, str) and (a == "*" or a.endswith(":*"))]
            if wild:
                yield f"{where} {_sid(st, i)} allows {', '.join(wild)}"


UNSCOPED_OK_DEFAULT = [
    # account-level calls without resource-level permissions (IAM Service Authorization Reference)
    "ecr:GetAuthorizationToken", "sts:GetCallerIdentity", "cloudwatch:PutMetricData", "cloudwatch:GetMetricData",
    "ec2:GetInstanceTypesFromInstanceRequirements", "acm:ListCertificates", "iam:ListServerCertificates",
    "pricing:GetProducts",  # the AWS Price List API has no resource types (Karpenter reads on-demand prices)
    # read-only Get calls the AWS Load Balancer Controller makes
    "ec2:GetCoipPoolUsage", "ec2:GetSecurityGroupsForVpc", "iam:GetServerCertificate", "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource", "wafv2:GetWebACL", "wafv2:GetWebACLForResource", "shield:GetSubscriptionState",
]
SCOPING_CONDITION = re.compile(r"^(aws|[a-z0-9-]+):(ResourceTag|RequestTag)/", re.IGNORECASE)
SCOPING_KEYS = frozenset({"ec2:vpc", "ec2:subnet", "iam:awsservicename", "iam:passedtoservice", "aws:sourcearn",
                          "kms:viaservice", "ec2:resourcetag"})
"""Condition keys that tie a '*' statement to specific resources: resource/request tags, the VPC or subnet
(``ec2:Vpc``), the one service a service-linked role is for, the service a role may be passed to, the calling
resource, or the service a KMS key is used through."""


def _unscoped_action_ok(action: str, allowed: set[str]) -> bool:
    """Actions AWS cannot scope to a resource ARN: Describe*/List* reads, plus an allow-list."""
    if action in allowed:
        return True
    verb = action.split(":", 1)[-1]
    return verb.startswith(("Describe", "List"))


def _scoped_by_condition(st: Mapping[str, Any]) -> bool:
    cond = as_map(get(st, "Condition"))
    for op in list(cond):
        for key in list(as_map(cond[op])):
            if SCOPING_CONDITION.match(str(key)) or str(key).lower() in SCOPING_KEYS:
                return True
    return False


@resource_policy(Rule(
    id="iam-no-wildcard-resources",
    title="No '*' resources for restrictable actions",
    description="IAM policies the package creates must not grant restrictable actions on Resource '*' unless a "
                "condition scopes them (resource or request tag, VPC, service-linked service, source ARN).",
    concern="security", severity=Severity.HIGH,
    remediation="Name the resource ARNs (cluster, ASG, target group, bucket prefix, log group, key), or add a "
                "scoping condition (aws:ResourceTag/<key>, aws:RequestTag/<key>, ec2:Vpc, iam:AWSServiceName). "
                "Describe*/List* reads and the listed account-level calls may stay on '*'.",
    checkov=("CKV_AWS_355",),
    config={"unscopedActions": {"type": "array", "items": {"type": "string"}, "default": UNSCOPED_OK_DEFAULT,
                                "description": "Actions without resource-level permissions allowed on '*'."}},
), types={*IAM_DOC_TYPES, IAM_ROLE})
def iam_wildcard_resources(s: Subject, cfg: dict) -> Iterable[str]:
    allowed = set(cfg["unscopedActions"])
    for where, doc in _policy_docs(s):
        for i, st in enumerate(_statements(doc)):
            if get(st, "Effect") != "Allow":
                continue
            resources = [str(r) for r in as_list(get(st, "Resource"))]
            if has(st, "NotResource"):
                yield f"{where} {_sid(st, i)} uses NotResource: every resource except a few"
                continue
            if "*" not in resources or _scoped_by_condition(st):
                continue
            actions = [str(a) for a in as_list(get(st, "Action"))]
            bad = [a for a in actions if not _unscoped_action_ok(a, allowed)]
            if bad:
                yield f"{where} {_sid(st, i)} grants {', '.join(bad)} on Resource '*' without a scoping condition"


@resource_policy(Rule(
    id="kms-key-rotation",
    title="KMS keys rotate",
    description="Symmetric customer-managed KMS keys must have automatic rotation on.",
    concern="security", severity=Severity.MEDIUM,
    remediation="Set enableKeyRotation=true on aws.kms.Key.",
    checkov=("CKV_AWS_7",),
), types={"aws:kms/key:Key"})
def kms_rotation(s: Subject, cfg: dict) -> Iterable[str]:
    spec = get(s.props, "customerMasterKeySpec") or get(s.props, "keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and not truthy(get(s.props, "enableKeyRotation")):
        yield "enableKeyRotation is not true"
