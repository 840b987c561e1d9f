"""Peer the VPCs (routes both ways) and open VPC1's nodes to the peer CIDR for the probes."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS


@task(name="peer-vpcs", task_run_name="peer-vpcs", **STEP_OPTIONS)
def peer_vpcs(ref: EnvironmentRef) -> StepResult:
    inject_fault("peer-vpcs")
    return open_experiment(ref, step="peer-vpcs").peer_vpcs()
