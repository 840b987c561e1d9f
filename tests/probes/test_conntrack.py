"""Observed translations: conntrack listings parsed, and one probe's entries followed along its way."""

from __future__ import annotations

from peerprobe.probes import conntrack
from peerprobe.probes.conntrack import Key

# vpc2's node SNATs the busybox pod (192.168.96.19) to its own address (and port); VPC1's node only routes it.
VPC2_NODE = """\
ipv4     2 tcp      6 117 TIME_WAIT src=192.168.96.19 dst=172.16.96.18 sport=40312 dport=8080 src=172.16.96.18 \
dst=192.168.96.16 sport=8080 dport=1615 [ASSURED] mark=0 zone=0 use=2
ipv4     2 tcp      6 117 TIME_WAIT src=192.168.96.19 dst=172.16.96.18 sport=40999 dport=8080 src=172.16.96.18 \
dst=192.168.96.16 sport=8080 dport=2000 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=192.168.96.19 dst=172.16.0.10 sport=1615 dport=53 [UNREPLIED] src=172.16.0.10 \
dst=192.168.96.19 sport=53 dport=1615 mark=0 zone=0 use=2"""
ROUTER = """\
ipv4     2 tcp      6 117 TIME_WAIT src=192.168.96.16 dst=172.16.96.18 sport=1615 dport=8080 src=172.16.96.18 \
dst=192.168.96.16 sport=8080 dport=1615 [ASSURED] mark=0 zone=0 use=2"""
CLI = """\
tcp      6 117 TIME_WAIT src=192.168.96.16 dst=172.16.96.18 sport=1615 dport=8080 src=172.16.96.18 \
dst=192.168.96.16 sport=8080 dport=1615 [ASSURED] mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown."""
START = Key("192.168.96.19", 40312, "172.16.96.18", 8080)


def tables(**listings: str) -> conntrack.Tables:
    return conntrack.Tables.of({ns: conntrack.parse(ns, text) for ns, text in listings.items()})


def test_tcp_entries_are_parsed_from_proc_and_from_the_cli_and_other_lines_skipped() -> None:
    proc, cli = conntrack.parse("node", VPC2_NODE), conntrack.parse("echo-node", CLI)
    assert [e.original for e in proc] == [START, Key("192.168.96.19", 40999, "172.16.96.18", 8080)]
    assert [e.original for e in cli] == [Key("192.168.96.16", 1615, "172.16.96.18", 8080)]


def test_a_snat_is_the_reply_destination_and_a_dnat_the_reply_source() -> None:
    [snat] = conntrack.parse("node", VPC2_NODE.splitlines()[0])
    assert snat.translates and snat.leaving == Key("192.168.96.16", 1615, "172.16.96.18", 8080)
    line = (
        "tcp 6 10 ESTABLISHED src=172.16.160.19 dst=10.100.50.33 sport=5000 dport=80 src=172.16.96.18 "
        "dst=172.16.160.19 sport=8080 dport=5000 [ASSURED]"
    )
    [dnat] = conntrack.parse("node", line)
    assert dnat.leaving == Key("172.16.160.19", 5000, "172.16.96.18", 8080)


def test_each_translation_is_handed_to_the_next_namespace_and_other_probes_are_left_out() -> None:
    way = conntrack.follow(tables(vpc2_node=VPC2_NODE, vpc1_node=CLI), START)
    assert [(e.namespace, e.original.src, e.original.sport) for e in way] == [
        ("vpc2_node", "192.168.96.19", 40312),
        ("vpc1_node", "192.168.96.16", 1615),
    ]


def test_namespaces_that_saw_the_same_flow_come_in_order_of_distance_and_the_rewriter_last() -> None:
    both = tables(vpc1_node=CLI, vpc1_router=ROUTER, vpc2_router=ROUTER, vpc2_node=VPC2_NODE)
    hops = {"vpc2_node": 0, "vpc2_router": 1, "vpc1_router": 2, "vpc1_node": 3}
    way = conntrack.follow(both, START, begin="vpc2_node", distance=lambda _start, ns: hops[ns])
    assert [e.namespace for e in way] == ["vpc2_node", "vpc2_router", "vpc1_router", "vpc1_node"]


# A Classic ELB node: the client's connection ends in it; the proxy's own, from the same port, is DNATed.
PROXY = """\
ipv4 2 tcp 6 117 TIME_WAIT src=192.0.2.10 dst=172.16.0.6 sport=5555 dport=80 src=172.16.0.6 dst=192.0.2.10 \
sport=80 dport=5555 [ASSURED] zone=0 use=2
ipv4 2 tcp 6 117 TIME_WAIT src=172.16.0.6 dst=169.254.255.1 sport=6000 dport=80 src=172.16.96.17 dst=172.16.0.6 \
sport=32497 dport=6000 [ASSURED] zone=0 use=2
ipv4 2 tcp 6 117 TIME_WAIT src=172.16.0.6 dst=169.254.255.1 sport=5555 dport=80 src=172.16.96.16 dst=172.16.0.6 \
sport=32497 dport=5555 [ASSURED] zone=0 use=2"""


def test_a_proxy_namespace_hands_on_to_its_connection_from_the_clients_port() -> None:
    start = Key("192.0.2.10", 5555, "172.16.0.6", 80)
    way = conntrack.follow(tables(lb=PROXY), start, relays=frozenset({"lb"}))
    assert [(e.original.dst, e.relayed) for e in way] == [("172.16.0.6", False), ("169.254.255.1", True)]
    assert way[-1].leaving.dst == "172.16.96.16"
    assert len(conntrack.follow(tables(lb=PROXY), start)) == 1  # elsewhere, a connection that ends there ends
