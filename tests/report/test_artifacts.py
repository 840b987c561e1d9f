"""Prefect artifact payloads: valid keys, table rows, a short summary, progress; no credentials in any report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from peerprobe import config, drift, snapshot
from peerprobe.report import artifacts, html, junit, markdown, metrics
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


def with_aws_node_env(report: Report, env: dict[str, str]) -> Report:
    """``report`` as a drift check would write it after aws-node's environment became ``env`` (read back into a
    snapshot as a backend reads it, then diffed with a baseline that had none of it)."""
    baseline = snapshot.ConfigSnapshot(clusters={"vpc2": snapshot.ClusterSnapshot(name="c", cni_version="1.20.4")})
    live = snapshot.ConfigSnapshot(
        clusters={"vpc2": snapshot.ClusterSnapshot(name="c", cni_version="1.20.4", aws_node=env)}
    )
    return drift.against_baseline(report, drift.Baseline(report=report, snapshot=baseline), live)


def with_planted_credentials(report: Report) -> Report:
    return with_aws_node_env(report, {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true", **PLANTED})


def every_format(report: Report) -> dict[str, str]:
    """The report in every format a user or an automation gets: the report files, the run's artifacts (the drift
    check's own included) and the drift event."""
    from flows.drift import drift_markdown

    workshop = config.load()
    return {
        "json": report.to_json(),
        "markdown": markdown.render(report, workshop),
        "html": html.render(report.summarised(), workshop, draw=False),
        "junit": junit.render(report),
        "metrics": metrics.render(report, region=workshop.region),
        "summary artifact": artifacts.summary_markdown(report),
        "phase artifacts": repr([artifacts.phase_table(phase) for phase in report.phases]),
        "drift artifact": drift_markdown("lab:w:r", report, has_baseline=True),
        "drift event": json.dumps(drift.event_payload("lab:w:r", report)),
    }


@pytest.mark.parametrize("fixture", ["predicted", "observed"])
def test_no_report_format_carries_an_aws_key(
    fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    payloads = every_format(with_planted_credentials(request.getfixturevalue(fixture)))
    assert all(name in payloads["json"] for name in PLANTED)  # the planted variables did reach the report
    assert {name: AWS_KEY.findall(text) for name, text in payloads.items() if AWS_KEY.search(text)} == {}
    assert [(name, value) for value in PLANTED.values() for name, text in payloads.items() if value in text] == []


# What an operator may add to aws-node beside what the model reads: no name pattern tells these are secret.
NOT_READ = {"FOO_API_KEY": "s3cret", "HTTP_PROXY": "http://user:pw@host"}


def test_only_the_aws_node_values_the_model_reads_reach_any_format(observed: Report) -> None:
    payloads = every_format(with_aws_node_env(observed, {"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true", **NOT_READ}))
    assert [name for name, text in payloads.items() if "s3cret" in text or ":pw@" in text] == []
    shown = "vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true"  # in the formats that show the diff
    assert [name for name in ("json", "html", "drift event") if shown not in payloads[name]] == []
    row = markdown.escape("clusters.vpc2.aws_node.AWS_VPC_K8S_CNI_EXTERNALSNAT") + " | None | true |"
    assert row in payloads["drift artifact"]
    assert "vpc2 aws-node now has FOO_API_KEY=<redacted>" in payloads["json"]  # by its name, its value redacted
