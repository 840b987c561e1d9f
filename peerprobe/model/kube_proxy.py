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
            own_pod = _own_pod_leaving_by_its_eni(packet, node, facts)
            if own_pod == "branch":
                return _branch_masquerade_dropped(_to_endpoint(packet, facts, at), node, facts)
            address = node.addresses[1] if own_pod == "secondary" else node.ip
            because = f"MASQUERADEs to the address of the node that received it ({which})"
            if own_pod == "secondary":
                because = (
                    f"MASQUERADEs to {address}, the address of {node.name}'s secondary ENI: the client pod lives on "
                    "that node, and its rule 'from <pod> lookup <ENI table>' sends the DNATed packet out that ENI"
                )
            return _to_endpoint(packet, facts, at).becomes(
                actor,
                address,
                f"externalTrafficPolicy Cluster: KUBE-EXT-* marks for masquerade and KUBE-POSTROUTING {because}",
                at=at,
                by=MASQUERADE,
            )
        return _local(packet.marked("", at=at), node, facts)

    return step


def _own_pod_leaving_by_its_eni(packet: Packet, node: Node, facts: Facts) -> str:
    """Whether the connection comes from the VPC1 client pod on ``node`` itself, towards an endpoint on another
    node, and which of the pod's routing rules then picks the way out: "branch" (its branch ENI's VLAN table),
    "secondary" (its secondary ENI's table), "" (the main table: the primary ENI).

    kube-proxy DNATs in PREROUTING, as the packet arrives from the pod's veth (KUBE-NODEPORTS matches any local
    destination, kubernetes proxier.go), so the node routes the DNATed packet by the rules for the pod's own
    traffic (S: amazon-vpc-cni-k8s driver.go: 'from <pod> lookup <ENI table>' for a pod on a secondary ENI; for a
    branch-ENI pod 'iif <veth> lookup <vlan table>' (strict) or 'from <pod> lookup <vlan table>' (standard)), and
    MASQUERADE takes the address of the interface it leaves by (I: Linux's MASQUERADE target)."""
    busybox = facts.topology.vpc1.busybox_pod
    if busybox is None or packet.ip != busybox.ip or busybox.node != node.name or node.name == facts.echo_node.name:
        return ""
    if facts.branch_eni("vpc1", "busybox"):
        return "branch"
    if facts.cluster("vpc1").pods_on_secondary_eni and len(node.addresses) > 1:
        return "secondary"
    return ""


def _branch_masquerade_dropped(packet: Packet, node: Node, facts: Facts) -> Blocked:
    # I: the VLAN device of a branch ENI has no IPv4 address (driver.go adds only routes on it), so MASQUERADE
    # picks a node address, and the branch ENI, whose only address is the pod's, sends nothing from another
    # source (VPC user guide: source/destination checking is on for every network interface by default). The
    # best-practices guide (sgpp) states the first half for strict mode: "all outbound traffic from a pod will
    # leave the node and enter the VPC network".
    mode = "strict" if facts.strict("vpc1") else "standard"
    return block(
        packet,
        "timeout",
        f"{mode} mode: the client pod's own node DNATs its NodePort connection as it arrives from the pod, routes "
        "it by the pod's rule out the pod's branch ENI, and masquerades it to the node's address; EC2's "
        "source/destination check on the branch ENI drops a source that is not the pod's",
        at=places.node(node.name),
        by="EC2 source/destination check (branch ENI)",
    )


def nginx(facts: Facts) -> Step:
    """The nginx NLB's connection at the VPC1 node it picked (the nginx pod's, the echo's node): peerprobe gives the
    nginx Service the experiment's externalTrafficPolicy like every externally reachable Service
    (resources.fill_service). Cluster: DNAT to the nginx pod, then MASQUERADE to the node (KUBE-EXT-* marks);
    Local: KUBE-SVL-* DNATs to the local nginx pod and keeps the client's address."""

    def step(packet: Packet) -> Packet:
        nginx_pod, node = facts.topology.vpc1.nginx_pod, facts.echo_node
        if nginx_pod is None:
            return packet
        at = places.node(node.name)
        moved = packet.to(
            nginx_pod.ip, f"kube-proxy DNATs the nginx NodePort to the nginx pod {nginx_pod.ip}:80", at=at, by=DNAT
        )
        if facts.config.services.external_traffic_policy == "Local":
            return moved.note(
                "the nginx Service's externalTrafficPolicy is Local: the nginx pod is local to the node, no masquerade",
                at=at,
            )
        return moved.becomes(
            Actor.VPC1_NODE,
            node.ip,
            "the nginx Service's externalTrafficPolicy is Cluster: KUBE-POSTROUTING MASQUERADEs to the address of "
            "the node that received it",
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
