"""Payloads for Prefect's table, markdown and progress artifacts: plain data, so the library never imports Prefect."""

from __future__ import annotations

import re
from dataclasses import dataclass

from peerprobe.report import markdown
from peerprobe.report.document import PhaseReport, Report, expected_text, target_label
from peerprobe.vocabulary import Cell

MAX_KEY = 100
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def artifact_key(*parts: str) -> str:
    """``artifact_key("workshop", "Phase external_snat")`` gives ``workshop-phase-external-snat``: Prefect
    accepts lowercase letters, digits and dashes only, so anything else becomes one dash."""
    key = _NOT_KEY.sub("-", "-".join(parts).lower()).strip("-")[:MAX_KEY].rstrip("-")
    if not key:
        raise ValueError(f"no artifact key can be made from {parts!r}")
    return key


def phase_table(phase: PhaseReport) -> list[dict[str, str]]:
    """One row per cell, with the Markdown table's columns and string values."""
    return [markdown.row(cell) for cell in phase.cells]


def summary_markdown(report: Report) -> str:
    """A short summary for the run's page: counts, each drifted cell's headline, the workshop's errors."""
    drifted = [f"{_where(phase, cell)}: {_headline(cell)}" for phase, cell in report.drifted()]
    wrong = [f"{_where(phase, cell)}: {_claim(cell)}" for phase, cell in report.workshop_errors()]
    lines = [
        f"**peerprobe {report.experiment}** on {report.backend}: {report.tally().line()}",
        *_section("Drifted cells", drifted),
        *_section("Workshop claims that do not hold", wrong),
    ]
    return "\n".join(lines) + "\n"


@dataclass
class ProgressTracker:
    """Steps done out of a total, as the percentage a progress artifact shows (0 to 100)."""

    total: int
    done: int = 0

    @property
    def percent(self) -> float:
        return progress_percent(self.done, self.total)

    def advance(self, steps: int = 1) -> float:
        self.done = min(self.total, self.done + steps)
        return self.percent


def progress_percent(done: int, total: int) -> float:
    """``done`` of ``total`` as a percentage, clamped to 0..100; no steps at all counts as finished."""
    if total <= 0:
        return 100.0
    return round(100.0 * min(max(done, 0), total) / total, 1)


def _section(title: str, items: list[str]) -> list[str]:
    return ["", f"**{title}**", *(f"- {markdown.escape(item)}" for item in items)] if items else []


def _where(phase: str, cell: Cell) -> str:
    return f"{phase} · {cell.vantage} → {target_label(cell)}"


def _headline(cell: Cell) -> str:
    return cell.explanation[0] if cell.explanation else "drift"


def _claim(cell: Cell) -> str:
    assert cell.workshop is not None  # workshop_errors() yields only cells with a claim
    return f"“{cell.workshop.claimed}” (workshop {cell.workshop.ref}), expected {expected_text(cell)}"
