"""Payloads for Prefect's table, markdown and progress artifacts: plain data, so the library never imports Prefect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from peerprobe.report import markdown
from peerprobe.report.document import (
    PhaseReport,
    Report,
    Status,
    expected_text,
    observed_text,
    status,
    target_label,
    why,
)
from peerprobe.vocabulary import Cell

MAX_KEY = 100
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_MARKDOWN_SPECIAL = re.compile(r"[\\\[\]()]")
# What a reader needs first leads, so the verdict is on screen in the UI's table; the full address comes last.
PHASE_COLUMNS = ("vantage", "target", "verdict", "expected", "observed", "why", "address")
VERDICT_TEXT: dict[Status, str] = {
    "match": "✓ match",
    "drift": "✗ drift",
    "tolerated": "≈ tolerated timeout",
    "predicted": "predicted",
}


def artifact_key(*parts: str) -> str:
    """``artifact_key("workshop", "Phase external_snat")`` gives ``workshop-phase-external-snat``: Prefect
    accepts lowercase letters, digits and dashes only, so anything else becomes one dash."""
    key = _NOT_KEY.sub("-", "-".join(parts).lower()).strip("-")[:MAX_KEY].rstrip("-")
    if not key:
        raise ValueError(f"no artifact key can be made from {parts!r}")
    return key


def phase_table(phase: PhaseReport) -> list[dict[str, str]]:
    """One row per cell under PHASE_COLUMNS, string values."""
    return [phase_row(cell) for cell in phase.cells]


def phase_row(cell: Cell) -> dict[str, str]:
    values = (
        cell.vantage,
        target_label(cell),
        VERDICT_TEXT[status(cell)],
        expected_text(cell),
        observed_text(cell),
        why(cell),
        cell.address,
    )
    return dict(zip(PHASE_COLUMNS, values, strict=True))


@dataclass(frozen=True)
class ReportLink:
    """A link artifact's payload: the HTML report written on the machine that ran the command."""

    link: str
    text: str

    def markdown(self) -> str:
        """``[text](link)``, as Prefect stores link artifacts; brackets and backslashes in the text are escaped."""
        text = _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(0), self.text)
        return f"[{text}]({self.link})"


def report_link(path: str | Path) -> ReportLink:
    """A file:// link to the HTML report (its absolute path is the link's text, for a browser that will not
    follow file links from a web page)."""
    target = Path(path).resolve()
    return ReportLink(link=target.as_uri(), text=f"HTML report: {target}")


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
