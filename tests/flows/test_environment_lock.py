"""The environment's lock as flows hold it (tasks/_ownership.py), against the session's Prefect test server: for
the aws backend a work pool's pods (here: a process with a state directory of its own) take turns through the
global concurrency limit, and whoever waits names the holder; a command and the flow it runs in its own
process are one owner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import get_client

from peerprobe import config, ownership
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import EnvironmentBusyError
from tasks._ownership import environment_lock

pytestmark = pytest.mark.lab  # the session's Prefect test server comes with the lab's fixtures
POD = """
import sys, time
from peerprobe import config, logs
from peerprobe.backends.steps import EnvironmentRef
from tasks._ownership import environment_lock
logs.configure(0)
ref = EnvironmentRef(backend="aws", config=config.from_mapping({"name": sys.argv[1]}), run_id="pod")
with environment_lock(ref, command="flow drift-check", timeout_seconds=0):
    print("held", flush=True)
    time.sleep(60)
"""


def aws_ref(name: str) -> EnvironmentRef:
    return EnvironmentRef(backend="aws", config=config.from_mapping({"name": name}), run_id="test")


@pytest.fixture
def other_pod(prefect_server: None, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another machine of the work pool: its own state directory, the same Prefect server; it holds lock-pod."""
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {"PEERPROBE_STATE_DIR": str(tmp_path / "pod"), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    pod = subprocess.Popen([sys.executable, "-c", POD, "lock-pod"], stdout=subprocess.PIPE, text=True, env=env)
    assert pod.stdout is not None and pod.stdout.readline().strip() == "held"
    yield pod
    pod.terminate()
    pod.wait()


def test_an_aws_environment_held_on_another_machine_is_busy_naming_the_holder(
    other_pod: subprocess.Popen[str],
) -> None:
    started = time.monotonic()
    with (
        pytest.raises(EnvironmentBusyError) as refused,
        environment_lock(aws_ref("lock-pod"), command="x", timeout_seconds=1),
    ):
        pass
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert "holds its global concurrency limit peerprobe-env-aws-lock-pod-cn-northwest-1" in message
    assert f"`flow drift-check` (pid {other_pod.pid} on " in message, "named from the holder's record on the server"
    assert ownership.holder("aws:lock-pod:cn-northwest-1") is None, "and this machine's lock was let go again"


def test_the_global_limit_is_free_again_once_its_holder_lets_go(prefect_server: None) -> None:
    ref = aws_ref("lock-free")
    name = ownership.lock_name(ref.key)
    with environment_lock(ref, command="first", timeout_seconds=0), get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 1
        assert client.read_variable_by_name(name) is not None, "the holder is on record for other machines"
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0
        assert client.read_variable_by_name(name) is None


@pytest.mark.parametrize("backend", ["lab", "aws"])
def test_a_command_and_the_flow_it_runs_in_its_process_are_one_owner(prefect_server: None, backend: str) -> None:
    ref = aws_ref("lock-nested").model_copy(update={"backend": backend})
    with (
        ownership.hold(ref.key, "peerprobe run", timeout_seconds=0),  # what the command takes
        environment_lock(ref, command="flow experiment", timeout_seconds=0) as lease,  # the flow: no wait
        environment_lock(ref, command="flow cleanup", timeout_seconds=0),  # and again, deeper
    ):
        assert not lease.outermost
