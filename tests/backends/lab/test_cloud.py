"""The lab's Cloud adapter under the experiment's own steps, in moto: what AWS supplies physically (the cluster
security group, the node group's instances at the planned addresses, the lab's Elastic IPs, the add-on API)
is there, the data plane's rules and peering are read from what moto holds, and cleanup leaves nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from peerprobe import config, drift, topology
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.aws._state import AwsState
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.experiment import Experiment
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import standins
from peerprobe.backends.lab.net import SecurityGroupRule
from peerprobe.backends.opened import peer_rules
from peerprobe.backends.ports import Stamp
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from peerprobe.run import predicted_report
from peerprobe.wait import Waits
from tests.backends.aws._fakes import FakeKube

ENVIRONMENT = "lab:workshop:cn-northwest-1"
MINE = [{"Name": "tag:peerprobe:environment", "Values": [ENVIRONMENT]}]


@pytest.fixture(autouse=True)
def _moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    with mock_aws():
        yield


def experiment(cfg: config.ExperimentConfig) -> Experiment:
    """The shared steps over the lab's Cloud adapter on in-process moto (no data plane: the cloud side only)."""
    standins.offer_cni(cfg.clusters.vpc1.cni_version, cfg.clusters.vpc2.cni_version)
    clients = ClientFactory(cfg.region, hooks=standins.install)
    stamp = Stamp(experiment=cfg.name, environment=ENVIRONMENT, run_id="r1")
    cloud = lab_cloud.LabCloud(clients, stamp=stamp, waits=lab_cloud.LAB_WAITS, config=cfg, topology=topology.plan(cfg))
    ref = EnvironmentRef(backend="lab", config=cfg, run_id="r1")
    plan = topology.plan(cfg)
    clusters = {k: FakeKube(name=getattr(cfg.clusters, k).name, nodes_=getattr(plan, k).nodes) for k in VPC_KEYS}

    def no_vantage(vantage: str) -> None:
        raise AssertionError("the cloud side probes nothing")

    return Experiment(ref, cloud=cloud, cluster=clusters.__getitem__, vantage=no_vantage, timing=Waits(delay=0))  # type: ignore[arg-type]


def cloud_side(cfg: config.ExperimentConfig) -> tuple[Experiment, AwsState]:
    steps = experiment(cfg)
    for vpc in VPC_KEYS:
        steps.create_network(vpc)
    for vpc in VPC_KEYS:
        steps.create_cluster(vpc)
    steps.create_peer_host()
    steps.peer_vpcs()
    return steps, aws_state.load(ENVIRONMENT)


def test_the_steps_twice_create_everything_once_with_the_nodes_at_the_planned_addresses() -> None:
    cfg = config.load()
    plan = topology.plan(cfg)
    _, first = cloud_side(cfg)
    steps, second = cloud_side(cfg)
    assert first == second
    ec2 = steps.cloud.ec2
    assert len(ec2.describe_vpcs(Filters=MINE)["Vpcs"]) == 2
    running = ec2.describe_instances(Filters=[*MINE, {"Name": "instance-state-name", "Values": ["running"]}])
    instances = {i["PrivateIpAddress"]: i["SubnetId"] for r in running["Reservations"] for i in r["Instances"]}
    assert sorted(instances) == sorted(
        [n.ip for n in plan.vpc1.nodes] + [n.ip for n in plan.vpc2.nodes] + [plan.peer_host.private_ip]
    )
    private = set(first.networks["vpc1"].private_subnets)
    assert {instances[n.ip] for n in plan.vpc1.nodes} <= private, "managed nodes in the private subnets"


def test_moto_holds_each_clusters_roles_cluster_node_group_and_addon() -> None:
    cfg = config.load()
    steps, ids = cloud_side(cfg)
    roles = {r["RoleName"] for r in steps.cloud.iam.list_roles()["Roles"]}
    assert set(ids.roles) <= roles and len(ids.roles) == 3  # cluster, node, host
    for vpc in VPC_KEYS:
        name = getattr(cfg.clusters, vpc).name
        assert steps.cloud.eks.list_nodegroups(clusterName=name)["nodegroups"] == [ids.clusters[vpc].nodegroup]
        assert ids.clusters[vpc].security_group.startswith("sg-")
        addon = steps.cloud.eks.describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
        assert addon["status"] == "ACTIVE" and addon["addonVersion"].startswith(f"v{cfg.clusters.vpc1.cni_version}-")


def test_the_nat_gateways_address_comes_from_the_labs_public_pool() -> None:
    _, ids = cloud_side(config.load())
    assert ids.networks["vpc1"].nat_public_ip == topology.nat_gateway_address("vpc1") == "198.51.100.1"


def test_rules_read_back_from_moto() -> None:
    _, ids = cloud_side(config.load())
    steps = experiment(config.load())
    rules = lab_cloud.security_group_rules(steps.cloud, ids, None)
    assert SecurityGroupRule(group="vpc1-nodes", port=8080, sources=["192.168.0.0/16"]) in rules
    assert SecurityGroupRule(group="vpc1-nodes", protocol="all", source_group="vpc1-nodes") in rules
    assert SecurityGroupRule(group="peer-host", port=80, sources=["172.16.0.0/16"]) in rules


def test_a_rule_revoked_behind_our_back_is_gone_from_the_lab() -> None:
    cfg = config.load()
    steps, ids = cloud_side(cfg)
    steps.cloud.revoke_ingress(ids.clusters["vpc1"].security_group, rules=peer_rules(cfg, topology.plan(cfg))[:1])
    rules = lab_cloud.security_group_rules(steps.cloud, ids, None)
    assert SecurityGroupRule(group="vpc1-nodes", port=8080, sources=["192.168.0.0/16"]) not in rules


def test_peering_is_active_with_routes_and_inactive_without() -> None:
    steps, ids = cloud_side(config.load())
    assert lab_cloud.peering_active(steps.cloud, ids)
    steps.cloud.delete_route(ids.networks["vpc2"].route_tables[-1], destination_cidr="172.16.0.0/16")
    assert not lab_cloud.peering_active(steps.cloud, ids)


def test_no_peering_when_disabled() -> None:
    steps, ids = cloud_side(config.from_mapping({"peering": {"enabled": False}}))
    assert ids.peering is None and not lab_cloud.peering_active(steps.cloud, ids)


def test_cleanup_twice_leaves_nothing_tagged() -> None:
    steps, _ = cloud_side(config.load())
    steps.cleanup()
    experiment(config.load()).cleanup()
    assert_nothing_left(steps)


def test_cleanup_from_tags_alone_removes_everything() -> None:
    steps, _ = cloud_side(config.load())
    aws_state.forget(ENVIRONMENT)  # the state directory lost the ids
    experiment(config.load()).cleanup()
    assert_nothing_left(steps)


def assert_nothing_left(steps: Experiment) -> None:
    # moto keeps the tags of deleted resources in DescribeTags, so read each kind back instead.
    ec2 = steps.cloud.ec2
    assert ec2.describe_vpcs(Filters=MINE)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=MINE)["Subnets"] == []
    assert ec2.describe_security_groups(Filters=MINE)["SecurityGroups"] == []
    assert ec2.describe_addresses(Filters=MINE)["Addresses"] == []
    assert {n["State"] for n in ec2.describe_nat_gateways()["NatGateways"]} <= {"deleted"}
    states = {i["State"]["Name"] for r in ec2.describe_instances(Filters=MINE)["Reservations"] for i in r["Instances"]}
    assert states <= {"terminated"}
    assert steps.cloud.eks.list_clusters()["clusters"] == []
    assert [r for r in steps.cloud.iam.list_roles()["Roles"] if r["RoleName"].startswith("peerprobe-")] == []


def test_cleanup_removes_the_environments_drift_baseline() -> None:
    cfg = config.load()
    steps, _ = cloud_side(cfg)
    report = predicted_report(cfg)
    drift.record_baseline(ENVIRONMENT, report, None)
    assert drift.read_baseline(ENVIRONMENT) is not None
    steps.cleanup()
    assert drift.read_baseline(ENVIRONMENT) is None


BEYOND = {
    "vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}},
    "clusters": {
        "vpc1": {
            "custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"},
            "pod_security_groups": {"pods": ["echo"]},
        }
    },
    "peering": {"via": "transit-gateway"},
}


def test_the_transit_gateway_links_the_lab_with_the_routes_aws_propagates() -> None:
    """moto records the propagation but adds no route: the lab derives the propagated routes (each attached VPC's
    blocks, the secondary one included) and links the VPCs when the gateway routes both."""
    steps, ids = cloud_side(config.from_mapping(BEYOND))
    routing = steps.cloud.transit_gateway_routing(ids.transit_gateway or "")
    assert routing.state == "available" and set(routing.attachments) == set(ids.transit_gateway_attachments.values())
    assert routing.associated == routing.propagating == frozenset(ids.transit_gateway_attachments.values())
    routes = lab_cloud.transit_gateway_routes(steps.cloud, routing)
    assert routes == {
        "172.16.0.0/16": ids.transit_gateway_attachments["vpc1"],
        "100.64.0.0/16": ids.transit_gateway_attachments["vpc1"],
        "192.168.0.0/16": ids.transit_gateway_attachments["vpc2"],
    }
    assert ids.peering is None and lab_cloud.peering_active(steps.cloud, ids)


def test_the_transit_gateway_without_a_propagation_or_a_vpc_route_links_nothing() -> None:
    steps, ids = cloud_side(config.from_mapping(BEYOND))
    gateway, attachment = ids.transit_gateway or "", ids.transit_gateway_attachments["vpc2"]
    table = steps.cloud.transit_gateway_routing(gateway).route_table
    steps.cloud.ec2.disable_transit_gateway_route_table_propagation(
        TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=attachment
    )
    assert not lab_cloud.peering_active(steps.cloud, ids)
    steps.cloud.ensure_transit_gateway_routing(gateway, attachment_id=attachment)  # the propagation back
    assert lab_cloud.peering_active(steps.cloud, ids)
    steps.cloud.delete_route(ids.networks["vpc1"].route_tables[0], destination_cidr="192.168.0.0/16")
    assert not lab_cloud.peering_active(steps.cloud, ids)


def test_the_pods_own_group_is_read_back_as_the_labs_pod_group() -> None:
    steps, ids = cloud_side(config.from_mapping(BEYOND))
    rules = lab_cloud.security_group_rules(steps.cloud, ids, None)
    assert SecurityGroupRule(group="vpc1-pods", port=8080, source_group="vpc1-nodes") in rules
    assert SecurityGroupRule(group="vpc1-pods", port=8080, sources=["192.168.0.0/16"]) in rules


def test_cleanup_removes_the_transit_gateway_and_the_pods_group() -> None:
    steps, _ = cloud_side(config.from_mapping(BEYOND))
    steps.cleanup()
    ec2 = steps.cloud.ec2
    assert [g for g in ec2.describe_transit_gateways()["TransitGateways"] if g["State"] != "deleted"] == []
    assert ec2.describe_security_groups(Filters=MINE)["SecurityGroups"] == []
