"""Prefect artifact payloads: valid keys, table rows, a short summary, progress; no credentials in any report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from peerprobe import snapshot
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
    assert rows and len(rows) == len(observed.phases[0].cells)  # an empty table would pass unseen
    assert {tuple(row)[:6] for row in rows} == {leading}


def test_phase_table_values_are_strings(predicted: Report) -> None:
    rows = artifacts.phase_table(predicted.phases[0])
    assert rows and all(row for row in rows)
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
    assert first == "**peerprobe workshop** on lab: 105 cells: 103 match, 1 tolerated timeout, 1 drift"


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


# Credentials planted where a report could pick them up: this process's environment and aws-node's (a drift
# check reads aws-node's environment back into the report's config_diff). AWS's documented example keys.
PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLESESSIONTOKENzzzzzzzzzzzzzzzzzzzzz",
}


def with_planted_credentials(report: Report) -> Report:
    """``report`` as a drift check would write it after aws-node gained the planted credentials."""
    baseline = snapshot.ConfigSnapshot(clusters={"vpc2": snapshot.ClusterSnapshot(name="c", cni_version="1.20.4")})
    env = snapshot.redact({"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true", **PLANTED})
    live = baseline.model_copy(
        update={"clusters": {"vpc2": baseline.clusters["vpc2"].model_copy(update={"aws_node": env})}}
    )
    return report.model_copy(update={"config_diff": snapshot.diff(baseline, live)})


@pytest.mark.parametrize("fixture", ["predicted", "observed"])
def test_no_report_format_carries_an_aws_key(
    fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    report = with_planted_credentials(request.getfixturevalue(fixture))
    payloads = [
        report.to_json(),
        markdown.render(report),
        junit.render(report),
        artifacts.summary_markdown(report),
        repr([artifacts.phase_table(phase) for phase in report.phases]),
    ]
    assert all(name in payloads[0] for name in PLANTED)  # the planted variables did reach the report
    assert [AWS_KEY.findall(payload) for payload in payloads] == [[]] * len(payloads)
    assert [value for value in PLANTED.values() for payload in payloads if value in payload] == []
