"""The address role classifier: whose address did the echo server report? (design.md, vocabulary)

Pure and independent of the model: the model reasons about mechanisms, this only looks at addresses.
"""

from __future__ import annotations

from peerprobe.topology import Node, Topology
from peerprobe.vocabulary import LB_TARGETS, Role, Target, Vantage


def classify(address: str, *, vantage: Vantage, target: Target, target_node: str | None, topology: Topology) -> Role:
    """First by target (node-port, load balancers), then client-pod, client-node, client-host, nat-gateway."""
    by_target = _by_target(address, target, target_node, topology)
    return by_target or _by_client(address, vantage, topology)


def _by_target(address: str, target: Target, target_node: str | None, topology: Topology) -> Role | None:
    if target == "node-port" and target_node and address in topology.vpc1.node(target_node).all_addresses():
        return "receiving-node"
    if target in LB_TARGETS:
        if any(address in node.all_addresses() for node in topology.vpc1.nodes):
            return "vpc1-node"
        if any(address in lb.private_ips for lb in topology.vpc1.load_balancer_facts.values()):
            return "load-balancer"
    return None


def _by_client(address: str, vantage: Vantage, topology: Topology) -> Role:
    side = topology.vpc1 if vantage == "vpc1-pod" else topology.vpc2
    if vantage in ("vpc1-pod", "vpc2-pod"):
        if side.busybox_pod and address == side.busybox_pod.ip:
            return "client-pod"
        if side.busybox_pod and address in _node_of(side.busybox_pod.node, side.nodes).all_addresses():
            return "client-node"
    if vantage == "vpc2-ec2" and address in {topology.peer_host.private_ip, topology.peer_host.public_ip}:
        return "client-host"
    if vantage != "outside" and address == side.nat_gateway:
        return "nat-gateway"
    return "other"


def _node_of(name: str, nodes: list[Node]) -> Node:
    return next(node for node in nodes if node.name == name)
