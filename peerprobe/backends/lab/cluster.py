"""The lab's Cluster port: what the Kubernetes API, kubelet, kube-proxy and aws-node do on EKS, done to the
namespace network. Deployments become the planned pods, Services kube-proxy's rules and the load balancers,
aws-node's environment the SNAT rules. The aws backend implements the same port with the kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import structlog

from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import eniconfig, environment, net
from peerprobe.backends.lab.agent.process import is_agent
from peerprobe.backends.lab.guest import Guest
from peerprobe.backends.lab.net._cni import EXCLUDE_SINCE  # the rules wait_rollout reads back are written there
from peerprobe.backends.ports import ServiceInfo
from peerprobe.backends.steps import VpcKey
from peerprobe.config import ExperimentConfig, Snat
from peerprobe.errors import ConfigError, ConflictError, NotFoundError
from peerprobe.topology import Node, Pod, plan
from peerprobe.wait import Waits, until

log = structlog.get_logger()
APPS = {"source-ip-app": "echo_pod", "busybox": "busybox_pod", "nginx": "nginx_pod"}
KUBE_PROXY_MODE = "iptables"  # the only mode the lab's kube-proxy runs (net/kube_proxy.py)


class LabCluster:
    """One of the lab environment's two clusters (vpc1 runs the apps and Services, vpc2 a busybox)."""

    def __init__(self, config: ExperimentConfig, key: VpcKey, *, run_id: str, timing: Waits) -> None:
        self.config = config
        self.key = key
        self.run_id = run_id
        self.timing = timing

    def apply(self, manifests: Sequence[Mapping[str, object]]) -> None:
        """ENIConfigs: recorded for the nodes' pod ENIs; Deployments: the data plane comes up with its pods;
        Services: kube-proxy, the controllers' rules and load balancers, health checks and DNS follow. (The
        SecurityGroupPolicy's pods get their branch ENIs as the plan lays them out; their groups' rules are read
        from moto.)"""
        found = eniconfig.from_manifests(manifests)
        if found:
            environment.record_eni_configs(self.config, self.key, found, run_id=self.run_id)
        deployments = [doc for doc in manifests if doc.get("kind") == "Deployment"]
        if deployments:
            environment.deploy(self.config, self.key, deployments, run_id=self.run_id)
        if self.key == "vpc1" and any(doc.get("kind") == "Service" for doc in manifests):
            lab_cloud.provisioning("load_balancer")
            environment.expose(self.config, manifests)

    def nodes(self) -> list[Node]:
        """The cluster's nodes: the node group's instances, as the lab placed them."""
        return list(getattr(plan(self.config), self.key).nodes)

    def pod(self, app: str) -> Pod | None:
        state = environment.load_state(environment.env_key(self.config))
        if state is None or state.net is None or app not in APPS:
            return None
        pod: Pod | None = getattr(getattr(state.topology, self.key), APPS[app], None)
        return pod

    def services(self) -> list[ServiceInfo]:
        if self.key != "vpc1":
            return []
        state = environment.load_state(environment.env_key(self.config))
        if state is None:
            return []
        hostnames = state.topology.vpc1.load_balancers
        return [_service_info(service, hostnames.get(service.kind, "")) for service in state.services]

    def wait_deployments(self, *, timeout_seconds: float) -> None:
        _wait(self._serving, self.key, "serving its deployments", timeout_seconds, self.timing)

    def wait_ready(self, *, timeout_seconds: float) -> None:
        """Bounded: the agent serves, and (vpc1) every load balancer has a healthy target in some zone."""
        _wait(self._ready, self.key, "answering on every load balancer", timeout_seconds, self.timing)

    def _serving(self) -> bool:
        return agent_serving(environment.env_key(self.config))

    def _ready(self) -> bool:
        """Every load balancer forwards to a healthy target in some zone: what its rules send to, not a check
        of the moment (a target a check missed at converge is taken into service here, as AWS's next check
        would, so the wait ends only when the data plane can answer)."""
        state = environment.load_state(environment.env_key(self.config))
        if state is None or state.net is None or not self._serving():
            return False
        if self.key != "vpc1":
            return True
        rechecked = environment.recheck_health(self.config).net
        lbs = rechecked.load_balancers if rechecked is not None else []
        return all(any(lb.healthy for lb in lbs if lb.kind == kind) for kind in {lb.kind for lb in lbs})

    # --- aws-node ---------------------------------------------------------------------------------------------

    def aws_node_env(self) -> dict[str, str]:
        state = environment.load_state(environment.env_key(self.config))
        if state is None:  # the lab's own message
            state = environment.require_state(self.config)
        return dict(state.aws_node[self.key])

    def cni_version(self) -> str:
        version: str = getattr(self.config.clusters, self.key).cni_version
        return version

    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        """Before the data plane exists (create-cluster's settings for the nodes to come) the env is recorded
        only; afterwards the SNAT rules follow it at once."""
        state = environment.load_state(environment.env_key(self.config))
        if state is None or state.net is None:
            environment.preset_env(self.config, self.key, assignments, run_id=self.run_id)
        else:
            environment.set_env(self.config, self.key, assignments)
        return self.aws_node_env()

    def wait_rollout(self, *, timeout_seconds: float) -> None:
        """Until every node of the cluster has aws-node's rules for its environment in its nat table."""
        until(
            lambda: not self._nodes_without(),
            kind="aws-node",
            resource_id=self.key,
            goal="rolled out on every node",
            timeout_seconds=timeout_seconds,
            timing=self.timing,
        )

    def _nodes_without(self) -> list[str]:
        state = environment.require_state(self.config)
        assert state.net is not None
        snat = state.snat(self.key)
        supported = getattr(self.config.clusters, self.key).cni >= EXCLUDE_SINCE
        return [
            n.name
            for n in state.net.nodes_of(self.key)
            if not snat_installed(n.ns, snat, exclusions_supported=supported)
        ]

    def delete_load_balancer_services(self) -> list[str]:
        return environment.delete_load_balancer_services(self.config) if self.key == "vpc1" else []

    # The lab's own clusters run the experiment in `default`; an attached one is a VisitingCluster.
    def ensure_namespace(self) -> None:
        raise ConfigError(f"clusters.{self.key}: the lab's own cluster has no namespace of peerprobe's to create")

    def namespace_exists(self) -> bool:
        return False

    def delete_namespace(self, *, timeout_seconds: float) -> None:
        return None


def agent_serving(env_key: str) -> bool:
    """Whether the lab environment's agent (its pods' servers) runs."""
    state = environment.load_state(env_key)
    return state is not None and state.agent_pid is not None and is_agent(state.agent_pid)


def _wait(ready: Callable[[], bool], where: str, goal: str, timeout_seconds: float, timing: Waits) -> None:
    until(ready, kind="lab cluster", resource_id=where, goal=goal, timeout_seconds=timeout_seconds, timing=timing)


def _service_info(service: net.KubeService, hostname: str) -> ServiceInfo:
    return ServiceInfo(
        name=service.name,
        type=service.type,
        port=service.port,
        target_port=service.target_port,
        node_port=service.node_port,
        health_check_node_port=service.health_check_node_port,
        cluster_ip=service.cluster_ip,
        external_traffic_policy="Local" if service.local else "Cluster",
        load_balancer_source_ranges=tuple(service.source_ranges),
        annotations=dict(service.annotations),
        hostname=hostname if service.type == "LoadBalancer" else "",
    )


def snat_installed(namespace: str, snat: Snat, *, exclusions_supported: bool = True) -> bool:
    """Read the node's nat table back, as an operator would with iptables-save after a rollout."""
    saved = net.exec_in(namespace, ["iptables-save", "-t", "nat"], timeout=5).stdout
    has_chain_jump = bool(re.search(r"^-A POSTROUTING .*-j AWS-SNAT-CHAIN-0", saved, re.MULTILINE))
    if snat.external_snat:
        return not has_chain_jump
    found = set(re.findall(r'^-A AWS-SNAT-CHAIN-0 -d (\S+) .*"AWS SNAT CHAIN EXCLUSION"', saved, re.MULTILINE))
    wanted = set(snat.exclude_snat_cidrs) if exclusions_supported else set()
    return has_chain_jump and found == wanted


class VisitingCluster:
    """An attached cluster (attach mode): a cluster of the lab environment `owner` that runs it, where this
    experiment has only its namespace `peerprobe-<name>`. Its workloads join the owner's data plane; aws-node
    is the owner's (changed only by SNAT phases, which backends/attach.py restores)."""

    def __init__(self, config: ExperimentConfig, key: VpcKey, *, owner: str, run_id: str, timing: Waits) -> None:
        self.config = config
        self.key = key
        self.owner = owner
        self.run_id = run_id
        self.timing = timing

    def _owner_state(self) -> environment.LabState:
        state = environment.load_state(self.owner)
        if state is None or state.net is None:
            raise ConflictError(
                f"lab environment {self.owner}: not running; cluster {self.key} of it cannot be used",
                resource="lab environment",
                resource_id=self.owner,
                state="absent",
            )
        return state

    def _host(self) -> LabCluster:
        """The owner's own Cluster of this cluster: its nodes and aws-node (the same key there: read_attached)."""
        state = self._owner_state()
        return LabCluster(state.config, self.key, run_id=state.run_id, timing=self.timing)

    def _guest(self) -> Guest | None:
        return environment.guest(self.owner, self.config.name)

    def apply(self, manifests: Sequence[Mapping[str, object]]) -> None:
        """Deployments: the pods join the owner's data plane; Services (VPC1): kube-proxy, the controllers'
        rules and load balancers follow, the visitor's own."""
        deployments = [doc for doc in manifests if doc.get("kind") == "Deployment"]
        if deployments:
            environment.guest_deploy(self.owner, self.config, self.key, deployments)
        if self.key == "vpc1" and any(doc.get("kind") == "Service" for doc in manifests):
            lab_cloud.provisioning("load_balancer")
            environment.guest_expose(self.owner, self.config, manifests, run_id=self.run_id)

    def nodes(self) -> list[Node]:
        return self._host().nodes()

    def pod(self, app: str) -> Pod | None:
        found = self._guest()
        if found is None or app not in APPS or not found.deployments.get(self.key):
            return None
        pod: Pod | None = getattr(getattr(found.topology, self.key), APPS[app], None)
        return pod

    def services(self) -> list[ServiceInfo]:
        found = self._guest()
        if self.key != "vpc1" or found is None:
            return []
        hostnames = found.topology.vpc1.load_balancers
        return [_service_info(service, hostnames.get(service.kind, "")) for service in found.services]

    def wait_deployments(self, *, timeout_seconds: float) -> None:
        _wait(self._serving, self._where, "serving its deployments", timeout_seconds, self.timing)

    def wait_ready(self, *, timeout_seconds: float) -> None:
        _wait(self._ready, self._where, "answering on every load balancer", timeout_seconds, self.timing)

    @property
    def _where(self) -> str:
        return f"{self.owner}/{self.key}/peerprobe-{self.config.name}"

    def _serving(self) -> bool:
        return agent_serving(self.owner)

    def _ready(self) -> bool:
        """The owner's agent serves and each of this visitor's load balancers forwards to a healthy target."""
        found = self._guest()
        if found is None or not self._serving():
            return False
        if self.key != "vpc1":
            return True
        rechecked = environment.recheck_health(self._owner_state().config).net
        lbs = [lb for lb in (rechecked.load_balancers if rechecked else []) if lb.guest == found.tag]
        return all(any(lb.healthy for lb in lbs if lb.kind == kind) for kind in {lb.kind for lb in lbs})

    # --- aws-node: the owner's ----------------------------------------------------------------------------

    def aws_node_env(self) -> dict[str, str]:
        return self._host().aws_node_env()

    def cni_version(self) -> str:
        return self._host().cni_version()

    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        return self._host().patch_aws_node_env(assignments)

    def wait_rollout(self, *, timeout_seconds: float) -> None:
        self._host().wait_rollout(timeout_seconds=timeout_seconds)

    def delete_load_balancer_services(self) -> list[str]:
        return environment.guest_delete_load_balancers(self.owner, self.config) if self.key == "vpc1" else []

    # --- its namespace ------------------------------------------------------------------------------------

    def ensure_namespace(self) -> None:
        environment.host_guest(self.owner, self.config, self.key)

    def namespace_exists(self) -> bool:
        found = self._guest()
        return found is not None and self.key in found.clusters

    def delete_namespace(self, *, timeout_seconds: float) -> None:
        environment.evict_guest(self.owner, self.config, self.key)


class LabReader:
    """Attach mode's reading of a lab cluster's own API side (the ClusterReader port): from the state of the lab
    environment that runs it."""

    def __init__(self, owner: str, key: VpcKey) -> None:
        self.owner = owner
        self.key = key

    def _state(self) -> environment.LabState:
        state = environment.load_state(self.owner)
        if state is None or state.net is None:
            raise NotFoundError(
                f"lab environment {self.owner}: not running", resource="lab environment", resource_id=self.owner
            )
        return state

    def nodes(self) -> list[Node]:
        return list(getattr(self._state().topology, self.key).nodes)

    def aws_node_env(self) -> dict[str, str]:
        return dict(self._state().aws_node[self.key])

    def cni_version(self) -> str:
        version: str = getattr(self._state().config.clusters, self.key).cni_version
        return version

    def kube_proxy_mode(self) -> str:
        return KUBE_PROXY_MODE
