"""The check as metrics for node_exporter's textfile collector (``--metrics P``): a gauge per cell and the
check's time and counts, so a Prometheus alert can fire on drift.

node_exporter reads each ``*.prom`` file of its directory with the Prometheus text parser (expfmt.TextParser)
and skips a file whose samples carry timestamps (collector/textfile.go,
https://github.com/prometheus/node_exporter#textfile-collector), so this is the Prometheus text format
(prometheus_client's ``generate_latest``), not OpenMetrics, with no timestamps. Several environments may write
files into one directory: every sample carries the environment (experiment, backend, region) in its labels and
every family has the same HELP text in every file, which the collector needs to merge them.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest

from peerprobe.report.document import Report, status
from peerprobe.vocabulary import Cell

ENVIRONMENT = ("experiment", "backend", "region")
CELL = (*ENVIRONMENT, "phase", "vantage", "target", "target_node")
COUNTS = {
    "peerprobe_check_cells": ("Cells the check judged.", "cells"),
    "peerprobe_check_match_cells": ("Cells that matched the model, tolerated timeouts not included.", "match"),
    "peerprobe_check_tolerated_cells": ("Cells that timed out where the model allows it (may_timeout).", "tolerated"),
    "peerprobe_check_drift_cells": ("Cells whose observation differs from the model.", "drift"),
}


def render(report: Report, *, region: str, now: float | None = None) -> str:
    """The metrics text of a judged report (predicted cells have no observation, so no gauge)."""
    return render_many([(report, region, time.time() if now is None else now)])


def render_many(checks: list[tuple[Report, str, float]]) -> str:
    """One scrape for many environments (`peerprobe fleet metrics`): each (report, region, finished at) adds its
    samples, labelled by its environment, to the same families, so one alert covers the fleet."""
    registry = CollectorRegistry(auto_describe=True)
    cells = Gauge(
        "peerprobe_cell_match",
        "1 when the cell matched the model (a tolerated timeout included), 0 when it drifted.",
        CELL,
        registry=registry,
    )
    counts = {name: Gauge(name, help_text, ENVIRONMENT, registry=registry) for name, (help_text, _) in COUNTS.items()}
    checked = Gauge(
        "peerprobe_check_timestamp_seconds", "When the check finished (unix time).", ENVIRONMENT, registry=registry
    )
    # Only when some check had a baseline to compare with: an empty family would still print its HELP.
    changes = (
        Gauge(
            "peerprobe_check_baseline_changes",
            "Settings changed since the environment's baseline.",
            ENVIRONMENT,
            registry=registry,
        )
        if any(report.config_diff is not None for report, _, _ in checks)
        else None
    )
    for report, region, finished in checks:
        environment = {"experiment": report.experiment, "backend": report.backend, "region": region}
        _cells(cells, report, environment)
        tally = report.tally()
        for name, (_, field) in COUNTS.items():
            counts[name].labels(**environment).set(getattr(tally, field))
        checked.labels(**environment).set(finished)
        if changes is not None and report.config_diff is not None:
            changes.labels(**environment).set(len(report.config_diff))
    return generate_latest(registry).decode("utf-8")


def _cells(gauge: Gauge, report: Report, environment: dict[str, str]) -> None:
    for phase in report.phases:
        for cell in phase.cells:
            if status(cell) != "predicted":
                gauge.labels(**environment, phase=phase.name, **_cell_labels(cell)).set(_value(cell))


def _cell_labels(cell: Cell) -> dict[str, str]:
    return {"vantage": cell.vantage, "target": cell.target, "target_node": cell.target_node or ""}


def _value(cell: Cell) -> int:
    return 0 if status(cell) == "drift" else 1
