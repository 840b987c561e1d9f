"""A drift check's terminal view: the live phase's expected and observed values, the baseline's beside them, and
which baseline it compared with (or that there was none)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from peerprobe import drift
from peerprobe.compare import judged
from peerprobe.report import terminal
from peerprobe.report.document import PhaseReport, Report
from tests.report.conftest import DRIFT_AT, as_expected


def printed(report: Report, width: int | None = None) -> str:
    file = io.StringIO()
    terminal.render(report, Console(width=width or 80, force_terminal=width is not None, color_system=None, file=file))
    return file.getvalue()


def live_report(predicted: Report, *, changed: bool) -> Report:
    """A live phase that matches the model everywhere; with ``changed``, vpc2-pod -> pod-ip shows the client pod."""
    phase = predicted.phases[0]
    cells = []
    for cell in phase.cells:
        seen = as_expected(cell)
        if changed and (cell.vantage, cell.target) == DRIFT_AT:
            seen = seen.model_copy(update={"client_address": "192.168.96.19", "client_address_role": "client-pod"})
        cells.append(judged(cell, seen))
    return predicted.model_copy(update={"phases": [PhaseReport(name=drift.LIVE, snat=phase.snat, cells=cells)]})


@pytest.fixture(scope="module")
def against_baseline(predicted: Report) -> Report:
    """Live: the drifted cell shows the client pod; the baseline showed its node, as the model expects."""
    before = live_report(predicted, changed=False)
    baseline = drift.Baseline(report=before.model_copy(update={"phases": before.phases}), snapshot=None)
    return drift.against_baseline(live_report(predicted, changed=True), baseline, None)  # type: ignore[arg-type]


def row(text: str, at: tuple[str, str]) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.split()[:2] == list(at))


def test_the_live_phase_shows_expected_observed_and_the_baselines_value(against_baseline: Report) -> None:
    text = printed(against_baseline)
    assert next(line for line in text.splitlines() if line.startswith("vantage")).split() == [
        "vantage",
        "target",
        "expected",
        "observed",
        "baseline",
    ]
    assert row(text, DRIFT_AT) == ["vpc2-pod", "pod-ip", "client-node", "!192.168.96.19", "client-pod", "client-node"]
    assert row(text, ("vpc1-pod", "pod-ip"))[-1] == "same"


def test_it_says_which_baseline_it_compared_with(against_baseline: Report) -> None:
    recorded: dict[str, Any] = {"run_id": "run-0001", "recorded_at": "2026-12-04T15:00:00Z"}
    report = against_baseline.model_copy()
    object.__setattr__(report, "baseline", recorded)  # design.md's `baseline` field, when the report has it
    assert "compared with the baseline of run run-0001, recorded 2026-12-04T15:00:00Z" in printed(report)


def test_without_a_baseline_it_says_so_and_has_no_baseline_column(predicted: Report) -> None:
    text = printed(live_report(predicted, changed=False))
    assert "no baseline recorded for this environment: compared with the model only" in text
    assert "baseline" not in next(line for line in text.splitlines() if line.startswith("vantage"))


@pytest.mark.parametrize("width", [80, 100])
def test_the_drift_view_fits_the_terminal(against_baseline: Report, width: int) -> None:
    assert max(len(line) for line in printed(against_baseline, width).splitlines()) <= width


def test_the_drift_is_explained_and_counted(against_baseline: Report) -> None:
    text = printed(against_baseline)
    assert f"✗ [live] vpc2-pod → pod-ip (172.16.96.18:8080): {drift.SINCE_BASELINE}" in text
    assert text.rstrip().splitlines()[-1].endswith("1 drift")
