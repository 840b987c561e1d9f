"""The HTML report in a real browser: it renders with no console errors, its topology diagram is visible, and
choosing a cell shows that cell's path and lights its places on the diagram (screenshots under out/ui/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe import config
from peerprobe.report import _graph, html
from peerprobe.run import predicted_report
from tests.ui.cdp import Page, browser

WIDTHS = (1600, 1000)
needs_dot = pytest.mark.skipif(_graph.dot_executable() is None, reason="Graphviz's dot is not installed")


@pytest.fixture(scope="module")
def report_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    cfg = config.load()
    path = html.write(predicted_report(cfg), tmp_path_factory.mktemp("html") / "report.html", cfg)
    return path.as_uri()


@pytest.fixture(scope="module")
def page(chromium_path: str) -> Iterator[Page]:
    """One browser for the module (starting Chromium costs seconds); each test navigates afresh."""
    with browser("about:blank", executable=chromium_path) as opened:
        yield opened


def fresh(page: Page, url: str, width: int) -> Page:
    page.errors.clear()
    page.viewport(width, 1000)
    page.open("about:blank")
    page.open(url)
    return page


def visible_size(page: Page, selector: str) -> tuple[float, float]:
    box = page.evaluate(
        f"(() => {{ const e = document.querySelector('{selector}'); if (!e) return null;"
        " const r = e.getBoundingClientRect(); return [r.width, r.height]; })()"
    )
    return (float(box[0]), float(box[1])) if box else (0.0, 0.0)


@needs_dot
@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_renders_its_diagram_without_console_errors(
    report_url: str, page: Page, screenshots: Path, width: int
) -> None:
    fresh(page, report_url, width).settle()
    page.screenshot(screenshots / f"report-{width}.png")
    diagram = visible_size(page, "#topology-diagram svg")
    assert page.errors == []
    assert diagram[0] > 200 and diagram[1] > 200, diagram


@needs_dot
@pytest.mark.parametrize("width", WIDTHS)
def test_choosing_a_cell_shows_its_path_on_the_diagram(
    report_url: str, page: Page, screenshots: Path, width: int
) -> None:
    fresh(page, report_url, width)
    page.evaluate("document.querySelector('td.predicted a[href=\"#c0-0\"]').click()")
    shown = page.wait_for("getComputedStyle(document.getElementById('c0-0')).display === 'block'", timeout=5)
    page.evaluate("document.getElementById('c0-0').scrollIntoView()")
    page.settle(0.3)
    page.screenshot(screenshots / f"report-cell-{width}.png")
    lit = page.evaluate("document.querySelectorAll('#topology-diagram .place.on').length")
    hops = page.evaluate("document.querySelectorAll('#c0-0 table.hops tbody tr').length")
    assert shown and page.errors == []
    assert lit >= 3 and hops >= 3
    assert visible_size(page, "#c0-0 .pathsvg svg")[0] > 200


def test_the_console_check_sees_errors(page: Page) -> None:
    """The check above can fail: a page that logs an error and throws is caught."""
    fresh(page, "data:text/html,<script>console.error('planted');throw new Error('thrown')</script>", 800).settle(0.2)
    assert any("planted" in error for error in page.errors) and any("thrown" in error for error in page.errors)
