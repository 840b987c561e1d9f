"""Create clusters: each VPC's network, its cluster and nodes, and the peered EC2 web host."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult, VpcKey
from tasks._common import STEP_OPTIONS, inject_fault, open_experiment


@task(name="create-network", task_run_name="create-network-{vpc}", timeout_seconds=900, **STEP_OPTIONS)
def create_network(ref: EnvironmentRef, vpc: VpcKey) -> StepResult:
    inject_fault("create-network")
    return open_experiment(ref).create_network(vpc)


@task(name="create-cluster", task_run_name="create-cluster-{vpc}", timeout_seconds=2400, **STEP_OPTIONS)
def create_cluster(ref: EnvironmentRef, vpc: VpcKey) -> StepResult:
    inject_fault("create-cluster")
    return open_experiment(ref).create_cluster(vpc)


@task(name="create-peer-host", timeout_seconds=900, **STEP_OPTIONS)
def create_peer_host(ref: EnvironmentRef) -> StepResult:
    inject_fault("create-peer-host")
    return open_experiment(ref).create_peer_host()
