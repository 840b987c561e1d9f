"""The ports the steps are written over: the values the Cloud adapter returns (one boto3 adapter, pointed at AWS
or at the lab's moto), the Cluster port (one Kubernetes API) and the Vantage port (where a probe runs).
Adapters return these small frozen values, never SDK dicts or kubernetes-client objects.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from peerprobe.errors import ConfigError
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.topology import Node, Pod

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
class TransitGatewayRouting:
    """A transit gateway as its routing stands: its state, its available VPC attachments (id -> VPC id), and of
    its default association route table the attachments associated with it, those propagating to it, and its
    active static routes (destination -> attachment). Propagated routes are not listed: AWS derives them from
    the propagations and the attached VPCs' CIDR blocks."""

    id: str
    state: str
    route_table: str
    attachments: dict[str, str]
    associated: frozenset[str]
    propagating: frozenset[str]
    static_routes: dict[str, str]


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


@dataclass(frozen=True)
class ServiceInfo:
    """One Service of a cluster as peerprobe reads it back (never a kubernetes-client object)."""

    name: str
    type: str  # ClusterIP | NodePort | LoadBalancer (the API server's default is ClusterIP)
    port: int
    target_port: int
    node_port: int | None = None
    health_check_node_port: int | None = None
    cluster_ip: str | None = None  # None for a headless Service
    external_traffic_policy: str | None = None
    load_balancer_source_ranges: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    hostname: str = ""  # status.loadBalancer.ingress[0]: what the controller assigned, once it has


class Cluster(Protocol):
    """One Kubernetes cluster, as the steps use it: the aws backend implements it with the kubernetes client
    (aws/kube.py), the lab with its namespaces (lab/cluster.py). Manifests are resources/ documents as data."""

    def apply(self, manifests: Sequence[Mapping[str, object]]) -> None: ...
    def nodes(self) -> list[Node]: ...
    def pod(self, app: str) -> Pod | None: ...
    def services(self) -> list[ServiceInfo]: ...
    def wait_deployments(self, *, timeout_seconds: float) -> None: ...
    def wait_ready(self, *, timeout_seconds: float) -> None:
        """Until the applied Deployments are ready and every load balancer answers."""
        ...

    def aws_node_env(self) -> dict[str, str]: ...
    def cni_version(self) -> str: ...
    def patch_aws_node_env(self, assignments: Sequence[str]) -> dict[str, str]:
        """`kubectl set env daemonset aws-node -n kube-system`: NAME=VALUE sets, NAME- unsets; the new env."""
        ...

    def wait_rollout(self, *, timeout_seconds: float) -> None: ...
    def delete_load_balancer_services(self) -> list[str]: ...
    # Attach mode: peerprobe's own namespace on a cluster someone else runs (design.md).
    def ensure_namespace(self) -> None: ...
    def namespace_exists(self) -> bool: ...
    def delete_namespace(self, *, timeout_seconds: float) -> None: ...


class ClusterReader(Protocol):
    """What attach mode reads from a cluster's own API (backends/aws/_read.py): the aws backend reads it with the
    kubernetes client, the lab from the owner environment's state. Reads only."""

    def nodes(self) -> list[Node]: ...
    def aws_node_env(self) -> dict[str, str]: ...
    def cni_version(self) -> str: ...
    def kube_proxy_mode(self) -> str: ...


class Vantage(Protocol):
    """Where one vantage's probes run (a pod, the EC2 host, the outside client): ONE batch, every probe a new
    connection, results in the order of `specs`."""

    def probe(self, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]: ...
