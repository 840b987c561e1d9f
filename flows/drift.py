"""Drift check: read the live configuration of an existing environment, predict with the model for it, probe
one phase named `live`, and compare every cell with the model and with the recorded baseline. Creates and
deletes nothing. It owns the environment while it checks (tasks/_ownership.py), so nothing changes it meanwhile.
Drift ends the run in a Failed state named "Drifted" and emits `peerprobe.drift.detected`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, runtime, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.states import Failed

from peerprobe import drift, snapshot, statedir
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.params import RunParameters, check_served
from peerprobe.probes.plan import vantages
from peerprobe.report import artifacts, markdown
from peerprobe.report.document import PhaseReport, Report
from peerprobe.run import RunOutcome
from tasks._ownership import environment_lock
from tasks.drift import announce_drift, find_baseline, read_snapshot
from tasks.probe import probe_vantage, publish_phase, publish_report, read_topology

LIVE = drift.LIVE
DRIFTED = "Drifted"  # the final state's name when anything changed; its type is FAILED


@flow(name="drift-check", persist_result=True, result_serializer="json")
def drift_check(parameters: RunParameters | None = None) -> Report | State[Any]:
    """Completed with the report when every cell matches; Failed named "Drifted" (the report as its result,
    a message naming the changed settings and cells) when anything drifted."""
    parameters = parameters or RunParameters()
    check_served(parameters)
    flow_run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    ref = EnvironmentRef(backend=parameters.backend, config=parameters.config, run_id=flow_run_id or "local")
    with environment_lock(ref, command="flow drift-check"):
        report = check(ref.model_copy(update={"generation": statedir.generation(ref.key)}))
    if not drift.drifted(report):
        return report
    announce_drift(ref, report, flow_run_id=flow_run_id)
    return Failed(name=DRIFTED, message=drift.message(ref.key, report), data=report)


def check(ref: EnvironmentRef) -> Report:
    """Snapshot -> the model for that configuration -> probe `live` -> judge against the model and the baseline."""
    live = read_snapshot(ref)
    judged_ref = ref.model_copy(update={"config": snapshot.live_config(ref.config, live)})
    topology = read_topology(ref)
    snat = live.snat()
    futures = [probe_vantage.submit(judged_ref, LIVE, snat, vantage) for vantage in vantages(topology)]
    phase = PhaseReport(name=LIVE, snat=snat, cells=[cell for future in futures for cell in future.result()])
    report = Report(
        experiment=ref.config.name, backend=ref.backend, run_id=ref.run_id, topology=topology, phases=[phase]
    )
    baseline = find_baseline(ref.key)
    report = drift.against_baseline(report, baseline, live)
    publish_phase(ref, report.phases[0])
    publish_report(ref, report)
    publish_drift(ref, report, has_baseline=baseline is not None)
    return report


@task(name="publish-drift", persist_result=False)
def publish_drift(ref: EnvironmentRef, report: Report, *, has_baseline: bool) -> None:
    """What changed since the baseline, as a markdown artifact on the run's page."""
    create_markdown_artifact(
        key=artifacts.artifact_key(ref.config.name, "drift"),
        markdown=drift_markdown(ref.key, report, has_baseline=has_baseline),
        description=f"{ref.config.name}: drift since the baseline",
    )


def drift_markdown(env_key: str, report: Report, *, has_baseline: bool) -> str:
    lines = [f"**drift check of {env_key}**: {report.tally().line()}"]
    if not has_baseline:
        lines.append("\nNo baseline recorded (`peerprobe run --keep` records one): compared with the model only.")
    if report.config_diff:
        lines += ["", "| setting | baseline | live |", "|---|---|---|"]
        lines += [
            "| " + " | ".join(markdown.escape(str(e[column])) for column in ("path", "baseline", "live")) + " |"
            for e in report.config_diff
        ]
    cells = drift.changed_cells(report)
    if cells:
        lines += ["", "**Changed cells**", *(f"- {markdown.escape(line)}" for line in cells)]
    if not report.config_diff and not cells:
        lines.append("\nNo drift: every cell and every configuration fact is as in the baseline.")
    return "\n".join(lines) + "\n"


# --- the command line -------------------------------------------------------------------------------------------


def run_here(api_url: str, ui_url: str, parameters: RunParameters) -> RunOutcome:
    """`peerprobe drift`: the flow in this process against the local server; the report even when Drifted."""
    state = drift_check(parameters=parameters, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    report, error = None, None
    if state.is_completed() or state.name == DRIFTED:
        result = state.result(raise_on_failure=False)
        report = result if isinstance(result, Report) else None
    if report is None:
        error = str(state.message or state.name)
    return RunOutcome(
        state=str(state.name),
        flow_run_id=flow_run_id,
        run_url=f"{ui_url}/runs/flow-run/{flow_run_id}",
        api_url=api_url,
        report=report,
        error=error,
        parameters=parameters,
    )
