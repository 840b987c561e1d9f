"""The ``peerprobe`` command. Order of work (design.md): parse and validate the config first, and only
then import Prefect or start anything, so bad input costs nothing and creates nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from peerprobe import config as config_module
from peerprobe.errors import ConfigError, InfrastructureError, PeerprobeError

app = typer.Typer(
    name="peerprobe",
    help="Know, not guess, how traffic reaches Kubernetes Services on EKS across VPC peering and SNAT settings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Experiment config (YAML); default: the workshop topology.")
]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the JSON report (peerprobe.report/v1) here.")]
BackendOption = Annotated[str, typer.Option("--backend", help="lab | aws: the backend the prediction is for.")]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Write the HTML report (topology, matrix, each cell's path) here.")
]


@app.callback()
def root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v progress events, -vv debug.")] = 0,
) -> None:
    """peerprobe: the experiment as Prefect flows, on the embedded lab or on AWS."""
    from peerprobe import logs

    logs.configure(verbose)


def fail(error: PeerprobeError) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {error}", highlight=False, markup=True)
    raise typer.Exit(code=error.exit_code)


def _load(path: Path | None) -> config_module.ExperimentConfig:
    try:
        return config_module.load(path)
    except PeerprobeError as error:
        fail(error)


def _backend(value: str) -> str:
    if value not in ("lab", "aws"):
        fail(ConfigError(f"--backend: {value!r} is not one of lab or aws"))
    return value


@app.command()
def predict(
    config: ConfigOption = None, json: JsonOption = None, backend: BackendOption = "lab", html: HtmlOption = None
) -> None:
    """Print the expected matrix of every phase: the model only, no I/O, instant."""
    experiment = _load(config)
    backend = _backend(backend)
    _check_html(html)
    from peerprobe.report import document, terminal
    from peerprobe.run import predicted_report

    report = predicted_report(experiment, backend=backend)
    terminal.render(report, terminal.console())
    if json is not None:
        Console(stderr=True).print(f"wrote {document.write(report, json)}", highlight=False)
    if html is not None:
        from peerprobe.report import html as html_report

        Console(stderr=True).print(f"wrote {html_report.write(report, html, experiment)}", highlight=False)


PathOption = Annotated[Path | None, typer.Option(help="Write this report format here.")]


@app.command()
def run(
    config: ConfigOption = None,
    backend: BackendOption = "lab",
    keep: Annotated[bool, typer.Option("--keep", help="Keep the environment; restore baseline SNAT.")] = False,
    cleanup_on_failure: Annotated[bool, typer.Option("--cleanup-on-failure", help="On failure, remove all.")] = False,
    json: JsonOption = None,
    junit: PathOption = None,
    markdown: PathOption = None,
    html: HtmlOption = None,
) -> None:
    """Run the whole experiment flow (default: the workshop topology on the lab) and report every cell."""
    from peerprobe.params import RunParameters

    parameters = RunParameters(config=_load(config), backend=_backend(backend), keep=keep,
                               cleanup_on_failure=cleanup_on_failure)  # fmt: skip
    _check_html(html)
    _preflight(parameters.backend, parameters.config, creating=True)
    from flows import runner
    from peerprobe.run import finish

    outcome = _lab_call(lambda: runner.run_experiment(parameters))
    code = finish(outcome, json=json, junit=junit, markdown=markdown, html=html, link=runner.link_report,
                  console=Console())  # fmt: skip
    raise typer.Exit(code=code)


@app.command()
def cleanup(config: ConfigOption = None, backend: BackendOption = "lab") -> None:
    """Remove the environment of the config; removing an absent environment succeeds."""
    from peerprobe.params import RunParameters

    parameters = RunParameters(config=_load(config), backend=_backend(backend))
    _preflight(parameters.backend, parameters.config)
    from flows import runner

    outcome = _lab_call(lambda: runner.run_cleanup(parameters))
    Console().print(f"cleanup of {parameters.config.name}: {outcome.state}", highlight=False)
    raise typer.Exit(code=0 if outcome.state == "Completed" else 3)


@app.command()
def drift(
    config: ConfigOption = None,
    backend: BackendOption = "lab",
    json: JsonOption = None,
    junit: PathOption = None,
    html: HtmlOption = None,
) -> None:
    """Probe the existing environment of the config in one phase `live`; compare with the model and the
    baseline. Creates and deletes nothing. Exit 0: no drift; 1: drift; 2: no such environment; 3: failure."""
    from peerprobe.params import RunParameters

    parameters = RunParameters(config=_load(config), backend=_backend(backend))
    _check_html(html)
    _preflight(parameters.backend, parameters.config)
    _require_environment(parameters.backend, parameters.config)
    from flows import runner

    prefect_server = _lab_call(runner._connect)
    from flows.drift import run_here
    from peerprobe import drift as drift_module
    from peerprobe.run import finish

    outcome = _lab_call(lambda: run_here(prefect_server.api_url, prefect_server.ui_url, parameters))
    out = Console(soft_wrap=True, highlight=False)
    if outcome.report is None:  # the check itself failed: nothing was created, so there is nothing to resume
        out.print(f"[bold red]drift check {outcome.state}[/bold red]: {outcome.error}\n  run: {outcome.run_url}")
        raise typer.Exit(code=3)
    code = finish(outcome, json=json, junit=junit, markdown=None, html=html, link=runner.link_report, console=out)
    for entry in outcome.report.config_diff or []:
        out.print(f"  changed since the baseline: {entry['text']}")
    if outcome.report.config_diff is None:
        out.print("  no baseline recorded for this environment (`peerprobe run --keep` records one)")
    out.print(f"drift check: {outcome.state}")
    raise typer.Exit(code=1 if drift_module.drifted(outcome.report) else code)


def _check_html(path: Path | None) -> None:
    """--html before anything starts (design.md): an empty path, a directory or an unwritable place is bad input."""
    problem = _unwritable(path) if path is not None else None
    if problem:
        fail(ConfigError(f"--html: {str(path)!r} {problem}"))


def _unwritable(path: Path) -> str | None:
    if not str(path).strip() or path.is_dir():  # Path("") is "."
        return "is a directory, not a file"
    nearest = next(parent for parent in path.absolute().parents if parent.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK):
        return f"cannot be written: {nearest} is not a writable directory"
    return None


def _require_environment(backend: str, config: config_module.ExperimentConfig) -> None:
    """A drift check probes what exists: exit 2 when the config has no environment on the backend, 3 when what
    is recorded of it is gone. Before Prefect is imported, like every check of the input."""
    if backend == "aws":
        _require_aws_environment(config)
    else:
        _require_lab_environment(config)


def _require_lab_environment(config: config_module.ExperimentConfig) -> None:
    from peerprobe.backends.lab import environment

    state, healthy = environment.status(config)
    key = environment.env_key(config)
    if state is None:
        fail(ConfigError(f"no lab environment {key} to check: `peerprobe run --keep` or `peerprobe lab up` makes one"))
    if not healthy:
        fail(InfrastructureError(f"lab environment {key} is broken (its namespaces or agent are gone): "
                            "`peerprobe lab up` rebuilds it, `peerprobe cleanup` removes it"))  # fmt: skip


def _require_aws_environment(config: config_module.ExperimentConfig) -> None:
    """From the ids `run --backend aws --keep` persisted in the state directory, or found by their tags where
    this machine has no state (a work pool's pod), checked against AWS."""
    from peerprobe.backends.aws.experiment import AwsExperiment
    from peerprobe.backends.steps import EnvironmentRef

    experiment = AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="drift-check"))
    key = experiment.environment
    if not _lab_call(experiment.recorded):
        fail(ConfigError(f"no aws environment {key} recorded in this state directory or tagged in "
                         f"{config.region} to check: `peerprobe run --backend aws --keep` makes one"))  # fmt: skip
    missing = _lab_call(experiment.missing_networks)
    if missing:
        fail(InfrastructureError(f"aws environment {key} is broken ({', '.join(missing)} no longer exist): "
                                 "`peerprobe cleanup --backend aws` removes the rest",
                                 resource="vpc", resource_id=missing[0], state="absent"))  # fmt: skip


@app.command()
def sweep(
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Also sweep environments older than this (30m, 2h, 7d).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete what is listed (otherwise only list it).")] = False,
) -> None:
    """List what peerprobe tagged or left that belongs to no live environment; delete it with --yes."""
    from peerprobe import sweep as sweeping

    age = _lab_call(lambda: sweeping.parse_duration(older_than)) if older_than is not None else None
    leftovers = _lab_call(lambda: sweeping.find(older_than=age))
    out = Console(soft_wrap=True, highlight=False)
    if not leftovers:
        out.print("nothing to sweep")
        return
    from rich.table import Table

    table = Table("kind", "id", "environment", "age", "why", title=f"{len(leftovers)} leftover(s)")
    for item in leftovers:
        table.add_row(item.kind, item.id, item.environment or "-", item.age, item.reason)
    out.print(table)
    if not yes:
        out.print("nothing deleted: run `peerprobe sweep --yes` to delete these")
        return
    for line in _lab_call(lambda: sweeping.remove(leftovers)):
        out.print(line)


@app.command()
def serve(
    background: Annotated[bool, typer.Option("--background", help="Start (or reuse) a detached server.")] = False,
) -> None:
    """Serve the deployments of prefect.yaml, so runs started from the Prefect UI execute here."""
    if background:
        from peerprobe import server

        api = _lab_call(server.ensure_running)
        pid = _lab_call(lambda: server.ensure_serving(api.api_url))
        Console().print(f"peerprobe serve is running (pid {pid}); UI: {api.ui_url}", highlight=False)
        return
    from flows import runner

    _lab_call(runner.serve)


def _preflight(backend: str, config: config_module.ExperimentConfig | None = None, *, creating: bool = False) -> None:
    """Before anything starts: the aws backend's credentials, region and adopted networks, and for a command
    that creates, the pinned CNI versions (read-only calls; exit 2 with nothing created), or the lab's kernel
    capabilities."""
    if backend == "aws":
        from peerprobe.backends.aws.experiment import preflight

        identity = _lab_call(lambda: preflight(config or config_module.ExperimentConfig(), creating=creating))
        Console(stderr=True).print(f"aws: {identity.arn} in {identity.region}", highlight=False)
        return
    from peerprobe.backends.lab import net

    _lab_call(net.check_available)


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
    experiment = _load(config)
    from peerprobe.backends.lab import environment

    state = _lab_call(lambda: environment.up(experiment))
    out = Console(soft_wrap=True, highlight=False)
    out.print(f"lab [bold]{state.env_key}[/bold] is up (run {state.run_id})")
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
    experiment = _load(config)
    from peerprobe.backends.lab import environment

    removed = _lab_call(lambda: environment.down(experiment))
    Console().print(f"lab {environment.env_key(experiment)} " + ("removed" if removed else "was not there"))


@lab_app.command("status")
def lab_status(config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Whether the lab of the config is up and healthy; --json prints the report's `topology`."""
    experiment = _load(config)
    from peerprobe.backends.lab import environment

    state, healthy = environment.status(experiment)
    if as_json:
        if state is None:
            fail(ConfigError(f"no lab environment {environment.env_key(experiment)}: run `peerprobe lab up` first"))
        typer.echo(state.topology.model_dump_json(indent=2))
        return
    if state is None:
        Console().print(f"lab {environment.env_key(experiment)}: down")
        raise typer.Exit(code=1)
    snat = {key: state.snat(key).model_dump() for key in environment.VPC_KEYS}
    Console().print(f"lab {state.env_key}: {'up' if healthy else 'BROKEN (run `peerprobe lab up` to rebuild)'}; "
                    f"run {state.run_id}; aws-node SNAT {snat}", highlight=False)  # fmt: skip
    if not healthy:
        raise typer.Exit(code=3)


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(ctx: typer.Context, vantage: str, config: ConfigOption = None) -> None:
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
    cluster: Annotated[str, typer.Argument(help="vpc1 | vpc2")],
    assignments: Annotated[list[str], typer.Argument(help="NAME=VALUE to set, NAME- to unset")],
    config: ConfigOption = None,
) -> None:
    """Change aws-node's environment behind peerprobe's back, like `kubectl set env daemonset aws-node`."""
    if cluster not in ("vpc1", "vpc2"):
        fail(ConfigError(f"cluster: {cluster!r} is not one of vpc1 or vpc2"))
    experiment = _load(config)
    from peerprobe.backends.lab import environment

    snat = _lab_call(lambda: environment.set_env(experiment, cluster, assignments))  # type: ignore[arg-type]
    Console().print(f"{cluster} aws-node: external_snat={snat.external_snat} "
                    f"exclude_snat_cidrs={snat.exclude_snat_cidrs}", highlight=False)  # fmt: skip


T = TypeVar("T")


def _lab_call(call: Callable[[], T]) -> T:
    try:
        return call()
    except PeerprobeError as error:
        fail(error)


def main() -> None:
    try:
        app()
    except PeerprobeError as error:  # anything a command did not translate itself
        Console(stderr=True).print(f"error: {error}", highlight=False, markup=False)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
