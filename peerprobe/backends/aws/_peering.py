"""VPC peering: request, accept, and the routes both ways; refuses overlapping CIDRs before calling AWS."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import absent_ok, first, only, tag_dict
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._vpc import VpcOps
from peerprobe.backends.ports import TAG_ENVIRONMENT, Peering, Vpc
from peerprobe.errors import ConfigError, ConflictError, NotFoundError

log = structlog.get_logger()

# Statuses of a peering that is, or is on its way to being, usable
# (https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-basics.html#vpc-peering-lifecycle).
_LIVE = ["initiating-request", "pending-acceptance", "provisioning", "active"]
_DEAD = ("rejected", "failed", "expired", "deleting", "deleted")
PEERING_WAIT_SECONDS = 5 * 60  # a same-account request is acceptable within seconds; active seconds after that
# AcceptVpcPeeringConnection can still answer that a peering DescribeVpcPeeringConnections already shows does not
# exist (hashicorp/terraform-provider-aws#30423): asked again, bounded (ID_PROPAGATION_SECONDS).
ACCEPT_NOT_YET_KNOWN = frozenset({"InvalidVpcPeeringConnectionID.NotFound"})


class PeeringOps(VpcOps):
    def ensure_peering(self, name: str, *, requester: Vpc, accepter: Vpc) -> Peering:
        """An accepted peering tagged `name` between two VPCs of this account and region."""
        refuse_overlap(name, requester=requester, accepter=accepter)
        raw = self._find_peering(name, requester=requester, accepter=accepter)
        if raw is None:
            with aws_errors("vpc peering", name=name):
                raw = self.ec2.create_vpc_peering_connection(
                    VpcId=requester.id,
                    PeerVpcId=accepter.id,
                    TagSpecifications=self.tag_specs("vpc-peering-connection", name),
                )["VpcPeeringConnection"]
            log.info(
                "peering.requested",
                peering_id=raw["VpcPeeringConnectionId"],
                requester=requester.id,
                accepter=accepter.id,
            )
        peering_id = str(raw["VpcPeeringConnectionId"])
        self._accept_if_pending(peering_id, name=name)
        return self.peering(peering_id)

    def _find_peering(self, name: str, *, requester: Vpc, accepter: Vpc) -> dict[str, Any] | None:
        with aws_errors("vpc peering", name=name):
            found = self.ec2.describe_vpc_peering_connections(Filters=self.owned(name, status_code=_LIVE))
        ours = [
            raw
            for raw in found["VpcPeeringConnections"]
            if raw["RequesterVpcInfo"]["VpcId"] == requester.id
            and raw["AccepterVpcInfo"]["VpcId"] == accepter.id
            # Checked again here: moto 5 ignores every filter of DescribeVpcPeeringConnections.
            and raw["Status"]["Code"] in _LIVE
            and tag_dict(raw).get("Name") == name
            and tag_dict(raw).get(TAG_ENVIRONMENT) == self.stamp.environment
        ]
        return first(ours, kind="peering", name=name)

    def _accept_if_pending(self, peering_id: str, *, name: str) -> None:
        """A fresh request passes through initiating-request before it can be accepted (and DescribeVpcPeering-
        Connections may not know it for a moment): wait until it is past that, accept it when it is
        pending-acceptance (a retried step finds it there too), then wait until it is active. Bounded."""
        status = self.waits.poll(
            lambda: self._status_unless(peering_id, ("initiating-request",)),
            kind="vpc peering",
            resource_id=peering_id,
            goal="pending-acceptance",
            max_seconds=PEERING_WAIT_SECONDS,
            first=2,
        )
        if status == "pending-acceptance":
            self.while_unknown(
                lambda: self._accept(peering_id, name=name),
                codes=ACCEPT_NOT_YET_KNOWN,
                what=f"vpc peering {peering_id}",
            )
            log.info("peering.accepted", peering_id=peering_id)
        self.waits.poll(
            lambda: self._status_unless(peering_id, ("initiating-request", "pending-acceptance", "provisioning")),
            kind="vpc peering",
            resource_id=peering_id,
            goal="active",
            max_seconds=PEERING_WAIT_SECONDS,
            first=2,
        )

    def _accept(self, peering_id: str, *, name: str) -> None:
        with aws_errors("vpc peering", peering_id, name):
            self.ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering_id)

    def _status_unless(self, peering_id: str, passing: tuple[str, ...]) -> str | None:
        """The peering's status once it is none of the `passing` ones (None meanwhile, and while AWS does not
        know the new id yet); a status it cannot leave for active (rejected, failed, expired, deleted) raises."""
        try:
            status = self.peering(peering_id).status
        except NotFoundError:
            return None
        if status in _DEAD:
            raise ConflictError(
                f"vpc peering {peering_id}: is {status}", resource="vpc peering", resource_id=peering_id, state=status
            )
        return None if status in passing else status

    def peering(self, peering_id: str) -> Peering:
        """Read a peering back (status and both sides' CIDRs)."""
        with aws_errors("vpc peering", peering_id):
            found = self.ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[peering_id])
        raw = only(found["VpcPeeringConnections"], kind="vpc peering", resource_id=peering_id)
        return Peering(
            id=raw["VpcPeeringConnectionId"],
            status=raw["Status"]["Code"],
            requester_vpc_id=raw["RequesterVpcInfo"]["VpcId"],
            requester_cidr=raw["RequesterVpcInfo"]["CidrBlock"],
            accepter_vpc_id=raw["AccepterVpcInfo"]["VpcId"],
            accepter_cidr=raw["AccepterVpcInfo"]["CidrBlock"],
        )

    def ensure_peering_routes(
        self, peering: Peering, *, requester_route_tables: Sequence[str], accepter_route_tables: Sequence[str]
    ) -> None:
        """Routes to the other side's CIDR through the peering, in each given route table of each side."""
        for table_id in requester_route_tables:
            self.ensure_route(table_id, destination_cidr=peering.accepter_cidr, target_id=peering.id)
        for table_id in accepter_route_tables:
            self.ensure_route(table_id, destination_cidr=peering.requester_cidr, target_id=peering.id)

    def delete_peering(self, peering_id: str) -> None:
        """Delete the peering; an absent or already deleted one is fine (routes through it go blackhole)."""
        if self._peering_gone(peering_id):
            log.info("peering.already_absent", resource_id=peering_id)
            return
        with absent_ok("peering", peering_id):
            self.ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=peering_id)

    def _peering_gone(self, peering_id: str) -> bool:
        try:
            return self.peering(peering_id).status in _DEAD
        except NotFoundError:
            return True


def refuse_overlap(name: str, *, requester: Vpc, accepter: Vpc) -> None:
    """AWS refuses to peer VPCs whose CIDRs overlap; say so, naming both, before any call is made.

    https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-basics.html#vpc-peering-limitations
    """
    left, right = ipaddress.ip_network(requester.cidr), ipaddress.ip_network(accepter.cidr)
    if left.overlaps(right):
        raise ConfigError(
            f"peering {name}: {requester.name or requester.id} CIDR {requester.cidr} overlaps "
            f"{accepter.name or accepter.id} CIDR {accepter.cidr}; AWS cannot peer overlapping VPCs"
        )
