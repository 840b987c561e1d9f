"""Each report cell's path from the model (`peerprobe.model.path`), for the facts of its phase."""

from __future__ import annotations

from dataclasses import dataclass

from peerprobe.config import ExperimentConfig
from peerprobe.model.facts import Facts
from peerprobe.model.path import CellPath, cell_path
from peerprobe.probes.plan import ProbeSpec, plan
from peerprobe.report.document import PhaseReport, Report
from peerprobe.vocabulary import Cell


@dataclass(frozen=True)
class Traced:
    """A cell's path, or why there is none (a report whose topology lacks what the model needs)."""

    path: CellPath | None
    problem: str = ""
    # The model, given this config, expects another outcome than the cell records (a drift check predicts from
    # the live configuration, which may differ from the config given here).
    differs: bool = False


def trace_report(report: Report, config: ExperimentConfig) -> list[list[Traced]]:
    """One `Traced` per cell, phase by phase, in report order."""
    specs = {spec.key: spec for spec in plan(report.topology)}
    return [_trace_phase(phase, report, config, specs) for phase in report.phases]


def _trace_phase(
    phase: PhaseReport, report: Report, config: ExperimentConfig, specs: dict[str, ProbeSpec]
) -> list[Traced]:
    facts = Facts(config=config, topology=report.topology, snat=phase.snat)
    return [trace_cell(cell, facts, specs.get(_key(cell)) or _spec_of(cell)) for cell in phase.cells]


def trace_cell(cell: Cell, facts: Facts, spec: ProbeSpec) -> Traced:
    try:
        path = cell_path(spec, facts)
    # The model asserts and looks up what a planned topology always has; a report built elsewhere may lack it.
    except (AssertionError, KeyError, StopIteration, IndexError, ValueError) as error:
        return Traced(None, f"the model cannot trace this cell for this topology ({type(error).__name__}: {error})")
    return Traced(path, differs=path.outcome != cell.expected.outcome)


def _key(cell: Cell) -> str:
    return ProbeSpec(cell.vantage, cell.target, "", 0, cell.target_node).key


def _spec_of(cell: Cell) -> ProbeSpec:
    host, _, port = cell.address.rpartition(":")
    return ProbeSpec(
        cell.vantage, cell.target, host or cell.address, int(port) if port.isdigit() else 0, cell.target_node
    )
