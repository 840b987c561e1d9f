"""A whole attached run against AWS as it behaves (world/): an environment built under one name, with its workloads
and load balancers, is attached from a config with another name; every step, every phase and cleanup run; every
cell matches the model predicting from what was read; the AWS calls recorded change nothing peerprobe did not
create; the owner's aws-node, security groups, workloads and load balancers are as before, and nothing of the
visit is left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config as config_module
from peerprobe import run
from peerprobe.backends import attach
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.config import Phase, PhaseSnat
from peerprobe.probes.plan import plan, vantages
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell
from tests import test_attach_rbac as rbac
from tests.backends.aws._fakes import _API_PARAMS, on_every_session
from tests.backends.aws.world.world import REGION, World, world_config

OWNER = "harness"
VISITOR = "visitor"
EXTRA_PORT = 9090  # a probe rule the owner has not opened: the visitor opens it, and revokes it


@pytest.fixture
def owned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    """The owner's environment with its workloads: networks, clusters and nodes, the peering and its rules, the
    apps and their Services (the controller's load balancers); built by peerprobe's steps under the owner's name."""
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    with World(world_config(OWNER)).install(monkeypatch) as world:
        build_owner(world)
        yield world


def build_owner(world: World) -> None:
    owner = AwsExperiment(EnvironmentRef(backend="aws", config=world.config, run_id="owner"))
    for vpc in VPC_KEYS:
        owner.create_network(vpc)
    for vpc in VPC_KEYS:
        owner.create_cluster(vpc)
    owner.peer_vpcs()
    owner.deploy_apps()
    owner.expose_services()


class Calls:
    """Every call of the adapter's clients with its parameters, in order."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        on_every_session(monkeypatch, lambda session: session.events.register("before-call", self._before))

    def _before(self, model: Any, params: dict[str, Any], context: Any, **_: Any) -> None:
        self.made.append((f"{model.service_model.signing_name}:{model.name}", dict(context.get(_API_PARAMS, params))))

    def mutations(self) -> list[tuple[str, dict[str, Any]]]:
        reads = ("Describe", "Get", "List")
        return [(name, params) for name, params in self.made if not name.split(":", 1)[1].startswith(reads)]


def visiting(world: World, **extra: Any) -> config_module.ExperimentConfig:
    clusters = {vpc: {"name": getattr(world.config.clusters, vpc).name, "existing": True} for vpc in VPC_KEYS}
    return config_module.from_mapping({"name": VISITOR, "clusters": clusters, "images": world.config.images} | extra)


def run_attached(world: World, config: config_module.ExperimentConfig) -> dict[str, list[Cell]]:
    """Every step in the flow's order, every phase measured, then cleanup; the cells of each phase."""
    world.visit(config)
    experiment = AwsExperiment(
        EnvironmentRef(backend="aws", config=config, run_id="visit"), clients=ClientFactory(REGION)
    )
    for vpc in VPC_KEYS:
        experiment.create_network(vpc)
    for vpc in VPC_KEYS:
        experiment.create_cluster(vpc)
    experiment.create_peer_host()
    experiment.peer_vpcs()
    experiment.deploy_apps()
    experiment.expose_services()
    topology = experiment.topology()
    phases = {phase.name: measure(experiment, phase, topology) for phase in config.phases}
    experiment.restore_aws_node()  # after the last phase, as the flow does
    assert experiment.config_diff() == [], "the visitor's config names nothing the clusters contradict"
    experiment.cleanup()
    return phases


def measure(experiment: AwsExperiment, phase: Phase, topology: Topology) -> list[Cell]:
    """One phase as the flow's `measure` does it: each cluster's SNAT as the phase sets it there (an attached
    cluster's only when the phase names it), rolled out and read back; every vantage probed."""
    config = experiment.config
    applied = {
        vpc: experiment.wait_snat(vpc, experiment.set_snat(vpc, config.phase_snat(phase, vpc)), timeout_seconds=60)
        for vpc in VPC_KEYS
    }
    snat = PhaseSnat(**applied)
    cells: list[Cell] = []
    for vantage in vantages(topology):
        specs = [spec for spec in plan(topology) if spec.vantage == vantage]
        results = experiment.probe(vantage, specs, timeout_seconds=config.probe.timeout_seconds)
        found = dict(zip(specs, results, strict=True))
        cells += run.judge_phase(experiment.model_config(), topology, name=phase.name, snat=snat, results=found)
    return cells


def owners_side(world: World) -> dict[str, Any]:
    """What the owner has: aws-node's env, its cluster groups' rules, its workloads and its load balancers."""
    reader = world.reader()
    state = reader._state()
    groups = sorted(ids.security_group for ids in state.clusters.values())
    return {
        "aws-node": {vpc: reader._kube(vpc).aws_node_env() for vpc in VPC_KEYS},
        "rules": {group: reader.cloud.ingress_rules(group) for group in groups},
        "objects": {
            vpc: sorted(key for key in server.state.objects if key[0] != attach.namespace(visiting(world)))
            for vpc, server in world.servers.items()
        },
        "pods": {vpc: reader._kube(vpc).pod("busybox") for vpc in VPC_KEYS},
        "load balancers": load_balancers(world),
    }


def load_balancers(world: World) -> list[str]:
    clients = world.reader().clients
    classic = clients.client("elb").describe_load_balancers()["LoadBalancerDescriptions"]
    network = clients.client("elbv2").describe_load_balancers()["LoadBalancers"]
    return sorted(str(lb["LoadBalancerName"]) for lb in [*classic, *network])


def owner_ids(world: World) -> set[str]:
    """The ids and names of what the owner made: none may be changed or deleted by the visit."""
    state = world.reader()._state()
    ids = {ids.security_group for ids in state.clusters.values()} | {ids.name for ids in state.clusters.values()}
    for network in state.networks.values():
        ids |= {network.vpc, *network.public_subnets, *network.private_subnets, *network.route_tables}
        ids |= {network.nat_gateway or "", network.internet_gateway or ""}
    ids |= {state.peering or ""}
    return ids - {""}


def unchanged_by_visit(calls: Calls, owner: set[str], *, allowed_rules: set[int]) -> list[str]:
    """Mutations naming something of the owner's: none, but a create placed in the owner's network (which makes
    a new thing) and the probe rules peerprobe opened and revoked on the owner's group (ports `allowed_rules`)."""
    wrong = []
    for name, params in calls.mutations():
        operation = name.split(":", 1)[1]
        if operation.startswith("Create") or operation == "RunInstances":
            continue
        named = {str(v) for v in _values(params)} & owner
        if not named:
            continue
        if operation in ("AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"):
            ports = {int(p["FromPort"]) for p in params.get("IpPermissions", [])}
            if ports <= allowed_rules:
                continue
        wrong.append(f"{name} {sorted(named)}")
    return wrong


def _values(params: Any) -> Iterator[Any]:
    if isinstance(params, dict):
        for value in params.values():
            yield from _values(value)
    elif isinstance(params, list):
        for value in params:
            yield from _values(value)
    else:
        yield params


def mismatches(phases: dict[str, list[Cell]]) -> list[str]:
    return [
        f"{phase}: {cell.vantage}/{cell.target} {cell.verdict}: {cell.explanation[0] if cell.explanation else ''}"
        for phase, cells in phases.items()
        for cell in cells
        if cell.verdict != "match"
    ]


def test_an_attached_run_matches_every_cell_and_changes_nothing_of_the_owners(
    owned: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, owner = owners_side(owned), owner_ids(owned)
    requests_before = {id(server): len(server.state.requests) for server in owned.servers.values()}
    calls = Calls()
    calls.install(monkeypatch)
    config = visiting(owned)
    phases = run_attached(owned, config)
    assert mismatches(phases) == []
    assert [phase.name for phase in config.phases] == ["as-found"]
    assert {cell.vantage for cell in phases["as-found"]} == {"vpc1-pod", "vpc2-pod"}, "no EC2 host: no vpc2-ec2"
    assert calls.mutations() == [], "attach mode's defaults make nothing in AWS itself"
    assert unchanged_by_visit(calls, owner, allowed_rules=set()) == []
    assert owners_side(owned) == before
    assert all(not any(key[0] == attach.namespace(config) for key in s.state.objects) for s in owned.servers.values())
    refused = [
        f"{r.method} {r.path}"
        for server in owned.servers.values()
        for r in server.state.requests[requests_before[id(server)] :]
        if not rbac.allowed(r.method, r.path, r.content_type, namespace=attach.namespace(config))
    ]
    assert refused == [], "resources/attach-rbac.yaml grants every request of the run"


def with_host_and_rule(world: World) -> config_module.ExperimentConfig:
    return visiting(world, peer_host={"create": True}, security_groups={"open_from_peer": [8080, EXTRA_PORT]})


def test_an_attached_run_with_a_host_and_a_rule_removes_exactly_what_it_made(
    owned: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, owner = owners_side(owned), owner_ids(owned)
    calls = Calls()
    calls.install(monkeypatch)
    config = with_host_and_rule(owned)
    phases = run_attached(owned, config)
    assert mismatches(phases) == []
    assert {cell.vantage for cell in phases["as-found"]} == {"vpc1-pod", "vpc2-ec2", "vpc2-pod"}
    made = {name.split(":", 1)[1] for name, _ in calls.mutations()}
    assert {"RunInstances", "TerminateInstances", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"} <= made
    # 8080 the owner had opened already: the visit neither adds nor revokes it; 9090 it adds and revokes.
    assert unchanged_by_visit(calls, owner, allowed_rules={EXTRA_PORT}) == []
    assert owners_side(owned) == before
    left = AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="check"), clients=ClientFactory(REGION))
    assert left.cloud.find_instance("peer-host") is None


ATTACH_POLICY = Path(__file__).resolve().parents[3] / "docs" / "iam-policy-attach.json"


def test_the_attach_policy_allows_exactly_what_an_attached_run_and_a_cleanup_from_tags_call(
    owned: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = Calls()
    calls.install(monkeypatch)
    config = with_host_and_rule(owned)
    run_attached(owned, config)
    experiment = AwsExperiment(
        EnvironmentRef(backend="aws", config=config, run_id="lost"), clients=ClientFactory(REGION)
    )
    experiment.create_network("vpc1")
    experiment.create_network("vpc2")
    experiment.create_peer_host()
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "another-machine"))  # no record: found by tags
    experiment.cleanup()
    assert experiment.cloud.find_instance("peer-host") is None
    document = json.loads(ATTACH_POLICY.read_text(encoding="utf-8"))
    allowed = {action for statement in document["Statement"] for action in statement["Action"]}
    called = {name for name, _ in calls.made} | {"sts:GetCallerIdentity"}  # preflight's; an EKS token's presign
    assert sorted(called - allowed) == [] and sorted(allowed - called - IMPLIED) == []


# Permissions AWS checks without an API call of that name (docs/iam-policy.json's test names them too): passing
# the host's role, tag-on-create; and the host vantage's SSM calls, which the harness answers before a recorder.
IMPLIED = {
    "iam:PassRole",
    "iam:TagRole",
    "iam:TagInstanceProfile",
    "ec2:CreateTags",
    "ssm:SendCommand",
    "ssm:GetCommandInvocation",
    "ssm:DescribeInstanceInformation",
}


STEPS = ("create-cluster", "create-peer-host", "deploy-apps", "expose-services", "set-snat")


def run_until(experiment: AwsExperiment, failed_after: str) -> None:
    """The steps in the flow's order up to `failed_after` (the next one failed): what a failure there leaves."""
    steps = [
        ("create-network", lambda: [experiment.create_network(vpc) for vpc in VPC_KEYS]),
        ("create-cluster", lambda: [experiment.create_cluster(vpc) for vpc in VPC_KEYS]),
        ("create-peer-host", experiment.create_peer_host),
        ("peer-vpcs", experiment.peer_vpcs),
        ("deploy-apps", experiment.deploy_apps),
        ("expose-services", experiment.expose_services),
        (
            "set-snat",
            lambda: experiment.set_snat("vpc1", experiment.config.phase_snat(experiment.config.phases[1], "vpc1")),
        ),
    ]
    for name, step in steps:
        step()
        if name == failed_after:
            return


@pytest.mark.parametrize("failed_after", STEPS)
def test_after_a_failure_at_any_step_cleanup_leaves_nothing_of_the_visit(owned: World, failed_after: str) -> None:
    before = owners_side(owned)
    snat_phase = {"name": "external-snat", "snat": {"vpc1": {"external_snat": True}}}
    config = with_host_and_rule(owned)
    clusters = {vpc: {"name": getattr(owned.config.clusters, vpc).name, "existing": True} for vpc in VPC_KEYS}
    clusters["vpc1"]["allow_snat_changes"] = True
    data = config.model_dump(mode="json", exclude={"phases", "clusters"})
    config = config_module.from_mapping(data | {"clusters": clusters, "phases": [{"name": "as-found"}, snat_phase]})
    owned.visit(config)
    run_until(AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="failed")), failed_after)
    AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="cleanup")).cleanup()
    assert owners_side(owned) == before
    assert not any(key[0] == attach.namespace(config) for s in owned.servers.values() for key in s.state.objects)
    left = AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="check"), clients=ClientFactory(REGION))
    assert left.cloud.find_instance("peer-host") is None
    assert attach.found_env(attach.cluster_id("aws", config.region, config.clusters.vpc1.name)) is None
