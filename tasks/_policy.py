"""How every step runs: retried only when what failed is transient (backoff and jitter), its result persisted
as JSON, cached by keys that carry the environment's generation, and reported to the progress listeners."""

from __future__ import annotations

from typing import Any

from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import TransientError
from tasks._progress import finished
from tasks._storage import result_storage


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: only what is transient (throttling, converging, timeouts on the wire)."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # a permanent error: retrying would only repeat it
        return False
    return False


def step_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Setup steps: the same environment, generation, config and arguments hit the cache, so a retried
    run skips what completed; a cleanup advances the generation, so nothing dead is ever reused."""
    ref: EnvironmentRef = parameters["ref"]
    rest = ":".join(f"{k}={v}" for k, v in sorted(parameters.items()) if k != "ref")
    return f"{ref.key}:g{ref.generation}:{ref.fingerprint()}:{context.task.name}:{rest}"


def phase_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Phase steps (SNAT, probes): also bound to the flow run, so a new run probes afresh and a probe
    result is never reused across phases or runs; a retry of the same run reuses what it completed."""
    return f"{step_key(context, parameters)}:run={context.task_run.flow_run_id}"


STEP_OPTIONS: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient,
    "persist_result": True,
    "result_serializer": "json",
    "cache_key_fn": step_key,
    "on_completion": [finished],
    "on_failure": [finished],
}
if (_storage := result_storage()) is not None:
    STEP_OPTIONS["result_storage"] = _storage
