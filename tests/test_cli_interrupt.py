"""`peerprobe run` as a user runs it, on the lab: a failing step shows peerprobe's message and no traceback
(the run's logs keep it), and SIGINT mid-way exits 130 saying what exists and how to resume or clean up,
after which `peerprobe cleanup` leaves nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from tasks._faults import FAULT_ENV
from tests.backends.lab.conftest import own_config
from tests.flows.run_logs import all_logs

pytestmark = pytest.mark.lab
COMMAND = [sys.executable, "-m", "peerprobe.cli"]


@pytest.fixture
def config_file(prefect_server: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A small experiment of its own (one phase, short probes); its lab is removed afterwards in any case."""
    name = "cli-" + request.node.name.split("_")[1][:10]
    overrides = {
        "name": name,
        "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}},
        "probe": {"timeout_seconds": 0.5},
        "phases": [{"name": "baseline"}],
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(overrides))
    yield path
    lab.down(own_config(name))


def _env(**extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return os.environ | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200"} | extra


def _key(path: Path) -> str:
    return f"lab:{yaml.safe_load(path.read_text())['name']}:cn-northwest-1"


def test_a_failed_step_shows_the_message_and_no_traceback(config_file: Path) -> None:
    result = subprocess.run(
        [*COMMAND, "run", "--config", str(config_file)],
        capture_output=True,
        text=True,
        env=_env(**{FAULT_ENV: "probe"}),
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "injected fault in step probe" in output and "retry:" in output
    assert f"cleanup: peerprobe cleanup --backend lab --config {config_file}" in output
    assert "Traceback" not in output
    flow_run_id = re.search(r"runs/flow-run/([0-9a-f-]{36})", output)
    assert flow_run_id is not None, output
    assert _logs_hold("Traceback (most recent call last)", flow_run_id.group(1)), "the run's logs keep it"


def _logs_hold(text: str, flow_run_id: str, timeout: float = 20.0) -> bool:
    from prefect import get_client

    deadline = time.monotonic() + timeout  # logs reach the API in batches
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if any(text in log.message for log in all_logs(client, flow_run_id)):
                return True
            time.sleep(0.5)
    return False


def test_sigint_mid_run_exits_130_saying_what_exists_and_cleanup_leaves_nothing(config_file: Path) -> None:
    key = _key(config_file)
    process = subprocess.Popen(
        [*COMMAND, "run", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        _wait_for_namespaces(key, process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, out + err
    assert f"interrupted: the lab environment {key} exists" in err
    assert "retry:" in err and f"cleanup: peerprobe cleanup --backend lab --config {config_file}" in err
    assert "Traceback" not in out + err
    cleanup = subprocess.run(
        [*COMMAND, "cleanup", "--config", str(config_file)], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert net.list_namespaces(key) == [] and lab.load_state(key) is None


def _wait_for_namespaces(key: str, process: subprocess.Popen[str], timeout: float = 180.0) -> None:
    """Until the run has built part of the lab (its namespaces exist): mid-way."""
    deadline = time.monotonic() + timeout
    while not net.list_namespaces(key):
        assert process.poll() is None, "the run ended before it was interrupted"
        assert time.monotonic() < deadline, "the run built nothing in time"
        time.sleep(0.2)
