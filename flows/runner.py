"""Running a flow from the command line: against the local Prefect server peerprobe starts or reuses, so
the run shows in the UI and can be retried from there; returns plain data for the CLI to report."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import httpx
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from peerprobe import logs, params, server
from peerprobe.errors import ConfigError, Terminated
from peerprobe.params import RunParameters
from peerprobe.report import artifacts
from peerprobe.report.document import Report
from peerprobe.run import RunOutcome

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

RETRY_ENTRYPOINT = "flows/experiment.py:experiment"
log = structlog.get_logger(__name__)


def connect() -> server.PrefectServer:
    verbose = logs.asked_verbosity() > 0
    logs.configure(1, through_stdlib=True)  # before Prefect is imported: it reads the extra loggers once
    # The terminal shows a progress bar and the report (-v: every task's lines too); the run's logs get it all.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "WARNING")
    # Steps fan work out to their own threads (both VPCs at once); those events stay in the terminal only.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    prefect_server = server.ensure_running()
    # Its URL and, for peerprobe's own server, the auth string: before Prefect is imported (it reads them once);
    # the flow runs `serve` starts inherit them.
    os.environ.update(prefect_server.client_env())
    if not verbose:
        _without_console_tracebacks()
    return prefect_server


def _without_console_tracebacks() -> None:
    """An expected failure shows peerprobe's message in the terminal, not a Python traceback: Prefect's console
    handler (on the root logger, which task and flow run records reach) prints one line per error; the run's
    logs in the UI keep the traceback, and -v shows it here too."""
    import prefect.main  # noqa: F401  (prefect.main sets Prefect's logging up: its console handler exists after this)

    logs.hide_console_tracebacks()


def run_experiment(parameters: RunParameters) -> RunOutcome:
    """The experiment flow, here; Ctrl-C, SIGINT or SIGTERM during it ends it Crashed (Prefect's engine) and
    returns an outcome named Interrupted, with the flow run to retry."""
    prefect_server = connect()
    from flows.experiment import experiment
    from tasks._progress import listen

    started: list[str] = []  # the flow run's id, as soon as it runs
    watched = experiment.with_options(on_running=[*experiment.on_running_hooks, _record_id(started)])
    with progress_bar(expected_steps(parameters)) as advance:
        unsubscribe = listen(advance)
        try:
            with server.kept_up(prefect_server):
                state = watched(parameters=parameters, return_state=True)
        except KeyboardInterrupt as interrupt:
            if not started:  # stopped before the flow run began: nothing of it exists
                raise
            return _interrupted(prefect_server, started[0], parameters, interrupt)
        except httpx.HTTPError as error:  # the engine's own calls: the Prefect server died or stopped taking them
            return _server_lost(prefect_server, started[0] if started else "", parameters, error)
        finally:
            unsubscribe()
    return _outcome(prefect_server, state, parameters)


def _server_lost(
    prefect_server: server.PrefectServer, flow_run_id: str, parameters: RunParameters, error: httpx.HTTPError
) -> RunOutcome:
    """The run could not go on: the Prefect server it reports to stopped answering (killed, restarted) or
    refused it. What the steps made is kept; the next `peerprobe run` starts a server again and goes on."""
    return RunOutcome(
        state="Crashed",
        flow_run_id=flow_run_id or "(not started)",
        run_url=prefect_server.flow_run_url(flow_run_id) if flow_run_id else prefect_server.ui_url,
        api_url=prefect_server.api_url,
        parameters=parameters,
        error=f"the Prefect server at {prefect_server.api_url} stopped answering the run ({type(error).__name__}: "
        f"{str(error).splitlines()[0][:200] if str(error) else 'no answer'}); `peerprobe run` again starts it "
        "again and continues",
        retry_entrypoint=RETRY_ENTRYPOINT,
        server_lost=True,
    )


def _record_id(into: list[str]) -> Callable[..., None]:
    def on_running(flow: object, flow_run: FlowRun, state: object) -> None:
        into.append(str(flow_run.id))

    return on_running


def _interrupted(
    prefect_server: server.PrefectServer, flow_run_id: str, parameters: RunParameters, interrupt: BaseException
) -> RunOutcome:
    signal = "SIGTERM" if isinstance(interrupt, Terminated) else "Ctrl-C / SIGINT"
    return RunOutcome(
        state="Interrupted",
        flow_run_id=flow_run_id,
        run_url=prefect_server.flow_run_url(flow_run_id),
        api_url=prefect_server.api_url,
        parameters=parameters,
        error=f"interrupted by {signal}",
        retry_entrypoint=RETRY_ENTRYPOINT,
    )


def expected_steps(parameters: RunParameters) -> int:
    """Networks, clusters, EC2 host, peering, apps, services, topology; per phase two SNAT steps and one
    probe per vantage; cleanup unless kept (then the baseline SNAT is restored instead)."""
    vantages = 4 if parameters.backend == "lab" or parameters.config.outside_cidrs else 3
    per_phase = 2 + vantages
    from flows.experiment import SETUP_TASKS

    return SETUP_TASKS + per_phase * len(parameters.config.phases) + (2 if parameters.keep else 1)


@contextlib.contextmanager
def progress_bar(total: int) -> Iterator[Callable[[str, str], None]]:
    """A progress bar on stderr, advanced as steps finish; Prefect's own per-task lines go to the run's
    logs (and the console with -v)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        bar = progress.add_task("experiment", total=total)

        def advance(step: str, state: str) -> None:
            progress.update(bar, advance=1, description=f"{step}: {state}")

        yield advance


def run_cleanup(parameters: RunParameters) -> RunOutcome:
    prefect_server = connect()
    from flows.cleanup import cleanup

    try:
        with server.kept_up(prefect_server):
            state = cleanup(parameters=parameters, return_state=True)
    except httpx.HTTPError as error:
        return _server_lost(prefect_server, "", parameters, error)
    return _outcome(prefect_server, state, parameters)


PEERPROBE_FLOWS = ("experiment", "drift-check", "cleanup")  # flows whose runs name an environment


def run_parameters(flow_run_id: str) -> RunParameters:
    """The config and backend a flow run of peerprobe was given, read back from the Prefect server (a run with
    no parameters ran the defaults). An unknown run, or a run of another flow, is bad input."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from pydantic import ValidationError

    with get_client(sync_client=True) as client:
        try:
            flow_run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            raise ConfigError(f"--run-id: no flow run {flow_run_id} on the Prefect server {client.api_url}") from None
        flow_name = client.read_flow(flow_run.flow_id).name
    if flow_name not in PEERPROBE_FLOWS:
        raise ConfigError(
            f"--run-id: flow run {flow_run_id} is a run of {flow_name!r}, not of {', '.join(PEERPROBE_FLOWS)}"
        )
    try:
        return RunParameters.model_validate(flow_run.parameters.get("parameters") or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"--run-id: flow run {flow_run_id} names no usable environment: {where}: {first['msg']}"
        ) from None


def _outcome(prefect_server: server.PrefectServer, state: object, parameters: RunParameters) -> RunOutcome:
    flow_run_id = str(state.state_details.flow_run_id)  # type: ignore[attr-defined]
    report, error = None, None
    if state.is_completed():  # type: ignore[attr-defined]
        result = state.result()  # type: ignore[attr-defined]
        report = result if isinstance(result, Report) else None
    else:
        error = str(state.message or state.name)  # type: ignore[attr-defined]
    return RunOutcome(
        state=str(state.name),  # type: ignore[attr-defined]
        flow_run_id=flow_run_id,
        run_url=prefect_server.flow_run_url(flow_run_id),
        api_url=prefect_server.api_url,
        report=report,
        error=error,
        parameters=parameters,
        retry_entrypoint=RETRY_ENTRYPOINT,
    )


def retry_experiment(flow_run_id: str) -> object:
    """What `prefect flow-run retry ID --entrypoint flows/experiment.py:experiment` does: the same flow run,
    rescheduled and run here again; its completed steps come back Cached. Returns the final state."""
    from prefect.flow_engine import run_flow

    from flows.experiment import experiment

    flow_run = reschedule(flow_run_id)
    parameters = {"parameters": RunParameters.model_validate(flow_run.parameters["parameters"])}
    return run_flow(flow=experiment, flow_run=flow_run, return_type="state", parameters=parameters)


def reschedule(flow_run_id: str) -> FlowRun:
    """The flow run set back to Scheduled, as the UI's Retry does, and read back for the engine to run again."""
    from uuid import UUID

    from prefect import get_client
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id=UUID(flow_run_id), state=Scheduled(message="retry"), force=True)
        return client.read_flow_run(UUID(flow_run_id))


def serve(*, allow_aws: bool = False) -> None:
    """Connect to (or start) the local server, then serve prefect.yaml's deployments until interrupted; the
    runs it executes may use the aws backend only with `allow_aws` (params.check_served)."""
    prefect_server = connect()
    os.environ[params.SERVED_BACKENDS_ENV] = params.served_backends(allow_aws=allow_aws)  # its runs inherit it
    print(f"serving peerprobe's deployments; UI: {prefect_server.ui_url}", flush=True)
    for line in server.sign_in_hint(prefect_server.api_url):
        print(f"  {line}", flush=True)
    backends = "lab and aws (your AWS credentials)" if allow_aws else f"lab only ({params.ALLOW_AWS_OPTION}: aws too)"
    print(f"  runs started from the UI may use: {backends}", flush=True)
    from flows.serving import serve_deployments

    serve_deployments()


def link_report(outcome: RunOutcome, path: Path) -> None:
    """A link artifact on the run's page that leads to the HTML report just written (after the run ended, so
    it names its flow run itself); a server that refuses it costs a warning, not the command."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    link = artifacts.report_link(path)
    artifact = ArtifactCreate(
        key=artifacts.artifact_key(outcome.parameters.config.name, "html-report"),
        type="markdown",
        data=link.markdown(),
        flow_run_id=UUID(outcome.flow_run_id),
        description="the HTML report: topology, matrix and each cell's path",
    )
    try:
        with get_client(sync_client=True) as client:
            client.create_artifact(artifact)
    except (OSError, httpx.HTTPError) as error:
        log.warning("report.link_artifact_failed", flow_run_id=outcome.flow_run_id, error=str(error))
    _deliver_events()


EVENTS_DRAIN_SECONDS = 5


def _deliver_events() -> None:
    """Send what the client's events worker still holds now, bounded, rather than at interpreter exit. Prefect's
    worker warns "Still processing items" whenever it is drained with anything queued, which is every clean run
    here: that warning is held back, and only events still undelivered after the bound are reported."""
    from prefect.events.worker import EventsWorker

    worker_log = logging.getLogger(EventsWorker.__name__)  # the name Prefect's queue services log under
    level = worker_log.level
    worker_log.setLevel(logging.ERROR)
    try:
        drained = EventsWorker.drain_all(timeout=EVENTS_DRAIN_SECONDS, at_exit=False)
    finally:
        worker_log.setLevel(level)
    pending = drained[1] if isinstance(drained, tuple) else ()
    if pending:
        log.warning("prefect.events_undelivered", workers=len(pending), timeout_s=EVENTS_DRAIN_SECONDS)
