"""The VPC fabric: per-VPC router (subnet route tables, source/destination check), NAT and internet gateways,
the peering link, the internet and an outside client. Generates `Script` entries; runs nothing.

Sources: VPC route tables (the local route, 0.0.0.0/0 to igw-/nat-), NAT gateway basics (SNAT to its private
address, which the internet gateway maps to the Elastic IP), internet gateway docs (1:1 NAT of public IPv4),
EC2 source/destination checking, VPC peering basics (no edge-to-edge routing), Transit Gateway guide ("How
transit gateways work": an attachment per zone, routing by destination from the route table to the next
attachment, the VPC's blocks propagated, traffic kept in its zone; subnet route tables need their own routes).
"""

from __future__ import annotations

import ipaddress

from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net._script import Script, Table
from peerprobe.backends.lab.net.model import Eni, LabNet, VpcKey, VpcNet
from peerprobe.topology import PUBLIC_POOLS


def other(key: VpcKey) -> VpcKey:
    return "vpc2" if key == "vpc1" else "vpc1"


def add_fabric(script: Script, lab: LabNet) -> None:
    for vpc in lab.vpcs.values():
        _router(script, lab, vpc)
        _internet_gateway(script, lab, vpc)
        if vpc.nat:
            _nat_gateway(script, vpc, vpc.nat)
    _internet(script, lab)
    _outside(script, lab)
    _instance(script, lab.ec2)
    script.veth(lab.ec2.device, lab.ec2.ns, lab.ec2.router_if, _router_of(lab, lab.ec2))
    if lab.tgw_ns:
        tgw = script.ns(lab.tgw_ns)
        # The transit gateway routes whether or not its attachments exist yet (set_peering adds them later).
        tgw.forwarding([])
        tgw.sysctls["net/ipv4/conf/all/send_redirects"] = "0"
    if lab.peering and lab.link == "transit-gateway":
        add_transit_gateway(script, lab)
    elif lab.peering:
        script.veth(names.PEERING_IF, lab.vpcs["vpc1"].router_ns, names.PEERING_IF, lab.vpcs["vpc2"].router_ns)
        for key, vpc in lab.vpcs.items():
            script.ns(vpc.router_ns).ip.extend(peering_lines(key, vpc))


def _router_of(lab: LabNet, eni: Eni) -> str:
    return next(lab.vpcs[k].router_ns for k in lab.vpcs if eni in lab.enis_of(k))


# --- the VPC router -------------------------------------------------------------------------------------


def _router(script: Script, lab: LabNet, vpc: VpcNet) -> None:
    ns = script.ns(vpc.router_ns)
    enis = lab.enis_of(vpc.key)
    ns.ip.append("link set lo up")
    # The VPC router answers at each subnet's .1; held on lo, so one address serves every ENI link.
    ns.ip.extend(f"address add {gw}/32 dev lo" for gw in sorted({e.gateway for e in enis}))
    ns.ip.extend(line for eni in enis for line in _eni_lines(eni, lab))
    ns.ip.extend(_tables(vpc, lab))
    ns.forwarding([e.router_if for e in enis] + [names.ROUTER_IGW_IF] + _link_ifs(lab))
    ns.tables["raw"] = source_dest_check(enis)
    script.veth(names.ROUTER_IGW_IF, vpc.router_ns, names.IGW_VPC_IF, vpc.igw_ns)


def _link_ifs(lab: LabNet) -> list[str]:
    """The router's interfaces towards the other VPC: the peering link, or one transit gateway attachment per zone."""
    if not lab.peering:
        return []
    if lab.link == "transit-gateway":
        return [names.tgw_router_if(zone) for zone in range(lab.zones)]
    return [names.PEERING_IF]


def _eni_lines(eni: Eni, lab: LabNet) -> list[str]:
    table = names.TABLE_PUBLIC if eni.subnet == "public" else names.TABLE_PRIVATE
    # With a transit gateway, the zone's attachment table is consulted first: it holds only the routed peer
    # blocks, and a miss falls through to the subnet's table (the same routes as one table with both).
    tgw = (
        [f"rule add iif {eni.router_if} lookup {names.TABLE_TGW_ZONE_BASE + eni.zone} priority 190"]
        if lab.link == "transit-gateway"
        else []
    )
    lines = [
        f"link set {eni.router_if} up",
        f"route add {eni.ip}/32 dev {eni.router_if} table {names.TABLE_VPC_LOCAL}",
        # The fabric knows each ENI's MAC; pinned where nothing on the instance answers ARP for the address (a
        # branch ENI's address is the pod's, behind the node's VLAN device).
        *([f"neigh add {eni.ip} lladdr {eni.mac} dev {eni.router_if} nud permanent"] if eni.mac else []),
        # The fabric delivers an ENI's secondary addresses to that ENI: frames go to the ENI's own MAC,
        # so the instance never has to answer ARP for addresses it does not hold (pod IPs).
        *(
            f"route add {ip}/32 via {eni.ip} dev {eni.router_if} onlink table {names.TABLE_VPC_LOCAL}"
            for ip in eni.secondary_ips
        ),
        # The subnet's route table applies to what the ENI sends: policy routing by input interface.
        *tgw,
        f"rule add iif {eni.router_if} lookup {table} priority 200",
    ]
    return lines


def _tables(vpc: VpcNet, lab: LabNet) -> list[str]:
    lines = [
        # The "local" route of each CIDR block (primary and secondary): every address of the VPC is delivered
        # inside the VPC, whichever table; addresses no ENI holds go nowhere (silently, as in AWS: blackhole).
        *(f"route add blackhole {cidr} table {names.TABLE_VPC_LOCAL}" for cidr in vpc.cidrs),
        *(f"rule add to {cidr} lookup {names.TABLE_VPC_LOCAL} priority 100" for cidr in vpc.cidrs),
        f"address add {names.ROUTER_IGW[0]}/30 dev {names.ROUTER_IGW_IF}",
        f"link set {names.ROUTER_IGW_IF} up",
        f"route add default via {names.ROUTER_IGW[1]} dev {names.ROUTER_IGW_IF} table {names.TABLE_PUBLIC}",
        _private_default(vpc),
        # No transit: what comes in over the peering or from the internet may only reach this VPC's ENIs.
        f"route add blackhole default table {names.TABLE_EDGE}",
        f"rule add iif {names.ROUTER_IGW_IF} lookup {names.TABLE_EDGE} priority 200",
        f"rule add iif {names.PEERING_IF} lookup {names.TABLE_EDGE} priority 200",
        *(
            f"rule add iif {names.tgw_router_if(zone)} lookup {names.TABLE_EDGE} priority 200"
            for zone in range(lab.zones)
        ),
    ]
    return lines


def _private_default(vpc: VpcNet) -> str:
    if vpc.nat is None:  # a private subnet without a NAT gateway has no way out
        return f"route add blackhole default table {names.TABLE_PRIVATE}"
    return f"route add default via {vpc.nat.ip} dev {vpc.nat.router_if} onlink table {names.TABLE_PRIVATE}"


def peering_lines(key: VpcKey, vpc: VpcNet) -> list[str]:
    """This side of an active peering: routes to the peer blocks this VPC routes (peering.route_cidrs), in every
    subnet's table; an unrouted block follows the default route."""
    return [
        f"address add {names.PEERING[key]}/30 dev {names.PEERING_IF}",
        f"link set {names.PEERING_IF} up",
        *(
            f"route add {cidr} via {names.PEERING[other(key)]} dev {names.PEERING_IF} table {table}"
            for table in (names.TABLE_PUBLIC, names.TABLE_PRIVATE)
            for cidr in vpc.routed_peer_cidrs
        ),
    ]


# --- the transit gateway ----------------------------------------------------------------------------------


def add_transit_gateway(script: Script, lab: LabNet) -> None:
    """The transit gateway as a router namespace of its own, a VPC attachment per zone of each VPC (a veth to
    the VPC router), its route table holding every block of each VPC (propagation), and each VPC's subnet
    route tables sending the routed peer blocks to the attachment in their own zone."""
    assert lab.tgw_ns is not None  # layout sets it with link transit-gateway
    for key, vpc in lab.vpcs.items():
        for zone in range(lab.zones):
            script.veth(names.tgw_router_if(zone), vpc.router_ns, names.tgw_attachment_if(key, zone), lab.tgw_ns)
        script.ns(vpc.router_ns).ip.extend(tgw_vpc_lines(key, vpc, lab.zones))
    script.ns(lab.tgw_ns).ip.extend(tgw_lines(lab))


def tgw_vpc_lines(key: VpcKey, vpc: VpcNet, zones: int) -> list[str]:
    """The VPC router's side of its attachments: each zone's table routes the routed peer blocks to it."""
    lines = []
    for zone in range(zones):
        mine, theirs = names.tgw_link(key, zone)
        device = names.tgw_router_if(zone)
        lines += [f"address add {mine}/30 dev {device}", f"link set {device} up"]
        lines += [
            f"route add {cidr} via {theirs} dev {device} table {names.TABLE_TGW_ZONE_BASE + zone}"
            for cidr in vpc.routed_peer_cidrs
        ]
    return lines


def tgw_lines(lab: LabNet) -> list[str]:
    """The transit gateway's route table: each VPC's propagated blocks to that VPC's attachment; it routes by
    destination only and rewrites nothing. What arrives in zone N leaves by the destination VPC's attachment in
    zone N (one table per zone: the same routes, the zone's next hops)."""
    lines = ["link set lo up"]
    for key in lab.vpcs:
        for zone in range(lab.zones):
            mine = names.tgw_link(key, zone)[1]
            device = names.tgw_attachment_if(key, zone)
            lines += [f"address add {mine}/30 dev {device}", f"link set {device} up"]
            lines.append(f"rule add iif {device} lookup {names.TABLE_TGW_ROUTES_BASE + zone} priority 100")
    for zone in range(lab.zones):
        for key, vpc in lab.vpcs.items():
            router = names.tgw_link(key, zone)[0]
            lines += [
                f"route add {cidr} via {router} dev {names.tgw_attachment_if(key, zone)} "
                f"table {names.TABLE_TGW_ROUTES_BASE + zone}"
                for cidr in vpc.cidrs
            ]
        # A destination no attachment propagated is dropped (replace: the route outlives removed attachments).
        lines.append(f"route replace blackhole default table {names.TABLE_TGW_ROUTES_BASE + zone}")
    return lines


def source_dest_check(enis: list[Eni]) -> Table:
    """EC2's source/destination check: an ENI may only send from addresses assigned to it."""
    raw = Table("raw")
    for eni in enis:
        if not eni.source_dest_check:
            continue
        chain = raw.chain(f"SRC-{eni.router_if}")
        raw.add(f"PREROUTING -i {eni.router_if} -j {chain}")
        raw.rules.extend(f"-A {chain} -s {ip}/32 -j RETURN" for ip in eni.addresses)
        raw.add(f"{chain} -j DROP")
    return raw


# --- gateways, the internet, the instances --------------------------------------------------------------


def _internet_gateway(script: Script, lab: LabNet, vpc: VpcNet) -> None:
    ns = script.ns(vpc.igw_ns)
    mine, theirs = names.IGW_INET[vpc.key]
    ns.ip.extend(
        [
            "link set lo up",
            f"address add {names.ROUTER_IGW[1]}/30 dev {names.IGW_VPC_IF}",
            f"link set {names.IGW_VPC_IF} up",
            f"address add {mine}/30 dev {names.IGW_INET_IF}",
            f"link set {names.IGW_INET_IF} up",
            *(f"route add {cidr} via {names.ROUTER_IGW[0]} dev {names.IGW_VPC_IF}" for cidr in vpc.cidrs),
            f"route add default via {theirs} dev {names.IGW_INET_IF}",
        ]
    )
    ns.forwarding([names.IGW_VPC_IF, names.IGW_INET_IF])
    mappings = [(eni.ip, eni.public_ip) for eni in lab.enis_of(vpc.key) if eni.public_ip]
    ns.tables["nat"], ns.tables["filter"] = _one_to_one_nat(mappings)
    script.veth(names.IGW_INET_IF, vpc.igw_ns, names.inet_igw_if(vpc.key), lab.inet_ns)


def _one_to_one_nat(mappings: list[tuple[str, str]]) -> tuple[Table, Table]:
    """The internet gateway's 1:1 NAT; a source with no public address is dropped on its way out."""
    nat, flt = Table("nat"), Table("filter", policies={"FORWARD": "DROP"})
    for private, public in mappings:
        nat.add(f"PREROUTING -i {names.IGW_INET_IF} -d {public}/32 -j DNAT --to-destination {private}")
        nat.add(f"POSTROUTING -o {names.IGW_INET_IF} -s {private}/32 -j SNAT --to-source {public}")
        flt.add(f"FORWARD -i {names.IGW_VPC_IF} -o {names.IGW_INET_IF} -s {private}/32 -j ACCEPT")
    flt.rules.insert(0, "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    flt.add(f"FORWARD -i {names.IGW_INET_IF} -o {names.IGW_VPC_IF} -m conntrack --ctstate DNAT -j ACCEPT")
    return nat, flt


def _nat_gateway(script: Script, vpc: VpcNet, eni: Eni) -> None:
    ns = script.ns(eni.ns)
    ns.ip.extend(instance_lines(eni))
    ns.forwarding([eni.device])
    # It forwards back out of the interface it received on: no ICMP redirects (they would reroute nodes).
    ns.sysctls.update({"net/ipv4/conf/all/send_redirects": "0", f"net/ipv4/conf/{eni.device}/send_redirects": "0"})
    nat = ns.table("nat")
    # Whatever it forwards from any of the VPC's blocks to outside them leaves with its own private address.
    nat.rules.extend(f"-A POSTROUTING -o {eni.device} -d {cidr} -j RETURN" for cidr in vpc.cidrs)
    nat.rules.extend(f"-A POSTROUTING -o {eni.device} -s {cidr} -j SNAT --to-source {eni.ip}" for cidr in vpc.cidrs)
    flt = ns.table("filter")
    # Unsolicited inbound connections to a NAT gateway are dropped, not refused.
    flt.add("INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    flt.add("INPUT -j DROP")
    script.veth(eni.device, eni.ns, eni.router_if, vpc.router_ns)


def instance_lines(eni: Eni) -> list[str]:
    # noprefixroute: every packet goes to the VPC router at .1, as on EC2 where the fabric answers for the
    # whole subnet; the instance only ever resolves the router's address.
    return [
        "link set lo up",
        f"address add {eni.ip}/{eni.prefixlen} dev {eni.device} noprefixroute",
        f"link set {eni.device} up",
        f"route add {eni.gateway} dev {eni.device} scope link",
        f"route add default via {eni.gateway} dev {eni.device}",
    ]


def _instance(script: Script, eni: Eni) -> None:
    script.ns(eni.ns).ip.extend(instance_lines(eni))


def _internet(script: Script, lab: LabNet) -> None:
    ns = script.ns(lab.inet_ns)
    ns.ip.append("link set lo up")
    for key in lab.vpcs:
        link, (igw_side, mine) = names.inet_igw_if(key), names.IGW_INET[key]
        ns.ip.extend(
            [
                f"address add {mine}/30 dev {link}",
                f"link set {link} up",
                f"route add {PUBLIC_POOLS[key]} via {igw_side} dev {link}",
            ]
        )
    ns.ip.extend(
        [
            f"address add {names.OUTSIDE_GATEWAY}/32 dev out",
            "link set out up",
            f"route add {lab.outside_ip}/32 dev out scope link",
            # Private (RFC 1918) and unknown destinations are not routed on the internet: dropped, never refused.
            "route add blackhole default",
        ]
    )
    ns.forwarding([names.inet_igw_if(k) for k in lab.vpcs] + ["out"])


def _outside(script: Script, lab: LabNet) -> None:
    ip = ipaddress.IPv4Address(lab.outside_ip)
    script.ns(lab.outside_ns).ip.extend(
        [
            "link set lo up",
            f"address add {ip}/32 dev eth0",
            "link set eth0 up",
            f"route add {names.OUTSIDE_GATEWAY} dev eth0 scope link",
            f"route add default via {names.OUTSIDE_GATEWAY} dev eth0",
        ]
    )
    script.veth("eth0", lab.outside_ns, "out", lab.inet_ns)
