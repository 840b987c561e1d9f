"""Peer the VPCs (routes both ways) and open VPC1's nodes to the peer CIDR for the probes."""

from __future__ import annotations

from prefect import task

from peerprobe.backends.steps import EnvironmentRef, StepResult
from tasks._common import STEP_OPTIONS, inject_fault, open_experiment


@task(name="peer-vpcs", task_run_name="peer-vpcs", timeout_seconds=600, **STEP_OPTIONS)
def peer_vpcs(ref: EnvironmentRef) -> StepResult:
    inject_fault("peer-vpcs")
    return open_experiment(ref, step="peer-vpcs").peer_vpcs()


@task(name="open-security-groups", task_run_name="open-security-groups", timeout_seconds=300, **STEP_OPTIONS)
def open_security_groups(ref: EnvironmentRef) -> StepResult:
    inject_fault("open-security-groups")
    return open_experiment(ref, step="open-security-groups").open_security_groups()
