"""The lab's data plane over its lifetime: the namespace network built from what moto holds, the Services,
the echo agent, `set-env` and probing; `up` and `down` run the experiment's own steps (backend.py). Its state
is saved per environment (``lab:<name>:<region>``) so that a later command finds it, and a lab a crash left
behind is detected and removed by the next `up` or by `down`. The AWS-side ids are the steps' (aws/_state.py).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field, ValidationError

from peerprobe import aws_node, statedir
from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.aws._state import AwsState
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import dns, health, kube, net, observe
from peerprobe.backends.lab.agent import spec as agent_spec
from peerprobe.backends.lab.agent.client import run_batches
from peerprobe.backends.lab.agent.process import is_agent, reload_agent, running_agents, start_agent, stop_agent
from peerprobe.backends.lab.agent.resolver import ResolverSource
from peerprobe.backends.lab.agent.spec import Listener
from peerprobe.backends.lab.eniconfig import EniConfig, check_placement
from peerprobe.backends.lab.guest import Guest, free_slot, new_guest
from peerprobe.backends.lab.net import KubeService, LabNet, Visitor
from peerprobe.backends.steps import VpcKey
from peerprobe.config import ExperimentConfig, Snat
from peerprobe.errors import (
    ConfigError,
    ConflictError,
    InfrastructureError,
    NotFoundError,
    UnreadableStateError,
    WaitTimeoutError,
)
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ECHO_PORT, PEER_HOST_PORT, ProbeSpec
from peerprobe.topology import Topology, plan
from peerprobe.vocabulary import Vantage

log = structlog.get_logger()
STATE_SCHEMA = "peerprobe.lab-state/v1"
AGENT_READY_SECONDS = 10.0
AGENT_SPEC, AGENT_LOG = "agent.json", "agent.log"  # in the environment's directory
NGINX_PORT = 80


def _empty_envs() -> dict[VpcKey, dict[str, str]]:
    return {"vpc1": {}, "vpc2": {}}


class LabState(BaseModel):
    """What a later command needs to find, change or remove this environment."""

    schema_: str = Field(default=STATE_SCHEMA, alias="schema")
    env_key: str
    run_id: str
    created_at: str
    config: ExperimentConfig
    topology: Topology
    net: LabNet | None = None
    elb_security_group: str | None = None  # the Classic ELB's own group, made by the in-tree controller
    aws_node: dict[VpcKey, dict[str, str]] = Field(default_factory=_empty_envs)
    eni_configs: dict[VpcKey, dict[str, EniConfig]] = Field(default_factory=dict)  # custom networking, by zone
    agent_pid: int | None = None
    deployments: list[dict[str, Any]] = Field(default_factory=list)  # the Deployments applied to VPC1
    services: list[KubeService] = Field(default_factory=list)  # what the Cluster port applied to VPC1
    dns: dict[str, dict[str, list[str]]] = Field(default_factory=dict)  # vantage namespace -> name -> addresses
    guests: dict[str, Guest] = Field(default_factory=dict)  # attach mode: visiting experiments, by name

    model_config = {"populate_by_name": True}

    def snat(self, key: VpcKey) -> Snat:
        return aws_node.snat_from_env(self.aws_node[key])

    def visitors(self) -> list[Visitor]:
        """The visiting experiments that run something here (attach mode), for the data plane to build."""
        return [v for guest in self.guests.values() if (v := guest.visitor()) is not None]

    def all_services(self) -> list[KubeService]:
        """Every Service kube-proxy serves: the lab's own and the visitors'."""
        return [*self.services, *(s for guest in self.guests.values() for s in guest.services)]


def env_key(config: ExperimentConfig) -> str:
    return f"lab:{config.name}:{config.region}"


def _state_name(key: str) -> str:
    return "environments/" + re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".json"


def state_file(key: str, state_dir: Path) -> Path:
    """Where the state of `key` is kept in `state_dir` (any state directory, not only this one)."""
    return state_dir / _state_name(key)


def _env_path(key: str) -> Path:
    """The environment's own directory (the agent's spec and log), absolute: the agent's command line names it."""
    return (statedir.state_dir() / "environments" / re.sub(r"[^A-Za-z0-9_.-]", "_", key)).absolute()


def _env_dir(key: str) -> Path:
    path = _env_path(key)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def load_state(key: str) -> LabState | None:
    """The environment's saved state, None when there is none; a state file that is there but cannot be used
    (truncated, garbage, another schema or environment, a symlink) raises UnreadableStateError saying so."""
    name = _state_name(key)
    raw = statedir.read_state(name)
    if raw is None:
        return None
    try:
        state = LabState.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise UnreadableStateError(statedir.state_dir() / name, f"not a lab state: {where}: {first['msg']}") from None
    if state.schema_ != STATE_SCHEMA or state.env_key != key:
        problem = f"schema {state.schema_!r} of environment {state.env_key!r}, not {STATE_SCHEMA!r} of {key!r}"
        raise UnreadableStateError(statedir.state_dir() / name, problem)
    return state


def readable_state(key: str) -> LabState | None:
    """The saved state for a command that can do without it (removing the environment): an unreadable one is
    reported (its path and what is wrong) and taken as none; the command then works from kernel objects and tags."""
    try:
        return load_state(key)
    except UnreadableStateError as error:
        if error.path not in _reported:  # once per command, however many steps look
            _reported.add(error.path)
            log.warning("lab.state_unreadable", env=key, path=error.path, problem=error.problem)
        return None


_reported: set[str] = set()


def _forget_state(key: str) -> None:
    """Remove the environment's state file; an unreadable one is moved to quarantine/ instead, to look at."""
    moved = statedir.discard(_state_name(key))
    if moved is not None:
        log.warning("lab.state_quarantined", env=key, moved_to=str(moved))
        _reported.discard(str(statedir.state_dir() / _state_name(key)))


def save_state(state: LabState) -> None:
    statedir.write_json(_state_name(state.env_key), state.model_dump(mode="json", by_alias=True))


def require_state(config: ExperimentConfig) -> LabState:
    state = load_state(env_key(config))
    if state is None or state.net is None:
        raise ConfigError(f"no lab environment {env_key(config)}: run `peerprobe lab up` first")
    return state


# --- up ------------------------------------------------------------------------------------------------------


def up(config: ExperimentConfig, *, run_id: str | None = None) -> LabState:
    """Bring the environment to the state the experiment probes, by the experiment's own steps (clusters,
    peering and rules, apps, Services, the first phase's SNAT settings), without probing. Idempotent;
    replaces a lab a crash left."""
    from peerprobe.backends.lab.backend import set_up

    net.check_available()
    key, started = env_key(config), time.perf_counter()
    _clear_stale(key)
    set_up(config, run_id=run_id or _new_run_id())
    # Attach mode: the visitor has no data plane of its own; what it set up runs in its owner's.
    state = require_state(config) if not config.attaching else _owner_state(owner_key(config, "vpc1"))
    log.info("lab.up", env=key, run_id=state.run_id, elapsed_ms=round((time.perf_counter() - started) * 1000))
    return state


def _new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _initial_state(config: ExperimentConfig, key: str, run_id: str, planned: Topology) -> LabState:
    existing = load_state(key)
    baseline = config.phases[0].snat
    aws_env: dict[VpcKey, dict[str, str]] = {
        "vpc1": aws_node.env_for(baseline.vpc1),
        "vpc2": aws_node.env_for(baseline.vpc2),
    }
    if existing is not None:
        return existing.model_copy(update={"config": config, "topology": planned})
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return LabState(env_key=key, run_id=run_id, created_at=created, config=config, topology=planned, aws_node=aws_env)


def _cloud(config: ExperimentConfig, key: str, run_id: str) -> AwsCloud:
    return lab_cloud.connect(config, plan(config), environment=key, run_id=run_id)


def _ids(key: str) -> AwsState:
    """The ids the experiment's steps recorded for this environment (what moto holds for it)."""
    return aws_state.load(key)


def deploy(
    config: ExperimentConfig, cluster: VpcKey, deployments: Sequence[Mapping[str, Any]], *, run_id: str
) -> LabState:
    """The Deployments applied: the pods come to exist with the network they live in, built from moto's
    state, and the echo servers start. A healthy running lab is kept as it is."""
    key = env_key(config)
    with statedir.locked(_state_name(key)):
        state = _initial_state(config, key, run_id, plan(config))
        if cluster == "vpc1":  # the Services' endpoints are the pods of these (VPC2 runs only a busybox)
            state = state.model_copy(update={"deployments": [dict(d) for d in deployments]})
        save_state(state)  # before building anything: `down` can always find what this run made
        if state.net is not None and healthy(state):
            return state
        return materialize(state, _cloud(config, key, run_id))


def materialize(state: LabState, cloud: AwsCloud) -> LabState:
    """The data plane from moto's state and the applied Services: namespaces, kube-proxy, the agent's
    servers, then health checks, load balancer rules and DNS. Replaces a running one (its agent included)."""
    if state.agent_pid is not None:  # the agent goes with the network it served
        stop_agent(state.agent_pid)
    state = _build_network(state.model_copy(update={"agent_pid": None}), cloud)
    save_state(state)
    assert state.net is not None
    net.apply_kube_proxy(state.net, state.all_services())
    return converge(_update_agent(state))


def expose(config: ExperimentConfig, manifests: Sequence[Mapping[str, Any]]) -> LabState:
    """The Services applied to the running lab that deploy-apps built: the first time, the load balancer nodes
    attach to it and the agent's listeners follow; later, kube-proxy, the security groups (with the
    controllers' rules), health checks and DNS follow the Services. A broken lab is rebuilt instead."""
    key = env_key(config)
    with statedir.locked(_state_name(key)):
        state = require_state(config)
        cloud = _cloud(config, key, state.run_id)
        state = _apply_services(state, cloud, manifests)
        if state.net is None or not healthy(state):
            return materialize(state, cloud)
        if state.net.load_balancers:
            return _follow_services(state, cloud)
        lab = net.attach_load_balancers(state.net, state.config, state.topology, state.services)
        state = state.model_copy(update={"net": lab})
        save_state(state)  # the new namespaces are on record before anything else can fail
        net.apply_kube_proxy(lab, state.all_services())
        lab = net.apply_security_groups(lab, _rules(cloud, state))
        return converge(_update_agent(state.model_copy(update={"net": lab})))


def _follow_services(state: LabState, cloud: AwsCloud) -> LabState:
    assert state.net is not None
    net.apply_kube_proxy(state.net, state.all_services())
    lab = net.apply_security_groups(state.net, _rules(cloud, state))
    return converge(state.model_copy(update={"net": lab}))


def _rules(cloud: AwsCloud, state: LabState) -> list[net.SecurityGroupRule]:
    visiting = {g.tag: g.elb_security_group for g in state.guests.values() if g.elb_security_group}
    return lab_cloud.security_group_rules(cloud, _ids(state.env_key), state.elb_security_group, visiting)


def _peering(cloud: AwsCloud, state: LabState) -> bool:
    return lab_cloud.peering_active(cloud, _ids(state.env_key))


def _update_agent(state: LabState) -> LabState:
    """The agent serves the state's listeners: a running one reloads its spec, else a new one starts."""
    spec_path = _env_dir(state.env_key) / AGENT_SPEC
    agent_spec.write(spec_path, _listeners(state))
    pid = state.agent_pid
    if pid is None or not _reloaded(pid, spec_path):
        pid = start_agent(spec_path, log_path=spec_path.with_name(AGENT_LOG), ready_timeout=AGENT_READY_SECONDS)
    state = state.model_copy(update={"agent_pid": pid})
    save_state(state)
    return state


def _reloaded(pid: int, spec_path: Path) -> bool:
    """Whether the running agent took the new spec; one that cannot is stopped, for a new one to start."""
    try:
        reload_agent(pid, spec_path, timeout=AGENT_READY_SECONDS)
    except (InfrastructureError, WaitTimeoutError) as error:
        log.info("lab.agent.replaced", pid=pid, reason=str(error))
        stop_agent(pid)
        return False
    return True


def _apply_services(state: LabState, cloud: AwsCloud, manifests: Sequence[Mapping[str, Any]]) -> LabState:
    """The Cluster port's apply, as far as AWS is concerned: the Services, then what the load balancer
    controllers write into the cloud for them (security-group rules)."""

    applied = kube.services([*state.deployments, *manifests], state.topology)
    elb = lab_cloud.ensure_controller_rules(cloud, state.config, state.topology, _ids(state.env_key), applied)
    updated = state.model_copy(update={"elb_security_group": elb or state.elb_security_group, "services": applied})
    save_state(updated)
    log.info("lab.cluster.applied", env=state.env_key, services=[s.name for s in applied])
    return updated


def converge(state: LabState, healthy: Mapping[str, list[str]] | None = None) -> LabState:
    """Health checks from every load balancer node (or their `healthy` answers, just taken), then their
    forwarding rules and the DNS answers follow."""
    assert state.net is not None
    if healthy is None:
        healthy = health.check_all(state.net.load_balancers)
    lab = net.program_load_balancers(state.net, healthy)
    views = dns.views(lab, state.topology, kube.headless_records(state.all_services()), state.visitors())
    dns.write_views(views)
    updated = state.model_copy(update={"net": lab, "dns": views})
    save_state(updated)
    return updated


def _build_network(state: LabState, cloud: AwsCloud) -> LabState:
    """The data plane from what moto holds now: its security-group rules and its peering's state (a peering or
    the transit gateway), the pods where the ENIConfigs applied and their subnets in moto put them."""
    check_placement(cloud, state.config, state.topology, applied=state.eni_configs, aws_node=state.aws_node)
    built = net.build(
        state.env_key,
        state.config,
        state.topology,
        snat={"vpc1": state.snat("vpc1"), "vpc2": state.snat("vpc2")},
        security_groups=_rules(cloud, state),
        peering=_peering(cloud, state),
        services=state.services,
        visitors=state.visitors(),
    )
    return state.model_copy(update={"net": built})


def _listeners(state: LabState) -> list[Listener]:
    assert state.net is not None
    return [
        Listener(netns=state.net.echo_ns, port=ECHO_PORT, kind="echo", name="echo pod"),
        Listener(netns=state.net.ec2.ns, port=PEER_HOST_PORT, kind="echo", name="EC2 web host"),
        *_guest_echo_listeners(state.net),
        *_nginx_listeners(state.net),
        *_health_listeners(state.net, state.all_services()),
        *_proxy_listeners(state.net),
    ]


def _guest_echo_listeners(lab: LabNet) -> list[Listener]:
    """The visitors' echo pods (attach mode), each in its own namespace on the owner's node."""
    pods = [p for node in lab.nodes_of("vpc1") for p in node.pods if p.name == "echo" and p.guest]
    return [Listener(netns=pod.ns, port=ECHO_PORT, kind="echo", name=f"echo pod of {pod.guest}") for pod in pods]


def _nginx_listeners(lab: LabNet) -> list[Listener]:
    pods = [p for node in lab.nodes_of("vpc1") for p in node.pods if p.name == "nginx"]
    return [Listener(netns=pod.ns, port=NGINX_PORT, kind="nginx", name="nginx pod") for pod in pods]


def _health_listeners(lab: LabNet, services: Sequence[KubeService]) -> list[Listener]:
    """kube-proxy's health-check NodePort on every VPC1 node, for each Local Service that has one."""
    return [
        Listener(
            netns=node.ns,
            port=svc.health_check_node_port,
            kind="healthz",
            service=svc.port_name,
            local_endpoints=sum(ep.node == node.name for ep in svc.endpoints),
            name=f"healthz {svc.name} on {node.name}",
        )
        for svc in services
        if svc.local and svc.health_check_node_port
        for node in lab.nodes_of("vpc1")
    ]


def _proxy_listeners(lab: LabNet) -> list[Listener]:
    """The Classic ELB nodes' TCP listeners; each dials the backend pool, which the node's rules send on."""
    return [
        Listener(
            netns=lb.ns,
            ip=lb.eni.ip,
            port=lb.listener_port,
            kind="proxy",
            upstream=f"{net.LB_BACKEND_POOL}:{lb.listener_port}",
            name=f"{lb.kind} {lb.zone}",
        )
        for lb in lab.load_balancers
        if lb.mode == "proxy"
    ]


def _clear_stale(key: str) -> None:
    """A lab whose agent died or whose namespaces are gone was left by a crash (or whose state cannot be read):
    remove it first."""
    state = readable_state(key)
    leftovers = net.list_namespaces(key)
    if state is None and not leftovers and not _state_file_exists(key) and not agents_of(key):
        return
    if state is not None and healthy(state):
        return
    log.warning("lab.stale", env=key, namespaces=len(leftovers), state=state is not None)
    remove_data_plane(key)


def healthy(state: LabState) -> bool:
    if state.net is None or state.agent_pid is None or not is_agent(state.agent_pid):
        return False
    return set(state.net.namespaces()) <= set(net.list_namespaces(state.env_key))


# --- down ----------------------------------------------------------------------------------------------------


def down(config: ExperimentConfig) -> bool:
    """Remove everything of the environment, by the experiment's own cleanup (from its recorded ids, or from
    its tags alone) and then the data plane; False when there was nothing to remove."""
    from peerprobe.backends.lab.backend import tear_down

    key = env_key(config)
    found = _state_file_exists(key) or bool(net.list_namespaces(key)) or bool(agents_of(key))
    return tear_down(config) or found or aws_state.is_recorded(key)


def remove_data_plane(key: str) -> None:
    """The agent, the namespaces and the lab's state: what the lab built on this machine. Found without the
    state file too (it may be unreadable): the agent by the spec it serves, the namespaces by their names."""
    started = time.perf_counter()
    state = readable_state(key)
    if state is not None and state.agent_pid is not None:
        stop_agent(state.agent_pid)
    for pid in agents_of(key):
        stop_agent(pid)
    net.teardown(key)
    _forget_state(key)
    log.info("lab.down", env=key, elapsed_ms=round((time.perf_counter() - started) * 1000))


def agents_of(key: str) -> list[int]:
    """The running agents that serve this environment: those whose spec is in its directory here."""
    directory = _env_path(key)
    return [pid for pid, spec in running_agents() if spec.parent == directory]


def _state_file_exists(key: str) -> bool:
    path = statedir.state_dir() / _state_name(key)
    return path.is_symlink() or path.exists()


def delete_load_balancer_services(config: ExperimentConfig) -> list[str]:
    """The LoadBalancer Services deleted: the controllers take their rules and the ELB's group with them."""

    key = env_key(config)
    with statedir.locked(_state_name(key)):
        state = readable_state(key)
        if state is None:  # no record of what was applied (gone or unreadable): what the controller made, by tags
            lab_cloud.remove_orphan_elb_group(_cloud(config, key, "cleanup"), config)
            return []
        deleted = [s.name for s in state.services if s.type == "LoadBalancer"]
        cloud = _cloud(config, key, state.run_id)
        ids = _ids(key)
        vpc1 = ids.clusters.get("vpc1")
        if vpc1 is not None and vpc1.security_group:
            lab_cloud.remove_controller_rules(cloud, ids, state.elb_security_group)
        else:  # the ids record is gone (cleanup recovers the rest from tags): the ELB's group by its name and tag
            lab_cloud.remove_orphan_elb_group(cloud, config)
        kept = [s for s in state.services if s.type != "LoadBalancer"]
        save_state(state.model_copy(update={"services": kept, "elb_security_group": None}))
    return deleted


# --- changing it from outside ----------------------------------------------------------------------------------


def set_env(config: ExperimentConfig, cluster: VpcKey, assignments: Sequence[str]) -> Snat:
    """`kubectl set env daemonset aws-node`: change aws-node's environment; the SNAT rules follow at once."""

    def assign(env: Mapping[str, str]) -> dict[str, str]:
        try:
            return aws_node.apply_assignments(env, list(assignments))
        except ValueError as error:
            raise ConfigError(f"lab set-env {cluster}: {error}") from None

    return _apply_env(config, cluster, assign)


def preset_env(config: ExperimentConfig, cluster: VpcKey, assignments: Sequence[str], *, run_id: str) -> None:
    """aws-node's environment before the cluster's nodes exist (create-cluster sets custom networking and pod
    ENIs before the node group, as on EKS): recorded, and in force when the nodes come up with the data plane."""
    with statedir.locked(_state_name(env_key(config))):
        state = _initial_state(config, env_key(config), run_id, plan(config))
        try:
            env = aws_node.apply_assignments(state.aws_node[cluster], list(assignments))
        except ValueError as error:
            raise ConfigError(f"aws-node of {cluster}: {error}") from None
        save_state(state.model_copy(update={"aws_node": {**state.aws_node, cluster: env}}))
    log.info("lab.aws_node.preset", env=env_key(config), cluster=cluster, assignments=list(assignments))


def record_eni_configs(
    config: ExperimentConfig, cluster: VpcKey, found: Mapping[str, EniConfig], *, run_id: str
) -> None:
    """ENIConfigs applied to a cluster (create-cluster applies them before its nodes exist): recorded, for the
    data plane to place the nodes' pods by."""
    with statedir.locked(_state_name(env_key(config))):
        state = _initial_state(config, env_key(config), run_id, plan(config))
        merged = {**state.eni_configs.get(cluster, {}), **found}
        save_state(state.model_copy(update={"eni_configs": {**state.eni_configs, cluster: merged}}))
    log.info("lab.eniconfigs.applied", env=env_key(config), cluster=cluster, zones=sorted(found))


def set_snat(config: ExperimentConfig, cluster: VpcKey, snat: Snat) -> Snat:
    """A phase's absolute SNAT settings: the SNAT variables it does not name are removed."""

    def absolute(env: Mapping[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in env.items() if k not in aws_node.SNAT_VARS}
        return kept | aws_node.env_for(snat)

    return _apply_env(config, cluster, absolute)


def _apply_env(
    config: ExperimentConfig, cluster: VpcKey, change: Callable[[Mapping[str, str]], dict[str, str]]
) -> Snat:
    # Both clusters' aws-node may change at once (the flow sets a phase on both): read, change and save the
    # state under its lock, or one update would overwrite the other's.
    with statedir.locked(_state_name(env_key(config))):
        state = require_state(config)
        assert state.net is not None
        env = change(state.aws_node[cluster])
        snat = aws_node.snat_from_env(env)
        rebuilt = net.apply_snat(state.net, cluster, snat)
        save_state(state.model_copy(update={"net": rebuilt, "aws_node": {**state.aws_node, cluster: env}}))
    log.info(
        "lab.aws_node.env",
        env=state.env_key,
        cluster=cluster,
        external_snat=snat.external_snat,
        exclude_snat_cidrs=snat.exclude_snat_cidrs,
    )
    return snat


def refresh(config: ExperimentConfig) -> LabState:
    """Re-read security groups and peering from moto and re-apply them to the running network."""
    with statedir.locked(_state_name(env_key(config))):
        state = require_state(config)
        assert state.net is not None
        cloud = _cloud(config, state.env_key, state.run_id)
        lab = net.apply_security_groups(state.net, _rules(cloud, state))
        lab = net.set_peering(lab, _peering(cloud, state))
        updated = state.model_copy(update={"net": lab})
        save_state(updated)
        return converge(updated)


def recheck_health(config: ExperimentConfig) -> LabState:
    """The load balancers' next health-check interval: AWS keeps checking, so a target that answers now comes
    into service (one that stopped answering leaves it) and the forwarding follows; unchanged, nothing is
    reprogrammed."""
    with statedir.locked(_state_name(env_key(config))):
        state = require_state(config)
        if state.net is None or not state.net.load_balancers:
            return state
        healthy = health.check_all(state.net.load_balancers)
        if healthy == {lb.ns: lb.healthy for lb in state.net.load_balancers}:
            return state
        log.info("lab.health.changed", env=state.env_key, healthy=healthy)
        return converge(state, healthy)


# --- probing ---------------------------------------------------------------------------------------------------


def probe(
    state: LabState, specs: Sequence[ProbeSpec], *, timeout_seconds: float, guest: str = ""
) -> dict[ProbeSpec, ProbeResult]:
    """Every probe of one phase: each vantage's batch in its namespace, all vantages at once (`guest`: a
    visiting experiment's, from its own pods, attach mode)."""
    assert state.net is not None
    batches: dict[str, list[ProbeSpec]] = {}
    for spec in specs:
        batches.setdefault(state.net.vantage_ns(spec.vantage, guest), []).append(spec)
    # Each vantage resolves through its own view (dns.py): cluster DNS for the VPC1 pod, public DNS for all.
    views: dict[str, ResolverSource] = dict(state.dns)
    results = run_batches(batches, timeout_seconds=timeout_seconds, resolver={}, resolvers=views)
    # Right after the batch: the probes' entries are fresh; each namespace's table read once for them all.
    found = {result.spec: result for found in results.values() for result in found}
    return observe.attach(state.net, found, guest=guest)


def vantage_namespace(config: ExperimentConfig, vantage: Vantage) -> str:
    state = require_state(config)
    assert state.net is not None
    return state.net.vantage_ns(vantage)


def status(config: ExperimentConfig) -> tuple[LabState | None, bool]:
    state = load_state(env_key(config))
    return state, state is not None and healthy(state)


@contextlib.contextmanager
def running(config: ExperimentConfig) -> Iterator[LabState]:
    """A lab for the length of a block (tests, benchmarks): up, then down whatever happens."""
    state = up(config)
    try:
        yield state
    finally:
        down(config)


# --- attach mode: another experiment's namespace on this environment's clusters ------------------------------


def owner_of(cluster: str, region: str) -> tuple[LabState, VpcKey]:
    """The lab environment of this state directory that runs the cluster named `cluster` (attach mode finds the
    cluster it attaches to so), and which of its clusters it is; NotFoundError when none runs it."""
    for state in _all_states():
        for key in ("vpc1", "vpc2"):
            if getattr(state.config.clusters, key).name == cluster and state.config.region == region:
                return state, key
    raise NotFoundError(
        f"lab cluster {cluster}: no lab environment in {region} runs it (`peerprobe lab up` one first)",
        resource="eks cluster",
        resource_id=cluster,
        state="absent",
    )


def owner_key(config: ExperimentConfig, vpc: VpcKey) -> str:
    """The lab environment that runs the attached cluster `vpc` of `config` as its own `vpc`: ConfigError (exit
    2, nothing created) when none does, or when it runs it as its other cluster."""
    name = getattr(config.clusters, vpc).name
    try:
        state, key = owner_of(name, config.region)
    except NotFoundError:
        raise ConfigError(
            f"clusters.{vpc}.name, clusters.{vpc}.existing: no lab environment runs a cluster {name!r} in "
            f"{config.region} to attach to (`peerprobe lab up` its config first); nothing was created"
        ) from None
    if key != vpc:
        raise ConfigError(
            f"clusters.{vpc}.name: {name!r} is cluster {key} of lab environment {state.env_key}; the lab attaches "
            f"a config's {vpc} to an environment's {vpc} only; nothing was created"
        )
    return state.env_key


def owner_keys(config: ExperimentConfig) -> list[str]:
    """The lab environments whose clusters `config` attaches to, sorted (their locks are taken in one order):
    a visitor rebuilds its owner's data plane, so it owns the owner too while it works (design.md, "Ownership
    of an environment"). A cluster no lab environment runs adds none (the run is refused for it anyway)."""
    found = set()
    for vpc in ("vpc1", "vpc2"):
        if config.attached(vpc):
            with contextlib.suppress(NotFoundError):
                found.add(owner_of(getattr(config.clusters, vpc).name, config.region)[0].env_key)
    return sorted(found)


def _owner_state(owner: str) -> LabState:
    state = load_state(owner)
    if state is None or state.net is None:
        raise ConfigError(f"no lab environment {owner}: run `peerprobe lab up` first")
    return state


def require_owners(config: ExperimentConfig) -> None:
    """Before anything starts (attach mode): a lab environment runs each attached cluster."""
    for vpc in ("vpc1", "vpc2"):
        if config.attached(vpc):
            owner_key(config, vpc)


def _all_states() -> Iterator[LabState]:
    """Every readable lab state of this state directory with a data plane (unreadable ones are passed over)."""
    directory = statedir.state_dir() / "environments"
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            raw = statedir.read_state(f"environments/{path.name}")
            state = LabState.model_validate(raw) if raw is not None else None
        except (UnreadableStateError, ValidationError):
            continue
        if state is not None and state.net is not None:
            yield state


@contextlib.contextmanager
def _hosting(owner: str) -> Iterator[LabState]:
    """The owner's state under its lock (every change a visitor makes to it holds the lock)."""
    with _maybe_hosting(owner) as state:
        if state is None:
            raise NotFoundError(
                f"lab environment {owner}: not running; its clusters cannot be attached to",
                resource="lab environment",
                resource_id=owner,
                state="absent",
            )
        yield state


@contextlib.contextmanager
def _maybe_hosting(owner: str) -> Iterator[LabState | None]:
    """The owner's state under its lock, None when it runs no more (removing a visitor from it: nothing left)."""
    with statedir.locked(_state_name(owner)):
        state = readable_state(owner)
        if state is None or state.net is None:
            log.warning("lab.guest.owner_gone", env=owner)
            yield None
            return
        yield state


def _guest_update(state: LabState, guest: Guest | None, name: str) -> LabState:
    guests = {k: v for k, v in state.guests.items() if k != name}
    return state.model_copy(update={"guests": guests | ({name: guest} if guest is not None else {})})


def host_guest(owner: str, visitor: ExperimentConfig, cluster: VpcKey) -> None:
    """The visitor's namespace created on the owner's cluster: its place there is allocated the first time."""
    with _hosting(owner) as state:
        guest = state.guests.get(visitor.name)
        if guest is None:
            slot = free_slot(state.guests, owner)
            guest = new_guest(state.config, state.topology, visitor, slot=slot)
        if cluster not in guest.clusters:
            guest = guest.model_copy(update={"clusters": [*guest.clusters, cluster]})
        save_state(_guest_update(state, guest, visitor.name))
    log.info("lab.guest.namespace", env=owner, guest=visitor.name, cluster=cluster, tag=guest.tag)


def guest(owner: str, name: str) -> Guest | None:
    state = load_state(owner)
    return state.guests.get(name) if state is not None else None


def _placed(state: LabState, name: str) -> Guest:
    found = state.guests.get(name)
    if found is None:
        raise ConflictError(
            f"lab environment {state.env_key}: no namespace peerprobe-{name} (create-cluster makes it)",
            resource="namespace",
            resource_id=f"peerprobe-{name}",
            state="absent",
        )
    return found


def guest_deploy(
    owner: str, visitor: ExperimentConfig, cluster: VpcKey, deployments: Sequence[Mapping[str, Any]]
) -> None:
    """The visitor's Deployments on the owner's cluster: its pods join the owner's data plane."""
    with _hosting(owner) as state:
        placed = _placed(state, visitor.name)
        deployed = {**placed.deployments, cluster: [dict(d) for d in deployments]}
        state = _guest_update(state, placed.model_copy(update={"deployments": deployed}), visitor.name)
        _rebuild(state)
    log.info("lab.guest.deployed", env=owner, guest=visitor.name, cluster=cluster)


def guest_expose(owner: str, visitor: ExperimentConfig, manifests: Sequence[Mapping[str, Any]], *, run_id: str) -> None:
    """The visitor's Services on the owner's VPC1 cluster: kube-proxy serves them, the controllers write their
    rules (the visitor's own ELB group) and the load balancer nodes join the data plane."""
    with _hosting(owner) as state:
        placed = _placed(state, visitor.name)
        docs = [*placed.deployments.get("vpc1", []), *manifests]
        applied = [s.model_copy(update={"namespace": placed.namespace}) for s in kube.services(docs, placed.topology)]
        cloud = _cloud(visitor, env_key(visitor), run_id)  # what the controllers make goes with the visitor
        elb = lab_cloud.ensure_controller_rules(
            cloud, state.config, placed.topology, _ids(owner), applied, guest=placed.tag
        )
        placed = placed.model_copy(update={"services": applied, "elb_security_group": elb or placed.elb_security_group})
        _rebuild(_guest_update(state, placed, visitor.name))
    log.info("lab.guest.exposed", env=owner, guest=visitor.name, services=[s.name for s in applied])


def guest_delete_load_balancers(owner: str, visitor: ExperimentConfig) -> list[str]:
    """The visitor's LoadBalancer Services deleted: the controllers take back their rules on the owner's nodes
    and the visitor's ELB group; the load balancer nodes leave the data plane."""
    with _maybe_hosting(owner) as state:
        placed = state.guests.get(visitor.name) if state is not None else None
        if state is None or placed is None:
            return []
        deleted = [s.name for s in placed.services if s.type == "LoadBalancer"]
        placed = _without_load_balancers(state, placed, visitor)
        _rebuild(_guest_update(state, placed, visitor.name))
    log.info("lab.guest.load_balancers_deleted", env=owner, guest=visitor.name, services=deleted)
    return deleted


def _without_load_balancers(state: LabState, placed: Guest, visitor: ExperimentConfig) -> Guest:
    if not any(s.type == "LoadBalancer" for s in placed.services) and not placed.elb_security_group:
        return placed
    cloud = _cloud(visitor, env_key(visitor), "cleanup")
    ids = _ids(state.env_key)
    lab_cloud.remove_guest_rules(cloud, state.config, placed.topology, ids, placed.services)
    lab_cloud.remove_controller_rules(cloud, ids, placed.elb_security_group)
    kept = [s for s in placed.services if s.type != "LoadBalancer"]
    return placed.model_copy(update={"services": kept, "elb_security_group": None})


def evict_guest(owner: str, visitor: ExperimentConfig, cluster: VpcKey) -> None:
    """The visitor's namespace deleted from the owner's cluster, with all it ran there; the owner's data plane
    is rebuilt as it was without it. Absent: nothing to do."""
    with _maybe_hosting(owner) as state:
        placed = state.guests.get(visitor.name) if state is not None else None
        if state is None or placed is None or cluster not in placed.clusters:
            return
        if cluster == "vpc1":
            placed = _without_load_balancers(state, placed, visitor).model_copy(update={"services": []})
        running = placed.visitor() is not None
        left = [key for key in placed.clusters if key != cluster]
        deployments = {k: v for k, v in placed.deployments.items() if k != cluster}
        placed = placed.model_copy(update={"clusters": left, "deployments": deployments})
        state = _guest_update(state, placed if left else None, visitor.name)
        if running:
            _rebuild(state)
        else:
            save_state(state)
    log.info("lab.guest.evicted", env=owner, guest=visitor.name, cluster=cluster, left=left)


def _rebuild(state: LabState) -> LabState:
    """The owner's data plane rebuilt from its state with the visitors as they are now (the lab cannot add or
    remove pods in a running one); its own parts come back as they were, from the same state."""
    save_state(state)
    return materialize(state, _cloud(state.config, state.env_key, state.run_id))
