"""Pure helpers for the Network component: subnet layout."""

from __future__ import annotations

import ipaddress


def subnet_cidrs(vpc_cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """Private and public subnet CIDRs, one of each per AZ.

    The VPC is cut into eight equal blocks: one private block per AZ (large: the VPC CNI gives every pod a VPC
    address), and the last block split into /3-smaller public subnets (load balancers and NAT gateways only).
    For a /16: private /19s (8,190 addresses each), public /22s.
    """
    net = ipaddress.ip_network(vpc_cidr)
    if az_count < 1 or az_count > 6:
        raise ValueError(f"az_count must be 1-6, got {az_count}")
    blocks = list(net.subnets(prefixlen_diff=3))
    private = [str(b) for b in blocks[:az_count]]
    public_pool = list(blocks[-1].subnets(prefixlen_diff=3))
    public = [str(b) for b in public_pool[:az_count]]
    return private, public
