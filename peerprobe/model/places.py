"""Names of the places a connection passes (the model's marks carry them; the HTML diagram uses them as ids).

A vantage is its own place (`vpc1-pod`, `vpc2-pod`, `vpc2-ec2`, `outside`); the EC2 host is `vpc2-ec2` also when
it is the target."""

from __future__ import annotations

PEERING = "peering"
TRANSIT_GATEWAY = "transit-gateway"
INTERNET = "internet"
ECHO_POD = "echo-pod"
NGINX_POD = "nginx-pod"
PEER_HOST = "vpc2-ec2"


def node(name: str) -> str:
    return f"node:{name}"


def nat_gateway(vpc: str) -> str:
    return f"nat:{vpc}"


def internet_gateway(vpc: str) -> str:
    return f"igw:{vpc}"


def load_balancer(kind: str) -> str:
    return f"lb:{kind}"


def router(vpc: str) -> str:
    """A VPC's router: where the lab's kernel records every flow it forwards; no hop of the model's paths."""
    return f"router:{vpc}"


def link(via: str) -> str:
    """The place between the VPCs: the peering connection or the transit gateway (peering.via)."""
    return TRANSIT_GATEWAY if via == "transit-gateway" else PEERING


def branch_eni(pod: str) -> str:
    """A pod's branch ENI (security groups for pods): where its own security groups are applied."""
    return f"branch-eni:{pod}"
