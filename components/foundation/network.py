"""Network: a VPC over N Availability Zones for EKS, or an existing VPC adopted by id.

Creates (new VPC)
  - ``aws.ec2.Vpc`` ``<name>`` with DNS support and hostnames.
  - per AZ: a private subnet ``<name>-private-<cidr>`` (tag ``kubernetes.io/role/internal-elb=1``) and a public subnet
    ``<name>-public-<cidr>`` (tag ``kubernetes.io/role/elb=1``, no public IPs on launch), each with its route-table
    association of the same name.
  - ``aws.ec2.InternetGateway``, a public route table, NAT gateways ``<name>-nat-<public cidr>`` (none, one, or one per
    AZ; each in that public subnet) with Elastic IPs of the same name, and private route tables
    ``<name>-private-<cidr>`` (one per AZ; each routes to its AZ's NAT, or the single NAT).
  Per-AZ children are named after their subnet's role and CIDR, ``/`` written ``-`` (``network-private-10.0.0.0-19``):
  the AZ names are only known once the stack runs (a lookup), and a subnet's CIDR is what identifies it (changing it
  replaces the subnet anyway). They were named by AZ position (``<name>-private-0``) before and carry that name as an
  alias, so existing stacks update in place; the ``Name`` tags keep the positional form.
  - optional: an S3 gateway endpoint (on by default: image layers and model weights from S3 stay off the NAT) and
    interface endpoints (``ecr.api``, ``ecr.dkr``, ``sts``, ...) with a security group admitting 443 from the VPC.
Adopting (``existing``): nothing is created; the given ids are exposed as the same outputs. The subnets must already
carry the load-balancer role tags.

Defaults: 10.0.0.0/16 over 2 AZs with one NAT gateway and the S3 endpoint.
Security: nodes live in private subnets; public subnets only hold load balancers and NAT gateways.
Cost drivers: NAT gateways (hourly + per GB), interface endpoints (hourly per AZ + per GB), Elastic IPs.
Quotas: VPCs per Region (5), Elastic IPs per Region (5), NAT gateways per AZ (5).
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field

from components.foundation import _network
from components.foundation._names import name_part, renamed
from components.base import TYPE_PREFIX, ArgsModel
from problems import Problem

NatMode = Literal["none", "single", "per_az"]


class ExistingVpc(BaseModel):
    """An existing VPC and its subnets, adopted instead of created."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    """Id of the VPC (``vpc-...``)."""
    private_subnet_ids: list[str] = Field(min_length=1)
    """Private subnets for nodes and internal load balancers (``subnet-...``), one per Availability Zone (the shared
    compile cache puts an EFS mount target in each, and EFS allows one per zone)."""
    public_subnet_ids: list[str] = Field(default_factory=list)
    """Public subnets for internet-facing load balancers. Default: none (internal load balancers only)."""
    vpc_cidr: str = "10.0.0.0/16"
    """The VPC's CIDR (used for endpoint security group rules). Default: 10.0.0.0/16."""


class NetworkArgs(ArgsModel):
    """Arguments of :class:`Network`."""

    cidr_block: str = Field(default="10.0.0.0/16", pattern=r"^\d+\.\d+\.\d+\.\d+/(1[6-9]|2[0-4])$")
    """VPC CIDR, /16 to /24. Default: 10.0.0.0/16."""
    az_count: int = Field(default=2, ge=1, le=6)
    """Availability Zones to span. Default: 2."""
    nat_gateways: NatMode = "single"
    """``none`` (private subnets reach AWS through endpoints only), ``single`` or ``per_az``. Default: single."""
    s3_gateway_endpoint: bool = True
    """S3 gateway endpoint on the private route tables (free). Default: on."""
    interface_endpoints: list[str] = Field(default_factory=list)
    """AWS services to reach through interface endpoints, e.g. ``ecr.api``, ``ecr.dkr``, ``sts``. Default: none."""
    cluster_name: str | None = None
    """Cluster name for the ``kubernetes.io/cluster/<name>=shared`` subnet tag. Default: no such tag."""
    private_subnet_tags: dict[str, str] = Field(default_factory=dict)
    """Extra tags on the private subnets only, e.g. ``karpenter.sh/discovery: <cluster>`` so that Karpenter's
    EC2NodeClasses select them by tag. Default: none."""
    existing: ExistingVpc | None = None
    """Adopt this VPC instead of creating one. Default: create a new VPC."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags for every taggable child. Default: none."""

    def problems(self) -> list[Problem]:
        out = []
        for i, svc in enumerate(self.interface_endpoints):
            if not all(part.isalnum() or part == "-" for part in svc.replace(".", "-").split("-")) or not svc:
                out.append(Problem(f"interface_endpoints[{i}]", svc, "an AWS service name such as ecr.api"))
        return out


class Network(pulumi.ComponentResource):
    """VPC, subnets, routing and endpoints for an EKS cluster. See the module docstring."""

    vpc_id: pulumi.Output[str]
    """Id of the VPC."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets, one per AZ (nodes, internal load balancers, caches, endpoints)."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnets, one per AZ (internet-facing load balancers, NAT gateways)."""
    availability_zones: pulumi.Output[list[str]]
    """AZ names, in subnet order."""
    vpc_cidr: str
    """The VPC's CIDR block."""
    nat_gateway_count: int
    """How many NAT gateways were created."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        if args.existing is not None:
            ex = args.existing
            self.vpc_id = pulumi.Output.from_input(ex.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(ex.private_subnet_ids))
            self.public_subnet_ids = pulumi.Output.from_input(list(ex.public_subnet_ids))
            self.availability_zones = pulumi.Output.from_input([])
            self.vpc_cidr = ex.vpc_cidr
            self.nat_gateway_count = 0
            self.register_outputs({"vpc_id": self.vpc_id})
            return

        self.vpc_cidr = args.cidr_block
        n = args.az_count
        azs = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        az = [azs.names.apply(lambda names, i=i: names[i]) for i in range(n)]
        private_cidrs, public_cidrs = _network.subnet_cidrs(args.cidr_block, n)
        k8s_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"} if args.cluster_name else {}

        vpc = aws.ec2.Vpc(name, cidr_block=args.cidr_block, enable_dns_hostnames=True, enable_dns_support=True,
                          tags={**tags, "Name": name}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": f"{name}-igw"}, opts=child)
        public_names = [f"{name}-public-{name_part(c)}" for c in public_cidrs]
        private_names = [f"{name}-private-{name_part(c)}" for c in private_cidrs]
        public = [aws.ec2.Subnet(public_names[i], vpc_id=vpc.id, cidr_block=public_cidrs[i], availability_zone=az[i],
                                 map_public_ip_on_launch=False,
                                 tags={**tags, **k8s_tag, "Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1"},
                                 opts=renamed(self, f"{name}-public-{i}", public_names[i])) for i in range(n)]
        private = [aws.ec2.Subnet(private_names[i], vpc_id=vpc.id, cidr_block=private_cidrs[i],
                                  availability_zone=az[i],
                                  tags={**tags, **k8s_tag, **args.private_subnet_tags, "Name": f"{name}-private-{i}",
                                        "kubernetes.io/role/internal-elb": "1"},
                                  opts=renamed(self, f"{name}-private-{i}", private_names[i])) for i in range(n)]
        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id,
                                       routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
                                       tags={**tags, "Name": f"{name}-public"}, opts=child)
        for i, sn in enumerate(public):
            aws.ec2.RouteTableAssociation(public_names[i], subnet_id=sn.id, route_table_id=public_rt.id,
                                          opts=renamed(self, f"{name}-public-{i}", public_names[i]))

        nat_count = {"none": 0, "single": 1, "per_az": n}[args.nat_gateways]
        self.nat_gateway_count = nat_count
        nats = []
        for i in range(nat_count):
            nat = f"{name}-nat-{name_part(public_cidrs[i])}"
            eip = aws.ec2.Eip(nat, domain="vpc", tags={**tags, "Name": f"{name}-nat-{i}"},
                              opts=renamed(self, f"{name}-nat-{i}", nat))
            nats.append(aws.ec2.NatGateway(nat, allocation_id=eip.id, subnet_id=public[i].id,
                                           tags={**tags, "Name": f"{name}-nat-{i}"},
                                           opts=renamed(self, f"{name}-nat-{i}", nat, depends_on=[igw])))
        private_rts = []
        for i, sn in enumerate(private):
            routes = [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % nat_count].id}] if nat_count else []
            rt = aws.ec2.RouteTable(private_names[i], vpc_id=vpc.id, routes=routes,
                                    tags={**tags, "Name": f"{name}-private-{i}"},
                                    opts=renamed(self, f"{name}-private-{i}", private_names[i]))
            aws.ec2.RouteTableAssociation(private_names[i], subnet_id=sn.id, route_table_id=rt.id,
                                          opts=renamed(self, f"{name}-private-{i}", private_names[i]))
            private_rts.append(rt)

        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        if args.s3_gateway_endpoint:
            aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, vpc_endpoint_type="Gateway",
                                service_name=region.apply(lambda r: f"com.amazonaws.{r}.s3"),
                                route_table_ids=[rt.id for rt in private_rts],
                                tags={**tags, "Name": f"{name}-s3"}, opts=child)
        if args.interface_endpoints:
            sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints", vpc_id=vpc.id, description="HTTPS from the VPC to interface endpoints",
                ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [args.cidr_block],
                          "description": "HTTPS from inside the VPC"}],
                tags={**tags, "Name": f"{name}-endpoints"}, opts=child)
            for svc in args.interface_endpoints:
                aws.ec2.VpcEndpoint(f"{name}-{svc.replace('.', '-')}", vpc_id=vpc.id, vpc_endpoint_type="Interface",
                                    service_name=region.apply(lambda r, s=svc: f"com.amazonaws.{r}.{s}"),
                                    private_dns_enabled=True, subnet_ids=[s.id for s in private],
                                    security_group_ids=[sg.id], tags={**tags, "Name": f"{name}-{svc}"}, opts=child)

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.availability_zones = pulumi.Output.all(*az)
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
                               "public_subnet_ids": self.public_subnet_ids})
