"""Expose the echo server as every Service type: ClusterIP, NodePort, LoadBalancer, internal NLB, headless."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult
from tasks._common import STEP_OPTIONS, inject_fault, open_experiment


@task(name="expose-services", task_run_name="expose-services", timeout_seconds=1200, **STEP_OPTIONS)
def expose_services(ref: EnvironmentRef) -> StepResult:
    inject_fault("expose-services")
    return open_experiment(ref, step="expose-services").expose_services()
