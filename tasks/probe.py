"""Probe one vantage's cells of a phase, judge them against the model, and publish the phase's matrix."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from peerprobe import run
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.config import PhaseSnat
from peerprobe.probes.plan import plan
from peerprobe.report import artifacts, markdown
from peerprobe.report.document import PhaseReport, Report
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell, Vantage
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS, phase_key


@task(name="read-topology", **(STEP_OPTIONS | {"cache_key_fn": phase_key}))
def read_topology(ref: EnvironmentRef) -> Topology:
    return open_experiment(ref, step="read-topology").topology()


@task(name="read-config-diff", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def read_config_diff(ref: EnvironmentRef) -> list[dict[str, Any]] | None:
    """Attach mode: where the config file disagrees with the clusters as read; None when nothing is attached."""
    return open_experiment(ref, step="read-config-diff").config_diff()


@task(
    name="probe",
    task_run_name="probe-{phase}-{vantage}",
    **(STEP_OPTIONS | {"cache_key_fn": phase_key}),
)
def probe_vantage(ref: EnvironmentRef, phase: str, snat: PhaseSnat, vantage: Vantage) -> list[Cell]:
    """Every cell of the vantage in one batch (each probe a new connection), judged against the model
    predicted for the SNAT settings read back from aws-node."""
    inject_fault("probe")
    experiment = open_experiment(ref, step="probe", phase=phase)
    topology = experiment.topology()
    specs = [spec for spec in plan(topology) if spec.vantage == vantage]
    timeout = ref.config.probe.timeout_seconds
    results = experiment.probe(vantage, specs, timeout_seconds=timeout)
    found = dict(zip(specs, results, strict=True))
    # Attach mode: the model predicts from what was read of the clusters, not from the file's values.
    return run.judge_phase(experiment.model_config(), topology, name=phase, snat=snat, results=found)


@task(name="publish-phase", task_run_name="publish-{phase.name}", persist_result=False)
def publish_phase(ref: EnvironmentRef, phase: PhaseReport) -> None:
    """The phase's matrix as a table artifact in the run's page of the Prefect UI."""
    create_table_artifact(
        key=artifacts.artifact_key(ref.config.name, "phase", phase.name),
        table=artifacts.phase_table(phase),
        description=f"{ref.config.name}: phase {phase.name}, expected vs observed",
    )


@task(name="publish-report", persist_result=False)
def publish_report(ref: EnvironmentRef, report: Report) -> None:
    create_markdown_artifact(
        key=artifacts.artifact_key(ref.config.name, "report"),
        markdown=markdown.render(report),
        description=f"{ref.config.name}: the whole matrix, drift explained",
    )
