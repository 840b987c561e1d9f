"""One owner per environment, as a user meets it on the lab (design.md "Ownership of an environment"): two
`peerprobe run` of one environment take turns and both pass, leaving nothing; a second `lab up` gives up after
PEERPROBE_LOCK_TIMEOUT naming the first; a `lab up` killed mid-way does not block the next, which finishes it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from peerprobe import ownership, sweep
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
COMMAND = [sys.executable, "-m", "peerprobe.cli"]


@pytest.fixture
def config_file(lab_state_dir: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A small experiment of the test's own (one phase, short probes); its lab is removed afterwards in any case."""
    name = "own-" + request.node.name.split("_")[1][:10]
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


def _key(path: Path) -> str:
    return f"lab:{yaml.safe_load(path.read_text())['name']}:cn-northwest-1"


def _env(**extra: str) -> dict[str, str]:
    return os.environ | {"COLUMNS": "200"} | extra


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(**env)
    )


def _nothing_left(key: str) -> None:
    assert net.list_namespaces(key) == [] and lab.agents_of(key) == [] and lab.load_state(key) is None
    assert [item for item in sweep.find_lab(grace_seconds=0).leftovers if item.environment == key] == [], (
        "nothing in moto"
    )
    assert ownership.holder(key) is None, "no owner on record"


def _wait_for_holder(key: str, process: subprocess.Popen[str], timeout: float = 60.0) -> ownership.Holder:
    deadline = time.monotonic() + timeout
    while (found := ownership.holder(key)) is None or found.pid != process.pid:
        assert process.poll() is None, "it ended before it was seen holding the lock"
        assert time.monotonic() < deadline, "it never took the lock"
        time.sleep(0.05)
    return found


def test_two_runs_of_one_environment_take_turns_and_both_pass(config_file: Path, prefect_server: None) -> None:
    from prefect.settings import PREFECT_API_URL

    api = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PEERPROBE_LOCK_TIMEOUT": "280"}
    first = _start("run", "--config", str(config_file), **api)
    time.sleep(1.0)
    second = _start("run", "--config", str(config_file), **api)
    try:
        first_out, first_err = first.communicate(timeout=280)
        second_out, second_err = second.communicate(timeout=280)
    finally:
        first.kill()
        second.kill()
    assert first.returncode == 0, first_out + first_err
    assert second.returncode == 0, second_out + second_err
    assert "environment.busy" in second_err and f"`peerprobe run` (pid {first.pid} on " in second_err, "it waited"
    _nothing_left(_key(config_file))


def test_a_second_lab_up_gives_up_after_the_timeout_naming_the_holder(config_file: Path) -> None:
    key = _key(config_file)
    first = _start("lab", "up", "--config", str(config_file))
    try:
        holder = _wait_for_holder(key, first)
        started = time.monotonic()
        second = subprocess.run(
            [*COMMAND, "lab", "up", "--config", str(config_file)],
            capture_output=True,
            text=True,
            env=_env(PEERPROBE_LOCK_TIMEOUT="1"),
            timeout=120,
        )
        waited = time.monotonic() - started
        assert first.wait(timeout=240) == 0
    finally:
        first.kill()
    assert second.returncode == 3, second.stdout + second.stderr
    assert f"error: environment {key} is busy: `peerprobe lab up` (pid {first.pid} on {socket.gethostname()}" in (
        second.stderr
    )
    assert f"since {holder.since}) holds it; gave up after 1s (PEERPROBE_LOCK_TIMEOUT)" in second.stderr
    assert "Traceback" not in second.stderr and waited < 30


def test_a_killed_lab_up_does_not_block_the_next_which_finishes_it(config_file: Path) -> None:
    key = _key(config_file)
    first = _start("lab", "up", "--config", str(config_file))
    _wait_for_holder(key, first)
    deadline = time.monotonic() + 120
    while not net.list_namespaces(key) and time.monotonic() < deadline:  # mid-way: it has built something
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = subprocess.run(
        [*COMMAND, "lab", "up", "--config", str(config_file)],
        capture_output=True,
        text=True,
        env=_env(PEERPROBE_LOCK_TIMEOUT="5"),
        timeout=240,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "environment.busy" not in second.stderr, "the dead holder's lock was free at once"
    state = lab.load_state(key)
    assert state is not None and lab.healthy(state) and lab.agents_of(key) == [state.agent_pid]
    down = subprocess.run(
        [*COMMAND, "lab", "down", "--config", str(config_file)], capture_output=True, text=True, env=_env(), timeout=240
    )
    assert down.returncode == 0, down.stdout + down.stderr
    _nothing_left(key)


class TestAKilledHolder:
    """A class of their own, so `pytest -n --dist loadscope` runs these two runs beside the module's others."""

    @pytest.mark.parametrize("next_owner", ["run", "cleanup"])
    def test_a_killed_run_lets_the_waiting_owner_in_which_finishes_or_removes_what_it_left(
        self, config_file: Path, prefect_server: None, next_owner: str
    ) -> None:
        """The lease: a `peerprobe run` SIGKILLed mid-way while another command waits for the environment; the kernel
        lets go of the dead holder's lock, the waiter goes on at once (well before its timeout) and ends 0."""
        from prefect.settings import PREFECT_API_URL

        key = _key(config_file)
        api = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PEERPROBE_LOCK_TIMEOUT": "240"}
        first = _start("run", "--config", str(config_file), **api)
        try:
            _wait_for_holder(key, first)
            waiter = _start(next_owner, "--config", str(config_file), **api)
            deadline = time.monotonic() + 120
            while not net.list_namespaces(key) and time.monotonic() < deadline:  # mid-way: it has built something
                time.sleep(0.1)
            assert ownership.holder(key) is not None and ownership.holder(key).pid == first.pid  # type: ignore[union-attr]
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            out, err = waiter.communicate(timeout=240)
        finally:
            first.kill()
        assert waiter.returncode == 0, out + err
        assert "environment.busy" in err and f"(pid {first.pid} on " in err, "it waited for the killed run"
        _nothing_left(key)
