"""The workshop topology in real namespaces: the source address the server sees, per cell and SNAT setting,
against the concrete addresses and against the model; security groups and peering toggled live."""

from __future__ import annotations

import pytest
from labnet_helpers import Lab, config_with, disagreements, snat

from peerprobe import config as cfg
from peerprobe.backends.lab import net
from peerprobe.config import Snat

pytestmark = pytest.mark.lab

EXTERNAL = Snat(external_snat=True)


def _addresses(lab: Lab) -> dict[str, str | None]:
    seen = lab.probe_all(
        {
            "vpc1": ("vpc1-pod", lab.topology.vpc1.echo_pod.ip, 8080),  # type: ignore[union-attr]
            "vpc2": ("vpc2-pod", lab.topology.vpc1.echo_pod.ip, 8080),  # type: ignore[union-attr]
            "ec2": ("vpc2-ec2", lab.topology.vpc1.echo_pod.ip, 8080),  # type: ignore[union-attr]
            "outside": ("outside", lab.topology.vpc1.echo_pod.ip, 8080),  # type: ignore[union-attr]
            "peer-host": ("vpc1-pod", lab.topology.peer_host.private_ip, 80),
            "peer-host-public": ("vpc1-pod", lab.topology.peer_host.public_ip or "", 80),
        }
    )
    return {key: s.address if s.outcome == "ok" else s.outcome for key, s in seen.items()}


def _apply(lab: Lab, vpc1: Snat, vpc2: Snat) -> None:
    lab.net = net.apply_snat(lab.net, "vpc1", vpc1)
    lab.net = net.apply_snat(lab.net, "vpc2", vpc2)


def test_baseline_source_addresses(workshop: Lab) -> None:
    top = workshop.topology
    vpc1_busybox, vpc2_busybox = top.vpc1.busybox_pod, top.vpc2.busybox_pod
    assert vpc1_busybox and vpc2_busybox
    assert _addresses(workshop) == {
        "vpc1": vpc1_busybox.ip,  # a1: inside the VPC CIDR, RETURN before SNAT
        "vpc2": top.vpc2.node(vpc2_busybox.node).ip,  # c1: VPC2's CNI SNATs to its node's primary IP
        "ec2": top.peer_host.private_ip,  # b1: no NAT on the peering
        "outside": "timeout",  # a private address is not routed on the internet
        "peer-host": top.vpc1.node(vpc1_busybox.node).ip,  # a8: VPC1's CNI SNATs to the node
        "peer-host-public": top.vpc1.nat_gateway,  # a9: out through VPC1's NAT gateway
    }


@pytest.mark.parametrize(
    ("vpc1", "vpc2", "pod_seen_by_echo", "pod_seen_by_ec2"),
    [
        (EXTERNAL, EXTERNAL, True, True),
        (Snat(exclude_snat_cidrs=["192.168.0.0/16"]), Snat(exclude_snat_cidrs=["172.16.0.0/16"]), True, True),
        (Snat(), EXTERNAL, True, False),
        (EXTERNAL, Snat(), False, True),
    ],
    ids=["external-snat", "exclude-snat", "vpc2-only", "vpc1-only"],
)
def test_snat_settings_change_the_source(
    workshop: Lab, vpc1: Snat, vpc2: Snat, pod_seen_by_echo: bool, pod_seen_by_ec2: bool
) -> None:
    top = workshop.topology
    assert top.vpc1.busybox_pod and top.vpc2.busybox_pod
    _apply(workshop, vpc1, vpc2)
    try:
        seen = _addresses(workshop)
    finally:
        _apply(workshop, Snat(), Snat())
    vpc2_node = top.vpc2.node(top.vpc2.busybox_pod.node).ip
    vpc1_node = top.vpc1.node(top.vpc1.busybox_pod.node).ip
    assert seen["vpc2"] == (top.vpc2.busybox_pod.ip if pod_seen_by_echo else vpc2_node)
    assert seen["peer-host"] == (top.vpc1.busybox_pod.ip if pod_seen_by_ec2 else vpc1_node)
    # Unchanged by any setting: VPC-internal, the EC2's own address, and the NAT gateway on the internet path.
    assert (seen["vpc1"], seen["ec2"], seen["peer-host-public"]) == (
        top.vpc1.busybox_pod.ip,
        top.peer_host.private_ip,
        top.vpc1.nat_gateway,
    )


@pytest.mark.parametrize("phase", [p.name for p in cfg.load().phases])
def test_every_phase_matches_the_model(workshop: Lab, phase: str) -> None:
    settings = next(p.snat for p in workshop.config.phases if p.name == phase)
    _apply(workshop, settings.vpc1, settings.vpc2)
    try:
        assert disagreements(workshop, settings) == {}
    finally:
        _apply(workshop, Snat(), Snat())


def test_removing_the_8080_rule_times_out_the_peer(workshop: Lab) -> None:
    without = [r for r in workshop.net.security_groups if r != net.echo_port_rule(workshop.topology)]
    assert len(without) == len(workshop.net.security_groups) - 1
    before = workshop.net.security_groups
    workshop.net = net.apply_security_groups(workshop.net, without)
    try:
        model_config = config_with(security_groups={"open_from_peer": ["nodeport"]})
        assert disagreements(workshop, snat(), model_config) == {}
        assert _addresses(workshop)["vpc2"] == "timeout"
    finally:
        workshop.net = net.apply_security_groups(workshop.net, before)
    assert _addresses(workshop)["ec2"] == workshop.topology.peer_host.private_ip


def test_inactive_peering_times_out_and_comes_back(workshop: Lab) -> None:
    workshop.net = net.set_peering(workshop.net, False)
    try:
        assert disagreements(workshop, snat(), config_with(peering={"enabled": False})) == {}
        seen = _addresses(workshop)
        assert (seen["vpc2"], seen["ec2"], seen["peer-host"]) == ("timeout",) * 3
        assert seen["peer-host-public"] == workshop.topology.vpc1.nat_gateway  # the internet path remains
    finally:
        workshop.net = net.set_peering(workshop.net, True)
    assert disagreements(workshop, snat()) == {}


def test_apply_snat_keeps_rules_it_does_not_own(workshop: Lab) -> None:
    node = workshop.net.nodes_of("vpc2")[0]
    # kube-proxy prepends its jump to POSTROUTING; aws-node must leave it alone.
    foreign = ["POSTROUTING", "-m", "comment", "--comment", "kube-postrouting", "-j", "RETURN"]
    net.exec_in(node.ns, ["iptables", "-t", "nat", "-I", *foreign], check=True)
    try:
        workshop.net = net.apply_snat(workshop.net, "vpc2", EXTERNAL)
        saved = net.exec_in(node.ns, ["iptables-save", "-t", "nat"], check=True).stdout
        assert "kube-postrouting" in saved and "AWS-SNAT-CHAIN-0" not in saved
        workshop.net = net.apply_snat(workshop.net, "vpc2", Snat())
        saved = net.exec_in(node.ns, ["iptables-save", "-t", "nat"], check=True).stdout
        assert "kube-postrouting" in saved and saved.count("-j AWS-SNAT-CHAIN-0") == 1
    finally:
        net.exec_in(node.ns, ["iptables", "-t", "nat", "-D", *foreign], check=True)


def test_vantages_and_echo_have_their_own_namespaces(workshop: Lab) -> None:
    names = {v: workshop.net.vantage_ns(v) for v in ("vpc1-pod", "vpc2-pod", "vpc2-ec2", "outside")}
    assert len(set(names.values()) | {workshop.net.echo_ns}) == 5
    assert set(names.values()) <= set(net.list_namespaces(workshop.net.env_key))
    assert workshop.net.echo_ns == workshop.net.pod("vpc1", "echo").ns
