"""The terminal view: one rich table per phase, then the workshop claims that do not hold."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from peerprobe.report.document import PhaseReport, Report
from peerprobe.vocabulary import Cell

OUTCOME_STYLE = {"ok": "green", "timeout": "yellow", "refused": "red", "dns-error": "magenta", "http-error": "red"}


def console() -> Console:
    """A console for the report: the terminal's width, or a wide page when the output is a file or pipe."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=170)


def render(report: Report, console: Console) -> None:
    for phase in report.phases:
        console.print(phase_table(phase))
    _print_workshop_errors(report, console)


def phase_table(phase: PhaseReport) -> Table:
    table = Table(title=f"phase {phase.name}  [dim]{_snat_summary(phase)}[/dim]", title_justify="left", expand=False)
    table.add_column("vantage", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("expected", no_wrap=True)
    table.add_column("source seen", no_wrap=True)
    table.add_column("why", overflow="fold", ratio=1)
    for cell in phase.cells:
        table.add_row(cell.vantage, _target(cell), _outcome(cell), _role(cell), _why(cell))
    return table


def _snat_summary(phase: PhaseReport) -> str:
    parts = []
    for key in ("vpc1", "vpc2"):
        snat = getattr(phase.snat, key)
        settings = [
            *(["EXTERNALSNAT=true"] if snat.external_snat else []),
            *([f"EXCLUDE_SNAT_CIDRS={','.join(snat.exclude_snat_cidrs)}"] if snat.exclude_snat_cidrs else []),
        ]
        parts.append(f"{key}: {' '.join(settings) or 'defaults'}")
    return "; ".join(parts)


def _target(cell: Cell) -> str:
    return f"{cell.target} @{cell.target_node.split('.')[0]}" if cell.target_node else cell.target


def _outcome(cell: Cell) -> Text:
    outcome = cell.expected.outcome
    text = Text(outcome, style=OUTCOME_STYLE.get(outcome, ""))
    if cell.expected.may_timeout:
        text.append(" (may time out)", style="dim")
    if cell.observed is not None:
        seen = cell.observed.outcome
        text.append(f" / seen {seen}", style="green" if cell.verdict == "match" else "bold red")
    return text


def _role(cell: Cell) -> Text:
    text = Text(cell.expected.client_address_role or "-")
    if cell.observed is not None and cell.observed.client_address:
        text.append(f" / {cell.observed.client_address} ({cell.observed.client_address_role})")
    if cell.workshop and not cell.workshop.agrees:
        text.append(f"\nworkshop {cell.workshop.ref}: {cell.workshop.claimed} ✗", style="red")
    return text


def _why(cell: Cell) -> str:
    return cell.explanation[0] if cell.explanation else ""


def _print_workshop_errors(report: Report, console: Console) -> None:
    wrong = [(p.name, c) for p in report.phases for c in p.cells if c.workshop and not c.workshop.agrees]
    if not wrong:
        return
    console.print(Text("Workshop claims that do not hold", style="bold"))
    for phase, cell in wrong:
        assert cell.workshop is not None
        expected = cell.expected.client_address_role or cell.expected.outcome
        console.print(
            f"  [{phase}] {cell.vantage} -> {cell.target} (workshop {cell.workshop.ref}): "
            f"claims {cell.workshop.claimed!r}, expected {expected}: {_why(cell)}"
        )
