"""Topology knobs, each on a lab of its own (no NAT gateway, public node subnets, pods on a secondary ENI with an
old CNI), compared with the model; plus teardown, the host's namespace left untouched, and larger labs (their build
times are bench/lab.py's to measure)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from labnet_helpers import Lab, build_lab, config_with, disagreements, snat, unavailable

from peerprobe import topology as topo
from peerprobe.backends.lab import net
from peerprobe.config import ExperimentConfig, Snat

pytestmark = pytest.mark.lab

EXTERNAL = Snat(external_snat=True)


@pytest.fixture
def lab_of(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if reason := unavailable():
        pytest.skip(reason)
    lab = build_lab(config_with(**request.param))
    yield lab
    lab.stop()


def _seen(lab: Lab, key: str) -> str | None:
    vantage, host, port = {
        "ec2->echo": ("vpc2-ec2", lab.topology.vpc1.echo_pod.ip, 8080),  # type: ignore[union-attr]
        "vpc2->echo": ("vpc2-pod", lab.topology.vpc1.echo_pod.ip, 8080),  # type: ignore[union-attr]
        "vpc1->public": ("vpc1-pod", lab.topology.peer_host.public_ip, 80),
    }[key]
    seen = lab.probe(vantage, host or "", port)  # type: ignore[arg-type]
    return seen.address if seen.outcome == "ok" else seen.outcome


@pytest.mark.parametrize("lab_of", [{"vpcs": {"vpc1": {"nat_gateway": False}}}], indirect=True)
def test_without_a_nat_gateway_the_public_path_times_out(lab_of: Lab) -> None:
    assert _seen(lab_of, "vpc1->public") == "timeout"
    assert disagreements(lab_of, snat()) == {}


@pytest.mark.parametrize("lab_of", [{"clusters": {"vpc1": {"node_subnets": "public"}}}], indirect=True)
def test_public_node_subnets_leave_with_the_node_public_ip(lab_of: Lab) -> None:
    busybox = lab_of.topology.vpc1.busybox_pod
    assert busybox is not None
    assert _seen(lab_of, "vpc1->public") == lab_of.topology.vpc1.node(busybox.node).public_ip
    assert disagreements(lab_of, snat()) == {}
    lab_of.net = net.apply_snat(lab_of.net, "vpc1", EXTERNAL)
    # The pod IP reaches the internet gateway unSNATed and has no public mapping (EKS external-snat.html).
    assert _seen(lab_of, "vpc1->public") == "timeout"
    assert disagreements(lab_of, snat(vpc1=EXTERNAL)) == {}


@pytest.mark.parametrize(
    "lab_of", [{"clusters": {"vpc1": {"pod_eni": "secondary", "cni_version": "1.7.10"}}}], indirect=True
)
@pytest.mark.parametrize(
    ("vpc1", "reachable"),
    [(Snat(), False), (EXTERNAL, True), (Snat(exclude_snat_cidrs=["192.168.0.0/16"]), True)],
    ids=["default", "external-snat", "exclude-peer"],
)
def test_old_cni_secondary_eni_pods_answer_peers_only_when_vpc1_keeps_the_pod_ip(
    lab_of: Lab, vpc1: Snat, reachable: bool
) -> None:
    lab_of.net = net.apply_snat(lab_of.net, "vpc1", vpc1)
    seen = {key: _seen(lab_of, key) for key in ("ec2->echo", "vpc2->echo")}
    if reachable:
        assert seen["ec2->echo"] == lab_of.topology.peer_host.private_ip
    else:
        assert seen == {"ec2->echo": "timeout", "vpc2->echo": "timeout"}
    assert disagreements(lab_of, snat(vpc1=vpc1)) == {}


@pytest.mark.parametrize("lab_of", [{"clusters": {"vpc1": {"pod_eni": "secondary"}}}], indirect=True)
def test_current_cni_answers_peers_from_the_secondary_eni(lab_of: Lab) -> None:
    assert _seen(lab_of, "ec2->echo") == lab_of.topology.peer_host.private_ip
    for vpc1 in (Snat(), EXTERNAL):
        lab_of.net = net.apply_snat(lab_of.net, "vpc1", vpc1)
        assert disagreements(lab_of, snat(vpc1=vpc1)) == {}


def _host_view() -> str:
    commands = [
        ["ip", "-o", "link"],
        ["ip", "-o", "address"],
        ["ip", "route", "show", "table", "all"],
        ["ip", "rule"],
        ["iptables-save"],
    ]
    outputs = [subprocess.run(c, capture_output=True, text=True, check=False).stdout for c in commands]
    return "\n".join(line for out in outputs for line in out.splitlines() if not line.startswith("#"))


def _key() -> str:
    return f"lab:pytest-{uuid.uuid4().hex[:8]}:cn-northwest-1"


def _build(config: ExperimentConfig, key: str) -> net.LabNet:
    return net.build(key, config, topo.plan(config))


def test_build_touches_nothing_in_the_host_namespace_and_teardown_is_complete() -> None:
    if reason := unavailable():
        pytest.skip(reason)
    before, key = _host_view(), _key()
    lab = _build(config_with(), key)
    try:
        assert _host_view() == before
        assert set(net.list_namespaces(key)) == set(lab.namespaces())
        sleeper = net.spawn_in(lab.echo_ns, ["sh", "-c", "echo ready; exec sleep 60"], stdout=subprocess.PIPE)
        assert sleeper.stdout is not None and sleeper.stdout.readline().strip() == "ready"
    finally:
        net.teardown(key)
    assert sleeper.wait(timeout=5) != 0  # ended by teardown, not left running in a deleted namespace
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert lab.prefix not in listed
    net.teardown(key)  # idempotent: nothing left, still succeeds
    assert _host_view() == before


def test_two_environments_coexist() -> None:
    if reason := unavailable():
        pytest.skip(reason)
    one, two = _build(config_with(), _key()), _build(config_with(), _key())
    try:
        assert not set(one.namespaces()) & set(two.namespaces())
        net.teardown(one.env_key)
        assert net.list_namespaces(one.env_key) == []
        assert set(net.list_namespaces(two.env_key)) == set(two.namespaces())
    finally:
        net.teardown(one.env_key)
        net.teardown(two.env_key)


def test_thirty_nodes_are_built_and_torn_down() -> None:
    if reason := unavailable():
        pytest.skip(reason)
    key = _key()
    lab = _build(config_with(clusters={"vpc1": {"nodes": 30}}), key)
    try:
        assert len(lab.nodes_of("vpc1")) == 30
        assert set(net.list_namespaces(key)) == set(lab.namespaces())
    finally:
        net.teardown(key)
    assert net.list_namespaces(key) == []
    assert net.list_namespaces(key) == []
