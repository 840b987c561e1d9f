"""VPCs, subnets, route tables, routes, gateways: ensure twice -> one resource, delete twice -> gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from moto import mock_aws

from peerprobe.backends.aws import AwsCloud, Waits, aws_cloud
from peerprobe.backends.ports import TAG_CREATED_AT, TAG_ENVIRONMENT, TAG_EXPERIMENT, TAG_RUN, Vpc
from peerprobe.errors import ConfigError, ConflictError
from tests.backends.aws._fakes import AwsBehaviour
from tests.backends.aws.conftest import STAMP

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
    subnets = [
        cloud.ensure_subnet(f"s{i}", vpc_id=vpc.id, cidr=c, availability_zone=AZ, public=False).id
        for i, c in enumerate(cidrs)
    ]
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


def test_a_vpc_left_without_dns_by_a_crash_gets_it_on_the_next_ensure(cloud: AwsCloud, ec2: Any) -> None:
    """CreateVpc succeeded, the process died before ModifyVpcAttribute: the tagged VPC is found next time, and
    EKS needs both DNS attributes on (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html)."""
    raw = ec2.create_vpc(CidrBlock="172.16.0.0/16", TagSpecifications=cloud.tag_specs("vpc", "vpc1"))["Vpc"]
    ec2.modify_vpc_attribute(VpcId=raw["VpcId"], EnableDnsSupport={"Value": False})
    assert _dns(ec2, raw["VpcId"]) == (False, False)
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    assert vpc.id == raw["VpcId"]
    assert _dns(ec2, vpc.id) == (True, True)


def test_ensuring_a_vpc_with_dns_on_changes_nothing(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    before = behaviour.calls("ec2:ModifyVpcAttribute")
    cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    assert behaviour.calls("ec2:ModifyVpcAttribute") == before == 1  # hostnames; moto turns support on itself


def _dns(ec2: Any, vpc_id: str) -> tuple[bool, bool]:
    support = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    names = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    return support, names


def test_zones_eks_refuses_are_skipped_by_zone_id(behaviour: AwsBehaviour) -> None:
    """Zone names map to different zones in every account: in this one us-east-1a is use1-az3, which EKS
    refuses (UnsupportedAvailabilityZoneException), so it is left out although its name sorts first."""

    def account_mapping(answer: dict[str, Any]) -> bool:
        for zone in answer["AvailabilityZones"]:
            zone["ZoneId"] = {"us-east-1a": "use1-az3", "us-east-1e": "use1-az6"}.get(zone["ZoneName"], zone["ZoneId"])
        return True

    behaviour.rewrite("ec2:DescribeAvailabilityZones", account_mapping)
    with mock_aws():
        cloud = aws_cloud(STAMP, region="us-east-1", waits=Waits(delay=0, max_attempts=3))
        zones = cloud.availability_zones()
    assert "us-east-1a" not in zones
    assert zones[:3] == ("us-east-1b", "us-east-1c", "us-east-1d")


def test_local_zones_are_not_offered(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    def with_a_local_zone(answer: dict[str, Any]) -> bool:
        answer["AvailabilityZones"].insert(
            0,
            {
                "ZoneName": f"{REGION}-local-1a",
                "ZoneId": "cnnw1-local-az1",
                "ZoneType": "local-zone",
                "State": "available",
            },
        )
        return True

    behaviour.rewrite("ec2:DescribeAvailabilityZones", with_a_local_zone)
    assert cloud.availability_zones()[0] == f"{REGION}a"


def test_a_nat_gateway_refused_for_a_subnet_ec2_does_not_know_yet_is_asked_for_again(
    cloud: AwsCloud, named: Named, vpc: Vpc, behaviour: AwsBehaviour
) -> None:
    """CreateNatGateway seconds after CreateSubnet can answer InvalidSubnetID.NotFound (openshift/hypershift#711):
    nothing was made, so asking again makes exactly one."""
    subnet = cloud.ensure_subnet("pub", vpc_id=vpc.id, cidr="172.16.2.0/24", availability_zone=AZ, public=True)
    unknown = f"The subnet ID '{subnet.id}' does not exist"
    behaviour.fail("ec2:CreateNatGateway", "InvalidSubnetID.NotFound", message=unknown)
    cloud.ensure_nat_gateway("vpc1-nat", subnet_id=subnet.id)
    assert behaviour.answered == ["ec2:CreateNatGateway InvalidSubnetID.NotFound"]
    assert len(named("describe_nat_gateways", "NatGateways", "vpc1-nat")) == 1
