"""The JSON report, schema ``peerprobe.report/v1`` (design.md), and the plain queries every other view shares."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from peerprobe import outputs
from peerprobe.config import PhaseSnat, Snat
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell

SCHEMA = "peerprobe.report/v1"

# What every view shows for a cell: a timeout the model allows is a `match` in the JSON, but readers must see it.
Status = Literal["match", "drift", "tolerated", "predicted"]
DRIFT_PREFIX = "drift: "  # how peerprobe.compare.judged heads a drifted cell's explanation


class Summary(BaseModel):
    """The report's counts; a timeout the model allows is counted as `tolerated`, apart from `match` (design.md),
    so cells = match + tolerated + drift + predicted."""

    cells: int = 0
    match: int = 0
    tolerated: int = 0
    drift: int = 0
    predicted: int = 0


class PhaseReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    snat: PhaseSnat
    cells: list[Cell]

    def snat_settings(self) -> str:
        """The aws-node settings as read back, e.g. ``vpc1: EXTERNALSNAT=true; vpc2: defaults``."""
        return "; ".join(f"{key}: {_snat_text(getattr(self.snat, key))}" for key in ("vpc1", "vpc2"))


class BaselineRef(BaseModel):
    """Which baseline a drift report compared with: the run that recorded it and when."""

    model_config = ConfigDict(frozen=True)

    run_id: str | None = None
    recorded_at: str | None = None


class Report(BaseModel):
    schema_: str = Field(default=SCHEMA, alias="schema")
    experiment: str
    backend: str
    run_id: str | None = None
    topology: Topology
    phases: list[PhaseReport]
    summary: Summary = Field(default_factory=Summary)
    config_diff: list[dict[str, Any]] | None = None
    baseline: BaselineRef | None = None  # drift reports: the baseline compared with (design.md), None without one

    model_config = ConfigDict(populate_by_name=True)

    def summarised(self) -> Report:
        tally = self.tally()
        summary = Summary(
            cells=tally.cells,
            match=tally.match,
            tolerated=tally.tolerated,
            drift=tally.drift,
            predicted=tally.predicted,
        )
        return self.model_copy(update={"summary": summary})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=False), indent=2) + "\n"

    def drifted(self) -> list[tuple[str, Cell]]:
        """Every drifted cell with the name of its phase, in report order."""
        return [(phase.name, cell) for phase in self.phases for cell in phase.cells if cell.verdict == "drift"]

    def workshop_errors(self) -> list[tuple[str, Cell]]:
        """Every cell whose workshop claim does not hold, with the name of its phase."""
        return [(p.name, c) for p in self.phases for c in p.cells if c.workshop is not None and not c.workshop.agrees]

    def tally(self) -> Tally:
        return Tally.of([cell for phase in self.phases for cell in phase.cells])


@dataclass(frozen=True)
class Tally:
    """Counts by status, each cell counted once: a tolerated timeout is not in `match` (as in the JSON summary)."""

    cells: int = 0
    match: int = 0
    drift: int = 0
    tolerated: int = 0
    predicted: int = 0

    @classmethod
    def of(cls, cells: list[Cell]) -> Tally:
        counts = Counter(status(cell) for cell in cells)
        return cls(
            cells=len(cells),
            match=counts["match"],
            drift=counts["drift"],
            tolerated=counts["tolerated"],
            predicted=counts["predicted"],
        )

    def line(self) -> str:
        """``105 cells: 103 match, 1 tolerated timeout, 1 drift``: a timeout the model allows is counted apart from
        the matches (design.md), in every format that prints the summary."""
        if self.cells and self.predicted == self.cells:
            return f"{self.cells} cells predicted (the model only: nothing was probed)"
        timeouts = "timeout" if self.tolerated == 1 else "timeouts"
        parts = [f"{self.match} match", f"{self.tolerated} tolerated {timeouts}", f"{self.drift} drift"]
        parts += [f"{self.predicted} not probed"] if self.predicted else []
        return f"{self.cells} cells: {', '.join(parts)}"


def status(cell: Cell) -> Status:
    """The cell's verdict, with a timeout the model allows told apart from a plain match."""
    seen = cell.observed
    if cell.verdict == "match" and seen is not None and seen.outcome == "timeout" and cell.expected.may_timeout:
        return "tolerated"
    return cell.verdict


def target_label(cell: Cell) -> str:
    """``node-port@ip-172-16-96-16``: the target, and the short name of the node it addresses."""
    return f"{cell.target}@{cell.target_node.split('.')[0]}" if cell.target_node else cell.target


def expected_text(cell: Cell) -> str:
    """``ok, client-pod, may time out``: what the model says, in one line."""
    expected = cell.expected
    parts = [expected.outcome, *([expected.client_address_role] if expected.client_address_role else [])]
    return ", ".join([*parts, *(["may time out"] if expected.may_timeout else [])])


def observed_text(cell: Cell, *, detail: bool = False) -> str:
    """``ok from 172.16.96.18 (client-pod), resolved 172.16.96.18``, or ``-`` for a predicted cell; with
    ``detail``, what the probe client said (up to 200 characters: for explanations, too long for a table)."""
    seen = cell.observed
    if seen is None:
        return "-"
    text: str = seen.outcome
    if seen.client_address:
        text += f" from {seen.client_address} ({seen.client_address_role or 'unclassified'})"
    if seen.resolved:
        text += f", resolved {' '.join(seen.resolved)}"
    if detail and seen.detail:
        text += f" ({seen.detail})"
    return text


def why(cell: Cell) -> str:
    """The model's first reason for its expectation (a drift headline is about the observation, not the model)."""
    return next((line for line in cell.explanation if not line.startswith(DRIFT_PREFIX)), "")


def _snat_text(snat: Snat) -> str:
    settings = [
        *(["EXTERNALSNAT=true"] if snat.external_snat else []),
        *([f"EXCLUDE_SNAT_CIDRS={','.join(snat.exclude_snat_cidrs)}"] if snat.exclude_snat_cidrs else []),
    ]
    return " ".join(settings) or "defaults"


def render(report: Report) -> str:
    """The JSON report, with its summary counted afresh."""
    return report.summarised().to_json()


def write(report: Report, path: str | Path) -> Path:
    """Write the JSON report to a path checked by `peerprobe.outputs.checked_path` (atomically, or through a
    device or symlink)."""
    return outputs.write_text(Path(path), render(report))
