"""Sweep on AWS, against moto: find_tagged sees every kind; `sweep --backend aws` lists the tagged resources of
environments this state directory does not record and that were not tagged within the grace, deletes them with
`--yes` in the deletion order leaving nothing, and without credentials exits 2 having called nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from peerprobe import config as config_module
from peerprobe import sweep
from peerprobe.backends.aws import AwsCloud, Waits
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.aws._sweep import DELETION_ORDER
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import TAG_CREATED_AT, IngressRule, Listener, Stamp
from peerprobe.cli import app
from tests.backends.aws._fakes import Recorder
from tests.backends.aws.conftest import REGION

ROLE = "arn:aws-cn:iam::123456789012:role/peerprobe-eks"
DEAD = "aws:sweep-dead:cn-northwest-1"
FAST = Waits(delay=0, max_attempts=3)
LATER = 2 * 3600.0  # "now" for the sweeps below: everything made in the test is two hours old by then


def test_find_tagged_sees_every_kind_and_filters_by_environment(cloud: AwsCloud) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    subnet = cloud.ensure_subnet(
        "s", vpc_id=vpc.id, cidr="172.16.0.0/24", availability_zone="cn-northwest-1a", public=True
    )
    cloud.ensure_internet_gateway("igw", vpc_id=vpc.id)
    cloud.ensure_nat_gateway("nat", subnet_id=subnet.id)
    cloud.ensure_cluster(
        "c1", role_arn="arn:aws-cn:iam::123456789012:role/r", subnet_ids=[subnet.id], service_cidr="10.100.0.0/16"
    )
    cloud.ensure_classic_load_balancer(
        "lb", subnet_ids=[subnet.id], internal=True, listeners=[Listener(protocol="TCP", port=80, instance_port=30080)]
    )
    cloud.ensure_target_group("tg", vpc_id=vpc.id, protocol="TCP", port=80, target_type="instance")
    other = AwsCloud(cloud.clients, stamp=Stamp(experiment="x", environment="lab:x:cn-northwest-1", run_id="r"))
    other.ensure_vpc("vpc1", cidr="10.0.0.0/16")

    mine = cloud.find_tagged("aws:workshop:cn-northwest-1")
    kinds = sorted(r.kind for r in mine)
    assert kinds == [
        "eks-cluster",
        "elastic-ip",
        "elb",
        "internet-gateway",
        "natgateway",
        "subnet",
        "target-group",
        "vpc",
    ]
    assert {r.tags["peerprobe:run"] for r in mine} == {"run-1"}
    everything = cloud.find_tagged()
    assert {r.environment for r in everything} == {"aws:workshop:cn-northwest-1", "lab:x:cn-northwest-1"}
    assert len(everything) == len(mine) + 1


def tagged(clients: ClientFactory, environment: str) -> AwsCloud:
    return AwsCloud(clients, stamp=Stamp(experiment="sweep", environment=environment, run_id="r"), waits=FAST)


def a_network(clients: ClientFactory, environment: str, cidr: str) -> dict[str, str]:
    cloud = tagged(clients, environment)
    vpc = cloud.ensure_vpc("vpc1", cidr=cidr)
    subnet = cloud.ensure_subnet(
        "a", vpc_id=vpc.id, cidr=cidr.replace("0.0/16", "1.0/24"), availability_zone=f"{REGION}a", public=True
    )
    return {"vpc": vpc.id, "subnet": subnet.id}


def a_whole_environment(clients: ClientFactory, environment: str) -> set[tuple[str, str]]:
    """What a run leaves: two networks, the peering and its routes, a transit gateway and its attachment, NAT,
    groups that refer to each other, the EC2 host, a cluster with its node group, a load balancer and a target group."""
    cloud = tagged(clients, environment)
    vpc1, vpc2 = cloud.ensure_vpc("vpc1", cidr="10.61.0.0/16"), cloud.ensure_vpc("vpc2", cidr="10.62.0.0/16")
    subnets = [
        cloud.ensure_subnet(
            f"s{i}", vpc_id=vpc1.id, cidr=f"10.61.{i}.0/24", availability_zone=f"{REGION}{zone}", public=i == 1
        ).id
        for i, zone in ((1, "a"), (2, "b"))
    ]
    table = cloud.ensure_route_table("rt", vpc_id=vpc1.id, subnet_ids=subnets)
    cloud.ensure_internet_gateway("igw", vpc_id=vpc1.id)
    cloud.ensure_nat_gateway("nat", subnet_id=subnets[0])
    peering = cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    cloud.ensure_route(table.id, destination_cidr="10.62.0.0/16", target_id=peering.id)
    gateway = cloud.ensure_transit_gateway("tgw")  # peering.via: transit-gateway (another run's)
    cloud.ensure_transit_gateway_attachment("vpc1-tgw", gateway_id=gateway, vpc_id=vpc1.id, subnet_ids=subnets)
    cloud.ensure_route(table.id, destination_cidr="10.63.0.0/16", target_id=gateway)
    one = cloud.ensure_security_group("one", vpc_id=vpc1.id, description="one")
    two = cloud.ensure_security_group("two", vpc_id=vpc1.id, description="two")
    cloud.authorize_ingress(one.id, rules=[IngressRule("tcp", 80, 80, source_group=two.id)])
    cloud.authorize_ingress(two.id, rules=[IngressRule("tcp", 80, 80, source_group=one.id)])
    cloud.ensure_instance(
        "peer-host", subnet_id=subnets[0], image_id="ami-0123456789abcdef0", instance_type="t3.micro",
        security_group_ids=[one.id],
    )  # fmt: skip
    cluster = cloud.ensure_cluster("sweep-c1", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")
    cloud.ensure_nodegroup(cluster.name, name="ng", node_role_arn=ROLE, subnet_ids=subnets, size=1)
    listeners = [Listener(protocol="TCP", port=80, instance_port=30080)]
    cloud.ensure_classic_load_balancer("lb", subnet_ids=subnets, internal=True, listeners=listeners)
    cloud.ensure_target_group("tg", vpc_id=vpc1.id, protocol="TCP", port=80, target_type="instance")
    return {(r.kind, r.id) for r in cloud.find_tagged(environment) if cloud.exists(r)}


def find(clients: ClientFactory, *, grace: float = sweep.GRACE_SECONDS, later: float = LATER) -> list[Any]:
    config = config_module.load()
    return sweep.find_aws(
        config, grace_seconds=grace, now=time.time() + later, cloud=tagged(clients, "sweep")
    ).leftovers


def test_only_environments_nobody_records_or_is_building_are_listed(aws: ClientFactory) -> None:
    dead = a_network(aws, DEAD, "10.71.0.0/16")
    a_network(aws, "aws:sweep-kept:cn-northwest-1", "10.72.0.0/16")
    aws_state.update("aws:sweep-kept:cn-northwest-1", lambda s: s)  # `run --keep` recorded it here
    building = a_network(aws, "aws:sweep-building:cn-northwest-1", "10.73.0.0/16")
    just_now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + LATER - 60))
    aws.client("ec2").create_tags(Resources=[building["subnet"]], Tags=[{"Key": TAG_CREATED_AT, "Value": just_now}])

    found = find(aws)
    assert {(i.kind, i.id) for i in found} == {("vpc", dead["vpc"]), ("subnet", dead["subnet"])}
    assert {(i.environment, i.region, i.backend) for i in found} == {(DEAD, REGION, "aws")}
    assert {i.reason for i in found} == {"no state in this state directory records its environment"}
    assert all(i.age_seconds is not None and i.age_seconds >= LATER - 60 for i in found)
    assert not find(aws, later=0.0), "everything was tagged a moment ago: builds may be under way"


def test_yes_deletes_every_kind_in_the_deletion_order_and_leaves_nothing(aws: ClientFactory) -> None:
    made = a_whole_environment(aws, DEAD)
    # moto 5's DescribeTags lists no transit gateway attachment (AWS does): the gateway's deletion takes it.
    assert {kind for kind, _ in made} >= set(DELETION_ORDER) - {"elbv2", "volume", "transit-gateway-attachment"}
    found = find(aws)
    assert {(i.kind, i.id) for i in found} == made
    removed = sweep.remove(found, cloud_of=lambda item: tagged(aws, "sweep"))
    ranks = [DELETION_ORDER.index(line.split()[1]) for line in removed]
    assert ranks == sorted(ranks)
    cloud = tagged(aws, DEAD)
    assert find(aws) == [] and not [r for r in cloud.find_tagged(DEAD) if cloud.exists(r)]
    assert not aws.client("elb").describe_load_balancers()["LoadBalancerDescriptions"]
    assert not aws.client("ec2").describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
    sweep.remove(found, cloud_of=lambda item: cloud)  # again: what is gone counts as removed


def test_without_credentials_it_exits_2_and_calls_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    recorder = Recorder()
    recorder.install(monkeypatch)
    result = CliRunner().invoke(app, ["sweep", "--backend", "aws", "--yes"])
    assert result.exit_code == 2, result.output
    assert "aws credentials: none found" in result.output
    assert recorder.calls == []


def test_the_command_lists_then_deletes(aws: ClientFactory) -> None:
    dead = a_network(aws, DEAD, "10.71.0.0/16")
    listed = CliRunner().invoke(app, ["sweep", "--backend", "aws", "--older-than", "0s", "--json"])
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert {(i["kind"], i["id"], i["environment"]) for i in document["leftovers"]} == {
        ("vpc", dead["vpc"], DEAD),
        ("subnet", dead["subnet"], DEAD),
    }
    assert document["removed"] is None and document["backend"] == "aws"
    deleted = CliRunner().invoke(app, ["sweep", "--backend", "aws", "--older-than", "0s", "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert f"removed vpc {dead['vpc']}" in deleted.stdout
    assert find(aws) == []
