"""Security groups and their ingress rules: authorize and revoke are idempotent, rules are read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import first, only
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._in_use import InUseOps
from peerprobe.backends.ports import IngressRule, SecurityGroup, refuse_open_to_world
from peerprobe.errors import ConflictError, NotFoundError

log = structlog.get_logger()
# A security group just created can be unknown to the next call for a few seconds: AuthorizeSecurityGroupIngress
# or DescribeSecurityGroups by its id answer InvalidGroup.NotFound (EC2 API, "Eventual consistency"; boto/boto3#620,
# hashicorp/packer#1322). Rules are added again, bounded (ID_PROPAGATION_SECONDS).
GROUP_NOT_YET_KNOWN = frozenset({"InvalidGroup.NotFound"})


class SecurityGroupOps(InUseOps):
    def ensure_security_group(self, name: str, *, vpc_id: str, description: str) -> SecurityGroup:
        """The security group tagged `name` in `vpc_id` (AWS adds only its default allow-all egress)."""
        with aws_errors("security group", name=name):
            found = self.ec2.describe_security_groups(Filters=self.owned(name, vpc_id=vpc_id))["SecurityGroups"]
            raw = first(found, kind="security_group", name=name)
            if raw is not None:
                return SecurityGroup(id=raw["GroupId"], vpc_id=vpc_id, name=name)
            group_id = self.ec2.create_security_group(
                GroupName=name,
                Description=description,
                VpcId=vpc_id,
                TagSpecifications=self.tag_specs("security-group", name),
            )["GroupId"]
        log.info("security_group.created", group_id=group_id, vpc_id=vpc_id, name=name)
        return SecurityGroup(id=group_id, vpc_id=vpc_id, name=name)

    def find_security_group(self, name: str) -> str | None:
        """The id of this environment's security group tagged `name`, if any."""
        with aws_errors("security group", name=name):
            found = self.ec2.describe_security_groups(Filters=self.owned(name))["SecurityGroups"]
        raw = first(found, kind="security_group", name=name)
        return str(raw["GroupId"]) if raw is not None else None

    def ingress_rules(self, group_id: str) -> tuple[IngressRule, ...]:
        """The group's ingress rules, one per IPv4 CIDR or source group, sorted."""
        with aws_errors("security group", group_id):
            found = self.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        raw = only(found, kind="security group", resource_id=group_id)
        return tuple(sorted(rule for perm in raw.get("IpPermissions", []) for rule in _rules(perm)))

    def authorize_ingress(self, group_id: str, *, rules: Sequence[IngressRule]) -> None:
        """Add the rules the group lacks, in one call; a rule that already exists counts as added. A group EC2
        does not know yet (just created) is asked again, bounded."""
        refuse_open_to_world(rules)
        self.while_unknown(
            lambda: self._authorize(group_id, rules), codes=GROUP_NOT_YET_KNOWN, what=f"security group {group_id}"
        )

    def _authorize(self, group_id: str, rules: Sequence[IngressRule]) -> None:
        present = set(self.ingress_rules(group_id))
        missing = [rule for rule in dict.fromkeys(rules) if rule not in present]
        try:
            self._change_ingress("authorize", group_id, missing)
        except ConflictError as error:
            if error.state != "InvalidPermission.Duplicate":
                raise
            # EC2 refuses the whole call when one rule appeared meanwhile: add the rest one at a time.
            for rule in missing:
                self._change_one("authorize", group_id, rule, tolerated=_duplicate)
        for rule in missing:
            log.info("security_group.authorized", group_id=group_id, rule=_describe(rule))

    def revoke_ingress(self, group_id: str, *, rules: Sequence[IngressRule]) -> None:
        """Remove the rules, in one call; a rule that is not there counts as removed."""
        present = set(self.ingress_rules(group_id))
        found = [rule for rule in dict.fromkeys(rules) if rule in present]
        try:
            self._change_ingress("revoke", group_id, found)
        except NotFoundError:
            # EC2 refuses the whole call when one rule went meanwhile: remove the rest one at a time.
            for rule in found:
                self._change_one("revoke", group_id, rule, tolerated=_not_found)
        for rule in found:
            log.info("security_group.revoked", group_id=group_id, rule=_describe(rule))

    def _change_ingress(self, action: str, group_id: str, rules: Sequence[IngressRule]) -> None:
        if not rules:
            return
        call = getattr(self.ec2, f"{action}_security_group_ingress")
        with aws_errors("security group", group_id, ", ".join(_describe(rule) for rule in rules)):
            call(GroupId=group_id, IpPermissions=[_permission(rule) for rule in rules])

    def _change_one(
        self, action: str, group_id: str, rule: IngressRule, *, tolerated: Callable[[Exception], bool]
    ) -> None:
        try:
            self._change_ingress(action, group_id, [rule])
        except (ConflictError, NotFoundError) as error:
            if not tolerated(error):
                raise


def _duplicate(error: Exception) -> bool:
    return isinstance(error, ConflictError) and error.state == "InvalidPermission.Duplicate"


def _not_found(error: Exception) -> bool:
    return isinstance(error, NotFoundError)


def _permission(rule: IngressRule) -> dict[str, Any]:
    source: dict[str, str] = {"CidrIp": rule.cidr} if rule.cidr else {"GroupId": rule.source_group}
    if rule.description:
        source["Description"] = rule.description
    key = "IpRanges" if rule.cidr else "UserIdGroupPairs"
    permission: dict[str, Any] = {"IpProtocol": rule.protocol, key: [source]}
    # Protocol "-1" (all traffic) takes no ports (EC2 API reference, IpPermission).
    if rule.protocol != "-1":
        permission |= {"FromPort": rule.from_port, "ToPort": rule.to_port}
    return permission


def _rules(permission: dict[str, Any]) -> list[IngressRule]:
    protocol = str(permission["IpProtocol"])
    low, high = int(permission.get("FromPort", -1)), int(permission.get("ToPort", -1))
    by_cidr = [
        IngressRule(protocol, low, high, cidr=str(r["CidrIp"]), description=str(r.get("Description", "")))
        for r in permission.get("IpRanges", [])
    ]
    by_group = [
        IngressRule(protocol, low, high, source_group=str(p["GroupId"]), description=str(p.get("Description", "")))
        for p in permission.get("UserIdGroupPairs", [])
    ]
    return by_cidr + by_group


def _describe(rule: IngressRule) -> str:
    ports = str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}"
    return f"{rule.protocol}/{ports} from {rule.cidr or rule.source_group}"
