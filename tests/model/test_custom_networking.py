"""Custom networking and secondary CIDRs: which of a VPC's blocks the SNAT chain leaves alone, where the pods sit."""

from __future__ import annotations

from peerprobe import topology
from peerprobe.config import PhaseSnat, Snat
from peerprobe.model.facts import Facts
from peerprobe.model.path import cell_path
from peerprobe.probes.plan import plan
from tests.model.helpers import cell, make_config, outcome_role, phase_cells

CUSTOM = {
    "vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}, "vpc2": {"secondary_cidrs": ["100.65.0.0/16"]}},
    "clusters": {
        "vpc1": {"custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"}},
        "vpc2": {"custom_networking": {"enabled": True, "cidr": "100.65.0.0/16"}},
    },
}


def test_pods_take_addresses_in_the_eniconfig_subnets_and_nodes_keep_the_primary_cidr() -> None:
    """Planned addresses. EKS cni-custom-network: "no IP addresses assigned to the primary network interface are
    assigned to Pods"; ipamd GetAllocatableENIs skips the primary ENI with custom networking."""
    planned = topology.plan(make_config(**CUSTOM))
    assert planned.vpc1.echo_pod is not None and planned.vpc1.echo_pod.ip.startswith("100.64.")
    assert all(node.ip.startswith("172.16.") for node in planned.vpc1.nodes)
    assert all(node.addresses[1].startswith("100.64.") for node in planned.vpc1.nodes)


def test_a_vpc1_pod_keeps_its_address_towards_its_own_secondary_cidr() -> None:
    """vpc1-pod -> pod-ip (echo in 100.64.0.0/16). network.go buildIptablesSNATRules: one RETURN per VPC CIDR
    block, the blocks from IMDS vpc-ipv4-cidr-blocks (imds.go), secondary ones included."""
    found = cell(phase_cells(make_config(**CUSTOM)), "vpc1-pod", "pod-ip")
    assert outcome_role(found) == ("ok", "client-pod")
    assert "secondary CIDR 100.64.0.0/16" in found.explanation[0]


def test_the_peers_secondary_cidr_is_snated_like_its_primary() -> None:
    """vpc2-pod -> pod-ip at baseline: 100.64.0.0/16 is vpc1's block, not vpc2's, so vpc2's CNI SNATs to its node
    (network.go last rule; EKS cni-custom-network: non-VPC traffic uses the primary ENI)."""
    found = cell(phase_cells(make_config(**CUSTOM)), "vpc2-pod", "pod-ip")
    assert outcome_role(found) == ("ok", "client-node")


def test_with_external_snat_the_peer_sees_the_secondary_cidr_pod_address() -> None:
    """vpc2-pod -> pod-ip, EXTERNALSNAT on vpc2: the pod address in 100.65.0.0/16 arrives; peerprobe's rules admit
    every block of the peer (docs/model.md choice) and vpc1 routes it back (route_cidrs: all)."""
    cells = phase_cells(make_config(**CUSTOM), PhaseSnat(vpc2=Snat(external_snat=True)))
    assert outcome_role(cell(cells, "vpc2-pod", "pod-ip")) == ("ok", "client-pod")


def test_a_secondary_cidr_pod_reaches_the_peer_host_with_its_address_when_excluded() -> None:
    """vpc1-pod -> peer-host with EXCLUDE 192.168.0.0/16: the exclusion RETURN keeps the 100.64.x address
    (network.go); the EC2 host's group admits every vpc1 block (docs/model.md choice) and vpc2 routes the reply
    (route_cidrs: all)."""
    cells = phase_cells(make_config(**CUSTOM), PhaseSnat(vpc1=Snat(exclude_snat_cidrs=["192.168.0.0/16"])))
    assert outcome_role(cell(cells, "vpc1-pod", "peer-host")) == ("ok", "client-pod")


def test_custom_networking_puts_pods_on_secondary_enis_for_the_old_cni_return_path() -> None:
    """vpc2-ec2 -> pod-ip with vpc1 CNI 1.7.10: pods on secondary ENIs (custom networking, pod_eni left primary)
    answer a peer out of the primary ENI and are dropped (external-snat.html; CNI PR #1475)."""
    old_cni = {"custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"}, "cni_version": "1.7.10"}
    cfg = make_config(vpcs=CUSTOM["vpcs"], clusters={"vpc1": old_cni})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "pod-ip")) == ("timeout", None)


def test_a_pod_on_the_addressed_node_is_masqueraded_to_its_secondary_enis_address() -> None:
    """vpc1-pod -> node-port on its own node, the echo elsewhere: the DNATed packet follows the pod's rule 'from
    <pod> lookup <ENI table>' (driver.go) out its secondary ENI, so MASQUERADE takes that ENI's address, in the
    ENIConfig subnet; the role stays the receiving node's."""
    cfg = make_config(**CUSTOM)
    planned = topology.plan(cfg)
    busybox = planned.vpc1.busybox_pod
    assert busybox is not None
    spec = next(s for s in plan(planned) if s.key == f"vpc1-pod/node-port/{busybox.node}")
    path = cell_path(spec, Facts(config=cfg, topology=planned, snat=PhaseSnat()))
    masquerade = [r for r in path.rewrites() if r.by == "KUBE-MARK-MASQ / KUBE-POSTROUTING MASQUERADE"]
    assert [r.after for r in masquerade] == [planned.vpc1.node(busybox.node).addresses[1]]
    found = next(
        c for c in phase_cells(cfg) if (c.vantage, c.target, c.target_node) == ("vpc1-pod", "node-port", busybox.node)
    )
    assert outcome_role(found) == ("ok", "receiving-node")
