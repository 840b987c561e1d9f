"""Assembling reports from the model and from observations: shared by the CLI and the flows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from peerprobe import model, topology
from peerprobe.compare import judged, observed
from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.params import RunParameters
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


@dataclass(frozen=True)
class RunOutcome:
    """What a flow run left for the command line: its state, where to see it, and the report."""

    state: str
    flow_run_id: str
    run_url: str
    api_url: str
    parameters: RunParameters
    report: Report | None = None
    error: str | None = None
    retry_entrypoint: str = ""


def finish(
    outcome: RunOutcome,
    *,
    json: Path | None,
    junit: Path | None,
    markdown: Path | None,
    console: Console,
    html: Path | None = None,
    link: Callable[[RunOutcome, Path], None] | None = None,
) -> int:
    """Print the matrix and the run's URL, write the reports, and return design.md's exit code."""
    from peerprobe.report import document, terminal
    from peerprobe.report import junit as junit_report

    if outcome.report is None:
        _explain_failure(outcome, console)
        return 3
    terminal.render(outcome.report, terminal.console())
    for path, write in ((json, document.write), (junit, junit_report.write), (markdown, _write_markdown)):
        if path is not None:
            write(outcome.report, path)
    if html is not None:
        from peerprobe.report import html as html_report

        written = html_report.write(outcome.report, html, outcome.parameters.config)
        if link is not None:  # the run's page links to it (flows.runner.link_report)
            link(outcome, written)
    console.print(f"run: {outcome.run_url}", highlight=False, soft_wrap=True)
    return 1 if outcome.report.summary.drift else 0


def _write_markdown(report: Report, path: Path) -> Path:
    from peerprobe.report import markdown as markdown_report

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown_report.render(report), encoding="utf-8")
    return path


def _prefect() -> str:
    from peerprobe.server import prefect_executable

    return prefect_executable()


def _explain_failure(outcome: RunOutcome, console: Console) -> None:
    config = outcome.parameters.config
    console.print(f"[bold red]run {outcome.state}[/bold red]: {outcome.error}", highlight=False, soft_wrap=True)
    console.print(f"  run: {outcome.run_url}", highlight=False, soft_wrap=True)
    if outcome.parameters.cleanup_on_failure:
        console.print("  everything it created was removed (--cleanup-on-failure)")
        return
    console.print("  what it created is kept, so the run can continue from the failed step:", highlight=False)
    console.print(
        f"    retry:   PREFECT_API_URL={outcome.api_url} {_prefect()} flow-run retry {outcome.flow_run_id} "
        f"--entrypoint {outcome.retry_entrypoint}   (or Retry in the UI)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"    cleanup: peerprobe cleanup --backend {outcome.parameters.backend}"
        + ("" if config.name == "workshop" else " --config <your config>"),
        highlight=False,
        soft_wrap=True,
    )
