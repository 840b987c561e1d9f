"""A transit gateway in place of the peering: the gateway, one VPC attachment per VPC with a subnet in each zone,
and their deletion in order (attachments gone before the gateway). Routes to it are VpcOps.ensure_route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import absent_ok, first, only
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._vpc import VpcOps
from peerprobe.backends.ports import TransitGatewayRouting
from peerprobe.errors import ConflictError, NotFoundError

log = structlog.get_logger()

# States from the Transit Gateway guide ("Transit gateway attachments", attachment lifecycle) and the EC2 API
# reference (TransitGateway.State, TransitGatewayVpcAttachment.State).
_LIVE_GATEWAY = ["pending", "available", "modifying"]
_LIVE_ATTACHMENT = ["initiating", "initiatingRequest", "pendingAcceptance", "pending", "available", "modifying"]
_GONE = ("deleted", "deleting")
_FAILED = ("failed", "failing", "rejected", "rejecting")
# A new gateway is available after a few minutes, an attachment after a minute or two; deletion takes as long.
TGW_WAIT_SECONDS = 10 * 60


class TransitGatewayOps(VpcOps):
    def ensure_transit_gateway(self, name: str) -> str:
        """An available transit gateway tagged `name`. Default route-table association and propagation are on,
        so each attachment is associated with the default table and propagates its VPC's CIDRs there (Transit
        Gateway guide, "Transit gateway route tables": association and propagation defaults)."""
        with aws_errors("transit gateway", name=name):
            found = self.ec2.describe_transit_gateways(Filters=self.owned(name, state=_LIVE_GATEWAY))
        raw = first(
            [g for g in found["TransitGateways"] if g["State"] in _LIVE_GATEWAY], kind="transit gateway", name=name
        )
        if raw is None:
            with aws_errors("transit gateway", name=name):
                raw = self.ec2.create_transit_gateway(
                    Description=f"peerprobe {name}",
                    Options={
                        "DefaultRouteTableAssociation": "enable",
                        "DefaultRouteTablePropagation": "enable",
                        "AutoAcceptSharedAttachments": "disable",
                    },
                    TagSpecifications=self.tag_specs("transit-gateway", name),
                )["TransitGateway"]
            log.info("transit_gateway.created", transit_gateway_id=raw["TransitGatewayId"], name=name)
        gateway_id = str(raw["TransitGatewayId"])
        self._wait_state(lambda: self._gateway_state(gateway_id), kind="transit gateway", resource_id=gateway_id)
        return gateway_id

    def _gateway_state(self, gateway_id: str) -> str:
        with aws_errors("transit gateway", gateway_id):
            found = self.ec2.describe_transit_gateways(TransitGatewayIds=[gateway_id])["TransitGateways"]
        return str(only(found, kind="transit gateway", resource_id=gateway_id)["State"])

    def ensure_transit_gateway_attachment(
        self, name: str, *, gateway_id: str, vpc_id: str, subnet_ids: Sequence[str]
    ) -> str:
        """An available VPC attachment with one subnet per zone (the gateway reaches only the zones it has a
        subnet in: Transit Gateway guide, "Transit gateway attachments to a VPC", Availability Zones)."""
        raw = self._find_attachment(name, gateway_id=gateway_id, vpc_id=vpc_id)
        if raw is None:
            with aws_errors("transit gateway attachment", name=name):
                raw = self.ec2.create_transit_gateway_vpc_attachment(
                    TransitGatewayId=gateway_id,
                    VpcId=vpc_id,
                    SubnetIds=list(subnet_ids),
                    TagSpecifications=self.tag_specs("transit-gateway-attachment", name),
                )["TransitGatewayVpcAttachment"]
            log.info("transit_gateway.attached", attachment_id=raw["TransitGatewayAttachmentId"], vpc_id=vpc_id)
        attachment_id = str(raw["TransitGatewayAttachmentId"])
        self._wait_state(
            lambda: self._attachment_state(attachment_id), kind="transit gateway attachment", resource_id=attachment_id
        )
        return attachment_id

    def ensure_transit_gateway_routing(self, gateway_id: str, *, attachment_id: str) -> str:
        """The attachment associated with and propagating to the gateway's default route table, as the gateway's
        defaults make it on AWS (checked, and made so when missing: moto 5 associates but never propagates);
        returns that route table's id."""
        with aws_errors("transit gateway", gateway_id):
            found = self.ec2.describe_transit_gateways(TransitGatewayIds=[gateway_id])["TransitGateways"]
        options = only(found, kind="transit gateway", resource_id=gateway_id)["Options"]
        association_table = str(options.get("AssociationDefaultRouteTableId", ""))
        propagation_table = str(options.get("PropagationDefaultRouteTableId", "")) or association_table
        with aws_errors("transit gateway route table", association_table or gateway_id):
            if association_table and attachment_id not in self._table_attachments(association_table, "associations"):
                self.ec2.associate_transit_gateway_route_table(
                    TransitGatewayRouteTableId=association_table, TransitGatewayAttachmentId=attachment_id
                )
                log.info("transit_gateway.associated", route_table=association_table, attachment_id=attachment_id)
            if propagation_table and attachment_id not in self._table_attachments(propagation_table, "propagations"):
                self.ec2.enable_transit_gateway_route_table_propagation(
                    TransitGatewayRouteTableId=propagation_table, TransitGatewayAttachmentId=attachment_id
                )
                log.info("transit_gateway.propagating", route_table=propagation_table, attachment_id=attachment_id)
        return propagation_table

    def _table_attachments(self, table_id: str, which: str) -> set[str]:
        if which == "associations":
            raw = self.ec2.get_transit_gateway_route_table_associations(TransitGatewayRouteTableId=table_id)
            items = raw["Associations"]
        else:
            raw = self.ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=table_id)
            items = raw["TransitGatewayRouteTablePropagations"]
        live = ("associating", "associated", "enabling", "enabled")
        return {str(i["TransitGatewayAttachmentId"]) for i in items if i.get("State") in live}

    def transit_gateway_routing(self, gateway_id: str) -> TransitGatewayRouting:
        """The gateway's state, attachments and default route table as they stand (reads only); NotFoundError
        when the gateway is gone."""
        with aws_errors("transit gateway", gateway_id):
            found = self.ec2.describe_transit_gateways(TransitGatewayIds=[gateway_id])["TransitGateways"]
        raw = only(found, kind="transit gateway", resource_id=gateway_id)
        table = str(raw.get("Options", {}).get("AssociationDefaultRouteTableId", ""))
        attachments = {
            attachment: vpc for attachment, vpc, state in self._attachment_states(gateway_id) if state == "available"
        }
        if not table:
            return TransitGatewayRouting(gateway_id, str(raw["State"]), "", attachments, frozenset(), frozenset(), {})
        with aws_errors("transit gateway route table", table):
            associated = self._table_attachments(table, "associations")
            propagating = self._table_attachments(table, "propagations")
            found_routes = self.ec2.search_transit_gateway_routes(
                TransitGatewayRouteTableId=table,
                Filters=[{"Name": "type", "Values": ["static"]}, {"Name": "state", "Values": ["active"]}],
            )["Routes"]
        static = {
            str(r["DestinationCidrBlock"]): str(a["TransitGatewayAttachmentId"])
            for r in found_routes
            for a in _route_attachments(r)
        }
        return TransitGatewayRouting(
            gateway_id, str(raw["State"]), table, attachments, frozenset(associated), frozenset(propagating), static
        )

    def _attachment_states(self, gateway_id: str) -> list[tuple[str, str, str]]:
        filters = [{"Name": "transit-gateway-id", "Values": [gateway_id]}]
        with aws_errors("transit gateway", gateway_id):
            found = self.ec2.describe_transit_gateway_vpc_attachments(Filters=filters)["TransitGatewayVpcAttachments"]
        return [
            (str(a["TransitGatewayAttachmentId"]), str(a["VpcId"]), str(a["State"]))
            for a in found
            if a["TransitGatewayId"] == gateway_id
        ]

    def _find_attachment(self, name: str, *, gateway_id: str, vpc_id: str) -> dict[str, Any] | None:
        with aws_errors("transit gateway attachment", name=name):
            found = self.ec2.describe_transit_gateway_vpc_attachments(Filters=self.owned(name, state=_LIVE_ATTACHMENT))
        ours = [
            a
            for a in found["TransitGatewayVpcAttachments"]
            if a["TransitGatewayId"] == gateway_id and a["VpcId"] == vpc_id and a["State"] in _LIVE_ATTACHMENT
        ]
        return first(ours, kind="transit gateway attachment", name=name)

    def _attachment_state(self, attachment_id: str) -> str:
        with aws_errors("transit gateway attachment", attachment_id):
            found = self.ec2.describe_transit_gateway_vpc_attachments(TransitGatewayAttachmentIds=[attachment_id])
        raw = only(found["TransitGatewayVpcAttachments"], kind="transit gateway attachment", resource_id=attachment_id)
        return str(raw["State"])

    def _wait_state(self, read: Any, *, kind: str, resource_id: str) -> None:
        def available() -> bool | None:
            state = read()
            if state in _FAILED or state in _GONE:
                raise ConflictError(
                    f"{kind} {resource_id}: is {state}", resource=kind, resource_id=resource_id, state=state
                )
            return True if state == "available" else None

        self.waits.poll(available, kind=kind, resource_id=resource_id, goal="available", max_seconds=TGW_WAIT_SECONDS)

    def delete_transit_gateway_attachment(self, attachment_id: str) -> None:
        """Delete the attachment and wait until it is gone (the gateway refuses deletion while it has one)."""
        with absent_ok("transit gateway attachment", attachment_id):
            if self._state_or_gone(self._attachment_state, attachment_id) not in _GONE:
                self.ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
        self._wait_gone(self._attachment_state, kind="transit gateway attachment", resource_id=attachment_id)

    def delete_transit_gateway(self, gateway_id: str) -> None:
        """Its attachments first (AWS refuses a gateway that has any; a sweep may find the gateway alone: moto 5
        does not list attachments in DescribeTags), then the gateway, waited until deleted."""
        for attachment in self._attachments_of(gateway_id):
            self.delete_transit_gateway_attachment(attachment)
        with absent_ok("transit gateway", gateway_id):
            if self._state_or_gone(self._gateway_state, gateway_id) not in _GONE:
                self.ec2.delete_transit_gateway(TransitGatewayId=gateway_id)
        self._wait_gone(self._gateway_state, kind="transit gateway", resource_id=gateway_id)

    def _attachments_of(self, gateway_id: str) -> list[str]:
        filters = [
            {"Name": "transit-gateway-id", "Values": [gateway_id]},
            {"Name": "state", "Values": _LIVE_ATTACHMENT},
        ]
        with aws_errors("transit gateway", gateway_id):
            found = self.ec2.describe_transit_gateway_vpc_attachments(Filters=filters)["TransitGatewayVpcAttachments"]
        return [str(a["TransitGatewayAttachmentId"]) for a in found if a["TransitGatewayId"] == gateway_id]

    @staticmethod
    def _state_or_gone(read: Any, resource_id: str) -> str:
        try:
            return str(read(resource_id))
        except NotFoundError:
            return "deleted"

    def _wait_gone(self, read: Any, *, kind: str, resource_id: str) -> None:
        self.waits.poll(
            lambda: True if self._state_or_gone(read, resource_id) == "deleted" else None,
            kind=kind,
            resource_id=resource_id,
            goal="deleted",
            max_seconds=TGW_WAIT_SECONDS,
        )

    # --- secondary CIDR blocks ----------------------------------------------------------------------------

    def ensure_vpc_cidr(self, vpc_id: str, *, cidr: str) -> str:
        """`cidr` associated with the VPC (AssociateVpcCidrBlock), waited until `associated`; its association id."""
        association = self._cidr_association(vpc_id, cidr)
        if association is None:
            with aws_errors("vpc cidr block", vpc_id, cidr):
                raw = self.ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=cidr)["CidrBlockAssociation"]
            association = str(raw["AssociationId"])
            log.info("vpc.cidr_associated", vpc_id=vpc_id, cidr=cidr, association_id=association)

        def associated() -> bool | None:
            state = self._cidr_state(vpc_id, association)
            if state in ("failed", "disassociated", "disassociating"):
                raise ConflictError(
                    f"vpc {vpc_id}: cidr block {cidr} is {state}",
                    resource="vpc cidr block",
                    resource_id=association,
                    state=state,
                )
            return True if state == "associated" else None

        self.waits.poll(associated, kind="vpc cidr block", resource_id=association, goal="associated", max_seconds=120)
        return association

    def _cidr_blocks(self, vpc_id: str) -> list[dict[str, Any]]:
        with aws_errors("vpc", vpc_id):
            found = self.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        return list(only(found, kind="vpc", resource_id=vpc_id).get("CidrBlockAssociationSet", []))

    def _cidr_association(self, vpc_id: str, cidr: str) -> str | None:
        for block in self._cidr_blocks(vpc_id):
            if block["CidrBlock"] == cidr and block["CidrBlockState"]["State"] in ("associating", "associated"):
                return str(block["AssociationId"])
        return None

    def _cidr_state(self, vpc_id: str, association: str) -> str:
        for block in self._cidr_blocks(vpc_id):
            if block["AssociationId"] == association:
                return str(block["CidrBlockState"]["State"])
        return "disassociated"

    def vpc_cidrs(self, vpc_id: str) -> list[str]:
        """Every IPv4 block associated with the VPC, the primary first (the order DescribeVpcs gives)."""
        return [b["CidrBlock"] for b in self._cidr_blocks(vpc_id) if b["CidrBlockState"]["State"] == "associated"]

    def disassociate_vpc_cidr(self, association_id: str) -> None:
        """Before the VPC's deletion is not needed (DeleteVpc drops its blocks); for a kept VPC it undoes ours."""
        with absent_ok("vpc cidr block", association_id):
            self.ec2.disassociate_vpc_cidr_block(AssociationId=association_id)


def _route_attachments(route: dict[str, Any]) -> list[dict[str, Any]]:
    """A static route's attachments (a list in the API). moto 5 writes the attachment in a shape botocore drops,
    so against moto a static route comes back with none and is left out (peerprobe itself adds none)."""
    found = route.get("TransitGatewayAttachments") or []
    return [found] if isinstance(found, dict) else list(found)
