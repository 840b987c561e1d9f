"""The experiment on the embedded lab: the shared steps (backends/experiment.py) over the lab's adapters —
the boto3 Cloud adapter on moto with what AWS supplies physically (lab/cloud.py), the namespace clusters
(lab/cluster.py) and vantages (lab/vantage.py). `set_up` and `tear_down` serve `lab up` and `lab down`."""

from __future__ import annotations

from peerprobe.backends.experiment import Experiment, run_setup
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab.cluster import LabCluster
from peerprobe.backends.lab.vantage import LabVantage
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef, StepResult
from peerprobe.config import ExperimentConfig
from peerprobe.topology import plan
from peerprobe.wait import LAB

# The lab's AWS converges at once; these bound what would take minutes on AWS.
LAB_BOUND_SECONDS = 30.0
SNAT_ROLLOUT_SECONDS = 30.0


class LabExperiment(Experiment):
    """The steps on the lab: the shared ones, with the lab's adapters; cleanup also removes the data plane."""

    def __init__(self, ref: EnvironmentRef) -> None:
        config = ref.config
        cloud = lab_cloud.connect(config, plan(config), environment=ref.key, run_id=ref.run_id)
        super().__init__(
            ref,
            cloud=cloud,
            cluster=lambda vpc: LabCluster(config, vpc, run_id=ref.run_id, timing=LAB),
            vantage=lambda vantage: LabVantage(config, vantage),
            timing=LAB,
        )
        self.load_balancer_delete_seconds = LAB_BOUND_SECONDS
        self.cluster_group_wait_seconds = LAB_BOUND_SECONDS

    def cleanup(self) -> StepResult:
        """The steps' cleanup in moto, then what the lab built on this machine (namespaces, agent)."""
        try:
            return super().cleanup()
        finally:
            lab.remove_data_plane(lab.env_key(self.config))


def set_up(config: ExperimentConfig, *, run_id: str) -> None:
    """`lab up`: the setup steps in the flow's order, then the first phase's SNAT settings, without probing."""
    experiment = LabExperiment(EnvironmentRef(backend="lab", config=config, run_id=run_id))
    run_setup(experiment)
    baseline = config.phases[0].snat
    for vpc in VPC_KEYS:
        experiment.set_snat(vpc, getattr(baseline, vpc))
    for vpc in VPC_KEYS:
        experiment.wait_snat(vpc, getattr(baseline, vpc), timeout_seconds=SNAT_ROLLOUT_SECONDS)


def tear_down(config: ExperimentConfig) -> bool:
    """`lab down`: the steps' cleanup; True when it removed something."""
    experiment = LabExperiment(EnvironmentRef(backend="lab", config=config, run_id="cleanup"))
    removed = experiment.cleanup().resources.get("removed", [])
    return bool(removed)
