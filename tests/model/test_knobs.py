"""Each knob's mechanism, one behaviour per test: the model must follow the knob, not a lookup of the table."""

from __future__ import annotations

from peerprobe.config import PhaseSnat, Snat
from tests.model.helpers import cell, make_config, outcome_role, phase_cells, snat

ECHO_NODE, OTHER_NODE = 0, 1
LOCAL = {"services": {"external_traffic_policy": "Local"}}


def test_local_policy_keeps_the_source_on_the_endpoint_node() -> None:
    cells = phase_cells(make_config(**LOCAL))
    assert outcome_role(cell(cells, "vpc1-pod", "node-port", ECHO_NODE)) == ("ok", "client-pod")
    assert outcome_role(cell(cells, "vpc2-ec2", "node-port", ECHO_NODE)) == ("ok", "client-host")


def test_local_policy_drops_on_a_node_without_endpoint() -> None:
    found = cell(phase_cells(make_config(**LOCAL)), "vpc2-pod", "node-port", OTHER_NODE)
    assert outcome_role(found) == ("timeout", None)
    assert "no local endpoint" in found.explanation[0]


def test_local_policy_internal_nlb_shows_the_peer_client() -> None:
    cfg = make_config(**LOCAL)
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "internal-nlb")) == ("ok", "client-host")
    assert outcome_role(cell(phase_cells(cfg), "vpc2-pod", "internal-nlb")) == ("ok", "client-node")
    assert outcome_role(cell(phase_cells(cfg, snat("X", "vpc2")), "vpc2-pod", "internal-nlb")) == ("ok", "client-pod")


def test_local_policy_classic_elb_shows_the_elb_itself() -> None:
    found = cell(phase_cells(make_config(**LOCAL)), "vpc2-ec2", "load-balancer")
    assert outcome_role(found) == ("ok", "load-balancer") and found.expected.may_timeout


def test_nlb_ip_targets_with_preservation_show_the_client() -> None:
    cfg = make_config(services={"internal_nlb": {"target_type": "ip", "preserve_client_ip": True}})
    cells = phase_cells(cfg)
    assert outcome_role(cell(cells, "vpc2-ec2", "internal-nlb")) == ("ok", "client-host")
    assert outcome_role(cell(cells, "vpc1-pod", "internal-nlb")) == ("ok", "client-pod")


def test_nlb_ip_targets_without_preservation_show_the_nlb() -> None:
    cfg = make_config(services={"internal_nlb": {"target_type": "ip", "preserve_client_ip": False}})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-pod", "internal-nlb")) == ("ok", "load-balancer")


def test_nlb_ip_target_hairpin_when_the_client_shares_the_echo_node() -> None:
    cfg = make_config(clusters={"vpc1": {"nodes": 1}}, services={"internal_nlb": {"target_type": "ip"}})
    found = cell(phase_cells(cfg), "vpc1-pod", "internal-nlb")
    assert found.expected.outcome == "timeout" and "hairpin" in found.explanation[0]


def test_nlb_instance_hairpin_is_certain_with_a_single_node() -> None:
    found = cell(phase_cells(make_config(clusters={"vpc1": {"nodes": 1}})), "vpc1-pod", "internal-nlb")
    assert found.expected.outcome == "timeout"


def test_nlb_without_preservation_has_no_hairpin() -> None:
    cfg = make_config(services={"internal_nlb": {"preserve_client_ip": False}})
    found = cell(phase_cells(cfg), "vpc1-pod", "internal-nlb")
    assert outcome_role(found) == ("ok", "vpc1-node") and not found.expected.may_timeout


def test_internal_classic_elb_is_reached_over_the_peering() -> None:
    cfg = make_config(services={"load_balancer": {"scheme": "internal"}})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "load-balancer")) == ("ok", "vpc1-node")
    cfg_off = make_config(services={"load_balancer": {"scheme": "internal"}}, peering={"enabled": False})
    assert outcome_role(cell(phase_cells(cfg_off), "vpc2-ec2", "load-balancer")) == ("timeout", None)


def test_internet_facing_elb_does_not_need_the_peering() -> None:
    cells = phase_cells(make_config(peering={"enabled": False}))
    assert outcome_role(cell(cells, "vpc2-pod", "load-balancer")) == ("ok", "vpc1-node")
    assert outcome_role(cell(cells, "outside", "load-balancer")) == ("ok", "vpc1-node")


def test_internal_elb_is_unreachable_from_outside() -> None:
    cfg = make_config(services={"load_balancer": {"scheme": "internal"}})
    assert outcome_role(cell(phase_cells(cfg), "outside", "load-balancer")) == ("timeout", None)


def test_no_peer_rules_time_out_pod_and_node_port_but_not_the_nlb() -> None:
    cells = phase_cells(make_config(security_groups={"open_from_peer": []}))
    assert cell(cells, "vpc2-ec2", "pod-ip").expected.outcome == "timeout"
    assert cell(cells, "vpc2-pod", "node-port", OTHER_NODE).expected.outcome == "timeout"
    # the in-tree NLB controller opens its own NodePort from loadBalancerSourceRanges
    assert cell(cells, "vpc2-pod", "internal-nlb").expected.outcome == "ok"


def test_only_8080_open_times_out_node_port() -> None:
    cells = phase_cells(make_config(security_groups={"open_from_peer": [8080]}))
    assert cell(cells, "vpc2-ec2", "pod-ip").expected.outcome == "ok"
    assert cell(cells, "vpc2-ec2", "node-port", ECHO_NODE).expected.outcome == "timeout"


def test_no_vpc1_nat_gateway_cuts_vpc1_from_the_internet() -> None:
    cells = phase_cells(make_config(vpcs={"vpc1": {"nat_gateway": False}}))
    assert cell(cells, "vpc1-pod", "peer-host-public").expected.outcome == "timeout"
    assert cell(cells, "vpc1-pod", "load-balancer").expected.outcome == "timeout"
    assert cell(cells, "vpc1-pod", "peer-host").expected.outcome == "ok"


def test_no_vpc2_nat_gateway_cuts_vpc2_pods_but_not_the_public_ec2() -> None:
    cells = phase_cells(make_config(vpcs={"vpc2": {"nat_gateway": False}}))
    assert cell(cells, "vpc2-pod", "load-balancer").expected.outcome == "timeout"
    assert cell(cells, "vpc2-ec2", "load-balancer").expected.outcome == "ok"


def test_peering_off_times_out_every_private_cross_vpc_path() -> None:
    cells = phase_cells(make_config(peering={"enabled": False}))
    for vantage, target in [("vpc1-pod", "peer-host"), ("vpc2-ec2", "pod-ip"), ("vpc2-pod", "internal-nlb")]:
        assert cell(cells, vantage, target).expected.outcome == "timeout", (vantage, target)
    assert cell(cells, "vpc1-pod", "peer-host-public").expected.outcome == "ok"


def test_public_vpc2_nodes_reach_the_elb_with_their_own_address_until_externalsnat() -> None:
    cfg = make_config(clusters={"vpc2": {"node_subnets": "public"}})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-pod", "load-balancer")) == ("ok", "vpc1-node")
    found = cell(phase_cells(cfg, snat("X", "vpc2")), "vpc2-pod", "load-balancer")
    assert found.expected.outcome == "timeout" and "internet gateway" in found.explanation[0]


def test_public_vpc1_nodes_show_the_node_to_the_peer_host() -> None:
    cfg = make_config(clusters={"vpc1": {"node_subnets": "public"}})
    assert outcome_role(cell(phase_cells(cfg), "vpc1-pod", "peer-host-public")) == ("ok", "client-node")
    assert cell(phase_cells(cfg, snat("X", "vpc1")), "vpc1-pod", "peer-host-public").expected.outcome == "timeout"


def test_peer_host_without_public_ip() -> None:
    cells = phase_cells(make_config(peer_host={"public_ip": False}))
    assert not [c for c in cells if c.target == "peer-host-public"], "a target the topology lacks is omitted"
    assert cell(cells, "vpc2-ec2", "load-balancer").expected.outcome == "timeout"


def test_peer_host_security_group_closed_to_vpc1() -> None:
    cells = phase_cells(make_config(peer_host={"admit_vpc1": False}))
    assert cell(cells, "vpc1-pod", "peer-host").expected.outcome == "timeout"


OLD_SECONDARY = {"clusters": {"vpc1": {"cni_version": "1.7.10", "pod_eni": "secondary"}}}


def test_old_cni_secondary_eni_pod_cannot_answer_the_peer() -> None:
    found = cell(phase_cells(make_config(**OLD_SECONDARY)), "vpc2-ec2", "pod-ip")
    assert found.expected.outcome == "timeout" and "source/destination check" in found.explanation[0]


def test_old_cni_secondary_eni_answers_with_vpc1_externalsnat() -> None:
    found = cell(phase_cells(make_config(**OLD_SECONDARY), snat("X", "vpc1")), "vpc2-pod", "pod-ip")
    assert outcome_role(found) == ("ok", "client-node")


def test_old_cni_secondary_eni_answers_with_vpc1_exclusion() -> None:
    found = cell(phase_cells(make_config(**OLD_SECONDARY), snat("Ex", "vpc1")), "vpc2-ec2", "pod-ip")
    assert outcome_role(found) == ("ok", "client-host")


def test_current_cni_secondary_eni_answers_the_peer() -> None:
    cfg = make_config(clusters={"vpc1": {"pod_eni": "secondary"}})
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "pod-ip")) == ("ok", "client-host")


def test_old_cni_node_port_local_still_answers_through_the_connmark() -> None:
    cfg = make_config(**OLD_SECONDARY, **LOCAL)
    assert outcome_role(cell(phase_cells(cfg), "vpc2-ec2", "node-port", ECHO_NODE)) == ("ok", "client-host")


def test_exclusion_needs_cni_1_6() -> None:
    cfg = make_config(clusters={"vpc2": {"cni_version": "1.5.5"}})
    assert outcome_role(cell(phase_cells(cfg, snat("Ex", "vpc2")), "vpc2-pod", "pod-ip")) == ("ok", "client-node")


def test_exclusion_of_another_cidr_still_snats() -> None:
    phase = PhaseSnat(vpc2=Snat(exclude_snat_cidrs=["10.0.0.0/8"]))
    assert outcome_role(cell(phase_cells(make_config(), phase), "vpc2-pod", "pod-ip")) == ("ok", "client-node")


def test_toggle_on_one_cluster_only() -> None:
    cells = phase_cells(make_config(), snat("X", "vpc2"))
    assert outcome_role(cell(cells, "vpc2-pod", "pod-ip")) == ("ok", "client-pod")
    assert outcome_role(cell(cells, "vpc1-pod", "peer-host")) == ("ok", "client-node")


def test_outside_reaches_only_internet_facing_load_balancers() -> None:
    cells = [c for c in phase_cells(make_config()) if c.vantage == "outside"]
    reachable = {c.target for c in cells if c.expected.outcome == "ok"}
    assert reachable == {"load-balancer", "nginx-nlb"}
    assert cell(cells, "outside", "nginx-nlb").expected.client_address_role is None


def test_outside_exists_on_aws_only_with_outside_cidrs() -> None:
    from peerprobe import topology

    assert topology.plan(make_config(), backend="aws").outside is None
    assert topology.plan(make_config(outside_cidrs=["203.0.113.0/28"]), backend="aws").outside == "203.0.113.1"
