"""The terminal view at 80 and 100 columns on a terminal, and as plain text when the output is not one: the
before/after view by default, every phase's matrix with --full, nothing broken, dropped or read as markup."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from peerprobe import config
from peerprobe.report import terminal
from peerprobe.report.document import PhaseReport, Report
from peerprobe.run import predicted_report
from peerprobe.vocabulary import Cell, Observed
from tests.report.conftest import DRIFT_AT, cell_at

BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters
WORDS = re.compile(r"(?<![\w.-])(?:\d{1,3}(?:\.\d{1,3}){3}|ip-\d+-\d+-\d+-\d+)(?![\w-]|\.\d)")  # addresses, node names


def printed(report: Report, width: int | None = None, **options: object) -> str:
    """On a terminal of ``width`` columns, or plain (not a terminal) without one."""
    file = io.StringIO()
    console = Console(width=width or 80, force_terminal=width is not None, color_system=None, file=file)
    terminal.render(report, console, **options)  # type: ignore[arg-type]
    return file.getvalue()


@pytest.fixture(scope="module")
def varied(observed: Report) -> Report:
    """The observed report with a node-port cell drifting on one node only and two DNS answers on a load
    balancer, in the second phase."""
    phase = observed.phases[1]
    node_port = next(c for c in phase.cells if (c.vantage, c.target) == ("vpc2-pod", "node-port"))
    lb = next(c for c in phase.cells if (c.vantage, c.target) == ("vpc2-pod", "load-balancer"))
    seen = Observed(outcome="refused", detail="connection refused")
    changed = {
        id(node_port): node_port.model_copy(update={"observed": seen, "verdict": "drift", "explanation": ["drift: x"]}),
        id(lb): lb.model_copy(update={"observed": lb.observed.model_copy(update={"resolved": ["1.1.1.1", "2.2.2.2"]})}),  # type: ignore[union-attr]
    }
    cells = [changed.get(id(cell), cell) for cell in phase.cells]
    phases = [observed.phases[0], phase.model_copy(update={"cells": cells}), *observed.phases[2:]]
    return observed.model_copy(update={"phases": phases}).summarised()


REPORTS = ["predicted", "observed", "varied"]
WIDTHS = [80, 100]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", REPORTS)
@pytest.mark.parametrize("full", [False, True])
def test_no_line_is_wider_than_the_terminal(request: pytest.FixtureRequest, name: str, width: int, full: bool) -> None:
    lines = printed(request.getfixturevalue(name), width, full=full).splitlines()
    assert max(len(line) for line in lines) <= width


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", REPORTS)
@pytest.mark.parametrize("full", [False, True])
def test_no_address_or_node_name_is_split(request: pytest.FixtureRequest, name: str, width: int, full: bool) -> None:
    report = request.getfixturevalue(name)
    plain, narrow = printed(report, full=full), printed(report, width, full=full)
    whole = set(WORDS.findall(plain))
    assert whole and all(narrow.count(word) == plain.count(word) for word in whole)


@pytest.mark.parametrize("name", REPORTS)
@pytest.mark.parametrize("full", [False, True])
def test_plain_text_has_no_borders_padding_or_colour(request: pytest.FixtureRequest, name: str, full: bool) -> None:
    text = printed(request.getfixturevalue(name), full=full)
    assert not BOX.search(text) and "\x1b[" not in text
    assert [line for line in text.splitlines() if line != line.rstrip()] == []


def test_plain_text_lines_are_as_long_as_their_content(observed: Report) -> None:
    # a row never wraps, whatever the (absent) terminal's width: one line per vantage -> target
    line = next(line for line in printed(observed).splitlines() if line.startswith("vpc2-pod  pod-ip"))
    assert line.split() == ["vpc2-pod", "pod-ip", "!172.16.96.99", "client-pod", *["172.16.160.19", "client-pod"] * 2]


def test_the_default_view_has_one_column_per_phase(observed: Report) -> None:
    header = next(line for line in printed(observed).splitlines() if line.startswith("vantage"))
    assert header.split() == ["vantage", "target", "baseline", "external-snat", "exclude-snat"]


def test_node_port_cells_fold_into_one_row_when_the_nodes_agree(observed: Report) -> None:
    rows = [line for line in printed(observed).splitlines() if line.startswith("vpc1-pod  node-port")]
    assert len(rows) == 1 and "@" not in rows[0]


def test_a_node_port_cell_that_differs_on_one_node_unfolds_its_row(varied: Report) -> None:
    rows = [line.split()[1] for line in printed(varied).splitlines() if line.startswith("vpc2-pod  node-port")]
    assert rows == ["node-port@ip-172-16-96-16", "node-port@ip-172-16-128-16", "node-port@ip-172-16-160-16"]


def test_a_change_between_phases_is_marked_and_its_mechanism_listed(observed: Report) -> None:
    text = printed(observed)
    row = next(line for line in text.splitlines() if line.startswith("vpc1-pod  peer-host "))
    cell = cell_at(observed, ("vpc1-pod", "peer-host"), phase=1)
    assert "*172.16.160.19 client-pod" in row
    changes = text.split("What changed, and why:")[1]
    assert "vpc1-pod → peer-host: 172.16.160.19 client-node → 172.16.160.19 client-pod" in changes
    assert cell.explanation[0] in changes


def test_a_tolerated_timeout_that_then_gets_through_is_no_change(observed: Report) -> None:
    assert "internal-nlb:" not in printed(observed).split("What changed, and why:")[1]


def test_a_drift_is_marked_in_the_view_and_explained_under_it(observed: Report) -> None:
    text = printed(observed)
    assert "!172.16.96.99 client-pod" in text
    headline = cell_at(observed, DRIFT_AT).explanation[0]
    assert f"✗ [baseline] vpc2-pod → pod-ip (172.16.96.18:8080): {headline}" in text


def test_dns_answers_are_summarised(varied: Report) -> None:
    text = printed(varied, full=True)
    assert "dns: 2 addresses" in text and "1.1.1.1" not in text


def test_predict_shows_the_expected_values_side_by_side(predicted: Report) -> None:
    text = printed(predicted)
    row = next(line for line in text.splitlines() if line.startswith("vpc2-pod  pod-ip"))
    assert row.split() == ["vpc2-pod", "pod-ip", "client-node", "*client-pod", "client-pod"]
    assert "Before/after (expected)" in text


def test_full_prints_every_phase_with_its_reasons_numbered_under_it(observed: Report) -> None:
    text = printed(observed, 80, full=True)
    assert all(f"phase {phase.name}" in text for phase in observed.phases)
    first = observed.phases[0].cells[0]
    assert "[1] " + first.explanation[0][:40] in " ".join(text.split())


@pytest.mark.parametrize("width", WIDTHS)
def test_full_keeps_every_column(observed: Report, width: int) -> None:
    header = next(line for line in printed(observed, width, full=True).splitlines() if line.startswith("vantage"))
    assert header.split() == ["vantage", "target", "expected", "observed", "verdict", "why"]


def test_tolerated_timeouts_are_counted_apart_from_matches(observed: Report) -> None:
    assert printed(observed).rstrip().splitlines()[-1] == "105 cells: 103 match, 1 tolerated timeout, 1 drift"


def test_a_predicted_report_says_nothing_was_probed(predicted: Report) -> None:
    assert printed(predicted).rstrip().splitlines()[-1] == "105 cells predicted (the model only: nothing was probed)"


MARKUP = "[bold]x[/] [/]"


def hostile(report: Report) -> Report:
    """Outside text that rich would read as markup: in a phase name, an explanation and an observation."""
    phase = report.phases[0]
    cells = [_hostile(cell) if (cell.vantage, cell.target) == DRIFT_AT else cell for cell in phase.cells]
    return report.model_copy(update={"phases": [PhaseReport(name=MARKUP, snat=phase.snat, cells=cells)]})


def _hostile(cell: Cell) -> Cell:
    seen = Observed(outcome="http-error", detail=MARKUP)
    return cell.model_copy(update={"observed": seen, "verdict": "drift", "explanation": [f"drift: {MARKUP}", MARKUP]})


@pytest.mark.parametrize("width", [None, 80])
@pytest.mark.parametrize("full", [False, True])
def test_outside_text_is_printed_as_text_not_markup(observed: Report, width: int | None, full: bool) -> None:
    text = " ".join(printed(hostile(observed), width, full=full).split())
    assert f"drift: {MARKUP}" in text and f"({MARKUP})" in text


def test_workshop_claims_that_do_not_hold_are_listed(predicted: Report) -> None:
    assert "[baseline] vpc2-ec2 → load-balancer (workshop 12.3.2): claims 'EC2 IP'" in printed(predicted)


def test_workshop_claims_are_left_out_where_the_topology_is_not_the_workshops(predicted: Report) -> None:
    local = config.from_mapping({"services": {"external_traffic_policy": "Local"}})
    text = printed(predicted, config=local)
    assert "vpc2-ec2 → load-balancer (workshop" not in text and "vpc1-pod → headless (workshop 12.4)" in text


def test_console_is_plain_when_the_output_is_not_a_terminal() -> None:
    assert not terminal.console().is_terminal  # pytest captures stdout


def five_phases() -> Report:
    snat = {"vpc1": {"external_snat": True}, "vpc2": {"exclude_snat_cidrs": ["172.16.0.0/16"]}}
    phases = [{"name": "baseline"}, *({"name": f"changed-settings-{n}", "snat": snat} for n in range(4))]
    return predicted_report(config.from_mapping({"phases": phases}))


def test_phases_that_do_not_fit_side_by_side_continue_in_a_second_table() -> None:
    text = printed(five_phases(), 80)
    headers = [line.split() for line in text.splitlines() if line.startswith("vantage")]
    phases = [name for header in headers for name in header[2:]]
    assert len(headers) > 1 and phases == ["baseline", *(f"changed-settings-{n}" for n in range(4))]
    assert max(len(line) for line in text.splitlines()) <= 80


def test_changes_are_listed_in_phase_order() -> None:
    text = printed(five_phases()).split("What changed, and why:")[1]
    assert text.splitlines()[1].strip() == "baseline → changed-settings-0"
