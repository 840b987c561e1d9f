"""The experiment: create clusters (meanwhile peer the VPCs and open the peer rules) -> deploy apps ->
expose services -> probe (baseline) -> for each further phase: set SNAT, reprobe -> cleanup. Independent
steps run concurrently; each is an idempotent cached task, so a retry continues from the step that failed.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import structlog
from prefect import flow, runtime
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, wait

from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.config import Phase, PhaseSnat
from peerprobe.params import RunParameters, check_served
from peerprobe.probes.plan import vantages
from peerprobe.report import artifacts
from peerprobe.report.document import PhaseReport, Report
from peerprobe.topology import Topology
from tasks._ownership import environment_lock
from tasks.apps import deploy_apps
from tasks.cleanup import cleanup_environment
from tasks.cluster import create_cluster, create_network, create_peer_host, open_environment
from tasks.drift import keep_baseline, read_snapshot
from tasks.peering import peer_vpcs
from tasks.probe import probe_vantage, publish_phase, publish_report, read_config_diff, read_topology
from tasks.services import expose_services
from tasks.snat import restore_aws_node, set_snat

# The setup's stages in the order run_steps takes them, and each stage's tasks: the one count both progress
# displays derive from (the UI's artifact counts stages, the terminal's bar counts tasks).
SETUP_STAGES: tuple[tuple[str, ...], ...] = (
    (
        "create-network-vpc1",
        "create-network-vpc2",
        "create-cluster-vpc1",
        "create-cluster-vpc2",
        "create-peer-host",
        "peer-vpcs",
    ),
    ("deploy-apps",),
    ("expose-services", "read-topology"),
)
SETUP_TASKS = sum(len(stage) for stage in SETUP_STAGES)
log = structlog.get_logger()


@flow(name="experiment", persist_result=True, result_serializer="json")
def experiment(parameters: RunParameters | None = None) -> Report:
    """Run the whole experiment on one environment and return the judged report."""
    parameters = parameters or RunParameters()
    check_served(parameters)
    run_id = str(runtime.flow_run.id or "local")
    owned = EnvironmentRef(backend=parameters.backend, config=parameters.config, run_id=run_id)
    with environment_lock(owned, command="flow experiment"):  # before anything of the environment is touched
        ref = open_environment(parameters, run_id)
        if ref.config.attaching:  # a crash of an earlier run left an attached aws-node changed: as found first
            restore_aws_node(ref)
        progress = Progress(ref, total=len(SETUP_STAGES) + len(parameters.config.phases))
        try:
            report = run_steps(ref, progress)
        except BaseException:
            if parameters.cleanup_on_failure:
                cleanup_environment(ref)
            elif ref.config.attaching:  # what peerprobe made stays for a resume; aws-node goes back as found
                restore_after_failure(ref)
            raise
        finish(ref, parameters, report)
        return report


def restore_after_failure(ref: EnvironmentRef) -> None:
    """aws-node of the attached clusters as found after a failed step; should that fail too, the run still ends
    with the step's error (the restore's own failure is in the run's record, and cleanup or the next run retries
    it from the saved record)."""
    try:
        restore_aws_node(ref)
    except Exception:  # the failure being raised is the one the user must see first
        log.warning("attach.restore_after_failure_failed", environment=ref.key)


def run_steps(ref: EnvironmentRef, progress: Progress) -> Report:
    create_clusters(ref)
    progress.step()
    deploy_apps(ref)
    progress.step()
    expose_services(ref)
    progress.step()
    topology = read_topology(ref)
    phases = []
    for phase in ref.config.phases:
        phases.append(measure(ref, phase, topology))
        progress.step()
    report = Report(
        experiment=ref.config.name,
        backend=ref.backend,
        run_id=ref.run_id,
        topology=topology,
        phases=phases,
        config_diff=read_config_diff(ref) if ref.config.attaching else None,
    ).summarised()
    publish_report(ref, report)
    return report


def create_clusters(ref: EnvironmentRef) -> None:
    """Both VPCs' networks; then both clusters, the EC2 host and the peering, all at once."""
    settle([create_network.submit(ref, vpc) for vpc in VPC_KEYS])
    settle(
        [*(create_cluster.submit(ref, vpc) for vpc in VPC_KEYS), create_peer_host.submit(ref), peer_vpcs.submit(ref)]
    )


def settle(futures: list[PrefectFuture[Any]]) -> list[Any]:
    """Let every concurrent step finish (a sibling's failure must not orphan a step still creating
    something), then raise the first failure."""
    wait(futures)
    return [future.result() for future in futures]


def measure(ref: EnvironmentRef, phase: Phase, topology: Topology) -> PhaseReport:
    """Set both clusters' SNAT (absolute), wait for the rollout, then probe from every vantage at once."""
    applied = settle([set_snat.submit(ref, vpc, phase.name, ref.config.phase_snat(phase, vpc)) for vpc in VPC_KEYS])
    live = PhaseSnat(**dict(zip(VPC_KEYS, applied, strict=True)))
    probes = settle([probe_vantage.submit(ref, phase.name, live, vantage) for vantage in vantages(topology)])
    cells = [cell for found in probes for cell in found]
    report = PhaseReport(name=phase.name, snat=live, cells=cells)
    publish_phase(ref, report)
    return report


def finish(ref: EnvironmentRef, parameters: RunParameters, report: Report) -> None:
    """Clean up, or with keep: restore the baseline SNAT settings and record the baseline for drift checks."""
    if not parameters.keep:
        cleanup_environment(ref)
        return
    baseline = ref.config.phases[0]
    for vpc in VPC_KEYS:
        set_snat(ref, vpc, f"restore-{baseline.name}", ref.config.phase_snat(baseline, vpc))
    if ref.config.attaching:
        restore_aws_node(ref)  # an attached aws-node exactly as found, whatever the first phase set
    keep_baseline(ref.key, report, read_snapshot(ref))  # the configuration it ran with, for config_diff


class Progress:
    """A progress artifact in the UI, updated as steps complete."""

    def __init__(self, ref: EnvironmentRef, *, total: int) -> None:
        self.total, self.done = total, 0
        self.artifact = create_progress_artifact(
            progress=0.0, key=artifacts.artifact_key(ref.config.name, "progress"), description="experiment steps"
        )

    def step(self) -> None:
        self.done += 1
        update_progress_artifact(cast(UUID, self.artifact), progress=artifacts.progress_percent(self.done, self.total))
