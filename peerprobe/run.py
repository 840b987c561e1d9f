"""Assembling reports from the model and from observations: shared by the CLI and the flows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

from peerprobe import model, outputs, topology
from peerprobe.compare import judged, observed
from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.outputs import ReportPaths
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
    server_lost: bool = False  # the Prefect server stopped answering the run (killed, restarted)


def finish(
    outcome: RunOutcome,
    *,
    reports: ReportPaths,
    console: Console,
    full: bool = False,
    link: Callable[[RunOutcome, Path], None] | None = None,
) -> int:
    """Print the before/after view (every phase's matrix with ``full``) and the run's URL, write the reports,
    and return design.md's exit code (3 when a report could not be written: the others are written all the
    same). `link` puts the HTML report on the run's page (flows.runner.link_report)."""
    from peerprobe.report import terminal

    if outcome.report is None:
        explain_failure(outcome, console)
        return 3
    config = outcome.parameters.config
    terminal.render(outcome.report, terminal.console(), full=full, config=config)
    written = write_reports(outcome.report, reports, config=config)
    if written and reports.html is not None and link is not None:
        link(outcome, reports.html)
    console.print(f"run: {outcome.run_url}", highlight=False, soft_wrap=True)
    _sign_in_hint(outcome, console)
    if not written:
        return 3
    return 1 if outcome.report.summary.drift else 0


def write_reports(report: Report, reports: ReportPaths, *, config: ExperimentConfig) -> bool:
    """Write each format asked for, through the one writer (outputs.write_text); a path that fails now (it was
    checked before the run started) is named on stderr and the other formats are still written."""
    renderers = _renderers(config)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    written = True
    for option, path in reports.requested():
        try:
            outputs.write_text(path, renderers[option](report))
        except OSError as error:
            errors.print(
                f"error: {option}: {path}: the report could not be written ({error.strerror or error})", markup=False
            )
            written = False
    return written


def _renderers(config: ExperimentConfig) -> dict[str, Callable[[Report], str]]:
    """Each report option's renderer (one format each; they share document.py's queries)."""
    from peerprobe.report import document, html, junit, markdown, metrics

    return {
        "--json": document.render,
        "--junit": junit.render,
        "--markdown": lambda report: markdown.render(report, config),
        "--metrics": lambda report: metrics.render(report, region=config.region),
        "--html": lambda report: html.render(report.summarised(), config),
    }


def _prefect() -> str:
    from peerprobe.server import prefect_executable

    return prefect_executable()


def _sign_in_hint(outcome: RunOutcome, console: Console) -> None:
    from peerprobe.server import sign_in_hint

    for line in sign_in_hint(outcome.api_url):
        console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)


def _shell_env(api_url: str) -> str:
    from peerprobe.server import shell_env

    return shell_env(api_url)


def explain_failure(outcome: RunOutcome, console: Console, *, cleanup: str | None = None) -> None:
    """How the run ended, where to see it, and how to resume it or remove what it created (``cleanup``: the
    command to print; by default one for the config by name). The error is printed as text, never markup."""
    config = outcome.parameters.config
    console.print(Text.assemble((f"run {outcome.state}", "bold red"), f": {outcome.error}"), soft_wrap=True)
    console.print(f"  run: {outcome.run_url}", highlight=False, soft_wrap=True, markup=False)
    _sign_in_hint(outcome, console)
    if outcome.parameters.cleanup_on_failure:
        console.print("  everything it created was removed (--cleanup-on-failure)")
        return
    console.print("  what it created is kept, so the run can continue from the failed step:", highlight=False)
    console.print(
        f"    retry:   {_shell_env(outcome.api_url)} {_prefect()} flow-run retry {outcome.flow_run_id} "
        f"--entrypoint {outcome.retry_entrypoint}   (or Retry in the UI)",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    console.print(
        "    cleanup: "
        + (
            cleanup
            or f"peerprobe cleanup --backend {outcome.parameters.backend}"
            + ("" if config.name == "workshop" else " --config <your config>")
        ),
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
