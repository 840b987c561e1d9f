"""Create clusters: each VPC's network, its cluster and nodes, and the peered EC2 web host."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from peerprobe import statedir
from peerprobe.backends.steps import EnvironmentRef, StepResult, VpcKey
from peerprobe.params import RunParameters
from tasks._backend import open_experiment
from tasks._faults import inject_fault
from tasks._policy import STEP_OPTIONS


@task(name="open-environment", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def open_environment(parameters: RunParameters, run_id: str) -> EnvironmentRef:
    """The environment's reference for this run. An environment whose resources are gone (never made,
    cleaned up, or lost with moto: what is left of it is removed first) gets a new generation, so no step
    result of a dead one is reused; a retry of a run that kept what it made finds it and reuses the completed steps."""
    ref = EnvironmentRef(backend=parameters.backend, config=parameters.config, run_id=run_id)
    generation = statedir.generation(ref.key)
    experiment = open_experiment(ref, step="open-environment")
    if experiment.lost():
        # Its record names ids AWS no longer has (moto restarted): remove what is left of it (the stale record,
        # the lab's namespaces and agent) so the run builds it anew instead of stumbling over dead ids.
        experiment.remove_lost()
        generation = statedir.generation(ref.key)
    elif not experiment.exists():
        generation = statedir.advance_generation(ref.key)
    return ref.model_copy(update={"generation": generation})


@task(name="create-network", task_run_name="create-network-{vpc}", **STEP_OPTIONS)
def create_network(ref: EnvironmentRef, vpc: VpcKey) -> StepResult:
    inject_fault("create-network")
    return open_experiment(ref, step="create-network").create_network(vpc)


@task(name="create-cluster", task_run_name="create-cluster-{vpc}", **STEP_OPTIONS)
def create_cluster(ref: EnvironmentRef, vpc: VpcKey) -> StepResult:
    inject_fault("create-cluster")
    return open_experiment(ref, step="create-cluster").create_cluster(vpc)


@task(name="create-peer-host", task_run_name="create-peer-host", **STEP_OPTIONS)
def create_peer_host(ref: EnvironmentRef) -> StepResult:
    inject_fault("create-peer-host")
    return open_experiment(ref, step="create-peer-host").create_peer_host()
