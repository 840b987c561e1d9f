"""The probe plan: which (vantage, target) cells a topology has, and the address each one dials."""

from __future__ import annotations

from dataclasses import dataclass

from peerprobe.topology import Topology
from peerprobe.vocabulary import Target, Vantage

ECHO_PORT = 8080  # echoserver 1.4 listens on 8080 (its nginx.conf)
SERVICE_PORT = 80  # every Service maps 80 -> 8080, as the workshop exposes them
PEER_HOST_PORT = 80


@dataclass(frozen=True)
class ProbeSpec:
    vantage: Vantage
    target: Target
    host: str  # an IP or a DNS name, exactly what the client puts in the URL
    port: int
    target_node: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def key(self) -> str:
        return f"{self.vantage}/{self.target}" + (f"/{self.target_node}" if self.target_node else "")


def vantages(topology: Topology) -> list[Vantage]:
    """Where probes run; the EC2 host's vantage only when there is a host (peer_host.create)."""
    host: list[Vantage] = ["vpc2-ec2"] if topology.peer_host_created else []
    present: list[Vantage] = ["vpc1-pod", *host, "vpc2-pod"]
    return [*present, "outside"] if topology.outside else present


def plan(topology: Topology) -> list[ProbeSpec]:
    """Every cell of one phase, in report order; targets the topology lacks are left out, not invented."""
    return [spec for vantage in vantages(topology) for spec in _cells(vantage, topology)]


def _cells(vantage: Vantage, topology: Topology) -> list[ProbeSpec]:
    specs = _service_cells(vantage, topology)
    if vantage == "vpc1-pod" and topology.peer_host_created:
        specs += _peer_host_cells(topology)
    if vantage == "outside" and "nginx-nlb" in topology.vpc1.load_balancers:
        specs.append(ProbeSpec(vantage, "nginx-nlb", topology.vpc1.load_balancers["nginx-nlb"], SERVICE_PORT))
    return specs


def _service_cells(vantage: Vantage, topology: Topology) -> list[ProbeSpec]:
    vpc1 = topology.vpc1
    specs: list[ProbeSpec] = []
    if vpc1.echo_pod:
        specs.append(ProbeSpec(vantage, "pod-ip", vpc1.echo_pod.ip, ECHO_PORT))
    if vpc1.cluster_ip:
        specs.append(ProbeSpec(vantage, "cluster-ip", vpc1.cluster_ip, SERVICE_PORT))
    if vpc1.node_port:
        specs += [ProbeSpec(vantage, "node-port", n.ip, vpc1.node_port, n.name) for n in vpc1.nodes]
    lb_kinds: tuple[Target, ...] = ("load-balancer", "internal-nlb")
    for kind in lb_kinds:
        if kind in vpc1.load_balancers:
            specs.append(ProbeSpec(vantage, kind, vpc1.load_balancers[kind], SERVICE_PORT))
    if vpc1.headless_name:
        # Headless Services get no port mapping (kube-proxy ignores them), so the probe dials the pod port.
        specs.append(ProbeSpec(vantage, "headless", vpc1.headless_name, ECHO_PORT))
    return specs


def _peer_host_cells(topology: Topology) -> list[ProbeSpec]:
    host = topology.peer_host
    specs = [ProbeSpec("vpc1-pod", "peer-host", host.private_ip, PEER_HOST_PORT)]
    if host.public_ip:
        specs.append(ProbeSpec("vpc1-pod", "peer-host-public", host.public_ip, PEER_HOST_PORT))
    return specs
