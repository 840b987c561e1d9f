"""What Kubernetes' load balancer controllers leave in a VPC while they tear down: the ELBs and NLBs of a
cluster, their security groups and their network interfaces. Deleting a subnet or a security group before
these are gone fails with DependencyViolation (the trap eksctl users hit), so cleanup waits for them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from peerprobe.backends.aws._base import tag_dict
from peerprobe.backends.aws._elb import ElbOps
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._in_use import InUseOps
from peerprobe.errors import ConflictError, NotFoundError

log = structlog.get_logger()
POLL_SECONDS = 10.0
# cloud-provider-aws names its Classic ELB groups k8s-elb-<lb name>; the Load Balancer Controller k8s-<ns>-….
CONTROLLER_GROUP_PREFIX = "k8s-"
# Which Service a load balancer serves, "<namespace>/<name>": cloud-provider-aws tags its ELBs and NLBs
# kubernetes.io/service-name, the AWS Load Balancer Controller service.k8s.aws/stack.
SERVICE_TAGS = ("kubernetes.io/service-name", "service.k8s.aws/stack")


@dataclass(frozen=True)
class Leftovers:
    load_balancers: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()
    # The interface descriptions of the cluster's own load balancers ("ELB <name>", "ELB net/<name>/<id>"),
    # remembered across checks: a load balancer's interfaces outlive it by minutes.
    descriptions: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.load_balancers or self.security_groups or self.interfaces)


class LeftoverOps(ElbOps, InUseOps):
    def load_balancer_leftovers(
        self, *, cluster: str, vpc_id: str, seen: tuple[str, ...] = (), namespace: str | None = None
    ) -> Leftovers:
        """The cluster's load balancers (tagged kubernetes.io/cluster/<cluster>), the controllers' security
        groups in the VPC, and the network interfaces of those load balancers there: only theirs (by
        description, with `seen` ones of load balancers already gone, and by the controllers' groups), never
        another load balancer's in a VPC shared with others. With `namespace` (attach mode: someone else's
        cluster), only the load balancers of that namespace's Services and their groups."""
        tag = f"kubernetes.io/cluster/{cluster}"
        classic, v2 = self._classic_of(tag, namespace), self._v2_of(tag, namespace)
        own = {f"ELB {name}" for name in classic} | {f"ELB {_v2_suffix(arn)}" for arn in v2} | set(seen)
        groups = self._controller_groups(tag, vpc_id, namespace=namespace, own=own)
        interfaces = self._elb_interfaces(vpc_id, descriptions=sorted(own), groups=groups)
        return Leftovers(
            load_balancers=tuple(classic + v2),
            security_groups=tuple(groups),
            interfaces=tuple(interfaces),
            descriptions=tuple(sorted(own)),
        )

    def wait_load_balancers_gone(
        self, *, cluster: str, vpc_id: str, timeout_seconds: float, namespace: str | None = None
    ) -> None:
        """Until the controllers have removed the cluster's load balancers and their interfaces, bounded (a
        WaitTimeoutError names what is still there); then delete the groups a controller left behind."""
        last = Leftovers()

        def check() -> Leftovers | None:
            nonlocal last
            last = self.load_balancer_leftovers(
                cluster=cluster, vpc_id=vpc_id, seen=last.descriptions, namespace=namespace
            )
            return last if not (last.load_balancers or last.interfaces) else None

        gone = self.waits.poll(
            check,
            kind="load balancers",
            resource_id=f"of cluster {cluster} in {vpc_id}",
            goal="gone",
            max_seconds=timeout_seconds,
            first=POLL_SECONDS,
            state=lambda: f"still there: {', '.join(last.load_balancers + last.interfaces)}",
        )
        self._delete_groups(gone.security_groups)

    def delete_tagged_load_balancers(self, cluster: str, *, namespace: str | None = None) -> list[str]:
        """Delete the cluster's load balancers directly (when the cluster cannot be asked to): those tagged
        kubernetes.io/cluster/<cluster> (with `namespace`, only those of its Services); one already gone counts
        as deleted."""
        tag = f"kubernetes.io/cluster/{cluster}"
        deleted = []
        for name in self._classic_of(tag, namespace):
            with contextlib.suppress(NotFoundError), aws_errors("elb", name):
                self.elb.delete_load_balancer(LoadBalancerName=name)
            deleted.append(name)
        for arn in self._v2_of(tag, namespace):
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
            except ConflictError as error:
                # Still referred to by the cluster security group's rules: delete_cluster revisits it.
                log.info("security_group.kept", group_id=group_id, state=error.state, until="the cluster is deleted")

    def delete_controller_groups(self, *, cluster: str) -> None:
        """After the cluster is gone: the security groups its load balancer controllers made (tagged with the
        cluster, named k8s-…), in any VPC, each deleted once nothing uses it (bounded, naming what does)."""
        tag = f"kubernetes.io/cluster/{cluster}"
        with aws_errors("security groups", cluster):
            found = self.ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": [tag]}])["SecurityGroups"]
        for group in found:
            if str(group["GroupName"]).startswith(CONTROLLER_GROUP_PREFIX):
                self.delete_security_group(str(group["GroupId"]))

    def _classic_of(self, tag: str, namespace: str | None = None) -> list[str]:
        with aws_errors("classic load balancers"):
            names = [
                lb["LoadBalancerName"]
                for page in self.elb.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancerDescriptions"]
            ]
        tagged = _tags_in_batches(
            names, lambda batch: self.elb.describe_tags(LoadBalancerNames=batch), kind="classic load balancers"
        )
        return [str(d["LoadBalancerName"]) for d in tagged if _serves(tag_dict(d), tag, namespace)]

    def _v2_of(self, tag: str, namespace: str | None = None) -> list[str]:
        with aws_errors("load balancers"):
            arns = [
                lb["LoadBalancerArn"]
                for page in self.elbv2.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancers"]
            ]
        tagged = _tags_in_batches(
            arns, lambda batch: self.elbv2.describe_tags(ResourceArns=batch), kind="load balancers"
        )
        return [str(d["ResourceArn"]) for d in tagged if _serves(tag_dict(d), tag, namespace)]

    def _controller_groups(
        self, tag: str, vpc_id: str, *, namespace: str | None = None, own: set[str] | None = None
    ) -> list[str]:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag-key", "Values": [tag]}]
        with aws_errors("security groups", vpc_id):
            found = self.ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
        groups = [g for g in found if str(g["GroupName"]).startswith(CONTROLLER_GROUP_PREFIX)]
        if namespace is not None:
            groups = [g for g in groups if _group_of_namespace(g, namespace, own or set())]
        return [str(g["GroupId"]) for g in groups]

    def _elb_interfaces(self, vpc_id: str, *, descriptions: list[str], groups: list[str]) -> list[str]:
        """ELB-managed interfaces are described "ELB <name>" (Classic) or "ELB net/<name>/<id>" (NLB); a
        Classic ELB's also carry the controller's group."""
        found: dict[str, None] = {}
        for key, values in (("description", descriptions), ("group-id", groups)):
            if not values:
                continue
            filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": key, "Values": values}]
            with aws_errors("network interfaces", vpc_id):
                for eni in self.ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"]:
                    found[str(eni["NetworkInterfaceId"])] = None
        return list(found)

    def load_balancer_addresses(self, dns_name: str) -> tuple[list[str], list[str]]:
        """The private and public addresses of the load balancer answering at `dns_name`, from its
        interfaces (the role classifier names them `load-balancer`)."""
        description = self._elb_description(dns_name)
        if description is None:
            return [], []
        with aws_errors("network interfaces", dns_name):
            found = self.ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": [description]}])[
                "NetworkInterfaces"
            ]
        private = sorted(str(e["PrivateIpAddress"]) for e in found if e.get("PrivateIpAddress"))
        public = sorted(str(e["Association"]["PublicIp"]) for e in found if e.get("Association", {}).get("PublicIp"))
        return private, public

    def _elb_description(self, dns_name: str) -> str | None:
        lb = self.find_load_balancer(dns_name)
        if lb is None:
            return None
        return f"ELB {lb.name}" if lb.kind == "classic" else f"ELB {_v2_suffix(lb.arn)}"


def _serves(tags: dict[str, str], cluster_tag: str, namespace: str | None) -> bool:
    """Tagged for the cluster and, when `namespace` is given, serving a Service of that namespace."""
    if cluster_tag not in tags:
        return False
    return namespace is None or any(tags.get(key, "").startswith(f"{namespace}/") for key in SERVICE_TAGS)


def _group_of_namespace(group: dict[str, Any], namespace: str, own: set[str]) -> bool:
    """A controller's group made for a Service of `namespace`: tagged with it (the Load Balancer Controller),
    described with it ("Security group for Kubernetes ELB <name> (<namespace>/<service>)", cloud-provider-aws),
    or named after one of the namespace's Classic ELBs (k8s-elb-<name>)."""
    tags = tag_dict(group)
    if any(tags.get(key, "").startswith(f"{namespace}/") for key in SERVICE_TAGS):
        return True
    if f"({namespace}/" in str(group.get("Description", "")):
        return True
    names = {d.removeprefix("ELB ") for d in own if "/" not in d}
    return str(group["GroupName"]).removeprefix("k8s-elb-") in names


def _v2_suffix(arn: str) -> str:
    # arn:…:loadbalancer/net/<name>/<id> -> net/<name>/<id>
    return arn.split(":loadbalancer/", 1)[-1]


def _tags_in_batches(names: list[str], describe: Callable[[list[str]], Any], *, kind: str) -> list[dict[str, Any]]:
    """DescribeTags, 20 names per call (its limit). A load balancer deleted since it was listed makes AWS refuse
    the whole batch (LoadBalancerNotFound): that batch is then asked one by one, and the deleted one skipped."""
    tagged: list[dict[str, Any]] = []
    for start in range(0, len(names), 20):
        batch = names[start : start + 20]
        try:
            with aws_errors(kind, ",".join(batch)[:100]):
                tagged += describe(batch)["TagDescriptions"]
        except NotFoundError:
            for name in batch:
                with contextlib.suppress(NotFoundError), aws_errors(kind, name):
                    tagged += describe([name])["TagDescriptions"]
    return tagged
