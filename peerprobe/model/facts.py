"""The facts one phase's expectations depend on: the config's knobs, the topology and the phase's SNAT env."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from peerprobe.config import Cluster, ExperimentConfig, PhaseSnat, Snat
from peerprobe.topology import ClusterTopology, Node, Topology
from peerprobe.vocabulary import VpcKey as VpcKey  # re-exported

T = TypeVar("T")


@dataclass(frozen=True)
class Facts:
    config: ExperimentConfig
    topology: Topology
    snat: PhaseSnat
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def memo(self, name: str, compute: Callable[[], T]) -> T:
        """Derived facts computed once per phase (security-group rules are asked for by every cell)."""
        if name not in self._memo:
            self._memo[name] = compute()
        value: T = self._memo[name]
        return value

    def cluster(self, key: VpcKey) -> Cluster:
        return self.config.clusters.vpc1 if key == "vpc1" else self.config.clusters.vpc2

    def snat_of(self, key: VpcKey) -> Snat:
        return self.snat.vpc1 if key == "vpc1" else self.snat.vpc2

    def side(self, key: VpcKey) -> ClusterTopology:
        return self.topology.vpc1 if key == "vpc1" else self.topology.vpc2

    def cidr(self, key: VpcKey) -> ipaddress.IPv4Network:
        """The VPC's primary CIDR block."""
        return ipaddress.IPv4Network(self.side(key).cidr)

    def cidrs(self, key: VpcKey) -> list[ipaddress.IPv4Network]:
        """Every CIDR block of the VPC, the primary first (the secondary blocks as the config associates them)."""
        secondary = self.config.vpcs.vpc1 if key == "vpc1" else self.config.vpcs.vpc2
        return [self.cidr(key), *(ipaddress.IPv4Network(c) for c in secondary.secondary_cidrs)]

    def routed(self, key: VpcKey) -> list[ipaddress.IPv4Network]:
        """The blocks of VPC ``key`` that the other VPC's route tables send to the link (peering.route_cidrs)."""
        return self.cidrs(key) if self.config.peering.route_cidrs == "all" else [self.cidr(key)]

    def block_of(self, ip: str) -> tuple[VpcKey, ipaddress.IPv4Network] | None:
        """The VPC and the CIDR block an address is in, or None outside both VPCs."""
        address = ipaddress.IPv4Address(ip)
        keys: tuple[VpcKey, ...] = ("vpc1", "vpc2")
        found = ((key, net) for key in keys for net in self.cidrs(key) if address in net)
        return next(found, None)

    def vpc_of(self, ip: str) -> VpcKey | None:
        found = self.block_of(ip)
        return found[0] if found else None

    def cidrs_text(self, key: VpcKey) -> str:
        """The VPC's blocks for an explanation: the primary alone reads as before."""
        blocks = self.cidrs(key)
        return str(blocks[0]) if len(blocks) == 1 else "CIDRs " + ", ".join(str(b) for b in blocks)

    def branch_eni(self, key: VpcKey, pod: str) -> bool:
        """Whether a SecurityGroupPolicy gives the cluster's ``pod`` (echo, busybox) a branch ENI."""
        return self.cluster(key).branch_eni(pod)

    def strict(self, key: VpcKey) -> bool:
        groups = self.cluster(key).pod_security_groups
        return groups is not None and groups.mode == "strict"

    def nat_gateway(self, key: VpcKey) -> str | None:
        return self.side(key).nat_gateway

    @cached_property
    def echo_node(self) -> Node:
        echo = self.topology.vpc1.echo_pod
        assert echo is not None, "the model needs the echo pod"
        return self.topology.vpc1.node(echo.node)

    @cached_property
    def vpc1_client_node(self) -> Node:
        busybox = self.topology.vpc1.busybox_pod
        assert busybox is not None, "the model needs the VPC1 busybox"
        return self.topology.vpc1.node(busybox.node)

    @cached_property
    def source_ranges(self) -> tuple[ipaddress.IPv4Network, ...]:
        """loadBalancerSourceRanges the manifests carry: the experiment's own sources, never 0.0.0.0/0."""
        return tuple(ipaddress.IPv4Network(cidr) for cidr in lb_source_ranges(self.config, self.topology))


def lb_source_ranges(config: ExperimentConfig, topology: Topology) -> list[str]:
    """Both VPCs' CIDR blocks, the experiment's public addresses (NAT gateways, public nodes, the EC2 host) and
    the outside client; the Services of type LoadBalancer carry exactly these (design.md principles)."""
    cidrs = [topology.vpc1.cidr, topology.vpc2.cidr]
    cidrs += [*config.vpcs.vpc1.secondary_cidrs, *config.vpcs.vpc2.secondary_cidrs]
    public = [topology.vpc1.nat_gateway, topology.vpc2.nat_gateway, topology.peer_host.public_ip]
    public += [node.public_ip for side in (topology.vpc1, topology.vpc2) for node in side.nodes]
    cidrs += [f"{ip}/32" for ip in public if ip]
    cidrs += list(config.outside_cidrs)
    if topology.outside and not any(_covers(c, topology.outside) for c in cidrs):
        cidrs.append(f"{topology.outside}/32")
    return list(dict.fromkeys(cidrs))


def _covers(cidr: str, ip: str) -> bool:
    return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(cidr)
