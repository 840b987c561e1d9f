"""Where each vantage stands: its VPC, the address it sends from, and the node or subnet it sits in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from peerprobe.model._walk import Actor, Packet
from peerprobe.model.facts import Facts, VpcKey
from peerprobe.topology import Node
from peerprobe.vocabulary import Vantage


@dataclass(frozen=True)
class Client:
    vantage: Vantage
    vpc: VpcKey | None  # None: on the internet
    kind: Literal["pod", "host", "outside"]
    ip: str
    node: Node | None = None  # a pod's node
    public_ip: str | None = None  # a host's own public address
    public_subnet: bool = False  # routes to the internet gateway rather than a NAT gateway

    def start(self, dst: str) -> Packet:
        actor = {"pod": Actor.CLIENT_POD, "host": Actor.CLIENT_HOST, "outside": Actor.OUTSIDE}[self.kind]
        who = {"pod": "the client pod", "host": "the EC2 host", "outside": "the outside client"}[self.kind]
        because = f"{who} connects from {self.ip}"
        start = Packet(actor=actor, ip=self.ip, dst=dst, why=(because,), headline=because, place=self.vantage)
        return start.marked(because)


def client_for(vantage: Vantage, facts: Facts) -> Client:
    if vantage == "vpc1-pod":
        return _pod_client(vantage, "vpc1", facts)
    if vantage == "vpc2-pod":
        return _pod_client(vantage, "vpc2", facts)
    if vantage == "vpc2-ec2":
        host = facts.topology.peer_host
        # Placement (design.md): the EC2 web host sits in a public subnet of VPC2.
        return Client(vantage, "vpc2", "host", host.private_ip, public_ip=host.public_ip, public_subnet=True)
    assert facts.topology.outside is not None, "no outside vantage in this topology"
    return Client(vantage, None, "outside", facts.topology.outside)


def _pod_client(vantage: Vantage, key: VpcKey, facts: Facts) -> Client:
    side = facts.side(key)
    assert side.busybox_pod is not None, f"no busybox pod in {key}"
    node = side.node(side.busybox_pod.node)
    return Client(vantage, key, "pod", side.busybox_pod.ip, node=node, public_subnet=node.subnet == "public")
