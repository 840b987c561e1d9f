"""VPC peering: one accepted connection, routes both ways, overlap refused before any AWS call."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import Vpc
from peerprobe.errors import ConfigError, ConflictError, InfrastructureError, WaitTimeoutError
from tests.backends.aws._fakes import AwsBehaviour


def test_peering_twice_is_one_active_connection_with_routes_both_ways(cloud: AwsCloud, ec2: Any) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    rt1 = cloud.ensure_route_table("vpc1-private", vpc_id=vpc1.id, subnet_ids=[])
    rt2 = cloud.ensure_route_table("vpc2-public", vpc_id=vpc2.id, subnet_ids=[])
    for _ in range(2):
        peering = cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
        cloud.ensure_peering_routes(peering, requester_route_tables=[rt1.id], accepter_route_tables=[rt2.id])

    assert peering.status == "active"
    assert (peering.requester_cidr, peering.accepter_cidr) == ("172.16.0.0/16", "192.168.0.0/16")
    found = ec2.describe_vpc_peering_connections(Filters=[{"Name": "tag:Name", "Values": ["vpc1-vpc2"]}])
    assert [p["VpcPeeringConnectionId"] for p in found["VpcPeeringConnections"]] == [peering.id]
    assert _peer_routes(ec2, rt1.id, peering.id) == ["192.168.0.0/16"]
    assert _peer_routes(ec2, rt2.id, peering.id) == ["172.16.0.0/16"]


def test_overlapping_cidrs_are_refused_before_calling_aws(cloud: AwsCloud, ec2: Any) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="172.16.128.0/17")
    with pytest.raises(ConfigError, match=r"172\.16\.0\.0/16 overlaps vpc2 CIDR 172\.16\.128\.0/17"):
        cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    # moto would accept this peering (real AWS refuses it), so nothing existing proves we never asked.
    assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []


def test_overlap_check_needs_no_cloud() -> None:
    from peerprobe.backends.aws._peering import refuse_overlap

    with pytest.raises(ConfigError, match=r"10\.0\.0\.0/8 overlaps"):
        refuse_overlap("p", requester=Vpc(id="vpc-a", cidr="10.0.0.0/8"), accepter=Vpc(id="vpc-b", cidr="10.1.0.0/16"))
    refuse_overlap("p", requester=Vpc(id="vpc-a", cidr="10.0.0.0/16"), accepter=Vpc(id="vpc-b", cidr="10.1.0.0/16"))


def test_delete_peering_twice(cloud: AwsCloud) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    peering = cloud.ensure_peering("p", requester=vpc1, accepter=vpc2)
    cloud.delete_peering(peering.id)
    cloud.delete_peering(peering.id)
    assert cloud.peering(peering.id).status == "deleted"
    again = cloud.ensure_peering("p", requester=vpc1, accepter=vpc2)
    assert again.id != peering.id and again.status == "active"


def _peer_routes(ec2: Any, table_id: str, peering_id: str) -> list[str]:
    table = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    return [r["DestinationCidrBlock"] for r in table["Routes"] if r.get("VpcPeeringConnectionId") == peering_id]


def test_two_named_peerings_between_the_same_vpcs_stay_apart(cloud: AwsCloud) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    first = cloud.ensure_peering("a", requester=vpc1, accepter=vpc2)
    assert cloud.ensure_peering("b", requester=vpc1, accepter=vpc2).id != first.id
    assert cloud.ensure_peering("a", requester=vpc1, accepter=vpc2).id == first.id


# --- AWS's peering states (https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-basics.html) ------------


def _shows(status: str) -> Any:
    """A DescribeVpcPeeringConnections answer rewritten to show every peering in `status`."""

    def change(answer: dict[str, Any]) -> bool:
        for raw in answer["VpcPeeringConnections"]:
            raw["Status"] = {"Code": status, "Message": status}
        return bool(answer["VpcPeeringConnections"])

    return change


def test_a_request_still_initiating_is_waited_for_then_accepted(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    """moto shows a new request as pending-acceptance at once; AWS first shows initiating-request (and botocore's
    "exists" waiter already returns then), so an adapter that accepted only what it saw pending would skip it."""
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    behaviour.rewrite("ec2:DescribeVpcPeeringConnections", _shows("initiating-request"), times=2)
    peering = cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    assert peering.status == "active"
    assert behaviour.calls("ec2:AcceptVpcPeeringConnection") == 1


def test_an_accepted_peering_is_waited_for_until_active(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")

    def provisioning_after_accept(answer: dict[str, Any]) -> bool:
        active = [raw for raw in answer["VpcPeeringConnections"] if raw["Status"]["Code"] == "active"]
        for raw in active:
            raw["Status"] = {"Code": "provisioning", "Message": "Provisioning"}
        return bool(active)

    behaviour.rewrite("ec2:DescribeVpcPeeringConnections", provisioning_after_accept, times=2)
    peering = cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    assert peering.status == "active"


def test_a_retried_step_accepts_the_peering_it_left_pending(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    behaviour.fail("ec2:AcceptVpcPeeringConnection", "RequestLimitExceeded", times=1)
    with pytest.raises(InfrastructureError, match="RequestLimitExceeded"):
        cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    assert [p["Status"]["Code"] for p in _tagged(cloud, "vpc1-vpc2")] == ["pending-acceptance"]
    peering = cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    assert peering.status == "active"
    assert [p["VpcPeeringConnectionId"] for p in _tagged(cloud, "vpc1-vpc2")] == [peering.id]


def test_an_accept_refused_for_a_peering_ec2_does_not_know_yet_is_asked_for_again(
    cloud: AwsCloud, behaviour: AwsBehaviour
) -> None:
    """AcceptVpcPeeringConnection can answer InvalidVpcPeeringConnectionID.NotFound for a request that describe
    already shows (hashicorp/terraform-provider-aws#30423)."""
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    behaviour.fail("ec2:AcceptVpcPeeringConnection", "InvalidVpcPeeringConnectionID.NotFound")
    peering = cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    assert peering.status == "active"
    assert behaviour.calls("ec2:AcceptVpcPeeringConnection") == 2
    assert [p["VpcPeeringConnectionId"] for p in _tagged(cloud, "vpc1-vpc2")] == [peering.id]


def test_a_peering_that_never_leaves_initiating_request_is_a_bounded_wait(
    cloud: AwsCloud, behaviour: AwsBehaviour
) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    behaviour.rewrite("ec2:DescribeVpcPeeringConnections", _shows("initiating-request"), times=10**6)
    with pytest.raises(WaitTimeoutError, match=r"vpc peering pcx-\w+: not pending-acceptance after 3 checks"):
        cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)
    assert behaviour.calls("ec2:AcceptVpcPeeringConnection") == 0


def test_a_failed_peering_is_refused_naming_its_status(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    vpc1 = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    vpc2 = cloud.ensure_vpc("vpc2", cidr="192.168.0.0/16")
    behaviour.rewrite("ec2:DescribeVpcPeeringConnections", _shows("failed"), times=10**6)
    with pytest.raises(ConflictError, match=r"vpc peering pcx-\w+: is failed"):
        cloud.ensure_peering("vpc1-vpc2", requester=vpc1, accepter=vpc2)


def _tagged(cloud: AwsCloud, name: str) -> list[dict[str, Any]]:
    found = cloud.ec2.describe_vpc_peering_connections(Filters=[{"Name": "tag:Name", "Values": [name]}])
    return [p for p in found["VpcPeeringConnections"] if p["Status"]["Code"] not in ("deleted", "rejected")]
