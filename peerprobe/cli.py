"""The ``peerprobe`` command. Order of work (design.md): parse and validate the config first, and only
then import Prefect or start anything, so bad input costs nothing and creates nothing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from peerprobe import config as config_module
from peerprobe import environ
from peerprobe.errors import ConfigError, InfrastructureError, PeerprobeError, Terminated
from peerprobe.outputs import ReportPaths
from peerprobe.vocabulary import VPC_KEYS

if TYPE_CHECKING:
    from peerprobe.backends.lab.environment import LabState
    from peerprobe.ownership import Lease
    from peerprobe.params import RunParameters
    from peerprobe.run import RunOutcome
    from peerprobe.sweep import Found

app = typer.Typer(
    name="peerprobe",
    help="Know, not guess, how traffic reaches Kubernetes Services on EKS across VPC peering and SNAT settings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags shown as flags (not `<bool>`), no boxes in piped output
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="FILE", help="Experiment config (YAML); default: the workshop topology."),
]
# Report paths stay text until checked (peerprobe.outputs): as a Path, an empty value would read as ".".
JsonOption = Annotated[
    str | None,
    typer.Option("--json", metavar="FILE", help="Write the JSON report (schema peerprobe.report/v1) to this file."),
]
JunitOption = Annotated[
    str | None,
    typer.Option("--junit", metavar="FILE", help="Write JUnit XML to this file: a test case per cell, drift fails."),
]
MarkdownOption = Annotated[
    str | None,
    typer.Option("--markdown", metavar="FILE", help="Write the report as Markdown to this file (a ticket, a PR)."),
]
MetricsOption = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        metavar="FILE",
        help="Write Prometheus metrics to this file (a *.prom for "
        "node_exporter's textfile collector): a gauge per cell, 1 match, 0 drift; the check's time and "
        "counts.",
    ),
]
HtmlOption = Annotated[
    str | None,
    typer.Option(
        "--html",
        metavar="FILE",
        help="Write the HTML report to this file: the topology drawn, the "
        "matrix, each cell's path hop by hop (self-contained: opens with no network).",
    ),
]
FullOption = Annotated[
    bool, typer.Option("--full", help="Print every phase's full matrix instead of the before/after view.")
]
PathOption = Annotated[Path | None, typer.Option(help="Write this report format here.")]


def _backend_option(help_text: str) -> Any:
    return typer.Option("--backend", metavar="lab|aws", help=f"lab | aws: {help_text}")


BackendOption = Annotated[
    str, _backend_option("the backend to predict for (aws has no `outside` vantage unless outside_cidrs is set).")
]
RunBackendOption = Annotated[str, _backend_option("where to run the experiment (lab: the embedded lab).")]
DriftBackendOption = Annotated[str, _backend_option("where the environment to check is.")]
CleanupBackendOption = Annotated[str | None, _backend_option("where the environment to remove is (default lab).")]
RunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        metavar="ID",
        help="Remove the environment of this flow run instead: its config and backend are read from the run "
        "on the Prefect server (the id `peerprobe run` prints, or the UI shows). Not with --config/--backend.",
    ),
]
KeepOption = Annotated[
    bool,
    typer.Option(
        "--keep",
        help="Keep the environment afterwards: restore the baseline SNAT settings and record the "
        "baseline for `peerprobe drift`.",
    ),
]
CleanupOnFailureOption = Annotated[
    bool,
    typer.Option(
        "--cleanup-on-failure", help="On failure, remove what the run created instead of keeping it for a retry."
    ),
]
INTERRUPTED = 130  # design.md: Ctrl-C, SIGINT or SIGTERM


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"peerprobe {metadata.version('peerprobe')}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, show_default=False, help="-v: progress events and tracebacks; -vv: debug."
        ),
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """peerprobe: the experiment as Prefect flows, on the embedded lab or on AWS."""
    from peerprobe import logs
    from peerprobe.server import NOTHING_LEAVES

    logs.configure(verbose)
    # Before Prefect is imported: its SDK analytics (and their first-run notice in the middle of our output)
    # stay off in this process, as they are on the servers peerprobe starts. Nothing leaves this machine.
    os.environ.update(NOTHING_LEAVES)


def console(*, stderr: bool = False) -> Console:
    """A console that prints text as it is: names, ids and what AWS or the lab answers are never read as Rich
    markup; styled parts are Text. Lines are never broken by width (soft wrap), so piped output stays whole."""
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)


def say(label: str, style: str, message: str) -> None:
    """``label: `` before every line of ``message``, on stderr."""
    out = console(stderr=True)
    for line in message.splitlines() or [""]:
        out.print(Text.assemble((f"{label}:", style), " ", line))


def warn(message: str) -> None:
    say("warning", "yellow", message)


def fail(error: PeerprobeError) -> NoReturn:
    say("error", "bold red", str(error))
    raise typer.Exit(code=error.exit_code)


def _load(path: Path | None) -> config_module.ExperimentConfig:
    try:
        return config_module.load(path)
    except PeerprobeError as error:
        fail(error)


def _load_for(path: Path | None, backend: str) -> config_module.ExperimentConfig:
    """The config for a command that works on ``backend``: exit 2 naming each key the backend cannot build yet."""
    from peerprobe.backends import support

    experiment = _load(path)
    error = support.refusal(experiment, _backend(backend))
    if error is not None:
        fail(error)
    return experiment


def _backend(value: str) -> str:
    if value not in ("lab", "aws"):
        fail(ConfigError(f"--backend: {value!r} is not one of lab or aws"))
    return value


def _report_paths(**options: str | None) -> ReportPaths:
    """The report options, checked before anything starts: a path a report cannot be written to exits 2. The
    message quotes the user's path, so it is printed as text, never as markup."""
    try:
        return ReportPaths.checked(**options)
    except PeerprobeError as error:
        Console(stderr=True, soft_wrap=True).print(Text.assemble(("error:", "bold red"), f" {error}"), highlight=False)
        raise typer.Exit(code=error.exit_code) from None


@app.command()
def predict(
    config: ConfigOption = None,
    json: JsonOption = None,
    backend: BackendOption = "lab",
    full: FullOption = False,
    html: HtmlOption = None,
) -> None:
    """Print what the model expects, phase beside phase (--full: every phase's matrix): no I/O, instant."""
    experiment = _load(config)
    backend = _backend(backend)
    reports = _report_paths(json=json, html=html)
    from peerprobe.report import terminal
    from peerprobe.run import predicted_report, write_reports

    report = predicted_report(experiment, backend=backend)
    terminal.render(report, terminal.console(), full=full, config=experiment)
    if not write_reports(report, reports, config=experiment):
        raise typer.Exit(code=3)
    for _, path in reports.requested():
        console(stderr=True).print(f"wrote {path}")


@app.command()
def run(
    config: ConfigOption = None,
    backend: RunBackendOption = "lab",
    keep: KeepOption = False,
    cleanup_on_failure: CleanupOnFailureOption = False,
    json: JsonOption = None,
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
    metrics: MetricsOption = None,
    full: FullOption = False,
    html: HtmlOption = None,
) -> None:
    """Run the whole experiment flow (default: the workshop topology on the lab) and report every cell."""
    from peerprobe.params import RunParameters

    parameters = RunParameters(
        config=_load_for(config, backend), backend=_backend(backend), keep=keep, cleanup_on_failure=cleanup_on_failure
    )
    reports = _report_paths(json=json, junit=junit, markdown=markdown, metrics=metrics, html=html)
    _preflight(parameters.backend, parameters.config, creating=True)
    with (
        _owning(parameters.backend, parameters.config, "run"),
        _interruptible(lambda: _explain_interrupted_start(parameters.backend, parameters.config, config)),
    ):
        from flows import runner
        from peerprobe.run import explain_failure, finish

        outcome = _lab_call(lambda: runner.run_experiment(parameters))
    if outcome.state == "Interrupted":
        _explain_interrupted_run(outcome, config)
        raise typer.Exit(code=INTERRUPTED)
    if outcome.report is None:  # failed: how to resume, and the cleanup command of this very config
        explain_failure(outcome, console(), cleanup=_cleanup_command(parameters.backend, config))
        _exit_if_server_lost(outcome, 3)
        raise typer.Exit(code=3)
    code = finish(outcome, reports=reports, console=console(), full=full, link=runner.link_report)
    if keep and outcome.report is not None:
        _explain_kept(parameters.backend, parameters.config, config)
    raise typer.Exit(code=code)


def _cleanup_command(backend: str, path: Path | None) -> str:
    """The command that removes the environment of this config (the path as given, quoted for a shell)."""
    return f"peerprobe cleanup --backend {backend}{_config_flag(path)}"


def _explain_kept(backend: str, experiment: config_module.ExperimentConfig, path: Path | None) -> None:
    """`run --keep`: what it kept, the baseline it recorded, and how to remove both."""
    from peerprobe import drift as drift_module

    key = f"{backend}:{experiment.name}:{experiment.region}"
    out = console()
    out.print(
        f"kept: the {backend} environment {key} (clusters, apps, Services, peering), with aws-node back at "
        f"the SNAT settings of phase {experiment.phases[0].name}"
    )
    baseline = drift_module.read_baseline(key)
    if baseline is not None:
        out.print(
            f"baseline: phase {experiment.phases[0].name} of run {baseline.report.run_id} is recorded for "
            "`peerprobe drift` to compare with"
        )
    out.print(f"to remove it: {_cleanup_command(backend, path)}")


@app.command()
def cleanup(config: ConfigOption = None, backend: CleanupBackendOption = None, run_id: RunIdOption = None) -> None:
    """Remove the environment of the config (or of a flow run: --run-id); removing an absent one succeeds."""
    from peerprobe.params import RunParameters

    if run_id is not None:
        parameters = _parameters_of_run(run_id, config=config, backend=backend)
    else:
        parameters = RunParameters(config=_load_for(config, backend or "lab"), backend=_backend(backend or "lab"))
    _preflight(parameters.backend, parameters.config)
    again = f"peerprobe cleanup --run-id {run_id}" if run_id else _cleanup_command(parameters.backend, config)
    with (
        _owning(parameters.backend, parameters.config, "cleanup"),
        _interruptible(
            lambda: _explain_interrupted(
                f"cleanup of {parameters.config.name} stopped: part of the environment may remain",
                _what_exists(parameters.backend, parameters.config),
                f"finish removing it: {again}",
            )
        ),
    ):
        from flows import runner

        outcome = _lab_call(lambda: runner.run_cleanup(parameters))
    key = f"{parameters.backend}:{parameters.config.name}:{parameters.config.region}"
    console().print(f"cleanup of {key}: {outcome.state}")
    if outcome.state != "Completed":
        error = InfrastructureError(f"cleanup of {key} did not finish: {outcome.error}; run it again: {again}")
        if outcome.server_lost:
            say("error", "bold red", str(error))
            _exit_if_server_lost(outcome, error.exit_code)
        fail(error)
    raise typer.Exit(code=0)


def _exit_if_server_lost(outcome: RunOutcome, code: int) -> None:
    """Exit at once when the run's Prefect server is gone: at interpreter exit Prefect's event and log workers
    would try every pending item against it, each through its reconnect attempts (minutes, printing an error per
    item), while nothing is left to send it. The command has said what exists and how to go on; its locks are
    released (the kernel drops the flocks in any case)."""
    if not outcome.server_lost:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _parameters_of_run(run_id: str, *, config: Path | None, backend: str | None) -> RunParameters:
    """What `cleanup --run-id` removes: the environment the flow run's own parameters name, read from the Prefect
    server that ran it (the run carries the whole validated config). Checked before the server is asked."""
    from uuid import UUID

    if config is not None or backend is not None:
        fail(
            ConfigError("--run-id: the run names its own config and backend; give --run-id without --config/--backend")
        )
    try:
        UUID(run_id)
    except ValueError:
        fail(ConfigError(f"--run-id: {run_id[:80]!r} is not a flow run id (a UUID, as `peerprobe run` prints)"))
    _check_environment()
    from flows import runner

    _lab_call(runner.connect)
    return _lab_call(lambda: runner.run_parameters(run_id))


@app.command()
def drift(
    config: ConfigOption = None,
    backend: DriftBackendOption = "lab",
    json: JsonOption = None,
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
    metrics: MetricsOption = None,
    full: FullOption = False,
    html: HtmlOption = None,
) -> None:
    """Probe the existing environment of the config in one phase `live`; compare with the model and the
    baseline. Creates and deletes nothing. Exit 0: no drift; 1: drift; 2: no such environment; 3: failure."""
    from peerprobe.params import RunParameters

    parameters = RunParameters(config=_load_for(config, backend), backend=_backend(backend))
    reports = _report_paths(json=json, junit=junit, markdown=markdown, metrics=metrics, html=html)
    _preflight(parameters.backend, parameters.config)
    with _owning(parameters.backend, parameters.config, "drift"):
        _require_environment(parameters.backend, parameters.config)
        with _interruptible(
            lambda: _explain_interrupted(
                "drift check stopped before it finished; it changes nothing, so the environment is as it was",
                _what_exists(parameters.backend, parameters.config),
                f"check again: peerprobe drift --backend {parameters.backend}{_config_flag(config)}",
            )
        ):
            outcome = _drift_check(parameters)
    from flows import runner
    from peerprobe import drift as drift_module
    from peerprobe.run import finish

    out = console()
    if outcome.report is None:  # the check itself failed: nothing was created, so there is nothing to resume
        out.print(Text.assemble((f"drift check {outcome.state}", "bold red"), f": {outcome.error}"))
        out.print(f"  run: {outcome.run_url}")
        raise typer.Exit(code=3)
    code = finish(outcome, reports=reports, console=out, full=full, link=runner.link_report)
    for entry in outcome.report.config_diff or []:
        out.print(f"  changed since the baseline: {entry['text']}")
    if outcome.report.config_diff is None:
        out.print("  no baseline recorded for this environment (`peerprobe run --keep` records one)")
    out.print(f"drift check: {outcome.state}")
    raise typer.Exit(code=1 if code != 3 and drift_module.drifted(outcome.report) else code)


def _drift_check(parameters: RunParameters) -> RunOutcome:
    from flows import runner

    prefect_server = _lab_call(runner.connect)
    from flows.drift import run_here

    return _lab_call(lambda: run_here(prefect_server.api_url, prefect_server.ui_url, parameters))


def _require_environment(backend: str, config: config_module.ExperimentConfig) -> None:
    """A drift check probes what exists: exit 2 when the config has no environment on the backend, 3 when what
    is recorded of it is gone. Before Prefect is imported, like every check of the input."""
    if backend == "aws":
        _require_aws_environment(config)
    else:
        _require_lab_environment(config)


def _require_lab_environment(config: config_module.ExperimentConfig) -> None:
    from peerprobe.backends.lab import environment

    state, healthy = _lab_call(lambda: environment.status(config))  # an unreadable state: exit 3 saying so
    key = environment.env_key(config)
    if state is None:
        fail(ConfigError(f"no lab environment {key} to check: `peerprobe run --keep` or `peerprobe lab up` makes one"))
    if not healthy:
        fail(
            InfrastructureError(
                f"lab environment {key} is broken (its namespaces or agent are gone): "
                "`peerprobe lab up` rebuilds it, `peerprobe cleanup` removes it"
            )
        )


def _require_aws_environment(config: config_module.ExperimentConfig) -> None:
    """From the ids `run --backend aws --keep` persisted in the state directory, or found by their tags where
    this machine has no state (a work pool's pod), checked against AWS."""
    from peerprobe.backends.aws.experiment import AwsExperiment
    from peerprobe.backends.steps import EnvironmentRef

    experiment = AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="drift-check"))
    key = experiment.environment
    if not _lab_call(experiment.recorded):
        fail(
            ConfigError(
                f"no aws environment {key} recorded in this state directory or tagged in "
                f"{config.region} to check: `peerprobe run --backend aws --keep` makes one"
            )
        )
    missing = _lab_call(experiment.missing_networks)
    if missing:
        fail(
            InfrastructureError(
                f"aws environment {key} is broken ({', '.join(missing)} no longer exist): "
                "`peerprobe cleanup --backend aws` removes the rest",
                resource="vpc",
                resource_id=missing[0],
                state="absent",
            )
        )


SweepBackendOption = Annotated[
    str, _backend_option("what to sweep (lab: this machine's labs and moto; aws: the config's region).")
]


@app.command()
def sweep(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Only what is older than this (30m, 2h, 7d; default 10m): anything younger may be a build "
            "in progress.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete what is listed (otherwise only list it).")] = False,
    backend: SweepBackendOption = "lab",
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was found (and removed) as JSON.")] = False,
) -> None:
    """List what peerprobe tagged or left that belongs to no live environment; delete it with --yes."""
    from peerprobe import sweep as sweeping

    grace = _lab_call(lambda: sweeping.parse_duration(older_than)) if older_than is not None else None
    backend = _backend(backend)
    experiment = _load(config)
    _check_environment()
    if backend == "aws":
        console(stderr=True).print(_lab_call(lambda: sweeping.check_aws(experiment)))
    else:
        from peerprobe.backends.lab import net

        _lab_call(net.check_available)  # reading a namespace's owner needs what building one needs
    grace = sweeping.GRACE_SECONDS if grace is None else grace
    found = _lab_call(
        lambda: (
            sweeping.find_aws(experiment, grace_seconds=grace)
            if backend == "aws"
            else sweeping.find_lab(grace_seconds=grace)
        )
    )
    for note in found.notes:
        warn(note)
    removed = _lab_call(lambda: sweeping.remove(found.leftovers)) if yes and found.leftovers else []
    if as_json:
        _print_sweep_json(found, backend=backend, grace=grace, removed=removed if yes else None)
    else:
        _print_sweep(found, backend=backend, yes=yes, removed=removed)


def _print_sweep(found: Found, *, backend: str, yes: bool, removed: list[str]) -> None:
    out = console()
    if not found.leftovers:
        out.print("nothing to sweep")
        return
    from rich.table import Table

    from peerprobe.report.terminal import Output

    out.print(f"{len(found.leftovers)} leftover(s)")
    table = Table("what", "id", "environment", "age", "why it is orphaned", header_style="bold")
    for item in found.leftovers:  # Text: ids and names found in AWS or the kernel are not markup
        table.add_row(*map(Text, (item.kind, item.id, item.environment or "-", item.age, item.reason)))
    Output(out).table(table)  # piped: whole lines, never an id cut short to fit a width
    if not yes:
        flag = " --backend aws" if backend == "aws" else ""
        out.print(f"nothing deleted: run `peerprobe sweep{flag} --yes` to delete these")
    for line in removed:
        out.print(line)


def _print_sweep_json(found: Found, *, backend: str, grace: float, removed: list[str] | None) -> None:
    import json as json_module

    from peerprobe import sweep as sweeping

    document = {
        "schema": sweeping.SCHEMA,
        "backend": backend,
        "older_than_seconds": grace,
        "leftovers": [item.as_json() for item in found.leftovers],
        "notes": found.notes,
        "removed": removed,
    }
    typer.echo(json_module.dumps(document, indent=2))


@app.command()
def serve(
    background: Annotated[bool, typer.Option("--background", help="Start (or reuse) a detached server.")] = False,
    allow_aws: Annotated[
        bool,
        typer.Option(
            "--allow-aws",
            help="Let the runs it executes (started from the UI) use the aws backend with this machine's AWS "
            "credentials; without it they fail at once, creating nothing.",
        ),
    ] = False,
) -> None:
    """Serve the deployments of prefect.yaml, so runs started from the Prefect UI execute here."""
    if background:
        from peerprobe import server

        api = _lab_call(server.ensure_running)
        pid = _lab_call(lambda: server.ensure_serving(api.api_url, allow_aws=allow_aws))
        out = console()
        out.print(f"peerprobe serve is running (pid {pid}); UI: {api.ui_url}")
        for line in server.sign_in_hint(api.api_url):
            out.print(f"  {line}")
        return
    from flows import runner

    _lab_call(lambda: runner.serve(allow_aws=allow_aws))


@contextlib.contextmanager
def _owning(backend: str, experiment: config_module.ExperimentConfig, command: str) -> Iterator[None]:
    """Own the environment for the rest of the command (design.md "Ownership of an environment"): after the
    input is checked and before anything starts; another owner past PEERPROBE_LOCK_TIMEOUT exits 3 naming it.
    The flow the command runs in this process takes the same lock again (re-entrant), and for the aws backend
    the Prefect global concurrency limit too (tasks/_ownership.py). A lab visit (attach mode) owns the lab
    environment it attaches to as well."""
    key = f"{backend}:{experiment.name}:{experiment.region}"
    owners = _lab_owners(experiment) if backend == "lab" else []  # a lab visit rebuilds its owner's data plane
    with contextlib.ExitStack() as held:
        for each in [key, *owners]:
            held.callback(_acquire(each, command).release)
        yield


def _acquire(key: str, command: str) -> Lease:
    from peerprobe import ownership

    return _lab_call(lambda: ownership.acquire(key, f"peerprobe {command}"))


def _lab_owners(experiment: config_module.ExperimentConfig) -> list[str]:
    if not experiment.attaching:
        return []
    from peerprobe.backends.lab import environment

    return environment.owner_keys(experiment)


def _preflight(backend: str, config: config_module.ExperimentConfig | None = None, *, creating: bool = False) -> None:
    """Before anything starts: the PEERPROBE_* settings, the aws backend's credentials, region and adopted
    networks, and for a command that creates, the pinned CNI versions (read-only calls; exit 2 with nothing
    created), or the lab's kernel capabilities."""
    _check_environment()
    if backend == "aws":
        from peerprobe.backends.aws.experiment import preflight

        identity = _lab_call(lambda: preflight(config or config_module.ExperimentConfig(), creating=creating))
        console(stderr=True).print(f"aws: {identity.arn} in {identity.region}")
        return
    from peerprobe.backends.lab import environment, net

    if config is not None and config.attaching and creating:  # attach mode: the lab environment it attaches to
        _lab_call(lambda: environment.require_owners(config))
    _lab_call(net.check_available)


def _check_environment() -> None:
    """PEERPROBE_STATE_DIR, PEERPROBE_RESULT_STORAGE, PEERPROBE_LAB_LATENCY and the lock timeouts: exit 2
    naming the variable, before Prefect is imported or anything is created."""
    _lab_call(environ.check)


lab_app = typer.Typer(
    name="lab",
    help="The embedded lab: the two-VPC topology in network namespaces, the AWS API served by moto.",
    no_args_is_help=True,
)
app.add_typer(lab_app)
VANTAGE_NAMES = ("vpc1-pod", "vpc2-ec2", "vpc2-pod", "outside")


@lab_app.command("up")
def lab_up(config: ConfigOption = None) -> None:
    """Build the lab environment of the config (idempotent): clusters, apps, peering, rules, baseline SNAT."""
    experiment = _load_for(config, "lab")
    _check_environment()
    from peerprobe.backends.lab import environment

    if experiment.attaching:  # attach mode: the lab environment it attaches to, before anything starts
        _lab_call(lambda: environment.require_owners(experiment))
    with (
        _owning("lab", experiment, "lab up"),
        _interruptible(
            lambda: _explain_interrupted(
                "lab up stopped before the lab was complete; what it built so far is kept",
                _what_exists("lab", experiment),
                f"finish it: peerprobe lab up{_config_flag(config)}",
                f"remove it: peerprobe lab down{_config_flag(config)}",
            )
        ),
    ):
        state = _lab_call(lambda: environment.up(experiment))
    out = console()
    out.print(Text.assemble("lab ", (state.env_key, "bold"), f" is up (run {state.run_id})"))
    for key in ("vpc1", "vpc2"):
        side = getattr(state.topology, key)
        nodes = ", ".join(f"{n.name.split('.')[0]} {n.ip}" for n in side.nodes)
        out.print(f"  {key} {side.cidr}: {nodes}")
    out.print("  try: peerprobe lab exec vpc2-pod -- wget -qO- http://" + _echo_address(state))


def _echo_address(state: object) -> str:
    topology = getattr(state, "topology", None)
    echo = topology.vpc1.echo_pod if topology is not None else None
    return f"{echo.ip}:8080/" if echo is not None else "<echo pod>:8080/"


@lab_app.command("down")
def lab_down(config: ConfigOption = None) -> None:
    """Remove the lab environment of the config; removing an absent one succeeds."""
    experiment = _load_for(config, "lab")
    _check_environment()
    from peerprobe.backends.lab import environment

    with _owning("lab", experiment, "lab down"):
        removed = _lab_call(lambda: environment.down(experiment))
    console().print(f"lab {environment.env_key(experiment)} " + ("removed" if removed else "was not there"))


@lab_app.command("status")
def lab_status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the topology as the report's `topology`.")] = False,
) -> None:
    """Whether the lab of the config exists and is healthy, and what it holds. Exit 0 up, 1 down, 3 broken."""
    experiment = _load(config)
    _check_environment()
    from peerprobe.backends.lab import environment

    state, healthy = _lab_call(lambda: environment.status(experiment))
    if as_json:
        if state is None:
            fail(ConfigError(f"no lab environment {environment.env_key(experiment)}: run `peerprobe lab up` first"))
        typer.echo(state.topology.model_dump_json(indent=2))
        return
    out = console()
    if state is None:
        out.print(f"lab {environment.env_key(experiment)}: down (nothing exists; `peerprobe lab up` builds it)")
        raise typer.Exit(code=1)
    for line in status_lines(state, healthy):
        out.print(line)
    if not healthy:
        raise typer.Exit(code=3)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def status_lines(state: LabState, healthy: bool) -> list[str]:
    """`lab status` in words: what exists, whether it is healthy, its clusters, namespaces and agent."""
    from peerprobe import aws_node
    from peerprobe.backends.lab import net
    from peerprobe.backends.lab.agent.process import is_agent

    verdict = "up and healthy" if healthy else "BROKEN: `peerprobe lab up` rebuilds it, `peerprobe lab down` removes it"
    expected = set(state.net.namespaces()) if state.net is not None else set()
    present = set(net.list_namespaces(state.env_key))
    agent = (
        "none recorded"
        if state.agent_pid is None
        else (
            f"running (pid {state.agent_pid})"
            if is_agent(state.agent_pid)
            else f"gone (pid {state.agent_pid} is not running)"
        )
    )
    lines = [f"lab {state.env_key}: {verdict}", f"  run {state.run_id}, built {state.created_at}"]
    for key in VPC_KEYS:
        side = getattr(state.topology, key)
        pods = [pod for pod in (getattr(side, "echo_pod", None), getattr(side, "busybox_pod", None)) if pod]
        settings = aws_node.env_for(state.snat(key))
        snat = ", ".join(f"{k}={v}" for k, v in settings.items()) or "the CNI defaults"
        lines.append(
            f"  {key} {side.cidr}: {_count(len(side.nodes), 'node')}, {_count(len(pods), 'pod')}; aws-node SNAT: {snat}"
        )
    missing = len(expected - present)
    lines.append(
        f"  namespaces: {len(present & expected)} of {len(expected)} present"
        + (f" ({missing} missing)" if missing else "")
    )
    lines.append(f"  agent: {agent}")
    return lines


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(
    ctx: typer.Context,
    vantage: Annotated[str, typer.Argument(metavar="VANTAGE", help=f"One of {', '.join(VANTAGE_NAMES)}.")],
    config: ConfigOption = None,
) -> None:
    """Run a command with a vantage's network view, like `kubectl exec`: lab exec vpc2-pod -- CMD..."""
    if vantage not in VANTAGE_NAMES:
        fail(ConfigError(f"vantage: {vantage!r} is not one of {', '.join(VANTAGE_NAMES)}"))
    if not ctx.args:
        fail(ConfigError("lab exec: give a command after --, e.g. lab exec vpc2-pod -- wget -qO- http://..."))
    experiment = _load(config)
    from peerprobe.backends.lab import environment

    namespace = _lab_call(lambda: environment.vantage_namespace(experiment, vantage))  # type: ignore[arg-type]
    os.execvp("ip", ["ip", "netns", "exec", namespace, *ctx.args])


@lab_app.command("set-env")
def lab_set_env(
    cluster: Annotated[str, typer.Argument(metavar="vpc1|vpc2", help="The cluster whose aws-node changes.")],
    assignments: Annotated[
        list[str], typer.Argument(metavar="NAME=VALUE|NAME-", help="NAME=VALUE sets a variable, NAME- unsets it.")
    ],
    config: ConfigOption = None,
) -> None:
    """Change aws-node's environment behind peerprobe's back, like `kubectl set env daemonset aws-node`."""
    if cluster not in ("vpc1", "vpc2"):
        fail(ConfigError(f"cluster: {cluster!r} is not one of vpc1 or vpc2"))
    experiment = _load(config)
    _check_environment()
    from peerprobe import aws_node
    from peerprobe.backends.lab import environment

    with _owning("lab", experiment, "lab set-env"):
        state, _ = _lab_call(lambda: environment.status(experiment))
        try:  # what aws-node will make of it, before it is applied (kubectl applies it all the same)
            found = aws_node.warnings(assignments, state.aws_node[cluster]) if state else []  # type: ignore[index]
        except ValueError:  # a malformed assignment: set_env refuses it with the usage message
            found = []
        for message in found:  # without a lab, set_env says so and nothing is applied
            warn(message)
        snat = _lab_call(lambda: environment.set_env(experiment, cluster, assignments))  # type: ignore[arg-type]
    console().print(
        f"{cluster} aws-node: external_snat={snat.external_snat} exclude_snat_cidrs={snat.exclude_snat_cidrs}"
    )


config_app = typer.Typer(
    name="config", help="The experiment config: its effective values, each key explained.", no_args_is_help=True
)
app.add_typer(config_app)


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective config (the defaults merged with FILE) as YAML, each key's description as a comment."""
    experiment = _load(config)
    from peerprobe import config_doc

    typer.echo(config_doc.render_yaml(experiment, source=str(config) if config else None), nl=False)


T = TypeVar("T")


def _lab_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except PeerprobeError as error:
        fail(error)


# --- interruption (design.md: exit 130 after saying what exists and how to resume or clean up) ------------------


_signals_received: list[int] = []


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT as Python's own handler does it; SIGTERM the same way (Terminated), so every `finally` runs."""
    _signals_received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def _interruptible(explain: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C, SIGINT or SIGTERM in the block: ``explain`` says what exists and what to do, then exit 130.
    Also when a library turned the KeyboardInterrupt into an error of its own on the way up."""
    # SIGINT too: a shell starts a background command with SIGINT ignored, yet `kill -INT` must still stop it.
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except BaseException as error:
        if not (isinstance(error, KeyboardInterrupt) or _signals_received):
            raise
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the explanation short
        explain()
        raise typer.Exit(code=INTERRUPTED) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _config_flag(path: Path | None) -> str:
    return f" --config {shlex.quote(str(path))}" if path is not None else ""


def _explain_interrupted(headline: str, *lines: str) -> None:
    say("interrupted", "bold yellow", "\n".join([headline, *(f"  {line}" for line in lines)]))


def _explain_interrupted_start(backend: str, experiment: config_module.ExperimentConfig, path: Path | None) -> None:
    """Stopped before the flow run existed (while the local Prefect server started)."""
    _explain_interrupted(
        "run stopped before the experiment started",
        _what_exists(backend, experiment),
        f"remove anything left: {_cleanup_command(backend, path)}",
    )


def _explain_interrupted_run(outcome: RunOutcome, path: Path | None) -> None:
    """The flow run was stopped: the retry command of a failed run, and what exists."""
    from peerprobe.run import explain_failure

    parameters = outcome.parameters
    _explain_interrupted(_what_exists(parameters.backend, parameters.config))
    explain_failure(outcome, console(stderr=True), cleanup=_cleanup_command(parameters.backend, path))


def _what_exists(backend: str, experiment: config_module.ExperimentConfig) -> str:
    """One line: the environment of the config as it is now, read from the lab or the local state."""
    key = f"{backend}:{experiment.name}:{experiment.region}"
    try:
        if backend == "lab":
            return _lab_exists(experiment)
        from peerprobe.backends.aws import _state

        recorded = _state.is_recorded(key)
    except Exception as exc:  # saying what exists must not fail the explanation itself
        return f"what exists of {key} could not be read ({type(exc).__name__}: {exc})"
    if not recorded:
        return f"nothing of the aws environment {key} is recorded here"
    return f"the aws environment {key} is recorded in the state directory (ids of what was created)"


def _lab_exists(experiment: config_module.ExperimentConfig) -> str:
    from peerprobe.backends.lab import environment, net
    from peerprobe.backends.lab.agent.process import is_agent

    key = environment.env_key(experiment)
    state, healthy = environment.status(experiment)
    namespaces = len(net.list_namespaces(key))
    if state is None:
        return f"the lab environment {key} does not exist ({namespaces} namespaces of it remain)"
    agent = "its agent runs" if state.agent_pid and is_agent(state.agent_pid) else "no agent runs"
    health = "complete and healthy" if healthy else "incomplete"
    return f"the lab environment {key} exists, {health}: {namespaces} namespaces, {agent}"


def main() -> None:
    try:
        app()
    except PeerprobeError as error:  # anything a command did not translate itself
        say("error", "bold red", str(error))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:  # where a command does not explain it itself (it started nothing there)
        say("interrupted", "bold yellow", "stopped by Ctrl-C / SIGINT")
        sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()


# --- the fleet: drift checks on a work pool (docs/fleet.md) -----------------------------------------------------

fleet_app = typer.Typer(
    name="fleet",
    help="Drift checks of many environments on a Prefect work pool: one scheduled deployment per environment.",
    no_args_is_help=True,
)
app.add_typer(fleet_app)
ConfigsArgument = Annotated[
    list[Path], typer.Argument(metavar="CONFIG...", help="One config per environment (YAML).", show_default=False)
]
FleetBackendOption = Annotated[str, _backend_option("the environments' backend.")]


def _members(configs: list[Path], backend: str) -> list[Any]:
    """Each config loaded and checked (a missing or bad file: exit 2, before Prefect is imported)."""
    from peerprobe import fleet

    members = [fleet.Member(backend=_backend(backend), config=_load_for(path, backend)) for path in configs]
    names = [member.name for member in members]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        fail(ConfigError(f"two configs name the same environment (deployment drift-check/{duplicate})"))
    return members


@fleet_app.command("add")
def fleet_add(
    configs: ConfigsArgument,
    pool: Annotated[str, typer.Option("--pool", metavar="POOL", help="The work pool (a process pool is made).")],
    cron: Annotated[
        str | None, typer.Option("--cron", metavar="EXPR", help="Cron schedule (UTC); default every 30 minutes.")
    ] = None,
    run_now: Annotated[bool, typer.Option("--run-now", help="Also schedule one check of each at once.")] = False,
    backend: FleetBackendOption = "lab",
) -> None:
    """Create or update the drift-check deployment of each environment on POOL, with its schedule."""
    from peerprobe import fleet

    if not pool.strip():
        fail(ConfigError("--pool: a work pool name is required"))
    members = _members(configs, backend)
    if cron is not None:
        _lab_call(lambda: fleet.check_cron(cron))
    _check_environment()
    from flows import runner

    prefect_server = _lab_call(runner.connect)
    from flows import fleet as fleet_flows

    added = _lab_call(lambda: fleet_flows.add(pool, members, cron=cron, run_now=run_now))
    from peerprobe import server

    out = console()
    made = "created (process)" if added.pool_created else f"({added.pool_type})"
    out.print(f"work pool {pool} {made}")
    for name in added.deployments:
        out.print(f"  deployment {name}: every 30 min" if cron is None else f"  deployment {name}: cron {cron}")
    for run_id in added.runs:
        out.print(f"  run now: {prefect_server.flow_run_url(run_id)}")
    state_dir = os.environ.get(environ.STATE_DIR_ENV)
    prefix = server.shell_env(prefect_server.api_url)
    if state_dir:
        prefix += f" {environ.STATE_DIR_ENV}={shlex.quote(state_dir)}"
    out.print(f"worker: {fleet.worker_command(pool, added.pool_type, prefix)}", soft_wrap=True)


@fleet_app.command("list")
def fleet_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the fleet as JSON.")] = False,
) -> None:
    """Each environment of the fleet: its deployment, last check and next run."""
    import json as json_module

    _check_environment()
    from flows import runner

    _lab_call(runner.connect)
    from flows import fleet as fleet_flows

    found = _lab_call(fleet_flows.entries)
    if as_json:
        typer.echo(json_module.dumps(found, indent=2))
        return
    out = console()
    if not found:
        out.print("no environments in the fleet (`peerprobe fleet add --pool POOL CONFIG...` adds them)")
    for entry in found:
        last = entry["last_check"]
        out.print(Text.assemble((entry["deployment"], "bold"), f" on {entry['pool']} ({', '.join(entry['schedule'])})"))
        if last is None:
            out.print("  last check: none yet")
        else:
            counts = f"{last['cells']} cells, {last['drift']} drift" if last["cells"] is not None else "cells unknown"
            out.print(f"  last check: {last['state']} at {last['time']} ({counts}) run {last['flow_run_id']}")
        out.print(f"  next run: {entry['next_run'] or 'none scheduled'}")


@fleet_app.command("remove")
def fleet_remove(configs: ConfigsArgument, backend: FleetBackendOption = "lab") -> None:
    """Delete the drift-check deployment of each environment (its schedule goes with it); absent is fine."""
    members = _members(configs, backend)
    _check_environment()
    from flows import runner

    _lab_call(runner.connect)
    from flows import fleet as fleet_flows

    out = console()
    for name, existed in _lab_call(lambda: fleet_flows.remove(members)):
        out.print(f"deployment {name} " + ("removed" if existed else "was not there"))


@fleet_app.command("metrics")
def fleet_metrics(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (a *.prom for node_exporter); default stdout."),
    ] = None,
) -> None:
    """Every environment's last check as Prometheus metrics, in one scrape: one alert covers the fleet."""
    if output is not None:
        _report_paths(metrics=str(output))
    _check_environment()
    from flows import runner

    _lab_call(runner.connect)
    from flows import fleet as fleet_flows

    text = _lab_call(fleet_flows.metrics_text)
    if output is None:
        typer.echo(text, nl=False)
        return
    from peerprobe import outputs

    _lab_call(lambda: outputs.write_text(output, text))
    console().print(f"metrics of the fleet: {output}")
