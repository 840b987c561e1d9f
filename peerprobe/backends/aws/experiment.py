"""The experiment on real AWS and EKS: the shared steps (backends/experiment.py) over the AWS adapters — boto3
for the Cloud, the kubernetes client with an EKS token for each Cluster, exec/SSM/a local process for the
Vantages — and the preflight that runs before anything is created."""

from __future__ import annotations

from collections.abc import Callable

from peerprobe.attach import FoundCluster
from peerprobe.backends import attach
from peerprobe.backends.aws import _addons, _network, _read
from peerprobe.backends.aws._base import Waits
from peerprobe.backends.aws._identity import Identity
from peerprobe.backends.aws._identity import preflight as identity_preflight
from peerprobe.backends.aws._state import load
from peerprobe.backends.aws._token import TokenSource
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.cloud import AwsCloud
from peerprobe.backends.aws.kube import NAMESPACE, KubeCluster, api_client, configuration
from peerprobe.backends.aws.vantages import OutsideRunner, PodVantage, ScriptVantage, heredoc, run_locally
from peerprobe.backends.experiment import PEER_HOST, ClusterSpec, Experiment, cluster_spec, role_name
from peerprobe.backends.ports import Stamp
from peerprobe.backends.ports import Vantage as VantagePort
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef, VpcKey
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, ConflictError, NotFoundError
from peerprobe.vocabulary import Vantage

__all__ = ["AwsExperiment", "ClusterSpec", "cluster_spec", "preflight", "role_name"]


def preflight(config: ExperimentConfig, *, clients: ClientFactory | None = None, creating: bool = False) -> Identity:
    """Before anything starts: credentials and region (STS GetCallerIdentity), then the adopted networks,
    read-only, so a missing public subnet is refused before anything is created; with `creating`, also that
    EKS offers each cluster's pinned CNI version. Raises CredentialsError or ConfigError (both exit 2)."""
    if creating:  # what only creating needs: the images the nodes pull, the controllers it relies on
        require_reachable_images(config)
        require_supported(config)
    clients = clients or ClientFactory(config.region, profile=config.aws.profile)
    identity = identity_preflight(clients)
    stamp = Stamp(experiment=config.name, environment=f"aws:{config.name}:{config.region}", run_id="preflight")
    cloud = AwsCloud(clients, stamp=stamp)
    for key in VPC_KEYS:
        adopted = _network.inspect_network(cloud, config, key)
        if adopted is not None:
            _network.require_public_subnets(config, adopted)
        if creating:
            _addons.require_offered(cloud, getattr(config.clusters, key).cni_version, key=f"clusters.{key}.cni_version")
    return identity


# Registries nodes in the aws-cn partition cannot pull from: registry.k8s.io, Docker Hub, gcr.io, quay.io and
# ghcr.io are not reachable from China regions, and Amazon ECR Public is not offered there
# (https://docs.amazonaws.cn/en_us/aws/latest/userguide/ecr.html; docs/aws.md, "Images in the China regions").
UNREACHABLE_FROM_CHINA = frozenset(
    {
        "registry.k8s.io",
        "k8s.gcr.io",
        "gcr.io",
        "docker.io",
        "registry-1.docker.io",
        "index.docker.io",
        "quay.io",
        "ghcr.io",
        "public.ecr.aws",
    }
)


def registry_of(image: str) -> str:
    """The registry an image reference pulls from: its first component when that names a host, else Docker
    Hub (distribution/reference's rule: a host has a dot or a port, or is localhost)."""
    first, slash, _ = image.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else "docker.io"


def require_reachable_images(config: ExperimentConfig) -> None:
    """aws-cn: every image must come from a registry the nodes can reach (an ECR mirror in the account)."""
    if not config.region.startswith("cn-"):
        return
    for key in ("echo", "busybox", "nginx"):
        image = getattr(config.images, key)
        if registry_of(image) in UNREACHABLE_FROM_CHINA:
            raise ConfigError(
                f"images.{key}: {image} is pulled from {registry_of(image)}, which nodes in "
                f"{config.region} (aws-cn) cannot reach; mirror it to ECR in the account and name the "
                'mirror here (docs/aws.md, "Images in the China regions")'
            )


def require_supported(config: ExperimentConfig) -> None:
    """What the aws backend cannot set up: ip targets need the AWS Load Balancer Controller, which it does not
    install on the clusters it creates (the Service would stay pending)."""
    if config.services.internal_nlb.target_type == "ip":
        raise ConfigError(
            "services.internal_nlb.target_type: ip needs the AWS Load Balancer Controller, which "
            "peerprobe does not install on the clusters it creates; use instance (the in-tree "
            "controller), or try ip targets on the lab"
        )


class AwsExperiment(Experiment):
    """The steps on AWS; `clients`, `waits`, `kube` and `outside` are seams for tests."""

    def __init__(
        self,
        ref: EnvironmentRef,
        *,
        clients: ClientFactory | None = None,
        waits: Waits | None = None,
        kube: Callable[[VpcKey], KubeCluster] | None = None,
        outside: OutsideRunner | None = None,
        poll_seconds: float = 10.0,
    ) -> None:
        self.clients = clients or ClientFactory(ref.config.region, profile=ref.config.aws.profile)
        stamp = Stamp(experiment=ref.config.name, environment=ref.key, run_id=ref.run_id)
        self._kube_of = kube or self._connect
        self._kubes: dict[VpcKey, KubeCluster] = {}
        self._outside = outside or run_locally
        super().__init__(
            ref,
            cloud=AwsCloud(self.clients, stamp=stamp, waits=waits),
            cluster=self._kube_cached,
            vantage=self._vantage,
            timing=Waits(delay=poll_seconds),
        )

    def _kube_cached(self, vpc: VpcKey) -> KubeCluster:
        if vpc not in self._kubes:
            self._kubes[vpc] = self._kube_of(vpc)
        return self._kubes[vpc]

    def _connect(self, vpc: VpcKey) -> KubeCluster:
        """The cluster's API from describe_cluster (endpoint, CA) and an EKS token; nothing written but the CA."""
        name = getattr(self.config.clusters, vpc).name
        cluster = self.cloud.cluster(name)
        if cluster is None:
            raise NotFoundError(f"eks cluster {name}: not found", resource="eks cluster", resource_id=name)
        tokens = TokenSource(self.clients.client("sts"), name)
        # A load balancer answers once its targets pass their health checks: new NLB targets stay `initial` and
        # Classic instances OutOfService for a few intervals, and probes before then would be false drift.
        # An attached cluster is someone else's: peerprobe writes only in its own namespace there (design.md).
        return KubeCluster(
            api_client(configuration(cluster, tokens)),
            name=name,
            load_balancer_ready=self._targets_healthy,
            namespace=attach.namespace(self.config) if self.config.attached(vpc) else NAMESPACE,
        )

    def read_attached(self) -> dict[VpcKey, FoundCluster]:
        """Attach mode: the attached clusters as they are (backends/aws/_read.py; reads only)."""
        return _read.read_attached(self.cloud, self._kube_cached, self.config)

    def _targets_healthy(self, hostname: str) -> bool:
        health = self.cloud.target_health(hostname)
        return health is not None and health.settled

    def _vantage(self, vantage: Vantage) -> VantagePort:
        if vantage in ("vpc1-pod", "vpc2-pod"):
            vpc: VpcKey = "vpc1" if vantage == "vpc1-pod" else "vpc2"
            return PodVantage(lambda: self._kube_cached(vpc))
        if vantage == "vpc2-ec2":
            return ScriptVantage(self._run_on_host)
        return ScriptVantage(self._outside)

    def _run_on_host(self, script: str, budget: float) -> str:
        instance = load(self.environment).peer_host_instance
        if not instance:
            raise ConflictError(
                "the EC2 web host does not exist yet", resource="instance", resource_id=PEER_HOST, state="absent"
            )
        return self.cloud.run_shell(instance, [heredoc(script)], timeout_seconds=budget)
