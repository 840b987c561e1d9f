"""The test-only fault switch: PEERPROBE_FAIL_ONCE names a step that fails once per flow run (tests of resume)."""

from __future__ import annotations

import os

from prefect.context import TaskRunContext

from peerprobe import statedir
from peerprobe.errors import InfrastructureError

FAULT_ENV = "PEERPROBE_FAIL_ONCE"


def inject_fault(step: str) -> None:
    """Fail `step` once per flow run when PEERPROBE_FAIL_ONCE names it (tests of failure and resume)."""
    if os.environ.get(FAULT_ENV) != step:
        return
    context = TaskRunContext.get()
    run = context.task_run.flow_run_id if context else "none"
    marker = statedir.state_dir() / "faults" / f"{run}-{step}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two concurrent tasks of the same step (both networks), exactly one takes the fault.
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    raise InfrastructureError(f"injected fault in step {step} ({FAULT_ENV})", resource="step", resource_id=step)
