"""Attach mode's facts: what was read from a cluster that someone else runs (design.md, "Existing clusters
(attach)"), the config the model predicts from (the file's values replaced by what was read), and the
`config_diff` of where the file disagrees with the live cluster. Pure: the adapters do the reading.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from peerprobe import aws_node
from peerprobe.config import ExperimentConfig, Phase, PhaseSnat, Snat
from peerprobe.topology import Node

VpcKey = Literal["vpc1", "vpc2"]
KUBE_PROXY_UNKNOWN = "unknown"


@dataclass(frozen=True)
class FoundSubnet:
    id: str
    cidr: str
    availability_zone: str
    public: bool  # its route table sends 0.0.0.0/0 to an internet gateway
    route_table: str = ""  # the table it uses: its own, else the VPC's main one


@dataclass(frozen=True)
class FoundCluster:
    """One attached cluster and its network as read, never as configured."""

    key: VpcKey
    name: str
    status: str
    kubernetes_version: str
    service_cidr: str
    vpc_id: str
    vpc_cidr: str
    secondary_cidrs: tuple[str, ...]
    subnets: tuple[FoundSubnet, ...]
    cluster_security_group: str
    nodes: tuple[Node, ...]
    cni_version: str
    aws_node_env: Mapping[str, str]
    kube_proxy_mode: str
    nat_gateways: tuple[str, ...]  # public IPs of the VPC's available NAT gateways
    peerings: tuple[str, ...]  # "pcx-… active 172.16.0.0/16<->192.168.0.0/16"
    transit_gateway_attachments: tuple[str, ...]  # "tgw-attach-… tgw-… available"
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # route table id -> "dest -> target"
    security_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group id -> rule texts

    @property
    def snat(self) -> Snat:
        return aws_node.snat_from_env(self.aws_node_env)

    @property
    def node_subnets(self) -> Literal["private", "public"]:
        """Where the nodes sit: public when every node has a public IP (its own way out, no NAT gateway)."""
        return "public" if self.nodes and all(n.public_ip for n in self.nodes) else "private"

    def topology(self) -> dict[str, Any]:
        """What the report's `topology.<key>.read` says was read (no credentials: ids, addresses, settings)."""
        return {
            "cluster": self.name,
            "status": self.status,
            "kubernetes_version": self.kubernetes_version,
            "service_cidr": self.service_cidr,
            "vpc": {"id": self.vpc_id, "cidr": self.vpc_cidr, "secondary_cidrs": list(self.secondary_cidrs)},
            "subnets": [
                {"id": s.id, "cidr": s.cidr, "az": s.availability_zone, "public": s.public} for s in self.subnets
            ],
            "nodes": [{"name": n.name, "ip": n.ip, "public_ip": n.public_ip} for n in self.nodes],
            "cni_version": self.cni_version,
            "aws_node_snat": {aws_node.EXTERNAL_SNAT: self.aws_node_env.get(aws_node.EXTERNAL_SNAT)}
            | {aws_node.EXCLUDE_SNAT_CIDRS: self.aws_node_env.get(aws_node.EXCLUDE_SNAT_CIDRS)},
            "kube_proxy_mode": self.kube_proxy_mode,
            "cluster_security_group": self.cluster_security_group,
            "security_groups": {group: list(rules) for group, rules in self.security_groups.items()},
            "nat_gateways": list(self.nat_gateways),
            "peerings": list(self.peerings),
            "transit_gateway_attachments": list(self.transit_gateway_attachments),
            "routes": {table: list(routes) for table, routes in self.routes.items()},
        }


def peering_via(found: Mapping[VpcKey, FoundCluster]) -> Literal["peering", "transit-gateway"] | None:
    """How the two VPCs are linked as read: an active peering between them, else transit gateway attachments
    of both; None when neither (or only one cluster was read)."""
    if len(found) < 2:
        return None
    vpc1, vpc2 = found["vpc1"], found["vpc2"]
    if any(vpc2.vpc_id in p or vpc2.vpc_cidr in p for p in vpc1.peerings if " active " in p):
        return "peering"
    if vpc1.transit_gateway_attachments and vpc2.transit_gateway_attachments:
        return "transit-gateway"
    return None


def _cluster_values(found: FoundCluster) -> dict[str, Any]:
    """The config keys (relative to the root) that a read cluster answers, with the value read."""
    key = found.key
    values: dict[str, Any] = {
        f"vpcs.{key}.cidr": found.vpc_cidr,
        f"vpcs.{key}.secondary_cidrs": list(found.secondary_cidrs),
        f"vpcs.{key}.nat_gateway": bool(found.nat_gateways),
    }
    if found.nodes:  # a cluster with no node yet says nothing about where its nodes sit
        values[f"clusters.{key}.nodes"] = len(found.nodes)
        values[f"clusters.{key}.node_subnets"] = found.node_subnets
    if found.service_cidr:
        values[f"clusters.{key}.service_cidr"] = found.service_cidr
    if found.cni_version:
        values[f"clusters.{key}.cni_version"] = found.cni_version
    return values


ECHO_PORT = 8080  # the echo server's port (probes/plan.py): what a pod-ip probe from the peer needs open
NODE_PORTS = (30000, 32767)  # Kubernetes' default --service-node-port-range
_RULE = re.compile(r"^(\S+)/(-?\d+)-(-?\d+) from (\S+)$")


def peer_ports(found: Mapping[VpcKey, FoundCluster]) -> list[int | str] | None:
    """What VPC1's cluster security group, as read, opens to VPC2's CIDR, as `security_groups.open_from_peer`
    entries: single ports as they are, the echo port inside a wider range, and `nodeport` when a rule spans the
    whole NodePort range (or all traffic); None unless both clusters were read. Whoever wrote the rule."""
    if "vpc1" not in found or "vpc2" not in found:
        return None
    peer = ipaddress.IPv4Network(found["vpc2"].vpc_cidr)
    ports: dict[int | str, None] = {}
    for rules in found["vpc1"].security_groups.values():
        for text in rules:
            rule = _RULE.match(text)
            if rule is None or not _covers(rule.group(4), peer) or rule.group(1) not in ("tcp", "-1"):
                continue
            low, high = int(rule.group(2)), int(rule.group(3))
            if rule.group(1) == "-1" or (low <= 0 and high >= 65535):
                ports |= {ECHO_PORT: None, "nodeport": None}
            elif low == high:
                ports[low] = None
            else:
                ports |= {ECHO_PORT: None} if low <= ECHO_PORT <= high else {}
                ports |= {"nodeport": None} if low <= NODE_PORTS[0] and high >= NODE_PORTS[1] else {}
    return list(ports)


def _covers(source: str, peer: ipaddress.IPv4Network) -> bool:
    try:
        return peer.subnet_of(ipaddress.IPv4Network(source))
    except ValueError:  # a source security group, not a CIDR
        return False


def read_values(config: ExperimentConfig, found: Mapping[VpcKey, FoundCluster]) -> dict[str, Any]:
    """Every config key the reading answers, dotted path -> value read."""
    values: dict[str, Any] = {}
    for cluster in found.values():
        values |= _cluster_values(cluster)
    via = peering_via(found)
    if via is not None:
        values["peering.via"] = via
    elif len(found) == 2 and config.peering.enabled:
        values["peering.enabled"] = False
    return values


def _get(config: ExperimentConfig, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def config_diff(config: ExperimentConfig, found: Mapping[VpcKey, FoundCluster]) -> list[dict[str, Any]]:
    """Where the config file disagrees with what was read, as the report's `config_diff` entries:
    ``{path, config, live, text}``, sorted by path."""
    entries = []
    for path, value in sorted(read_values(config, found).items()):
        configured = _get(config, path)
        if configured != value and not _same_version(path, configured, value):
            text = f"{path}: the config says {configured!r}, the cluster has {value!r}"
            entries.append({"path": path, "config": configured, "live": value, "text": text})
    return entries


def _same_version(path: str, configured: object, found: object) -> bool:
    return path.endswith(".cni_version") and str(configured).removeprefix("v") == str(found).removeprefix("v")


def as_read(config: ExperimentConfig, found: Mapping[VpcKey, FoundCluster]) -> ExperimentConfig:
    """The config the model predicts from: the file's values where nothing was read, what was read elsewhere,
    and each attached cluster's SNAT as found in the phases that leave aws-node alone."""
    data = config.model_dump(mode="python", exclude={"phases"})
    for path, value in read_values(config, found).items():
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    ports = peer_ports(found)
    if ports is not None:  # what the cluster's group already opens, beside what peerprobe will open
        opened = data["security_groups"]["open_from_peer"]
        data["security_groups"]["open_from_peer"] = list(dict.fromkeys([*opened, *ports]))
    data["phases"] = [_phase_as_read(config, phase, found) for phase in config.phases]
    # No re-validation: what was read is a fact, even where the file's rules (node counts a plan fits,
    # CNI versions EKS offers today) would refuse it.
    return ExperimentConfig.model_construct(**_built(data))


def _phase_as_read(config: ExperimentConfig, phase: Phase, found: Mapping[VpcKey, FoundCluster]) -> Phase:
    keys: tuple[VpcKey, ...] = ("vpc1", "vpc2")
    snat = {
        key: (found[key].snat if key in found and config.phase_snat(phase, key) is None else getattr(phase.snat, key))
        for key in keys
    }
    return Phase(name=phase.name, snat=PhaseSnat(**snat))


def _built(data: dict[str, Any]) -> dict[str, Any]:
    """`data`'s sections as the config's models (model_construct does not build nested models)."""
    fields = ExperimentConfig.model_fields
    built: dict[str, Any] = {}
    for name, value in data.items():
        annotation = fields[name].annotation
        if isinstance(value, dict) and isinstance(annotation, type) and hasattr(annotation, "model_validate"):
            built[name] = annotation.model_validate(value)
        else:
            built[name] = value
    return built
