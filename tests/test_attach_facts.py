"""Attach mode's pure part: the config the model predicts from is what was read, and `config_diff` names every
key where the file disagrees with the live cluster."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from peerprobe import attach, model, topology
from peerprobe import config as config_module
from peerprobe.topology import Node

ATTACH = {"clusters": {"vpc1": {"existing": True}, "vpc2": {"existing": True}}}


def found(key: attach.VpcKey = "vpc1", **changes: Any) -> attach.FoundCluster:
    cidr = "172.16.0.0/16" if key == "vpc1" else "192.168.0.0/16"
    other = "vpc-2" if key == "vpc1" else "vpc-1"
    cluster = attach.FoundCluster(
        key=key,
        name=f"{key}-cluster",
        status="ACTIVE",
        kubernetes_version="1.31",
        service_cidr="10.100.0.0/16",
        vpc_id=f"vpc-{key[-1]}",
        vpc_cidr=cidr,
        secondary_cidrs=(),
        subnets=(),
        cluster_security_group="sg-1",
        nodes=(Node(name="a", ip="172.16.1.16"), Node(name="b", ip="172.16.2.16"), Node(name="c", ip="172.16.3.16"))
        if key == "vpc1"
        else (Node(name="d", ip="192.168.1.16"), Node(name="e", ip="192.168.2.16")),
        cni_version="1.20.4",
        aws_node_env={},
        kube_proxy_mode="iptables",
        nat_gateways=("52.0.0.1",),
        peerings=(f"pcx-1 active vpc-1 172.16.0.0/16<->{other} 192.168.0.0/16",),
        transit_gateway_attachments=(),
    )
    return replace(cluster, **changes)


def both(**vpc1: Any) -> dict[str, attach.FoundCluster]:
    return {"vpc1": found("vpc1", **vpc1), "vpc2": found("vpc2")}


def test_a_cluster_read_as_configured_has_no_diff() -> None:
    assert attach.config_diff(config_module.from_mapping(ATTACH), both()) == []


def test_the_diff_names_the_key_and_both_values() -> None:
    diff = attach.config_diff(config_module.from_mapping(ATTACH), both(cni_version="1.18.3"))
    assert [(d["path"], d["config"], d["live"]) for d in diff] == [("clusters.vpc1.cni_version", "1.20.4", "1.18.3")]


def test_a_vpc_without_nat_gateway_is_a_diff() -> None:
    diff = attach.config_diff(config_module.from_mapping(ATTACH), both(nat_gateways=()))
    assert {d["path"]: (d["config"], d["live"]) for d in diff}["vpcs.vpc1.nat_gateway"] == (True, False)


def test_a_transit_gateway_link_is_read_as_such() -> None:
    clusters = both(peerings=(), transit_gateway_attachments=("tgw-attach-1 tgw-1 available",))
    clusters["vpc2"] = replace(
        clusters["vpc2"], peerings=(), transit_gateway_attachments=("tgw-attach-2 tgw-1 available",)
    )
    diff = attach.config_diff(config_module.from_mapping(ATTACH), clusters)
    assert {d["path"]: d["live"] for d in diff}["peering.via"] == "transit-gateway"


def test_the_model_predicts_from_what_was_read() -> None:
    read = attach.as_read(config_module.from_mapping(ATTACH), both(cni_version="1.18.3", vpc_cidr="10.1.0.0/16"))
    assert read.clusters.vpc1.cni_version == "1.18.3"
    assert read.vpcs.vpc1.cidr == "10.1.0.0/16"


def test_an_as_found_phase_carries_the_snat_read_from_aws_node() -> None:
    env = {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}
    read = attach.as_read(config_module.from_mapping(ATTACH), both(aws_node_env=env))
    assert read.phases[0].snat.vpc1 == config_module.Snat(external_snat=True)
    assert read.phases[0].snat.vpc2 == config_module.Snat()


def test_a_phase_that_sets_snat_keeps_its_setting() -> None:
    data = {
        "clusters": {"vpc1": {"existing": True, "allow_snat_changes": True}},
        "phases": [{"name": "exclude", "snat": {"vpc1": {"exclude_snat_cidrs": ["192.168.0.0/16"]}}}],
    }
    read = attach.as_read(config_module.from_mapping(data), {"vpc1": found(aws_node_env={})})
    assert read.phases[0].snat.vpc1.exclude_snat_cidrs == ["192.168.0.0/16"]


def test_the_topology_says_what_was_read_without_secrets() -> None:
    shown = found().topology()
    assert shown["vpc"]["cidr"] == "172.16.0.0/16"
    assert shown["kube_proxy_mode"] == "iptables"
    assert [n["name"] for n in shown["nodes"]] == ["a", "b", "c"]


def test_the_model_predicts_one_as_found_phase_from_the_reading() -> None:
    read = attach.as_read(
        config_module.from_mapping(ATTACH), both(aws_node_env={"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"})
    )
    phases = model.predict(read, topology.plan(read, backend="aws"))
    assert [p.name for p in phases] == ["as-found"]
    assert phases[0].snat.vpc1.external_snat is True


def test_a_cluster_without_nodes_keeps_the_files_node_settings() -> None:
    read = attach.as_read(config_module.from_mapping(ATTACH), both(nodes=()))
    assert read.clusters.vpc1.nodes == 3
    assert "clusters.vpc1.nodes" not in {d["path"] for d in attach.config_diff(read, both(nodes=()))}


def rules(*texts: str) -> dict[str, tuple[str, ...]]:
    return {"sg-1": texts}


def test_what_the_cluster_group_opens_to_the_peer_is_read_as_open_from_peer() -> None:
    read = both(security_groups=rules("tcp/30080-30080 from 192.168.0.0/16", "tcp/8000-9000 from 192.0.0.0/8"))
    assert attach.peer_ports(read) == [30080, attach.ECHO_PORT]


def test_a_rule_from_elsewhere_or_another_group_opens_nothing_to_the_peer() -> None:
    read = both(
        security_groups=rules("tcp/8080-8080 from 10.0.0.0/8", "-1/-1--1 from sg-1", "udp/53-53 from 0.0.0.0/0")
    )
    assert attach.peer_ports(read) == []


def test_all_traffic_from_the_peer_opens_the_echo_port_and_the_node_ports() -> None:
    read = both(security_groups=rules("-1/-1--1 from 192.168.0.0/16", "tcp/30000-32767 from 192.168.0.0/16"))
    assert attach.peer_ports(read) == [attach.ECHO_PORT, "nodeport"]


def test_the_model_counts_the_rules_read_beside_those_peerprobe_opens() -> None:
    read = both(security_groups=rules("tcp/8080-8080 from 192.168.0.0/16"))
    config = config_module.from_mapping(ATTACH | {"security_groups": {"open_from_peer": [9090]}})
    assert attach.as_read(config, read).security_groups.open_from_peer == [9090, 8080]
    assert attach.config_diff(config, read) == [], "what the owner opened is not a disagreement with the file"
