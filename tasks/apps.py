"""Deploy apps: the echo server and busyboxes in the clusters, the EC2 web server, the workshop's nginx."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS


@task(name="deploy-apps", task_run_name="deploy-apps", **STEP_OPTIONS)
def deploy_apps(ref: EnvironmentRef) -> StepResult:
    inject_fault("deploy-apps")
    return open_experiment(ref, step="deploy-apps").deploy_apps()
