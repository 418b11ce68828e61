"""Computed outputs of the edge and managed-inference resources (ALB, ACM, Route 53, WAF, S3, ElastiCache, Secrets
Manager, SageMaker, Application Auto Scaling, Bedrock, random) in the shapes AWS returns them."""

from __future__ import annotations

import string
from typing import Any

from infra.mocks import MockContext, outputs_for, short_hash

_ALB_ZONES = {"us-east-1": "Z35SXDOTRQ7X7K", "us-east-2": "Z3AADJGX6KTTL2", "us-west-2": "Z1H1FL5HABSF5",
              "eu-west-1": "Z32O12XQLNTSW2", "eu-central-1": "Z215JYRZR1TBD5"}


def _autoname(name: str, inputs: dict[str, Any], key: str = "name", *, max_len: int = 63) -> str:
    """Pulumi auto-naming: the logical name plus a 7-character suffix, unless the program set a name."""
    if inputs.get(key):
        return str(inputs[key])
    prefix = inputs.get("namePrefix")
    if prefix:
        return f"{prefix}{short_hash(name, n=26 - len(prefix) if len(prefix) < 20 else 6)}"
    return f"{name[: max_len - 8]}-{short_hash(name, n=7)}"


# --- load balancing -----------------------------------------------------------------------------------------

@outputs_for("aws:lb/loadBalancer:LoadBalancer")
def _lb(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    lb_name = _autoname(name, inputs, max_len=32)
    lb_id = short_hash("lb", name, n=16)
    arn = ctx.arn("elasticloadbalancing", f"loadbalancer/app/{lb_name}/{lb_id}")
    scheme = "internal-" if inputs.get("internal") else ""
    digits = str(int(short_hash("dns", name, n=8), 16))[:10]
    return {"id": arn, "arn": arn, "name": lb_name, "arnSuffix": f"app/{lb_name}/{lb_id}",
            "dnsName": f"{scheme}{lb_name}-{digits}.{ctx.region}.elb.amazonaws.com",
            "zoneId": _ALB_ZONES.get(ctx.region, "Z35SXDOTRQ7X7K"), "vpcId": f"vpc-{short_hash('vpc', n=17)}"}


@outputs_for("aws:lb/targetGroup:TargetGroup")
def _tg(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    tg_name = _autoname(name, inputs, max_len=32)
    tg_id = short_hash("tg", name, n=16)
    arn = ctx.arn("elasticloadbalancing", f"targetgroup/{tg_name}/{tg_id}")
    return {"id": arn, "arn": arn, "name": tg_name, "arnSuffix": f"targetgroup/{tg_name}/{tg_id}",
            "loadBalancerArns": []}


@outputs_for("aws:lb/listener:Listener")
def _listener(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    arn = ctx.arn("elasticloadbalancing",
                  f"listener/app/{name}/{short_hash('lb', name, n=16)}/{short_hash('l', name, n=16)}")
    return {"id": arn, "arn": arn}


# --- certificates and DNS (the ALB's domain mode) ---------------------------------------------------------------

@outputs_for("aws:acm/certificate:Certificate")
def _certificate(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """A certificate as RequestCertificate + DescribeCertificate return it before validation: one CNAME validation
    option per domain name (``_<32 hex>.<domain>.`` -> ``_<32 hex>.<10 chars>.acm-validations.aws.``)."""
    arn = ctx.arn("acm", f"certificate/{_uuid('acm', name)}")
    domains = [str(inputs.get("domainName") or f"{name}.example.com"), *(inputs.get("subjectAlternativeNames") or [])]
    options = [{"domainName": d, "resourceRecordName": f"_{short_hash('acm-name', name, d, n=32)}.{d}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{short_hash('acm-value', name, d, n=32)}.{short_hash('acm', d, n=10)}"
                                       ".acm-validations.aws."} for d in dict.fromkeys(domains)]
    return {"id": arn, "arn": arn, "domainValidationOptions": options, "status": "PENDING_VALIDATION",
            "type": "AMAZON_ISSUED", "keyAlgorithm": inputs.get("keyAlgorithm") or "RSA_2048",
            "validationMethod": inputs.get("validationMethod") or "DNS", "validationEmails": [],
            "subjectAlternativeNames": list(dict.fromkeys(domains)), "renewalEligibility": "INELIGIBLE",
            "pendingRenewal": False}


@outputs_for("aws:acm/certificateValidation:CertificateValidation")
def _certificate_validation(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The provider's id is the certificate's issue time; the ARN is the validated certificate's."""
    return {"id": "2026-12-01 00:00:00 +0000 UTC", "certificateArn": inputs.get("certificateArn")}


@outputs_for("aws:route53/record:Record")
def _record(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Record id ``<zone>_<name>_<type>`` and its FQDN (the name without the trailing dot, lowercase)."""
    rname = str(inputs.get("name") or name)
    fqdn = rname.rstrip(".").lower()
    return {"id": f"{inputs.get('zoneId')}_{fqdn}_{inputs.get('type')}", "fqdn": fqdn}


@outputs_for("aws:wafv2/webAcl:WebAcl")
def _web_acl(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    acl_name = _autoname(name, inputs, max_len=128)
    uid = _uuid(name)
    return {"id": uid, "arn": ctx.arn("wafv2", f"regional/webacl/{acl_name}/{uid}"), "name": acl_name,
            "capacity": 1000, "lockToken": _uuid(name, "lock")}


@outputs_for("aws:wafv2/webAclAssociation:WebAclAssociation", "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration")
def _waf_link(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(inputs.get("resourceArn") or name)}


# --- storage and secrets --------------------------------------------------------------------------------------

@outputs_for("aws:s3/bucket:Bucket")
def _bucket(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    bucket = inputs.get("bucket") or (
        f"{inputs['bucketPrefix']}{short_hash(name, n=26)}" if inputs.get("bucketPrefix")
        else f"{name.lower()[:54]}-{short_hash(name, n=7)}")
    return {"id": bucket, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}",
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{ctx.region}.amazonaws.com", "region": ctx.region}


@outputs_for("aws:secretsmanager/secret:Secret")
def _secret(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    secret_name = _autoname(name, inputs, max_len=512)
    arn = ctx.arn("secretsmanager", f"secret:{secret_name}-{short_hash('s', name, n=6)}")
    return {"id": arn, "arn": arn, "name": secret_name}


@outputs_for("aws:secretsmanager/secretVersion:SecretVersion")
def _secret_version(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    vid = _uuid(name, "version")
    return {"id": f"{inputs.get('secretId')}|{vid}", "versionId": vid, "versionStages": ["AWSCURRENT"]}


@outputs_for("random:index/randomPassword:RandomPassword")
def _password(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    length = int(inputs.get("length") or 32)
    specials = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?" if inputs.get("special", True) else ""
    alphabet = string.ascii_letters + string.digits + (specials or "")
    seed = int(short_hash("pw", name, n=16), 16)
    chars = ["A", "z", "7", (specials or "x")[0]]
    while len(chars) < length:
        seed = (seed * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        chars.append(alphabet[seed % len(alphabet)])
    result = "".join(chars[:length])
    return {"id": "none", "result": result, "bcryptHash": "$2a$10$" + short_hash(result, n=53)}


# --- ElastiCache -----------------------------------------------------------------------------------------------

@outputs_for("aws:elasticache/replicationGroup:ReplicationGroup")
def _replication_group(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    rg_id = _autoname(name, inputs, "replicationGroupId", max_len=40).lower()
    suffix = short_hash("rg", name, n=6)
    zone = {"us-east-1": "use1", "us-east-2": "use2", "us-west-2": "usw2", "eu-west-1": "euw1"}.get(ctx.region, "use1")
    n = int(inputs.get("numCacheClusters") or 1)
    return {"id": rg_id, "replicationGroupId": rg_id, "arn": ctx.arn("elasticache", f"replicationgroup:{rg_id}"),
            "primaryEndpointAddress": f"master.{rg_id}.{suffix}.{zone}.cache.amazonaws.com",
            "readerEndpointAddress": f"replica.{rg_id}.{suffix}.{zone}.cache.amazonaws.com",
            "port": int(inputs.get("port") or 6379), "engineVersionActual": f"{inputs.get('engineVersion', '8.2')}.0",
            "memberClusters": [f"{rg_id}-{i + 1:03d}" for i in range(n)], "clusterEnabled": False}


@outputs_for("aws:elasticache/subnetGroup:SubnetGroup", "aws:elasticache/parameterGroup:ParameterGroup")
def _cache_named(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    n = _autoname(name, inputs, max_len=255).lower()
    kind = "subnetgroup" if "subnetIds" in inputs else "parametergroup"
    return {"id": n, "name": n, "arn": ctx.arn("elasticache", f"{kind}:{n}")}


@outputs_for("aws:elasticache/user:User", "aws:elasticache/userGroup:UserGroup")
def _cache_user(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    uid = inputs.get("userId") or inputs.get("userGroupId") or name
    kind = "user" if "userId" in inputs else "usergroup"
    return {"id": uid, "arn": ctx.arn("elasticache", f"{kind}:{uid}")}


# --- SageMaker and autoscaling ---------------------------------------------------------------------------------

def _sagemaker(kind: str):
    def fn(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        n = _autoname(name, inputs, max_len=63)
        return {"id": n, "name": n, "arn": ctx.arn("sagemaker", f"{kind}/{n.lower()}")}
    return fn


outputs_for("aws:sagemaker/model:Model")(_sagemaker("model"))
outputs_for("aws:sagemaker/endpointConfiguration:EndpointConfiguration")(_sagemaker("endpoint-config"))
outputs_for("aws:sagemaker/endpoint:Endpoint")(_sagemaker("endpoint"))


@outputs_for("aws:appautoscaling/target:Target")
def _scaling_target(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    rid = str(inputs.get("resourceId") or name)
    return {"id": rid, "arn": ctx.arn("application-autoscaling", f"scalable-target/{short_hash(rid, n=20)}"),
            "roleArn": f"arn:aws:iam::{ctx.account}:role/aws-service-role/sagemaker.application-autoscaling."
                       "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"}


@outputs_for("aws:appautoscaling/policy:Policy")
def _scaling_policy(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    pname = _autoname(name, inputs, max_len=255)
    rid = inputs.get("resourceId") or ""
    arn = ctx.arn("autoscaling", f"scalingPolicy:{_uuid(name)}:resource/sagemaker/{rid}:policyName/{pname}")
    return {"id": pname, "name": pname, "arn": arn,
            "alarmArns": [ctx.arn("cloudwatch", f"alarm:TargetTracking-{rid}-AlarmHigh-{_uuid(name, 'h')}")]}


# --- Bedrock ---------------------------------------------------------------------------------------------------

@outputs_for("aws:bedrock/inferenceProfile:InferenceProfile")
def _profile(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    pid = short_hash("aip", name, n=12)
    arn = ctx.arn("bedrock", f"application-inference-profile/{pid}")
    return {"id": _autoname(name, inputs, max_len=64), "name": _autoname(name, inputs, max_len=64), "arn": arn,
            "status": "ACTIVE", "type": "APPLICATION",
            "models": [{"modelArn": (inputs.get("modelSource") or {}).get("copyFrom", "")}]}


@outputs_for("aws:bedrock/provisionedModelThroughput:ProvisionedModelThroughput")
def _pt(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    pid = "".join(c for c in short_hash("pt", name, n=24) if c.isalnum())[:12]
    arn = ctx.arn("bedrock", f"provisioned-model/{pid}")
    return {"id": arn, "provisionedModelArn": arn}


def _uuid(*parts: str) -> str:
    h = short_hash(*parts, n=32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
