"""Cleanup: remove an environment, from its persisted state or from tags alone; absent is success. It owns the
environment while it removes it."""

from __future__ import annotations

from prefect import flow, runtime

from peerprobe import statedir
from peerprobe.backends.steps import EnvironmentRef, StepResult
from peerprobe.params import RunParameters, check_served
from tasks._ownership import environment_lock
from tasks.cleanup import cleanup_environment


@flow(name="cleanup", persist_result=True, result_serializer="json")
def cleanup(parameters: RunParameters | None = None) -> StepResult:
    parameters = parameters or RunParameters()
    check_served(parameters)
    ref = EnvironmentRef(
        backend=parameters.backend, config=parameters.config, run_id=str(runtime.flow_run.id or "local")
    )
    with environment_lock(ref, command="flow cleanup"):
        return cleanup_environment(ref.model_copy(update={"generation": statedir.generation(ref.key)}))
