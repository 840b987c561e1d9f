"""From the topology plan and the config to a `LabNet`: which namespace, ENI and address everything gets. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Literal

from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net.model import Eni, LabNet, NodeNet, PodNet, SecurityGroupRule, Visitor, VpcKey, VpcNet
from peerprobe.config import AZ_COUNT, Cluster, ExperimentConfig, Snat, Vpc
from peerprobe.topology import ClusterTopology, Node, Pod, Topology, pod_subnets, subnets
from peerprobe.vocabulary import VPC_KEYS

NAT_GATEWAY_OFFSET = 5  # in the first public subnet; .0-.3 are AWS's, nodes start at FIRST_HOST, LBs at 6-8
PEER_HOST_GROUP = "peer-host"


def node_group(cluster: VpcKey) -> str:
    """The cluster security group every node ENI (and so every pod) of that cluster carries."""
    return f"{cluster}-nodes"


def pod_group(cluster: VpcKey) -> str:
    """peerprobe's own security group for the pods a SecurityGroupPolicy selects (on their branch ENIs)."""
    return f"{cluster}-pods"


def layout(
    env_key: str,
    config: ExperimentConfig,
    topology: Topology,
    *,
    snat: dict[VpcKey, Snat],
    security_groups: list[SecurityGroupRule],
    peering: bool,
    visitors: Sequence[Visitor] = (),
) -> LabNet:
    pre = names.prefix(env_key)
    vpcs = {key: _vpc(pre, key, config, topology, snat.get(key, Snat())) for key in VPC_KEYS}
    nodes = [node for key in VPC_KEYS for node in _nodes(pre, key, config, topology, visitors)]
    return LabNet(
        env_key=env_key,
        prefix=pre,
        vpcs=vpcs,
        nodes=nodes,
        ec2=_ec2(pre, config, topology),
        inet_ns=names.inet_ns(pre),
        outside_ns=names.outside_ns(pre),
        outside_ip=topology.outside or "",
        peering=peering,
        link=config.peering.via,
        tgw_ns=names.tgw_ns(pre) if config.peering.via == "transit-gateway" else None,
        zones=AZ_COUNT,
        security_groups=security_groups,
    )


def _side(topology: Topology, key: VpcKey) -> ClusterTopology:
    return topology.vpc1 if key == "vpc1" else topology.vpc2


def _vpc_config(config: ExperimentConfig, key: VpcKey) -> Vpc:
    return config.vpcs.vpc1 if key == "vpc1" else config.vpcs.vpc2


def _vpc(pre: str, key: VpcKey, config: ExperimentConfig, topology: Topology, snat: Snat) -> VpcNet:
    vpc = _vpc_config(config, key)
    cluster = config.clusters.vpc1 if key == "vpc1" else config.clusters.vpc2
    side = _side(topology, key)
    nat = _nat_eni(pre, key, vpc, side.nat_gateway) if side.nat_gateway else None
    peer = _vpc_config(config, "vpc2" if key == "vpc1" else "vpc1")
    # peering.route_cidrs: which of the other VPC's blocks this VPC's route tables send to the link.
    routed = [peer.cidr, *peer.secondary_cidrs] if config.peering.route_cidrs == "all" else [peer.cidr]
    return VpcNet(
        key=key,
        cidr=vpc.cidr,
        secondary_cidrs=list(vpc.secondary_cidrs),
        routed_peer_cidrs=routed,
        router_ns=names.router_ns(pre, key),
        igw_ns=names.igw_ns(pre, key),
        nat=nat,
        cni_version=cluster.cni_version,
        snat=snat,
    )


def _nat_eni(pre: str, key: VpcKey, vpc: Vpc, public_ip: str) -> Eni:
    # A NAT gateway is an ENI in a public subnet whose private address the internet gateway maps to its
    # Elastic IP; it forwards for others, so EC2's source/destination check does not apply to it.
    subnet = subnets(vpc)["public"][0]
    ip = str(subnet.network_address + NAT_GATEWAY_OFFSET)
    return _eni(
        names.nat_ns(pre, key),
        "eth0",
        "nate0",
        ip,
        subnet,
        "public",
        public_ip=public_ip,
        source_dest_check=False,
        zone=0,
    )


def _ec2(pre: str, config: ExperimentConfig, topology: Topology) -> Eni:
    host = topology.peer_host
    subnet, kind = subnet_of(host.private_ip, config.vpcs.vpc2)
    zone = zone_of(host.private_ip, config.vpcs.vpc2)
    return _eni(
        names.ec2_ns(pre),
        "eth0",
        "ec2e0",
        host.private_ip,
        subnet,
        kind,
        public_ip=host.public_ip,
        groups=[PEER_HOST_GROUP],
        zone=zone,
    )


def _eni(
    ns: str,
    device: str,
    router_if: str,
    ip: str,
    subnet: ipaddress.IPv4Network,
    kind: Literal["private", "public"],
    **extra: object,
) -> Eni:
    gateway = str(subnet.network_address + 1)  # the VPC router answers at the subnet's first host address
    return Eni.model_validate(
        {
            "ns": ns,
            "device": device,
            "router_if": router_if,
            "ip": ip,
            "prefixlen": subnet.prefixlen,
            "gateway": gateway,
            "subnet": kind,
            **extra,
        }
    )


def subnet_of(
    ip: str, vpc: Vpc, cluster: Cluster | None = None
) -> tuple[ipaddress.IPv4Network, Literal["private", "public"]]:
    """The subnet holding `ip` and the route table it uses: custom networking's pod subnets route like the
    cluster's node subnets (docs/model.md: the backends build them so)."""
    address = ipaddress.IPv4Address(ip)
    layout_ = subnets(vpc)
    for kind in ("private", "public"):
        for subnet in layout_[kind]:
            if address in subnet:
                return subnet, kind
    for subnet in _pod_subnets(cluster):
        if address in subnet and cluster is not None:
            return subnet, cluster.node_subnets
    raise ValueError(f"{ip} is in no subnet of {vpc.cidr}")


def zone_of(ip: str, vpc: Vpc, cluster: Cluster | None = None) -> int:
    """The zone index of the subnet holding `ip`: subnets (and pod subnets) are laid out one per zone in order."""
    address = ipaddress.IPv4Address(ip)
    layout_ = subnets(vpc)
    for group in (layout_["public"], layout_["private"], _pod_subnets(cluster)):
        for index, subnet in enumerate(group):
            if address in subnet:
                return index
    raise ValueError(f"{ip} is in no subnet of {vpc.cidr}")


def _pod_subnets(cluster: Cluster | None) -> list[ipaddress.IPv4Network]:
    custom = cluster.custom_networking if cluster is not None else None
    return pod_subnets(custom.cidr) if custom is not None and custom.enabled and custom.cidr else []


def _nodes(
    pre: str, key: VpcKey, config: ExperimentConfig, topology: Topology, visitors: Sequence[Visitor]
) -> list[NodeNet]:
    """The cluster's nodes with their pods: the lab's own, then each visitor's (attach mode) beside them."""
    side = _side(topology, key)
    pods = [(name, pod, "") for name, pod in _pods(side)]
    pods += [(name, pod, v.tag) for v in visitors for name, pod in _pods(_side(v.topology, key))]
    cluster = config.clusters.vpc1 if key == "vpc1" else config.clusters.vpc2
    vpc = _vpc_config(config, key)
    return [
        _node(pre, key, index, node, [p for p in pods if p[1].node == node.name], vpc, cluster)
        for index, node in enumerate(side.nodes)
    ]


def _pods(side: ClusterTopology) -> list[tuple[str, Pod]]:
    found = (("echo", side.echo_pod), ("busybox", side.busybox_pod), ("nginx", side.nginx_pod))
    return [(name, pod) for name, pod in found if pod is not None]


def _node(
    pre: str, key: VpcKey, index: int, node: Node, pods: list[tuple[str, Pod, str]], vpc: Vpc, cluster: Cluster
) -> NodeNet:
    # Custom networking puts every pod on a secondary ENI, whatever pod_eni says (config.pods_on_secondary_eni).
    secondary = cluster.pods_on_secondary_eni
    subnet, kind = subnet_of(node.ip, vpc)
    zone = zone_of(node.ip, vpc)
    ns = names.node_ns(pre, key, index)
    # A branch-ENI pod's address is its branch ENI's, not a secondary address of the node's ENIs.
    # A visitor's pods are not the SecurityGroupPolicy's (it selects in the lab's own namespace).
    vlans = {name: n + 1 for n, name in enumerate(name for name, _, g in pods if not g and cluster.branch_eni(name))}
    pod_ips = [pod.ip for name, pod, guest in pods if guest or name not in vlans]
    group = [node_group(key)]  # secondary ENIs get the primary ENI's groups (awsutils.go, behaviour.md 4)
    eth0 = _eni(
        ns,
        "eth0",
        names.eni_router_if(index, 0),
        node.ip,
        subnet,
        kind,
        public_ip=node.public_ip,
        groups=group,
        secondary_ips=[] if secondary else pod_ips,
        zone=zone,
    )
    enis = [eth0]
    if secondary:
        # With custom networking the secondary ENI is created in the ENIConfig subnet of the node's zone, with
        # the ENIConfig's groups (the cluster group; docs/model.md), so the pods' addresses come from there.
        eni_subnet, eni_kind = subnet_of(node.addresses[1], vpc, cluster)
        enis.append(
            _eni(
                ns,
                "eth1",
                names.eni_router_if(index, 1),
                node.addresses[1],
                eni_subnet,
                eni_kind,
                groups=group,
                secondary_ips=pod_ips,
                zone=zone_of(node.addresses[1], vpc, cluster),
            )
        )
    device = "eth1" if secondary else "eth0"
    pod_nets = [
        _branch_pod(pre, key, index, name, pod, vpc, cluster, vlans[name])
        if name in vlans and not guest
        else _pod(pre, key, name, pod, device, guest)
        for name, pod, guest in pods
    ]
    return NodeNet(name=node.name, cluster=key, ns=ns, enis=enis, pods=pod_nets)


def _pod(pre: str, key: VpcKey, name: str, pod: Pod, device: str, guest: str = "") -> PodNet:
    unique = f"{name}-{guest}" if guest else name  # a visitor's pod of the same app beside the lab's own
    veth = names.host_veth(key, unique)
    return PodNet(
        name=name,
        cluster=key,
        node=pod.node,
        ns=names.pod_ns(pre, key, unique),
        ip=pod.ip,
        host_veth=veth,
        host_mac=names.mac(pre, key, veth),
        eni_device=device,
        guest=guest,
    )


def _branch_pod(
    pre: str, key: VpcKey, index: int, name: str, pod: Pod, vpc: Vpc, cluster: Cluster, vlan_id: int
) -> PodNet:
    """A pod on a branch ENI: the resource controller creates the ENI in the node's subnet (the ENIConfig's
    with custom networking) with the SecurityGroupPolicy's groups, and the CNI reaches it through a VLAN of the
    trunk ENI (trunk.go, driver.go SetupBranchENIPodNetwork)."""
    groups = cluster.pod_security_groups
    assert groups is not None  # branch_eni(name) held
    strict = groups.mode == "strict"
    subnet, kind = subnet_of(pod.ip, vpc, cluster)
    device = names.vlan_device(vlan_id)
    branch = _eni(
        names.node_ns(pre, key, index),
        device,
        names.branch_router_if(index, vlan_id),
        pod.ip,
        subnet,
        kind,
        groups=[pod_group(key), *([node_group(key)] if groups.include_cluster_sg else [])],
        zone=zone_of(pod.ip, vpc, cluster),
        mac=names.mac(pre, key, "branch", name),
    )
    veth = names.host_veth(key, name, "vlan" if strict else "eni")
    return PodNet(
        name=name,
        cluster=key,
        node=pod.node,
        ns=names.pod_ns(pre, key, name),
        ip=pod.ip,
        host_veth=veth,
        host_mac=names.mac(pre, key, veth),
        eni_device=device,
        branch=branch,
        vlan_id=vlan_id,
        strict=strict,
    )
