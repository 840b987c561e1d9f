"""Attach mode on the lab (issue 16): a lab environment built under one name is attached from a config with
another name, both clusters `existing: true`; a whole attached run probes with real packets through the owner's
data plane, every cell matches the model predicting from what was read, and afterwards the owner's aws-node,
security groups, Services, workloads and data plane are as before, it stays healthy, and nothing of the visit is
left. Needs root."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import aws_node, run
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.backends.lab.backend import LabExperiment
from peerprobe.backends.lab.net import guest_tag
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.config import ExperimentConfig, Phase, PhaseSnat
from peerprobe.errors import ConfigError, EnvironmentBusyError
from peerprobe.probes.plan import plan, vantages
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
OWNER, VISITOR = "attach-owner", "attach-visitor"
SNAT_PHASE = Phase.model_validate({"name": "external-snat", "snat": {"vpc1": {"external_snat": True}}})


def visiting(owner: ExperimentConfig, name: str = VISITOR, **extra: Any) -> ExperimentConfig:
    """A config of another name attached to both of the owner's clusters, with a SNAT phase it may apply."""
    clusters = {
        vpc: {"name": getattr(owner.clusters, vpc).name, "existing": True, "allow_snat_changes": True}
        for vpc in VPC_KEYS
    }
    phases = [{"name": "as-found"}, SNAT_PHASE.model_dump(exclude_unset=True)]
    return own_config(name, {"clusters": clusters, "phases": phases, **extra})


def owners_side(owner: ExperimentConfig) -> dict[str, Any]:
    """What the owner has: aws-node, its cluster groups' rules and every group in its VPCs (moto), its Services,
    workloads and data plane (the lab's state), and its namespaces."""
    state = lab.require_state(owner)
    experiment = LabExperiment(EnvironmentRef(backend="lab", config=owner, run_id="look"))
    ids = aws_state.load(lab.env_key(owner))
    groups = {
        vpc: sorted(
            (g["GroupName"], g["GroupId"])
            for g in experiment.cloud.ec2.describe_security_groups(
                Filters=[{"Name": "vpc-id", "Values": [ids.networks[vpc].vpc]}]
            )["SecurityGroups"]
        )
        for vpc in VPC_KEYS
    }
    rules = {vpc: experiment.cloud.ingress_rules(ids.clusters[vpc].security_group) for vpc in VPC_KEYS}
    assert state.net is not None
    plane = state.net.model_copy(
        update={"load_balancers": [lb.model_copy(update={"healthy": []}) for lb in state.net.load_balancers]}
    )
    return {
        "aws_node": state.aws_node,
        "groups": groups,
        "rules": rules,
        "services": state.services,
        "deployments": state.deployments,
        "guests": state.guests,
        "net": plane,
        "dns": state.dns,
        "namespaces": net.list_namespaces(state.env_key),
    }


def measure(experiment: LabExperiment, phase: Phase, topology: Topology) -> list[Cell]:
    """One phase as the flow's `measure` does it: each attached cluster's SNAT only when the phase names it."""
    config = experiment.config
    applied = {
        vpc: experiment.wait_snat(vpc, experiment.set_snat(vpc, config.phase_snat(phase, vpc)), timeout_seconds=30)
        for vpc in VPC_KEYS
    }
    cells: list[Cell] = []
    for vantage in vantages(topology):
        specs = [spec for spec in plan(topology) if spec.vantage == vantage]
        results = experiment.probe(vantage, specs, timeout_seconds=1.5)
        found = dict(zip(specs, results, strict=True))
        snat = PhaseSnat(**applied)
        cells += run.judge_phase(experiment.model_config(), topology, name=phase.name, snat=snat, results=found)
    return cells


def set_up(experiment: LabExperiment) -> Topology:
    """The setup steps in the flow's order."""
    for vpc in VPC_KEYS:
        experiment.create_network(vpc)
    for vpc in VPC_KEYS:
        experiment.create_cluster(vpc)
    experiment.create_peer_host()
    experiment.peer_vpcs()
    experiment.deploy_apps()
    experiment.expose_services()
    return experiment.topology()


def drifted(cells: list[Cell]) -> list[str]:
    return [f"{c.vantage}->{c.target}/{c.target_node}: {c.explanation[0]}" for c in cells if c.verdict != "match"]


@pytest.fixture(scope="module")
def owner(lab_state_dir: Path) -> Iterator[tuple[ExperimentConfig, dict[str, Any]]]:
    """The owner's lab, built by `lab up` under its own name, and what it had before anyone attached."""
    cfg = own_config(OWNER)
    lab.up(cfg)
    yield cfg, owners_side(cfg)
    lab.down(cfg)
    assert net.list_namespaces(lab.env_key(cfg)) == []


@pytest.fixture(scope="module")
def visit(owner: tuple[ExperimentConfig, dict[str, Any]]) -> dict[str, Any]:
    """A whole attached run: every step, both phases, the restore after the last one, then cleanup."""
    owner_cfg, _ = owner
    cfg = visiting(owner_cfg)
    experiment = LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="visit"))
    topology = set_up(experiment)
    during = lab.require_state(owner_cfg)
    phases, snat = {}, {}
    for phase in cfg.phases:
        phases[phase.name] = measure(experiment, phase, topology)
        snat[phase.name] = dict(lab.require_state(owner_cfg).aws_node)  # the owner's aws-node while measured
    restored = experiment.restore_aws_node()
    diff = experiment.config_diff()
    snapshot = LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="drift")).snapshot()
    experiment.cleanup()
    return {
        "phases": phases,
        "snat": snat,
        "topology": topology,
        "during": during,
        "restored": restored,
        "diff": diff,
        "snapshot": snapshot,
    }


def test_every_cell_of_the_attached_run_matches_the_model(visit: dict[str, Any]) -> None:
    for name, cells in visit["phases"].items():
        assert cells, name
        assert drifted(cells) == [], name


def test_the_attached_run_probes_the_visitors_own_services(visit: dict[str, Any]) -> None:
    topology, during = visit["topology"], visit["during"]
    placed = during.guests[VISITOR]
    assert topology.vpc1.echo_pod == placed.topology.vpc1.echo_pod != during.topology.vpc1.echo_pod
    assert topology.vpc1.cluster_ip not in {s.cluster_ip for s in during.services}
    assert set(topology.vpc1.load_balancers.values()).isdisjoint(during.topology.vpc1.load_balancers.values())
    assert {c.target for c in visit["phases"]["as-found"]} >= {"cluster-ip", "node-port", "headless", "internal-nlb"}


def test_the_visitors_pods_ran_in_the_owners_data_plane(visit: dict[str, Any]) -> None:
    during = visit["during"]
    tag = guest_tag(VISITOR)
    pods = [p for node in during.net.nodes for p in node.pods if p.guest == tag]
    assert {(p.cluster, p.name) for p in pods} == {
        ("vpc1", "echo"),
        ("vpc1", "busybox"),
        ("vpc1", "nginx"),
        ("vpc2", "busybox"),
    }
    assert {lb.kind for lb in during.net.load_balancers if lb.guest == tag} == {
        "load-balancer",
        "internal-nlb",
        "nginx-nlb",
    }


def test_the_snat_phase_changed_the_owners_aws_node_and_the_restore_undid_it(
    owner: tuple[ExperimentConfig, dict[str, Any]], visit: dict[str, Any]
) -> None:
    _, before = owner
    assert before["aws_node"]["vpc1"].get(aws_node.EXTERNAL_SNAT) != "true"
    assert visit["snat"]["external-snat"]["vpc1"] == {**before["aws_node"]["vpc1"], aws_node.EXTERNAL_SNAT: "true"}
    assert visit["snat"]["external-snat"]["vpc2"] == before["aws_node"]["vpc2"]  # the phase names vpc1 only
    assert visit["restored"] == {"vpc1": [f"{aws_node.EXTERNAL_SNAT}-"], "vpc2": []}


def test_the_config_agrees_with_what_was_read(visit: dict[str, Any]) -> None:
    assert visit["diff"] == []


def test_a_drift_snapshot_reads_the_owners_clusters_and_the_visitors_services(
    owner: tuple[ExperimentConfig, dict[str, Any]], visit: dict[str, Any]
) -> None:
    _, before = owner
    snapshot, during = visit["snapshot"], visit["during"]
    assert {vpc: dict(c.aws_node) for vpc, c in snapshot.clusters.items()} == before["aws_node"]
    ports = {kind: s.node_port for kind, s in snapshot.services.items() if s.node_port}
    assert ports == {k: v for k, v in during.guests[VISITOR].topology.vpc1.service_node_ports.items()}
    assert snapshot.peering is not None and snapshot.peering.status == "active"


def test_the_owner_is_as_before_afterwards(
    owner: tuple[ExperimentConfig, dict[str, Any]], visit: dict[str, Any]
) -> None:
    cfg, before = owner
    after = owners_side(cfg)
    assert {k: after[k] for k in before} == before


def test_the_owner_stays_healthy(owner: tuple[ExperimentConfig, dict[str, Any]], visit: dict[str, Any]) -> None:
    cfg, _ = owner
    assert lab.healthy(lab.require_state(cfg))


def test_nothing_of_the_visitor_is_left(owner: tuple[ExperimentConfig, dict[str, Any]], visit: dict[str, Any]) -> None:
    cfg, _ = owner
    state = lab.require_state(cfg)
    tag = guest_tag(VISITOR)
    assert state.guests == {}
    assert [ns for ns in net.list_namespaces(state.env_key) if tag in ns] == []
    assert net.list_namespaces(lab.env_key(visiting(cfg))) == []
    assert not aws_state.is_recorded(lab.env_key(visiting(cfg)))


def test_attaching_to_a_cluster_no_lab_environment_runs_is_bad_input_before_anything_starts(
    lab_state_dir: Path,
) -> None:
    cfg = visiting(own_config("attach-nobody"), name="attach-stray")
    with pytest.raises(ConfigError, match=r"clusters\.vpc1\.name, clusters\.vpc1\.existing: no lab environment"):
        lab.require_owners(cfg)
    with pytest.raises(ConfigError, match=r"clusters\.vpc1\.name, clusters\.vpc1\.existing: no EKS cluster"):
        LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="x")).create_network("vpc1")
    assert not aws_state.is_recorded(lab.env_key(cfg))


STEPS = ("create-cluster", "deploy-apps", "expose-services", "snat-phase")


def run_until(experiment: LabExperiment, last: str) -> None:
    """The run's steps up to and including `last`, then it stops (as a run that failed after it)."""
    for vpc in VPC_KEYS:
        experiment.create_network(vpc)
    for vpc in VPC_KEYS:
        experiment.create_cluster(vpc)
    experiment.peer_vpcs()
    done = ["create-cluster"]
    if last != done[-1]:
        experiment.deploy_apps()
        done.append("deploy-apps")
    if last != done[-1]:
        experiment.expose_services()
        done.append("expose-services")
    if last != done[-1]:
        experiment.set_snat("vpc1", SNAT_PHASE.snat.vpc1)  # changed, never restored: the run died here


@pytest.mark.parametrize("last", STEPS)
def test_cleanup_after_a_failure_leaves_the_owner_as_before(
    owner: tuple[ExperimentConfig, dict[str, Any]], last: str
) -> None:
    owner_cfg, before = owner
    cfg = visiting(owner_cfg, name=f"attach-fail-{STEPS.index(last)}")
    run_until(LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="failed")), last)
    left = lab.require_state(owner_cfg)
    assert cfg.name in left.guests  # the failed run left its namespace on the owner's clusters
    assert (left.aws_node != before["aws_node"]) == (last == "snat-phase")
    LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="cleanup")).cleanup()  # `peerprobe cleanup`
    after = owners_side(owner_cfg)
    assert {k: after[k] for k in before} == before
    assert lab.healthy(lab.require_state(owner_cfg))
    assert not aws_state.is_recorded(lab.env_key(cfg))


HOLDER = """
import sys, time
from peerprobe import logs, ownership
logs.configure(0)
with ownership.hold(sys.argv[1], "peerprobe lab set-env", timeout_seconds=0):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_visit_waits_for_the_owner_environment_it_rebuilds(
    owner: tuple[ExperimentConfig, dict[str, Any]],
) -> None:
    from tasks._ownership import environment_lock  # imports Prefect: only here

    owner_cfg, _ = owner
    cfg = visiting(owner_cfg, name="attach-waits")
    assert lab.owner_keys(cfg) == [lab.env_key(owner_cfg)]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, lab.env_key(owner_cfg)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        ref = EnvironmentRef(backend="lab", config=cfg, run_id="waits")
        with (
            pytest.raises(EnvironmentBusyError, match="lab set-env"),
            environment_lock(ref, command="x", timeout_seconds=0),
        ):
            pass
    finally:
        holder.terminate()
        holder.wait()


def test_reading_an_attached_lab_cluster_finds_the_owners_vpc_group_nodes_and_aws_node(
    owner: tuple[ExperimentConfig, dict[str, Any]],
) -> None:
    owner_cfg, before = owner
    ids = aws_state.load(lab.env_key(owner_cfg))
    cfg = visiting(owner_cfg, name="attach-reader")
    found = LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="read")).read_attached()
    state = lab.require_state(owner_cfg)
    for vpc in VPC_KEYS:
        assert found[vpc].vpc_id == ids.networks[vpc].vpc
        assert found[vpc].cluster_security_group == ids.clusters[vpc].security_group
        assert list(found[vpc].nodes) == getattr(state.topology, vpc).nodes
        assert dict(found[vpc].aws_node_env) == before["aws_node"][vpc]
        assert found[vpc].kube_proxy_mode == "iptables"
    assert any(ids.peering in p and " active " in p for p in found["vpc1"].peerings)
    assert not aws_state.is_recorded(lab.env_key(cfg)), "reading records nothing"
