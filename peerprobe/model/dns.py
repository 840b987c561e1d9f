"""Name resolution as each vantage sees it (behaviour.md sections 3 and 5)."""

from __future__ import annotations

from peerprobe.model._walk import Blocked
from peerprobe.model.clients import Client
from peerprobe.model.facts import Facts
from peerprobe.topology import LoadBalancerFacts


def resolve_headless(client: Client, facts: Facts) -> tuple[str, str] | Blocked:
    echo = facts.topology.vpc1.echo_pod
    assert echo is not None
    if client.vantage == "vpc1-pod":
        return echo.ip, f"VPC1's CoreDNS answers the headless name with the ready pod's address {echo.ip}"
    reason = "only VPC1's cluster DNS knows VPC1's cluster.local names" + (
        "; VPC2's CoreDNS answers NXDOMAIN" if client.vantage == "vpc2-pod" else ""
    )
    return Blocked(outcome="dns-error", why=(reason,))


def resolve_load_balancer(lb: LoadBalancerFacts, facts: Facts) -> tuple[str, str]:
    """Public DNS: internet-facing names resolve to public addresses, internal ones to private addresses."""
    addresses = lb.public_ips if lb.scheme == "internet-facing" else lb.private_ips
    zone_index = _echo_zone_index(facts)
    address = addresses[zone_index % len(addresses)]
    kind = "public" if lb.scheme == "internet-facing" else "private"
    return address, f"the {lb.scheme} load balancer's name resolves to {kind} addresses ({address} …)"


def _echo_zone_index(facts: Facts) -> int:
    zones = sorted({node.az for node in facts.topology.vpc1.nodes})
    return zones.index(facts.echo_node.az) if facts.echo_node.az in zones else 0
