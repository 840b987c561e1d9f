"""Cleanup: remove everything of the environment in dependency order, verify the opened rules are gone."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS, phase_key


@task(name="cleanup", task_run_name="cleanup", **(STEP_OPTIONS | {"cache_key_fn": phase_key}))
def cleanup_environment(ref: EnvironmentRef) -> StepResult:
    """Idempotent: removing an absent environment succeeds. Advances the environment's generation."""
    inject_fault("cleanup")
    return open_experiment(ref, step="cleanup").cleanup()
