"""A lab whose state files cannot be read (truncated, another schema, a symlink): `lab status` and `drift` say
which file and what is wrong (exit 3); `lab down` still removes everything (the agent found by its command
line, the namespaces by their names, moto's resources by their tags) and sets the bad files aside."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from peerprobe import statedir, sweep
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.backends.lab.agent.process import is_agent
from peerprobe.cli import app
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
runner = CliRunner()


@pytest.fixture
def built(lab_state_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Path, lab.LabState]]:
    """A lab of the test's own and its config file; removed afterwards whatever the test did to it."""
    name = "unread-" + request.node.name.split("_")[1][:8]
    path = tmp_path / "lab.yaml"
    path.write_text(
        yaml.safe_dump({"name": name, "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}}})
    )
    cfg = own_config(name)
    state = lab.up(cfg)
    yield path, state
    lab.down(cfg)


def state_files(key: str) -> list[Path]:
    return [statedir.state_dir() / lab._state_name(key), statedir.state_dir() / aws_state.state_name(key)]


def nothing_left(state: lab.LabState) -> None:
    key = state.env_key
    assert state.agent_pid is not None and not is_agent(state.agent_pid), "the agent went with its lab"
    assert lab.agents_of(key) == [] and net.list_namespaces(key) == []
    assert [item for item in sweep.find_lab(grace_seconds=0).leftovers if item.environment == key] == [], (
        "nothing left in moto"
    )
    assert not any(path.exists() or path.is_symlink() for path in state_files(key))


def test_down_with_truncated_state_files_stops_the_agent_and_leaves_nothing(
    built: tuple[Path, lab.LabState],
) -> None:
    path, state = built
    for file in state_files(state.env_key):
        file.write_bytes(file.read_bytes()[:40])  # cut mid-way, as a crash or a full disk leaves it
    result = runner.invoke(app, ["lab", "down", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert f"lab {state.env_key} removed" in result.output
    assert "lab.state_unreadable" in result.output and "not JSON (truncated or garbage" in result.output
    nothing_left(state)
    kept = sorted(p.name for p in (statedir.state_dir() / statedir.QUARANTINE).iterdir())
    assert any(name.startswith(f"environments_{state.env_key.replace(':', '_')}.json.") for name in kept)


def test_status_and_drift_name_the_file_and_what_is_wrong_and_down_still_works(
    built: tuple[Path, lab.LabState],
) -> None:
    path, state = built
    file = state_files(state.env_key)[0]
    file.write_text(json.dumps({"schema": "peerprobe.lab-state/v1", "env_key": state.env_key}))  # fields missing
    for command in (["lab", "status"], ["drift"]):
        result = runner.invoke(app, [*command, "--config", str(path)])
        assert result.exit_code == 3, result.output
        assert f"error: state file {file} is unreadable: not a lab state: run_id: Field required" in result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert runner.invoke(app, ["lab", "down", "--config", str(path)]).exit_code == 0
    nothing_left(state)


def test_a_symlink_planted_as_the_state_file_is_not_followed_and_down_still_works(
    built: tuple[Path, lab.LabState], tmp_path: Path
) -> None:
    path, state = built
    file, outside = state_files(state.env_key)[0], tmp_path / "elsewhere.json"
    outside.write_text(file.read_text())
    file.unlink()
    file.symlink_to(outside)
    status = runner.invoke(app, ["lab", "status", "--config", str(path)])
    assert status.exit_code == 3 and "a symlink, not a state file (never followed)" in status.output
    assert runner.invoke(app, ["lab", "down", "--config", str(path)]).exit_code == 0
    nothing_left(state)
    assert json.loads(outside.read_text())["env_key"] == state.env_key, "what the link pointed at is untouched"


def test_up_over_an_unreadable_state_replaces_the_lab(built: tuple[Path, lab.LabState]) -> None:
    path, state = built
    state_files(state.env_key)[0].write_text("garbage")
    result = runner.invoke(app, ["lab", "up", "--config", str(path)])
    assert result.exit_code == 0, result.output
    fresh = lab.load_state(state.env_key)
    assert fresh is not None and lab.healthy(fresh) and not is_agent(state.agent_pid or 0), "the old agent is gone"
    assert lab.agents_of(state.env_key) == [fresh.agent_pid]
