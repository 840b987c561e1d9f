"""Observed translations beside the model's hops: the kernel's entries under the hop of their place, agreement
judged on the addresses the packet leaves with, disagreements marked, and a backend that does not collect them
said so."""

from __future__ import annotations

import re

from peerprobe import config
from peerprobe.model.path import CellPath, Hop
from peerprobe.report import html
from peerprobe.report._observed import side_by_side
from peerprobe.report.document import PhaseReport, Report
from peerprobe.vocabulary import Cell, Flow, Translation
from tests.report.conftest import cell_at
from tests.report.test_html import articles

AT = ("vpc2-pod", "node-port")  # SNAT at the vpc2 node, then kube-proxy's DNAT and masquerade at the VPC1 node


def entry(at: str, ns: str, original: tuple[str, int, str, int], leaving: tuple[str, int, str, int]) -> Translation:
    src, sport, dst, dport = leaving
    return Translation(
        at=at,
        namespace=ns,
        original=Flow(src=original[0], sport=original[1], dst=original[2], dport=original[3]),
        reply=Flow(src=dst, sport=dport, dst=src, dport=sport),
    )


def kernel(report: Report, *, vpc2_snat: bool = True) -> list[Translation]:
    """What the lab records for the cell: the vpc2 node's SNAT (or not), a router, the VPC1 node's DNAT."""
    top = report.topology
    pod, node2, node1 = top.vpc2.busybox_pod.ip, top.vpc2.nodes[0], top.vpc1.nodes[0]  # type: ignore[union-attr]
    echo, port = top.vpc1.echo_pod.ip, top.vpc1.node_port  # type: ignore[union-attr]
    source = node2.ip if vpc2_snat else pod
    return [
        entry(f"node:{node2.name}", "vpc2-node0", (pod, 40000, node1.ip, port), (source, 1615, node1.ip, port)),
        entry("router:vpc1", "vpc1-router", (source, 1615, node1.ip, port), (source, 1615, node1.ip, port)),
        entry(f"node:{node1.name}", "vpc1-node0", (source, 1615, node1.ip, port), (node1.ip, 9000, echo, 8080)),
    ]


def with_translations(report: Report, seen: list[Translation] | None, backend: str = "lab") -> tuple[Report, str]:
    """The report with the cell's observation carrying ``seen``, and that cell's article id."""
    cell = cell_at(report, AT)
    observed = cell.observed.model_copy(update={"translations": seen})  # type: ignore[union-attr]
    phase = report.phases[0]
    cells = [c.model_copy(update={"observed": observed}) if c is cell else c for c in phase.cells]
    phases = [PhaseReport(name=phase.name, snat=phase.snat, cells=cells), *report.phases[1:]]
    return report.model_copy(update={"phases": phases, "backend": backend}), f"c0-{cells.index(_same(cells, cell))}"


def _same(cells: list[Cell], cell: Cell) -> Cell:
    return next(
        c for c in cells if (c.vantage, c.target, c.target_node) == (cell.vantage, cell.target, cell.target_node)
    )


def article(report: Report, cell_id: str) -> str:
    return articles(html.render(report, config.load(), draw=False))[cell_id]


def test_a_lab_cell_shows_the_kernels_entries_beside_the_models_hops(observed: Report) -> None:
    report, cell_id = with_translations(observed, kernel(observed))
    body = article(report, cell_id)
    assert '<table class="hops sidebyside">' in body and "<th>observed (conntrack)</th>" in body
    assert "what happens there (the model)" in body
    assert re.search(r"vpc2-node0: src [\d.]+:40000 → [\d.]+:1615</p>", body)
    assert '<tr class="extra">' in body and "VPC1 router" in body  # no place of the model's path, still shown
    assert "disagree" not in body and body.count("✓ leaves with the model's addresses") == 2


def test_where_the_kernel_left_a_hop_with_other_addresses_the_row_is_marked(observed: Report) -> None:
    report, cell_id = with_translations(observed, kernel(observed, vpc2_snat=False))
    body = article(report, cell_id)
    [marked] = re.findall(r'<tr class="rewritten disagree">.*?</tr>', body, re.S)
    assert "node ip-192-168-96-16" in marked and "✗ the kernel: 192.168.96.19 → 172.16.96.16" in marked
    assert "the kernel and the model disagree at 1 hop</b>" in body


def test_the_aws_backend_says_it_does_not_collect_them(observed: Report) -> None:
    report, cell_id = with_translations(observed, None, backend="aws")
    body = article(report, cell_id)
    assert "not collected on aws" in body and "sidebyside" not in body


def test_namespace_names_are_escaped(observed: Report) -> None:
    hostile = [t.model_copy(update={"namespace": "<b>x</b>"}) for t in kernel(observed)]
    report, cell_id = with_translations(observed, hostile)
    body = article(report, cell_id)
    assert "&lt;b&gt;x&lt;/b&gt;" in body and "<b>x" not in body


def test_a_hop_agrees_when_the_next_namespaces_bring_the_models_address() -> None:
    """The lab's NAT gateway rewrites to its private address and its internet gateway to the public one; the
    model's NAT gateway hop names the public one. Agreement is judged up to the next place of the path."""
    path = CellPath("ok", (Hop("nat:vpc1", "198.51.100.1", "203.0.113.10"), Hop("internet", "198.51.100.1", "x")))
    nat = entry(
        "nat:vpc1", "vpc1-natgw", ("172.16.160.16", 1, "203.0.113.10", 80), ("172.16.0.5", 1, "203.0.113.10", 80)
    )
    igw = entry("igw:vpc1", "vpc1-igw", ("172.16.0.5", 1, "203.0.113.10", 80), ("198.51.100.1", 1, "203.0.113.10", 80))
    rows = side_by_side(path, [nat, igw])
    assert [(row.hop.at if row.hop else None, row.agrees) for row in rows] == [
        ("nat:vpc1", True),
        (None, None),
        ("internet", None),
    ]
