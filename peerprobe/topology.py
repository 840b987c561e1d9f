"""The topology facts a run works with (addresses, names, ports) and a deterministic plan of them.

Backends report the topology they really built; ``plan`` lays out one from the config alone, for
``predict`` and as the lab's address plan. The JSON shape is the report's ``topology`` (design.md).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from peerprobe.config import AZ_COUNT, FIRST_HOST, NODE_BLOCK, POD_SUBNET_SPLIT, Cluster, ExperimentConfig, Vpc

HEADLESS_NAME = "source-ip-app-headless.default.svc.cluster.local"
LB_KINDS = ("load-balancer", "internal-nlb", "nginx-nlb")
# Documentation ranges (RFC 5737) stand in for public addresses; they never leave the lab.
PUBLIC_POOLS = {"vpc1": "198.51.100.0/24", "vpc2": "203.0.113.0/24"}
OUTSIDE_CLIENT = "192.0.2.10"
# The API server allocates a healthCheckNodePort to every LoadBalancer Service with externalTrafficPolicy Local.
HEALTH_CHECK_NODE_PORTS = {"load-balancer": 31497, "internal-nlb": 31081, "nginx-nlb": 31082}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Node(_Frozen):
    name: str
    ip: str  # the primary private IPv4 of the primary ENI
    az: str = ""
    subnet: Literal["private", "public"] = "private"
    public_ip: str | None = None
    addresses: list[str] = Field(default_factory=list)  # every private IPv4 on the node's ENIs

    def all_addresses(self) -> set[str]:
        return {self.ip, *self.addresses, *([self.public_ip] if self.public_ip else [])}


class Pod(_Frozen):
    ip: str
    node: str


class LoadBalancerFacts(_Frozen):
    dns_name: str
    scheme: Literal["internet-facing", "internal"]
    private_ips: list[str] = Field(default_factory=list)
    public_ips: list[str] = Field(default_factory=list)


class ClusterTopology(_Frozen):
    cidr: str
    nodes: list[Node]
    busybox_pod: Pod | None = None
    nat_gateway: str | None = None  # the NAT gateway's public address
    echo_pod: Pod | None = None
    cluster_ip: str | None = None
    node_port: int | None = None
    headless_name: str | None = None
    service_node_ports: dict[str, int] = Field(default_factory=dict)
    # externalTrafficPolicy Local: the Service's healthCheckNodePort, served by kube-proxy on every node
    health_check_node_ports: dict[str, int] = Field(default_factory=dict)
    nginx_pod: Pod | None = None  # the workshop's nginx, behind the internet-facing nginx NLB
    load_balancers: dict[str, str] = Field(default_factory=dict)  # kind -> DNS name (report contract)
    load_balancer_facts: dict[str, LoadBalancerFacts] = Field(default_factory=dict)
    # Attach mode: what was read of this cluster someone else runs (attach.FoundCluster.topology); None otherwise
    read: dict[str, Any] | None = None

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)


class PeerHost(_Frozen):
    private_ip: str
    public_ip: str | None = None


class Topology(_Frozen):
    vpc1: ClusterTopology
    vpc2: ClusterTopology
    peer_host: PeerHost
    outside: str | None = None  # the `outside` vantage's address; None where there is no such vantage
    # peer_host.create: false (attach mode's default): no EC2 host, so no vpc2-ec2 vantage and no peer-host cells
    peer_host_created: bool = True


# --- the plan --------------------------------------------------------------------------------------------


def plan(config: ExperimentConfig, *, backend: str = "lab") -> Topology:
    """Deterministic addresses for the config: what ``predict`` shows and the lab allocates."""
    vpc1 = _plan_cluster("vpc1", config.vpcs.vpc1, config.clusters.vpc1, config.region)
    vpc2 = _plan_cluster("vpc2", config.vpcs.vpc2, config.clusters.vpc2, config.region)
    vpc1 = vpc1.model_copy(update=_vpc1_workloads(config, vpc1))
    outside = OUTSIDE_CLIENT if backend == "lab" else _first_host(config.outside_cidrs)
    return Topology(
        vpc1=vpc1,
        vpc2=vpc2,
        peer_host=_plan_peer_host(config),
        outside=outside,
        peer_host_created=config.peer_host.create,
    )


def subnets(vpc: Vpc) -> dict[str, list[ipaddress.IPv4Network]]:
    """eksctl's layout: the VPC cut in eight, three public subnets then three private ones."""
    parts = list(ipaddress.IPv4Network(vpc.cidr).subnets(prefixlen_diff=3))
    return {"public": parts[:AZ_COUNT], "private": parts[AZ_COUNT : 2 * AZ_COUNT]}


def pod_subnets(cidr: str) -> list[ipaddress.IPv4Network]:
    """Custom networking's ENIConfig subnets: the CIDR cut in four, one subnet per zone (three used)."""
    return list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=POD_SUBNET_SPLIT))[:AZ_COUNT]


def zone(region: str, index: int) -> str:
    return f"{region}{'abc'[index % AZ_COUNT]}"


def private_dns_name(ip: str, region: str) -> str:
    # EC2 private DNS names: ip-a-b-c-d.ec2.internal in us-east-1, ip-a-b-c-d.<region>.compute.internal elsewhere.
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{ip.replace('.', '-')}.{domain}"


def dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def _host(subnet: ipaddress.IPv4Network, offset: int) -> str:
    return str(subnet.network_address + offset)


def _public(key: str, offset: int) -> str:
    return str(ipaddress.IPv4Network(PUBLIC_POOLS[key]).network_address + offset)


def nat_gateway_address(key: str) -> str:
    """The public address the lab gives VPC `key`'s NAT gateway (its Elastic IP)."""
    return _public(key, 1)


def _plan_cluster(key: str, vpc: Vpc, cluster: Cluster, region: str) -> ClusterTopology:
    nodes = [_plan_node(key, vpc, cluster, region, index) for index in range(cluster.nodes)]
    nat = nat_gateway_address(key) if vpc.nat_gateway else None
    busybox_node = nodes[-1] if key == "vpc1" else nodes[0]
    busybox = Pod(ip=_pod_ip(vpc, cluster, nodes.index(busybox_node), 3), node=busybox_node.name)
    return ClusterTopology(cidr=vpc.cidr, nodes=nodes, busybox_pod=busybox, nat_gateway=nat)


def _node_base(vpc: Vpc, cluster: Cluster, index: int) -> tuple[ipaddress.IPv4Network, int]:
    subnet = subnets(vpc)[cluster.node_subnets][index % AZ_COUNT]
    return subnet, FIRST_HOST + NODE_BLOCK * (index // AZ_COUNT)


def _pod_base(vpc: Vpc, cluster: Cluster, index: int) -> tuple[ipaddress.IPv4Network, int]:
    """Where node ``index``'s pods (and its secondary ENI) take addresses: its own subnet, or with custom
    networking the pod subnet of its zone, at the same offsets."""
    subnet, base = _node_base(vpc, cluster, index)
    custom = cluster.custom_networking
    if custom.enabled and custom.cidr is not None:
        subnet = pod_subnets(custom.cidr)[index % AZ_COUNT]
    return subnet, base


def _plan_node(key: str, vpc: Vpc, cluster: Cluster, region: str, index: int) -> Node:
    subnet, base = _node_base(vpc, cluster, index)
    primary = _host(subnet, base)
    pod_subnet, pod_base = _pod_base(vpc, cluster, index)
    addresses = [primary, _host(pod_subnet, pod_base + 1)] if cluster.pods_on_secondary_eni else [primary]
    public_ip = _public(key, 101 + index) if cluster.node_subnets == "public" else None
    return Node(
        name=private_dns_name(primary, region),
        ip=primary,
        az=zone(region, index),
        subnet=cluster.node_subnets,
        public_ip=public_ip,
        addresses=addresses,
    )


def _pod_ip(vpc: Vpc, cluster: Cluster, node_index: int, slot: int) -> str:
    subnet, base = _pod_base(vpc, cluster, node_index)
    return _host(subnet, base + slot)


def _vpc1_workloads(config: ExperimentConfig, vpc1: ClusterTopology) -> dict[str, object]:
    vpc, cluster = config.vpcs.vpc1, config.clusters.vpc1
    service = ipaddress.IPv4Network(cluster.service_cidr)
    node_ports = {"nodeport": 32227, "load-balancer": 32497, "internal-nlb": 31080, "nginx-nlb": 30080}
    local = config.services.external_traffic_policy == "Local"
    facts = _plan_load_balancers(config)
    return {
        "echo_pod": Pod(ip=_pod_ip(vpc, cluster, 0, 2), node=vpc1.nodes[0].name),
        "nginx_pod": Pod(ip=_pod_ip(vpc, cluster, 0, 4), node=vpc1.nodes[0].name),
        "health_check_node_ports": HEALTH_CHECK_NODE_PORTS.copy() if local else {},
        # Away from .1 (kubernetes) and .10 (kube-dns), which the VPC2 cluster holds in the same range.
        "cluster_ip": str(service.network_address + service.num_addresses // 2 + 33),
        "node_port": node_ports["nodeport"],
        "headless_name": HEADLESS_NAME,
        "service_node_ports": node_ports,
        "load_balancers": {kind: lb.dns_name for kind, lb in facts.items()},
        "load_balancer_facts": facts,
    }


def _plan_load_balancers(config: ExperimentConfig) -> dict[str, LoadBalancerFacts]:
    region, suffix = config.region, dns_suffix(config.region)
    layout = subnets(config.vpcs.vpc1)
    clb_scheme = config.services.load_balancer.scheme
    clb_prefix = "internal-" if clb_scheme == "internal" else ""
    clb_side = "private" if clb_scheme == "internal" else "public"
    return {
        "load-balancer": LoadBalancerFacts(
            dns_name=f"{clb_prefix}a068ae19572a411eaa5bc0668f12362a-514105420.{region}.elb.{suffix}",
            scheme=clb_scheme,
            private_ips=[_host(subnet, 6) for subnet in layout[clb_side]],
            public_ips=[_public("vpc1", 11 + i) for i in range(AZ_COUNT)] if clb_side == "public" else [],
        ),
        "internal-nlb": LoadBalancerFacts(
            dns_name=f"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6-0f1e2d3c4b5a6978.elb.{region}.{suffix}",
            scheme="internal",
            private_ips=[_host(subnet, 7) for subnet in layout["private"]],
        ),
        "nginx-nlb": LoadBalancerFacts(
            dns_name=f"a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4-1a2b3c4d5e6f7a8b.elb.{region}.{suffix}",
            scheme="internet-facing",
            private_ips=[_host(subnet, 8) for subnet in layout["public"]],
            public_ips=[_public("vpc1", 21 + i) for i in range(AZ_COUNT)],
        ),
    }


def _plan_peer_host(config: ExperimentConfig) -> PeerHost:
    public_subnet = subnets(config.vpcs.vpc2)["public"][0]
    public_ip = _public("vpc2", 10) if config.peer_host.public_ip else None
    return PeerHost(private_ip=_host(public_subnet, 10), public_ip=public_ip)


def _first_host(cidrs: list[str]) -> str | None:
    if not cidrs:
        return None
    net = ipaddress.IPv4Network(cidrs[0])
    return str(net.network_address + (1 if net.num_addresses > 1 else 0))
