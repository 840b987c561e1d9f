"""Attach mode on the lab: another experiment's namespace on this environment's clusters, as the owner's API
server, CNI and controllers give it addresses (its pods on the owner's nodes, its Services' cluster IPs and
ports, its load balancers), kept apart from the owner's own. Pure: environment.py builds it into the data plane.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from pydantic import BaseModel, Field

from peerprobe.backends.lab.net import KubeService, Visitor, guest_tag
from peerprobe.backends.lab.net._layout import subnet_of
from peerprobe.backends.steps import VpcKey
from peerprobe.config import AZ_COUNT, ExperimentConfig
from peerprobe.errors import ConflictError
from peerprobe.topology import PUBLIC_POOLS, LoadBalancerFacts, Node, Pod, Topology, dns_suffix, subnets

MAX_GUESTS = 4  # the slots below keep every visitor's addresses and ports apart from the owner's
SLOT_ADDRESSES = 8  # per slot, from the top of a subnet: pods at +0..2, load balancer nodes at +4..6
NODE_PORT_BASE, NODE_PORT_STEP = 30100, 20  # clear of the plan's ports (30080, 31080-31497, 32227, 32497)
SERVICE_IP_OFFSET = 64  # after the plan's ClusterIP and the few the owner's Services take after it
APP_SLOTS = {"echo": 0, "busybox": 1, "nginx": 2}
LB_KINDS = ("load-balancer", "internal-nlb", "nginx-nlb")
SERVICE_ORDER = ("nodeport", *LB_KINDS)


class Guest(BaseModel):
    """One visiting experiment on the owner's clusters: what its run applied there, and where it was placed."""

    name: str  # the visiting experiment's name
    namespace: str  # peerprobe-<name>, its only namespace here
    tag: str
    slot: int
    topology: Topology  # the owner's plan with the visitor's pods, allocations and load balancers
    clusters: list[VpcKey] = Field(default_factory=list)  # where its namespace exists
    deployments: dict[VpcKey, list[dict[str, Any]]] = Field(default_factory=dict)
    services: list[KubeService] = Field(default_factory=list)  # applied to VPC1
    elb_security_group: str | None = None  # its Classic ELB's own group, made by the in-tree controller

    def visitor(self) -> Visitor | None:
        """What the data plane builds of it: the pods of the clusters it deployed to, its Services; None when
        it has nothing running."""
        if not any(self.deployments.values()):
            return None
        vpc1, vpc2 = self.topology.vpc1, self.topology.vpc2
        if not self.deployments.get("vpc1"):
            vpc1 = vpc1.model_copy(update={"echo_pod": None, "busybox_pod": None, "nginx_pod": None})
        if not self.deployments.get("vpc2"):
            vpc2 = vpc2.model_copy(update={"busybox_pod": None})
        placed = self.topology.model_copy(update={"vpc1": vpc1, "vpc2": vpc2})
        return Visitor(tag=self.tag, topology=placed, services=self.services)


def new_guest(owner: ExperimentConfig, planned: Topology, visitor: ExperimentConfig, *, slot: int) -> Guest:
    """The visitor's place on the owner's clusters in allocation slot `slot` (0 ≤ slot < MAX_GUESTS)."""
    tag = guest_tag(visitor.name)
    return Guest(
        name=visitor.name,
        namespace=f"peerprobe-{visitor.name}",
        tag=tag,
        slot=slot,
        topology=_allocated(owner, planned, visitor, slot),
    )


def free_slot(guests: dict[str, Guest], owner: str) -> int:
    taken = {g.slot for g in guests.values()}
    free = next((slot for slot in range(MAX_GUESTS) if slot not in taken), None)
    if free is None:
        raise ConflictError(
            f"lab environment {owner}: {MAX_GUESTS} experiments are attached already ({', '.join(sorted(guests))})",
            resource="lab environment",
            resource_id=owner,
            state="full",
        )
    return free


def _allocated(owner: ExperimentConfig, planned: Topology, visitor: ExperimentConfig, slot: int) -> Topology:
    """The owner's plan with the visitor's pods (design.md placement, on the owner's nodes), its Services'
    cluster IPs and node ports, and its load balancers."""
    vpc1, vpc2 = planned.vpc1, planned.vpc2
    first, last = vpc1.nodes[0], vpc1.nodes[-1]
    ports = {kind: NODE_PORT_BASE + NODE_PORT_STEP * slot + i for i, kind in enumerate(SERVICE_ORDER)}
    local = visitor.services.external_traffic_policy == "Local"
    health = {kind: NODE_PORT_BASE + NODE_PORT_STEP * slot + 10 + i for i, kind in enumerate(LB_KINDS)}
    facts = _load_balancers(owner, visitor, slot)
    service_cidr = ipaddress.IPv4Network(owner.clusters.vpc1.service_cidr)
    cluster_ip = service_cidr.network_address + service_cidr.num_addresses // 2 + SERVICE_IP_OFFSET + 16 * slot
    allocated = vpc1.model_copy(
        update={
            "echo_pod": _pod(owner, planned, "vpc1", first, "echo", slot),
            "nginx_pod": _pod(owner, planned, "vpc1", first, "nginx", slot),
            "busybox_pod": _pod(owner, planned, "vpc1", last, "busybox", slot),
            "cluster_ip": str(cluster_ip),
            "node_port": ports["nodeport"],
            "service_node_ports": ports,
            "health_check_node_ports": health if local else {},
            "headless_name": f"source-ip-app-headless.peerprobe-{visitor.name}.svc.cluster.local",
            "load_balancers": {kind: lb.dns_name for kind, lb in facts.items()},
            "load_balancer_facts": facts,
        }
    )
    busybox = _pod(owner, planned, "vpc2", vpc2.nodes[0], "busybox", slot)
    return planned.model_copy(update={"vpc1": allocated, "vpc2": vpc2.model_copy(update={"busybox_pod": busybox})})


def _top(subnet: ipaddress.IPv4Network, slot: int, offset: int) -> str:
    """From the top of the subnet down (AWS keeps its last address): clear of the plan's low offsets."""
    return str(subnet.broadcast_address - 1 - SLOT_ADDRESSES * slot - offset)


def _pod(owner: ExperimentConfig, planned: Topology, key: VpcKey, node: Node, app: str, slot: int) -> Pod:
    """The CNI's next free address on the node's pod ENI (its own subnet, or the ENIConfig's)."""
    cluster, vpc = getattr(owner.clusters, key), getattr(owner.vpcs, key)
    source = node.addresses[1] if cluster.pods_on_secondary_eni and len(node.addresses) > 1 else node.ip
    subnet, _ = subnet_of(source, vpc, cluster)
    ip = _top(subnet, slot, APP_SLOTS[app])
    _refuse_taken(planned, ip, f"{app} pod of slot {slot}")
    return Pod(ip=ip, node=node.name)


def _refuse_taken(planned: Topology, ip: str, what: str) -> None:
    side_pods = [planned.vpc1.echo_pod, planned.vpc1.nginx_pod, planned.vpc1.busybox_pod, planned.vpc2.busybox_pod]
    taken = {a for side in (planned.vpc1, planned.vpc2) for n in side.nodes for a in n.all_addresses()}
    taken |= {p.ip for p in side_pods if p is not None} | {planned.peer_host.private_ip}
    if ip in taken:
        raise ConflictError(
            f"lab: no free address for the {what}: {ip} is the owner's; the subnet is too small to attach to",
            resource="address",
            resource_id=ip,
            state="taken",
        )


def _load_balancers(owner: ExperimentConfig, visitor: ExperimentConfig, slot: int) -> dict[str, LoadBalancerFacts]:
    """The visitor's load balancers in the owner's VPC: names of their own, nodes at addresses of their own, in
    the public subnets when internet-facing, else the private ones (as the plan's)."""
    layout = subnets(owner.vpcs.vpc1)
    schemes = {
        "load-balancer": visitor.services.load_balancer.scheme,
        "internal-nlb": "internal",
        "nginx-nlb": "internet-facing",
    }
    found = {}
    for position, (kind, scheme) in enumerate(schemes.items()):
        public = scheme == "internet-facing"
        found[kind] = LoadBalancerFacts(
            dns_name=_dns_name(owner, visitor, kind, internal=not public and kind == "load-balancer"),
            scheme=scheme,
            private_ips=[_top(subnet, slot, 4 + position) for subnet in layout["public" if public else "private"]],
            public_ips=[_public(slot, position, zone) for zone in range(AZ_COUNT)] if public else [],
        )
    return found


def _public(slot: int, position: int, zone: int) -> str:
    return str(ipaddress.IPv4Network(PUBLIC_POOLS["vpc1"]).network_address + 40 + 9 * slot + 3 * position + zone)


def _dns_name(owner: ExperimentConfig, visitor: ExperimentConfig, kind: str, *, internal: bool) -> str:
    digest = hashlib.sha256(f"{visitor.name}/{kind}".encode()).hexdigest()
    region, suffix = owner.region, dns_suffix(owner.region)
    if kind == "load-balancer":
        return f"{'internal-' if internal else ''}a{digest[:31]}-{int(digest[31:40], 16)}.{region}.elb.{suffix}"
    return f"a{digest[:31]}-{digest[31:47]}.elb.{region}.{suffix}"
