"""The security-group rules the experiment opens itself, the same on both backends: only from the peer VPC's
CIDR or the experiment's own public addresses, never 0.0.0.0/0 (design.md principles)."""

from __future__ import annotations

from peerprobe.backends.ports import IngressRule
from peerprobe.config import ExperimentConfig
from peerprobe.probes.plan import PEER_HOST_PORT
from peerprobe.snapshot import PEER_RULE_DESCRIPTION
from peerprobe.topology import Topology


def peer_rules(config: ExperimentConfig, plan: Topology) -> list[IngressRule]:
    """What peerprobe opens on VPC1's nodes for the probes (`security_groups.open_from_peer`)."""
    ports = [plan.vpc1.node_port if item == "nodeport" else item for item in config.security_groups.open_from_peer]
    return [
        IngressRule("tcp", int(port), int(port), cidr=plan.vpc2.cidr, description=PEER_RULE_DESCRIPTION)
        for port in ports
        if port is not None
    ]


def peer_host_rules(plan: Topology) -> list[IngressRule]:
    """The EC2 web host's :80 from VPC1's CIDR (the peering path) and VPC1's egress public addresses, its NAT
    gateway and public nodes (the internet path)."""
    public = [plan.vpc1.nat_gateway, *(node.public_ip for node in plan.vpc1.nodes)]
    sources = [plan.vpc1.cidr, *(f"{ip}/32" for ip in public if ip)]
    port = PEER_HOST_PORT
    return [IngressRule("tcp", port, port, cidr=c, description="peerprobe web host") for c in sources]
