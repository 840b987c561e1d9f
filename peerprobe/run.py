"""Assembling reports from the model and from observations: shared by the CLI and the flows."""

from __future__ import annotations

from collections.abc import Mapping

from peerprobe import model, topology
from peerprobe.compare import judged, observed
from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.report.document import PhaseReport, Report
from peerprobe.vocabulary import Cell


def predicted_report(config: ExperimentConfig, *, backend: str = "lab") -> Report:
    """``predict``: the planned topology and the model's expectation for every cell, ``observed: null``."""
    planned = topology.plan(config, backend=backend)
    phases = [PhaseReport(name=p.name, snat=p.snat, cells=p.cells) for p in model.predict(config, planned)]
    return Report(experiment=config.name, backend=backend, topology=planned, phases=phases).summarised()


def judge_phase(
    config: ExperimentConfig,
    seen_topology: topology.Topology,
    *,
    name: str,
    snat: PhaseSnat,
    results: Mapping[ProbeSpec, ProbeResult],
) -> list[Cell]:
    """The model's cells for what was probed, each with its observation and verdict."""
    probed = {spec.key: result for spec, result in results.items()}
    predicted = model.predict_phase(config, seen_topology, name, snat).cells
    return [judged(cell, observed(probed[_key(cell)], seen_topology)) for cell in predicted if _key(cell) in probed]


def _key(cell: Cell) -> str:
    return ProbeSpec(cell.vantage, cell.target, "", 0, cell.target_node).key
