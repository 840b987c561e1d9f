"""kube-proxy in iptables mode, as EKS runs it (behaviour.md section 2).

Sources: kubernetes pkg/proxy/iptables/proxier.go (KUBE-SVC/KUBE-SEP DNAT, KUBE-EXT unconditional
KUBE-MARK-MASQ under Cluster, KUBE-SVL local endpoints only under Local), cmd/kube-proxy/app/server_linux.go
(no cluster CIDR -> no-op local detector), awslabs/amazon-eks-ami#152 (EKS leaves clusterCIDR empty).
"""

from __future__ import annotations

from peerprobe.model import places
from peerprobe.model._walk import Actor, Blocked, Packet, Step, block
from peerprobe.model.facts import Facts
from peerprobe.topology import Node

DNAT = "kube-proxy KUBE-SVC/KUBE-SEP DNAT"
MASQUERADE = "KUBE-MARK-MASQ / KUBE-POSTROUTING MASQUERADE"


def cluster_ip(facts: Facts) -> Step:
    """DNAT to the endpoint on the client's own node; masquerade only for hairpin traffic."""

    def step(packet: Packet) -> Packet:
        echo = facts.topology.vpc1.echo_pod
        assert echo is not None
        at = places.node(facts.vpc1_client_node.name)
        packet = packet.to(echo.ip, at=at, by=DNAT).note(
            f"kube-proxy on the client's node DNATs {facts.topology.vpc1.cluster_ip}:80 to {echo.ip}:8080; "
            "no KUBE-MARK-MASQ: masqueradeAll=false and EKS's empty clusterCIDR gives a no-op local detector"
        )
        if packet.ip == echo.ip:  # KUBE-SEP-*: '-s <endpoint> -j KUBE-MARK-MASQ' (hairpin)
            node = facts.echo_node
            return packet.becomes(
                Actor.CLIENT_NODE, node.ip, "hairpin: the client is the endpoint, so it is masqueraded", by=MASQUERADE
            )
        return packet

    return step


def no_rule_here(where: str) -> Step:
    def step(packet: Packet) -> Packet:
        return packet.note(f"{where} has no kube-proxy rule for {packet.dst}: ClusterIPs exist only in VPC1's nodes")

    return step


def external(facts: Facts, *, receiving: Node | None, actor: Actor) -> Step:
    """NodePort or load-balancer traffic arriving at a VPC1 node (``receiving``; None: one the LB picks)."""

    def step(packet: Packet) -> Packet | Blocked:
        node = receiving or facts.echo_node
        which = "the addressed node" if receiving else "a VPC1 node"
        at = places.node(node.name)
        if facts.config.services.external_traffic_policy == "Cluster":
            return _to_endpoint(packet, facts, at).becomes(
                actor,
                node.ip,
                f"externalTrafficPolicy Cluster: KUBE-EXT-* marks for masquerade and KUBE-POSTROUTING "
                f"MASQUERADEs to the address of the node that received it ({which})",
                at=at,
                by=MASQUERADE,
            )
        return _local(packet.marked("", at=at), node, facts)

    return step


def nginx(facts: Facts) -> Step:
    """The nginx NLB's connection at the VPC1 node it picked: the nginx Service sets no externalTrafficPolicy, so
    Cluster applies (KUBE-EXT-* marks for masquerade): DNAT to the nginx pod, then MASQUERADE to the node."""

    def step(packet: Packet) -> Packet:
        nginx_pod, node = facts.topology.vpc1.nginx_pod, facts.echo_node
        if nginx_pod is None:
            return packet
        at = places.node(node.name)
        moved = packet.to(
            nginx_pod.ip, f"kube-proxy DNATs the nginx NodePort to the nginx pod {nginx_pod.ip}:80", at=at, by=DNAT
        )
        return moved.becomes(
            Actor.VPC1_NODE,
            node.ip,
            "the nginx Service keeps the default externalTrafficPolicy Cluster: KUBE-POSTROUTING MASQUERADEs to the "
            "address of the node that received it",
            at=at,
            by=MASQUERADE,
        )

    return step


def _to_endpoint(packet: Packet, facts: Facts, at: str, by: str = DNAT) -> Packet:
    echo = facts.topology.vpc1.echo_pod
    assert echo is not None
    return packet.to(echo.ip, f"kube-proxy DNATs the Service port to the echo pod {echo.ip}:8080", at=at, by=by)


def _local(packet: Packet, node: Node, facts: Facts) -> Packet | Blocked:
    if node.name == facts.echo_node.name:
        return _to_endpoint(packet, facts, packet.place, "KUBE-SVL-* DNAT (local endpoint)").note(
            f"externalTrafficPolicy Local: KUBE-SVL-* sends to the local endpoint on {node.name}, no masquerade",
            headline=True,
        )
    return block(
        packet,
        "timeout",
        f"externalTrafficPolicy Local: {node.name} has no local endpoint, so kube-proxy drops it "
        "(KUBE-EXTERNAL-SERVICES); EKS's no-op local detector writes no pod short-circuit",
        by="KUBE-EXTERNAL-SERVICES DROP",
    )
