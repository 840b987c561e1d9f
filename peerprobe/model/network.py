"""VPC routing: inside a VPC, over the peering, or out through a NAT gateway or the internet gateway.

Sources: VPC peering basics (no edge-to-edge routing; public addresses never cross a peering), NAT gateway
docs (translates to its public address), EKS external-snat.html ("SNAT is required for nodes that reside
in a public subnet": the internet gateway only maps addresses that have a public address).
"""

from __future__ import annotations

import ipaddress

from peerprobe.model import places
from peerprobe.model._walk import Actor, Blocked, Packet, Step, block
from peerprobe.model.clients import Client
from peerprobe.model.facts import Facts, VpcKey


def route(client: Client, facts: Facts) -> Step:
    """Carry the packet from the client's VPC (or the internet) to its destination address."""

    def step(packet: Packet) -> Packet | Blocked:
        where = facts.vpc_of(packet.dst)
        if where is not None and where == client.vpc:
            return packet
        if where is not None:
            return _over_peering(packet, client, where, facts)
        if ipaddress.IPv4Address(packet.dst).is_global or _is_public_in_topology(packet.dst, facts):
            return _across_internet(_to_internet(packet, client, facts))
        return block(packet, "timeout", f"{packet.dst} is routed nowhere outside the cluster that owns it")

    return step


def _over_peering(packet: Packet, client: Client, dst_vpc: VpcKey, facts: Facts) -> Packet | Blocked:
    if client.vpc is None:
        return block(packet, "timeout", f"{packet.dst} is a private {dst_vpc} address: not routable on the internet")
    if not facts.config.peering.enabled:
        reason = f"no route from {client.vpc} to {facts.side(dst_vpc).cidr}: peering is off"
        return block(packet, "timeout", reason, at=places.PEERING, by="route table")
    return packet.note(f"{client.vpc} -> {dst_vpc} over the VPC peering (routes both ways)", at=places.PEERING)


def _across_internet(packet: Packet | Blocked) -> Packet | Blocked:
    if isinstance(packet, Blocked):
        return packet
    return packet.marked(f"across the internet to {packet.dst}", at=places.INTERNET)


def _to_internet(packet: Packet, client: Client, facts: Facts) -> Packet | Blocked:
    if client.vpc is None:
        return packet
    if client.public_subnet:
        return _through_internet_gateway(packet, client, facts)
    nat = facts.nat_gateway(client.vpc)
    if nat is None:
        reason = f"{client.vpc}'s private subnets have no NAT gateway: no way to {packet.dst}"
        return block(packet, "timeout", reason, by="route table")
    because = f"{client.vpc}'s NAT gateway translates the source to {nat}"
    return packet.becomes(Actor.NAT_GATEWAY, nat, because, at=places.nat_gateway(client.vpc), by="NAT gateway")


def _through_internet_gateway(packet: Packet, client: Client, facts: Facts) -> Packet | Blocked:
    public = _public_address_of(packet, client)
    at = places.internet_gateway(client.vpc or "")
    if public is None:
        return block(
            packet,
            "timeout",
            f"the internet gateway has no public address for {packet.ip} (a pod IP leaving a public subnet "
            "unSNATed is dropped: EKS external-snat.html)",
            at=at,
            by="internet gateway",
        )
    because = f"{client.vpc}'s internet gateway maps {packet.ip} to {public}"
    return packet.becomes(packet.actor, public, because, at=at, by="internet gateway (public IPv4 mapping)")


def _public_address_of(packet: Packet, client: Client) -> str | None:
    if packet.actor is Actor.CLIENT_NODE and client.node is not None:
        return client.node.public_ip
    if packet.actor is Actor.CLIENT_HOST:
        return client.public_ip
    return None


def _is_public_in_topology(ip: str, facts: Facts) -> bool:
    # The lab stands public addresses in with documentation ranges (RFC 5737), which are not "global".
    return ip in public_addresses(facts)


def public_addresses(facts: Facts) -> set[str]:
    top = facts.topology
    found = {top.vpc1.nat_gateway, top.vpc2.nat_gateway, top.peer_host.public_ip, top.outside}
    found |= {n.public_ip for side in (top.vpc1, top.vpc2) for n in side.nodes}
    found |= {ip for lb in top.vpc1.load_balancer_facts.values() for ip in lb.public_ips}
    return {ip for ip in found if ip}


def egress_public_addresses(key: VpcKey, facts: Facts) -> list[str]:
    """The public addresses a VPC's nodes and pods reach the internet from."""
    side = facts.side(key)
    nodes_public = [n.public_ip for n in side.nodes if n.subnet == "public" and n.public_ip]
    return [*([side.nat_gateway] if side.nat_gateway else []), *nodes_public]
