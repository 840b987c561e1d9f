"""The terminal view: a rich table per phase with the drifted cells explained under it, the workshop claims that
do not hold, and a summary line."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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

OUTCOME_STYLE = {"ok": "green", "timeout": "yellow", "refused": "red", "dns-error": "magenta", "http-error": "red"}
WIDE = 120  # columns from which a probed phase's table also has room for the model's reason
STATUS_STYLE: dict[Status, str] = {"match": "green", "drift": "bold red", "tolerated": "yellow", "predicted": "dim"}


def console() -> Console:
    """A console for the report: the terminal's width, or a wide page when the output is a file or pipe."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=170)


def render(report: Report, console: Console) -> None:
    for phase in report.phases:
        console.print(phase_table(phase, width=console.width))
        _print_drifted(phase, console)
    _print_workshop_errors(report, console)
    tally = report.tally()
    console.print(Text(tally.line(), style="bold red" if tally.drift else "bold"))


def phase_table(phase: PhaseReport, *, width: int = WIDE) -> Table:
    """Expected against observed when the phase was probed; the model's expectation alone when predicted.
    Below WIDE columns a probed phase drops `why` (drifted cells are explained under the table anyway)."""
    observed = any(cell.observed is not None for cell in phase.cells)
    with_why = width >= WIDE or not observed
    table = Table(
        title=f"phase {escape(phase.name)}  [dim]{escape(phase.snat_settings())}[/dim]",
        title_justify="left",
        box=box.HEAVY_HEAD if width >= WIDE else box.SIMPLE_HEAD,
    )
    table.add_column("vantage", no_wrap=True)
    table.add_column("target", overflow="fold", max_width=26)
    table.add_column("expected", max_width=30)
    if observed:
        table.add_column("observed", max_width=32)
        table.add_column("verdict", no_wrap=True)
    if with_why:
        table.add_column("why", ratio=1, min_width=20)
    for cell in phase.cells:
        judged = [_observed(cell), _verdict(cell)] if observed else []
        table.add_row(cell.vantage, target_label(cell), _expected(cell), *judged, *([why(cell)] if with_why else []))
    return table


def _expected(cell: Cell) -> Text:
    expected = cell.expected
    text = Text(expected.outcome, style=OUTCOME_STYLE.get(expected.outcome, ""))
    text.append(f" {expected.client_address_role or ''}".rstrip())
    if expected.may_timeout:
        text.append(" (may time out)", style="dim")
    if cell.workshop and not cell.workshop.agrees:
        text.append(f"\n✗ workshop {cell.workshop.ref}: {cell.workshop.claimed}", style="red")
    return text


def _observed(cell: Cell) -> Text:
    """``ok 172.16.160.19 client-pod``: shorter than the Markdown form, so the table keeps room for why."""
    seen = cell.observed
    if seen is None:
        return Text("-")
    parts = [seen.outcome, seen.client_address, seen.client_address_role]
    resolved = f" (dns {' '.join(seen.resolved)})" if seen.resolved else ""
    return Text(" ".join(part for part in parts if part) + resolved, style=STATUS_STYLE[status(cell)])


def _verdict(cell: Cell) -> Text:
    verdict = status(cell)
    return Text(verdict, style=STATUS_STYLE[verdict])


def _print_drifted(phase: PhaseReport, console: Console) -> None:
    for cell in (cell for cell in phase.cells if cell.verdict == "drift"):
        headline, *reasons = cell.explanation or ["drift"]
        where = Text(f"✗ {cell.vantage} → {target_label(cell)} ({cell.address}): ", style="bold red")
        _indented(console, where + Text(headline, style="red"), 2)
        for line in (f"expected {expected_text(cell)}; observed {observed_text(cell, detail=True)}", *reasons):
            _indented(console, Text(line), 6)


def _indented(console: Console, text: Text, left: int) -> None:
    # Padding keeps wrapped lines under their first one, so a long reason stays readable at 80 columns.
    console.print(Padding(text, (0, 0, 0, left)))


def _print_workshop_errors(report: Report, console: Console) -> None:
    wrong = report.workshop_errors()
    if not wrong:
        return
    console.print(Text("Workshop claims that do not hold", style="bold"))
    for phase, cell in wrong:
        assert cell.workshop is not None  # workshop_errors() yields only cells with a claim
        line = (
            f"[{phase}] {cell.vantage} -> {target_label(cell)} (workshop {cell.workshop.ref}): "
            f"claims {cell.workshop.claimed!r}, expected {expected_text(cell)}: {why(cell)}"
        )
        _indented(console, Text(line), 2)
