"""Expose the echo server as every Service type: ClusterIP, NodePort, LoadBalancer, internal NLB, headless."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS


@task(name="expose-services", task_run_name="expose-services", **STEP_OPTIONS)
def expose_services(ref: EnvironmentRef) -> StepResult:
    inject_fault("expose-services")
    return open_experiment(ref, step="expose-services").expose_services()
