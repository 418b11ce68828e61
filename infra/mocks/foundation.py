"""Computed outputs of the foundation's resources (VPC, EKS, IAM, node groups) as AWS returns them."""

from __future__ import annotations

from typing import Any

from infra.mocks import MockContext, call_for, outputs_for, short_hash


@call_for("aws:index/getAvailabilityZones:getAvailabilityZones")
def _azs(ctx: MockContext, args: dict[str, Any]) -> dict[str, Any]:
    letters = "abcdef"
    names = [f"{ctx.region}{x}" for x in letters]
    return {"names": names, "zoneIds": [f"use1-az{i + 1}" for i in range(len(names))], "state": "available",
            "id": ctx.region, "groupNames": [ctx.region]}


@call_for("aws:index/getCallerIdentity:getCallerIdentity")
def _identity(ctx: MockContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"accountId": ctx.account, "arn": f"arn:aws:iam::{ctx.account}:user/ci", "userId": "AIDAEXAMPLE",
            "id": ctx.account}


@call_for("aws:index/getPartition:getPartition")
def _partition(ctx: MockContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}


@call_for("aws:index/getRegion:getRegion")
def _region(ctx: MockContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": ctx.region, "region": ctx.region, "id": ctx.region,
            "endpoint": f"ec2.{ctx.region}.amazonaws.com", "description": ctx.region}


@outputs_for("aws:ec2/vpc:Vpc")
def _vpc(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    vid = f"vpc-{short_hash(name, n=17)}"
    return {"id": vid, "arn": ctx.arn("ec2", f"vpc/{vid}"), "defaultSecurityGroupId": f"sg-{short_hash(name, 'd', n=17)}",
            "mainRouteTableId": f"rtb-{short_hash(name, n=17)}"}


def _ec2_id(prefix: str, kind: str):
    def fn(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        rid = f"{prefix}-{short_hash(kind, name, n=17)}"
        return {"id": rid, "arn": ctx.arn("ec2", f"{kind}/{rid}")}
    return fn


for _t, _p, _k in [("aws:ec2/subnet:Subnet", "subnet", "subnet"),
                   ("aws:ec2/securityGroup:SecurityGroup", "sg", "security-group"),
                   ("aws:ec2/internetGateway:InternetGateway", "igw", "internet-gateway"),
                   ("aws:ec2/natGateway:NatGateway", "nat", "natgateway"),
                   ("aws:ec2/eip:Eip", "eipalloc", "elastic-ip"),
                   ("aws:ec2/routeTable:RouteTable", "rtb", "route-table"),
                   ("aws:ec2/vpcEndpoint:VpcEndpoint", "vpce", "vpc-endpoint"),
                   ("aws:ec2/launchTemplate:LaunchTemplate", "lt", "launch-template"),
                   ("aws:ec2/placementGroup:PlacementGroup", "pg", "placement-group"),
                   ("aws:ec2/flowLog:FlowLog", "fl", "vpc-flow-log")]:
    outputs_for(_t)(_ec2_id(_p, _k))


@outputs_for("aws:ec2/launchTemplate:LaunchTemplate")
def _lt(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    rid = f"lt-{short_hash('lt', name, n=17)}"
    return {"id": rid, "arn": ctx.arn("ec2", f"launch-template/{rid}"), "latestVersion": 1, "defaultVersion": 1}


@outputs_for("aws:ec2/placementGroup:PlacementGroup")
def _pg(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    n = f"{name}-{short_hash(name)}"
    return {"id": n, "name": n, "arn": ctx.arn("ec2", f"placement-group/{n}")}


@outputs_for("aws:kms/key:Key")
def _kms(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    kid = f"{short_hash(name, n=8)}-{short_hash(name, 'a', n=4)}-4{short_hash(name, 'b', n=3)}-8{short_hash(name, 'c', n=3)}-{short_hash(name, 'd', n=12)}"
    return {"id": kid, "keyId": kid, "arn": ctx.arn("kms", f"key/{kid}")}


@outputs_for("aws:iam/role:Role")
def _role(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    n = inputs.get("name") or f"{name}-{short_hash(name, n=7)}"
    return {"id": n, "name": n, "arn": f"arn:aws:iam::{ctx.account}:role/{n}", "uniqueId": f"AROA{short_hash(n, n=17).upper()}"}


@outputs_for("aws:iam/policy:Policy")
def _policy(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    n = inputs.get("name") or f"{name}-{short_hash(name, n=7)}"
    arn = f"arn:aws:iam::{ctx.account}:policy/{n}"
    return {"id": arn, "name": n, "arn": arn, "policyId": f"ANPA{short_hash(n, n=17).upper()}"}


@outputs_for("aws:eks/cluster:Cluster")
def _cluster(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    n = inputs.get("name") or f"{name}-{short_hash(name, n=7)}"
    oidc = short_hash(n, "oidc", n=32).upper()
    host = f"{short_hash(n, 'ep', n=32).upper()}.gr7.{ctx.region}.eks.amazonaws.com"
    return {
        "id": n, "name": n, "arn": ctx.arn("eks", f"cluster/{n}"), "endpoint": f"https://{host}",
        "status": "ACTIVE", "platformVersion": "eks.3",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1PQ0sKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{ctx.region}.amazonaws.com/id/{oidc}"}]}],
        "vpcConfig": {**(inputs.get("vpcConfig") or {}),
                      "clusterSecurityGroupId": f"sg-{short_hash(n, 'cluster-sg', n=17)}",
                      "vpcId": f"vpc-{short_hash(n, 'vpc', n=17)}"},
    }


@outputs_for("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    url = str(inputs.get("url", "https://oidc.example")).replace("https://", "")
    arn = f"arn:aws:iam::{ctx.account}:oidc-provider/{url}"
    return {"id": arn, "arn": arn}


@outputs_for("aws:eks/nodeGroup:NodeGroup")
def _node_group(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    ng = inputs.get("nodeGroupName") or f"{name}-{short_hash(name, n=7)}"
    uid = f"{short_hash(ng, 'a', n=8)}-{short_hash(ng, 'b', n=4)}-{short_hash(ng, 'c', n=4)}-{short_hash(ng, 'd', n=4)}-{short_hash(ng, 'e', n=12)}"
    cluster = inputs.get("clusterName", "cluster")
    return {"id": f"{cluster}:{ng}", "nodeGroupName": ng, "status": "ACTIVE",
            "arn": ctx.arn("eks", f"nodegroup/{cluster}/{ng}/{uid}"),
            "resources": [{"autoscalingGroups": [{"name": f"eks-{ng}-{uid}"}], "remoteAccessSecurityGroupId": ""}]}


@outputs_for("aws:eks/addon:Addon")
def _addon(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    cluster, addon = inputs.get("clusterName", "cluster"), inputs.get("addonName", name)
    return {"id": f"{cluster}:{addon}", "arn": ctx.arn("eks", f"addon/{cluster}/{addon}/{short_hash(name, n=8)}")}


@outputs_for("aws:cloudwatch/logGroup:LogGroup")
def _log_group(ctx: MockContext, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    n = inputs.get("name") or f"{name}-{short_hash(name, n=7)}"
    return {"id": n, "name": n, "arn": ctx.arn("logs", f"log-group:{n}")}
