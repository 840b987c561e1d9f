"""Where the lab places a visiting experiment on an owner's clusters (attach mode, lab/guest.py): every address
and port of each visitor apart from the owner's and from every other visitor's. Pure."""

from __future__ import annotations

import pytest

from peerprobe.backends.lab.guest import MAX_GUESTS, Guest, free_slot, new_guest
from peerprobe.config import ExperimentConfig, from_mapping
from peerprobe.errors import ConflictError
from peerprobe.topology import Topology, plan

OWNER = from_mapping({"name": "owner"})


def addresses(topology: Topology) -> list[str]:
    vpc1, vpc2 = topology.vpc1, topology.vpc2
    pods = [vpc1.echo_pod, vpc1.nginx_pod, vpc1.busybox_pod, vpc2.busybox_pod]
    lbs = [ip for facts in vpc1.load_balancer_facts.values() for ip in (*facts.private_ips, *facts.public_ips)]
    return [*(p.ip for p in pods if p is not None), *lbs, *([vpc1.cluster_ip] if vpc1.cluster_ip else [])]


def ports(topology: Topology) -> list[int]:
    return [*topology.vpc1.service_node_ports.values(), *topology.vpc1.health_check_node_ports.values()]


def visitors(config: ExperimentConfig = OWNER) -> list[Guest]:
    local = from_mapping({"name": "v", "services": {"external_traffic_policy": "Local"}})
    return [
        new_guest(config, plan(config), local.model_copy(update={"name": f"v{slot}"}), slot=slot)
        for slot in range(MAX_GUESTS)
    ]


def test_every_visitor_has_addresses_of_its_own() -> None:
    owner = plan(OWNER)
    taken = [*addresses(owner), *(a for n in (*owner.vpc1.nodes, *owner.vpc2.nodes) for a in n.all_addresses())]
    placed = [a for guest in visitors() for a in addresses(guest.topology)]
    assert len(set(placed)) == len(placed)
    assert set(placed).isdisjoint(taken)


def test_every_visitor_has_ports_and_names_of_its_own() -> None:
    placed = [p for guest in visitors() for p in ports(guest.topology)]
    assert len(set(placed)) == len(placed) and set(placed).isdisjoint(ports(plan(OWNER)))
    names = [n for guest in visitors() for n in guest.topology.vpc1.load_balancers.values()]
    assert len(set(names)) == len(names) and set(names).isdisjoint(plan(OWNER).vpc1.load_balancers.values())
    assert len({guest.tag for guest in visitors()}) == MAX_GUESTS


def test_the_visitors_pods_sit_on_the_owners_nodes_as_placed() -> None:
    owner, guest = plan(OWNER), visitors()[0].topology
    assert guest.vpc1.echo_pod is not None and guest.vpc1.echo_pod.node == owner.vpc1.nodes[0].name
    assert guest.vpc1.busybox_pod is not None and guest.vpc1.busybox_pod.node == owner.vpc1.nodes[-1].name
    assert guest.vpc2.busybox_pod is not None and guest.vpc2.busybox_pod.node == owner.vpc2.nodes[0].name


def test_a_fifth_visitor_is_refused_naming_the_environment() -> None:
    guests = {guest.name: guest for guest in visitors()}
    full = r"lab environment lab:owner:cn-northwest-1: 4 experiments are attached already"
    with pytest.raises(ConflictError, match=full):
        free_slot(guests, "lab:owner:cn-northwest-1")


def test_a_subnet_too_small_for_a_visitor_is_refused_naming_the_address() -> None:
    small = from_mapping({"name": "owner", "vpcs": {"vpc1": {"cidr": "10.9.0.0/24"}}})
    with pytest.raises(
        ConflictError, match=r"no free address for the nginx pod of slot 1: 10\.9\.0\.\d+ is the owner.s"
    ):
        visitors(small)
