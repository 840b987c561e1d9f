"""The address role classifier, by design.md's rules: target first, then client-side roles in order."""

from __future__ import annotations

from peerprobe.probes.roles import classify
from peerprobe.topology import Topology


def test_node_port_address_of_the_addressed_node_is_receiving_node(workshop_topology: Topology) -> None:
    node = workshop_topology.vpc1.nodes[-1]  # also the client's own node: target rules come first
    role = classify(node.ip, vantage="vpc1-pod", target="node-port", target_node=node.name, topology=workshop_topology)
    assert role == "receiving-node"


def test_any_vpc1_node_behind_a_load_balancer_is_vpc1_node(workshop_topology: Topology) -> None:
    ip = workshop_topology.vpc1.nodes[1].ip
    assert classify(ip, vantage="vpc2-pod", target="internal-nlb", target_node=None, topology=workshop_topology) == (
        "vpc1-node"
    )


def test_the_load_balancers_own_address(workshop_topology: Topology) -> None:
    ip = workshop_topology.vpc1.load_balancer_facts["load-balancer"].private_ips[0]
    role = classify(ip, vantage="vpc2-ec2", target="load-balancer", target_node=None, topology=workshop_topology)
    assert role == "load-balancer"


def test_client_roles(workshop_topology: Topology) -> None:
    vpc2 = workshop_topology.vpc2
    assert vpc2.busybox_pod is not None
    node = vpc2.node(vpc2.busybox_pod.node)

    def role(ip: str, vantage: str = "vpc2-pod") -> str:
        return classify(ip, vantage=vantage, target="pod-ip", target_node=None, topology=workshop_topology)  # type: ignore[arg-type]

    assert role(vpc2.busybox_pod.ip) == "client-pod"
    assert role(node.ip) == "client-node"
    assert role(workshop_topology.peer_host.private_ip, "vpc2-ec2") == "client-host"
    assert role(str(workshop_topology.vpc1.nat_gateway), "vpc1-pod") == "nat-gateway"
    assert role("10.9.9.9") == "other"
