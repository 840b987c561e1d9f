"""The HTML report's drawings as DOT: the topology (both VPCs, their subnets, nodes, pods, load balancers and
gateways, the peering, the EC2 host, the outside client) and one cell's path, hop by hop."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from peerprobe.model import places
from peerprobe.model.path import CellPath, Hop, Rewrite
from peerprobe.report._graph import label, quoted
from peerprobe.topology import ClusterTopology, Node, Topology

REWRITE_COLOUR, KEPT_COLOUR, BLOCKED_COLOUR = "#fde68a", "#dcfce7", "#fecaca"
_GRAPH = (
    'graph [fontname="Helvetica", fontsize=11, bgcolor="transparent", pad=0.15, nodesep=0.18, ranksep=0.4];\n'
    'node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#94a3b8", fontname="Helvetica", '
    'fontsize=10, margin="0.06,0.03"];\n'
    'edge [color="#64748b", fontname="Helvetica", fontsize=9, arrowsize=0.6];\n'
)
_KIND_FILL = {
    "pod": "#ecfdf5",
    "node": "#f8fafc",
    "gateway": "#fef9c3",
    "lb": "#ede9fe",
    "link": "#e0f2fe",
    "host": "#fff7ed",
    "outside": "#f1f5f9",
}
LB_NAMES = {
    "load-balancer": "Classic ELB (load-balancer)",
    "internal-nlb": "internal NLB",
    "nginx-nlb": "nginx NLB (internet-facing)",
}


def dom_id(place: str) -> str:
    """A safe, stable id for a place in the page (places carry node names from outside)."""
    # Letters and digits only: Graphviz writes a dash in an id as an entity.
    return "pl" + hashlib.sha1(place.encode()).hexdigest()[:12]


def place_kind(place: str) -> str:
    if place in (places.ECHO_POD, places.NGINX_POD, "vpc1-pod", "vpc2-pod"):
        return "pod"
    if place == places.PEER_HOST:
        return "host"
    if place == "outside" or place == places.INTERNET:
        return "outside"
    prefix = place.split(":", 1)[0]
    return {"node": "node", "nat": "gateway", "igw": "gateway", "lb": "lb", "branch-eni": "pod"}.get(prefix, "link")


def place_title(place: str, topology: Topology) -> tuple[str, str]:
    """What a place is called in the report, and its address (or empty)."""
    prefix, _, rest = place.partition(":")
    if prefix == "node":
        return f"node {rest.split('.')[0]}", _node_ip(rest, topology)
    if prefix in ("nat", "igw"):
        what = "NAT gateway" if prefix == "nat" else "internet gateway"
        side = _side(rest, topology)
        return f"{rest.upper()} {what}", (side.nat_gateway or "") if prefix == "nat" and side else ""
    if prefix == "router":
        return f"{rest.upper()} router", ""
    if prefix == "branch-eni":
        title, address = place_title(rest, topology)
        return f"branch ENI of the {title}", address
    if prefix == "lb":
        facts = topology.vpc1.load_balancer_facts.get(rest)
        return LB_NAMES.get(rest, rest), ", ".join(facts.private_ips[:1] + facts.public_ips[:1]) if facts else ""
    return _plain_title(place, topology)


def _plain_title(place: str, topology: Topology) -> tuple[str, str]:
    vpc1, vpc2 = topology.vpc1, topology.vpc2
    known = {
        "vpc1-pod": ("vpc1-pod (busybox)", vpc1.busybox_pod.ip if vpc1.busybox_pod else ""),
        "vpc2-pod": ("vpc2-pod (busybox)", vpc2.busybox_pod.ip if vpc2.busybox_pod else ""),
        places.PEER_HOST: ("EC2 host (vpc2-ec2)", _host_addresses(topology)),
        "outside": ("outside client", topology.outside or ""),
        places.ECHO_POD: ("echo pod", vpc1.echo_pod.ip if vpc1.echo_pod else ""),
        places.NGINX_POD: ("nginx pod", vpc1.nginx_pod.ip if vpc1.nginx_pod else ""),
        places.PEERING: ("VPC peering", ""),
        places.TRANSIT_GATEWAY: ("transit gateway", ""),
        places.INTERNET: ("internet", ""),
    }
    return known.get(place, (place, ""))


def _host_addresses(topology: Topology) -> str:
    host = topology.peer_host
    return host.private_ip + (f" / {host.public_ip}" if host.public_ip else "")


def _side(key: str, topology: Topology) -> ClusterTopology | None:
    return {"vpc1": topology.vpc1, "vpc2": topology.vpc2}.get(key)


def _node_ip(name: str, topology: Topology) -> str:
    nodes = [*topology.vpc1.nodes, *topology.vpc2.nodes]
    return next((node.ip for node in nodes if node.name == name), "")


# --- the topology -----------------------------------------------------------------------------------------------


def topology_dot(topology: Topology, *, link: str = places.PEERING) -> str:
    """Both VPCs with their subnets, the link between them (``link``: the peering or the transit gateway) and the
    internet beside them."""
    lines = ["digraph topology {", _GRAPH, "graph [rankdir=LR, compound=true, newrank=true];", "edge [arrowhead=none];"]
    lines += _internet(topology)
    for key in ("vpc1", "vpc2"):
        lines += _vpc(key, topology)
    lines += _links(topology, link)
    return "\n".join([*lines, "}"])


def _place_node(place: str, topology: Topology, *, extra: str = "") -> str:
    title, address = place_title(place, topology)
    rows = [(title, "")] + ([(address, "")] if address else [])
    fill = _KIND_FILL[place_kind(place)]
    return (
        f'{_dot_name(place)} [id={quoted(dom_id(place))}, class="place", label={label(rows)}, '
        f'fillcolor="{fill}", tooltip={quoted(title)}{extra}];'
    )


def _dot_name(place: str) -> str:
    return "n_" + dom_id(place).removeprefix("pl")


def _internet(topology: Topology) -> list[str]:
    lines = ["subgraph cluster_internet {", 'label="internet"; style="rounded,dashed"; color="#94a3b8";']
    lines.append(_place_node(places.INTERNET, topology, extra=", shape=ellipse"))
    if topology.outside:
        lines.append(_place_node("outside", topology))
    return [*lines, "}"]


def _vpc(key: str, topology: Topology) -> list[str]:
    side = _side(key, topology)
    assert side is not None
    lines = [
        f"subgraph cluster_{key} {{",
        f"label={label([(f'{key.upper()} · {side.cidr}', '')])};",
        'style="rounded,filled"; fillcolor="#eff6ff"; color="#60a5fa"; fontsize=12;',
        _place_node(places.internet_gateway(key), topology),
    ]
    for subnet in ("public", "private"):
        lines += _subnet(key, subnet, side, topology)
    return [*lines, "}"]


def _subnet(key: str, subnet: str, side: ClusterTopology, topology: Topology) -> list[str]:
    members = list(_subnet_members(key, subnet, side, topology))
    nodes = [node for node in side.nodes if node.subnet == subnet]
    if not members and not nodes:
        return []
    lines = [
        f"subgraph cluster_{key}_{subnet} {{",
        f'label="{subnet} subnets"; style="rounded,filled"; fillcolor="#ffffff"; color="#cbd5e1"; fontsize=10;',
    ]
    lines += [_place_node(place, topology) for place in members]
    for index, node in enumerate(nodes):
        lines += _k8s_node(f"{key}_{subnet}_{index}", node, side, topology)
    return [*lines, "}"]


def _subnet_members(key: str, subnet: str, side: ClusterTopology, topology: Topology) -> Iterator[str]:
    if subnet == "public" and side.nat_gateway:
        yield places.nat_gateway(key)
    if key == "vpc2" and subnet == "public":
        yield places.PEER_HOST
    for kind, facts in side.load_balancer_facts.items() if key == "vpc1" else ():
        if (facts.scheme == "internet-facing") == (subnet == "public"):
            yield places.load_balancer(kind)


def _k8s_node(cluster_id: str, node: Node, side: ClusterTopology, topology: Topology) -> list[str]:
    pods = [place for place, pod in _pods(side) if pod == node.name]
    lines = [
        f"subgraph cluster_node_{cluster_id} {{",
        'label=""; style="rounded,dashed"; color="#cbd5e1";',
        _place_node(places.node(node.name), topology),
    ]
    lines += [_place_node(place, topology) for place in pods]
    return [*lines, "}"]


def _pods(side: ClusterTopology) -> list[tuple[str, str]]:
    """(place, node name) of the pods the report knows of on one side."""
    is_vpc1 = side.echo_pod is not None or side.load_balancer_facts
    found = [("vpc1-pod" if is_vpc1 else "vpc2-pod", side.busybox_pod.node)] if side.busybox_pod else []
    found += [(places.ECHO_POD, side.echo_pod.node)] if side.echo_pod else []
    found += [(places.NGINX_POD, side.nginx_pod.node)] if side.nginx_pod else []
    return found


def _links(topology: Topology, link: str) -> list[str]:
    internet, peering = _dot_name(places.INTERNET), _dot_name(link)
    lines = [_place_node(link, topology, extra=", shape=hexagon")]
    lines += [f"{_dot_name(places.internet_gateway(key))} -> {internet};" for key in ("vpc1", "vpc2")]
    if topology.outside:
        lines.append(f"{_dot_name('outside')} -> {internet};")
    for key in ("vpc1", "vpc2"):
        side = _side(key, topology)
        if side and side.nat_gateway:
            lines.append(f"{_dot_name(places.nat_gateway(key))} -> {_dot_name(places.internet_gateway(key))};")
        anchor = _anchor(key, topology)
        if anchor:
            lines.append(f'{peering} -> {_dot_name(anchor)} [lhead="cluster_{key}", style=bold, color="#0284c7"];')
    return lines


def _anchor(key: str, topology: Topology) -> str | None:
    side = _side(key, topology)
    return places.node(side.nodes[0].name) if side and side.nodes else None


# --- one cell's path ---------------------------------------------------------------------------------------------


def path_dot(path: CellPath, topology: Topology) -> str:
    """The hops left to right, each with its addresses and what happened to them there."""
    lines = ["digraph path {", _GRAPH, "graph [rankdir=LR, ranksep=0.3];"]
    for index, hop in enumerate(path.hops):
        fill = _KIND_FILL[place_kind(hop.at)]
        lines.append(f'h{index} [label={label(hop_rows(index, hop, topology))}, fillcolor="{fill}"];')
    lines += [f"h{index - 1} -> h{index};" for index in range(1, len(path.hops))]
    return "\n".join([*lines, "}"])


def hop_rows(index: int, hop: Hop, topology: Topology) -> list[tuple[str, str]]:
    title, _ = place_title(hop.at, topology)
    rows = [(f"{index + 1}. {title}", ""), (f"src {hop.src or '?'}\ndst {hop.dst or '?'}", "")]
    rows += [(rewrite_text(rewrite, by=rewrite.by.replace(" / ", " /\n")), REWRITE_COLOUR) for rewrite in hop.rewrites]
    rows += [(f"kept by {name}", KEPT_COLOUR) for name in hop.kept_by]
    if hop.blocked_by:
        rows.append((f"stopped: {hop.blocked_by}", BLOCKED_COLOUR))
    return rows


def rewrite_text(rewrite: Rewrite, *, by: str = "", between: str = "\n") -> str:
    """``src 192.168.96.19 → 192.168.96.16``, then what did it (``by`` stands in for its name, wrapped)."""
    field = "src" if rewrite.field == "source" else "dst"
    return f"{field} {rewrite.before} → {rewrite.after}{between}{by or rewrite.by}"
