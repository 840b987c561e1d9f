"""`peerprobe fleet` on bad input: a missing config file, a bad cron expression, two configs of one environment
or an empty pool name exit 2 before Prefect is imported or anything is created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from peerprobe import config, fleet
from peerprobe.errors import ConfigError


def fleet_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter that reports, at exit, whether Prefect was imported."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('prefect imported' if 'prefect' in sys.modules else 'no prefect'))\n"
        "from peerprobe.cli import app\n"
        "app()\n"
    )
    env = {"PEERPROBE_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code, "fleet", *args], capture_output=True, text=True, env=env, check=False
    )


def write_config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "61 * * * *"], "the minute field '61'"),
        (["--cron", "every day"], "a cron expression has 5 fields"),
        (["--pool", " "], "a work pool name is required"),
    ],
)
def test_bad_input_exits_2_before_prefect_is_imported(tmp_path: Path, args: list[str], message: str) -> None:
    options = args if "--pool" in args else ["--pool", "p", *args]
    done = fleet_command(tmp_path, "add", *options, str(write_config(tmp_path, "one")))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stdout + done.stderr
    assert "no prefect" in done.stdout
    assert not (tmp_path / "state" / "prefect-server.json").exists()


def test_a_missing_config_exits_2(tmp_path: Path) -> None:
    done = fleet_command(tmp_path, "add", "--pool", "p", str(tmp_path / "absent.yaml"))
    assert done.returncode == 2 and "no such config file" in done.stdout + done.stderr
    assert "no prefect" in done.stdout


def test_two_configs_of_one_environment_exit_2(tmp_path: Path) -> None:
    first = write_config(tmp_path, "one")
    done = fleet_command(tmp_path, "remove", str(first), str(first))
    assert done.returncode == 2 and "drift-check/lab-one-cn-northwest-1" in done.stdout + done.stderr


def test_the_deployment_is_named_by_the_environment() -> None:
    cfg = config.from_mapping({"name": "team-a", "region": "cn-north-1"})
    assert fleet.Member(backend="aws", config=cfg).name == "aws-team-a-cn-north-1"


@pytest.mark.parametrize("expression", ["*/30 * * * *", "0 9-17/2 * * mon-fri", "5,35 * 1 jan *", "@hourly"])
def test_cron_expressions_a_team_writes_pass(expression: str) -> None:
    assert fleet.check_cron(expression) == expression


@pytest.mark.parametrize("expression", ["* * * *", "* 24 * * *", "* * 0 * *", "*/x * * * *", ""])
def test_bad_cron_expressions_name_the_problem(expression: str) -> None:
    with pytest.raises(ConfigError, match="--cron"):
        fleet.check_cron(expression)


def test_the_worker_command_reaches_the_server() -> None:
    command = fleet.worker_command("team pool", "process", "PREFECT_API_URL=http://127.0.0.1:4200/api")
    assert command == "PREFECT_API_URL=http://127.0.0.1:4200/api prefect worker start --pool 'team pool'"
