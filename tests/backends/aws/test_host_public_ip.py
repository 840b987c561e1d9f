"""The EC2 web host's public address on AWS, against moto: `peer_host.public_ip: false` launches it with none
(and the topology then has no `peer-host-public` target), `true` asks for one whatever the subnet maps, a host
that is not what the config says is a conflict, and the host's security group admits exactly VPC1's CIDR and
VPC1's own egress public addresses: the NAT gateway and, with VPC1 nodes in public subnets, those nodes."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe import config as config_module
from peerprobe.backends.aws._state import load
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.errors import ConflictError
from peerprobe.probes.plan import plan
from peerprobe.topology import Node
from tests.backends.aws._fakes import FakeKube
from tests.backends.aws.test_experiment import kube_for, make

VPC1_CIDR = "172.16.0.0/16"


def configured(**peer_host: bool) -> config_module.ExperimentConfig:
    return config_module.from_mapping({"peer_host": peer_host})


def with_networks(clients: ClientFactory, config: config_module.ExperimentConfig, **kwargs: Any) -> AwsExperiment:
    experiment = make(clients, config, **kwargs)
    experiment.create_network("vpc1")
    experiment.create_network("vpc2")
    return experiment


def described(clients: ClientFactory, instance_id: str) -> dict[str, Any]:
    found = clients.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return dict(found)


def sources(experiment: AwsExperiment) -> set[str]:
    group = load(experiment.environment).peer_host_security_group
    return {r.cidr for r in experiment.cloud.ingress_rules(group)}


def test_public_ip_false_launches_the_host_without_one(aws: ClientFactory) -> None:
    experiment = with_networks(aws, configured(public_ip=False))
    instance = experiment.create_peer_host().resources["instance"]
    raw = described(aws, instance)
    assert raw.get("PublicIpAddress") is None
    assert raw["SubnetId"] == load(experiment.environment).networks["vpc2"].public_subnets[0]


def test_public_ip_true_gets_one_even_where_the_subnet_maps_none(aws: ClientFactory) -> None:
    experiment = with_networks(aws, configured(public_ip=True))
    subnet = load(experiment.environment).networks["vpc2"].public_subnets[0]
    aws.client("ec2").modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": False})
    instance = experiment.create_peer_host().resources["instance"]
    assert described(aws, instance).get("PublicIpAddress")


def test_without_a_public_ip_the_probe_plan_has_no_peer_host_public(aws: ClientFactory) -> None:
    config = configured(public_ip=False)
    kubes = kube_for(config)
    experiment = with_networks(aws, config, kubes=kubes)
    for key in ("vpc1", "vpc2"):
        experiment.create_cluster(key)
    experiment.create_peer_host()
    experiment.deploy_apps()
    topology = experiment.topology()
    targets = {spec.target for spec in plan(topology) if spec.vantage == "vpc1-pod"}
    assert topology.peer_host.public_ip is None
    assert "peer-host" in targets and "peer-host-public" not in targets


def test_a_host_with_a_public_ip_conflicts_with_public_ip_false(aws: ClientFactory) -> None:
    first = with_networks(aws, configured(public_ip=True)).create_peer_host().resources["instance"]
    with pytest.raises(ConflictError, match=rf"instance {first} \(peer-host\): has public IP .*, wanted none"):
        make(aws, configured(public_ip=False)).create_peer_host()


def test_without_a_public_ip_the_host_admits_only_vpc1s_cidr(aws: ClientFactory) -> None:
    experiment = with_networks(aws, configured(public_ip=False))
    experiment.create_peer_host()
    assert sources(experiment) == {VPC1_CIDR}


def public_nodes_config() -> tuple[config_module.ExperimentConfig, dict[str, FakeKube]]:
    config = config_module.from_mapping({"clusters": {"vpc1": {"node_subnets": "public"}}})
    kubes = kube_for(config)
    nodes = enumerate(kubes["vpc1"].nodes_)
    kubes["vpc1"].nodes_ = [Node(name=n.name, ip=n.ip, subnet="public", public_ip=f"52.82.{i}.7") for i, n in nodes]
    return config, kubes


def test_vpc1_nodes_in_public_subnets_are_admitted_once_they_exist(aws: ClientFactory) -> None:
    config, kubes = public_nodes_config()
    experiment = with_networks(aws, config, kubes=kubes)
    experiment.create_peer_host()
    nat = load(experiment.environment).networks["vpc1"].nat_public_ip
    assert sources(experiment) == {VPC1_CIDR, f"{nat}/32"}
    experiment.deploy_apps()
    assert sources(experiment) == {VPC1_CIDR, f"{nat}/32", "52.82.0.7/32", "52.82.1.7/32", "52.82.2.7/32"}


def test_admit_vpc1_false_admits_no_node(aws: ClientFactory) -> None:
    config, kubes = public_nodes_config()
    config = config.model_copy(update={"peer_host": config.peer_host.model_copy(update={"admit_vpc1": False})})
    experiment = with_networks(aws, config, kubes=kubes)
    experiment.create_peer_host()
    experiment.deploy_apps()
    assert sources(experiment) == set()
