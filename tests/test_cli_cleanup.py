"""`peerprobe cleanup` as a user runs it: `--run-id` removes the environment a flow run names (its config and
backend read from the run on the Prefect server); an id that is not a run's, or one given with --config, is bad
input (exit 2); an environment whose state file is garbage is still removed, from tags and kernel objects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import yaml
from typer.testing import CliRunner

from peerprobe import statedir
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.backends.lab.agent.process import is_agent
from peerprobe.cli import app
from peerprobe.params import RunParameters
from tests.backends.lab.conftest import own_config

COMMAND = [sys.executable, "-m", "peerprobe.cli"]
runner = CliRunner()


def test_a_run_id_that_is_not_a_uuid_is_bad_input_and_starts_nothing() -> None:
    result = runner.invoke(app, ["cleanup", "--run-id", "[bold]latest"])
    assert result.exit_code == 2, result.output
    assert "error: --run-id: '[bold]latest' is not a flow run id (a UUID" in result.output


def test_a_run_id_with_a_config_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["cleanup", "--run-id", str(uuid4()), "--config", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2 and "give --run-id without --config/--backend" in result.output


def test_help_names_the_run_id() -> None:
    result = runner.invoke(app, ["cleanup", "--help"])
    assert result.exit_code == 0 and "--run-id ID" in result.output and "Prefect server" in result.output


def _cleanup(*args: str) -> subprocess.CompletedProcess[str]:
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200"}
    return subprocess.run([*COMMAND, "cleanup", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def built(lab_state_dir: Path, request: pytest.FixtureRequest) -> Iterator[lab.LabState]:
    """A lab of the test's own, removed afterwards whatever the test did."""
    cfg = own_config("clean-" + request.node.name.split("_")[1][:8])
    yield lab.up(cfg)
    lab.down(cfg)


def _flow_run_of(flow_name: str, parameters: dict[str, object]) -> str:
    """A flow run on the server as the UI or a schedule leaves one: created with its parameters."""
    from prefect import flow, get_client

    @flow(name=flow_name)
    def stand_in(parameters: dict[str, object] | None = None) -> None: ...

    with get_client(sync_client=True) as client:
        return str(client.create_flow_run(stand_in, parameters=parameters).id)


@pytest.mark.lab
def test_run_id_removes_the_environment_that_run_names(prefect_server: None, built: lab.LabState) -> None:
    parameters = RunParameters(config=built.config).model_dump(mode="json")
    run_id = _flow_run_of("experiment", {"parameters": parameters})
    result = _cleanup("--run-id", run_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"cleanup of {built.env_key}: Completed" in result.stdout
    assert net.list_namespaces(built.env_key) == [] and lab.load_state(built.env_key) is None


@pytest.mark.lab
def test_an_unknown_run_or_another_flows_run_is_bad_input(prefect_server: None) -> None:
    missing = str(uuid4())
    result = _cleanup("--run-id", missing)
    assert result.returncode == 2 and f"error: --run-id: no flow run {missing} on the Prefect server" in result.stderr
    other = _flow_run_of("not-peerprobe", {})
    result = _cleanup("--run-id", other)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"flow run {other} is a run of 'not-peerprobe', not of experiment, drift-check, cleanup" in result.stderr


@pytest.mark.lab
def test_cleanup_removes_an_environment_whose_state_file_is_garbage(
    prefect_server: None, built: lab.LabState, tmp_path: Path
) -> None:
    (statedir.state_dir() / lab._state_name(built.env_key)).write_text("\x00garbage")
    path = tmp_path / "c.yaml"
    name = built.config.name
    path.write_text(
        yaml.safe_dump({"name": name, "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}}})
    )
    result = _cleanup("--config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab.state_unreadable" in result.stderr and "not JSON (truncated or garbage" in result.stderr
    assert net.list_namespaces(built.env_key) == [] and lab.agents_of(built.env_key) == []
    assert built.agent_pid is not None and not is_agent(built.agent_pid)
