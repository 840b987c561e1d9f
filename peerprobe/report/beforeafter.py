"""The before/after view the terminal and the Markdown report share: one row per vantage -> target, one value per
phase (whose address the server saw), what changed between phases and the mechanism behind each change."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from peerprobe.drift import LIVE, SINCE_BASELINE
from peerprobe.report.document import Report, Status, status, why
from peerprobe.vocabulary import LB_TARGETS, Cell

# Markers carry the meaning in plain text too, where there is no colour.
CHANGED, DRIFT, MAY_TIME_OUT = "*", "!", "~"
LEGEND = {
    "node-port": "node-port: one row for all nodes where they agree, else one row per node",
    CHANGED: f"{CHANGED} changed since the previous phase",
    DRIFT: f"{DRIFT} drift: observed differs from expected",
    MAY_TIME_OUT: f"{MAY_TIME_OUT} the model allows a timeout (tolerated when it timed out)",
}
ALL_NODES = "all nodes"
LB_NAME_CHARS = 12  # a load balancer's name is 32 characters or more; its kind is in the target column already


@dataclass(frozen=True)
class Value:
    """One row's value in one phase: what the server saw, and how it compares."""

    text: str  # ``172.16.160.19 client-pod``, ``client-pod`` (predicted or folded), ``timeout``, ``-``
    status: Status | None  # None: the phase has no such cell
    changed: bool = False
    may_time_out: bool = False

    @property
    def marker(self) -> str:
        flags = (CHANGED if self.changed else "") + (DRIFT if self.status == "drift" else "")
        return flags or (MAY_TIME_OUT if self.may_time_out else "")

    def marked(self) -> str:
        # The marker sticks to the value, so a narrow column never leaves it alone on a line.
        return f"{self.marker}{self.text}"


@dataclass(frozen=True)
class Row:
    vantage: str
    target: str  # ``pod-ip``, ``node-port`` (its nodes agree in every phase), ``node-port@ip-172-16-96-16``
    node: str | None  # the node's short name for an unfolded node-port row; ALL_NODES when folded
    values: tuple[Value, ...]
    cells: tuple[Cell | None, ...]  # a representative cell per phase

    @property
    def label(self) -> str:
        return f"{self.target}@{self.node}" if self.node and self.node != ALL_NODES else self.target


@dataclass(frozen=True)
class Change:
    row: Row
    before: str  # phase names
    after: str
    was: str
    now: str
    why: str


def rows(report: Report) -> list[Row]:
    """Every vantage -> target of the report in plan order; node-port cells fold into one row when every node
    shows the same outcome, role and verdict in every phase."""
    by_key = [{_key(cell): cell for cell in phase.cells} for phase in report.phases]
    keys = list(dict.fromkeys(_key(cell) for phase in report.phases for cell in phase.cells))
    grouped: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
    for key in keys:
        grouped.setdefault(key[:2], []).append(key)
    return [row for group in grouped.values() for row in _group_rows(group, by_key)]


def _key(cell: Cell) -> tuple[str, str, str | None]:
    return (cell.vantage, cell.target, cell.target_node)


def _group_rows(keys: list[tuple[str, str, str | None]], phases: list[dict[Any, Cell]]) -> list[Row]:
    columns = [[phase.get(key) for phase in phases] for key in keys]
    if len(keys) > 1 and all(len({_fold_key(cell) for cell in same}) == 1 for same in zip(*columns, strict=True)):
        return [_row(keys[0][:2], ALL_NODES, [_folded(list(same)) for same in zip(*columns, strict=True)])]
    return [
        _row(key[:2], _short_node(key[2]), [(cell, _text(cell)) for cell in cells])
        for key, cells in zip(keys, columns, strict=True)
    ]


def _row(at: tuple[str, str], node: str | None, phases: list[tuple[Cell | None, str]]) -> Row:
    values, previous = [], None
    for cell, text in phases:
        signature = _signature(cell)
        changed = previous is not None and cell is not None and _differs(previous, signature, cell)
        may = cell is not None and cell.expected.may_timeout and status(cell) in ("predicted", "tolerated")
        values.append(Value(text, status(cell) if cell else None, changed=changed, may_time_out=may))
        previous = signature if cell is not None else previous
    return Row(at[0], at[1], node, tuple(values), tuple(cell for cell, _ in phases))


def _folded(cells: list[Cell | None]) -> tuple[Cell | None, str]:
    """The nodes agree: their shared address when they saw one (e.g. the client pod), else the role alone."""
    texts = {_text(cell) for cell in cells}
    return cells[0], texts.pop() if len(texts) == 1 else _text(cells[0], with_address=False)


def _signature(cell: Cell | None) -> tuple[str | None, ...]:
    """What a change between phases is made of: the outcome and whose address the server saw."""
    if cell is None:
        return (None,)
    seen = cell.observed or cell.expected
    return (seen.outcome, seen.client_address_role)


def _differs(before: tuple[str | None, ...], now: tuple[str | None, ...], cell: Cell) -> bool:
    """A change, unless one side is a timeout the model allows on that cell (as drift.cell_change rules)."""
    tolerated = cell.expected.may_timeout and "timeout" in (before[0], now[0])
    return before != now and not tolerated


def _fold_key(cell: Cell | None) -> tuple[str | None, ...]:
    """Node-port cells fold when they agree in this, the verdict included (a drift on one node shows apart)."""
    return (*_signature(cell), status(cell) if cell is not None else None)


def value(cell: Cell) -> Value:
    """One cell's value on its own, marked for drift or an allowed timeout."""
    may = cell.expected.may_timeout and status(cell) in ("predicted", "tolerated")
    return Value(_text(cell), status(cell), may_time_out=may)


def _short_node(node: str | None) -> str | None:
    return node.split(".")[0] if node else None


def _text(cell: Cell | None, *, with_address: bool = True) -> str:
    """``172.16.160.19 client-pod`` when it got through, the outcome when it did not; the role alone for a
    prediction."""
    if cell is None:
        return "-"
    seen = cell.observed
    outcome, role = (seen or cell.expected).outcome, (seen or cell.expected).client_address_role
    if outcome != "ok":
        return outcome
    address = seen.client_address if seen is not None and with_address else None
    return " ".join(part for part in (address, role) if part) or "ok"


def changes(report: Report, view: Iterable[Row]) -> list[Change]:
    """Each change between consecutive phases, in phase order then row order, with the model's first reason for
    the value it changed to."""
    names = [phase.name for phase in report.phases]
    rows = list(view)
    return [
        Change(row, names[index - 1], names[index], row.values[index - 1].text, now.text, why(cell))
        for index in range(1, len(names))
        for row in rows
        if (now := row.values[index]).changed and (cell := row.cells[index]) is not None
    ]


def summary_line(report: Report) -> str:
    """The summary as every format prints it (document.Tally.line)."""
    return report.tally().line()


def legend(view: Iterable[Row]) -> list[str]:
    """``* changed since the previous phase``: the markers this view uses, in a fixed order."""
    used = {marker for row in view for value in row.values for marker in value.marker}
    used |= {"node-port"} if any(row.node == ALL_NODES for row in view) else set()
    return [text for marker, text in LEGEND.items() if marker in used]


def short_address(cell: Cell) -> str:
    """A load balancer's address as its name's first characters and the port (``a068ae19572a…:80``); the
    full DNS names are in the report's topology. Any other address as it is."""
    if cell.target not in LB_TARGETS:
        return cell.address
    host, _, port = cell.address.rpartition(":")
    return f"{short_lb_name(host)}:{port}" if host else cell.address


def short_lb_name(dns_name: str) -> str:
    name = dns_name.split(".")[0]
    return name if len(name) <= LB_NAME_CHARS + 1 else name[:LB_NAME_CHARS] + "…"


def dns_summary(resolved: list[str] | None) -> str:
    """``dns: 172.16.96.18`` for one answer, ``dns: 2 addresses`` for more."""
    if not resolved:
        return ""
    return f"dns: {resolved[0]}" if len(resolved) == 1 else f"dns: {len(resolved)} addresses"


# --- drift reports: the live phase beside the baseline ------------------------------------------------------


def is_drift_report(report: Report) -> bool:
    return len(report.phases) == 1 and report.phases[0].name == LIVE


def baseline_statement(report: Report) -> str:
    """Which baseline a drift check compared with (run id and when it was recorded), or that there was none."""
    baseline = getattr(report, "baseline", None)  # design.md's `baseline: {run_id, recorded_at}`, when present
    if isinstance(baseline, dict):
        run_id, recorded = baseline.get("run_id"), baseline.get("recorded_at")
    else:
        run_id, recorded = getattr(baseline, "run_id", None), getattr(baseline, "recorded_at", None)
    if run_id or recorded:
        return f"compared with the baseline of run {run_id or '(unknown)'}, recorded {recorded or '(unknown)'}"
    if report.config_diff is not None:
        return "compared with this environment's recorded baseline (the report does not say which run recorded it)"
    return "no baseline recorded for this environment: compared with the model only"


def has_baseline(report: Report) -> bool:
    return getattr(report, "baseline", None) is not None or report.config_diff is not None


# drift.cell_change words a changed role as a phrase; these are its phrases back to the vocabulary (a test keeps
# the two in step).
ROLE_PHRASES = {
    "the client pod": "client-pod",
    "its node": "client-node",
    "the EC2 host": "client-host",
    "the NAT gateway": "nat-gateway",
    "the receiving node": "receiving-node",
    "a VPC1 node": "vpc1-node",
    "the load balancer": "load-balancer",
    "another address": "other",
    "no address": "-",
}
_INSTEAD = re.compile(r"^now (?:shows )?(?P<now>.+?) instead of (?P<was>.+?)(?: \(configuration: .*)?$")


def baseline_value(cell: Cell) -> str:
    """What the baseline saw for a live cell: ``same`` when the outcome and role did not change (all a drift
    check compares), else the baseline's outcome or role, read from the cell's `since the baseline` line."""
    line = next((line for line in cell.explanation if line.startswith(SINCE_BASELINE)), None)
    if line is None:
        return "same"
    match = _INSTEAD.match(line.removeprefix(f"{SINCE_BASELINE}: "))
    if match is None:
        return "changed"
    was = match["was"]
    return ROLE_PHRASES.get(was, was)
