"""Assembling reports from the model (and, later, from observations): shared by the CLI and the flows."""

from __future__ import annotations

from peerprobe import model, topology
from peerprobe.config import ExperimentConfig
from peerprobe.report.document import PhaseReport, Report


def predicted_report(config: ExperimentConfig, *, backend: str = "lab") -> Report:
    """``predict``: the planned topology and the model's expectation for every cell, ``observed: null``."""
    planned = topology.plan(config, backend=backend)
    phases = [PhaseReport(name=p.name, snat=p.snat, cells=p.cells) for p in model.predict(config, planned)]
    return Report(experiment=config.name, backend=backend, topology=planned, phases=phases).summarised()
