"""The flow's steps in its order, one after another, every phase probed, then cleanup; no Prefect: what the tests
of each behaviour's fix run (the whole flow runs in tests/flows/test_aws_flow.py)."""

from __future__ import annotations

from peerprobe import run
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment, preflight
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.config import Phase, PhaseSnat
from peerprobe.errors import PeerprobeError
from peerprobe.probes.plan import plan, vantages
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell
from tests.backends.aws.world.world import REGION, World


def drive(world: World) -> list[str]:
    """What is wrong with one whole run and its cleanup (World.judge), or the step that failed and why."""
    phases: dict[str, list[Cell]] = {}
    try:
        preflight(world.config, clients=ClientFactory(REGION), creating=True)
        ref = EnvironmentRef(backend="aws", config=world.config, run_id="drive")
        experiment = AwsExperiment(ref, clients=ClientFactory(REGION))
        for vpc in VPC_KEYS:
            experiment.create_network(vpc)
        for vpc in VPC_KEYS:
            experiment.create_cluster(vpc)
        experiment.create_peer_host()
        experiment.peer_vpcs()
        experiment.deploy_apps()
        experiment.expose_services()
        topology = experiment.topology()
        for phase in world.config.phases:
            phases[phase.name] = measure(experiment, phase, topology)
        experiment.cleanup()
    except PeerprobeError as error:
        return [f"{type(error).__name__}: {error}"]
    return world.judge(phases)


def measure(experiment: AwsExperiment, phase: Phase, topology: Topology) -> list[Cell]:
    """One phase as the flow's `measure` does it: SNAT set and rolled out on both clusters, every vantage probed."""
    applied = {
        vpc: experiment.wait_snat(vpc, experiment.set_snat(vpc, getattr(phase.snat, vpc)), timeout_seconds=60)
        for vpc in VPC_KEYS
    }
    snat = PhaseSnat(**applied)
    cells: list[Cell] = []
    for vantage in vantages(topology):
        specs = [spec for spec in plan(topology) if spec.vantage == vantage]
        results = experiment.probe(vantage, specs, timeout_seconds=experiment.config.probe.timeout_seconds)
        found = dict(zip(specs, results, strict=True))
        cells += run.judge_phase(experiment.config, topology, name=phase.name, snat=snat, results=found)
    return cells
