"""One owner per environment (peerprobe/ownership.py), between real processes: a second owner waits for the
first, gives up after the timeout naming the holder, and is never blocked by a holder that was killed."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe import ownership, statedir
from peerprobe.errors import EnvironmentBusyError
from tests.lock_holder import start_holder

KEY = "lab:owned:cn-northwest-1"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    for name in (ownership.TIMEOUT_ENV, ownership.DRIFT_TIMEOUT_ENV):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def holder() -> Iterator[object]:
    """holder(seconds, command=..., flow_run_id=...) -> the process, once it holds the lock; killed afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(seconds: float, command: str = "peerprobe lab up", flow_run_id: str = "") -> subprocess.Popen[str]:
        started.append(start_holder(KEY, seconds, command=command, flow_run_id=flow_run_id))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_second_owner_waits_until_the_first_lets_go(holder) -> None:  # type: ignore[no-untyped-def]
    first = holder(1.0)
    started = time.monotonic()
    with ownership.hold(KEY, "peerprobe run", timeout_seconds=30) as lease:
        waited = time.monotonic() - started
        assert lease.outermost and first.poll() is not None, "it got the lock only once the first had exited"
    assert 0.5 < waited < 5


def test_a_waiter_gives_up_after_the_timeout_naming_the_holder(holder) -> None:  # type: ignore[no-untyped-def]
    first = holder(30.0, command="peerprobe lab up", flow_run_id="0f0e0d0c-0000-4000-8000-000000000001")
    started = time.monotonic()
    with pytest.raises(EnvironmentBusyError) as refused:
        ownership.acquire(KEY, "peerprobe lab up", timeout_seconds=1)
    assert 0.9 < time.monotonic() - started < 3
    message = str(refused.value)
    assert f"environment {KEY} is busy: `peerprobe lab up` (pid {first.pid} on {socket.gethostname()}" in message
    assert "flow run 0f0e0d0c-0000-4000-8000-000000000001, since 20" in message
    assert "gave up after 1s (PEERPROBE_LOCK_TIMEOUT); nothing was created or changed" in message
    assert refused.value.exit_code == 3


def test_a_killed_holder_does_not_block_the_next_owner(holder) -> None:  # type: ignore[no-untyped-def]
    first = holder(300.0)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    started = time.monotonic()
    with ownership.hold(KEY, "peerprobe cleanup", timeout_seconds=5):
        assert time.monotonic() - started < 1, "the kernel let go of the dead holder's lock"
        recorded = ownership.holder(KEY)
        assert recorded is not None and (recorded.command, recorded.pid) == ("peerprobe cleanup", os.getpid())


def test_the_lock_is_reentrant_within_a_process_and_held_until_the_outermost_release(holder) -> None:  # type: ignore[no-untyped-def]
    outer = ownership.acquire(KEY, "peerprobe run", timeout_seconds=0)
    inner = ownership.acquire(KEY, "flow experiment", flow_run_id="run-1", timeout_seconds=0)  # no wait: ours
    recorded = ownership.holder(KEY)
    assert not inner.outermost and recorded is not None
    assert (recorded.command, recorded.flow_run_id) == ("peerprobe run", "run-1"), "the flow's run id is added"
    inner.release()
    with pytest.raises(EnvironmentBusyError):  # another process still finds it held
        _acquire_elsewhere()
    outer.release()
    assert ownership.holder(KEY) is None, "the record goes with the lock"
    _acquire_elsewhere()


def _acquire_elsewhere() -> None:
    code = f"from peerprobe import ownership; ownership.acquire({KEY!r}, 'another', timeout_seconds=0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode:
        raise EnvironmentBusyError(result.stderr[-300:])


def test_other_environments_are_not_blocked(holder) -> None:  # type: ignore[no-untyped-def]
    holder(30.0)
    with ownership.hold("lab:other:cn-northwest-1", "peerprobe run", timeout_seconds=0):
        pass


def test_the_lock_file_is_owner_only_and_a_planted_symlink_is_not_followed(state: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep")
    locks = state / ownership.LOCKS
    locks.mkdir()
    (locks / f"{ownership.lock_name(KEY)}.lock").symlink_to(outside)
    with ownership.hold(KEY, "peerprobe run", timeout_seconds=0):
        lock = locks / f"{ownership.lock_name(KEY)}.lock"
        assert not lock.is_symlink() and stat.S_IMODE(lock.stat().st_mode) == 0o600
        record = locks / f"{ownership.lock_name(KEY)}.holder.json"
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert outside.read_text() == "keep"


def test_the_timeout_is_peerprobe_lock_timeout_then_the_drift_checks_old_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ownership.lock_timeout() == 120
    monkeypatch.setenv(ownership.DRIFT_TIMEOUT_ENV, "7")
    assert ownership.lock_timeout() == 7
    monkeypatch.setenv(ownership.TIMEOUT_ENV, "3")
    assert ownership.lock_timeout() == 3


def test_the_lock_name_is_one_slug_for_the_file_and_the_global_limit() -> None:
    assert ownership.lock_name("lab:Workshop:cn-northwest-1") == "peerprobe-env-lab-workshop-cn-northwest-1"
