"""Attach mode's reading of a cluster someone else runs: EKS, its VPC, subnets, route tables, NAT gateways,
peering and transit gateway attachments, security group rules, and from its API the nodes, aws-node and
kube-proxy. Describe/Get/List calls only: nothing here creates, changes or deletes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
import yaml

from peerprobe.attach import KUBE_PROXY_UNKNOWN, FoundCluster, FoundSubnet, VpcKey
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws.cloud import AwsCloud
from peerprobe.backends.aws.kube import KubeCluster, kube_errors
from peerprobe.backends.ports import ClusterReader
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, NotFoundError
from peerprobe.topology import Node

log = structlog.get_logger()
# EKS's kube-proxy add-on keeps its KubeProxyConfiguration in this ConfigMap (key `config`); a blank `mode`
# means iptables on Linux (kube-proxy configuration reference, KubeProxyConfiguration.mode).
KUBE_PROXY_CONFIG = ("kube-system", "kube-proxy-config")
DEFAULT_PROXY_MODE = "iptables"


def read_cluster(cloud: AwsCloud, connect: Callable[[], ClusterReader], *, key: VpcKey, name: str) -> FoundCluster:
    """Everything attach mode reads of cluster `name` (design.md, "Existing clusters (attach)"); EKS first,
    so a cluster that is not there is said so before connecting to its API."""
    raw = _describe_cluster(cloud, name, key)
    kube = connect()
    vpc_config = raw.get("resourcesVpcConfig", {})
    vpc_id = str(vpc_config.get("vpcId", ""))
    vpc = _vpc(cloud, vpc_id)
    tables = _route_tables(cloud, vpc_id)
    env = kube.aws_node_env()
    found = FoundCluster(
        key=key,
        name=name,
        status=str(raw.get("status", "")),
        kubernetes_version=str(raw.get("version", "")),
        service_cidr=str(raw.get("kubernetesNetworkConfig", {}).get("serviceIpv4Cidr", "")),
        vpc_id=vpc_id,
        vpc_cidr=str(vpc["CidrBlock"]),
        secondary_cidrs=_secondary_cidrs(vpc),
        subnets=_subnets(cloud, vpc_id, tables),
        cluster_security_group=str(vpc_config.get("clusterSecurityGroupId", "")),
        nodes=tuple(kube.nodes()),
        cni_version=kube.cni_version(),
        aws_node_env=env,
        kube_proxy_mode=kube.kube_proxy_mode(),
        nat_gateways=_nat_gateways(cloud, vpc_id),
        peerings=_peerings(cloud, vpc_id),
        transit_gateway_attachments=_transit_gateway_attachments(cloud, vpc_id),
        routes={str(t["RouteTableId"]): _route_texts(t) for t in tables},
        security_groups=_group_rules(cloud, str(vpc_config.get("clusterSecurityGroupId", ""))),
    )
    log.info("attach.read", cluster=name, vpc=vpc_id, nodes=len(found.nodes), cni_version=found.cni_version)
    return found


def _describe_cluster(cloud: AwsCloud, name: str, key: VpcKey) -> dict[str, Any]:
    try:
        with aws_errors("eks cluster", name):
            return dict(cloud.eks.describe_cluster(name=name)["cluster"])
    except NotFoundError:
        raise ConfigError(
            f"clusters.{key}.name, clusters.{key}.existing: no EKS cluster {name!r} in {cloud.clients.region} "
            "to attach to"
        ) from None


def _vpc(cloud: AwsCloud, vpc_id: str) -> dict[str, Any]:
    with aws_errors("vpc", vpc_id):
        vpcs = cloud.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    if not vpcs:
        raise NotFoundError(f"vpc {vpc_id}: not found", resource="vpc", resource_id=vpc_id, state="absent")
    return dict(vpcs[0])


def _secondary_cidrs(vpc: dict[str, Any]) -> tuple[str, ...]:
    blocks = [
        str(b["CidrBlock"])
        for b in vpc.get("CidrBlockAssociationSet", [])
        if b.get("CidrBlockState", {}).get("State", "associated") == "associated"
    ]
    return tuple(b for b in blocks if b != vpc["CidrBlock"])


def _by_vpc(vpc_id: str) -> list[dict[str, Any]]:
    return [{"Name": "vpc-id", "Values": [vpc_id]}]


def _route_tables(cloud: AwsCloud, vpc_id: str) -> list[dict[str, Any]]:
    with aws_errors("route tables", vpc_id):
        return list(cloud.ec2.describe_route_tables(Filters=_by_vpc(vpc_id))["RouteTables"])


def _route_texts(table: dict[str, Any]) -> tuple[str, ...]:
    texts = []
    for route in table.get("Routes", []):
        destination = route.get("DestinationCidrBlock")
        target = next((str(route[k]) for k in _TARGETS if route.get(k)), "")
        if destination:
            texts.append(f"{destination} -> {target or 'unknown'}")
    return tuple(sorted(texts))


_TARGETS = ("GatewayId", "NatGatewayId", "VpcPeeringConnectionId", "TransitGatewayId", "NetworkInterfaceId")


def _subnets(cloud: AwsCloud, vpc_id: str, tables: list[dict[str, Any]]) -> tuple[FoundSubnet, ...]:
    """Each subnet, public when its route table (explicit, else the VPC's main one) has a default route to an
    internet gateway (VPC user guide, "Subnet types")."""
    with aws_errors("subnets", vpc_id):
        raw = cloud.ec2.describe_subnets(Filters=_by_vpc(vpc_id))["Subnets"]
    explicit = {
        str(a["SubnetId"]): table for table in tables for a in table.get("Associations", []) if a.get("SubnetId")
    }
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), {})
    return tuple(
        FoundSubnet(
            id=str(s["SubnetId"]),
            cidr=str(s["CidrBlock"]),
            availability_zone=str(s["AvailabilityZone"]),
            public=_to_internet(explicit.get(str(s["SubnetId"]), main)),
            route_table=str(explicit.get(str(s["SubnetId"]), main).get("RouteTableId", "")),
        )
        for s in sorted(raw, key=lambda s: str(s["SubnetId"]))
    )


def _to_internet(table: dict[str, Any]) -> bool:
    return any(
        r.get("DestinationCidrBlock") == "0.0.0.0/0" and str(r.get("GatewayId", "")).startswith("igw-")
        for r in table.get("Routes", [])
    )


def _nat_gateways(cloud: AwsCloud, vpc_id: str) -> tuple[str, ...]:
    with aws_errors("nat gateways", vpc_id):
        raw = cloud.ec2.describe_nat_gateways(Filters=_by_vpc(vpc_id))["NatGateways"]
    return tuple(
        sorted(
            str(address["PublicIp"])
            for gateway in raw
            if gateway.get("State") == "available"
            for address in gateway.get("NatGatewayAddresses", [])
            if address.get("PublicIp")
        )
    )


def _peerings(cloud: AwsCloud, vpc_id: str) -> tuple[str, ...]:
    found = []
    for side in ("requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"):
        with aws_errors("vpc peerings", vpc_id):
            raw = cloud.ec2.describe_vpc_peering_connections(Filters=[{"Name": side, "Values": [vpc_id]}])
        for peering in raw["VpcPeeringConnections"]:
            requester, accepter = peering["RequesterVpcInfo"], peering["AccepterVpcInfo"]
            sides = (f"{info['VpcId']} {info.get('CidrBlock', '')}" for info in (requester, accepter))
            found.append(f"{peering['VpcPeeringConnectionId']} {peering['Status']['Code']} {'<->'.join(sides)}")
    return tuple(sorted(set(found)))


def _transit_gateway_attachments(cloud: AwsCloud, vpc_id: str) -> tuple[str, ...]:
    with aws_errors("transit gateway attachments", vpc_id):
        raw = cloud.ec2.describe_transit_gateway_vpc_attachments(Filters=_by_vpc(vpc_id))
    return tuple(
        sorted(
            f"{a['TransitGatewayAttachmentId']} {a['TransitGatewayId']} {a.get('State', '')}"
            for a in raw.get("TransitGatewayVpcAttachments", [])
            if a.get("State") not in ("deleted", "deleting")
        )
    )


def _group_rules(cloud: AwsCloud, group_id: str) -> dict[str, tuple[str, ...]]:
    if not group_id:
        return {}
    try:
        rules = cloud.ingress_rules(group_id)
    except NotFoundError:
        return {group_id: ("absent",)}
    texts = (f"{r.protocol}/{r.from_port}-{r.to_port} from {r.cidr or r.source_group}" for r in rules)
    return {group_id: tuple(sorted(texts))}


def kube_proxy_mode(kube: KubeCluster) -> str:
    """kube-proxy's mode from its ConfigMap; `unknown` when the cluster has none (a self-managed kube-proxy)."""
    namespace, name = KUBE_PROXY_CONFIG
    try:
        with kube_errors("configmap", f"{namespace}/{name}"):
            config_map = kube.core.read_namespaced_config_map(name, namespace)
    except NotFoundError:
        return KUBE_PROXY_UNKNOWN
    text = (config_map.data or {}).get("config", "")
    try:
        document = yaml.safe_load(text) if text else {}
    except yaml.YAMLError:
        return KUBE_PROXY_UNKNOWN
    mode = document.get("mode") if isinstance(document, dict) else None
    return str(mode) if mode else DEFAULT_PROXY_MODE


class KubeReader:
    """The ClusterReader of a cluster reached through its API with the kubernetes client."""

    def __init__(self, kube: KubeCluster) -> None:
        self.kube = kube

    def nodes(self) -> list[Node]:
        return self.kube.nodes()

    def aws_node_env(self) -> dict[str, str]:
        return self.kube.aws_node_env()

    def cni_version(self) -> str:
        return self.kube.cni_version()

    def kube_proxy_mode(self) -> str:
        return kube_proxy_mode(self.kube)


def read_attached(
    cloud: AwsCloud, kube: Callable[[VpcKey], KubeCluster], config: ExperimentConfig
) -> dict[VpcKey, FoundCluster]:
    """Each attached cluster of `config` as read through its API (the created ones are not read: peerprobe made
    them)."""
    return read_each(cloud, lambda key: KubeReader(kube(key)), config)


def read_each(
    cloud: AwsCloud, reader: Callable[[VpcKey], ClusterReader], config: ExperimentConfig
) -> dict[VpcKey, FoundCluster]:
    """Each attached cluster of `config` as read, its API side through `reader` (the lab: the owner's state)."""
    keys: tuple[VpcKey, ...] = ("vpc1", "vpc2")
    return {
        key: read_cluster(cloud, partial(reader, key), key=key, name=getattr(config.clusters, key).name)
        for key in keys
        if config.attached(key)
    }
