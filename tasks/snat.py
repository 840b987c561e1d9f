"""Set aws-node's SNAT environment for a phase (absolute) and wait until every node has the rules."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from peerprobe.backends.steps import EnvironmentRef, VpcKey
from peerprobe.config import Snat
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS, phase_key

ROLLOUT_TIMEOUT_SECONDS = 300  # an aws-node DaemonSet rollout on a real cluster takes a minute or two


@task(
    name="set-snat",
    task_run_name="set-snat-{vpc}-{phase}",
    **(STEP_OPTIONS | {"cache_key_fn": phase_key}),
)
def set_snat(ref: EnvironmentRef, vpc: VpcKey, phase: str, snat: Snat | None) -> Snat:
    """Returns the settings read back from the live aws-node environment, not what was asked for; None (a phase
    without snat on an attached cluster) leaves aws-node as found."""
    inject_fault("set-snat")
    experiment = open_experiment(ref, step="set-snat", phase=phase)
    experiment.set_snat(vpc, snat)
    return experiment.wait_snat(vpc, snat, timeout_seconds=ROLLOUT_TIMEOUT_SECONDS)


@task(name="read-snat", task_run_name="read-snat-{vpc}", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def read_snat(ref: EnvironmentRef, vpc: VpcKey) -> Snat:
    """aws-node's SNAT settings as they are now: the environment may have changed behind our back."""
    return open_experiment(ref, step="read-snat").read_snat(vpc)


@task(name="restore-aws-node", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def restore_aws_node(ref: EnvironmentRef) -> dict[str, list[str]]:
    """Attach mode: each attached cluster's aws-node back to what was found, read back (design.md)."""
    return open_experiment(ref, step="restore-aws-node").restore_aws_node()
