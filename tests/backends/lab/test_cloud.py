"""The lab's AWS side in moto: provisioning is idempotent, the data plane's rules and peering come from
what moto holds, and removal leaves nothing tagged with the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from peerprobe import config, topology
from peerprobe.backends.aws import AwsCloud, Waits, aws_cloud
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab.net import SecurityGroupRule
from peerprobe.backends.opened import peer_rules
from peerprobe.backends.ports import Stamp

ENVIRONMENT = "lab:workshop:cn-northwest-1"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsCloud]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with mock_aws():
        stamp = Stamp(experiment="workshop", environment=ENVIRONMENT, run_id="r1")
        yield aws_cloud(stamp, region="cn-northwest-1", waits=Waits(delay=0, max_attempts=3))


def workshop() -> tuple[config.ExperimentConfig, topology.Topology]:
    cfg = config.load()
    return cfg, topology.plan(cfg)


def test_provision_twice_creates_everything_once(cloud: AwsCloud) -> None:
    cfg, plan = workshop()
    first = lab_cloud.provision(cloud, cfg, plan)
    second = lab_cloud.provision(cloud, cfg, plan)
    assert first == second
    assert (
        len(cloud.ec2.describe_vpcs(Filters=[{"Name": "tag:peerprobe:environment", "Values": [ENVIRONMENT]}])["Vpcs"])
        == 2
    )
    reservations = cloud.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    instances = [i for r in reservations["Reservations"] for i in r["Instances"]]
    assert sorted(i["PrivateIpAddress"] for i in instances) == sorted(
        [n.ip for n in plan.vpc1.nodes] + [n.ip for n in plan.vpc2.nodes] + [plan.peer_host.private_ip]
    )


def test_rules_read_back_from_moto(cloud: AwsCloud) -> None:
    cfg, plan = workshop()
    ids = lab_cloud.provision(cloud, cfg, plan)
    rules = lab_cloud.security_group_rules(cloud, ids)
    assert SecurityGroupRule(group="vpc1-nodes", port=8080, sources=["192.168.0.0/16"]) in rules
    assert SecurityGroupRule(group="vpc1-nodes", protocol="all", source_group="vpc1-nodes") in rules
    assert SecurityGroupRule(group="peer-host", port=80, sources=["172.16.0.0/16"]) in rules


def test_a_rule_revoked_behind_our_back_is_gone_from_the_lab(cloud: AwsCloud) -> None:
    cfg, plan = workshop()
    ids = lab_cloud.provision(cloud, cfg, plan)
    cloud.revoke_ingress(ids.vpcs["vpc1"].node_security_group, rules=peer_rules(cfg, plan)[:1])
    rules = lab_cloud.security_group_rules(cloud, ids)
    assert SecurityGroupRule(group="vpc1-nodes", port=8080, sources=["192.168.0.0/16"]) not in rules


def test_peering_is_active_with_routes_and_inactive_without(cloud: AwsCloud) -> None:
    cfg, plan = workshop()
    ids = lab_cloud.provision(cloud, cfg, plan)
    assert lab_cloud.peering_active(cloud, ids)
    cloud.delete_route(ids.vpcs["vpc2"].private_route_table, destination_cidr="172.16.0.0/16")
    assert not lab_cloud.peering_active(cloud, ids)


def test_no_peering_when_disabled(cloud: AwsCloud) -> None:
    cfg = config.from_mapping({"peering": {"enabled": False}})
    ids = lab_cloud.provision(cloud, cfg, topology.plan(cfg))
    assert ids.peering is None and not lab_cloud.peering_active(cloud, ids)


def test_remove_twice_leaves_nothing_tagged(cloud: AwsCloud) -> None:
    cfg, plan = workshop()
    ids = lab_cloud.provision(cloud, cfg, plan)
    lab_cloud.remove(cloud, ids, cfg, plan)
    lab_cloud.remove(cloud, ids, cfg, plan)
    # moto keeps the tags of deleted resources in DescribeTags, so read each kind back instead.
    ec2, mine = cloud.ec2, [{"Name": "tag:peerprobe:environment", "Values": [ENVIRONMENT]}]
    assert ec2.describe_vpcs(Filters=mine)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=mine)["Subnets"] == []
    assert ec2.describe_security_groups(Filters=mine)["SecurityGroups"] == []
    assert ec2.describe_addresses(Filters=mine)["Addresses"] == []
    assert {n["State"] for n in ec2.describe_nat_gateways()["NatGateways"]} <= {"deleted"}
    states = {i["State"]["Name"] for r in ec2.describe_instances(Filters=mine)["Reservations"] for i in r["Instances"]}
    assert states <= {"terminated"}
    assert cloud.eks.list_clusters()["clusters"] == []


def test_ids_are_recovered_from_tags_alone_and_removed(cloud: AwsCloud) -> None:
    cfg, plan = workshop()
    made = lab_cloud.provision(cloud, cfg, plan)
    recovered = lab_cloud.recover_ids(cloud, cfg)
    assert recovered.vpcs["vpc1"].vpc == made.vpcs["vpc1"].vpc and recovered.peering == made.peering
    assert sorted(recovered.vpcs["vpc2"].node_instances) == sorted(made.vpcs["vpc2"].node_instances)
    lab_cloud.remove(cloud, recovered, cfg, plan)
    owned = [{"Name": "tag:peerprobe:environment", "Values": [ENVIRONMENT]}]
    assert cloud.ec2.describe_vpcs(Filters=owned)["Vpcs"] == []
    assert lab_cloud.recover_ids(cloud, cfg).vpcs == {}
