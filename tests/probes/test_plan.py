"""The probe plan: one node-port cell per VPC1 node, peer hosts from vpc1-pod only, absent targets omitted."""

from __future__ import annotations

from peerprobe.probes.plan import plan
from peerprobe.topology import Topology


def test_node_port_cell_per_vpc1_node(workshop_topology: Topology) -> None:
    cells = [s for s in plan(workshop_topology) if s.vantage == "vpc2-pod" and s.target == "node-port"]
    assert [s.target_node for s in cells] == [n.name for n in workshop_topology.vpc1.nodes]


def test_peer_hosts_only_from_vpc1_pod_and_nginx_only_from_outside(workshop_topology: Topology) -> None:
    specs = plan(workshop_topology)
    assert {s.vantage for s in specs if s.target.startswith("peer-host")} == {"vpc1-pod"}
    assert {s.vantage for s in specs if s.target == "nginx-nlb"} == {"outside"}


def test_headless_is_dialled_on_the_pod_port(workshop_topology: Topology) -> None:
    headless = next(s for s in plan(workshop_topology) if s.target == "headless")
    assert headless.address.endswith(":8080")


def test_no_public_ip_no_public_cell(workshop_topology: Topology) -> None:
    without = workshop_topology.model_copy(
        update={"peer_host": workshop_topology.peer_host.model_copy(update={"public_ip": None})}
    )
    assert not [s for s in plan(without) if s.target == "peer-host-public"]
