"""The terminal view: by default the before/after view (one row per vantage -> target, one column per phase, the
mechanism of each change under it), or for a drift check the live phase beside the model and the baseline;
`--full` prints every phase's matrix. Plain text (no borders, colour or padding) when the output is not a terminal.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from peerprobe.config import ExperimentConfig
from peerprobe.report import beforeafter, scope
from peerprobe.report.beforeafter import Row, Value
from peerprobe.report.document import PhaseReport, Report, Status, expected_text, observed_text, status, why
from peerprobe.vocabulary import Cell

STATUS_STYLE: dict[Status, str] = {"match": "green", "drift": "bold red", "tolerated": "yellow", "predicted": ""}
CHANGED_STYLE = "bold yellow"
NO_REASON = "(the model gives no reason)"
GAP = 2  # what _table puts between two columns
PLAIN_WIDTH = 1_000_000  # a plain table is laid out on a page this wide, so nothing wraps, then stripped


def console() -> Console:
    """A console for the report: the terminal's own width, or plain text when the output is a file or pipe."""
    return Console()


def render(report: Report, console: Console, *, full: bool = False, config: ExperimentConfig | None = None) -> None:
    """The report for a reader: ``config`` (when known) limits the workshop's claims to cells whose topology is
    the workshop's."""
    out = Output(console)
    if full:
        _full(report, out)
    elif beforeafter.is_drift_report(report):
        _drift_view(report, out)
    else:
        _before_after(report, out)
    _drifted(report, out)
    _workshop_errors(scope.workshop_errors(report, config), out)
    tally = report.tally()
    out.line(Text(beforeafter.summary_line(report), style="bold red" if tally.drift else "bold"))


@dataclass(frozen=True)
class Output:
    """Where the view goes: a terminal (colour, a table fitted to its width, wrapped lines under their first)
    or plain text (every line as long as its content, nothing else)."""

    console: Console

    @property
    def plain(self) -> bool:
        return not self.console.is_terminal

    def line(self, text: Text, indent: int = 0) -> None:
        if self.plain:
            self.console.out((" " * indent + text.plain).rstrip(), highlight=False)
        else:
            self.console.print(Padding(text, (0, 0, 0, indent), expand=False))

    def table(self, table: Table) -> None:
        if not self.plain:
            self.console.print(_unbreakable(table))
            return
        page = io.StringIO()
        table.box, table.padding, table.pad_edge = None, (0, 2, 0, 0), False
        Console(file=page, width=PLAIN_WIDTH, color_system=None, highlight=False).print(table)
        for line in page.getvalue().splitlines():
            self.console.out(line.rstrip(), highlight=False)

    def fits(self, table: Table) -> bool:
        """Whether the table fits the terminal without breaking a word (each column keeps its longest word)."""
        if self.plain:
            return True
        widths = [column.min_width or 0 for column in _unbreakable(table).columns]
        return sum(widths) + GAP * (len(widths) - 1) <= self.console.width


def _unbreakable(table: Table) -> Table:
    """Each column at least as wide as its longest word: rich then wraps between words, never inside one."""
    for column in table.columns:
        texts = [column.header, *column.cells]
        words = [word for text in texts if isinstance(text, str | Text) for word in str(text).split()]
        column.min_width = max(map(len, words), default=1)
    return table


def _table(*headers: str | Text) -> Table:
    # No outer edge, one space of padding right of each column but the last, and SIMPLE_HEAD's divider (a space):
    # GAP columns between two columns.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for header in headers:
        table.add_column(header)
    return table


def _label(row: Row, out: Output) -> Text:
    # On a terminal the node may go to a second line ("node-port" / "@ip-172-16-96-16") rather than be broken.
    unfolded = row.node is not None and row.node != beforeafter.ALL_NODES
    return Text(f"{row.target} @{row.node}" if unfolded and not out.plain else row.label)


# --- the before/after view ----------------------------------------------------------------------------------


def _before_after(report: Report, out: Output) -> None:
    view = beforeafter.rows(report)
    predicted = all(cell.observed is None for phase in report.phases for cell in phase.cells)
    what = "expected" if predicted else "observed"
    out.line(Text(f"Before/after ({what}): whose address the echo server sees, per phase", "bold"))
    _phase_settings(report.phases, out, predicted=predicted)
    names = [phase.name for phase in report.phases]
    for chunk in _chunks(len(names), lambda chosen: _before_after_table(view, names, chosen, out), out):
        out.table(_before_after_table(view, names, chunk, out))
    for entry in beforeafter.legend(view):
        out.line(Text(entry, style="dim"), 2)
    _changes(beforeafter.changes(report, view), out)


def _phase_settings(phases: Sequence[PhaseReport], out: Output, *, predicted: bool) -> None:
    source = "as configured" if predicted else "as read back from aws-node"
    out.line(Text(f"SNAT settings ({source}):"))
    grid = Table.grid(padding=(0, 0, 0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for phase in phases:
        grid.add_row(Text(phase.name), Text(phase.snat_settings()))
    out.table(grid)


def _chunks(count: int, build: Callable[[list[int]], Table], out: Output) -> list[list[int]]:
    """The phase columns split into tables that each fit the terminal (one table when they all fit)."""
    chunks: list[list[int]] = [[]]
    for index in range(count):
        if chunks[-1] and not out.fits(build([*chunks[-1], index])):
            chunks.append([])
        chunks[-1].append(index)
    return chunks


def _before_after_table(view: list[Row], names: list[str], chosen: list[int], out: Output) -> Table:
    table = _table("vantage", "target", *(Text(names[index]) for index in chosen))
    for row in view:
        table.add_row(Text(row.vantage), _label(row, out), *(_value(row.values[index]) for index in chosen))
    return table


def _value(value: Value) -> Text:
    style = STATUS_STYLE[value.status] if value.status in ("drift", "tolerated") else ""
    return Text(value.marked(), style=style or (CHANGED_STYLE if value.changed else ""))


def _changes(changes: list[beforeafter.Change], out: Output) -> None:
    if not changes:
        out.line(Text("Nothing changes between the phases."))
        return
    out.line(Text("What changed, and why:", style="bold"))
    for (before, after), group in _by_phases(changes).items():
        out.line(Text(f"{before} → {after}"), 2)
        for change in group:
            out.line(Text(f"{change.row.vantage} → {change.row.label}: {change.was} → {change.now}"), 4)
            out.line(Text(change.why or NO_REASON, style="dim"), 8)


def _by_phases(changes: Iterable[beforeafter.Change]) -> dict[tuple[str, str], list[beforeafter.Change]]:
    grouped: dict[tuple[str, str], list[beforeafter.Change]] = {}
    for change in changes:
        grouped.setdefault((change.before, change.after), []).append(change)
    return grouped


# --- a drift check: the live phase beside the model and the baseline ----------------------------------------


def _drift_view(report: Report, out: Output) -> None:
    """One row per vantage -> target: expected, observed (marked as in the before/after view) and, when there is
    a baseline, what the baseline saw."""
    phase = report.phases[0]
    out.line(Text(f"Drift check, phase {phase.name}: {phase.snat_settings()}", style="bold"))
    out.line(Text(beforeafter.baseline_statement(report)), 2)
    baseline = beforeafter.has_baseline(report)
    table = _table("vantage", "target", "expected", "observed", *(["baseline"] if baseline else []))
    view = beforeafter.rows(report)
    for row in view:
        cell = row.cells[0]
        if cell is None:
            continue
        then = [Text(beforeafter.baseline_value(cell))] if baseline else []
        table.add_row(Text(row.vantage), _label(row, out), Text(_expected(cell)), _observed(cell, row.values[0]), *then)
    out.table(table)
    for entry in beforeafter.legend(view):
        out.line(Text(entry, style="dim"), 2)


def _expected(cell: Cell) -> str:
    """``client-pod`` when the model expects it to get through (``ok`` when no role applies), else the outcome."""
    expected = cell.expected
    text = expected.client_address_role or "ok" if expected.outcome == "ok" else expected.outcome
    return f"{beforeafter.MAY_TIME_OUT}{text}" if expected.may_timeout else text


def _observed(cell: Cell, value: Value) -> Text:
    """``172.16.160.19 client-pod``, marked as in the before/after view, with the DNS answers summarised."""
    seen = cell.observed
    dns = beforeafter.dns_summary(seen.resolved if seen else None)
    return Text(" ".join(filter(None, (value.marked(), dns))), style=STATUS_STYLE[status(cell)])


def _verdict(cell: Cell) -> Text:
    verdict = status(cell)
    return Text(verdict, style=STATUS_STYLE[verdict])


# --- --full: every phase's matrix ---------------------------------------------------------------------------


def _full(report: Report, out: Output) -> None:
    for phase in report.phases:
        out.line(Text(f"phase {phase.name}  {phase.snat_settings()}", style="bold"))
        table, notes = phase_table(phase, plain=out.plain)
        out.table(table)
        for number, note in enumerate(notes, start=1):
            out.line(Text(f"[{number}] {note}", style="dim"), 2)


def phase_table(phase: PhaseReport, *, plain: bool = False) -> tuple[Table, list[str]]:
    """Expected against observed when the phase was probed, the expectation alone when predicted; the `why`
    column numbers the model's reasons, listed under the table (each distinct reason once)."""
    probed = any(cell.observed is not None for cell in phase.cells)
    table = _table("vantage", "target", "expected", *(["observed", "verdict"] if probed else []), "why")
    notes: dict[str, int] = {}
    for cell in phase.cells:
        number = notes.setdefault(why(cell) or NO_REASON, len(notes) + 1)
        judged = [_observed(cell, beforeafter.value(cell)), _verdict(cell)] if probed else []
        target = cell.target + (f"{'' if plain else ' '}@{cell.target_node.split('.')[0]}" if cell.target_node else "")
        table.add_row(Text(cell.vantage), Text(target), Text(_expected(cell)), *judged, Text(f"[{number}]"))
    return table, list(notes)


# --- under every view ---------------------------------------------------------------------------------------


def _drifted(report: Report, out: Output) -> None:
    drifted = report.drifted()
    if drifted:
        out.line(Text("Drifted cells:", style="bold red"))
    for phase, cell in drifted:
        headline, *reasons = cell.explanation or ["drift"]
        where = f"✗ [{phase}] {cell.vantage} → {_target(cell)} ({beforeafter.short_address(cell)}): "
        out.line(Text(where, style="bold red") + Text(headline, style="red"), 2)
        for line in (f"expected {expected_text(cell)}; observed {observed_text(cell, detail=True)}", *reasons):
            out.line(Text(line), 6)


def _target(cell: Cell) -> str:
    return f"{cell.target}@{cell.target_node.split('.')[0]}" if cell.target_node else cell.target


def _workshop_errors(wrong: list[tuple[str, Cell]], out: Output) -> None:
    if not wrong:
        return
    out.line(Text("Workshop claims that do not hold", style="bold"))
    for phase, cell in wrong:
        assert cell.workshop is not None  # workshop_errors() yields only cells with a claim
        line = (
            f"[{phase}] {cell.vantage} → {_target(cell)} (workshop {cell.workshop.ref}): "
            f"claims '{cell.workshop.claimed}', expected {expected_text(cell)}: {why(cell)}"
        )
        out.line(Text(line), 2)
