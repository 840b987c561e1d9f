"""Classic ELBs and ELBv2 (network/application) load balancers and target groups, identified by name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from peerprobe.backends.aws._base import AwsBase, absent_ok, tag_dict
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.ports import TAG_ENVIRONMENT, Listener, LoadBalancer, TargetGroup
from peerprobe.errors import ConfigError, ConflictError, NotFoundError

log = structlog.get_logger()

# Load balancer and target group names: at most 32 alphanumerics or hyphens, not starting or ending with a
# hyphen (ELB API reference, CreateLoadBalancer / CreateTargetGroup).
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
# Target states (ELB API reference: InstanceState.State; TargetHealth.State).
_HEALTHY = frozenset({"InService", "healthy"})
_SETTLING = frozenset({"initial", "draining", "Unknown"})


class ElbOps(AwsBase):
    def ensure_classic_load_balancer(
        self,
        name: str,
        *,
        subnet_ids: Sequence[str],
        listeners: Sequence[Listener],
        internal: bool,
        security_group_ids: Sequence[str] = (),
    ) -> LoadBalancer:
        """The Classic ELB `name` of this environment, created if missing."""
        _check_name("classic load balancer", name)
        raw = self._describe_classic(name)
        if raw is None:
            self._create_classic(
                name,
                subnet_ids=subnet_ids,
                listeners=listeners,
                internal=internal,
                security_group_ids=security_group_ids,
            )
            raw = self._describe_classic(name) or {}
        else:
            self._check_elb_owner("classic load balancer", name, self._classic_tags(name))
        return LoadBalancer(name=name, kind="classic", dns_name=raw.get("DNSName", ""), scheme=raw.get("Scheme", ""))

    def _describe_classic(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("classic load balancer", name):
                found = self.elb.describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"]
        except NotFoundError:
            return None
        return dict(found[0]) if found else None

    def _create_classic(
        self,
        name: str,
        *,
        subnet_ids: Sequence[str],
        listeners: Sequence[Listener],
        internal: bool,
        security_group_ids: Sequence[str],
    ) -> None:
        params: dict[str, Any] = {
            "LoadBalancerName": name,
            "Subnets": list(subnet_ids),
            "Tags": self.tag_list(name),
            "Listeners": [
                {"Protocol": lis.protocol, "LoadBalancerPort": lis.port, "InstancePort": lis.instance_port}
                for lis in listeners
            ],
        }
        if internal:
            params["Scheme"] = "internal"
        if security_group_ids:
            params["SecurityGroups"] = list(security_group_ids)
        with aws_errors("classic load balancer", name):
            self.elb.create_load_balancer(**params)
        log.info("elb.created", name=name, kind="classic", internal=internal)

    def _classic_tags(self, name: str) -> dict[str, str]:
        with aws_errors("classic load balancer", name):
            found = self.elb.describe_tags(LoadBalancerNames=[name])["TagDescriptions"]
        return tag_dict(found[0]) if found else {}

    def ensure_load_balancer(
        self,
        name: str,
        *,
        subnet_ids: Sequence[str],
        kind: Literal["network", "application"],
        internal: bool,
        security_group_ids: Sequence[str] = (),
    ) -> LoadBalancer:
        """The ELBv2 load balancer `name` of this environment, created if missing."""
        _check_name("load balancer", name)
        raw = self._describe_v2(name)
        if raw is None:
            params: dict[str, Any] = {
                "Name": name,
                "Subnets": list(subnet_ids),
                "Type": kind,
                "Tags": self.tag_list(name),
                "Scheme": "internal" if internal else "internet-facing",
            }
            if security_group_ids:
                params["SecurityGroups"] = list(security_group_ids)
            with aws_errors("load balancer", name=name):
                raw = self.elbv2.create_load_balancer(**params)["LoadBalancers"][0]
            log.info("elb.created", name=name, kind=kind, internal=internal, arn=raw["LoadBalancerArn"])
        else:
            self._check_elb_owner("load balancer", name, self._v2_tags(raw["LoadBalancerArn"]))
        return _load_balancer(raw)

    def _describe_v2(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("load balancer", name):
                found = self.elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
        except NotFoundError:
            return None
        return dict(found[0]) if found else None

    def _v2_tags(self, arn: str) -> dict[str, str]:
        with aws_errors("load balancer", arn):
            found = self.elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
        return tag_dict(found[0]) if found else {}

    def delete_load_balancer(self, lb: LoadBalancer) -> None:
        """Delete a classic or v2 load balancer; an absent one is fine."""
        with absent_ok("load_balancer", lb.arn or lb.name):
            if lb.kind == "classic":
                # DeleteLoadBalancer on a Classic ELB already succeeds when the name does not exist.
                self.elb.delete_load_balancer(LoadBalancerName=lb.name)
            else:
                self.elbv2.delete_load_balancer(LoadBalancerArn=lb.arn)

    def ensure_target_group(self, name: str, *, vpc_id: str, protocol: str, port: int, target_type: str) -> TargetGroup:
        """The target group `name` of this environment, created if missing."""
        _check_name("target group", name)
        try:
            with aws_errors("target group", name):
                raw = self.elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]
            self._check_elb_owner("target group", name, self._v2_tags(raw["TargetGroupArn"]))
        except NotFoundError:
            with aws_errors("target group", name=name):
                raw = self.elbv2.create_target_group(
                    Name=name,
                    Protocol=protocol,
                    Port=port,
                    VpcId=vpc_id,
                    TargetType=target_type,
                    Tags=self.tag_list(name),
                )["TargetGroups"][0]
            log.info("target_group.created", name=name, arn=raw["TargetGroupArn"], port=port)
        return TargetGroup(
            arn=raw["TargetGroupArn"],
            name=name,
            protocol=raw["Protocol"],
            port=int(raw["Port"]),
            vpc_id=raw["VpcId"],
            target_type=raw.get("TargetType", target_type),
        )

    def delete_target_group(self, arn: str) -> None:
        with absent_ok("target_group", arn):
            self.elbv2.delete_target_group(TargetGroupArn=arn)

    def find_load_balancer(self, dns_name: str) -> LoadBalancer | None:
        """The Classic ELB or ELBv2 load balancer answering at `dns_name` (what a Service's status shows)."""
        with aws_errors("load balancers", dns_name):
            for page in self.elb.get_paginator("describe_load_balancers").paginate():
                for lb in page["LoadBalancerDescriptions"]:
                    if lb.get("DNSName") == dns_name:
                        return LoadBalancer(
                            name=lb["LoadBalancerName"], kind="classic", dns_name=dns_name, scheme=lb.get("Scheme", "")
                        )
            for page in self.elbv2.get_paginator("describe_load_balancers").paginate():
                for raw in page["LoadBalancers"]:
                    if raw.get("DNSName") == dns_name:
                        return _load_balancer(raw)
        return None

    def target_health(self, dns_name: str) -> LoadBalancerHealth | None:
        """The health of every target behind the load balancer at `dns_name`, as the load balancer sees it
        (Classic: DescribeInstanceHealth; NLB/ALB: DescribeTargetHealth of each of its target groups); None
        when no load balancer answers there (yet). New NLB targets stay `initial` and Classic instances
        `OutOfService` for a few health-check intervals after registration."""
        lb = self.find_load_balancer(dns_name)
        if lb is None:
            return None
        if lb.kind == "classic":
            with aws_errors("classic load balancer", lb.name):
                states = self.elb.describe_instance_health(LoadBalancerName=lb.name)["InstanceStates"]
            targets = [
                TargetState(
                    target=str(s["InstanceId"]),
                    port=None,
                    state=str(s["State"]),
                    reason=str(s.get("ReasonCode") or s.get("Description") or ""),
                )
                for s in states
            ]
        else:
            targets = self._v2_target_states(lb.arn)
        return LoadBalancerHealth(name=lb.name, kind=lb.kind, targets=tuple(targets))

    def _v2_target_states(self, arn: str) -> list[TargetState]:
        with aws_errors("load balancer", arn):
            groups = self.elbv2.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]
            health = [self.elbv2.describe_target_health(TargetGroupArn=g["TargetGroupArn"]) for g in groups]
        found = [d for answer in health for d in answer["TargetHealthDescriptions"]]
        return [
            TargetState(
                target=str(d["Target"]["Id"]),
                port=d["Target"].get("Port"),
                state=str(d["TargetHealth"]["State"]),
                reason=str(d["TargetHealth"].get("Reason", "")),
            )
            for d in found
        ]

    def _check_elb_owner(self, kind: str, name: str, tags: dict[str, str]) -> None:
        # Load balancer names are unique per region and account; never adopt another environment's.
        owner = tags.get(TAG_ENVIRONMENT)
        if owner != self.stamp.environment:
            raise ConflictError(
                f"{kind} {name}: exists but belongs to environment {owner or '(not peerprobe)'}, "
                f"not {self.stamp.environment}",
                resource=kind,
                resource_id=name,
                state="foreign",
            )


@dataclass(frozen=True)
class TargetState:
    """One target as its load balancer sees it: an instance (Classic) or an instance/IP and port (ELBv2)."""

    target: str
    port: int | None
    state: str  # Classic: InService, OutOfService, Unknown; ELBv2: initial, healthy, unhealthy, draining, ...
    reason: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in _HEALTHY

    @property
    def settling(self) -> bool:
        """Still on its way: an NLB target `initial` or `draining`; a Classic instance `OutOfService` with the
        reason code ELB (registration in progress; reason Instance means it fails its health check, as nodes
        without the pod do under externalTrafficPolicy Local, for good) or `Unknown`."""
        return self.state in _SETTLING or (self.state == "OutOfService" and self.reason == "ELB")


@dataclass(frozen=True)
class LoadBalancerHealth:
    name: str
    kind: Literal["classic", "network", "application"]
    targets: tuple[TargetState, ...]

    @property
    def settled(self) -> bool:
        """At least one healthy target and none still on its way (see TargetState.settling): what probing
        needs to see every path the model predicts."""
        return any(t.healthy for t in self.targets) and not any(t.settling for t in self.targets)


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"{kind} name {name!r}: at most 32 letters, digits or hyphens, no hyphen at either end")


def _load_balancer(raw: dict[str, Any]) -> LoadBalancer:
    kind: Literal["network", "application"] = "network" if raw.get("Type") == "network" else "application"
    return LoadBalancer(
        name=raw["LoadBalancerName"],
        kind=kind,
        dns_name=raw.get("DNSName", ""),
        scheme=raw.get("Scheme", ""),
        arn=raw["LoadBalancerArn"],
        state=raw.get("State", {}).get("Code", ""),
    )
