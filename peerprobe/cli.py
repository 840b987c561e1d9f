"""The ``peerprobe`` command. Order of work (design.md): parse and validate the config first, and only
then import Prefect or start anything, so bad input costs nothing and creates nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from peerprobe import config as config_module
from peerprobe.errors import ConfigError, PeerprobeError

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


@app.callback()
def root() -> None:
    """peerprobe: the experiment as Prefect flows, on the embedded lab or on AWS."""


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
def predict(config: ConfigOption = None, json: JsonOption = None, backend: BackendOption = "lab") -> None:
    """Print the expected matrix of every phase: the model only, no I/O, instant."""
    experiment = _load(config)
    backend = _backend(backend)
    from peerprobe.report import document, terminal
    from peerprobe.run import predicted_report

    report = predicted_report(experiment, backend=backend)
    terminal.render(report, terminal.console())
    if json is not None:
        Console(stderr=True).print(f"wrote {document.write(report, json)}", highlight=False)


def main() -> None:
    try:
        app()
    except PeerprobeError as error:  # anything a command did not translate itself
        Console(stderr=True).print(f"error: {error}", highlight=False, markup=False)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
