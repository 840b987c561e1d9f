"""A transit gateway in place of the peering, and a VPC's secondary CIDR blocks, against moto.

moto 5 stands in with gaps: a gateway and an attachment are `available` at once (no pending), a deleted one
vanishes from Describe* (AWS shows `deleted` for a while), and default route-table propagation is not applied
(association is); the adapter checks both and makes them so, which these tests see.
"""

from __future__ import annotations

from typing import Any

from peerprobe.backends.aws import AwsCloud


def _vpc_with_subnets(cloud: AwsCloud, key: str, cidr: str, zones: int = 2) -> tuple[str, list[str], str]:
    vpc = cloud.ensure_vpc(key, cidr=cidr)
    prefix = cidr.rsplit(".", 2)[0]
    azs = cloud.availability_zones()
    subnets = [
        cloud.ensure_subnet(
            f"{key}-private-{i}", vpc_id=vpc.id, cidr=f"{prefix}.{i * 16}.0/20", availability_zone=azs[i], public=False
        ).id
        for i in range(zones)
    ]
    table = cloud.ensure_route_table(f"{key}-private", vpc_id=vpc.id, subnet_ids=subnets)
    return vpc.id, subnets, table.id


def test_a_gateway_twice_is_one_available_gateway(cloud: AwsCloud, ec2: Any) -> None:
    first = cloud.ensure_transit_gateway("vpc1-vpc2-tgw")
    assert cloud.ensure_transit_gateway("vpc1-vpc2-tgw") == first
    assert [g["TransitGatewayId"] for g in ec2.describe_transit_gateways()["TransitGateways"]] == [first]


def test_an_attachment_is_associated_and_propagates_to_the_default_table(cloud: AwsCloud, ec2: Any) -> None:
    gateway = cloud.ensure_transit_gateway("tgw")
    vpc, subnets, _ = _vpc_with_subnets(cloud, "vpc1", "172.16.0.0/16")
    attachment = cloud.ensure_transit_gateway_attachment("vpc1-tgw", gateway_id=gateway, vpc_id=vpc, subnet_ids=subnets)
    assert (
        cloud.ensure_transit_gateway_attachment("vpc1-tgw", gateway_id=gateway, vpc_id=vpc, subnet_ids=subnets)
        == attachment
    )
    table = cloud.ensure_transit_gateway_routing(gateway, attachment_id=attachment)
    cloud.ensure_transit_gateway_routing(gateway, attachment_id=attachment)  # idempotent

    propagations = ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=table)
    associations = ec2.get_transit_gateway_route_table_associations(TransitGatewayRouteTableId=table)
    assert [p["TransitGatewayAttachmentId"] for p in propagations["TransitGatewayRouteTablePropagations"]] == [
        attachment
    ]
    assert [a["TransitGatewayAttachmentId"] for a in associations["Associations"]] == [attachment]
    raw = ec2.describe_transit_gateway_vpc_attachments(TransitGatewayAttachmentIds=[attachment])
    assert sorted(raw["TransitGatewayVpcAttachments"][0]["SubnetIds"]) == sorted(subnets)


def test_routes_to_the_gateway_and_deletion_in_order(cloud: AwsCloud, ec2: Any) -> None:
    gateway = cloud.ensure_transit_gateway("tgw")
    vpc, subnets, table = _vpc_with_subnets(cloud, "vpc1", "172.16.0.0/16")
    attachment = cloud.ensure_transit_gateway_attachment("vpc1-tgw", gateway_id=gateway, vpc_id=vpc, subnet_ids=subnets)
    route = cloud.ensure_route(table, destination_cidr="192.168.0.0/16", target_id=gateway)
    assert route.target_id == gateway
    assert [r.target_id for r in cloud.route_table(table).routes if r.destination_cidr == "192.168.0.0/16"] == [gateway]

    cloud.delete_route(table, destination_cidr="192.168.0.0/16")
    cloud.delete_transit_gateway_attachment(attachment)
    cloud.delete_transit_gateway(gateway)
    cloud.delete_transit_gateway_attachment(attachment)  # absent: fine
    cloud.delete_transit_gateway(gateway)
    live = [g for g in ec2.describe_transit_gateways()["TransitGateways"] if g["State"] not in ("deleted", "deleting")]
    assert live == []
    assert ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"] == []


def test_a_secondary_block_is_associated_once(cloud: AwsCloud) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    first = cloud.ensure_vpc_cidr(vpc.id, cidr="100.64.0.0/16")
    assert cloud.ensure_vpc_cidr(vpc.id, cidr="100.64.0.0/16") == first
    assert cloud.vpc_cidrs(vpc.id) == ["172.16.0.0/16", "100.64.0.0/16"]
    cloud.disassociate_vpc_cidr(first)
    assert cloud.vpc_cidrs(vpc.id) == ["172.16.0.0/16"]
