"""Reports to render: the workshop's predicted report, and the same with every cell observed (mostly matching)."""

from __future__ import annotations

import pytest

from peerprobe import config
from peerprobe.compare import judged
from peerprobe.report.document import PhaseReport, Report
from peerprobe.run import predicted_report
from peerprobe.vocabulary import Cell, Observed

CLIENT = "172.16.160.19"
DRIFT_AT = ("vpc2-pod", "pod-ip")  # observed with the pod's own address: the role drifts
TOLERATED_AT = ("vpc1-pod", "internal-nlb")  # the one may_timeout cell, observed timing out


def as_expected(cell: Cell) -> Observed:
    """What a probe would see if the model were right."""
    expected = cell.expected
    address = CLIENT if expected.outcome == "ok" and expected.client_address_role else None
    resolved = ["172.16.96.18"] if cell.target == "headless" and expected.outcome == "ok" else None
    return Observed(
        outcome=expected.outcome,
        client_address=address,
        client_address_role=expected.client_address_role,
        resolved=resolved,
        host=expected.host,
        request_uri=expected.request_uri,
    )


def observe(cell: Cell, phase: str) -> Cell:
    seen = as_expected(cell)
    if phase == "baseline" and (cell.vantage, cell.target) == DRIFT_AT:
        seen = seen.model_copy(update={"client_address": "172.16.96.99", "client_address_role": "client-pod"})
    if phase == "baseline" and (cell.vantage, cell.target) == TOLERATED_AT:
        seen = Observed(outcome="timeout", detail="timed out after 3s")
    return judged(cell, seen)


@pytest.fixture(scope="session")
def predicted() -> Report:
    return predicted_report(config.load())


@pytest.fixture(scope="session")
def observed(predicted: Report) -> Report:
    """Every cell probed: one drift and one tolerated timeout in the baseline, the rest matching."""
    phases = [
        PhaseReport(name=p.name, snat=p.snat, cells=[observe(cell, p.name) for cell in p.cells])
        for p in predicted.phases
    ]
    return predicted.model_copy(update={"phases": phases, "run_id": "run-0001"}).summarised()


def cell_at(report: Report, at: tuple[str, str], phase: int = 0) -> Cell:
    """The cell of (vantage, target) in a phase (the first, for targets with one cell per node)."""
    return next(cell for cell in report.phases[phase].cells if (cell.vantage, cell.target) == at)
