"""Prefect artifact payloads: valid keys, table rows, a short summary, progress; no credentials in any report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from peerprobe.report import artifacts, junit, markdown
from peerprobe.report.document import Report, why
from tests.report.conftest import DRIFT_AT, cell_at

# An access key id, or a 40-character secret access key standing alone.
AWS_KEY = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
VALID_KEY = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@pytest.mark.parametrize(
    ("parts", "key"),
    [
        (("workshop", "baseline"), "workshop-baseline"),
        (("Workshop", "Phase external_snat"), "workshop-phase-external-snat"),
        (("--lab:workshop:cn-northwest-1--",), "lab-workshop-cn-northwest-1"),
        (("a", "", "b"), "a-b"),
    ],
)
def test_artifact_keys_are_lowercase_letters_digits_and_single_dashes(parts: tuple[str, ...], key: str) -> None:
    assert artifacts.artifact_key(*parts) == key and VALID_KEY.fullmatch(key)


def test_artifact_keys_are_cut_to_100_characters_without_a_trailing_dash() -> None:
    key = artifacts.artifact_key("x" * 99, "y")
    assert len(key) <= 100 and not key.endswith("-")


def test_an_artifact_key_needs_a_letter_or_digit() -> None:
    with pytest.raises(ValueError, match="no artifact key"):
        artifacts.artifact_key("--", "é")


def test_phase_table_has_one_row_per_cell(observed: Report) -> None:
    assert len(artifacts.phase_table(observed.phases[0])) == len(observed.phases[0].cells) == 35


def test_phase_table_leads_with_vantage_target_verdict_expected_observed_why(observed: Report) -> None:
    rows = artifacts.phase_table(observed.phases[0])
    leading = ("vantage", "target", "verdict", "expected", "observed", "why")
    assert {tuple(row)[:6] for row in rows} == {leading}


def test_phase_table_values_are_strings(predicted: Report) -> None:
    rows = artifacts.phase_table(predicted.phases[0])
    assert all(isinstance(value, str) for row in rows for value in row.values())


def test_phase_table_shows_a_drifted_cell_with_its_why(observed: Report) -> None:
    drifted = next(row for row in artifacts.phase_table(observed.phases[0]) if "drift" in row["verdict"])
    cell = cell_at(observed, DRIFT_AT)
    assert (drifted["vantage"], drifted["target"]) == DRIFT_AT and drifted["why"] == why(cell) != ""


def test_the_report_link_is_a_file_uri_named_by_its_path(tmp_path: Path) -> None:
    link = artifacts.report_link(tmp_path / "report (1).html")
    assert link.link == (tmp_path / "report (1).html").as_uri() and str(tmp_path) in link.text


def test_the_report_link_markdown_escapes_brackets_in_the_text() -> None:
    link = artifacts.ReportLink(link="file:///x/a%5D.html", text="HTML report: /x/a](b).html")
    assert link.markdown() == "[HTML report: /x/a\\]\\(b\\).html](file:///x/a%5D.html)"


def test_summary_markdown_starts_with_the_counts(observed: Report) -> None:
    first = artifacts.summary_markdown(observed).splitlines()[0]
    assert first == "**peerprobe workshop** on lab: 105 cells: 104 match, 1 drift (1 tolerated timeout)"


def test_summary_markdown_lists_drifted_cells_with_their_headline(observed: Report) -> None:
    headline = cell_at(observed, DRIFT_AT).explanation[0]
    assert f"- baseline · vpc2-pod → pod-ip: {headline}" in artifacts.summary_markdown(observed)


def test_summary_markdown_lists_workshop_errors(predicted: Report) -> None:
    text = artifacts.summary_markdown(predicted)
    assert "**Workshop claims that do not hold**" in text and "“EC2 IP” (workshop 12.3.2)" in text


def test_summary_markdown_stays_short(observed: Report) -> None:
    assert len(artifacts.summary_markdown(observed).splitlines()) < 15


def test_summary_markdown_omits_empty_sections(predicted: Report) -> None:
    assert "Drifted cells" not in artifacts.summary_markdown(predicted)


@pytest.mark.parametrize(("done", "total", "percent"), [(0, 4, 0.0), (1, 3, 33.3), (4, 4, 100.0), (9, 4, 100.0)])
def test_progress_percent_of_steps_done(done: int, total: int, percent: float) -> None:
    assert artifacts.progress_percent(done, total) == percent


def test_progress_with_no_steps_is_complete() -> None:
    assert artifacts.progress_percent(0, 0) == 100.0


def test_progress_tracker_advances_and_stops_at_the_total() -> None:
    tracker = artifacts.ProgressTracker(total=2)
    assert [tracker.advance(), tracker.advance(), tracker.advance()] == [50.0, 100.0, 100.0]


def test_the_report_formats_do_not_import_prefect() -> None:
    modules = "artifacts, document, junit, markdown, terminal"
    code = f"import sys\nfrom peerprobe.report import {modules}\nprint('prefect' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_secret_detector_finds_a_planted_key() -> None:
    assert AWS_KEY.search("id AKIAIOSFODNN7EXAMPLE and wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.")


@pytest.mark.parametrize("fixture", ["predicted", "observed"])
def test_no_report_format_carries_an_aws_key(fixture: str, request: pytest.FixtureRequest) -> None:
    report: Report = request.getfixturevalue(fixture)
    payloads = [
        report.to_json(),
        markdown.render(report),
        junit.render(report),
        artifacts.summary_markdown(report),
        repr([artifacts.phase_table(phase) for phase in report.phases]),
    ]
    assert [AWS_KEY.findall(payload) for payload in payloads] == [[]] * len(payloads)
