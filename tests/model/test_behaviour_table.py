"""behaviour.md section 7, every row and every SNAT column (D, X, Ex), one table-driven case each.

Assumptions of the table = the workshop defaults: private nodes behind NAT gateways, CNI >= 1.8,
externalTrafficPolicy Cluster, internet-facing CLB, internal NLB with instance targets, both SG rules open.
"""

from __future__ import annotations

import pytest

from peerprobe.config import ExperimentConfig
from peerprobe.topology import Topology
from tests.model.helpers import cell, phase_cells, snat

ECHO_NODE, OTHER_NODE, CLIENT_NODE = 0, 1, 2  # echo on the first VPC1 node, busybox on the last

# row: (vantage, target, node index, client cluster, {column: (outcome, role)}, may_timeout)
ROWS: dict[str, tuple[str, str, int | None, str, dict[str, tuple[str, str | None]], bool]] = {
    "a1": ("vpc1-pod", "pod-ip", None, "vpc1", {c: ("ok", "client-pod") for c in ["D", "X", "Ex"]}, False),
    "a2": ("vpc1-pod", "cluster-ip", None, "vpc1", {c: ("ok", "client-pod") for c in ["D", "X", "Ex"]}, False),
    "a3": ("vpc1-pod", "node-port", ECHO_NODE, "vpc1", {c: ("ok", "receiving-node") for c in ["D", "X", "Ex"]}, False),
    "a4": ("vpc1-pod", "node-port", OTHER_NODE, "vpc1", {c: ("ok", "receiving-node") for c in ["D", "X", "Ex"]}, False),
    "a4b": (
        "vpc1-pod",
        "node-port",
        CLIENT_NODE,
        "vpc1",
        {c: ("ok", "receiving-node") for c in ["D", "X", "Ex"]},
        False,
    ),
    "a5": ("vpc1-pod", "load-balancer", None, "vpc1", {c: ("ok", "vpc1-node") for c in ["D", "X", "Ex"]}, False),
    "a6": ("vpc1-pod", "internal-nlb", None, "vpc1", {c: ("ok", "vpc1-node") for c in ["D", "X", "Ex"]}, True),
    "a7": ("vpc1-pod", "headless", None, "vpc1", {c: ("ok", "client-pod") for c in ["D", "X", "Ex"]}, False),
    "a8": (
        "vpc1-pod",
        "peer-host",
        None,
        "vpc1",
        {"D": ("ok", "client-node"), "X": ("ok", "client-pod"), "Ex": ("ok", "client-pod")},
        False,
    ),
    "a9": ("vpc1-pod", "peer-host-public", None, "vpc1", {c: ("ok", "nat-gateway") for c in ["D", "X", "Ex"]}, False),
    "b1": ("vpc2-ec2", "pod-ip", None, "vpc2", {"D": ("ok", "client-host")}, False),
    "b2": ("vpc2-ec2", "cluster-ip", None, "vpc2", {"D": ("timeout", None)}, False),
    "b3": ("vpc2-ec2", "node-port", OTHER_NODE, "vpc2", {"D": ("ok", "receiving-node")}, False),
    "b4": ("vpc2-ec2", "load-balancer", None, "vpc2", {"D": ("ok", "vpc1-node")}, False),
    "b5": ("vpc2-ec2", "internal-nlb", None, "vpc2", {"D": ("ok", "vpc1-node")}, False),
    "b6": ("vpc2-ec2", "headless", None, "vpc2", {"D": ("dns-error", None)}, False),
    "c1": (
        "vpc2-pod",
        "pod-ip",
        None,
        "vpc2",
        {"D": ("ok", "client-node"), "X": ("ok", "client-pod"), "Ex": ("ok", "client-pod")},
        False,
    ),
    "c2": ("vpc2-pod", "cluster-ip", None, "vpc2", {c: ("timeout", None) for c in ["D", "X", "Ex"]}, False),
    "c3": ("vpc2-pod", "node-port", ECHO_NODE, "vpc2", {c: ("ok", "receiving-node") for c in ["D", "X", "Ex"]}, False),
    "c4": ("vpc2-pod", "load-balancer", None, "vpc2", {c: ("ok", "vpc1-node") for c in ["D", "X", "Ex"]}, False),
    "c5": ("vpc2-pod", "internal-nlb", None, "vpc2", {c: ("ok", "vpc1-node") for c in ["D", "X", "Ex"]}, False),
    "c6": ("vpc2-pod", "headless", None, "vpc2", {c: ("dns-error", None) for c in ["D", "X", "Ex"]}, False),
}
CASES = [(row, column) for row, spec in ROWS.items() for column in spec[4]]


@pytest.mark.parametrize(("row", "column"), CASES, ids=[f"{r}-{c}" for r, c in CASES])
def test_row(row: str, column: str, workshop: ExperimentConfig) -> None:
    vantage, target, node, client_cluster, columns, may_timeout = ROWS[row]
    found = cell(phase_cells(workshop, snat(column, client_cluster)), vantage, target, node)
    assert (found.expected.outcome, found.expected.client_address_role) == columns[column]
    assert found.expected.may_timeout is may_timeout
    assert found.explanation, "every cell says why"


ECHO_HOSTS = {
    "pod-ip": ("{echo}:8080", "http://{echo}:8080/"),
    "cluster-ip": ("{cip}", "http://{cip}:8080/"),
    "headless": ("{name}:8080", "http://{name}:8080/"),
    "load-balancer": ("{clb}", "http://{clb}:8080/"),
    "internal-nlb": ("{nlb}", "http://{nlb}:8080/"),
    "peer-host": ("{e2}", "http://{e2}:80/"),
    "peer-host-public": ("{e2pub}", "http://{e2pub}:80/"),
}


@pytest.mark.parametrize("target", sorted(ECHO_HOSTS))
def test_host_header_and_request_uri(target: str, workshop: ExperimentConfig, workshop_topology: Topology) -> None:
    vpc1 = workshop_topology.vpc1
    assert vpc1.echo_pod and workshop_topology.peer_host.public_ip
    names = {
        "echo": vpc1.echo_pod.ip,
        "cip": vpc1.cluster_ip,
        "name": vpc1.headless_name,
        "clb": vpc1.load_balancers["load-balancer"],
        "nlb": vpc1.load_balancers["internal-nlb"],
        "e2": workshop_topology.peer_host.private_ip,
        "e2pub": workshop_topology.peer_host.public_ip,
    }
    found = cell(phase_cells(workshop), "vpc1-pod", target)
    host, uri = (template.format(**names) for template in ECHO_HOSTS[target])
    assert (found.expected.host, found.expected.request_uri) == (host, uri)


def test_node_port_host_keeps_the_node_port_and_uri_shows_8080(
    workshop: ExperimentConfig, workshop_topology: Topology
) -> None:
    node = workshop_topology.vpc1.nodes[OTHER_NODE]
    found = cell(phase_cells(workshop), "vpc2-pod", "node-port", OTHER_NODE)
    assert found.expected.host == f"{node.ip}:{workshop_topology.vpc1.node_port}"
    assert found.expected.request_uri == f"http://{node.ip}:8080/"


def test_unreachable_cells_state_no_host(workshop: ExperimentConfig) -> None:
    found = cell(phase_cells(workshop), "vpc2-pod", "cluster-ip")
    assert found.expected.host is None and found.expected.request_uri is None
