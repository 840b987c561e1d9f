"""Security groups for pods at the echo pod: its branch ENI, the groups on it, and how Service traffic reaches it.

Sources (S = source code, D = documentation, I = inferred from them):
- amazon-vpc-cni-k8s driver.go SetupBranchENIPodNetwork (S): strict mode routes by input interface (the pod's veth
  and its vlan) to the vlan's table only, so nothing on the node reaches the pod but through the VPC and the branch
  ENI; standard mode adds 'to <pod> lookup main' (priority 512), so the node and its other pods reach it locally.
  network.go SetupHostNetwork (S): strict mode moves the local table's rule below the vlan rules ("packets
  egressing pod veth interfaces must route via the trunk ENI in order for security group rules to be applied").
- EKS user guide, security-groups-for-pods (D): "Pod security group rules aren't applied to traffic between Pods
  or between Pods and services, such as kubelet or nodeLocalDNS, that are on the same node" (standard mode);
  strict mode does not support NodePort and instance-target LoadBalancer Services with externalTrafficPolicy Local;
  the pods' groups "must allow inbound communication from the security group applied to your nodes (for kubelet)
  over any ports that you've configured probes for".
- amazon-vpc-resource-controller-k8s trunk.go (S): the branch ENI gets the SecurityGroupPolicy's groups.
- aws-load-balancer-controller networking_manager.go resolveEndpointSGForENI (S): an ip target's rule goes on the
  ENI's only group, else on the one tagged kubernetes.io/cluster/<name> (the cluster group).
"""

from __future__ import annotations

from peerprobe.model import places
from peerprobe.model._walk import Blocked, Packet, Step, block
from peerprobe.model.clients import Client
from peerprobe.model.facts import Facts
from peerprobe.model.security_groups import (
    Rule,
    admit_at_node,
    cluster_members,
    lbc_target_rules,
    node_rules,
    peer_rules,
)
from peerprobe.probes.plan import ECHO_PORT
from peerprobe.topology import Node

AT = places.branch_eni(places.ECHO_POD)
SG = "security group (branch ENI)"
SRC_DST_CHECK = "EC2 source/destination check"


def pod_group_rules(facts: Facts) -> list[Rule]:
    """What peerprobe's own group for the pods admits (docs/model.md): the cluster group on the echo's probe port
    (kubelet, as EKS requires), the peer like the nodes' group when open_from_peer, and the controller's ip-target
    rule when that group is the branch ENI's only one."""
    groups = facts.cluster("vpc1").pod_security_groups
    assert groups is not None
    rules = [
        Rule(ECHO_PORT, (), "the pods' group admits the cluster group on 8080 (kubelet probes)", cluster_members(facts))
    ]
    if groups.open_from_peer:
        rules += peer_rules(facts, "peerprobe opened (the pods' own group)")
    if not groups.include_cluster_sg:
        rules += lbc_target_rules(facts)
    return rules


def branch_rules(facts: Facts) -> list[Rule]:
    """Every rule of every group on the echo pod's branch ENI: its own, and the cluster's when listed."""
    groups = facts.cluster("vpc1").pod_security_groups
    assert groups is not None
    cluster = node_rules(facts) if groups.include_cluster_sg else []
    return [*pod_group_rules(facts), *cluster]


def admit_at_echo(port: int, facts: Facts, client: Client) -> Step:
    """A connection addressed to the echo pod itself (pod IP, headless, ip targets): the node's groups, or the
    branch ENI's when a SecurityGroupPolicy gives the echo pod one."""
    if not facts.branch_eni("vpc1", "echo"):
        return admit_at_node(port, facts)

    def step(packet: Packet) -> Packet | Blocked:
        if _local(client, facts):
            return packet.note(
                "standard mode: a pod on the echo pod's node reaches it through the node's routes, and the pods' "
                "security groups are not applied there",
                at=places.node(facts.echo_node.name),
                by="branch ENI (standard: local route)",
            )
        return _admit(packet, port, facts)

    return step


def _local(client: Client, facts: Facts) -> bool:
    """Standard mode, a VPC1 pod on the echo's node whose own traffic is not sent out a strict branch ENI."""
    if facts.strict("vpc1") or client.vantage != "vpc1-pod" or client.node is None:
        return False
    return client.node.name == facts.echo_node.name


def _admit(packet: Packet, port: int, facts: Facts) -> Packet | Blocked:
    rule = next((r for r in branch_rules(facts) if r.admits(port, packet.ip)), None)
    if rule is None:
        reason = f"no security group on the echo pod's branch ENI admits {packet.ip} on TCP {port}"
        return block(packet, "timeout", reason, at=AT, by=SG)
    return packet.note(f"the echo pod's branch ENI admits {packet.ip} on TCP {port}: {rule.why}", at=AT)


def deliver(facts: Facts, receiving: Node | None) -> Step:
    """After kube-proxy on a VPC1 node DNATs a NodePort or load-balancer connection to the echo pod: how it gets
    from that node (``receiving``; None: the one the load balancer picks, the echo's node as representative) to
    a branch-ENI echo pod."""

    def step(packet: Packet) -> Packet | Blocked:
        if not facts.branch_eni("vpc1", "echo"):
            return packet
        node = receiving or facts.echo_node
        local = facts.config.services.external_traffic_policy == "Local"
        if facts.strict("vpc1") and local:
            return _source_check_drop(packet, node)
        if not facts.strict("vpc1") and node.name == facts.echo_node.name:
            reason = "standard mode: the echo pod's node delivers it through its own routes; no pod security group"
            return packet.note(reason, at=places.node(node.name), by="branch ENI (standard: local route)")
        moved = packet.note(
            f"{_mode(facts)} mode: {node.name} reaches the echo pod only through the VPC, out its primary ENI and "
            "into the pod's branch ENI",
            at=places.node(node.name),
        )
        return _admit(moved, ECHO_PORT, facts)

    return step


def _source_check_drop(packet: Packet, node: Node) -> Blocked:
    # D: EKS lists Local with instance targets as unsupported in strict mode; I: the node forwards the packet
    # unmasqueraded out its primary ENI, whose source/destination check refuses a source that is not its own.
    return block(
        packet,
        "timeout",
        f"strict mode, externalTrafficPolicy Local: {node.name} forwards the packet with the client's address "
        f"{packet.ip} out its primary ENI towards the echo pod's branch ENI, and EC2's source/destination check "
        "drops it (EKS: not supported with strict pod security groups)",
        at=places.node(node.name),
        by=SRC_DST_CHECK,
    )


def _mode(facts: Facts) -> str:
    return "strict" if facts.strict("vpc1") else "standard"
