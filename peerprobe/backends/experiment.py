"""The experiment's steps, written once over the ports: the Cloud adapter (AWS, or the lab's moto), one Cluster
per VPC and the Vantages. Both backends run this code; an adapter adds only what its world supplies physically.
Ids (never credentials or tokens) are persisted per environment, so later steps, a resumed run and cleanup find
what earlier steps made.

Order of teardown (cleanup): LoadBalancer Services first, then wait until their ELBs/NLBs, security groups
and network interfaces are gone (else DependencyViolation), then the rules peerprobe opened, routes, peering,
the EC2 host, node groups, clusters, the networks peerprobe created, roles.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import structlog

from peerprobe import attach as attach_facts
from peerprobe import aws_node, drift, resources, statedir
from peerprobe import snapshot as snap
from peerprobe.backends import attach, beyond
from peerprobe.backends.aws import _addons, _network, _recover, _state
from peerprobe.backends.aws._iam import CLUSTER_POLICIES, HOST_POLICIES, NODE_POLICIES
from peerprobe.backends.aws._scripts import peer_host_user_data
from peerprobe.backends.aws._state import AwsState, ClusterIds, NetworkIds, OpenedRule
from peerprobe.backends.aws.cloud import AwsCloud
from peerprobe.backends.opened import peer_host_rules, peer_rules
from peerprobe.backends.ports import Cluster, IngressRule, Vpc
from peerprobe.backends.ports import Vantage as VantagePort
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef, StepResult, VpcKey
from peerprobe.config import ExperimentConfig, Snat
from peerprobe.errors import (
    ConfigError,
    ConflictError,
    CredentialsError,
    InfrastructureError,
    NotFoundError,
    PeerprobeError,
    UnreadableStateError,
    WaitTimeoutError,
)
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.topology import ClusterTopology, LoadBalancerFacts, Node, PeerHost, Pod, Topology, plan
from peerprobe.vocabulary import Vantage
from peerprobe.wait import AWS, Waits, until

log = structlog.get_logger()
T = TypeVar("T")

PEER_HOST = "peer-host"
PEER_HOST_TYPE = "t3.micro"
PEERING = "vpc1-vpc2"
DEPLOY_TIMEOUT_SECONDS = 10 * 60
LOAD_BALANCER_TIMEOUT_SECONDS = 10 * 60  # hostnames assigned and resolving; NLBs take a few minutes
LOAD_BALANCER_DELETE_SECONDS = 10 * 60
CLUSTER_SG_WAIT_SECONDS = 20 * 60
INSTANCE_PROFILE_RETRIES = 6  # a new instance profile takes a few seconds before RunInstances accepts it
SERVICE_KINDS = resources.SERVICE_KINDS
HEADLESS_SERVICE = "source-ip-app-headless"


@dataclass(frozen=True)
class ClusterSpec:
    """resources/private-cluster.yaml as EKS API parameters: the managed node group of the same instance type,
    size, labels and private networking as the ClusterConfig's node group."""

    name: str
    service_cidr: str
    private_access: bool
    public_access: bool
    nodegroup: str
    instance_type: str
    size: int
    min_size: int
    max_size: int
    private_networking: bool
    labels: dict[str, str] = field(default_factory=dict)


def cluster_spec(config: ExperimentConfig, key: VpcKey) -> ClusterSpec:
    doc = resources.cluster_config(config)
    groups = doc.get("managedNodeGroups") or doc.get("nodeGroups") or []
    if not groups:
        raise ConfigError(f"resources/{resources.CLUSTER_FILE}: no managedNodeGroups or nodeGroups")
    group = groups[0]
    endpoints = (doc.get("vpc") or {}).get("clusterEndpoints") or {}
    cluster = getattr(config.clusters, key)
    common = {
        "name": cluster.name,
        "private_access": bool(endpoints.get("privateAccess", True)),
        "public_access": bool(endpoints.get("publicAccess", True)),
        "nodegroup": str(group.get("name", "nodes")),
        "instance_type": str(group.get("instanceType", "t3.medium")),
        "labels": {str(k): str(v) for k, v in (group.get("labels") or {}).items()},
    }
    if key == "vpc1":
        size = int(group.get("desiredCapacity", cluster.nodes))
        return ClusterSpec(
            **common,
            service_cidr=str(doc["kubernetesNetworkConfig"]["serviceIPv4CIDR"]),
            size=size,
            min_size=int(group.get("minSize", size)),
            max_size=int(group.get("maxSize", size)),
            private_networking=bool(group.get("privateNetworking", True)),
        )
    return ClusterSpec(
        **common,
        service_cidr=cluster.service_cidr,
        size=cluster.nodes,
        min_size=cluster.nodes,
        max_size=cluster.nodes,
        private_networking=cluster.node_subnets == "private",
    )


def role_name(config: ExperimentConfig, kind: str) -> str:
    """IAM names are account-wide: experiment and region in the name, at most 64 characters."""
    name = f"peerprobe-{config.name}-{config.region}-{kind}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: 64 - len(kind) - 10]}-{digest}-{kind}"


class Experiment:
    """One environment's steps (the Experiment port of steps.py) over the ports: `cloud`, the Cloud adapter;
    `cluster(vpc)`, the Cluster of each VPC; `vantage(name)`, where each vantage's probes run."""

    def __init__(
        self,
        ref: EnvironmentRef,
        *,
        cloud: AwsCloud,
        cluster: Callable[[VpcKey], Cluster],
        vantage: Callable[[Vantage], VantagePort],
        timing: Waits = AWS,
    ) -> None:
        self.ref = ref
        self.config = ref.config
        self.environment = ref.key
        self.cloud = cloud
        self._cluster_factory = cluster
        self._clusters: dict[VpcKey, Cluster] = {}
        self._vantage_factory = vantage
        self.timing = timing
        self.load_balancer_delete_seconds: float = LOAD_BALANCER_DELETE_SECONDS
        self.cluster_group_wait_seconds: float = CLUSTER_SG_WAIT_SECONDS
        self.parts: Parts = concurrently  # how cleanup runs its independent parts (tests: one_by_one)
        self._found: dict[VpcKey, attach_facts.FoundCluster] | None = None

    def _plan(self) -> Topology:
        return plan(self.model_config(), backend=self.ref.backend)

    # --- attach mode (design.md, "Existing clusters (attach)") ------------------------------------------------

    def read_attached(self) -> dict[VpcKey, attach_facts.FoundCluster]:
        """The attached clusters as they are; a backend that can read existing clusters overrides this."""
        raise ConfigError(
            f"clusters.<k>.existing: the {self.ref.backend} backend cannot read an existing cluster yet; nothing "
            "was created"
        )

    def found(self) -> dict[VpcKey, attach_facts.FoundCluster]:
        """What was read of the attached clusters, once per instance (every step opens a new one)."""
        if self._found is None:
            self._found = self.read_attached() if self.config.attaching else {}
        return self._found

    def model_config(self, config: ExperimentConfig | None = None) -> ExperimentConfig:
        """The config the model predicts from: `config` (default this experiment's) as it is, or when attaching,
        with what was read of the attached clusters in place of the file's values (attach.as_read)."""
        config = config or self.config
        return attach_facts.as_read(config, self.found()) if config.attaching else config

    def config_diff(self) -> list[dict[str, Any]] | None:
        """Where the config file disagrees with the attached clusters as read; None when nothing is attached."""
        return attach_facts.config_diff(self.config, self.found()) if self.config.attaching else None

    def _attach_network(self, vpc: VpcKey) -> StepResult:
        """An attached cluster's VPC, recorded as read (its subnets, tables, NAT gateway address) and marked
        attached: the steps read it, cleanup never touches it."""
        found = self.found()[vpc]
        network = _attached_network(found)
        self._update(lambda s: s.model_copy(update={"networks": {**s.networks, vpc: network}}))
        return StepResult(
            step=f"create-network-{vpc}",
            resources={"vpc": network.vpc, "attached": True},
            note=f"attached: the VPC of cluster {found.name} as read; nothing created",
        )

    def _attach_cluster(self, vpc: VpcKey) -> StepResult:
        """An attached cluster, recorded as someone else's (its security group as read), and peerprobe's own
        namespace there: the only place it deploys."""
        found = self.found()[vpc]
        ids = _attached_cluster(found)
        self._update(lambda s: s.model_copy(update={"clusters": {**s.clusters, vpc: ids}}))
        self._kube(vpc).ensure_namespace()
        return StepResult(
            step=f"create-cluster-{vpc}",
            resources={"cluster": found.name, "namespace": attach.namespace(self.config), "attached": True},
            note="attached: only peerprobe's namespace created",
        )

    def _record_read_peering(self) -> StepResult:
        """peer-vpcs on attached clusters links nothing: the peering found between them is recorded (for the
        drift snapshot) and never removed; the rules of open_from_peer are opened once the Services exist."""
        found = self.found()
        peering = next(
            (p.split(" ", 1)[0] for p in found["vpc1"].peerings if " active " in p and found["vpc2"].vpc_id in p),
            None,
        )
        self._update(lambda s: s.model_copy(update={"peering_read": peering}))
        return StepResult(step="peer-vpcs", resources={"peering": peering, "attached": True}, note="nothing linked")

    # --- state --------------------------------------------------------------------------------------------

    def _state(self) -> AwsState:
        return _state.load(self.environment)

    def _update(self, change: Callable[[AwsState], AwsState]) -> AwsState:
        return _state.update(self.environment, change)

    def _network(self, vpc: VpcKey) -> NetworkIds:
        found = self._state().networks.get(vpc)
        if found is None:
            raise ConflictError(
                f"environment {self.environment}: network {vpc} does not exist yet",
                resource="vpc",
                resource_id=vpc,
                state="absent",
            )
        return found

    def _kube(self, vpc: VpcKey) -> Cluster:
        if vpc not in self._clusters:
            self._clusters[vpc] = self._cluster_factory(vpc)
        return self._clusters[vpc]

    # --- steps --------------------------------------------------------------------------------------------

    def create_network(self, vpc: VpcKey) -> StepResult:
        attach.refuse_unbuilt(self.config, "create-network")
        if self.config.attached(vpc):
            return self._attach_network(vpc)
        network = _network.ensure_network(self.cloud, self.config, vpc)
        self._update(lambda s: s.model_copy(update={"networks": {**s.networks, vpc: _kept_tags(s, network)}}))
        network = self._secondary_network(vpc)
        resources_ = {
            "vpc": network.vpc,
            "adopted": network.adopted,
            "nat_gateway": network.nat_gateway,
            "public_subnets": network.public_subnets,
            "private_subnets": network.private_subnets,
        }
        if network.cidr_associations or network.pod_subnets:
            resources_ |= {"secondary_cidrs": sorted(network.cidr_associations), "pod_subnets": network.pod_subnets}
        return StepResult(step=f"create-network-{vpc}", resources=resources_)

    def _secondary_network(self, vpc: VpcKey) -> NetworkIds:
        """vpcs.<vpc>.secondary_cidrs and custom networking's pod subnets (beyond.py), recorded."""
        network = beyond.ensure_secondary(self.cloud, self.config, self._network(vpc))
        self._update(lambda s: s.model_copy(update={"networks": {**s.networks, vpc: network}}))
        return network

    def create_cluster(self, vpc: VpcKey) -> StepResult:
        attach.refuse_unbuilt(self.config, "create-cluster")
        if self.config.attached(vpc):
            return self._attach_cluster(vpc)
        network = self._network(vpc)
        spec = cluster_spec(self.config, vpc)
        problem = beyond.trunk_problem(self.config, vpc, spec.instance_type)
        if problem:
            raise ConfigError(problem)
        cluster_role = self._ensure_role("cluster", "eks", beyond.cluster_policies(self.config, CLUSTER_POLICIES))
        node_role = self._ensure_role("node", "ec2", NODE_POLICIES)
        node_subnets = network.private_subnets if spec.private_networking else network.public_subnets
        if not node_subnets or not network.private_subnets:
            raise ConfigError(
                f"vpcs.{vpc}.subnets.private: the cluster and its private node group need private "
                f"subnets in {network.vpc}"
            )
        # Recorded before creating (register the teardown first): a crash mid-create still gets cleaned up.
        ids = ClusterIds(name=spec.name, nodegroup=spec.nodegroup)
        self._update(lambda s: s.model_copy(update={"clusters": {**s.clusters, vpc: s.clusters.get(vpc, ids)}}))
        cluster = self.cloud.ensure_cluster(
            spec.name,
            role_arn=cluster_role,
            subnet_ids=network.private_subnets,
            service_cidr=spec.service_cidr,
            endpoint_private_access=spec.private_access,
            endpoint_public_access=spec.public_access,
        )
        self._record_cluster_group(vpc, cluster.cluster_security_group_id)
        # The pinned CNI before the nodes: they start with it, and it is ACTIVE before any SNAT setting is patched.
        _addons.ensure_vpc_cni(self.cloud, cluster, self.config, vpc)
        self._prepare_pod_networking(vpc, cluster.cluster_security_group_id)
        group = self.cloud.ensure_nodegroup(
            spec.name,
            name=spec.nodegroup,
            node_role_arn=node_role,
            subnet_ids=node_subnets,
            size=spec.size,
            instance_types=(spec.instance_type,),
            labels=spec.labels,
            min_size=spec.min_size,
            max_size=spec.max_size,
        )
        resources_ = {"cluster": cluster.name, "nodegroup": group.name, "status": group.status, "size": spec.size}
        return StepResult(step=f"create-cluster-{vpc}", resources=resources_)

    def _prepare_pod_networking(self, vpc: VpcKey, cluster_group: str) -> None:
        """Custom networking's ENIConfigs and aws-node's env, and the pods' own group, before the node group: its
        nodes start with them (beyond.prepare_cni)."""
        network = self._network(vpc)
        beyond.prepare_cni(self._kube(vpc), self.config, network, cluster_group=cluster_group)
        if getattr(self.config.clusters, vpc).pod_security_groups is None:
            return
        group = self.cloud.ensure_security_group(
            f"{vpc}-{beyond.POD_GROUP}", vpc_id=network.vpc, description="peerprobe security group for pods"
        )

        def change(s: AwsState) -> AwsState:
            ids = s.clusters[vpc].model_copy(update={"pod_security_group": group.id})
            return s.model_copy(update={"clusters": {**s.clusters, vpc: ids}})

        self._update(change)
        rules = beyond.pod_group_ingress(self.config, vpc, self._plan(), cluster_group=cluster_group)
        self.cloud.authorize_ingress(group.id, rules=rules)

    def _apply_pod_policy(self, vpc: VpcKey) -> None:
        """The SecurityGroupPolicy before the Deployments, so the selected pods get branch ENIs when created."""
        ids = self._state().clusters.get(vpc)
        if ids is None or not ids.pod_security_group:
            return
        docs = beyond.security_group_policy(
            self.config, vpc, pod_group=ids.pod_security_group, cluster_group=ids.security_group
        )
        self._kube(vpc).apply(docs)

    def _ensure_role(self, kind: str, service: str, policies: Sequence[str]) -> str:
        name = role_name(self.config, kind)
        self._update(lambda s: s.model_copy(update={"roles": sorted({*s.roles, name})}))
        return self.cloud.ensure_role(name, service=service, policies=policies)

    def _record_cluster_group(self, vpc: VpcKey, group_id: str) -> None:
        if not group_id:
            return

        def change(s: AwsState) -> AwsState:
            ids = s.clusters[vpc].model_copy(update={"security_group": group_id})
            return s.model_copy(update={"clusters": {**s.clusters, vpc: ids}})

        self._update(change)

    def create_peer_host(self) -> StepResult:
        """The EC2 web host in VPC2's first public subnet: Amazon Linux from the SSM public parameter, user
        data serving the echo response on :80, an instance profile for SSM Run Command."""
        attach.refuse_unbuilt(self.config, "create-peer-host")
        if not self.config.peer_host.create:
            return StepResult(step="create-peer-host", note="peer_host.create is false: no EC2 host")
        vpc2 = self._network("vpc2")
        role = self._ensure_role("host", "ec2", HOST_POLICIES)
        name = role_name(self.config, "host")
        profile = self.cloud.ensure_instance_profile(name, role=name)
        self._update(lambda s: s.model_copy(update={"instance_profile": name}))
        group = self.cloud.ensure_security_group(PEER_HOST, vpc_id=vpc2.vpc, description="peerprobe EC2 web host")
        self._update(lambda s: s.model_copy(update={"peer_host_security_group": group.id}))
        if self.config.peer_host.admit_vpc1:
            # VPC1's nodes do not exist yet (create-cluster runs beside this step): deploy-apps admits them.
            self.cloud.authorize_ingress(group.id, rules=self._peer_host_rules(vpc1_nodes=[]))
        image = self.cloud.latest_ami()
        instance = self._launch_host(subnet=vpc2.public_subnets[0], image=image, group=group.id, profile=profile)
        self._update(lambda s: s.model_copy(update={"peer_host_instance": instance}))
        return StepResult(
            step="create-peer-host",
            resources={"instance": instance, "security_group": group.id, "image": image, "role": role},
        )

    def _peer_host_rules(self, *, vpc1_nodes: Sequence[Node]) -> list[IngressRule]:
        """The host's rules both backends open (opened.peer_host_rules), from the live facts: :80 from VPC1's
        CIDR (the peering path) and, only when the host has a public IP, from VPC1's egress public addresses,
        its NAT gateway and its nodes' own public IPs (the internet path); /32s of our own addresses, no wider."""
        planned = self._plan()
        vpc1 = planned.vpc1.model_copy(update={"nat_gateway": None, "nodes": []})
        if self.config.peer_host.public_ip:
            network = self._state().networks.get("vpc1")
            vpc1 = vpc1.model_copy(
                update={"nat_gateway": network.nat_public_ip if network else None, "nodes": list(vpc1_nodes)}
            )
        secondary = self.config.vpcs.vpc1.secondary_cidrs
        return peer_host_rules(planned.model_copy(update={"vpc1": vpc1}), vpc1_secondary=secondary)

    def _admit_vpc1_nodes_at_host(self) -> None:
        """VPC1's nodes in public subnets reach the host's public IP from their own public IPs (docs/model.md);
        those exist only once create-cluster is done, so the host's group admits them after it."""
        group = self._state().peer_host_security_group
        if not (self.config.peer_host.admit_vpc1 and self.config.peer_host.public_ip and group):
            return
        nodes = [n for n in self._kube("vpc1").nodes() if n.public_ip]
        if not nodes:
            return
        self.cloud.authorize_ingress(group, rules=self._peer_host_rules(vpc1_nodes=nodes))
        log.info("peer_host.admitted_vpc1_nodes", security_group=group, nodes=[n.public_ip for n in nodes])

    def _launch_host(self, *, subnet: str, image: str, group: str, profile: str) -> str:
        """RunInstances refuses a new instance profile for a few seconds (IAM is eventually consistent)."""

        def launch() -> str:
            return self.cloud.ensure_instance(
                PEER_HOST,
                subnet_id=subnet,
                image_id=image,
                instance_type=PEER_HOST_TYPE,
                security_group_ids=[group],
                user_data=peer_host_user_data(),
                instance_profile_arn=profile,
                public_ip=self.config.peer_host.public_ip,
            ).id

        def profile_not_ready(error: PeerprobeError) -> bool:
            return isinstance(error, InfrastructureError) and "iamInstanceProfile" in str(error)

        return self.timing.retry(
            launch,
            retry_if=profile_not_ready,
            what="instance profile",
            max_seconds=120,
            max_attempts=INSTANCE_PROFILE_RETRIES,
        )

    def peer_vpcs(self) -> StepResult:
        """VPC1's nodes opened to the peer CIDR for the probes, the peering accepted, routes both ways."""
        attach.refuse_unbuilt(self.config, "peer-vpcs")
        if self.config.attaching:
            return self._record_read_peering()
        opened = self._open_peer_rules()
        if not self.config.peering.enabled:
            return StepResult(step="peer-vpcs", resources={"opened": opened}, note="peering.enabled is false")
        vpc1, vpc2 = self._network("vpc1"), self._network("vpc2")
        if self.config.peering.via == "transit-gateway":
            return self._link_by_transit_gateway(opened)
        peering = self.cloud.ensure_peering(
            PEERING, requester=Vpc(vpc1.vpc, vpc1.cidr, "vpc1"), accepter=Vpc(vpc2.vpc, vpc2.cidr, "vpc2")
        )
        self._update(lambda s: s.model_copy(update={"peering": peering.id}))
        self._peering_routes(peering.id, {"vpc1": vpc1, "vpc2": vpc2})
        return StepResult(step="peer-vpcs", resources={"peering": peering.id, "opened": opened})

    def _peering_routes(self, peering: str, networks: dict[VpcKey, NetworkIds]) -> None:
        """Each VPC's tables send the peer's blocks to the peering: all of them, or the primary (route_cidrs)."""
        plan = self._plan()
        for key, network in networks.items():
            for table in network.route_tables:
                for block in beyond.link_routes(self.config, plan, key):
                    self.cloud.ensure_route(table, destination_cidr=block, target_id=peering)

    def _link_by_transit_gateway(self, opened: list[str]) -> StepResult:
        networks: dict[VpcKey, NetworkIds] = {"vpc1": self._network("vpc1"), "vpc2": self._network("vpc2")}
        linked = beyond.link_by_transit_gateway(self.cloud, self.config, self._plan(), networks, self._update)
        return StepResult(step="peer-vpcs", resources={**linked, "opened": opened})

    def _open_peer_rules(self, topology: Topology | None = None) -> list[str]:
        """security_groups.open_from_peer on VPC1's nodes, recorded for cleanup. On an attached cluster only the
        rules its group lacks are recorded (and so revoked later): one its owner had stays."""
        group = self._node_security_group("vpc1")
        rules = peer_rules(self.config, topology or self._plan())
        if self.config.attached("vpc1"):
            present = set(self.cloud.ingress_rules(group))
            rules = [r for r in rules if r not in present]
        opened = [
            OpenedRule(group=group, protocol=r.protocol, from_port=r.from_port, to_port=r.to_port, cidr=r.cidr)
            for r in rules
        ]
        self._update(lambda s: s.model_copy(update={"opened": _union(s.opened, opened)}))
        self.cloud.authorize_ingress(group, rules=rules)
        return [f"tcp/{r.from_port} from {r.cidr}" for r in rules]

    def _node_security_group(self, vpc: VpcKey) -> str:
        """The EKS cluster security group (managed nodes use it); EKS assigns it while the cluster is still
        CREATING, so this waits for it, bounded, while create-cluster runs beside it."""
        name = getattr(self.config.clusters, vpc).name
        found: list[str] = []

        def assigned() -> bool:
            found.append(self._cluster_group(vpc, name))
            return bool(found[-1])

        until(
            assigned,
            kind="eks cluster",
            resource_id=name,
            goal="given its cluster security group",
            timeout_seconds=self.cluster_group_wait_seconds,
            timing=self.timing,
        )
        self._record_cluster_group(vpc, found[-1])
        return found[-1]

    def _cluster_group(self, vpc: VpcKey, name: str) -> str:
        """The cluster security group recorded for `vpc`, or as EKS describes the cluster now ("" before)."""
        ids = self._state().clusters.get(vpc)
        if ids is not None and ids.security_group:
            return ids.security_group
        cluster = self.cloud.cluster(name)
        return cluster.cluster_security_group_id if cluster is not None else ""

    def deploy_apps(self) -> StepResult:
        """The Deployments of resources/ on both clusters (server-side apply), placed on the live nodes; the
        EC2 host's group admits VPC1's nodes that have public IPs, now that they exist."""
        attach.refuse_unbuilt(self.config, "deploy-apps")
        for vpc in VPC_KEYS:
            if self.config.attached(vpc):
                self._kube(vpc).ensure_namespace()  # again: a resumed run may find it deleted by a cleanup
        placement = self._placement()
        self._admit_vpc1_nodes_at_host()
        applied: dict[str, list[str]] = {}
        for vpc in VPC_KEYS:
            docs = [d for d in resources.manifests(self.config, placement, cluster=vpc) if d.get("kind") != "Service"]
            self._apply_pod_policy(vpc)
            self._kube(vpc).apply(docs)
            applied[vpc] = [str(d["metadata"]["name"]) for d in docs]
        for vpc in VPC_KEYS:
            self._kube(vpc).wait_deployments(timeout_seconds=DEPLOY_TIMEOUT_SECONDS)
        return StepResult(step="deploy-apps", resources=applied)

    def expose_services(self) -> StepResult:
        """Every Service of resources/ on VPC1, then until the load balancers have hostnames that resolve."""
        attach.refuse_unbuilt(self.config, "expose-services")
        if self.config.attached("vpc1"):
            # Someone else's cluster: its API server allocates the ports and addresses (a planned one may be taken).
            allocated = self.topology()  # before the Services exist: no allocation; after, theirs
        else:
            allocated = _with_planned_services(self.topology(), self._plan())
        docs = [d for d in resources.manifests(self.config, allocated, cluster="vpc1") if d.get("kind") == "Service"]
        kube = self._kube("vpc1")
        kube.apply(docs)
        opened = self._open_peer_rules(self.topology()) if self.config.attached("vpc1") else []
        kube.wait_ready(timeout_seconds=LOAD_BALANCER_TIMEOUT_SECONDS)
        hostnames = {s.name: s.hostname for s in kube.services() if s.type == "LoadBalancer"}
        resources_: dict[str, Any] = {"services": [d["metadata"]["name"] for d in docs], "load_balancers": hostnames}
        return StepResult(step="expose-services", resources=resources_ | ({"opened": opened} if opened else {}))

    def exists(self) -> bool:
        if not self.recorded():
            return False
        try:
            return not self.missing_networks()
        except PeerprobeError as error:  # unreachable or refused: a retry after a fix re-creates nothing by mistake
            log.warning("aws.exists_unknown", environment=self.environment, error=str(error)[:200])
            return False

    def lost(self) -> bool:
        """Whether this environment is recorded here but AWS no longer has its networks (the lab's moto was
        restarted, or someone deleted them): what is recorded, and built on its ids, is stale. An AWS that
        cannot be asked counts as not lost: nothing is removed on a guess."""
        try:
            return self.recorded() and bool(self.missing_networks())
        except PeerprobeError as error:
            log.warning("aws.lost_unknown", environment=self.environment, error=str(error)[:200])
            return False

    def remove_lost(self) -> StepResult:
        """Remove what is left of a lost environment: its stale record (and on the lab its data plane), then
        whatever still carries its tag (made after the loss, as by a step that went on against a fresh moto)."""
        from peerprobe import sweep  # sweep reaches the backends: imported here, not at the top

        result = self.cleanup()
        tagged = sweep.tagged_orphans(
            self.cloud, live=lambda key: key != self.environment, now=time.time(), grace=0, backend=self.ref.backend
        )
        removed = sweep.remove(tagged, cloud_of=lambda _: self.cloud, owned=True)
        log.info("environment.lost_removed", environment=self.environment, tagged=removed)
        return result

    def recorded(self) -> bool:
        """Whether this environment's networks are known here: recorded in the state directory (what `run
        --keep` leaves) or, on a machine without that state (a work pool's pod running a drift check), found
        by their tags and then recorded (reads only on AWS)."""
        if self._state().networks:
            return True
        recovered = self._recovered_state()
        if not recovered.networks or (self.config.attaching and not self._placed()):
            return False
        self._update(lambda _: recovered)  # recover_state has logged what it found
        return True

    def missing_networks(self) -> list[str]:
        """The recorded networks AWS no longer has (`vpc1 vpc-…`); raises when AWS cannot be asked."""
        networks = self._state().networks
        if not networks:
            return []
        present = self.cloud.existing_vpcs([n.vpc for n in networks.values()])
        return [f"{key} {n.vpc}" for key, n in networks.items() if n.vpc not in present]

    # --- topology -----------------------------------------------------------------------------------------

    def _placement(self) -> Topology:
        """The plan with the live nodes: echo and nginx on the first VPC1 node, busybox on the last; the VPC2
        busybox on the first VPC2 node (design.md placement)."""
        planned = self._plan()
        vpc1_nodes = self._kube("vpc1").nodes() or planned.vpc1.nodes
        vpc2_nodes = self._kube("vpc2").nodes() or planned.vpc2.nodes
        vpc1 = planned.vpc1.model_copy(
            update={
                "nodes": vpc1_nodes,
                "echo_pod": Pod(ip="", node=vpc1_nodes[0].name),
                "nginx_pod": Pod(ip="", node=vpc1_nodes[0].name),
                "busybox_pod": Pod(ip="", node=vpc1_nodes[-1].name),
            }
        )
        vpc2 = planned.vpc2.model_copy(update={"nodes": vpc2_nodes, "busybox_pod": Pod(ip="", node=vpc2_nodes[0].name)})
        return planned.model_copy(update={"vpc1": vpc1, "vpc2": vpc2})

    def topology(self) -> Topology:
        """What really runs: nodes, pods, Services and load balancers read from the clusters, NAT gateways and
        the EC2 host from AWS; before the clusters exist, the plan."""
        planned = self._plan()
        state = self._state()
        if not state.clusters:
            return planned
        vpc1 = self._live_side("vpc1", planned.vpc1, state)
        vpc2 = self._live_side("vpc2", planned.vpc2, state)
        return planned.model_copy(update={"vpc1": vpc1, "vpc2": vpc2, "peer_host": self._live_host(state, planned)})

    def _live_side(self, vpc: VpcKey, planned: ClusterTopology, state: AwsState) -> ClusterTopology:
        kube = self._kube(vpc)
        nodes = kube.nodes() or planned.nodes
        network = state.networks.get(vpc)
        update: dict[str, Any] = {
            "nodes": nodes,
            "busybox_pod": kube.pod("busybox"),
            "nat_gateway": network.nat_public_ip if network else None,
        }
        if self.config.attached(vpc):
            update["read"] = self.found()[vpc].topology()  # the report's topology says what was read
        if vpc == "vpc1":
            update |= {"echo_pod": kube.pod("source-ip-app"), "nginx_pod": kube.pod("nginx")}
            update |= self._live_services(kube, planned)
            if self.config.attached(vpc) and update["headless_name"]:  # its Service is in peerprobe's namespace
                update["headless_name"] = f"{HEADLESS_SERVICE}.{attach.namespace(self.config)}.svc.cluster.local"
        return planned.model_copy(update=update)

    def _live_services(self, kube: Cluster, planned: ClusterTopology) -> dict[str, Any]:
        services = {s.name: s for s in kube.services() if s.name in SERVICE_KINDS}
        ports = {SERVICE_KINDS[n]: s.node_port for n, s in services.items() if s.node_port}
        health = {SERVICE_KINDS[n]: s.health_check_node_port for n, s in services.items() if s.health_check_node_port}
        balancers, facts = {}, {}
        for name, service in services.items():
            kind = SERVICE_KINDS[name]
            if service.type != "LoadBalancer" or not service.hostname:
                continue
            private, public = self.cloud.load_balancer_addresses(service.hostname)
            scheme = planned.load_balancer_facts[kind].scheme if kind in planned.load_balancer_facts else "internal"
            balancers[kind] = service.hostname
            facts[kind] = LoadBalancerFacts(
                dns_name=service.hostname, scheme=scheme, private_ips=private, public_ips=public
            )
        clusterip = services.get("clusterip")
        return {
            "cluster_ip": clusterip.cluster_ip if clusterip is not None else None,
            "node_port": ports.get("nodeport"),
            "service_node_ports": ports,
            "health_check_node_ports": health,
            "headless_name": planned.headless_name if HEADLESS_SERVICE in services else None,
            "load_balancers": balancers,
            "load_balancer_facts": facts,
        }

    def _live_host(self, state: AwsState, planned: Topology) -> PeerHost:
        if not state.peer_host_instance:
            return planned.peer_host
        try:
            host = self.cloud.instance(state.peer_host_instance)
        except NotFoundError:
            return planned.peer_host
        return PeerHost(private_ip=host.private_ip, public_ip=host.public_ip)

    # --- SNAT ---------------------------------------------------------------------------------------------

    def set_snat(self, vpc: VpcKey, snat: Snat | None) -> Snat:
        """Absolute: the SNAT variables `snat` names are set, the others removed (kubectl set env NAME-). An
        attached cluster's aws-node is saved as found first, and None leaves it as found (backends/attach.py)."""
        if self.config.attached(vpc) or snat is None:
            attach.refuse_snat_change(self.config, vpc, snat)
            return attach.set_snat(self._kube(vpc), self._attached_id(vpc), snat)
        wanted = aws_node.env_for(snat)
        assignments = [f"{n}={wanted[n]}" if n in wanted else f"{n}-" for n in aws_node.SNAT_VARS]
        return aws_node.snat_from_env(self._kube(vpc).patch_aws_node_env(assignments))

    def _attached_id(self, vpc: VpcKey) -> str:
        return attach.cluster_id(self.ref.backend, self.config.region, getattr(self.config.clusters, vpc).name)

    def restore_aws_node(self) -> dict[str, list[str]]:
        """Each attached cluster's aws-node back to what was found, read back (nothing saved: nothing done)."""
        keys = [vpc for vpc in VPC_KEYS if self.config.attached(vpc)]
        return {vpc: attach.restore(self._kube(vpc), self._attached_id(vpc)) for vpc in keys}

    def read_snat(self, vpc: VpcKey) -> Snat:
        return aws_node.snat_from_env(self._kube(vpc).aws_node_env())

    def wait_snat(self, vpc: VpcKey, snat: Snat | None, *, timeout_seconds: float) -> Snat:
        """Until aws-node's rollout finished on every node (each new pod rewrites the node's SNAT rules)."""
        self._kube(vpc).wait_rollout(timeout_seconds=timeout_seconds)
        return self.read_snat(vpc)

    def snapshot(self) -> snap.ConfigSnapshot:
        """The live configuration: aws-node env and CNI version per cluster, the Services, the security
        groups peerprobe works with, the peering and the routes. Reads only."""
        if not self.recorded():
            where = f"no networks recorded here or tagged in {self.config.region}"
            hint = "`peerprobe lab up`" if self.ref.backend == "lab" else "`peerprobe run --keep`"
            raise NotFoundError(
                f"no {self.ref.backend} environment {self.environment}: {where}; create it with {hint}",
                resource="environment",
                resource_id=self.environment,
            )
        state = self._state()
        clusters = {}
        for vpc in VPC_KEYS:
            kube = self._kube(vpc)
            clusters[vpc] = snap.ClusterSnapshot(
                name=getattr(self.config.clusters, vpc).name,
                cni_version=kube.cni_version() or "0.0.0",
                aws_node=kube.aws_node_env(),  # the snapshot keeps only the values the model reads
            )
        return snap.ConfigSnapshot(
            clusters=clusters,
            services=self._service_snapshots(),
            security_groups=self._group_rules(state),
            peering=self._peering_snapshot(state),
            routes=self._routes(state),
            environment_id=",".join(sorted(n.vpc for n in state.networks.values())),
        )

    def _service_snapshots(self) -> dict[str, snap.ServiceSnapshot]:
        found = {}
        for service in self._kube("vpc1").services():
            kind = SERVICE_KINDS.get(service.name)
            if kind is None or not service.port:
                continue
            policy = service.external_traffic_policy if service.type != "ClusterIP" else None
            found[kind] = snap.ServiceSnapshot(
                type=service.type,
                port=service.port,
                target_port=service.target_port or service.port,
                node_port=service.node_port,
                external_traffic_policy=policy,
                load_balancer_source_ranges=sorted(service.load_balancer_source_ranges),
                annotations=dict(sorted(service.annotations.items())),
            )
        return found

    def _group_rules(self, state: AwsState) -> dict[str, list[str]]:
        roles = {ids.security_group: snap.NODE_GROUP[vpc] for vpc, ids in state.clusters.items() if ids.security_group}
        if state.peer_host_security_group:
            roles[state.peer_host_security_group] = snap.PEER_HOST_GROUP
        found: dict[str, list[str]] = {}
        for group_id, role in roles.items():
            try:
                rules = self.cloud.ingress_rules(group_id)
            except NotFoundError:
                found[role] = [snap.ABSENT]
                continue
            found[role] = sorted(
                snap.rule_text(
                    r.protocol,
                    r.from_port,
                    r.to_port,
                    r.cidr or f"sg {roles.get(r.source_group, r.source_group)}",
                    r.description,
                )
                for r in rules
            )
        return found

    def _peering_snapshot(self, state: AwsState) -> snap.PeeringSnapshot | None:
        linked = state.peering or state.peering_read  # peerprobe's, or the one found between attached VPCs
        if linked is None:
            return None
        try:
            peering = self.cloud.peering(linked)
        except NotFoundError:
            return snap.PeeringSnapshot(status=snap.ABSENT)
        return snap.PeeringSnapshot(
            status=peering.status, requester_cidr=peering.requester_cidr, accepter_cidr=peering.accepter_cidr
        )

    def _routes(self, state: AwsState) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for vpc, network in state.networks.items():
            for table_id in network.route_tables:
                try:
                    table = self.cloud.route_table(table_id)
                except NotFoundError:
                    found[f"{vpc}-{table_id}"] = [snap.ABSENT]
                    continue
                found[table.name or f"{vpc}-{table_id}"] = sorted(
                    f"{r.destination_cidr} -> {snap.route_target_kind(r.target_id)}" for r in table.routes
                )
        return found

    # --- probes -------------------------------------------------------------------------------------------

    def probe(self, vantage: Vantage, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        """ONE batch per vantage, where that vantage's adapter runs it; every probe a new connection."""
        if not specs:
            return []
        runner = self._vantage_factory(vantage)
        results = runner.probe(specs, timeout_seconds=timeout_seconds)
        for _ in range(self.config.probe.attempts - 1):  # probe.attempts: tries per cell before it fails
            again = [spec for spec, result in zip(specs, results, strict=True) if result.outcome != "ok"]
            if not again:
                break
            retried = dict(zip(again, runner.probe(again, timeout_seconds=timeout_seconds), strict=True))
            results = [retried.get(spec, result) for spec, result in zip(specs, results, strict=True)]
        return results

    # --- cleanup ------------------------------------------------------------------------------------------

    def cleanup(self) -> StepResult:
        """Ensure absent, in dependency order; each part succeeds when its resources are already gone. Works
        from the persisted ids, or from the tags alone when the state directory lost them."""
        state = self._cleanup_state()
        try:
            removed = self._remove(state)
        finally:  # attach mode: aws-node as found, also when removing failed (the saved record says what it was)
            restored = self.restore_aws_node()
        _state.forget(self.environment)
        drift.remove_baseline(self.environment)  # a baseline belongs to the environment it was recorded on
        generation = statedir.advance_generation(self.ref.key)
        done: dict[str, Any] = {"removed": removed, "generation": generation}
        return StepResult(step="cleanup", resources=done | ({"restored": restored} if self.config.attaching else {}))

    def _remove(self, state: AwsState) -> list[str]:
        """Everything recorded, in dependency order. What belongs to an attached cluster is only read there:
        its namespace is removed (with its load balancers, waited for), never the cluster, VPC or peering."""
        # Independent parts at once: on AWS, each load balancer, node group, cluster and host takes minutes.
        lbs = [partial(self._remove_load_balancers, vpc, ids, state) for vpc, ids in state.clusters.items()]
        removed = _flat(self.parts(lbs))
        self._revoke_opened(state)
        removed += self._remove_peering(state)
        clusters = [partial(self._remove_cluster, vpc, ids) for vpc, ids in state.clusters.items()]
        tgw = partial(beyond.remove_transit_gateway, self.cloud, state)
        removed += _flat(self.parts([partial(self._remove_host, state), tgw, *clusters]))
        removed += beyond.remove_pod_groups(self.cloud, state)
        removed += _flat(self.parts([partial(self._remove_network, n) for n in state.networks.values()]))
        for role in state.roles:
            self.cloud.delete_role(role)
        return removed

    def _cleanup_state(self) -> AwsState:
        """The recorded ids; else (none recorded here, or the record unreadable: said so) those found by tags."""
        try:
            if _state.is_recorded(self.environment):
                return self._state()
        except UnreadableStateError as error:
            log.warning("aws.state_unreadable", environment=self.environment, path=error.path, problem=error.problem)
        return self._recovered_state()

    def _recovered_state(self) -> AwsState:
        log.info("aws.state_missing", environment=self.environment, action="recovering ids from tags")
        if self.config.attaching:
            return self._recovered_attached()
        specs = {vpc: cluster_spec(self.config, vpc) for vpc in VPC_KEYS}
        clusters = {vpc: ClusterIds(name=spec.name, nodegroup=spec.nodegroup) for vpc, spec in specs.items()}
        names = _recover.Names(
            peer_host=PEER_HOST,
            peering=PEERING,
            clusters=clusters,
            instance_profile=role_name(self.config, "host"),
            roles=[role_name(self.config, kind) for kind in ("cluster", "node", "host")],
            transit_gateway=beyond.TRANSIT_GATEWAY if self.config.peering.via == "transit-gateway" else "",
            pod_groups={vpc: f"{vpc}-{beyond.POD_GROUP}" for vpc in VPC_KEYS},
        )
        return _recover.recover_state(self.cloud, self.config, names)

    def _recovered_attached(self) -> AwsState:
        """An attached environment without its record: the clusters and VPCs as read (marked attached: never
        removed), and what peerprobe made, found by its tags (the EC2 host, its group, profile and role). The
        rules it opened cannot be told from the owner's alike ones without the record: they are left, said so."""
        names = _recover.Names(
            peer_host=PEER_HOST,
            peering=PEERING,
            clusters={},
            instance_profile=role_name(self.config, "host"),
            roles=[role_name(self.config, "host")],
        )
        tagged = _recover.recover_state(self.cloud, self.config, names)
        found = self.found()
        if self.config.security_groups.open_from_peer:
            log.warning("attach.rules_unknown", environment=self.environment, rules_left=True)
        return tagged.model_copy(
            update={
                "networks": {vpc: _attached_network(f) for vpc, f in found.items()},
                "clusters": {vpc: _attached_cluster(f) for vpc, f in found.items()},
                "peering": None,
                "transit_gateway": None,
            }
        )

    def _placed(self) -> bool:
        """Attach mode: whether peerprobe's namespace is on an attached cluster (its run put it there)."""
        return any(self._kube(vpc).namespace_exists() for vpc in VPC_KEYS if self.config.attached(vpc))

    def _remove_load_balancers(self, vpc: VpcKey, ids: ClusterIds, state: AwsState) -> list[str]:
        """LoadBalancer Services first, so the controllers delete their load balancers; then wait until the
        load balancers, their interfaces and groups are gone. A cluster that cannot be reached (gone, or
        refusing us) gets its tagged load balancers deleted directly. On an attached cluster, only those of
        peerprobe's namespace: its owner's load balancers carry the same cluster tag."""
        network = state.networks.get(vpc)
        only = attach.namespace(self.config) if ids.attached else None
        deleted: list[str] = []
        try:
            deleted = self._kube(vpc).delete_load_balancer_services()
        except (InfrastructureError, CredentialsError) as error:
            log.warning("kube.unreachable", cluster=ids.name, error=str(error)[:200])
            self.cloud.delete_tagged_load_balancers(ids.name, namespace=only)
        if network is None:
            return deleted
        wait = partial(
            self.cloud.wait_load_balancers_gone,
            cluster=ids.name,
            vpc_id=network.vpc,
            timeout_seconds=self.load_balancer_delete_seconds,
            namespace=only,
        )
        try:
            wait()
        except WaitTimeoutError:
            self.cloud.delete_tagged_load_balancers(ids.name, namespace=only)
            wait()
        return [f"service {name}" for name in deleted]

    def _revoke_opened(self, state: AwsState) -> None:
        """Revoke what peerprobe opened, then check it is gone (design.md: cleanup verifies its rules)."""
        by_group: dict[str, list[IngressRule]] = {}
        for rule in state.opened:
            by_group.setdefault(rule.group, []).append(
                IngressRule(rule.protocol, rule.from_port, rule.to_port, cidr=rule.cidr)
            )
        for group, rules in by_group.items():
            try:
                self.cloud.revoke_ingress(group, rules=rules)
                left = set(self.cloud.ingress_rules(group)) & set(rules)
            except NotFoundError:
                continue  # the group is gone, and its rules with it
            if left:
                raise ConflictError(
                    f"security group {group}: {len(left)} peer rule(s) still present after revoke",
                    resource="security group",
                    resource_id=group,
                    state="rules-left",
                )

    def _remove_peering(self, state: AwsState) -> list[str]:
        if state.peering is None:
            return []
        for network in state.networks.values():
            for table_id in network.route_tables:
                with contextlib.suppress(NotFoundError):
                    for route in self.cloud.route_table(table_id).routes:
                        if route.target_id == state.peering:
                            self.cloud.delete_route(table_id, destination_cidr=route.destination_cidr)
        self.cloud.delete_peering(state.peering)
        return [f"peering {state.peering}"]

    def _remove_cluster(self, vpc: VpcKey, ids: ClusterIds) -> list[str]:
        if ids.attached:  # someone else's cluster: peerprobe's namespace, until the API server no longer has it
            self._kube(vpc).delete_namespace(timeout_seconds=self.load_balancer_delete_seconds)
            return [f"namespace {attach.namespace(self.config)} of eks cluster {ids.name}"]
        self.cloud.delete_nodegroup(ids.name, name=ids.nodegroup)
        self.cloud.delete_cluster(ids.name)
        return [f"eks cluster {ids.name}"]

    def _remove_host(self, state: AwsState) -> list[str]:
        removed = []
        if state.peer_host_instance:
            self.cloud.terminate_instance(state.peer_host_instance)
            removed.append(f"instance {state.peer_host_instance}")
        if state.peer_host_security_group:
            self.cloud.delete_security_group(state.peer_host_security_group)
        if state.instance_profile:
            self.cloud.delete_instance_profile(state.instance_profile)
        return removed

    def _remove_network(self, network: NetworkIds) -> list[str]:
        if network.attached:
            return []
        pods = beyond.remove_pod_network(self.cloud, network)
        if network.adopted:
            _network.untag_subnets(self.cloud, network)
            return [*pods, f"tags on {len(network.added_tags)} adopted subnet(s)"]
        if network.nat_gateway:
            self.cloud.delete_nat_gateway(network.nat_gateway)
        for table in network.route_tables:
            self.cloud.delete_route_table(table)
        for subnet in (*network.public_subnets, *network.private_subnets):
            self.cloud.delete_subnet(subnet)
        if network.internet_gateway:
            self.cloud.delete_internet_gateway(network.internet_gateway)
        self.cloud.delete_vpc(network.vpc)
        return [f"vpc {network.vpc}"]


def _with_planned_services(live: Topology, planned: Topology) -> Topology:
    """The live topology with the plan's Service allocations where no Service holds one yet: the peer rules
    opened while the clusters were created name the planned NodePort, so the Service must be given it."""
    vpc1 = live.vpc1.model_copy(
        update={
            "service_node_ports": planned.vpc1.service_node_ports | live.vpc1.service_node_ports,
            "health_check_node_ports": planned.vpc1.health_check_node_ports | live.vpc1.health_check_node_ports,
            "cluster_ip": live.vpc1.cluster_ip or planned.vpc1.cluster_ip,
        }
    )
    return live.model_copy(update={"vpc1": vpc1})


def _attached_network(found: attach_facts.FoundCluster) -> NetworkIds:
    return NetworkIds(
        key=found.key,
        vpc=found.vpc_id,
        cidr=found.vpc_cidr,
        adopted=True,
        attached=True,
        public_subnets=[s.id for s in found.subnets if s.public],
        private_subnets=[s.id for s in found.subnets if not s.public],
        route_tables=sorted({s.route_table for s in found.subnets if s.route_table}),  # the ones its subnets use
        nat_public_ip=found.nat_gateways[0] if found.nat_gateways else None,
    )


def _attached_cluster(found: attach_facts.FoundCluster) -> ClusterIds:
    return ClusterIds(name=found.name, nodegroup="", security_group=found.cluster_security_group, attached=True)


def _union(existing: list[OpenedRule], new: list[OpenedRule]) -> list[OpenedRule]:
    seen = {r.model_dump_json() for r in existing}
    return [*existing, *(r for r in new if r.model_dump_json() not in seen)]


def _kept_tags(state: AwsState, network: NetworkIds) -> NetworkIds:
    """A retried step finds the tags it added already there: the record of what to remove must survive it."""
    previous = state.networks.get(network.key)
    if previous is None or previous.vpc != network.vpc:
        return network
    return network.model_copy(update={"added_tags": previous.added_tags | network.added_tags})


Parts = Callable[[Sequence[Callable[[], list[str]]]], list[list[str]]]


def concurrently(parts: Sequence[Callable[[], list[str]]]) -> list[list[str]]:
    """Run independent parts at once; all of them finish before the first failure, if any, is raised."""
    if len(parts) < 2:
        return [part() for part in parts]
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="cleanup") as pool:
        futures = [pool.submit(in_this_context(part)) for part in parts]
    return [future.result() for future in futures]


def in_this_context(call: Callable[[], T]) -> Callable[[], T]:
    """`call` to run in another thread with this thread's context variables (a copy each): the log fields bound
    for the step, and Prefect's run context, without which a worker thread's events reach no run's logs."""
    return partial(contextvars.copy_context().run, call)


def one_by_one(parts: Sequence[Callable[[], list[str]]]) -> list[list[str]]:
    """The same parts in order: for tests that compare call sequences."""
    return [part() for part in parts]


def _flat(lists: list[list[str]]) -> list[str]:
    return [item for items in lists for item in items]


def run_setup(experiment: Experiment) -> None:
    """The setup steps in the flow's order without Prefect (`lab up`): both networks; then both clusters, the
    EC2 host and the peering at once; then the apps and the Services."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="setup") as pool:
        for done in [pool.submit(in_this_context(partial(experiment.create_network, vpc))) for vpc in VPC_KEYS]:
            done.result()
        steps = [
            *(pool.submit(in_this_context(partial(experiment.create_cluster, vpc))) for vpc in VPC_KEYS),
            pool.submit(in_this_context(experiment.create_peer_host)),
            pool.submit(in_this_context(experiment.peer_vpcs)),
        ]
        for done in steps:
            done.result()
    experiment.deploy_apps()
    experiment.expose_services()
