"""Deleting what AWS may still hold for a while: a subnet, VPC or security group whose network interfaces (EKS's,
a load balancer's, the VPC CNI's) linger for minutes after their owner is gone. DependencyViolation is retried,
bounded; giving up names what is still there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from peerprobe.backends.aws._base import AwsBase
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.errors import ConflictError, NotFoundError, PeerprobeError

log = structlog.get_logger()

# After DeleteCluster or a load balancer's deletion their interfaces are released asynchronously; subnet and
# VPC deletion answers DependencyViolation until then (terraform-provider-aws#9495: "check for lingering ENIs
# ... describe-network-interfaces --filters Name=subnet-id"; eksctl-io/eksctl#7589; pulumi/pulumi-eks#1226:
# "the workaround is to retry the operation at a later time"). terraform-provider-aws waits up to 20 minutes
# for a subnet's deletion; 15 covers what we create (no Lambda, whose interfaces take longest).
DEPENDENCY_WAIT_SECONDS = 15 * 60
MAX_NAMED = 10


class InUseOps(AwsBase):
    def delete_when_free(
        self, kind: str, resource_id: str, delete: Callable[[], Any], *, holders: Callable[[], list[str]]
    ) -> None:
        """`delete`, again while AWS answers DependencyViolation (bounded at DEPENDENCY_WAIT_SECONDS); an
        absent resource is deleted already. Giving up raises ConflictError naming `holders()`."""

        def attempt() -> None:
            with aws_errors(kind, resource_id):
                delete()

        event = kind.replace(" ", "_")
        try:
            self.waits.retry(
                attempt, retry_if=in_use, what=f"{kind} {resource_id}", max_seconds=DEPENDENCY_WAIT_SECONDS, first=10
            )
        except NotFoundError:
            log.info(f"{event}.already_absent", resource_id=resource_id)
            return
        except ConflictError as error:
            if not in_use(error):
                raise
            raise ConflictError(
                f"{error}; still there: {_named(holders())}; run cleanup again once they are gone",
                resource=kind,
                resource_id=resource_id,
                state=error.state,
            ) from error
        log.info(f"{event}.deleted", resource_id=resource_id)

    def delete_security_group(self, group_id: str) -> None:
        """Delete the group, waiting (bounded) while an interface still uses it (a terminated instance's, a
        load balancer's) or a rule refers to it; giving up names the interfaces."""
        self.delete_when_free(
            "security group",
            group_id,
            lambda: self.ec2.delete_security_group(GroupId=group_id),
            holders=lambda: self.interfaces_using("group-id", group_id),
        )

    def interfaces_using(self, key: str, value: str) -> list[str]:
        """The network interfaces whose `key` ("vpc-id", "subnet-id", "group-id") is `value`, each named with
        its description and status (what made it, and whether it is still attached)."""
        with aws_errors("network interfaces", value):
            pages = self.ec2.get_paginator("describe_network_interfaces").paginate(
                Filters=[{"Name": key, "Values": [value]}]
            )
            found = [eni for page in pages for eni in page["NetworkInterfaces"]]
        return [
            f"{eni['NetworkInterfaceId']} ({eni.get('Description') or 'no description'}, {eni.get('Status')})"
            for eni in found
        ]

    def groups_in(self, vpc_id: str) -> list[str]:
        """The VPC's security groups other than its default one, each with its name."""
        with aws_errors("security groups", vpc_id):
            found = self.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        return [f"{g['GroupId']} ({g['GroupName']})" for g in found["SecurityGroups"] if g["GroupName"] != "default"]

    def subnets_in(self, vpc_id: str) -> list[str]:
        with aws_errors("subnets", vpc_id):
            found = self.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        return [str(s["SubnetId"]) for s in found]


def _named(holders: list[str]) -> str:
    if not holders:
        return "nothing peerprobe can list"
    more = f" and {len(holders) - MAX_NAMED} more" if len(holders) > MAX_NAMED else ""
    return ", ".join(holders[:MAX_NAMED]) + more


def in_use(error: PeerprobeError) -> bool:
    return isinstance(error, ConflictError) and error.state == "DependencyViolation"
