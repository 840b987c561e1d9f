"""The lab network's pure parts, no root needed: names, layout, aws-node's rules per CNI version, the merge that
keeps other components' rules, security-group rules."""

from __future__ import annotations

import re

import pytest
from labnet_helpers import config_with
from pydantic import ValidationError

from peerprobe import topology as topo
from peerprobe.backends.lab import net
from peerprobe.backends.lab.net import _cni, _names
from peerprobe.backends.lab.net._layout import layout
from peerprobe.backends.lab.net.lab import _script
from peerprobe.backends.lab.net.security_groups import filter_table
from peerprobe.backends.lab.net.snat import merge_saved
from peerprobe.config import ExperimentConfig, Snat

EXTERNAL = Snat(external_snat=True)


def _lab(config: ExperimentConfig | None = None, **snat: Snat) -> net.LabNet:
    config = config or config_with()
    topology = topo.plan(config)
    return layout(
        "lab:unit:cn-northwest-1",
        config,
        topology,
        snat=snat,  # type: ignore[arg-type]
        security_groups=net.workshop_rules(config, topology),
        peering=True,
    )


def _nat(lab: net.LabNet, cluster: str = "vpc1") -> str:
    node = lab.nodes_of(cluster)[0]  # type: ignore[arg-type]
    return _cni.aws_node_tables(node, lab.vpcs[node.cluster])["nat"].render()


def test_prefix_is_short_stable_and_per_environment() -> None:
    assert re.fullmatch(r"pp-[0-9a-f]{6}-", _names.prefix("lab:workshop:cn-northwest-1"))
    assert _names.prefix("lab:a:r") == _names.prefix("lab:a:r") != _names.prefix("lab:b:r")


def test_every_namespace_has_the_prefix_and_every_interface_fits() -> None:
    lab = _lab(config_with(clusters={"vpc1": {"nodes": 100, "pod_eni": "secondary"}}))
    assert all(ns.startswith(lab.prefix) for ns in lab.namespaces())
    assert len(set(lab.namespaces())) == len(lab.namespaces())
    script = _script(lab)
    devices = {w for line in script.veths for w in re.findall(r"(?:add|name) (\S+)", line)}
    assert devices and all(len(d) <= _names.IFNAMSIZ for d in devices)


def test_eth0_is_created_and_addressed_first_on_each_node() -> None:
    lab = _lab(config_with(clusters={"vpc1": {"pod_eni": "secondary"}}))
    script = _script(lab)
    node = lab.nodes_of("vpc1")[0]
    created = [line.split()[2] for line in script.veths if line.split()[4] == node.ns]  # link add NAME netns NS
    assert created[:2] == ["eth0", "eth1"] and all(d.startswith("eni") for d in created[2:])
    addressed = [line for line in script.ns(node.ns).ip if line.startswith("address add")]
    assert addressed[0].endswith("dev eth0 noprefixroute")
    assert not any("eni" in line for line in addressed)  # host-side veths stay unaddressed


def test_labnet_round_trips_through_json() -> None:
    lab = _lab()
    assert net.LabNet.model_validate_json(lab.model_dump_json()) == lab
    assert lab.vantage_ns("vpc1-pod") == lab.pod("vpc1", "busybox").ns
    assert lab.vantage_ns("vpc2-ec2") == lab.ec2.ns


def test_default_snat_rules() -> None:
    nat = _nat(_lab())
    assert '-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0' in nat
    assert "-A AWS-SNAT-CHAIN-0 -d 172.16.0.0/16" in nat
    assert "--to-source 172.16.96.16 --random-fully" in nat
    assert "-A AWS-CONNMARK-CHAIN-0 -d 172.16.0.0/16" in nat


def test_external_snat_removes_snat_and_connmark_but_not_the_mangle_rules() -> None:
    lab = _lab(vpc1=EXTERNAL)
    node = lab.nodes_of("vpc1")[0]
    tables = _cni.aws_node_tables(node, lab.vpcs["vpc1"])
    assert tables["nat"].rules == []
    assert len(tables["mangle"].rules) == 3


@pytest.mark.parametrize(
    ("cni", "exclusion", "connmark", "randomize"),
    [
        ("1.5.0", False, False, "--random\n"),
        ("1.7.10", True, False, "--random-fully"),
        ("1.20.4", True, True, "--random-fully"),
    ],
)
def test_rules_follow_the_cni_version(cni: str, exclusion: bool, connmark: bool, randomize: str) -> None:
    lab = _lab(config_with(clusters={"vpc1": {"cni_version": cni}}), vpc1=Snat(exclude_snat_cidrs=["192.168.0.0/16"]))
    nat = _nat(lab)
    assert ('-d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION"' in nat) is exclusion
    assert ("AWS-CONNMARK-CHAIN-0" in nat) is connmark
    assert randomize in nat


@pytest.mark.parametrize(
    ("cni", "settings", "destinations"),
    [
        ("1.20.4", Snat(), [""]),
        ("1.7.10", Snat(), [" to 172.16.0.0/16"]),
        ("1.7.10", Snat(exclude_snat_cidrs=["192.168.0.0/16"]), [" to 172.16.0.0/16", " to 192.168.0.0/16"]),
        ("1.5.0", Snat(exclude_snat_cidrs=["192.168.0.0/16"]), [" to 172.16.0.0/16"]),
        ("1.7.10", EXTERNAL, [""]),
    ],
)
def test_from_pod_rules_on_a_secondary_eni(cni: str, settings: Snat, destinations: list[str]) -> None:
    lab = _lab(config_with(clusters={"vpc1": {"cni_version": cni, "pod_eni": "secondary"}}), vpc1=settings)
    pod = lab.pod("vpc1", "echo")
    expected = [f"rule add from {pod.ip}/32{to} lookup 2 priority 1536" for to in destinations]
    assert _cni.from_pod_rules(pod, lab.vpcs["vpc1"]) == expected


def test_pods_on_the_primary_eni_get_no_from_pod_rule() -> None:
    lab = _lab()
    assert _cni.from_pod_rules(lab.pod("vpc1", "echo"), lab.vpcs["vpc1"]) == []


SAVED = """# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [3:180]
:AWS-SNAT-CHAIN-0 - [0:0]
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully
COMMIT
*filter
:INPUT ACCEPT [0:0]
COMMIT
"""


def test_merge_keeps_foreign_rules_and_replaces_aws_node_rules() -> None:
    lab = _lab(vpc1=EXTERNAL)
    node = lab.nodes_of("vpc1")[0]
    merged = merge_saved(SAVED, _cni.aws_node_tables(node, lab.vpcs["vpc1"]))
    assert "KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE" in merged
    assert ":KUBE-POSTROUTING - [0:0]" in merged and "AWS-SNAT-CHAIN-0" not in merged
    assert "*filter" not in merged  # only aws-node's tables are restored
    assert merged.count("*mangle") == 1 and '"AWS, primary ENI"' in merged


def test_security_group_rules_validate() -> None:
    with pytest.raises(ValidationError, match="needs protocol tcp"):
        net.SecurityGroupRule(group="g", protocol="all", port=80, sources=["10.0.0.0/8"])
    with pytest.raises(ValidationError, match="port_to"):
        net.SecurityGroupRule(group="g", port=90, port_to=80, sources=["10.0.0.0/8"])
    with pytest.raises(ValidationError, match="sources or a source_group"):
        net.SecurityGroupRule(group="g", port=80)
    with pytest.raises(ValidationError, match="host bits"):
        net.SecurityGroupRule(group="g", port=80, sources=["10.0.0.1/8"])


def test_filter_table_expands_self_rules_and_leaves_the_nat_gateway_open() -> None:
    lab = _lab()
    rules = [
        net.SecurityGroupRule(group="vpc1-nodes", protocol="all", source_group="vpc1-nodes"),
        net.SecurityGroupRule(group="vpc1-nodes", port=30000, port_to=32767, sources=["192.168.0.0/16"]),
    ]
    table = filter_table(lab, "vpc1", rules).render()
    for ip in (lab.pod("vpc1", "busybox").ip, lab.nodes_of("vpc1")[1].primary.ip):
        assert f"-A SG-vpc1-nodes -s {ip}/32 -j ACCEPT" in table
    assert "-s 192.168.0.0/16 -p tcp -m tcp --dport 30000:32767 -j ACCEPT" in table
    assert "nate0" not in table


def test_workshop_rules_follow_the_config() -> None:
    config = config_with(security_groups={"open_from_peer": [8080]}, peer_host={"admit_vpc1": False})
    rules = net.workshop_rules(config, topo.plan(config))
    peer_rules = [r for r in rules if r.sources == ["192.168.0.0/16"]]
    assert [r.port for r in peer_rules] == [8080]
    assert not any(r.group == net.PEER_HOST_GROUP for r in rules)
