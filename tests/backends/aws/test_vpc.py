"""VPCs, subnets, route tables, routes, gateways: ensure twice -> one resource, delete twice -> gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import TAG_CREATED_AT, TAG_ENVIRONMENT, TAG_EXPERIMENT, TAG_RUN, Vpc
from peerprobe.errors import ConfigError, ConflictError

REGION = "cn-northwest-1"
AZ = f"{REGION}a"
Named = Callable[[str, str, str], list[dict[str, Any]]]


@pytest.fixture
def vpc(cloud: AwsCloud) -> Vpc:
    return cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")


def test_vpc_twice_is_one_tagged_vpc(cloud: AwsCloud, ec2: Any, named: Named) -> None:
    first = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    second = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    assert first == second
    [raw] = named("describe_vpcs", "Vpcs", "vpc1")
    tags = {t["Key"]: t["Value"] for t in raw["Tags"]}
    assert tags[TAG_EXPERIMENT] == "workshop"
    assert tags[TAG_ENVIRONMENT] == "aws:workshop:cn-northwest-1"
    assert tags[TAG_RUN] == "run-1"
    assert tags[TAG_CREATED_AT].endswith("Z")
    hostnames = ec2.describe_vpc_attribute(VpcId=first.id, Attribute="enableDnsHostnames")
    assert hostnames["EnableDnsHostnames"]["Value"] is True


def test_vpc_with_other_cidr_is_a_conflict(cloud: AwsCloud, vpc: Vpc) -> None:
    with pytest.raises(ConflictError, match=r"vpc vpc-\w+ \(vpc1\): has CIDR 172.16.0.0/16, wanted 10.0.0.0/16"):
        cloud.ensure_vpc("vpc1", cidr="10.0.0.0/16")


def test_subnet_twice_is_one_public_subnet(cloud: AwsCloud, ec2: Any, named: Named, vpc: Vpc) -> None:
    for _ in range(2):
        subnet = cloud.ensure_subnet(
            "vpc1-public-a", vpc_id=vpc.id, cidr="172.16.0.0/24", availability_zone=AZ, public=True
        )
    [raw] = named("describe_subnets", "Subnets", "vpc1-public-a")
    assert raw["SubnetId"] == subnet.id
    assert raw["MapPublicIpOnLaunch"] is True
    assert {"Key": "kubernetes.io/role/elb", "Value": "1"} in raw["Tags"]


def test_route_table_and_routes_twice(cloud: AwsCloud, ec2: Any, named: Named, vpc: Vpc) -> None:
    subnet = cloud.ensure_subnet("s", vpc_id=vpc.id, cidr="172.16.1.0/24", availability_zone=AZ, public=True)
    igw = cloud.ensure_internet_gateway("vpc1-igw", vpc_id=vpc.id)
    for _ in range(2):
        table = cloud.ensure_route_table("vpc1-public", vpc_id=vpc.id, subnet_ids=[subnet.id])
        cloud.ensure_route(table.id, destination_cidr="0.0.0.0/0", target_id=igw.id)
    [raw] = named("describe_route_tables", "RouteTables", "vpc1-public")
    assert [a["SubnetId"] for a in raw["Associations"]] == [subnet.id]
    defaults = [r for r in raw["Routes"] if r["DestinationCidrBlock"] == "0.0.0.0/0"]
    assert [r["GatewayId"] for r in defaults] == [igw.id]
    assert len(named("describe_internet_gateways", "InternetGateways", "vpc1-igw")) == 1
    assert cloud.ensure_internet_gateway("vpc1-igw", vpc_id=vpc.id) == igw


def test_subnets_move_to_the_table_that_claims_them(cloud: AwsCloud, ec2: Any, vpc: Vpc) -> None:
    cidrs = ["172.16.1.0/24", "172.16.2.0/24"]
    subnets = [cloud.ensure_subnet(f"s{i}", vpc_id=vpc.id, cidr=c, availability_zone=AZ, public=False).id
               for i, c in enumerate(cidrs)]  # fmt: skip
    old = cloud.ensure_route_table("old", vpc_id=vpc.id, subnet_ids=subnets)
    new = cloud.ensure_route_table("new", vpc_id=vpc.id, subnet_ids=subnets)
    assert sorted(new.subnet_ids) == sorted(subnets) and cloud.route_table(old.id).subnet_ids == ()
    cloud.delete_route_table(new.id)
    assert ec2.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": [new.id]}])["RouteTables"] == []


def test_route_to_unknown_target_kind_is_refused(cloud: AwsCloud, vpc: Vpc) -> None:
    table = cloud.ensure_route_table("t", vpc_id=vpc.id, subnet_ids=[])
    with pytest.raises(ConfigError, match="i-123"):
        cloud.ensure_route(table.id, destination_cidr="10.0.0.0/8", target_id="i-123")


def test_nat_gateway_twice_then_deleted_with_its_address(cloud: AwsCloud, ec2: Any, named: Named, vpc: Vpc) -> None:
    subnet = cloud.ensure_subnet("pub", vpc_id=vpc.id, cidr="172.16.2.0/24", availability_zone=AZ, public=True)
    cloud.ensure_internet_gateway("igw", vpc_id=vpc.id)
    first = cloud.ensure_nat_gateway("vpc1-nat", subnet_id=subnet.id)
    assert cloud.ensure_nat_gateway("vpc1-nat", subnet_id=subnet.id) == first
    assert first.state == "available" and first.public_ip
    assert len(named("describe_nat_gateways", "NatGateways", "vpc1-nat")) == 1
    assert len(named("describe_addresses", "Addresses", "vpc1-nat-eip")) == 1

    cloud.delete_nat_gateway(first.id)
    cloud.delete_nat_gateway(first.id)
    assert named("describe_addresses", "Addresses", "vpc1-nat-eip") == []


def test_teardown_in_dependency_order_twice(cloud: AwsCloud, ec2: Any, named: Named, vpc: Vpc) -> None:
    subnet = cloud.ensure_subnet("s", vpc_id=vpc.id, cidr="172.16.3.0/24", availability_zone=AZ, public=False)
    igw = cloud.ensure_internet_gateway("igw", vpc_id=vpc.id)
    table = cloud.ensure_route_table("rt", vpc_id=vpc.id, subnet_ids=[subnet.id])
    cloud.ensure_route(table.id, destination_cidr="0.0.0.0/0", target_id=igw.id)
    for _ in range(2):
        cloud.delete_route(table.id, destination_cidr="0.0.0.0/0")
        cloud.delete_subnet(subnet.id)
        cloud.delete_route_table(table.id)
        cloud.delete_internet_gateway(igw.id)
        cloud.delete_vpc(vpc.id)
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc.id]}])["Vpcs"] == []


def test_deleting_a_vpc_in_use_names_it(cloud: AwsCloud, vpc: Vpc) -> None:
    cloud.ensure_subnet("s", vpc_id=vpc.id, cidr="172.16.4.0/24", availability_zone=AZ, public=False)
    with pytest.raises(ConflictError, match=rf"vpc {vpc.id}: DependencyViolation") as caught:
        cloud.delete_vpc(vpc.id)
    assert caught.value.state == "DependencyViolation"
    assert caught.value.__cause__ is not None


def test_availability_zones(cloud: AwsCloud) -> None:
    assert cloud.availability_zones()[:2] == (f"{REGION}a", f"{REGION}b")
