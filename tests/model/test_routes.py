"""peering.route_cidrs and the reply route: a VPC reaches, and answers, only the other VPC's blocks it routes."""

from __future__ import annotations

from typing import Any

from peerprobe.config import PhaseSnat, Snat
from peerprobe.model import places
from tests.model.helpers import cell, make_config, outcome_role, phase_cells
from tests.model.test_path import path_of

SECONDARY: dict[str, Any] = {
    "vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}, "vpc2": {"secondary_cidrs": ["100.65.0.0/16"]}},
    "clusters": {
        "vpc1": {"custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"}},
        "vpc2": {"custom_networking": {"enabled": True, "cidr": "100.65.0.0/16"}},
    },
}
PRIMARY = {**SECONDARY, "peering": {"route_cidrs": "primary"}}
EXTERNAL = PhaseSnat(vpc1=Snat(external_snat=True), vpc2=Snat(external_snat=True))


def test_a_pod_in_an_unrouted_secondary_cidr_is_unreachable_from_the_peer() -> None:
    """vpc2-ec2 -> pod-ip (100.64.x) with route_cidrs: primary: vpc2's route tables name only 172.16.0.0/16
    (peering guide, "Update your route tables": the route's destination is the peer's CIDR block)."""
    found = cell(phase_cells(make_config(**PRIMARY)), "vpc2-ec2", "pod-ip")
    assert outcome_role(found) == ("timeout", None) and "primary CIDR 172.16.0.0/16" in found.explanation[0]


def test_the_same_pod_is_reachable_when_every_cidr_is_routed() -> None:
    """vpc2-ec2 -> pod-ip (100.64.x) with route_cidrs: all (the default)."""
    assert outcome_role(cell(phase_cells(make_config(**SECONDARY)), "vpc2-ec2", "pod-ip")) == ("ok", "client-host")


def test_the_reply_to_an_unrouted_secondary_cidr_is_lost() -> None:
    """vpc1-pod -> peer-host with EXTERNALSNAT and route_cidrs: primary: the request reaches the host (vpc1 routes
    vpc2's primary), the answer to 100.64.x has no route in vpc2 (I: routes name blocks; no reverse path
    forwarding, peering guide)."""
    found = cell(phase_cells(make_config(**PRIMARY), EXTERNAL), "vpc1-pod", "peer-host")
    assert outcome_role(found) == ("timeout", None) and found.explanation[0].startswith("the reply to 100.64.")


def test_the_reply_follows_the_address_that_crossed_the_link_not_the_one_the_echo_sees() -> None:
    """vpc2-pod -> node-port with EXTERNALSNAT and route_cidrs: primary: kube-proxy masquerades, but the node
    un-NATs the answer to the vpc2 pod's 100.65.x address, which vpc1 does not route (I)."""
    found = cell(phase_cells(make_config(**PRIMARY), EXTERNAL), "vpc2-pod", "node-port", 0)
    assert outcome_role(found) == ("timeout", None) and "100.65." in found.explanation[0]


def test_snated_clients_need_no_route_to_the_secondary_cidr() -> None:
    """vpc2-pod -> node-port at baseline with route_cidrs: primary: the source is vpc2's node (primary CIDR)."""
    cells = phase_cells(make_config(**PRIMARY))
    assert outcome_role(cell(cells, "vpc2-pod", "node-port", 0)) == ("ok", "receiving-node")


def test_primary_routes_change_nothing_without_secondary_cidrs() -> None:
    """route_cidrs only matters for secondary blocks: the workshop topology predicts the same cells."""
    plain = [c.expected for c in phase_cells(make_config(), EXTERNAL)]
    primary = [c.expected for c in phase_cells(make_config(peering={"route_cidrs": "primary"}), EXTERNAL)]
    assert plain == primary


def test_an_unrouted_destination_stops_at_the_link_with_the_route_table_named() -> None:
    """The path names the mechanism: the route table, for a secondary CIDR it does not route."""
    path = path_of("vpc2-ec2", "pod-ip", make_config(**PRIMARY))
    assert path.hops[-1].at == places.PEERING and path.hops[-1].blocked_by == "route table (secondary CIDR not routed)"
