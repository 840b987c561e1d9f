"""Security groups for pods: which source a branch-ENI pod shows, and how connections reach a branch-ENI echo pod."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe import topology
from peerprobe.config import PhaseSnat, Snat
from peerprobe.model import places
from tests.model.helpers import cell, make_config, outcome_role, phase_cells
from tests.model.test_path import path_of

ECHO_NODE, OTHER_NODE = 0, 1


def sgp(vpc1: dict[str, Any] | None = None, vpc2: dict[str, Any] | None = None, **more: Any) -> Any:
    clusters = {}
    if vpc1 is not None:
        clusters["vpc1"] = {"pod_security_groups": vpc1}
    if vpc2 is not None:
        clusters["vpc2"] = {"pod_security_groups": vpc2}
    return make_config(clusters=clusters, **more)


STRICT_CLIENT = {"mode": "strict", "pods": ["busybox"]}
STANDARD_CLIENT = {"mode": "standard", "pods": ["busybox"]}


def test_a_strict_branch_eni_pod_shows_its_own_address_at_baseline() -> None:
    """vpc2-pod -> pod-ip, default SNAT: strict-mode veths are vlan* (sgpp/utils.go), their iif rules send the
    traffic out the vlan (driver.go), and the SNAT rule is `! -o vlan+` (network.go). EKS: "source NAT is disabled
    for outbound traffic from Pods with assigned security groups"."""
    found = cell(phase_cells(sgp(vpc2=STRICT_CLIENT)), "vpc2-pod", "pod-ip")
    assert outcome_role(found) == ("ok", "client-pod") and "! -o vlan+" in found.explanation[0]


def test_a_standard_branch_eni_pod_is_snated_like_any_pod() -> None:
    """vpc2-pod -> pod-ip, default SNAT, standard mode: eni* veth, connmark (-i eni+), SNAT to the node's primary
    IP (iptables_connmark.go; EKS: "translated to the IP address of the instance's primary network interface")."""
    assert outcome_role(cell(phase_cells(sgp(vpc2=STANDARD_CLIENT)), "vpc2-pod", "pod-ip")) == ("ok", "client-node")


def test_a_standard_branch_eni_pod_keeps_its_address_with_external_snat() -> None:
    """vpc2-pod -> pod-ip, EXTERNALSNAT on vpc2, standard mode (EKS: "unless you've also set
    AWS_VPC_K8S_CNI_EXTERNALSNAT=true")."""
    cells = phase_cells(sgp(vpc2=STANDARD_CLIENT), PhaseSnat(vpc2=Snat(external_snat=True)))
    assert outcome_role(cell(cells, "vpc2-pod", "pod-ip")) == ("ok", "client-pod")


def test_a_strict_pod_on_a_public_node_has_no_internet() -> None:
    """vpc1-pod -> peer-host-public, strict, public subnets: the unSNATed pod address has no public mapping (EKS:
    "Pods with assigned security groups deployed to public subnets are not able to access the internet")."""
    cfg = make_config(clusters={"vpc1": {"node_subnets": "public", "pod_security_groups": STRICT_CLIENT}})
    assert outcome_role(cell(phase_cells(cfg), "vpc1-pod", "peer-host-public")) == ("timeout", None)


def test_the_peer_reaches_the_echo_pod_through_its_own_group() -> None:
    """vpc2-ec2 -> pod-ip, the echo on a branch ENI with only its own group opened to the peer (trunk.go gives the
    branch ENI the SecurityGroupPolicy's groups)."""
    cfg = sgp(vpc1={"pods": ["echo"], "include_cluster_sg": False, "open_from_peer": True})
    found = cell(phase_cells(cfg), "vpc2-ec2", "pod-ip")
    assert outcome_role(found) == ("ok", "client-host")
    assert any("branch ENI admits 192.168.0.10" in reason for reason in found.explanation)


def test_the_peer_is_refused_when_neither_group_on_the_branch_eni_admits_it() -> None:
    """vpc2-ec2 -> pod-ip: the node group's peer rule no longer covers the pod once it has its own ENI."""
    cfg = sgp(vpc1={"pods": ["echo"], "include_cluster_sg": False, "open_from_peer": False})
    found = cell(phase_cells(cfg), "vpc2-ec2", "pod-ip")
    assert outcome_role(found) == ("timeout", None) and "branch ENI" in found.explanation[0]


def test_the_cluster_groups_peer_rules_still_cover_the_pod_when_listed() -> None:
    """vpc2-ec2 -> pod-ip with include_cluster_sg and the pods' group closed: the cluster group carries peerprobe's
    open_from_peer rules, and the branch ENI carries the cluster group."""
    cfg = sgp(vpc1={"pods": ["echo"], "include_cluster_sg": True, "open_from_peer": False})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "pod-ip")) == ("ok", "client-host")


def test_nodeport_reaches_a_strict_echo_pod_through_the_vpc_as_the_receiving_node() -> None:
    """vpc2-ec2 -> node-port (Cluster): kube-proxy masquerades to the receiving node, which reaches the branch ENI
    only through the VPC (network.go moves the local rule below the vlan rules); the pods' group admits the nodes
    (EKS: "must allow inbound communication from the security group applied to your nodes")."""
    cfg = sgp(vpc1={"pods": ["echo"], "include_cluster_sg": False, "open_from_peer": False})
    found = cell(phase_cells(cfg), "vpc2-ec2", "node-port", ECHO_NODE)
    assert outcome_role(found) == ("ok", "receiving-node")
    assert any("only through the VPC" in reason for reason in found.explanation)


def test_strict_mode_does_not_support_local_traffic_policy() -> None:
    """vpc2-ec2 -> node-port on the echo's node, Local, strict: EKS lists it as unsupported; the unmasqueraded
    packet leaves the node's primary ENI with the client's address (I: EC2 source/destination check)."""
    cfg = sgp(vpc1={"pods": ["echo"]}, services={"external_traffic_policy": "Local"})
    path = path_of("vpc2-ec2", "node-port", cfg)
    assert path.outcome == "timeout" and path.hops[-1].blocked_by == "EC2 source/destination check"


def test_standard_mode_supports_local_traffic_policy() -> None:
    """vpc2-ec2 -> node-port on the echo's node, Local, standard: delivered on the node, the client address kept
    (driver.go standard mode 'to <pod> lookup main'; EKS: standard mode for Local)."""
    cfg = sgp(vpc1={"mode": "standard", "pods": ["echo"]}, services={"external_traffic_policy": "Local"})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "node-port", ECHO_NODE)) == ("ok", "client-host")


def test_a_branch_eni_client_outside_the_cluster_group_is_not_admitted_by_it() -> None:
    """vpc1-pod -> pod-ip, both pods on branch ENIs, no cluster group: the pods' group admits only the cluster
    group's members on 8080, and the busybox's branch ENI is not one of them."""
    cfg = sgp(vpc1={"pods": ["echo", "busybox"], "include_cluster_sg": False})
    assert outcome_role(cell(phase_cells(cfg), "vpc1-pod", "pod-ip")) == ("timeout", None)


def test_with_the_cluster_group_a_branch_eni_client_is_a_member() -> None:
    """vpc1-pod -> pod-ip, both pods on branch ENIs that carry the cluster group (its self rule)."""
    cfg = sgp(vpc1={"pods": ["echo", "busybox"], "include_cluster_sg": True})
    assert outcome_role(cell(phase_cells(cfg), "vpc1-pod", "pod-ip")) == ("ok", "client-pod")


def test_standard_mode_skips_the_pods_groups_on_the_same_node() -> None:
    """vpc1-pod -> pod-ip with one node, standard, the pods' group closed to the busybox: EKS "Pod security group
    rules aren't applied to traffic between Pods ... on the same node"."""
    closed = {"mode": "standard", "pods": ["echo"], "include_cluster_sg": False}
    cfg = make_config(clusters={"vpc1": {"nodes": 1, "pod_security_groups": closed}})
    found = cell(phase_cells(cfg), "vpc1-pod", "pod-ip")
    assert outcome_role(found) == ("ok", "client-pod")
    assert any("not applied" in reason for reason in found.explanation)


def test_strict_mode_applies_the_pods_groups_on_the_same_node() -> None:
    """vpc1-pod -> pod-ip with one node, strict, a busybox on a branch ENI outside the cluster group: strict mode
    routes even same-node traffic through the trunk ENI (network.go), so the group refuses it."""
    closed = {"mode": "strict", "pods": ["echo", "busybox"], "include_cluster_sg": False}
    cfg = make_config(clusters={"vpc1": {"nodes": 1, "pod_security_groups": closed}})
    assert outcome_role(cell(phase_cells(cfg), "vpc1-pod", "pod-ip")) == ("timeout", None)


def test_ip_targets_reach_the_branch_eni_through_the_controllers_rule() -> None:
    """vpc2-ec2 -> internal-nlb with ip targets and the pods' own group only: the controller puts its rule on the
    ENI's only group (aws-load-balancer-controller resolveEndpointSGForENI)."""
    cfg = sgp(
        vpc1={"pods": ["echo"], "include_cluster_sg": False, "open_from_peer": False},
        services={"internal_nlb": {"target_type": "ip", "preserve_client_ip": True}},
    )
    found = cell(phase_cells(cfg), "vpc2-ec2", "internal-nlb")
    assert outcome_role(found) == ("ok", "client-host")
    assert any("Load Balancer Controller" in reason for reason in found.explanation)


def test_the_path_names_the_branch_eni() -> None:
    """The HTML path has a hop at the echo pod's branch ENI, and the strict client's SNAT decision names it."""
    cfg = sgp(vpc1={"pods": ["echo"]}, vpc2=STRICT_CLIENT)
    path = path_of("vpc2-pod", "pod-ip", cfg)
    assert places.branch_eni(places.ECHO_POD) in [h.at for h in path.hops]
    assert any("branch ENI" in name for hop in path.hops for name in hop.kept_by)


def _own_node_port(cfg: Any) -> Any:
    busybox = topology.plan(cfg).vpc1.busybox_pod
    assert busybox is not None
    return next(
        c for c in phase_cells(cfg) if (c.vantage, c.target, c.target_node) == ("vpc1-pod", "node-port", busybox.node)
    )


@pytest.mark.parametrize("mode", ["strict", "standard"])
def test_a_branch_eni_pod_gets_no_answer_from_its_own_nodes_node_port(mode: str) -> None:
    """vpc1-pod -> node-port on the busybox's own node, Cluster: the node DNATs the connection as it arrives from
    the pod's veth, the pod's rule sends it out the branch ENI, MASQUERADE gives it a node address, and the branch
    ENI's source/destination check drops it (what the lab's kernel does too: docs/model.md)."""
    found = _own_node_port(sgp(vpc1={"mode": mode, "pods": ["busybox"]}))
    assert outcome_role(found) == ("timeout", None)
    assert "source/destination check" in found.explanation[0]


def test_a_branch_eni_pod_reaches_another_nodes_node_port() -> None:
    cfg = sgp(vpc1={"mode": "strict", "pods": ["busybox"]})
    busybox = topology.plan(cfg).vpc1.busybox_pod
    assert busybox is not None
    others = [c for c in phase_cells(cfg) if c.vantage == "vpc1-pod" and c.target == "node-port"]
    assert {outcome_role(c) for c in others if c.target_node != busybox.node} == {("ok", "receiving-node")}
