"""Security groups as the model sees them: stateful ingress rules on the VPC1 nodes, the ELB and the EC2 host.

Sources: EKS sec-group-reqs.html (cluster SG admits only itself), cloud-provider-aws aws.go /
aws_loadbalancer.go (ELB SG rule on the nodes; NLB client rule from loadBalancerSourceRanges and health
rule from the subnets), aws-load-balancer-controller (ip targets: target port from the source ranges).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from peerprobe.model import places
from peerprobe.model._walk import Actor, Blocked, Packet, Step, block
from peerprobe.model.facts import Facts
from peerprobe.model.network import egress_public_addresses
from peerprobe.probes.plan import ECHO_PORT, PEER_HOST_PORT


@dataclass(frozen=True)
class Rule:
    port: int | None  # None: every port
    sources: tuple[ipaddress.IPv4Network, ...]
    why: str
    members: frozenset[str] = frozenset()  # a group-to-group rule: the addresses of the group's ENIs

    def admits(self, port: int, source: str) -> bool:
        if self.port is not None and self.port != port:
            return False
        address = ipaddress.IPv4Address(source)
        return source in self.members or any(address in net for net in self.sources)


def node_rules(facts: Facts) -> list[Rule]:
    return facts.memo("node_rules", lambda: [_self_rule(facts), *_peer_rules(facts), *_controller_rules(facts)])


def _hosts(addresses: set[str]) -> tuple[ipaddress.IPv4Network, ...]:
    return tuple(ipaddress.IPv4Network(f"{ip}/32") for ip in sorted(addresses))


def _self_rule(facts: Facts) -> Rule:
    return Rule(None, (), "the cluster security group admits its own members", cluster_members(facts))


def cluster_members(facts: Facts) -> frozenset[str]:
    """The addresses of the ENIs that carry VPC1's cluster security group: the nodes' ENIs and the pods on them
    (custom networking's ENIConfig names the cluster group, as in the EKS tutorial), and the branch ENIs whose
    SecurityGroupPolicy lists it (include_cluster_sg)."""
    side = facts.topology.vpc1
    members = {a for n in side.nodes for a in (n.ip, *n.addresses)}
    pods = {"echo": side.echo_pod, "busybox": side.busybox_pod}
    groups = facts.cluster("vpc1").pod_security_groups
    with_cluster_sg = groups is None or groups.include_cluster_sg
    members |= {p.ip for name, p in pods.items() if p and (with_cluster_sg or not facts.branch_eni("vpc1", name))}
    return frozenset(members)


def _peer_rules(facts: Facts) -> list[Rule]:
    return peer_rules(facts, "peerprobe opened")


def peer_rules(facts: Facts, who: str) -> list[Rule]:
    """security_groups.open_from_peer from each of VPC2's CIDR blocks (one rule per block, so an explanation names
    the block that admitted the source)."""
    rules = []
    for item in facts.config.security_groups.open_from_peer:
        port = facts.topology.vpc1.node_port if item == "nodeport" else item
        if port is None:
            continue
        rules += [Rule(int(port), (block,), f"{who} TCP {port} to {block}") for block in facts.cidrs("vpc2")]
    return rules


def _controller_rules(facts: Facts) -> list[Rule]:
    ports = facts.topology.vpc1.service_node_ports
    ranges = facts.source_ranges
    subnets = (facts.cidr("vpc1"),)  # the NLB health rule: the NLB subnets' CIDRs, inside VPC1
    rules = []
    nlb = facts.config.services.internal_nlb
    if nlb.target_type == "instance" and "internal-nlb" in ports:
        rules.append(Rule(ports["internal-nlb"], ranges, "the NLB controller's client rule (loadBalancerSourceRanges)"))
        rules.append(Rule(ports["internal-nlb"], subnets, "the NLB controller's health-check rule (subnet CIDRs)"))
    rules += lbc_target_rules(facts)
    if "nginx-nlb" in ports:
        rules.append(Rule(ports["nginx-nlb"], ranges, "the nginx NLB's client rule (loadBalancerSourceRanges)"))
    return rules


def lbc_target_rules(facts: Facts) -> list[Rule]:
    """The AWS Load Balancer Controller's rule for ip targets, on the group of the target's ENI (the ENI's only
    group, else the one tagged kubernetes.io/cluster/<name>: LBC networking_manager resolveEndpointSGForENI)."""
    nlb = facts.config.services.internal_nlb
    if nlb.target_type != "ip":
        return []
    sources = facts.source_ranges if nlb.preserve_client_ip else (facts.cidr("vpc1"),)
    return [Rule(ECHO_PORT, sources, "the AWS Load Balancer Controller's rule for its ip targets")]


def admit_at_node(port: int, facts: Facts) -> Step:
    """The VPC1 node's security groups, stateful: only the first packet is checked."""

    def step(packet: Packet) -> Packet | Blocked:
        at = places.node(_entered_node(packet.dst, facts))
        if packet.actor is Actor.LOAD_BALANCER and facts.vpc_of(packet.ip) == "vpc1":
            return packet.note("the nodes admit the load balancer (its SG or the controller's rule)", at=at)
        rule = next((r for r in node_rules(facts) if r.admits(port, packet.ip)), None)
        if rule is None:
            reason = f"no VPC1 node security-group rule admits {packet.ip} on TCP {port}"
            return block(packet, "timeout", reason, at=at, by="security group")
        return packet.note(f"VPC1 node SG admits {packet.ip} on TCP {port}: {rule.why}", at=at)

    return step


def _entered_node(dst: str, facts: Facts) -> str:
    """The VPC1 node that owns the destination address; a pod's address: the echo pod's node."""
    owner = next((n for n in facts.topology.vpc1.nodes if dst in n.all_addresses()), facts.echo_node)
    return owner.name


def admit_at_peer_host(facts: Facts) -> Step:
    """The EC2 web host's SG: :80 from VPC1's CIDR and VPC1's egress public addresses when admit_vpc1."""

    def step(packet: Packet) -> Packet | Blocked:
        at, by = places.PEER_HOST, "security group"
        if not facts.config.peer_host.admit_vpc1:
            reason = "the EC2 host's security group does not admit VPC1 (peer_host.admit_vpc1)"
            return block(packet, "timeout", reason, at=at, by=by)
        allowed = [*facts.cidrs("vpc1"), *_hosts(set(egress_public_addresses("vpc1", facts)))]
        if Rule(PEER_HOST_PORT, tuple(allowed), "").admits(PEER_HOST_PORT, packet.ip):
            return packet.note(f"the EC2 host's SG admits {packet.ip} on TCP 80", at=at)
        return block(packet, "timeout", f"the EC2 host's SG does not admit {packet.ip} on TCP 80", at=at, by=by)

    return step


def admit_by_source_ranges(what: str, facts: Facts, *, at: str = "") -> Step:
    """A load balancer's own SG (CLB) or the controller's node rule (NLB) from loadBalancerSourceRanges."""

    def step(packet: Packet) -> Packet | Blocked:
        address = ipaddress.IPv4Address(packet.ip)
        if any(address in net for net in facts.source_ranges):
            return packet.note(f"{what} admits {packet.ip} (loadBalancerSourceRanges)", at=at)
        reason = f"{what} does not admit {packet.ip}: not in loadBalancerSourceRanges"
        return block(packet, "timeout", reason, at=at, by="security group")

    return step
