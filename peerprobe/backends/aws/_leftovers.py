"""What Kubernetes' load balancer controllers leave in a VPC while they tear down: the ELBs and NLBs of a
cluster, their security groups and their network interfaces. Deleting a subnet or a security group before
these are gone fails with DependencyViolation (the trap eksctl users hit), so cleanup waits for them."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import structlog

from peerprobe.backends.aws._base import AwsBase, tag_dict
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.errors import ConflictError, NotFoundError, WaitTimeoutError

log = structlog.get_logger()
POLL_SECONDS = 10.0
# cloud-provider-aws names its Classic ELB groups k8s-elb-<lb name>; the Load Balancer Controller k8s-<ns>-….
CONTROLLER_GROUP_PREFIX = "k8s-"


@dataclass(frozen=True)
class Leftovers:
    load_balancers: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.load_balancers or self.security_groups or self.interfaces)


class LeftoverOps(AwsBase):
    def load_balancer_leftovers(self, *, cluster: str, vpc_id: str) -> Leftovers:
        """The cluster's load balancers (tagged kubernetes.io/cluster/<cluster>), the controllers' security
        groups in the VPC and the load balancers' network interfaces there."""
        tag = f"kubernetes.io/cluster/{cluster}"
        return Leftovers(
            load_balancers=tuple(self._classic_of(tag) + self._v2_of(tag)),
            security_groups=tuple(self._controller_groups(tag, vpc_id)),
            interfaces=tuple(self._elb_interfaces(vpc_id)),
        )

    def wait_load_balancers_gone(self, *, cluster: str, vpc_id: str, timeout_seconds: float) -> None:
        """Poll until the controllers have removed everything; then delete groups a controller left behind.
        Bounded: a WaitTimeoutError names what is still there."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            left = self.load_balancer_leftovers(cluster=cluster, vpc_id=vpc_id)
            if not left.load_balancers and not left.interfaces:
                self._delete_groups(left.security_groups)
                return
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"load balancers of cluster {cluster} in {vpc_id}: still there after {timeout_seconds:.0f}s: "
                    f"{', '.join(left.load_balancers + left.interfaces)}",
                    resource="load balancer", resource_id=cluster, state="deleting",
                )  # fmt: skip
            log.info("load_balancers.waiting", cluster=cluster, left=len(left.load_balancers),
                     interfaces=len(left.interfaces))  # fmt: skip
            time.sleep(POLL_SECONDS if self.waits.delay else 0)

    def delete_tagged_load_balancers(self, cluster: str) -> list[str]:
        """Delete the cluster's load balancers directly (when the cluster cannot be asked to): those tagged
        kubernetes.io/cluster/<cluster>; one already gone counts as deleted."""
        tag = f"kubernetes.io/cluster/{cluster}"
        deleted = []
        for name in self._classic_of(tag):
            with contextlib.suppress(NotFoundError), aws_errors("elb", name):
                self.elb.delete_load_balancer(LoadBalancerName=name)
            deleted.append(name)
        for arn in self._v2_of(tag):
            with contextlib.suppress(NotFoundError), aws_errors("elbv2", arn):
                self.elbv2.delete_load_balancer(LoadBalancerArn=arn)
            deleted.append(arn)
        log.info("load_balancers.deleted_directly", cluster=cluster, deleted=deleted)
        return deleted

    def _delete_groups(self, group_ids: tuple[str, ...]) -> None:
        for group_id in group_ids:
            try:
                with aws_errors("security group", group_id):
                    self.ec2.delete_security_group(GroupId=group_id)
                log.info("security_group.deleted", group_id=group_id, reason="left by a load balancer controller")
            except NotFoundError:
                pass
            except ConflictError as error:  # still referenced: the node group's rule goes with the cluster
                log.warning("security_group.kept", group_id=group_id, state=error.state)

    def _classic_of(self, tag: str) -> list[str]:
        with aws_errors("classic load balancers"):
            names = [
                lb["LoadBalancerName"]
                for page in self.elb.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancerDescriptions"]
            ]
            tagged = [
                d for start in range(0, len(names), 20)
                for d in self.elb.describe_tags(LoadBalancerNames=names[start : start + 20])["TagDescriptions"]
            ]  # fmt: skip
        return [str(d["LoadBalancerName"]) for d in tagged if tag in tag_dict(d)]

    def _v2_of(self, tag: str) -> list[str]:
        with aws_errors("load balancers"):
            arns = [
                lb["LoadBalancerArn"]
                for page in self.elbv2.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancers"]
            ]
            tagged = [
                d for start in range(0, len(arns), 20)
                for d in self.elbv2.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]
            ]  # fmt: skip
        return [str(d["ResourceArn"]) for d in tagged if tag in tag_dict(d)]

    def _controller_groups(self, tag: str, vpc_id: str) -> list[str]:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag-key", "Values": [tag]}]
        with aws_errors("security groups", vpc_id):
            found = self.ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
        return [str(g["GroupId"]) for g in found if str(g["GroupName"]).startswith(CONTROLLER_GROUP_PREFIX)]

    def _elb_interfaces(self, vpc_id: str) -> list[str]:
        # ELB-managed interfaces are described "ELB <name>" (Classic) or "ELB net/<name>/<id>" (NLB).
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "description", "Values": ["ELB *"]}]
        with aws_errors("network interfaces", vpc_id):
            found = self.ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"]
        return [str(eni["NetworkInterfaceId"]) for eni in found]

    def load_balancer_addresses(self, dns_name: str) -> tuple[list[str], list[str]]:
        """The private and public addresses of the load balancer answering at `dns_name`, from its
        interfaces (the role classifier names them `load-balancer`)."""
        description = self._elb_description(dns_name)
        if description is None:
            return [], []
        with aws_errors("network interfaces", dns_name):
            found = self.ec2.describe_network_interfaces(
                Filters=[{"Name": "description", "Values": [description]}]
            )["NetworkInterfaces"]
        private = sorted(str(e["PrivateIpAddress"]) for e in found if e.get("PrivateIpAddress"))
        public = sorted(str(e["Association"]["PublicIp"]) for e in found if e.get("Association", {}).get("PublicIp"))
        return private, public

    def _elb_description(self, dns_name: str) -> str | None:
        with aws_errors("load balancers", dns_name):
            for page in self.elb.get_paginator("describe_load_balancers").paginate():
                for lb in page["LoadBalancerDescriptions"]:
                    if lb.get("DNSName") == dns_name:
                        return f"ELB {lb['LoadBalancerName']}"
            for page in self.elbv2.get_paginator("describe_load_balancers").paginate():
                for raw in page["LoadBalancers"]:
                    if raw.get("DNSName") == dns_name:
                        return "ELB " + _v2_suffix(raw)
        return None


def _v2_suffix(raw: dict[str, Any]) -> str:
    # arn:…:loadbalancer/net/<name>/<id> -> net/<name>/<id>
    return str(raw["LoadBalancerArn"]).split(":loadbalancer/", 1)[-1]
