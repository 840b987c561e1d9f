"""One owner per environment (design.md "Ownership of an environment"): an flock on a file in the state directory,
held for the whole command or flow, and a holder record beside it naming who holds it. Re-entrant within one
process (a command and the flow it runs in that process are one owner); the kernel lets go of a dead holder's flock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import structlog

from peerprobe import environ, statedir
from peerprobe.errors import EnvironmentBusyError, WaitTimeoutError
from peerprobe.wait import Waits

TIMEOUT_ENV = "PEERPROBE_LOCK_TIMEOUT"
# The drift check's own setting from before every command took the lock: still read when TIMEOUT_ENV is unset.
DRIFT_TIMEOUT_ENV = "PEERPROBE_DRIFT_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 120.0
LOCKS = "locks"
# A waiter checks often at first (a short command ends in well under a second), then every two seconds.
POLL = Waits(delay=0.25, max_delay=2.0, max_attempts=1_000_000)
_SLUG = re.compile(r"[^a-z0-9]+")

log = structlog.get_logger()


def slug(environment: str) -> str:
    """``lab:Workshop:cn-northwest-1`` -> ``lab-workshop-cn-northwest-1``."""
    return _SLUG.sub("-", environment.lower()).strip("-")


def lock_name(environment: str) -> str:
    """``peerprobe-env-lab-workshop-cn-northwest-1``: the lock file's name in the state directory and, for the
    aws backend, the Prefect global concurrency limit's (tasks/_ownership.py)."""
    return f"peerprobe-env-{slug(environment)}"[:120]


def lock_timeout() -> float:
    """How long a second owner waits: PEERPROBE_LOCK_TIMEOUT, else PEERPROBE_DRIFT_LOCK_TIMEOUT, else 120 s."""
    for name in (TIMEOUT_ENV, DRIFT_TIMEOUT_ENV):
        raw = os.environ.get(name, "")
        if raw:
            return environ.seconds(name, raw)
    return DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Holder:
    """Who owns an environment: what a waiter that gives up names."""

    environment: str
    command: str
    pid: int
    host: str
    since: str
    flow_run_id: str | None = None

    def describe(self) -> str:
        run = f", flow run {self.flow_run_id}" if self.flow_run_id else ""
        return f"`{self.command}` (pid {self.pid} on {self.host}{run}, since {self.since})"

    @classmethod
    def from_record(cls, raw: object) -> Holder | None:
        """The holder a record names; None for anything that is not a whole record."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})
        except TypeError:  # fields missing
            return None


def holder(environment: str) -> Holder | None:
    """The holder record of the environment's lock, None when there is none or it cannot be read."""
    return Holder.from_record(statedir.read_json(_holder_name(environment)))


@dataclass
class _Held:
    fd: int
    depth: int
    holder: Holder


_held: dict[str, _Held] = {}
_registry = threading.Lock()
# A forked child inherits the parent's flock with its fd; it must never take that for its own, or release it.
os.register_at_fork(after_in_child=_held.clear)


@dataclass(frozen=True)
class Lease:
    """This process's hold on one environment; `outermost` when this call took the lock (not a re-entry)."""

    environment: str
    outermost: bool

    def release(self) -> None:
        _release(self.environment)


def acquire(
    environment: str, command: str, *, flow_run_id: str | None = None, timeout_seconds: float | None = None
) -> Lease:
    """Take the environment's lock, waiting up to the timeout (PEERPROBE_LOCK_TIMEOUT by default) for another
    owner; past it EnvironmentBusyError (exit 3) naming the holder. A re-entry from this process (the flow a
    command runs) takes nothing and only adds its flow run id to the holder record."""
    if _reenter(environment, flow_run_id):
        return Lease(environment, outermost=False)
    wait = lock_timeout() if timeout_seconds is None else timeout_seconds
    fd = statedir.open_private(statedir.state_dir() / LOCKS / f"{lock_name(environment)}.lock")
    try:
        if not _try_lock(fd):
            _wait_for(fd, environment, wait)
    except BaseException:
        os.close(fd)
        raise
    mine = Holder(environment, command, os.getpid(), socket.gethostname(), _now(), flow_run_id)
    statedir.write_json(_holder_name(environment), asdict(mine))
    with _registry:
        _held[environment] = _Held(fd, 1, mine)
    log.info("environment.locked", environment=environment, command=command, flow_run_id=flow_run_id)
    return Lease(environment, outermost=True)


@contextlib.contextmanager
def hold(
    environment: str, command: str, *, flow_run_id: str | None = None, timeout_seconds: float | None = None
) -> Iterator[Lease]:
    """`acquire` for the length of a block."""
    lease = acquire(environment, command, flow_run_id=flow_run_id, timeout_seconds=timeout_seconds)
    try:
        yield lease
    finally:
        lease.release()


def _reenter(environment: str, flow_run_id: str | None) -> bool:
    with _registry:
        held = _held.get(environment)
        if held is None:
            return False
        held.depth += 1
        if flow_run_id and held.holder.flow_run_id != flow_run_id:
            held.holder = replace(held.holder, flow_run_id=flow_run_id)
            statedir.write_json(_holder_name(environment), asdict(held.holder))
        return True


def _release(environment: str) -> None:
    with _registry:
        held = _held[environment]
        held.depth -= 1
        if held.depth:
            return
        del _held[environment]
    statedir.remove(_holder_name(environment))  # before unlocking: the next owner writes its own
    fcntl.flock(held.fd, fcntl.LOCK_UN)
    os.close(held.fd)
    log.info("environment.unlocked", environment=environment)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_for(fd: int, environment: str, wait: float) -> None:
    """Poll the lock until it is free (the kernel frees it when its holder exits or dies), or give up."""
    current = holder(environment)
    log.warning(
        "environment.busy",
        environment=environment,
        holder=current.describe() if current else "unknown",
        waiting_up_to_seconds=wait,
    )
    try:
        POLL.poll(
            lambda: True if _try_lock(fd) else None,
            kind="environment",
            resource_id=environment,
            goal="its owner lets go",
            max_seconds=wait,
        )
    except WaitTimeoutError:
        raise _busy(environment, wait) from None


def _busy(environment: str, wait: float) -> EnvironmentBusyError:
    current = holder(environment)
    who = current.describe() if current is not None else "a process that has not recorded itself yet"
    return EnvironmentBusyError(
        f"environment {environment} is busy: {who} holds it; gave up after {wait:g}s ({TIMEOUT_ENV}); "
        "nothing was created or changed",
        resource="environment lock",
        resource_id=lock_name(environment),
        state="held",
    )


def _holder_name(environment: str) -> str:
    return f"{LOCKS}/{lock_name(environment)}.holder.json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
