"""The lifecycle of the local daemons that outlive a command (the Prefect server, moto): a free loopback port,
a detached start with its log in the state directory, the wait until it answers, and its stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import structlog

from peerprobe import statedir
from peerprobe.errors import InfrastructureError, WaitTimeoutError
from peerprobe.wait import Waits, until

log = structlog.get_logger()
HOST = "127.0.0.1"
STARTING = Waits(delay=0.1, max_delay=0.5, max_attempts=1000)  # a daemon answers within seconds of starting


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) != 0


def log_path(log_name: str) -> Path:
    return statedir.state_dir() / log_name


def spawn(command: Sequence[str], *, log_name: str, env: Mapping[str, str]) -> int:
    """Start `command` detached (a new session: it outlives this command and our terminal), its output
    appended to the state directory's `log_name`; its pid, which is also its process group."""
    with open(log_path(log_name), "ab") as output:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env),
        )
    log.info("daemon.started", command=command[0], pid=process.pid, log=log_name)
    return process.pid


def pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reap it first if it is our own exited child, else a zombie would look alive.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_started(pid: int, answers: Callable[[], bool], *, what: str, timeout: float, log_name: str) -> None:
    """Until the daemon answers; an error naming its log when it exits first, and it is stopped when it does
    not answer in time."""

    def settled() -> bool:
        if answers():
            return True
        if not pid_alive(pid):
            raise InfrastructureError(
                f"{what} (pid {pid}) exited while starting; see {log_path(log_name)}",
                resource=what,
                resource_id=str(pid),
                state="exited",
            )
        return False

    try:
        until(
            settled, kind=what, resource_id=f"(pid {pid})", goal="answering", timeout_seconds=timeout, timing=STARTING
        )
    except WaitTimeoutError:
        terminate(pid, timeout=5)
        raise


def terminate(pid: int, *, timeout: float) -> None:
    """SIGTERM to its process group, then SIGKILL once `timeout` has passed."""
    _signal_group(pid, signal.SIGTERM)
    try:
        until(
            lambda: not pid_alive(pid),
            kind="pid",
            resource_id=str(pid),
            goal="gone",
            timeout_seconds=timeout,
            timing=STARTING,
        )
    except WaitTimeoutError:
        _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Started as a session leader, its pid is its process group: this also ends its children.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
