"""VPC routing: inside a VPC, over the peering or a transit gateway, or out through a NAT gateway or the internet
gateway; and the route the server's VPC needs for the reply.

Sources: VPC peering basics (no edge-to-edge routing; public addresses never cross a peering), peering guide
"Update your route tables" (the route's destination is the peer's CIDR block, or a portion of it), Transit Gateway
guide "How transit gateways work" (a layer-3 router: "packets are sent to a specific next-hop attachment, based on
their destination IP addresses"; "For a VPC attachment, the CIDR blocks of the VPC are propagated to the transit
gateway route table"; the subnets need their own route to the transit gateway), NAT gateway docs (translates to
its public address), EKS external-snat.html ("SNAT is required for nodes that reside in a public subnet": the
internet gateway only maps addresses that have a public address).
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


TGW_ROUTE_TABLE = "transit gateway route table"
ROUTE_TABLE = "route table"


def _over_peering(packet: Packet, client: Client, dst_vpc: VpcKey, facts: Facts) -> Packet | Blocked:
    at = places.link(facts.config.peering.via)
    if client.vpc is None:
        return block(packet, "timeout", f"{packet.dst} is a private {dst_vpc} address: not routable on the internet")
    if not facts.config.peering.enabled:
        reason = f"no route from {client.vpc} to {facts.side(dst_vpc).cidr}: peering is off"
        return block(packet, "timeout", reason, at=at, by=ROUTE_TABLE)
    unrouted = _unrouted(packet.dst, dst_vpc, facts)
    if unrouted:
        return block(packet, "timeout", f"{client.vpc}'s route tables {unrouted}", at=at, by=_unrouted_by(facts))
    if facts.config.peering.via == "transit-gateway":
        return packet.note(_through_tgw(client.vpc, dst_vpc, packet, facts), at=at, by=TGW_ROUTE_TABLE)
    return packet.note(f"{client.vpc} -> {dst_vpc} over the VPC peering (routes both ways)", at=at)


def _through_tgw(src_vpc: VpcKey, dst_vpc: VpcKey, packet: Packet, facts: Facts) -> str:
    # The transit gateway routes by destination and translates nothing (TGW guide, S for routing; the unchanged
    # source is I: no address translation is described for VPC attachments).
    return (
        f"{src_vpc} -> {dst_vpc} through the transit gateway: {src_vpc}'s route table sends {packet.dst} to its "
        f"attachment, the transit gateway route table (propagated from {dst_vpc}'s attachment: "
        f"{', '.join(str(n) for n in facts.cidrs(dst_vpc))}) to {dst_vpc}'s; it leaves the source {packet.ip} as it is"
    )


def _unrouted(address: str, owner: VpcKey, facts: Facts) -> str:
    """Why the other VPC's route tables have no route to ``address`` of ``owner`` (empty: they have one)."""
    ip = ipaddress.IPv4Address(address)
    if any(ip in net for net in facts.routed(owner)):
        return ""
    block_of = facts.block_of(address)
    secondary = block_of[1] if block_of else "?"
    link = "transit gateway" if facts.config.peering.via == "transit-gateway" else "peering"
    return (
        f"send only {owner}'s primary CIDR {facts.cidr(owner)} to the {link} (peering.route_cidrs: primary): "
        f"{address} in {owner}'s secondary CIDR {secondary} matches only 0.0.0.0/0, towards the internet, where "
        "a private address is dropped"
    )


def _unrouted_by(facts: Facts) -> str:
    return f"{ROUTE_TABLE} (secondary CIDR not routed)"


def reply(facts: Facts) -> Step:
    """The answer goes back to the address the connection had when it crossed the link into the server's VPC (the
    node that un-NATs it, the load balancer or the server itself sends it there): that VPC's route tables need a
    route to it. With peering.route_cidrs: primary, an address in the other VPC's secondary CIDR has none (I, from
    the peering and TGW guides: routes name CIDR blocks; the peering guide: no reverse path forwarding)."""

    def step(packet: Packet) -> Packet | Blocked:
        link = places.link(facts.config.peering.via)
        crossed = next((mark for mark in reversed(packet.marks) if mark.at == link), None)
        owner = facts.vpc_of(crossed.src) if crossed else None
        if crossed is None or owner is None:
            return packet
        unrouted = _unrouted(crossed.src, owner, facts)
        if not unrouted:
            return packet
        other = "vpc2" if owner == "vpc1" else "vpc1"
        reason = f"the reply to {crossed.src} is lost: {other}'s route tables {unrouted}"
        return block(packet, "timeout", reason, by=_unrouted_by(facts))

    return step


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
