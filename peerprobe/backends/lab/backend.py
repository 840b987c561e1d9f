"""The lab behind the Experiment port: each flow step as an idempotent operation on moto and the namespaces.

Steps run concurrently in the flow's threads; the environment's state file is read and written under a lock.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence

import structlog

from peerprobe import snapshot as snap
from peerprobe import statedir
from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.backends.opened import peer_rules
from peerprobe.backends.steps import EnvironmentRef, StepResult, VpcKey
from peerprobe.config import Snat
from peerprobe.errors import ConfigError, ConflictError, NotFoundError, WaitTimeoutError
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.topology import Topology
from peerprobe.vocabulary import Vantage

log = structlog.get_logger()
SNAT_POLL_SECONDS = 0.05
LATENCY_ENV = "PEERPROBE_LAB_LATENCY"  # e.g. "cluster=7,nodegroup=2,load_balancer=2,ec2=0.3": AWS-like step times


def latency_profile() -> dict[str, float]:
    """Seconds each kind of step takes in the lab when it stands in for AWS (benchmarks of the flow's overlap)."""
    profile: dict[str, float] = {}
    for item in filter(None, os.environ.get(LATENCY_ENV, "").split(",")):
        name, _, seconds = item.partition("=")
        try:
            profile[name.strip()] = float(seconds)
        except ValueError:
            raise ConfigError(f"{LATENCY_ENV}: {item!r} is not name=seconds") from None
    return profile


def _provisioning(kind: str) -> None:
    # A deliberate, bounded delay standing in for AWS's own provisioning time; zero unless a profile is set.
    delay = latency_profile().get(kind, 0.0)
    if delay > 0:
        time.sleep(delay)


EXCLUDE_SINCE = (1, 6, 0)  # AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS exists from CNI v1.6.0 (CHANGELOG, PR #520)


class LabExperiment:
    """The Experiment port on the embedded lab (moto + network namespaces)."""

    def __init__(self, ref: EnvironmentRef) -> None:
        self.ref = ref
        self.config = ref.config
        self.key = lab.env_key(ref.config)

    # --- state ------------------------------------------------------------------------------------------------

    def _cloud(self) -> AwsCloud:
        return lab._cloud(self.config, self.key, self.ref.run_id)

    def _update(self, change: Callable[[lab.LabState], lab.LabState]) -> lab.LabState:
        with statedir.locked(lab._state_name(self.key)):
            current = lab.load_state(self.key) or self._fresh_state()
            updated = change(current)
            lab.save_state(updated)
            return updated

    def _fresh_state(self) -> lab.LabState:
        return lab._initial_state(self.config, self.key, self.ref.run_id, self.topology())

    def _ids(self) -> lab_cloud.CloudIds:
        state = lab.load_state(self.key)
        return state.cloud if state is not None and state.cloud is not None else lab_cloud.CloudIds()

    def _with_ids(self, change: Callable[[lab_cloud.CloudIds], lab_cloud.CloudIds]) -> lab.LabState:
        return self._update(lambda s: s.model_copy(update={"cloud": change(s.cloud or lab_cloud.CloudIds())}))

    # --- steps ------------------------------------------------------------------------------------------------

    def create_network(self, vpc: VpcKey) -> StepResult:
        ids = lab_cloud.ensure_network(self._cloud(), self.config, self.topology(), vpc)
        self._with_ids(lambda c: c.model_copy(update={"vpcs": {**c.vpcs, vpc: _merged(c.vpcs.get(vpc), ids)}}))
        return StepResult(step=f"create-network-{vpc}", resources={"vpc": ids.vpc, "nat_gateway": ids.nat_gateway})

    def create_cluster(self, vpc: VpcKey) -> StepResult:
        network = self._network(vpc)
        _provisioning("cluster")
        _provisioning("nodegroup")
        ids = lab_cloud.ensure_cluster(self._cloud(), self.config, self.topology(), network)
        self._with_ids(lambda c: c.model_copy(update={"vpcs": {**c.vpcs, vpc: ids}}))
        resources = {"cluster": ids.cluster, "nodegroup": ids.nodegroup, "nodes": ids.node_instances}
        return StepResult(step=f"create-cluster-{vpc}", resources=resources)

    def create_peer_host(self) -> StepResult:
        _provisioning("ec2")
        group, instance = lab_cloud.ensure_peer_host(self._cloud(), self.config, self.topology(), self._network("vpc2"))
        update = {"peer_host_security_group": group, "peer_host_instance": instance}
        self._with_ids(lambda c: c.model_copy(update=update))
        return StepResult(step="create-peer-host", resources={"instance": instance, "security_group": group})

    def peer_vpcs(self) -> StepResult:
        """The peering with routes both ways, and VPC1's nodes opened to the peer CIDR for the probes."""
        opened = self.open_security_groups().resources["opened"]
        if not self.config.peering.enabled:
            return StepResult(step="peer-vpcs", resources={"opened": opened}, note="peering.enabled is false")
        peering = lab_cloud.ensure_peering(self._cloud(), self._network("vpc1"), self._network("vpc2"))
        self._with_ids(lambda c: c.model_copy(update={"peering": peering}))
        return StepResult(step="peer-vpcs", resources={"peering": peering, "opened": opened})

    def deploy_apps(self) -> StepResult:
        """The pods come to exist: the namespace network from moto's state, then the echo servers."""
        state = self._update(lambda s: s.model_copy(update={"config": self.config, "topology": self.topology()}))
        if state.net is not None and lab.healthy(state):
            return StepResult(step="deploy-apps", resources={"agent_pid": state.agent_pid}, note="already running")
        with statedir.locked(lab._state_name(self.key)):
            state = lab.materialize(state, self._cloud())
        pods = [pod.ns for node in state.net.nodes for pod in node.pods] if state.net else []
        return StepResult(step="deploy-apps", resources={"pods": pods, "agent_pid": state.agent_pid})

    def expose_services(self) -> StepResult:
        """Every Service of resources/ applied; the controllers' rules go into moto, then kube-proxy, the load
        balancers, their health checks and DNS follow in the data plane."""
        _provisioning("load_balancer")
        with statedir.locked(lab._state_name(self.key)):
            state = lab.require_state(self.config)
            cloud = self._cloud()
            state = lab.expose(state, cloud)
        exposed = {
            service.name: service.model_dump(mode="json", include={"cluster_ip", "node_port"})
            for service in state.services
        }
        return StepResult(step="expose-services", resources=exposed)

    def open_security_groups(self) -> StepResult:
        ids = self._ids()
        if "vpc1" not in ids.vpcs:
            raise ConflictError(
                f"environment {self.key}: no VPC1 network yet", resource="vpc", resource_id="vpc1", state="absent"
            )
        rules = peer_rules(self.config, self.topology())
        self._cloud().authorize_ingress(ids.vpcs["vpc1"].node_security_group, rules=rules)
        state = lab.load_state(self.key)
        if state is not None and state.net is not None:  # a running data plane follows moto's rules now
            lab.refresh(self.config)
        opened = [f"tcp/{r.from_port} from {r.cidr}" for r in rules]
        return StepResult(step="open-security-groups", resources={"opened": opened})

    def exists(self) -> bool:
        state = lab.load_state(self.key)
        if state is None or state.cloud is None or not state.cloud.vpcs:
            return False
        try:
            found = self._cloud().ec2.describe_vpcs(
                Filters=[{"Name": "vpc-id", "Values": [v.vpc for v in state.cloud.vpcs.values()]}]
            )
        except Exception:  # moto gone or restarted: its resources went with it
            return False
        return len(found["Vpcs"]) == len(state.cloud.vpcs)

    def topology(self) -> Topology:
        state = lab.load_state(self.key)
        return state.topology if state is not None else _plan(self.ref)

    def set_snat(self, vpc: VpcKey, snat: Snat) -> Snat:
        return lab.set_snat(self.config, vpc, snat)

    def read_snat(self, vpc: VpcKey) -> Snat:
        return lab.require_state(self.config).snat(vpc)

    def wait_snat(self, vpc: VpcKey, snat: Snat, *, timeout_seconds: float) -> Snat:
        """Until every node of the cluster has aws-node's rules for `snat` in its nat table."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            missing = self._nodes_without(vpc, snat)
            if not missing:
                return lab.require_state(self.config).snat(vpc)
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"aws-node {vpc}: rules for {snat.model_dump()} missing on {', '.join(missing)} "
                    f"after {timeout_seconds:.0f}s", resource="aws-node", resource_id=vpc, state="rolling-out",
                )  # fmt: skip
            time.sleep(SNAT_POLL_SECONDS)

    def _nodes_without(self, vpc: VpcKey, snat: Snat) -> list[str]:
        state = lab.require_state(self.config)
        assert state.net is not None
        supported = getattr(self.config.clusters, vpc).cni >= EXCLUDE_SINCE
        return [
            n.name for n in state.net.nodes_of(vpc) if not _snat_installed(n.ns, snat, exclusions_supported=supported)
        ]

    def probe(self, vantage: Vantage, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        state = lab.require_state(self.config)
        results = lab.probe(state, specs, timeout_seconds=timeout_seconds)
        return [results[spec] for spec in specs]

    def snapshot(self) -> snap.ConfigSnapshot:
        """What the lab runs now: aws-node's environment and the CNI version from the lab's state (what `lab
        set-env` changes), the Services as applied, and security groups, peering and routes read back from moto
        (what a change behind peerprobe's back through the AWS API changes). Creates and deletes nothing."""
        state = lab.require_state(self.config)
        cloud = self._cloud()
        ids = state.cloud or lab_cloud.CloudIds()
        clusters = {
            key: snap.ClusterSnapshot(name=getattr(state.config.clusters, key).name,
                                      cni_version=getattr(state.config.clusters, key).cni_version,
                                      aws_node=snap.redact(state.aws_node[key]))
            for key in lab.VPC_KEYS
        }  # fmt: skip
        return snap.ConfigSnapshot(
            clusters=clusters,
            services={service.kind: _service_snapshot(service) for service in state.services},
            security_groups=_group_rules(cloud, ids),
            peering=_peering_snapshot(cloud, ids),
            routes=_routes(cloud, ids),
        )

    def cleanup(self) -> StepResult:
        removed = lab.down(self.config)
        generation = statedir.advance_generation(self.ref.key)
        return StepResult(step="cleanup", resources={"removed": removed, "generation": generation})

    def _network(self, vpc: VpcKey) -> lab_cloud.VpcIds:
        ids = self._ids()
        if vpc not in ids.vpcs:
            raise ConflictError(
                f"environment {self.key}: network {vpc} does not exist yet", resource="vpc", resource_id=vpc,
                state="absent",
            )  # fmt: skip
        return ids.vpcs[vpc]


def _service_snapshot(service: net.KubeService) -> snap.ServiceSnapshot:
    return snap.ServiceSnapshot(
        type=service.type, port=service.port, target_port=service.target_port, node_port=service.node_port,
        external_traffic_policy=("Local" if service.local else "Cluster") if service.type != "ClusterIP" else None,
        load_balancer_source_ranges=sorted(service.source_ranges),
        annotations=dict(sorted(service.annotations.items())),
    )  # fmt: skip


def _group_rules(cloud: AwsCloud, ids: lab_cloud.CloudIds) -> dict[str, list[str]]:
    """Each group's ingress rules by role name, sources named by role too; a deleted group is `absent`."""
    roles = {vpc.node_security_group: snap.NODE_GROUP[key] for key, vpc in ids.vpcs.items()}
    if ids.peer_host_security_group:
        roles[ids.peer_host_security_group] = snap.PEER_HOST_GROUP
    if ids.elb_security_group:
        roles[ids.elb_security_group] = snap.ELB_GROUP
    found: dict[str, list[str]] = {}
    for group_id, role in roles.items():
        try:
            rules = cloud.ingress_rules(group_id)
        except NotFoundError:
            found[role] = [snap.ABSENT]
            continue
        found[role] = sorted(
            snap.rule_text(r.protocol, r.from_port, r.to_port,
                           r.cidr or f"sg {roles.get(r.source_group, r.source_group)}", r.description)
            for r in rules
        )  # fmt: skip
    return found


def _peering_snapshot(cloud: AwsCloud, ids: lab_cloud.CloudIds) -> snap.PeeringSnapshot | None:
    if ids.peering is None:
        return None
    try:
        peering = cloud.peering(ids.peering)
    except NotFoundError:
        return snap.PeeringSnapshot(status=snap.ABSENT)
    return snap.PeeringSnapshot(
        status=peering.status, requester_cidr=peering.requester_cidr, accepter_cidr=peering.accepter_cidr
    )


def _routes(cloud: AwsCloud, ids: lab_cloud.CloudIds) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, vpc in ids.vpcs.items():
        for side, table in (("public", vpc.public_route_table), ("private", vpc.private_route_table)):
            try:
                routes = cloud.route_table(table).routes
            except NotFoundError:
                found[f"{key}-{side}"] = [snap.ABSENT]
                continue
            found[f"{key}-{side}"] = sorted(
                f"{r.destination_cidr} -> {snap.route_target_kind(r.target_id)}" for r in routes
            )
    return found


def _merged(existing: lab_cloud.VpcIds | None, network: lab_cloud.VpcIds) -> lab_cloud.VpcIds:
    # A retried network step must not forget a cluster a later step already recorded.
    if existing is None:
        return network
    return network.model_copy(
        update={"cluster": existing.cluster, "nodegroup": existing.nodegroup, "node_instances": existing.node_instances}
    )


def _plan(ref: EnvironmentRef) -> Topology:
    from peerprobe.topology import plan

    return plan(ref.config, backend=ref.backend)


def _snat_installed(namespace: str, snat: Snat, *, exclusions_supported: bool = True) -> bool:
    """Read the node's nat table back, as an operator would with iptables-save after a rollout."""
    saved = net.exec_in(namespace, ["iptables-save", "-t", "nat"], timeout=5).stdout
    has_chain_jump = bool(re.search(r"^-A POSTROUTING .*-j AWS-SNAT-CHAIN-0", saved, re.MULTILINE))
    if snat.external_snat:
        return not has_chain_jump
    found = set(re.findall(r'^-A AWS-SNAT-CHAIN-0 -d (\S+) .*"AWS SNAT CHAIN EXCLUSION"', saved, re.MULTILINE))
    wanted = set(snat.exclude_snat_cidrs) if exclusions_supported else set()
    return has_chain_jump and found == wanted
