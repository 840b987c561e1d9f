"""The security-group rules the experiment opens itself, the same on both backends: only from the peer VPC's
CIDR or the experiment's own public addresses, never 0.0.0.0/0 (design.md principles)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from peerprobe.backends.ports import IngressRule
from peerprobe.config import ExperimentConfig
from peerprobe.probes.plan import ECHO_PORT, PEER_HOST_PORT
from peerprobe.snapshot import PEER_RULE_DESCRIPTION
from peerprobe.topology import Topology

POD_GROUP_DESCRIPTION = "peerprobe pod security group"


def peer_rules(config: ExperimentConfig, plan: Topology) -> list[IngressRule]:
    """What peerprobe opens on VPC1's nodes for the probes (`security_groups.open_from_peer`): from each of VPC2's
    CIDR blocks, the secondary ones included (model/security_groups.py peer_rules, one rule per block)."""
    ports = [plan.vpc1.node_port if item == "nodeport" else item for item in config.security_groups.open_from_peer]
    blocks = vpc_blocks(config, plan, "vpc2")
    return [
        IngressRule("tcp", int(port), int(port), cidr=block, description=PEER_RULE_DESCRIPTION)
        for port in ports
        if port is not None
        for block in blocks
    ]


def pod_group_rules(config: ExperimentConfig, plan: Topology, *, cluster_group: str) -> list[IngressRule]:
    """The rules of peerprobe's own group for VPC1's branch-ENI pods (model/pod_eni.py pod_group_rules): the
    cluster group on the echo port (kubelet's probes), and, with `open_from_peer`, the peer's blocks like the
    nodes' group; never wider."""
    groups = config.clusters.vpc1.pod_security_groups
    rules = [IngressRule("tcp", ECHO_PORT, ECHO_PORT, source_group=cluster_group, description=POD_GROUP_DESCRIPTION)]
    if groups is not None and groups.open_from_peer:
        rules += [replace(r, description=POD_GROUP_DESCRIPTION) for r in peer_rules(config, plan)]
    return rules


def vpc_blocks(config: ExperimentConfig, plan: Topology, key: str) -> list[str]:
    """Every CIDR block of a VPC, the primary first (what the model's facts.cidrs lists)."""
    side = plan.vpc1 if key == "vpc1" else plan.vpc2
    return [side.cidr, *getattr(config.vpcs, key).secondary_cidrs]


def routed_blocks(config: ExperimentConfig, plan: Topology, key: str) -> list[str]:
    """The blocks of VPC `key` the other VPC's route tables send to the link (`peering.route_cidrs`)."""
    blocks = vpc_blocks(config, plan, key)
    return blocks if config.peering.route_cidrs == "all" else blocks[:1]


def peer_host_rules(plan: Topology, *, vpc1_secondary: Sequence[str] = ()) -> list[IngressRule]:
    """The EC2 web host's :80 from VPC1's CIDR (the peering path) and VPC1's egress public addresses, its NAT
    gateway and public nodes (the internet path); VPC1's secondary blocks too (model: admit_at_peer_host)."""
    public = [plan.vpc1.nat_gateway, *(node.public_ip for node in plan.vpc1.nodes)]
    sources = [plan.vpc1.cidr, *vpc1_secondary, *(f"{ip}/32" for ip in public if ip)]
    port = PEER_HOST_PORT
    return [IngressRule("tcp", port, port, cidr=c, description="peerprobe web host") for c in sources]
