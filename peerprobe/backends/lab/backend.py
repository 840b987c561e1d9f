"""The experiment on the embedded lab: the shared steps (backends/experiment.py) over the lab's adapters —
the boto3 Cloud adapter on moto with what AWS supplies physically (lab/cloud.py), the namespace clusters
(lab/cluster.py) and vantages (lab/vantage.py). `set_up` and `tear_down` serve `lab up` and `lab down`."""

from __future__ import annotations

from peerprobe.attach import FoundCluster
from peerprobe.backends.aws import _read
from peerprobe.backends.experiment import Experiment, run_setup
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab.cluster import LabCluster, LabReader, VisitingCluster
from peerprobe.backends.lab.vantage import LabVantage, VisitingVantage
from peerprobe.backends.ports import Cluster
from peerprobe.backends.ports import Vantage as VantagePort
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef, StepResult, VpcKey
from peerprobe.config import ExperimentConfig
from peerprobe.topology import LoadBalancerFacts, plan
from peerprobe.vocabulary import Vantage
from peerprobe.wait import LAB

# The lab's AWS converges at once; these bound what would take minutes on AWS.
LAB_BOUND_SECONDS = 30.0
SNAT_ROLLOUT_SECONDS = 30.0


class LabExperiment(Experiment):
    """The steps on the lab: the shared ones, with the lab's adapters; cleanup also removes the data plane.
    Attached clusters (attach mode) are those of another lab environment, their owner."""

    def __init__(self, ref: EnvironmentRef) -> None:
        config = ref.config
        cloud = lab_cloud.connect(config, plan(config), environment=ref.key, run_id=ref.run_id)
        cloud.visiting = self._visiting_load_balancers
        super().__init__(ref, cloud=cloud, cluster=self._lab_cluster, vantage=self._lab_vantage, timing=LAB)
        self.load_balancer_delete_seconds = LAB_BOUND_SECONDS
        self.cluster_group_wait_seconds = LAB_BOUND_SECONDS

    def _lab_cluster(self, vpc: VpcKey) -> Cluster:
        if self.config.attached(vpc):
            return VisitingCluster(self.config, vpc, owner=self._owner(vpc), run_id=self.ref.run_id, timing=LAB)
        return LabCluster(self.config, vpc, run_id=self.ref.run_id, timing=LAB)

    def _lab_vantage(self, vantage: Vantage) -> VantagePort:
        if self.config.attaching:  # both clusters are attached (attach.refuse_unbuilt), to one owner
            return VisitingVantage(self.config, vantage, owner=self._owner("vpc1"))
        return LabVantage(self.config, vantage)

    def _owner(self, vpc: VpcKey) -> str:
        """The lab environment that runs the attached cluster `vpc` as its own cluster `vpc`."""
        return lab.owner_key(self.config, vpc)

    def _visiting_load_balancers(self) -> list[LoadBalancerFacts]:
        if not self.config.attached("vpc1"):
            return []
        placed = lab.guest(self._owner("vpc1"), self.config.name)
        return list(placed.topology.vpc1.load_balancer_facts.values()) if placed is not None else []

    def read_attached(self) -> dict[VpcKey, FoundCluster]:
        """Attach mode: EKS and EC2 as moto holds them for the owner environment (the same reads as on AWS), and
        the cluster's own side (nodes, aws-node, CNI, kube-proxy) from the owner's lab state."""
        return _read.read_each(self.cloud, lambda vpc: LabReader(self._owner(vpc), vpc), self.config)

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
