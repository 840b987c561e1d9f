"""The built lab network as data: every namespace, ENI, pod and setting, persisted by the caller as JSON.

A later command (`lab set-env`, `drift`, `cleanup`) reloads it to re-apply SNAT, security groups or peering.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from peerprobe.config import Snat, parse_cidr
from peerprobe.topology import Topology
from peerprobe.vocabulary import Vantage
from peerprobe.vocabulary import VpcKey as VpcKey  # re-exported

GROUP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,24}$")  # becomes an iptables chain "SG-<name>" (<= 28 chars)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecurityGroupRule(_Model):
    """One ingress rule: TCP (a port, a range, or every port) or all traffic, from CIDRs or a group's members."""

    group: str
    protocol: Literal["tcp", "all"] = "tcp"
    port: int | None = Field(default=None, ge=1, le=65535)  # None: every port
    port_to: int | None = Field(default=None, ge=1, le=65535)  # inclusive end of a range
    sources: list[str] = Field(default_factory=list)
    source_group: str | None = None  # the members' addresses; the group's own name for a "self" rule

    @field_validator("sources", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        return [parse_cidr(item) for item in value] if isinstance(value, list) else value

    @field_validator("group", "source_group")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not GROUP_NAME.match(value):
            raise ValueError(f"{value!r}: 1-25 lowercase letters, digits or '-'")
        return value

    @model_validator(mode="after")
    def _shape(self) -> SecurityGroupRule:
        if self.protocol == "all" and self.port is not None:
            raise ValueError("a port needs protocol tcp")
        if self.port_to is not None and (self.port is None or self.port_to < self.port):
            raise ValueError(f"port_to {self.port_to} needs a port <= it")
        if not self.sources and self.source_group is None:
            raise ValueError("a rule needs sources or a source_group")
        return self


class Eni(_Model):
    """An elastic network interface: a veth pair, instance side in `ns`, VPC side in the router namespace."""

    ns: str
    device: str  # eth0, eth1 inside ns
    router_if: str
    ip: str  # the ENI's primary private IPv4
    prefixlen: int  # its subnet's
    gateway: str  # the subnet's VPC router address (.1)
    subnet: Literal["private", "public"]
    secondary_ips: list[str] = Field(default_factory=list)  # assigned to the ENI: the pods it carries
    public_ip: str | None = None  # mapped 1:1 by the internet gateway
    groups: list[str] = Field(default_factory=list)
    source_dest_check: bool = True  # EC2's default; NAT gateways forward for others
    zone: int = 0  # the Availability Zone (index) of its subnet: a transit gateway attachment's zone
    mac: str | None = None  # set where the fabric must know it up front (a branch ENI's, on its VLAN)

    @property
    def addresses(self) -> list[str]:
        return [self.ip, *self.secondary_ips]


class PodNet(_Model):
    name: str  # echo, busybox
    cluster: VpcKey
    node: str  # the node's name
    ns: str
    ip: str
    host_veth: str  # eni<hash>, unaddressed, in the node namespace
    host_mac: str
    eni_device: str  # eth0 or eth1: the ENI whose address the pod holds (vlan.eth.N for a branch ENI)
    # Security groups for pods: the pod's own branch ENI (on EC2 a VLAN of the node's trunk ENI), its VLAN ID
    # (route table 100 + ID) and the enforcing mode (strict: iif rules; standard: the usual IP rules).
    branch: Eni | None = None
    vlan_id: int | None = None
    strict: bool = False
    guest: str = ""  # attach mode: the tag of the visiting experiment whose namespace runs it ("": the lab's own)


class NodeNet(_Model):
    name: str
    cluster: VpcKey
    ns: str
    enis: list[Eni]  # eth0 (primary) first
    pods: list[PodNet] = Field(default_factory=list)

    @property
    def primary(self) -> Eni:
        return self.enis[0]


class VpcNet(_Model):
    key: VpcKey
    cidr: str  # the primary CIDR block
    secondary_cidrs: list[str] = Field(default_factory=list)  # associated blocks (custom networking's pod subnets)
    routed_peer_cidrs: list[str] = Field(default_factory=list)  # the other VPC's blocks this VPC routes to the link
    router_ns: str
    igw_ns: str
    nat: Eni | None = None  # the NAT gateway's ENI (in a public subnet), its public address as public_ip
    cni_version: str  # of the cluster in this VPC
    snat: Snat = Field(default_factory=Snat)  # aws-node's SNAT environment as last applied

    @property
    def cidrs(self) -> list[str]:
        """Every CIDR block of the VPC, primary first: IMDS vpc-ipv4-cidr-blocks as ipamd reads it."""
        return [self.cidr, *self.secondary_cidrs]


class Endpoint(_Model):
    """A ready pod behind a Service: what kube-proxy DNATs to."""

    pod: str
    ip: str
    port: int
    node: str  # the node's name


class KubeService(_Model):
    """One Service as applied to the lab's cluster, with the allocations and endpoints kube-proxy needs."""

    name: str
    namespace: str = "default"
    kind: str  # the report's name: cluster-ip, nodeport, load-balancer, internal-nlb, headless, nginx-nlb
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    cluster_ip: str | None = None  # None: headless, which kube-proxy ignores
    port: int
    target_port: int
    node_port: int | None = None
    health_check_node_port: int | None = None
    local: bool = False  # externalTrafficPolicy: Local
    annotations: dict[str, str] = Field(default_factory=dict)
    source_ranges: list[str] = Field(default_factory=list)
    endpoints: list[Endpoint] = Field(default_factory=list)

    @property
    def port_name(self) -> str:
        """kube-proxy's ServicePortName string: namespace/name (the port is unnamed)."""
        return f"{self.namespace}/{self.name}"


class LbNode(_Model):
    """One load balancer node: an ENI in one zone's subnet, in a namespace of its own.

    `proxy` (Classic ELB) accepts and opens a new connection from its own address; `forward` (NLB) rewrites
    the destination in the kernel and keeps (or, without preservation, replaces) the client's address.
    """

    kind: str  # load-balancer, internal-nlb, nginx-nlb
    zone: str
    eni: Eni
    mode: Literal["proxy", "forward"]
    preserve_client_ip: bool = False
    listener_port: int = 80
    targets: list[str] = Field(default_factory=list)  # "ip:port" in this node's zone (cross-zone off)
    health_port: int | None = None  # None: the traffic port
    health_path: str | None = None  # HTTP health check path; None: a TCP connect
    mark: int  # the VPC router's connmark for this node's flows (the NLB return path)
    healthy: list[str] = Field(default_factory=list)  # targets that passed the last health check
    guest: str = ""  # attach mode: the visiting experiment whose Service made it ("": the lab's own)

    @property
    def ns(self) -> str:
        return self.eni.ns


class Visitor(_Model):
    """Another experiment's namespace on this lab's clusters (attach mode): its pods and Services as the
    owner's API server and CNI placed them (`topology`: the owner's plan with the visitor's pods, allocations
    and load balancers), built into the same data plane."""

    tag: str  # short and unique: in its namespaces' and interfaces' names
    topology: Topology
    services: list[KubeService] = Field(default_factory=list)


class LabNet(_Model):
    """Everything a later process needs to change or remove this environment's network."""

    env_key: str
    prefix: str
    vpcs: dict[VpcKey, VpcNet]
    nodes: list[NodeNet]
    ec2: Eni  # the EC2 web host, in a public subnet of VPC2
    inet_ns: str
    outside_ns: str
    outside_ip: str
    peering: bool
    link: Literal["peering", "transit-gateway"] = "peering"  # what joins the VPCs while `peering` is on
    tgw_ns: str | None = None  # the transit gateway's router namespace (link transit-gateway)
    zones: int = 3  # Availability Zones: one transit gateway attachment per zone and VPC
    security_groups: list[SecurityGroupRule] = Field(default_factory=list)
    load_balancers: list[LbNode] = Field(default_factory=list)

    def namespaces(self) -> list[str]:
        fabric = [ns for vpc in self.vpcs.values() for ns in (vpc.router_ns, vpc.igw_ns)]
        fabric += [vpc.nat.ns for vpc in self.vpcs.values() if vpc.nat]
        nodes = [node.ns for node in self.nodes] + [pod.ns for node in self.nodes for pod in node.pods]
        fabric += [self.tgw_ns] if self.tgw_ns else []
        lbs = [lb.ns for lb in self.load_balancers]
        return [*fabric, self.inet_ns, self.outside_ns, self.ec2.ns, *nodes, *lbs]

    def nodes_of(self, key: VpcKey) -> list[NodeNet]:
        return [node for node in self.nodes if node.cluster == key]

    def enis_of(self, key: VpcKey) -> list[Eni]:
        """Every ENI whose VPC side sits in that VPC's router."""
        enis = [eni for node in self.nodes_of(key) for eni in node.enis]
        enis += [pod.branch for node in self.nodes_of(key) for pod in node.pods if pod.branch]
        enis += [self.ec2] if _inside(self.ec2.ip, self.vpcs[key].cidr) else []
        nat = self.vpcs[key].nat
        lbs = [lb.eni for lb in self.load_balancers if _inside(lb.eni.ip, self.vpcs[key].cidr)]
        return [*enis, *([nat] if nat else []), *lbs]

    def pod(self, cluster: VpcKey, name: str, guest: str = "") -> PodNet:
        return next(p for node in self.nodes_of(cluster) for p in node.pods if p.name == name and p.guest == guest)

    @property
    def echo_ns(self) -> str:
        return self.pod("vpc1", "echo").ns

    def vantage_ns(self, vantage: Vantage, guest: str = "") -> str:
        """The namespace whose network view a vantage has (design.md vocabulary); a visitor's pod vantages are
        its own busybox pods."""
        if vantage == "vpc1-pod":
            return self.pod("vpc1", "busybox", guest).ns
        if vantage == "vpc2-pod":
            return self.pod("vpc2", "busybox", guest).ns
        if vantage == "vpc2-ec2":
            return self.ec2.ns
        return self.outside_ns

    def node_ns(self, name: str) -> str:
        return next(node.ns for node in self.nodes if node.name == name)


def _inside(ip: str, cidr: str) -> bool:
    return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(cidr)
