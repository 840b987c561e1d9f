"""Cleanup on AWS when no persisted state survives (the state directory wiped), against moto: the ids are found
again from the `peerprobe:environment` tag and the steps' names, and the environment is removed all the same;
an adopted VPC is still never deleted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from peerprobe import config as config_module
from peerprobe.backends.aws import _recover
from peerprobe.backends.aws._state import AwsState, OpenedRule, load
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.ports import IngressRule
from peerprobe.snapshot import PEER_RULE_DESCRIPTION
from tests.backends.aws.test_experiment import (
    _existing_vpc,
    add_classic_elb,
    alive,
    built,
    kube_for,
    make,
    serves_classic_elb,
)


def created(clients: ClientFactory) -> AwsExperiment:
    """The whole environment as a kept run leaves it, with the Classic ELB cloud-provider-aws would have made."""
    config = config_module.load()
    kubes = kube_for(config)
    experiment = built(make(clients, config, kubes), clients.client("ec2"))
    add_classic_elb(clients, experiment)
    serves_classic_elb(kubes["vpc1"], clients)
    return experiment


def afresh(clients: ClientFactory) -> AwsExperiment:
    """Another process, with nothing but the config: its kubernetes side still reaches the clusters."""
    config = config_module.load()
    kubes = kube_for(config)
    serves_classic_elb(kubes["vpc1"], clients)
    return make(clients, config, kubes)


def comparable(state: AwsState) -> dict[str, Any]:
    networks = {
        key: {
            "vpc": n.vpc,
            "subnets": sorted([*n.public_subnets, *n.private_subnets]),
            "route_tables": sorted(n.route_tables),
            "internet_gateway": n.internet_gateway,
            "nat_gateway": n.nat_gateway,
            "nat_public_ip": n.nat_public_ip,
        }
        for key, n in state.networks.items()
    }
    clusters = {key: (c.name, c.nodegroup) for key, c in state.clusters.items()}
    return {
        "networks": networks,
        "clusters": clusters,
        "host": state.peer_host_instance,
        "peering": state.peering,
        "host_group": state.peer_host_security_group,
        "profile": state.instance_profile,
    }


def test_cleanup_without_state_removes_everything_tagged(aws: ClientFactory, state_dir: Path) -> None:
    environment = created(aws).environment
    assert alive(aws, environment)
    shutil.rmtree(state_dir)
    afresh(aws).cleanup()
    assert alive(aws, environment) == {}
    assert not aws.client("iam").list_roles(PathPrefix="/")["Roles"]


def test_the_ids_found_from_tags_are_the_ones_create_recorded(aws: ClientFactory, state_dir: Path) -> None:
    recorded = load(created(aws).environment)
    shutil.rmtree(state_dir)
    recovered = afresh(aws)._recovered_state()
    assert comparable(recovered) == comparable(recorded)
    assert set(recorded.roles) <= set(recovered.roles)


def test_only_the_peer_rules_peerprobe_opened_are_recovered(aws: ClientFactory) -> None:
    experiment = make(aws)
    vpc = experiment.create_network("vpc1").resources["vpc"]
    group = aws.client("ec2").create_security_group(GroupName="eks-cluster-sg", Description="eks", VpcId=vpc)["GroupId"]
    experiment.cloud.authorize_ingress(
        group,
        rules=[
            IngressRule("tcp", 8080, 8080, cidr="192.168.0.0/16", description=PEER_RULE_DESCRIPTION),
            IngressRule("tcp", 8080, 8080, cidr="10.9.0.0/16", description=PEER_RULE_DESCRIPTION),
            IngressRule("tcp", 22, 22, cidr="192.168.0.0/16", description="an operator's rule"),
        ],
    )
    found = _recover.opened_rules(experiment.cloud, group, peer_cidr="192.168.0.0/16")
    assert found == [OpenedRule(group=group, protocol="tcp", from_port=8080, to_port=8080, cidr="192.168.0.0/16")]


def test_an_adopted_vpc_is_kept_when_the_state_is_lost(aws: ClientFactory, state_dir: Path) -> None:
    vpc, private, public = _existing_vpc(aws.client("ec2"), public=True)
    config = config_module.from_mapping({"vpcs": {"vpc1": {"id": vpc}}})
    make(aws, config).create_network("vpc1")
    shutil.rmtree(state_dir)
    make(aws, config).cleanup()
    assert aws.client("ec2").describe_vpcs(VpcIds=[vpc])["Vpcs"]
    assert len(aws.client("ec2").describe_subnets(SubnetIds=[private, public or ""])["Subnets"]) == 2
