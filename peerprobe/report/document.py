"""The JSON report, schema ``peerprobe.report/v1`` (design.md): the contract outside tools read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from peerprobe.config import PhaseSnat
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell

SCHEMA = "peerprobe.report/v1"


class Summary(BaseModel):
    cells: int = 0
    match: int = 0
    drift: int = 0
    predicted: int = 0


class PhaseReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    snat: PhaseSnat
    cells: list[Cell]


class Report(BaseModel):
    schema_: str = Field(default=SCHEMA, alias="schema")
    experiment: str
    backend: str
    run_id: str | None = None
    topology: Topology
    phases: list[PhaseReport]
    summary: Summary = Field(default_factory=Summary)
    config_diff: list[dict[str, Any]] | None = None

    model_config = ConfigDict(populate_by_name=True)

    def summarised(self) -> Report:
        cells = [cell for phase in self.phases for cell in phase.cells]
        counts = {verdict: sum(1 for c in cells if c.verdict == verdict) for verdict in ("match", "drift", "predicted")}
        return self.model_copy(update={"summary": Summary(cells=len(cells), **counts)})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=False), indent=2) + "\n"


def write(report: Report, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(report.summarised().to_json(), encoding="utf-8")
    temporary.replace(target)  # readers never see half a report
    return target
