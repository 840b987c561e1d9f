"""Find everything peerprobe tagged, per service, for sweep and for cleanup from tags alone."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from peerprobe.backends.aws._base import AwsBase, tag_dict
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.ports import TAG_ENVIRONMENT, TaggedResource

# ELB DescribeTags takes at most 20 names or ARNs per call (ELB API reference, DescribeTags).
_ELB_TAG_BATCH = 20
# The EC2 `resource-id` filter is kept to batches well under the API's 200-value filter limit.
_EC2_TAG_BATCH = 100
_EC2_KINDS = {"vpc-elastic-ip": "elastic-ip", "elastic-ip": "elastic-ip", "nat-gateway": "natgateway"}
# The order tagged resources are deleted in: the experiment's cleanup order (backends/experiment.py, what
# depends on a resource goes before it), per kind find_tagged returns. Load balancers; the peering, or the transit
# gateway's attachments and then the gateway (its routes go blackhole, and go with their tables); the EC2
# host and its root volume; node groups, then clusters; NAT gateways, then their addresses; security groups
# (after their cross-group rules); route tables, subnets, internet gateways; VPCs last.
DELETION_ORDER = (
    "elb",
    "elbv2",
    "target-group",
    "vpc-peering-connection",
    "transit-gateway-attachment",
    "transit-gateway",
    "instance",
    "volume",
    "eks-nodegroup",
    "eks-cluster",
    "natgateway",
    "elastic-ip",
    "security-group",
    "route-table",
    "subnet",
    "internet-gateway",
    "vpc",
)


Alive = Callable[[dict[str, Any]], bool]


def _any(_: dict[str, Any]) -> bool:
    return True


def _nat_alive(nat: dict[str, Any]) -> bool:
    return nat.get("State") not in ("deleted", "deleting")


def _peering_alive(peering: dict[str, Any]) -> bool:
    return peering.get("Status", {}).get("Code") not in ("deleted", "rejected", "failed")


def _state_alive(item: dict[str, Any]) -> bool:
    return item.get("State") not in ("deleted", "deleting")


def _volume_alive(volume: dict[str, Any]) -> bool:
    return volume.get("State") not in ("deleting", "deleted")


def _instance_alive(instance: dict[str, Any]) -> bool:
    return instance.get("State", {}).get("Name") not in ("terminated", "shutting-down")


# kind -> (EC2 describe call, its result key, its ids argument, whether an item found is still there)
_DESCRIBE: dict[str, tuple[str, str, str, Alive]] = {
    "vpc": ("describe_vpcs", "Vpcs", "VpcIds", _any),
    "subnet": ("describe_subnets", "Subnets", "SubnetIds", _any),
    "route-table": ("describe_route_tables", "RouteTables", "RouteTableIds", _any),
    "internet-gateway": ("describe_internet_gateways", "InternetGateways", "InternetGatewayIds", _any),
    "security-group": ("describe_security_groups", "SecurityGroups", "GroupIds", _any),
    "natgateway": ("describe_nat_gateways", "NatGateways", "NatGatewayIds", _nat_alive),
    "elastic-ip": ("describe_addresses", "Addresses", "AllocationIds", _any),
    "vpc-peering-connection": (
        "describe_vpc_peering_connections",
        "VpcPeeringConnections",
        "VpcPeeringConnectionIds",
        _peering_alive,
    ),
    "transit-gateway": ("describe_transit_gateways", "TransitGateways", "TransitGatewayIds", _state_alive),
    "transit-gateway-attachment": (
        "describe_transit_gateway_vpc_attachments",
        "TransitGatewayVpcAttachments",
        "TransitGatewayAttachmentIds",
        _state_alive,
    ),
    "instance": ("describe_instances", "Reservations", "InstanceIds", _instance_alive),
    "volume": ("describe_volumes", "Volumes", "VolumeIds", _volume_alive),
}


class SweepOps(AwsBase):
    def exists(self, resource: TaggedResource) -> bool:
        """DescribeTags outlives the resource in moto: ask the resource's own API, per kind (EKS clusters and
        load balancers are listed from their own APIs, so they exist)."""
        if resource.kind not in _DESCRIBE:
            return True
        call, key, ids_arg, alive = _DESCRIBE[resource.kind]
        try:
            found = getattr(self.ec2, call)(**{ids_arg: [resource.id]})[key]
        except Exception:  # not found, in whatever shape the API says it
            return False
        items = [i for r in found for i in r["Instances"]] if key == "Reservations" else found
        return any(alive(item) for item in items)

    def delete_volume(self, volume_id: str) -> None:
        """An instance's root volume left behind; absent counts as deleted."""
        with contextlib.suppress(Exception), aws_errors("volume", volume_id):
            self.ec2.delete_volume(VolumeId=volume_id)

    def find_tagged(self, environment: str | None = None) -> tuple[TaggedResource, ...]:
        """Every resource carrying peerprobe's environment tag (of `environment` only, when given)."""
        found = [
            *self._ec2_tagged(environment),
            *self._eks_tagged(),
            *self._elb_tagged(),
            *self._elbv2_tagged(),
        ]
        return tuple(r for r in found if r.environment and environment in (None, r.environment))

    def tagged_clusters(self, environment: str) -> tuple[TaggedResource, ...]:
        """The EKS clusters and node groups of `environment` (node groups as `cluster/name`)."""
        return tuple(r for r in self._eks_tagged() if r.environment == environment)

    def _ec2_tagged(self, environment: str | None) -> list[TaggedResource]:
        filters = [{"Name": "key", "Values": [TAG_ENVIRONMENT]}]
        if environment is not None:
            filters.append({"Name": "value", "Values": [environment]})
        kinds = {tag["ResourceId"]: tag["ResourceType"] for tag in self._ec2_tags(filters)}
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        ids = sorted(kinds)
        for start in range(0, len(ids), _EC2_TAG_BATCH):
            batch = ids[start : start + _EC2_TAG_BATCH]
            for tag in self._ec2_tags([{"Name": "resource-id", "Values": batch}]):
                tags[tag["ResourceId"]][tag["Key"]] = tag["Value"]
        return [TaggedResource(kind=_EC2_KINDS.get(kinds[i], kinds[i]), id=i, tags=tags[i]) for i in ids]

    def _ec2_tags(self, filters: list[dict[str, Any]]) -> Iterator[dict[str, str]]:
        with aws_errors("ec2 tags"):
            for page in self.ec2.get_paginator("describe_tags").paginate(Filters=filters):
                yield from page["Tags"]

    def _eks_tagged(self) -> list[TaggedResource]:
        result: list[TaggedResource] = []
        with aws_errors("eks clusters"):
            for page in self.eks.get_paginator("list_clusters").paginate():
                for name in page["clusters"]:
                    cluster = self.eks.describe_cluster(name=name)["cluster"]
                    result.append(TaggedResource(kind="eks-cluster", id=name, tags=dict(cluster.get("tags", {}))))
                    result.extend(self._eks_nodegroups(name))
        return result

    def _eks_nodegroups(self, cluster: str) -> list[TaggedResource]:
        result = []
        for page in self.eks.get_paginator("list_nodegroups").paginate(clusterName=cluster):
            for name in page["nodegroups"]:
                group = self.eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
                result.append(
                    TaggedResource(kind="eks-nodegroup", id=f"{cluster}/{name}", tags=dict(group.get("tags", {})))
                )
        return result

    def _elb_tagged(self) -> list[TaggedResource]:
        with aws_errors("classic load balancers"):
            names = [
                lb["LoadBalancerName"]
                for page in self.elb.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancerDescriptions"]
            ]
            described = [
                desc
                for start in range(0, len(names), _ELB_TAG_BATCH)
                for desc in self.elb.describe_tags(LoadBalancerNames=names[start : start + _ELB_TAG_BATCH])[
                    "TagDescriptions"
                ]
            ]
        return [TaggedResource(kind="elb", id=d["LoadBalancerName"], tags=tag_dict(d)) for d in described]

    def _elbv2_tagged(self) -> list[TaggedResource]:
        with aws_errors("load balancers"):
            arns = [
                (lb["LoadBalancerArn"], "elbv2")
                for page in self.elbv2.get_paginator("describe_load_balancers").paginate()
                for lb in page["LoadBalancers"]
            ]
            arns += [
                (tg["TargetGroupArn"], "target-group")
                for page in self.elbv2.get_paginator("describe_target_groups").paginate()
                for tg in page["TargetGroups"]
            ]
            kinds = dict(arns)
            described = [
                desc
                for start in range(0, len(arns), _ELB_TAG_BATCH)
                for desc in self.elbv2.describe_tags(
                    ResourceArns=[arn for arn, _ in arns[start : start + _ELB_TAG_BATCH]]
                )["TagDescriptions"]
            ]
        return [TaggedResource(kind=kinds[d["ResourceArn"]], id=d["ResourceArn"], tags=tag_dict(d)) for d in described]
