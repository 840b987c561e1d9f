"""The Markdown report, ready for a ticket: the title names the config and what it changes from the defaults, then
the before/after view and the summary, the drifted cells, the workshop claims that do not hold, and the full
table of every phase with each cell's mechanism."""

from __future__ import annotations

from peerprobe.config import ExperimentConfig
from peerprobe.report import beforeafter, scope
from peerprobe.report.beforeafter import Row, Value
from peerprobe.report.document import PhaseReport, Report, Status, expected_text, observed_text, status, why
from peerprobe.vocabulary import Cell

COLUMNS = ("vantage", "target (node)", "address", "expected", "observed", "verdict", "mechanism")
VERDICT_LABEL: dict[Status, str] = {
    "match": "✅ match",
    "drift": "❌ drift",
    "tolerated": "tolerated",
    "predicted": "predicted",
}
MARKUP = frozenset("|`*_[")  # characters that would end a table cell or start code, emphasis or a link
TITLE_KEYS = 3  # non-default keys named in the title itself; all of them are listed under it


def render(report: Report, config: ExperimentConfig | None = None) -> str:
    """The whole report; ``config`` (when known) names what it changes from the defaults and limits the
    workshop's claims to cells whose topology is the workshop's."""
    main = _drift_check(report) if beforeafter.is_drift_report(report) else _before_after(report)
    sections = [
        _title(report, config),
        main,
        _drifted(report),
        _workshop_errors(scope.workshop_errors(report, config)),
        *map(_phase, report.phases),
        _load_balancers(report),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def row(cell: Cell) -> dict[str, str]:
    """One cell as plain strings under COLUMNS (the Prefect table artifact uses the same row)."""
    values = (cell.vantage, _target(cell), beforeafter.short_address(cell), expected_text(cell), _observed(cell))
    return dict(zip(COLUMNS, (*values, VERDICT_LABEL[status(cell)], why(cell)), strict=True))


def escape(text: str) -> str:
    """Text safe inside a table cell: a pipe would end the cell, a newline the row (artifacts and the drift
    flow's Markdown use this too)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _text(text: str) -> str:
    """Outside text (names, addresses, explanations) in this report, in a table or in prose: besides what
    ``escape`` does, a backtick, `*`, `_` or `[` escaped and `<` as an entity, so it never becomes code,
    emphasis, a link or HTML."""
    text = text.replace("\\", "\\\\").replace("\r", " ").replace("\n", " ").replace("<", "&lt;")
    return "".join(f"\\{char}" if char in MARKUP else char for char in text)


def table(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> str:
    """A table of plain text (escaped here)."""
    escaped = [{column: _text(row[column]) for column in columns} for row in rows]
    return _markup_table(escaped, tuple(map(escape, columns)))


def _markup_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    """A table of cells that are Markdown already."""
    lines = [_line(columns), _line(["---"] * len(columns))]
    return "\n".join(lines + [_line([row[column] for column in columns]) for row in rows])


def _line(values: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(values) + " |"


def _target(cell: Cell) -> str:
    return f"{cell.target}@{cell.target_node.split('.')[0]}" if cell.target_node else cell.target


def _observed(cell: Cell) -> str:
    """``ok from 172.16.160.19 (client-pod), dns: 2 addresses``, or ``-`` for a predicted cell."""
    seen = cell.observed
    if seen is None:
        return "-"
    text = observed_text(cell.model_copy(update={"observed": seen.model_copy(update={"resolved": None})}))
    return ", ".join(filter(None, (text, beforeafter.dns_summary(seen.resolved))))


# --- the head: title, config, summary -----------------------------------------------------------------------


def _title(report: Report, config: ExperimentConfig | None) -> str:
    run = f", run `{_text(report.run_id)}`" if report.run_id else " (predicted, no run)"
    changed = scope.describe(config) if config is not None else []
    named = "; ".join(changed[:TITLE_KEYS]) + (
        f"; and {len(changed) - TITLE_KEYS} more" if changed[TITLE_KEYS:] else ""
    )
    heading = f"# peerprobe: {_text(report.experiment)} on {_text(report.backend)}{run}"
    heading += f" — {_text(named)}" if named else ""
    return f"{heading}\n\n{_config_line(report, config, changed)}\n\n**{beforeafter.summary_line(report)}**"


def _config_line(report: Report, config: ExperimentConfig | None, changed: list[str]) -> str:
    if config is None:
        return f"Config `{_text(report.experiment)}`: not recorded in this report."
    if not changed:
        but = "" if config.name == ExperimentConfig().name else " but its name"
        return f"Config `{_text(config.name)}`: every key{but} at its default (the workshop topology)."
    return f"Config `{_text(config.name)}`, keys that differ from the defaults:\n\n" + "\n".join(
        f"- {_text(entry)}" for entry in changed
    )


# --- the before/after view ----------------------------------------------------------------------------------


def _before_after(report: Report) -> str:
    view = beforeafter.rows(report)
    predicted = all(cell.observed is None for phase in report.phases for cell in phase.cells)
    what = "expected" if predicted else "observed"
    names = [phase.name for phase in report.phases]
    rows = [
        {"vantage": r.vantage, "target": _text(r.label), **dict(zip(names, map(_value, r.values), strict=True))}
        for r in view
    ]
    parts = [
        f"## Before/after\n\nWhose address the echo server sees ({what}), per phase.",
        _settings(report.phases, predicted=predicted),
        _markup_table(rows, ("vantage", "target", *names)),
        _legend(view),
        _changes(beforeafter.changes(report, view)),
    ]
    return "\n\n".join(part for part in parts if part)


def _settings(phases: list[PhaseReport], *, predicted: bool) -> str:
    source = "as configured" if predicted else "as read back from aws-node"
    lines = [f"- `{_text(phase.name)}`: {_text(phase.snat_settings())}" for phase in phases]
    return f"SNAT settings ({source}):\n\n" + "\n".join(lines)


def _value(value: Value) -> str:
    """The value with its marker, a change in bold."""
    text = _text(value.marked())
    return f"**{text}**" if value.changed else text


def _legend(view: list[Row]) -> str:
    return " · ".join(_text(entry) for entry in beforeafter.legend(view))


def _changes(changes: list[beforeafter.Change]) -> str:
    if not changes:
        return "### What changed, and why\n\nNothing changes between the phases."
    items = [
        f"- **{_text(c.before)} → {_text(c.after)}**, {c.row.vantage} → {_text(c.row.label)}: "
        f"{_text(c.was)} → {_text(c.now)}. {_text(c.why or '(the model gives no reason)')}"
        for c in changes
    ]
    return "### What changed, and why\n\n" + "\n".join(items)


# --- a drift check ------------------------------------------------------------------------------------------


def _drift_check(report: Report) -> str:
    phase = report.phases[0]
    baseline = beforeafter.has_baseline(report)
    columns = ("vantage", "target", "expected", "observed", *(["baseline"] if baseline else []))
    rows = [_drift_row(row, baseline=baseline) for row in beforeafter.rows(report) if row.cells[0] is not None]
    head = f"## Drift check, phase `{_text(phase.name)}`\n\n{_text(phase.snat_settings())}"
    return f"{head}\n\n{_text(beforeafter.baseline_statement(report))}.\n\n{table(rows, columns)}"


def _drift_row(row: Row, *, baseline: bool) -> dict[str, str]:
    cell = row.cells[0]
    assert cell is not None  # the caller keeps rows with a cell
    found = {"vantage": row.vantage, "target": row.label, "expected": expected_text(cell)}
    found["observed"] = ", ".join(filter(None, (row.values[0].marked(), beforeafter.dns_summary(_resolved(cell)))))
    return found | ({"baseline": beforeafter.baseline_value(cell)} if baseline else {})


def _resolved(cell: Cell) -> list[str] | None:
    return cell.observed.resolved if cell.observed else None


# --- drift, claims, full tables -----------------------------------------------------------------------------


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
    head = f"- **{_where(phase, cell)}** ({_text(beforeafter.short_address(cell))}): {_text(headline)}"
    return "\n".join([head, *(f"  - {_text(line)}" for line in details)])


def _workshop_errors(wrong: list[tuple[str, Cell]]) -> str:
    if not wrong:
        return "## Workshop claims that do not hold\n\nEvery claim that speaks for this topology holds."
    lines = [_workshop_line(phase, cell) for phase, cell in wrong]
    return "## Workshop claims that do not hold\n\n" + "\n".join(lines)


def _workshop_line(phase: str, cell: Cell) -> str:
    assert cell.workshop is not None  # workshop_errors() yields only cells with a claim
    claim = f"claims “{_text(cell.workshop.claimed)}” (workshop {_text(cell.workshop.ref)})"
    return f"- **{_where(phase, cell)}**: {claim}; expected {expected_text(cell)}, because {_text(why(cell))}"


def _where(phase: str, cell: Cell) -> str:
    return f"{_text(phase)} · {cell.vantage} → {_target(cell)}"


def _phase(phase: PhaseReport) -> str:
    source = "as read back from aws-node" if any(c.observed for c in phase.cells) else "as configured"
    settings = f"SNAT ({source}): {_text(phase.snat_settings())}"
    return f"## Phase `{_text(phase.name)}`\n\n{settings}\n\n{table([row(cell) for cell in phase.cells])}"


def _load_balancers(report: Report) -> str:
    names = report.topology.vpc1.load_balancers
    if not names:
        return ""
    lines = [f"- {_text(kind)}: {_text(beforeafter.short_lb_name(dns))} is {_text(dns)}" for kind, dns in names.items()]
    return "## Load balancers\n\nThe tables name each load balancer by its first characters:\n\n" + "\n".join(lines)
