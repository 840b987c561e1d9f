"""Start the agent daemon detached and wait until it listens; have it reload its spec (SIGHUP) and wait for
its answer; stop it with SIGTERM, bounded, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import structlog

from peerprobe.backends.lab.agent import spec as agent_spec
from peerprobe.errors import InfrastructureError, WaitTimeoutError
from peerprobe.wait import LAB, until

MODULE = "peerprobe.backends.lab.agent"

log = structlog.get_logger()


def start_agent(spec_path: Path, *, log_path: Path, ready_timeout: float = 10.0, pid_path: Path | None = None) -> int:
    """Start `python -m peerprobe.backends.lab.agent serve` in a new session; return its pid once it listens.

    Raises InfrastructureError (with the agent's own message) if it exits first, WaitTimeoutError if it is
    not ready within `ready_timeout` seconds (it is then killed).
    """
    read_fd, write_fd = os.pipe()
    try:
        process = _spawn(spec_path, log_path=log_path, ready_fd=write_fd, pid_path=pid_path)
    finally:
        os.close(write_fd)  # only the child holds the write end now, so its exit means EOF here
    try:
        message = _read_ready(read_fd, timeout=ready_timeout)
    finally:
        os.close(read_fd)
    _check_ready(process, message, log_path=log_path, timeout=ready_timeout)
    log.info("agent.started", pid=process.pid, spec=str(spec_path), log=str(log_path))
    return process.pid


def reload_agent(pid: int, spec_path: Path, *, timeout: float = 10.0) -> None:
    """Have the running agent serve what `spec_path` names now (SIGHUP), and wait until it says it does.

    Raises InfrastructureError if the agent is gone, exits or cannot bind a listener, WaitTimeoutError if it
    does not answer within `timeout` seconds.
    """
    if not is_agent(pid):
        raise _gone(pid, spec_path)
    wanted = agent_spec.digest(spec_path.read_bytes())
    agent_spec.status_path(spec_path).unlink(missing_ok=True)  # an earlier answer to this same spec is not one
    os.kill(pid, signal.SIGHUP)
    until(
        lambda: not is_agent(pid) or _answered(spec_path, wanted),
        kind="lab agent",
        resource_id=f"pid {pid}",
        goal=f"serving {spec_path.name} after SIGHUP",
        timeout_seconds=timeout,
        timing=LAB,
    )
    status = agent_spec.read_status(spec_path)
    if status is None or status.digest != wanted:
        raise _gone(pid, spec_path)
    if status.message != "ready":
        raise InfrastructureError(
            f"lab agent pid {pid} could not serve {spec_path}: {status.message.removeprefix('error: ')}",
            resource="agent",
            resource_id=str(pid),
            state="reload failed",
        )
    log.info("agent.reloaded", pid=pid, spec=str(spec_path))


def _answered(spec_path: Path, wanted: str) -> bool:
    status = agent_spec.read_status(spec_path)
    return status is not None and status.digest == wanted


def _gone(pid: int, spec_path: Path) -> InfrastructureError:
    return InfrastructureError(
        f"lab agent pid {pid} is not running to reload {spec_path}",
        resource="agent",
        resource_id=str(pid),
        state="exited",
    )


def stop_agent(pid: int, *, timeout: float = 5.0) -> bool:
    """SIGTERM the agent and wait for it to exit; SIGKILL after `timeout`. False if it was not running.

    A pid that now belongs to another program (the agent died and the pid was reused) is left alone.
    """
    if not is_agent(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout=timeout):
        log.warning("agent.kill", pid=pid, reason="no exit after SIGTERM", timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, timeout=timeout)
    log.info("agent.stopped", pid=pid)
    return True


def is_agent(pid: int) -> bool:
    """True when `pid` is a live agent process (its command line names the agent module)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and MODULE.encode() in cmdline.split(b"\0")


def running_agents() -> list[tuple[int, Path]]:
    """Every live agent on this machine with the spec file it serves (absolute), read from /proc: what finds an
    agent whose environment's state is unreadable or gone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            spec = Path(argv[argv.index(b"--spec") + 1].decode()) if MODULE.encode() in argv else None
            if spec is not None and not spec.is_absolute():
                spec = Path(os.readlink(entry / "cwd")) / spec
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
        if spec is not None and is_agent(int(entry.name)):
            found.append((int(entry.name), spec))
    return found


def _spawn(spec_path: Path, *, log_path: Path, ready_fd: int, pid_path: Path | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", MODULE, "serve", "--spec", str(spec_path), "--ready-fd", str(ready_fd)]
    if pid_path is not None:
        command += ["--pid-file", str(pid_path)]
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Owner-only, appended to, never through a symlink planted in the state directory.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(os.open(log_path, flags, 0o600), "ab") as log_file:
        # A new session detaches the agent from our terminal and process group: it outlives this command.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(ready_fd,),
        )


def _read_ready(fd: int, *, timeout: float) -> str | None:
    """The agent's readiness line, "" if it closed the pipe without one, None if the deadline passed."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _check_ready(process: subprocess.Popen[bytes], message: str | None, *, log_path: Path, timeout: float) -> None:
    if message == "ready":
        return
    if message is None:
        stop_agent(process.pid, timeout=2)
        raise WaitTimeoutError(
            f"lab agent pid {process.pid} did not listen within {timeout:g}s; see {log_path}",
            resource="agent",
            resource_id=str(process.pid),
            state="starting",
        )
    code = _exit_code(process)
    reason = message.removeprefix("error: ") or f"exited with code {code}"
    raise InfrastructureError(
        f"lab agent pid {process.pid} failed to start: {reason}; see {log_path}",
        resource="agent",
        resource_id=str(process.pid),
        state="exited",
    )


def _exit_code(process: subprocess.Popen[bytes]) -> int | None:
    try:
        return process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return None


def _wait_exit(pid: int, *, timeout: float) -> bool:
    """Wait on a pidfd, which becomes readable when the process exits (our child or not); True if it did."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        exited = bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)
    if exited:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it was our own child, so no zombie is left
    return exited
