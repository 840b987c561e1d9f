"""The test-only fault switches: PEERPROBE_FAIL_ONCE names a step that fails once per flow run (tests of resume);
PEERPROBE_FAULT=KIND@STEP does something worse at that step (kills moto or the Prefect server, or signals this
process), for the fault campaign (tests/test_fault_campaign.py, bench/faults.py)."""

from __future__ import annotations

import contextlib
import os
import signal

from prefect.context import TaskRunContext

from peerprobe import daemon, statedir
from peerprobe.errors import InfrastructureError
from peerprobe.wait import until

FAULT_ENV = "PEERPROBE_FAIL_ONCE"
KILL_ENV = "PEERPROBE_FAULT"
# What each kind does; the step then carries on (against a dead service) unless this process is gone.
KINDS = ("kill-moto", "kill-prefect", "sigint", "sigkill")
_SERVICES = {"kill-moto": "moto.json", "kill-prefect": "prefect-server.json"}


def inject_fault(step: str) -> None:
    """Fail `step` once per flow run when PEERPROBE_FAIL_ONCE names it; or, when PEERPROBE_FAULT is KIND@`step`,
    do KIND once per flow run (tests of failure and resume)."""
    kind, _, at = os.environ.get(KILL_ENV, "").partition("@")
    if at == step and kind in KINDS and _first(f"{kind}-{step}"):
        _do(kind)
    if os.environ.get(FAULT_ENV) == step and _first(step):
        raise InfrastructureError(f"injected fault in step {step} ({FAULT_ENV})", resource="step", resource_id=step)


def _first(name: str) -> bool:
    """Whether this flow run has not had this fault yet (and now has)."""
    context = TaskRunContext.get()
    run = context.task_run.flow_run_id if context else "none"
    marker = statedir.state_dir() / "faults" / f"{run}-{name}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two concurrent tasks of the same step (both networks), exactly one takes the fault.
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def _do(kind: str) -> None:
    if kind in _SERVICES:
        _kill_service(_SERVICES[kind])
    elif kind == "sigint":
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the main thread gets KeyboardInterrupt
    else:
        os.kill(os.getpid(), signal.SIGKILL)


def _kill_service(state_file: str) -> None:
    """SIGKILL the recorded service's process group (a crash: no shutdown of its own), and wait until it is gone."""
    recorded = statedir.read_json(state_file) or {}
    pid = recorded.get("pid")
    if not isinstance(pid, int):
        raise InfrastructureError(f"fault: no {state_file} to kill", resource="fault", resource_id=state_file)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # started as a session leader (daemon.spawn): its group is its children too
    until(
        lambda: not daemon.pid_alive(pid),
        kind="pid",
        resource_id=str(pid),
        goal="gone",
        timeout_seconds=10,
        timing=daemon.STARTING,
    )
