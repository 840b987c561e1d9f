"""The Cloud port: what the flow asks of a cloud (VPCs, peering, security groups, EC2, EKS, load balancers).

Adapters (backends/aws, and the lab through moto) return these small frozen values, never raw SDK dicts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from peerprobe.errors import ConfigError

TAG_PREFIX = "peerprobe:"
TAG_EXPERIMENT = "peerprobe:experiment"
TAG_ENVIRONMENT = "peerprobe:environment"
TAG_RUN = "peerprobe:run"
TAG_CREATED_AT = "peerprobe:created-at"


@dataclass(frozen=True)
class Stamp:
    """Who owns what peerprobe creates: every created resource carries these tags and a Name."""

    experiment: str
    environment: str  # "backend:name:region", the key of the environment's persisted state
    run_id: str

    def tags(self, name: str) -> dict[str, str]:
        return {
            "Name": name,
            TAG_EXPERIMENT: self.experiment,
            TAG_ENVIRONMENT: self.environment,
            TAG_RUN: self.run_id,
            TAG_CREATED_AT: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass(frozen=True)
class Vpc:
    id: str
    cidr: str
    name: str = ""


@dataclass(frozen=True)
class Subnet:
    id: str
    vpc_id: str
    cidr: str
    availability_zone: str
    public: bool
    map_public_ip: bool
    name: str = ""


@dataclass(frozen=True)
class Route:
    destination_cidr: str
    target_id: str  # igw-, nat-, pcx- or "local"
    state: str = "active"


@dataclass(frozen=True)
class RouteTable:
    id: str
    vpc_id: str
    subnet_ids: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class InternetGateway:
    id: str
    vpc_id: str


@dataclass(frozen=True)
class NatGateway:
    id: str
    subnet_id: str
    state: str
    allocation_id: str
    public_ip: str
    private_ip: str


@dataclass(frozen=True)
class Peering:
    id: str
    status: str
    requester_vpc_id: str
    requester_cidr: str
    accepter_vpc_id: str
    accepter_cidr: str


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    vpc_id: str
    name: str


@dataclass(frozen=True, order=True)
class IngressRule:
    """One ingress permission from one IPv4 CIDR or one source security group (a group-to-group rule);
    `protocol` is "tcp", "udp", "icmp" or "-1" (all)."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str = ""
    description: str = field(default="", compare=False)
    source_group: str = ""

    def __post_init__(self) -> None:
        if bool(self.cidr) == bool(self.source_group):
            raise ValueError(f"ingress rule {self.protocol}/{self.from_port}: give exactly one of cidr or source_group")
        if self.cidr:
            ipaddress.ip_network(self.cidr, strict=True)

    @property
    def open_to_world(self) -> bool:
        return bool(self.cidr) and ipaddress.ip_network(self.cidr).prefixlen == 0

    def covers(self, port: int) -> bool:
        return self.protocol == "-1" or self.from_port <= port <= self.to_port


def refuse_open_to_world(rules: Sequence[IngressRule]) -> None:
    """Design rule: peerprobe opens groups to the peer VPC or its own addresses, never to everyone.
    (Rules AWS's controllers wrote may be that broad; reading them back is fine, the report points them out.)"""
    for rule in rules:
        if rule.open_to_world:
            raise ConfigError(
                f"security group rule {rule.protocol}/{rule.from_port}: {rule.cidr} is the "
                "whole internet; peerprobe only opens rules to the peer VPC or its own addresses"
            )


@dataclass(frozen=True)
class Instance:
    id: str
    subnet_id: str
    state: str
    private_ip: str
    public_ip: str | None = None
    name: str = ""


@dataclass(frozen=True)
class EksCluster:
    name: str
    arn: str
    status: str
    endpoint: str
    version: str
    service_cidr: str
    subnet_ids: tuple[str, ...]
    cluster_security_group_id: str
    certificate_authority: str = ""


@dataclass(frozen=True)
class NodeGroup:
    cluster: str
    name: str
    status: str
    subnet_ids: tuple[str, ...]
    desired_size: int
    autoscaling_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listener:
    protocol: str  # TCP, HTTP
    port: int
    instance_port: int


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    kind: Literal["classic", "network", "application"]
    dns_name: str
    scheme: str
    arn: str = ""  # empty for a classic ELB, which is addressed by name
    state: str = "active"


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    name: str
    protocol: str
    port: int
    vpc_id: str
    target_type: str


@dataclass(frozen=True)
class TaggedResource:
    """Something peerprobe tagged, as found by `find_tagged` (for sweep and cleanup from tags alone)."""

    kind: str  # vpc, subnet, route-table, internet-gateway, natgateway, elastic-ip, vpc-peering-connection,
    #            security-group, instance, eks-cluster, eks-nodegroup, elb, elbv2, target-group
    id: str
    tags: Mapping[str, str]

    @property
    def environment(self) -> str:
        return self.tags.get(TAG_ENVIRONMENT, "")


class Cloud(Protocol):
    """What the flow asks of a cloud: every `ensure_*` is idempotent, every `delete_*` succeeds if gone."""

    def availability_zones(self) -> tuple[str, ...]: ...
    def ensure_vpc(self, name: str, *, cidr: str) -> Vpc: ...
    def ensure_subnet(self, name: str, *, vpc_id: str, cidr: str, availability_zone: str, public: bool) -> Subnet: ...
    def ensure_route_table(self, name: str, *, vpc_id: str, subnet_ids: Sequence[str]) -> RouteTable: ...
    def ensure_route(self, route_table_id: str, *, destination_cidr: str, target_id: str) -> Route: ...
    def ensure_internet_gateway(self, name: str, *, vpc_id: str) -> InternetGateway: ...
    def ensure_nat_gateway(self, name: str, *, subnet_id: str) -> NatGateway: ...
    def ensure_peering(self, name: str, *, requester: Vpc, accepter: Vpc) -> Peering: ...
    def ensure_peering_routes(
        self, peering: Peering, *, requester_route_tables: Sequence[str], accepter_route_tables: Sequence[str]
    ) -> None: ...
    def ensure_security_group(self, name: str, *, vpc_id: str, description: str) -> SecurityGroup: ...
    def authorize_ingress(self, group_id: str, *, rules: Sequence[IngressRule]) -> None: ...
    def revoke_ingress(self, group_id: str, *, rules: Sequence[IngressRule]) -> None: ...
    def ingress_rules(self, group_id: str) -> tuple[IngressRule, ...]: ...
    def ensure_instance(
        self,
        name: str,
        *,
        subnet_id: str,
        image_id: str,
        instance_type: str,
        security_group_ids: Sequence[str],
        private_ip: str | None = None,
        user_data: str = "",
    ) -> Instance: ...
    def ensure_cluster(
        self,
        name: str,
        *,
        role_arn: str,
        subnet_ids: Sequence[str],
        service_cidr: str,
        version: str | None = None,
        security_group_ids: Sequence[str] = (),
    ) -> EksCluster: ...
    def ensure_nodegroup(
        self,
        cluster: str,
        *,
        name: str,
        node_role_arn: str,
        subnet_ids: Sequence[str],
        size: int,
        instance_types: Sequence[str] = ("t3.medium",),
    ) -> NodeGroup: ...
    def ensure_classic_load_balancer(
        self,
        name: str,
        *,
        subnet_ids: Sequence[str],
        listeners: Sequence[Listener],
        internal: bool,
        security_group_ids: Sequence[str] = (),
    ) -> LoadBalancer: ...
    def ensure_load_balancer(
        self,
        name: str,
        *,
        subnet_ids: Sequence[str],
        kind: Literal["network", "application"],
        internal: bool,
        security_group_ids: Sequence[str] = (),
    ) -> LoadBalancer: ...
    def ensure_target_group(
        self, name: str, *, vpc_id: str, protocol: str, port: int, target_type: str
    ) -> TargetGroup: ...
    def find_tagged(self, environment: str | None = None) -> tuple[TaggedResource, ...]: ...
    # Deletions, in the order a cleanup calls them: load balancers and target groups, node groups, clusters,
    # instances, NAT gateways (then their EIPs), peering and its routes, security groups, subnets,
    # route tables, internet gateways, VPCs.
    def delete_load_balancer(self, lb: LoadBalancer) -> None: ...
    def delete_target_group(self, arn: str) -> None: ...
    def delete_nodegroup(self, cluster: str, *, name: str) -> None: ...
    def delete_cluster(self, name: str) -> None: ...
    def terminate_instance(self, instance_id: str) -> None: ...
    def delete_nat_gateway(self, nat_gateway_id: str) -> None: ...
    def release_address(self, allocation_id: str) -> None: ...
    def delete_route(self, route_table_id: str, *, destination_cidr: str) -> None: ...
    def delete_peering(self, peering_id: str) -> None: ...
    def delete_security_group(self, group_id: str) -> None: ...
    def delete_subnet(self, subnet_id: str) -> None: ...
    def delete_route_table(self, route_table_id: str) -> None: ...
    def delete_internet_gateway(self, gateway_id: str) -> None: ...
    def delete_vpc(self, vpc_id: str) -> None: ...


class Cluster(Protocol):
    """What the flow asks of one Kubernetes cluster: the aws backend implements it with the kubernetes client,
    the lab with its namespaces (backends/lab/cluster.py). Manifests are resources/ documents as data."""

    def apply(self, manifests: Sequence[Mapping[str, object]]) -> None: ...
    def aws_node_env(self) -> dict[str, str]: ...
    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        """`kubectl set env daemonset aws-node -n kube-system`: NAME=VALUE sets, NAME- unsets; the new env."""
        ...

    def wait_ready(self, *, timeout_seconds: float) -> None:
        """Until the applied Deployments are ready and every load balancer has a healthy target."""
        ...
