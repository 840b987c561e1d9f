"""Observed translations: conntrack listings parsed, a probe's entries followed along its way, shown in its cell."""

from __future__ import annotations

from peerprobe import config
from peerprobe.report import conntrack, html
from peerprobe.report.document import Report
from tests.report.conftest import DRIFT_AT, cell_at

# vpc2's node SNATs the busybox pod (192.168.96.19) to its own address; VPC1's node only routes it.
NODE = """tcp      6 117 TIME_WAIT src=192.168.96.19 dst=172.16.96.18 sport=40312 dport=8080 src=172.16.96.18 \
dst=192.168.96.16 sport=8080 dport=40312 [ASSURED] mark=0 use=1
udp      17 29 src=192.168.96.19 dst=172.16.0.10 sport=5353 dport=53 [UNREPLIED] src=172.16.0.10 dst=192.168.96.19 \
sport=53 dport=5353 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown."""
ECHO_NODE = """tcp      6 117 TIME_WAIT src=192.168.96.16 dst=172.16.96.18 sport=40312 dport=8080 src=172.16.96.18 \
dst=192.168.96.16 sport=8080 dport=40312 [ASSURED] mark=0 use=1"""


def test_a_listing_is_parsed_into_entries_and_other_lines_are_skipped() -> None:
    entries = conntrack.parse("vpc2-node", NODE)
    assert [(e.src, e.dst, e.dport, e.to_src, e.to_dst) for e in entries] == [
        ("192.168.96.19", "172.16.96.18", 8080, "192.168.96.16", "172.16.96.18"),
        ("192.168.96.19", "172.16.0.10", 53, "192.168.96.19", "172.16.0.10"),
    ]
    assert entries[0].snat and not entries[0].dnat and not entries[1].snat


def test_a_dnat_is_seen_in_the_reply_source() -> None:
    line = (
        "tcp 6 10 ESTABLISHED src=172.16.160.19 dst=10.100.50.33 sport=5000 dport=80 src=172.16.96.18 "
        "dst=172.16.160.19 sport=8080 dport=5000 [ASSURED]"
    )
    [entry] = conntrack.parse("node", line)
    assert entry.dnat and not entry.snat and (entry.to_dst, entry.to_dport) == ("172.16.96.18", 8080)


def test_following_a_probe_hands_each_translation_to_the_next_namespace() -> None:
    tables = [conntrack.parse("vpc2-node", NODE), conntrack.parse("vpc1-node", ECHO_NODE)]
    way = conntrack.follow(tables, "192.168.96.19", "172.16.96.18", 8080)
    assert [(e.namespace, e.src) for e in way] == [("vpc2-node", "192.168.96.19"), ("vpc1-node", "192.168.96.16")]


def test_observed_translations_show_in_their_cell_escaped(observed: Report) -> None:
    cell = cell_at(observed, DRIFT_AT)
    entries = conntrack.parse("<b>vpc2-node</b>", NODE)[:1]
    page = html.render(observed, config.load(), draw=False, observed={html.observed_key("baseline", cell): entries})
    assert page.count('<div class="observed">') == 1
    assert "&lt;b&gt;vpc2-node&lt;/b&gt;: src 192.168.96.19 → 192.168.96.16" in page and "<b>vpc2-node" not in page
