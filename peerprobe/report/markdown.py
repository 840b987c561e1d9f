"""The Markdown report: a table per phase, the drifted cells explained, the workshop claims that do not hold."""

from __future__ import annotations

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

COLUMNS = ("vantage", "target (node)", "address", "expected", "observed", "verdict")
VERDICT_LABEL: dict[Status, str] = {
    "match": "✅ match",
    "drift": "❌ drift",
    "tolerated": "tolerated",
    "predicted": "predicted",
}


def render(report: Report) -> str:
    sections = [_title(report), *map(_phase, report.phases), _drifted(report), _workshop_errors(report)]
    return "\n\n".join(sections) + "\n"


def row(cell: Cell) -> dict[str, str]:
    """One cell as plain strings under COLUMNS (the Prefect table artifact uses the same row)."""
    values = (cell.vantage, target_label(cell), cell.address, expected_text(cell), observed_text(cell))
    return dict(zip(COLUMNS, (*values, VERDICT_LABEL[status(cell)]), strict=True))


def escape(text: str) -> str:
    """Text safe inside a table cell: a pipe would end the cell, a newline the row."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict[str, str]]) -> str:
    lines = [_line(COLUMNS), _line(["---"] * len(COLUMNS))]
    return "\n".join(lines + [_line([row[column] for column in COLUMNS]) for row in rows])


def _line(values: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(escape(value) for value in values) + " |"


def _title(report: Report) -> str:
    run = f", run `{report.run_id}`" if report.run_id else " (predicted, no run)"
    heading = f"# peerprobe: {escape(report.experiment)} on {report.backend}{run}"
    return f"{heading}\n\n**{report.tally().line()}**"


def _phase(phase: PhaseReport) -> str:
    source = "as read back from aws-node" if any(c.observed for c in phase.cells) else "as configured"
    settings = f"SNAT ({source}): {escape(phase.snat_settings())}"
    return f"## Phase `{phase.name}`\n\n{settings}\n\n{table([row(cell) for cell in phase.cells])}"


def _drifted(report: Report) -> str:
    drifted = report.drifted()
    if not drifted:
        observed = any(cell.observed for phase in report.phases for cell in phase.cells)
        return "## Drifted cells\n\n" + ("None." if observed else "None: nothing was observed (predicted only).")
    return "## Drifted cells\n\n" + "\n".join(_drifted_item(phase, cell) for phase, cell in drifted)


def _drifted_item(phase: str, cell: Cell) -> str:
    headline, *reasons = cell.explanation or ["drift"]
    seen = f"expected {expected_text(cell)}; observed {observed_text(cell, detail=True)}"
    details = [seen, *reasons]
    head = f"- **{_where(phase, cell)}** ({escape(cell.address)}): {escape(headline)}"
    return "\n".join([head, *(f"  - {escape(line)}" for line in details)])


def _workshop_errors(report: Report) -> str:
    wrong = report.workshop_errors()
    if not wrong:
        return "## Workshop claims that do not hold\n\nEvery claim holds."
    lines = [_workshop_line(phase, cell) for phase, cell in wrong]
    return "## Workshop claims that do not hold\n\n" + "\n".join(lines)


def _workshop_line(phase: str, cell: Cell) -> str:
    assert cell.workshop is not None  # workshop_errors() yields only cells with a claim
    claim = f"claims “{escape(cell.workshop.claimed)}” (workshop {cell.workshop.ref})"
    return f"- **{_where(phase, cell)}**: {claim}; expected {expected_text(cell)}, because {escape(why(cell))}"


def _where(phase: str, cell: Cell) -> str:
    return f"{phase} · {cell.vantage} → {target_label(cell)}"
