"""The terminal view: expected against observed in colour, drift explained under its phase, a summary line,
readable at 170 columns and unbroken at 80."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from peerprobe.report import terminal
from peerprobe.report.document import Report
from tests.report.conftest import DRIFT_AT, TOLERATED_AT, cell_at


def printed(report: Report, width: int = 170) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    terminal.render(report, console)
    return console.export_text()


def column(table: Table, header: str) -> list[Text]:
    found = next(col for col in table.columns if col.header == header)
    return [cell for cell in found.cells if isinstance(cell, Text)]


def verdict_style(report: Report, at: tuple[str, str]) -> str:
    phase = report.phases[0]
    index = phase.cells.index(cell_at(report, at))
    return str(column(terminal.phase_table(phase), "verdict")[index].style)


def test_console_keeps_a_wide_page_when_not_a_terminal() -> None:
    assert terminal.console().width == 170


def test_a_predicted_phase_shows_the_expectation_and_why(predicted: Report) -> None:
    headers = [col.header for col in terminal.phase_table(predicted.phases[0]).columns]
    assert headers == ["vantage", "target", "expected", "why"]


def test_an_observed_phase_shows_expected_observed_and_verdict(observed: Report) -> None:
    headers = [col.header for col in terminal.phase_table(observed.phases[0]).columns]
    assert headers == ["vantage", "target", "expected", "observed", "verdict", "why"]


def test_a_match_is_green(observed: Report) -> None:
    assert verdict_style(observed, ("vpc1-pod", "pod-ip")) == "green"


def test_a_drift_is_bold_red(observed: Report) -> None:
    assert verdict_style(observed, DRIFT_AT) == "bold red"


def test_a_tolerated_timeout_is_yellow(observed: Report) -> None:
    assert verdict_style(observed, TOLERATED_AT) == "yellow"


def test_the_observed_cell_gives_outcome_address_and_role(observed: Report) -> None:
    phase = observed.phases[0]
    index = phase.cells.index(cell_at(observed, DRIFT_AT))
    assert column(terminal.phase_table(phase), "observed")[index].plain == "ok 172.16.96.99 client-pod"


def test_drifted_cells_are_explained_under_their_phase_table(observed: Report) -> None:
    text = printed(observed)
    baseline, rest = text.split("phase external-snat", 1)
    headline = cell_at(observed, DRIFT_AT).explanation[0]
    assert f"✗ vpc2-pod → pod-ip (172.16.96.18:8080): {headline}" in baseline and headline not in rest


def test_a_drift_explanation_gives_every_reason(observed: Report) -> None:
    text = " ".join(printed(observed).split())
    assert all(" ".join(reason.split()) in text for reason in cell_at(observed, DRIFT_AT).explanation)


def test_the_last_line_is_the_summary(observed: Report) -> None:
    assert printed(observed).rstrip().splitlines()[-1] == "105 cells: 104 match, 1 drift (1 tolerated timeout)"


def test_workshop_claims_that_do_not_hold_are_listed(predicted: Report) -> None:
    assert "[baseline] vpc2-ec2 -> load-balancer (workshop 12.3.2): claims 'EC2 IP'" in printed(predicted)


def test_at_170_columns_the_probed_table_keeps_why(observed: Report) -> None:
    lines = printed(observed, 170).splitlines()
    assert max(map(len, lines)) <= 170 and any("why" in line and "observed" in line for line in lines)


def test_at_80_columns_every_verdict_is_printed(observed: Report) -> None:
    words = " ".join(printed(observed, 80).splitlines()[:-1]).split()  # the table rows, not the summary line
    assert (words.count("match"), words.count("drift"), words.count("tolerated")) == (103, 1, 1)


def test_at_80_columns_addresses_are_not_split(observed: Report) -> None:
    # rich crops or folds what does not fit; a whole address for every observed cell shows neither happened.
    cells = [
        cell for phase in observed.phases for cell in phase.cells if cell.observed and cell.observed.client_address
    ]
    assert printed(observed, 80).split().count("172.16.160.19") == len(cells) - 1  # the drifted one differs


def test_at_80_columns_a_predicted_report_keeps_its_reasons(predicted: Report) -> None:
    text = " ".join(printed(predicted, 80).split())
    assert " ".join(predicted.phases[0].cells[0].explanation[0].split()) in text
