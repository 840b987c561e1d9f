"""Attach mode against AWS as it behaves (world/): an environment someone else built (peerprobe's own steps under
another experiment's name) is read from a config that attaches to its clusters; the reading makes no AWS call
but Describe/Get/List and no Kubernetes request but GET, and says what is there. A phase that changes aws-node
(allowed) is undone exactly by cleanup, an unallowed one refused; attaching one cluster while creating the other
refuses before calling AWS. A whole attached run: test_attach_run.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import attach
from peerprobe import config as config_module
from peerprobe.backends import attach as attach_mode
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.config import Snat
from peerprobe.errors import ConfigError
from tests.backends.aws._fakes import Recorder
from tests.backends.aws.world.world import REGION, World, world_config

OWNER = "harness"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    """The owner's environment: networks, both clusters with their nodes, the peering; peerprobe's steps under
    the owner's experiment name stand in for whoever built it."""
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    with World(world_config(OWNER)).install(monkeypatch) as world:
        owner = AwsExperiment(EnvironmentRef(backend="aws", config=world.config, run_id="owner"))
        for vpc in VPC_KEYS:
            owner.create_network(vpc)
        for vpc in VPC_KEYS:
            owner.create_cluster(vpc)
        owner.peer_vpcs()
        yield world


def attaching(world: World, **cluster: Any) -> config_module.ExperimentConfig:
    """A visitor's config naming the owner's clusters as existing (its own experiment name)."""
    clusters = {vpc: {"name": getattr(world.config.clusters, vpc).name, "existing": True} | cluster for vpc in VPC_KEYS}
    return config_module.from_mapping({"name": "visitor", "clusters": clusters})


def read(world: World, config: config_module.ExperimentConfig, recorder: Recorder) -> dict[str, attach.FoundCluster]:
    experiment = AwsExperiment(
        EnvironmentRef(backend="aws", config=config, run_id="visit"), clients=ClientFactory(REGION)
    )
    found = experiment.read_attached()
    assert recorder.calls, "the recorder saw no call: it is not installed on the adapter's clients"
    return dict(found)


def kube_writes(world: World, since: dict[str, int]) -> list[str]:
    return [
        f"{vpc} {r.method} {r.path}"
        for vpc, server in world.servers.items()
        for r in server.state.requests[since[vpc] :]
        if r.method != "GET"
    ]


def test_reading_an_attached_cluster_changes_nothing(built: World, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    before = {vpc: len(server.state.requests) for vpc, server in built.servers.items()}
    read(built, attaching(built), recorder)
    assert recorder.mutations() == []
    assert kube_writes(built, before) == []


def test_the_reading_says_what_is_there(built: World, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    found = read(built, attaching(built), recorder)
    vpc1 = found["vpc1"]
    assert vpc1.vpc_cidr == built.config.vpcs.vpc1.cidr
    assert [n.name for n in vpc1.nodes] == [n.name for n in built.plan.vpc1.nodes]
    assert vpc1.cni_version == built.config.clusters.vpc1.cni_version
    assert vpc1.nat_gateways, "the owner's NAT gateway"
    assert any(s.public for s in vpc1.subnets) and any(not s.public for s in vpc1.subnets)
    assert attach.peering_via(found) == "peering"


def test_the_config_diff_names_what_the_file_gets_wrong(built: World, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    config = attaching(built, cni_version="1.19.0")
    diff = attach.config_diff(config, read(built, config, recorder))
    by_path = {entry["path"]: (entry["config"], entry["live"]) for entry in diff}
    assert by_path["clusters.vpc1.cni_version"] == ("1.19.0", built.config.clusters.vpc1.cni_version)
    assert "vpcs.vpc1.cidr" not in by_path


def test_attaching_to_a_cluster_that_is_not_there_exits_2(built: World, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_module.from_mapping({"name": "visitor", "clusters": {"vpc1": {"name": "nobody", "existing": True}}})
    experiment = AwsExperiment(
        EnvironmentRef(backend="aws", config=config, run_id="visit"), clients=ClientFactory(REGION)
    )
    with pytest.raises(config_module.ConfigError, match=r"^clusters.vpc1.name, clusters.vpc1.existing: no EKS"):
        experiment.read_attached()


def visitor(config: config_module.ExperimentConfig) -> AwsExperiment:
    return AwsExperiment(EnvironmentRef(backend="aws", config=config, run_id="visit"), clients=ClientFactory(REGION))


def owners_aws_node(world: World, vpc: str = "vpc1") -> list[dict[str, Any]]:
    daemonset = world.servers[vpc].state.objects[("kube-system", "daemonsets", "aws-node")]  # type: ignore[index]
    return list(daemonset["spec"]["template"]["spec"]["containers"][0].get("env", []))


@pytest.mark.parametrize("step", ["create_network", "create_cluster", "peer_vpcs", "deploy_apps"])
def test_attaching_one_cluster_while_creating_the_other_refuses_before_any_call(
    built: World, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    name = built.config.clusters.vpc1.name
    config = config_module.from_mapping({"name": "visitor", "clusters": {"vpc1": {"name": name, "existing": True}}})
    call = getattr(visitor(config), step)
    with pytest.raises(ConfigError, match=r"^clusters.vpc1.existing, clusters.vpc2.existing: step .*: attaching"):
        call("vpc1") if step.startswith("create_") else call()
    assert recorder.mutations() == []


def test_an_unallowed_snat_change_is_refused_before_aws_node_is_saved(built: World) -> None:
    found = owners_aws_node(built)
    with pytest.raises(ConfigError, match=r"^clusters.vpc1.allow_snat_changes: "):
        visitor(attaching(built)).set_snat("vpc1", Snat(external_snat=True))
    assert owners_aws_node(built) == found


def test_cleanup_puts_back_the_aws_node_a_phase_changed(built: World, monkeypatch: pytest.MonkeyPatch) -> None:
    found = owners_aws_node(built)
    recorder = Recorder()
    recorder.install(monkeypatch)
    experiment = visitor(attaching(built, allow_snat_changes=True))
    assert experiment.set_snat("vpc1", Snat(external_snat=True)).external_snat is True
    assert owners_aws_node(built) != found
    visitor(attaching(built, allow_snat_changes=True)).cleanup()  # a later process: from the saved record
    assert owners_aws_node(built) == found
    assert recorder.mutations() == []


def test_an_as_found_phase_leaves_aws_node_alone(built: World) -> None:
    before = {vpc: len(server.state.requests) for vpc, server in built.servers.items()}
    config = attaching(built)
    experiment = visitor(config)
    for vpc in VPC_KEYS:
        experiment.set_snat(vpc, config.phase_snat(config.phases[0], vpc))
    experiment.cleanup()
    own = f"/namespaces/{attach_mode.namespace(config)}"  # cleanup deletes peerprobe's namespace, absent here
    assert [w for w in kube_writes(built, before) if not w.endswith(own)] == []


ATTACH_POLICY = Path(__file__).resolve().parents[3] / "docs" / "iam-policy-attach.json"


def test_the_attach_policy_allows_what_reading_and_restoring_call(
    built: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    recorder.install(monkeypatch)
    config = attaching(built, allow_snat_changes=True)
    experiment = visitor(config)
    experiment.read_attached()
    experiment.set_snat("vpc1", Snat(external_snat=True))
    experiment.cleanup()
    document = json.loads(ATTACH_POLICY.read_text(encoding="utf-8"))
    allowed = {action for statement in document["Statement"] for action in statement["Action"]}
    called = set(recorder.calls) | {"sts:GetCallerIdentity"}  # preflight's, and what an EKS token presigns
    assert called <= allowed  # all of it, with a whole run: test_attach_run.py
