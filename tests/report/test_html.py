"""The HTML report: self-contained, every cell with its path, rewrites named, outside text escaped, and a page
that still says everything when Graphviz is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from peerprobe import config
from peerprobe.report import _graph, html
from peerprobe.report.document import PhaseReport, Report
from tests.report.conftest import DRIFT_AT

needs_dot = pytest.mark.skipif(_graph.dot_executable() is None, reason="Graphviz's dot is not installed")
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
_URL_ATTRIBUTE = re.compile(r"""\b(?:src|href|xlink:href|action|data)\s*=\s*["']?\s*(?!#)([^"'\s>]+)""", re.I)


@pytest.fixture(scope="module")
def page(observed: Report) -> str:
    return html.render(observed, config.load())


@pytest.fixture(scope="module")
def plain_page(observed: Report) -> str:
    return html.render(observed, config.load(), draw=False)


def articles(page: str) -> dict[str, str]:
    """Each cell's path article by its id."""
    found = re.findall(r'<article class="path" id="(c\d+-\d+)"[^>]*>(.*?)</article>', page, re.S)
    return dict(found)


def test_the_page_fetches_nothing_from_outside(page: str) -> None:
    urls = _URL_ATTRIBUTE.findall(page)
    assert not [url for url in urls if not url.startswith("#")]
    assert not re.search(r"<link\b|@import|url\(\s*['\"]?https?:", page, re.I)
    assert "default-src 'none'" in page  # and the browser is told so


def test_every_cell_has_its_path(page: str, observed: Report) -> None:
    found = articles(page)
    assert len(found) == sum(len(phase.cells) for phase in observed.phases) == 105
    hops = {cell_id: body.count("<tr") - 1 for cell_id, body in found.items()}  # less the table's head row
    assert min(hops.values()) >= 1


def test_a_connection_that_completes_has_hops_from_the_client_to_the_server(page: str, observed: Report) -> None:
    found = articles(page)
    completing = [
        f"c{p}-{c}"
        for p, phase in enumerate(observed.phases)
        for c, cell in enumerate(phase.cells)
        if cell.expected.outcome == "ok"
    ]
    assert completing and all(found[cell_id].count("<tr") - 1 >= 3 for cell_id in completing)


def test_every_matrix_cell_opens_an_existing_path(page: str) -> None:
    links = set(re.findall(r'<td class="[^"]*"><a href="#(c\d+-\d+)"', page))
    assert links == set(articles(page))


def test_a_snat_cell_marks_the_rewrite_and_what_did_it(page: str, observed: Report) -> None:
    index = next(i for i, c in enumerate(observed.phases[0].cells) if (c.vantage, c.target) == DRIFT_AT)
    body = articles(page)[f"c0-{index}"]
    rewrite = re.search(r'<li class="rewrite">src ([\d.]+) → ([\d.]+) — by ([^<]+)</li>', body)
    assert rewrite and rewrite.group(3) == "AWS-SNAT-CHAIN-0 SNAT" and rewrite.group(1) != rewrite.group(2)


def test_cells_whose_workshop_claim_fails_are_marked_in_the_matrix(page: str, observed: Report) -> None:
    matrix_badges = len(re.findall(r'<span class="wbadge" ', page))
    assert matrix_badges == len(observed.workshop_errors()) == 5
    assert page.count('<p class="workshop wrong">') == 5


def test_drift_and_tolerated_cells_are_coloured_by_verdict(page: str) -> None:
    assert len(re.findall(r'<td class="drift[ "]', page)) == 1
    assert len(re.findall(r'<td class="tolerated[ "]', page)) == 1


def test_outside_text_is_escaped(observed: Report) -> None:
    hostile = observed.model_copy(
        update={
            "experiment": HOSTILE,
            "run_id": HOSTILE,
            "phases": [PhaseReport(name=HOSTILE, snat=p.snat, cells=p.cells) for p in observed.phases],
            "config_diff": [{"text": HOSTILE}],
        }
    )
    page = html.render(hostile, config.load())
    assert page.count("<script") == 1  # the page's own, at the end
    assert "<img" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_a_hostile_node_name_is_escaped_in_the_drawings_too(observed: Report) -> None:
    vpc1 = observed.topology.vpc1
    nodes = [vpc1.nodes[0].model_copy(update={"name": HOSTILE}), *vpc1.nodes[1:]]
    echo = vpc1.echo_pod.model_copy(update={"node": HOSTILE}) if vpc1.echo_pod else None
    top = observed.topology.model_copy(update={"vpc1": vpc1.model_copy(update={"nodes": nodes, "echo_pod": echo})})
    page = html.render(observed.model_copy(update={"topology": top}), config.load())
    assert page.count("<script") == 1 and "<img" not in page


def test_without_graphviz_the_page_says_so_and_lists_the_hops(plain_page: str) -> None:
    assert "<svg" not in plain_page and "No drawings in this report" in plain_page
    assert len(articles(plain_page)) == 105 and '<table class="hops">' in plain_page


def test_a_missing_dot_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_graph, "dot_executable", lambda: None)
    drawn = _graph.render(["digraph { a }"])
    assert drawn.svgs == () and "dot is not installed" in drawn.problem


@needs_dot
def test_the_topology_is_drawn_with_every_place_a_path_visits(page: str) -> None:
    topology = page[page.index('id="topology-diagram"') :].split("</svg>", 1)[0]
    visited = {p for ids in re.findall(r'data-places="([^"]*)"', page) for p in ids.split()}
    drawn = set(re.findall(r'<g id="(pl[0-9a-f]+)"', topology))
    assert visited and visited <= drawn


@needs_dot
def test_each_path_is_drawn(page: str) -> None:
    assert sum(1 for body in articles(page).values() if '<div class="pathsvg"><svg' in body) == 105


def test_a_report_the_model_cannot_trace_still_renders(observed: Report) -> None:
    vpc1 = observed.topology.vpc1.model_copy(update={"echo_pod": None})
    broken = observed.model_copy(update={"topology": observed.topology.model_copy(update={"vpc1": vpc1})})
    page = html.render(broken, config.load(), draw=False)
    assert "No path: the model cannot trace this cell" in page and len(articles(page)) == 105


def test_write_puts_the_page_at_the_path(tmp_path: Path, predicted: Report) -> None:
    target = html.write(predicted, tmp_path / "out" / "report.html", config.load())
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_write_goes_through_a_symlink_instead_of_replacing_it(tmp_path: Path, predicted: Report) -> None:
    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "report.html"
    link.symlink_to(real)
    html.write(predicted, link, config.load())
    assert link.is_symlink() and real.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
