"""The topologies beyond the workshop (deployments/topologies/), each on a lab of its own: custom networking's
secondary CIDR, a transit gateway instead of the peering, and branch ENIs for security-group pods. Every phase's
probes must agree with `peerprobe predict` (the model); a few cells are pinned to the address they show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labnet_helpers import Lab, build_lab, disagreements, unavailable

from peerprobe import config as cfg
from peerprobe import topology as topo
from peerprobe.backends.lab import net
from peerprobe.backends.lab.net import _cni, _names
from peerprobe.backends.lab.net._layout import layout
from peerprobe.config import ExperimentConfig, PhaseSnat

TOPOLOGIES = Path(__file__).parents[4] / "deployments" / "topologies"
ALL = sorted(path.stem for path in TOPOLOGIES.glob("*.yaml"))


def _config(name: str) -> ExperimentConfig:
    return cfg.load(TOPOLOGIES / f"{name}.yaml")


@pytest.fixture
def lab_of(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if reason := unavailable():
        pytest.skip(reason)
    lab = build_lab(_config(request.param))
    yield lab
    lab.stop()


def _apply(lab: Lab, snat: PhaseSnat) -> None:
    lab.net = net.apply_snat(lab.net, "vpc1", snat.vpc1)
    lab.net = net.apply_snat(lab.net, "vpc2", snat.vpc2)


def _vpc2_to_echo(lab: Lab) -> str | None:
    echo = lab.topology.vpc1.echo_pod
    assert echo is not None
    seen = lab.probe("vpc2-pod", echo.ip, 8080)
    return seen.address if seen.outcome == "ok" else seen.outcome


@pytest.mark.lab
@pytest.mark.parametrize("lab_of", ALL, indirect=True)
def test_every_phase_agrees_with_the_model(lab_of: Lab) -> None:
    for phase in lab_of.config.phases:
        snat = phase.snat
        _apply(lab_of, snat)
        assert disagreements(lab_of, snat) == {}, phase.name


@pytest.mark.lab
@pytest.mark.parametrize("lab_of", ["custom-networking"], indirect=True)
def test_custom_networking_pods_live_in_the_secondary_cidr_and_the_peer_sees_the_node_until_snat_is_off(
    lab_of: Lab,
) -> None:
    busybox = lab_of.topology.vpc2.busybox_pod
    assert busybox is not None and busybox.ip.startswith("100.65.")
    node = lab_of.topology.vpc2.node(busybox.node)
    assert _vpc2_to_echo(lab_of) == node.ip  # the node keeps its primary address; SNAT to it
    _apply(lab_of, lab_of.config.phases[1].snat)  # EXTERNALSNAT on both sides
    assert _vpc2_to_echo(lab_of) == busybox.ip


@pytest.mark.lab
@pytest.mark.parametrize("lab_of", ["custom-networking-primary-routes"], indirect=True)
def test_an_unrouted_secondary_block_gets_no_answer(lab_of: Lab) -> None:
    _apply(lab_of, lab_of.config.phases[1].snat)
    assert _vpc2_to_echo(lab_of) == "timeout"


@pytest.mark.lab
@pytest.mark.parametrize("lab_of", ["transit-gateway"], indirect=True)
def test_the_transit_gateway_carries_the_traffic_and_its_absence_cuts_it(lab_of: Lab) -> None:
    busybox = lab_of.topology.vpc2.busybox_pod
    assert busybox is not None
    tgw = lab_of.net.tgw_ns
    assert tgw is not None
    router = lab_of.net.vpcs["vpc1"].router_ns
    assert not net.exec_in(router, ["ip", "-o", "link", "show", _names.PEERING_IF], check=False).stdout
    assert _vpc2_to_echo(lab_of) == lab_of.topology.vpc2.node(busybox.node).ip
    echo = lab_of.topology.vpc1.echo_pod
    assert echo is not None
    # The VPC2 node (zone a) routes to the zone-a attachment, and the transit gateway on to VPC1's zone-a one.
    node = lab_of.net.nodes_of("vpc2")[0].primary
    vpc2_router = lab_of.net.vpcs["vpc2"].router_ns
    assert f"dev {_names.tgw_router_if(0)} " in _route(vpc2_router, echo.ip, node.ip, node.router_if)
    assert f"dev {_names.tgw_attachment_if('vpc1', 0)} " in _route(tgw, echo.ip, node.ip, "vpc2a0")
    lab_of.net = net.set_peering(lab_of.net, False)
    assert _vpc2_to_echo(lab_of) == "timeout"
    lab_of.net = net.set_peering(lab_of.net, True)
    assert _vpc2_to_echo(lab_of) == lab_of.topology.vpc2.node(busybox.node).ip


def _route(ns: str, dst: str, src: str, iif: str) -> str:
    return net.exec_in(ns, ["ip", "route", "get", dst, "from", src, "iif", iif], check=True).stdout


@pytest.mark.lab
@pytest.mark.parametrize(
    ("lab_of", "shown"),
    [("pod-security-groups-strict", "pod"), ("pod-security-groups-standard", "node")],
    indirect=["lab_of"],
)
def test_a_branch_eni_pod_shows_its_own_address_only_in_strict_mode(lab_of: Lab, shown: str) -> None:
    busybox = lab_of.topology.vpc2.busybox_pod
    assert busybox is not None
    want = busybox.ip if shown == "pod" else lab_of.topology.vpc2.node(busybox.node).ip
    assert _vpc2_to_echo(lab_of) == want


@pytest.mark.lab
@pytest.mark.parametrize("lab_of", ["pod-security-groups-own-group-only"], indirect=True)
def test_the_pod_group_on_the_branch_eni_decides_admission(lab_of: Lab) -> None:
    assert _vpc2_to_echo(lab_of) == "timeout"  # the pods' own group is not opened to the peer
    rules = [*lab_of.net.security_groups, *_peer_rule(lab_of)]
    lab_of.net = net.apply_security_groups(lab_of.net, rules)
    busybox = lab_of.topology.vpc2.busybox_pod
    assert busybox is not None
    assert _vpc2_to_echo(lab_of) == lab_of.topology.vpc2.node(busybox.node).ip


def _peer_rule(lab: Lab) -> list[net.SecurityGroupRule]:
    return [net.SecurityGroupRule(group="vpc1-pods", port=8080, sources=[lab.topology.vpc2.cidr])]


# --- pure: the rules as written ------------------------------------------------------------------------------


def _layout(name: str) -> net.LabNet:
    config = _config(name)
    return layout(
        "lab:unit:cn-northwest-1",
        config,
        topo.plan(config),
        snat={},
        security_groups=[],
        peering=True,
    )


def test_snat_chain_returns_for_every_vpc_block() -> None:
    lab = _layout("custom-networking")
    node = lab.nodes_of("vpc1")[0]
    nat = _cni.aws_node_tables(node, lab.vpcs["vpc1"])["nat"].render()
    for block in ("172.16.0.0/16", "100.64.0.0/16"):
        assert f"-A AWS-SNAT-CHAIN-0 -d {block} " in nat
    assert "--to-source 172.16.96.16" in nat  # the node's primary address, not the pod subnet's


def test_strict_branch_pod_routes_by_input_interface_and_standard_by_address() -> None:
    strict = next(p for n in _layout("pod-security-groups-strict").nodes for p in n.pods if p.branch)
    standard = next(p for n in _layout("pod-security-groups-standard").nodes for p in n.pods if p.branch)
    assert strict.host_veth.startswith("vlan") and standard.host_veth.startswith("eni")
    assert any(line.startswith(f"rule add iif {strict.host_veth} ") for line in _cni.branch_lines(strict))
    assert _cni.pod_rules(strict, _layout("pod-security-groups-strict").vpcs[strict.cluster]) == []
    table = _cni.VLAN_TABLE_BASE + (standard.vlan_id or 0)
    vpc = _layout("pod-security-groups-standard").vpcs[standard.cluster]
    assert _cni.from_pod_rules(standard, vpc) == [f"rule add from {standard.ip}/32 lookup {table} priority 1536"]


def test_a_beyond_labnet_round_trips_through_json() -> None:
    lab = _layout("beyond")
    assert net.LabNet.model_validate_json(lab.model_dump_json()) == lab
    assert lab.tgw_ns is not None and lab.tgw_ns in lab.namespaces()
    assert any(pod.branch for node in lab.nodes for pod in node.pods)
