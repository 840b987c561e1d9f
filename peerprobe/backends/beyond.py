"""Beyond the workshop's topology (issue 15), written once over the ports like the other steps: a VPC's secondary
CIDR blocks with custom networking's pod subnets and ENIConfigs, a transit gateway in place of the peering, and
security groups for pods. experiment.py calls these at the points the order of creation needs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import structlog

from peerprobe import resources
from peerprobe.backends.aws._state import AwsState, NetworkIds
from peerprobe.backends.opened import pod_group_rules, routed_blocks
from peerprobe.backends.ports import IngressRule
from peerprobe.backends.support import trunk_problem as trunk_problem  # create-cluster checks it again
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, NotFoundError
from peerprobe.topology import Topology, pod_subnets
from peerprobe.vocabulary import VpcKey

if TYPE_CHECKING:
    from peerprobe.backends.aws.cloud import AwsCloud
    from peerprobe.backends.ports import Cluster

log = structlog.get_logger()

TRANSIT_GATEWAY = "vpc1-vpc2-tgw"
POD_GROUP = "pods"
ENI_CONFIG_FILE = "eniconfig.yaml"
POLICY_FILE = "security-group-policy.yaml"
# The VPC resource controller manages the trunk and branch ENIs with the cluster role's permissions: EKS user
# guide, security-groups-for-pods.html ("Configure the Amazon VPC CNI plugin for Kubernetes for security groups
# for Amazon EKS Pods", step 1: attach AmazonEKSVPCResourceController to the cluster role).
VPC_RESOURCE_CONTROLLER_POLICY = "AmazonEKSVPCResourceController"
# Custom networking (amazon-vpc-cni-k8s README, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG" and "ENI_CONFIG_LABEL_DEF";
# EKS user guide, cni-custom-network-tutorial.html): nodes pick the ENIConfig named by their zone label.
CUSTOM_NETWORK_ENV = ("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true", "ENI_CONFIG_LABEL_DEF=topology.kubernetes.io/zone")
ZONE_LABEL = "topology.kubernetes.io/zone"
# Security groups for pods (amazon-vpc-cni-k8s README, "ENABLE_POD_ENI" and "POD_SECURITY_GROUP_ENFORCING_MODE").
POD_ENI_ENV = "ENABLE_POD_ENI=true"
ENFORCING_MODE = "POD_SECURITY_GROUP_ENFORCING_MODE"
APP_LABELS = {"echo": "source-ip-app", "busybox": "busybox"}


# --- checks ---------------------------------------------------------------------------------------------------


def cluster_policies(config: ExperimentConfig, base: Sequence[str]) -> tuple[str, ...]:
    """The cluster role's managed policies: the VPC resource controller's too when any cluster has pod groups."""
    wanted = any(getattr(config.clusters, k).pod_security_groups is not None for k in ("vpc1", "vpc2"))
    return (*base, VPC_RESOURCE_CONTROLLER_POLICY) if wanted else tuple(base)


# --- create-network: secondary CIDRs and the pod subnets --------------------------------------------------------


def ensure_secondary(cloud: AwsCloud, config: ExperimentConfig, network: NetworkIds) -> NetworkIds:
    """The VPC's secondary CIDR blocks associated (each waited until `associated`); with custom networking, a pod
    subnet per zone of the private subnets, cut from its CIDR (topology.pod_subnets, as the model and the lab
    place pods), in a route table of their own with the private subnets' way out."""
    vpc_config = getattr(config.vpcs, network.key)
    present = set(cloud.vpc_cidrs(network.vpc))
    associations = dict(network.cidr_associations)
    for cidr in vpc_config.secondary_cidrs:
        association = cloud.ensure_vpc_cidr(network.vpc, cidr=cidr)
        if cidr not in present or cidr in associations:  # only ours are disassociated again
            associations[cidr] = association
    network = network.model_copy(update={"cidr_associations": associations})
    custom = getattr(config.clusters, network.key).custom_networking
    if not custom.enabled or custom.cidr is None:
        return network
    zones = list(dict.fromkeys(s.availability_zone for s in cloud.subnets(network.private_subnets)))
    pods = {
        zone: cloud.ensure_subnet(
            f"{network.key}-pods-{i}", vpc_id=network.vpc, cidr=str(block), availability_zone=zone, public=False
        ).id
        for i, (zone, block) in enumerate(zip(zones, pod_subnets(custom.cidr), strict=False))
    }
    table = cloud.ensure_route_table(f"{network.key}-pods", vpc_id=network.vpc, subnet_ids=list(pods.values()))
    if network.nat_gateway:
        cloud.ensure_route(table.id, destination_cidr="0.0.0.0/0", target_id=network.nat_gateway)
    tables = network.route_tables if table.id in network.route_tables else [*network.route_tables, table.id]
    log.info("network.pod_subnets", vpc=network.key, subnets=pods, route_table=table.id)
    return network.model_copy(update={"pod_subnets": pods, "pod_route_table": table.id, "route_tables": tables})


# --- create-cluster: aws-node, ENIConfigs, the pods' group ------------------------------------------------------


def cni_assignments(config: ExperimentConfig, key: VpcKey) -> list[str]:
    """aws-node's env for custom networking and pod ENIs (empty for the workshop's topology)."""
    cluster = getattr(config.clusters, key)
    assignments: list[str] = []
    if cluster.custom_networking.enabled:
        assignments += CUSTOM_NETWORK_ENV
    if cluster.pod_security_groups is not None:
        assignments += [POD_ENI_ENV, f"{ENFORCING_MODE}={cluster.pod_security_groups.mode}"]
    return assignments


def eni_configs(network: NetworkIds, *, security_group: str) -> list[resources.Manifest]:
    """One ENIConfig per zone, named after it, with its pod subnet and the cluster security group (the EKS
    tutorial's choice, which the model follows: pods stay members of the cluster group)."""
    docs: list[resources.Manifest] = []
    for zone, subnet in network.pod_subnets.items():
        docs += resources.load(ENI_CONFIG_FILE, {"zone": zone, "subnet": subnet, "security_group": security_group})
    return docs


def prepare_cni(kube: Cluster, config: ExperimentConfig, network: NetworkIds, *, cluster_group: str) -> list[str]:
    """Before the node group: the ENIConfigs, then aws-node's env. A node reads both when its aws-node starts
    (ipamd picks a node's ENIConfig once); nodes made before would keep pods on the primary ENI's subnet until
    replaced (EKS user guide, cni-custom-network-tutorial: "terminate or replace existing nodes")."""
    assignments = cni_assignments(config, network.key)
    if not assignments:
        return []
    if getattr(config.clusters, network.key).custom_networking.enabled:
        kube.apply(eni_configs(network, security_group=cluster_group))
    kube.patch_aws_node_env(assignments)
    log.info("aws_node.prepared", vpc=network.key, env=assignments)
    return assignments


def pod_group_ingress(
    config: ExperimentConfig, key: VpcKey, plan: Topology, *, cluster_group: str
) -> list[IngressRule]:
    """VPC1's pods' group as opened.pod_group_rules; VPC2's (busybox, a client) admits its cluster group only."""
    rules = pod_group_rules(config, plan, cluster_group=cluster_group)
    return rules if key == "vpc1" else rules[:1]


def security_group_policy(
    config: ExperimentConfig, key: VpcKey, *, pod_group: str, cluster_group: str
) -> list[resources.Manifest]:
    """The SecurityGroupPolicy selecting the configured pods by their app label (before their Deployments, so
    the resource controller's webhook gives them branch ENIs as they are created)."""
    groups = getattr(config.clusters, key).pod_security_groups
    if groups is None:
        return []
    ids = [pod_group, cluster_group] if groups.include_cluster_sg and cluster_group else [pod_group]
    apps = [APP_LABELS[p] for p in groups.pods]
    return resources.load(POLICY_FILE, {"apps": apps, "group_ids": ids})


# --- peer-vpcs: the transit gateway ----------------------------------------------------------------------------


def link_by_transit_gateway(
    cloud: AwsCloud,
    config: ExperimentConfig,
    plan: Topology,
    networks: dict[VpcKey, NetworkIds],
    record: Callable[[Callable[[AwsState], AwsState]], AwsState],
) -> dict[str, object]:
    """The transit gateway (available), an attachment per VPC with one subnet per zone (available), associated
    with and propagating to the default route table, and routes in each VPC's tables to the peer's routed
    blocks (peering.route_cidrs). Each id recorded as soon as AWS returns it, so cleanup finds it."""
    gateway = cloud.ensure_transit_gateway(TRANSIT_GATEWAY)
    record(lambda s: s.model_copy(update={"transit_gateway": gateway}))
    attachments: dict[VpcKey, str] = {}
    for key, network in networks.items():
        subnets = attachment_subnets(cloud, network)
        attachment = cloud.ensure_transit_gateway_attachment(
            f"{key}-tgw", gateway_id=gateway, vpc_id=network.vpc, subnet_ids=subnets
        )
        attachments[key] = attachment
        record(partial(_with_attachment, key=key, attachment=attachment))
        cloud.ensure_transit_gateway_routing(gateway, attachment_id=attachment)
    for key, network in networks.items():
        peer: VpcKey = "vpc2" if key == "vpc1" else "vpc1"
        for table in network.route_tables:
            for block in routed_blocks(config, plan, peer):
                cloud.ensure_route(table, destination_cidr=block, target_id=gateway)
    return {"transit_gateway": gateway, "attachments": attachments}


def _with_attachment(state: AwsState, *, key: VpcKey, attachment: str) -> AwsState:
    return state.model_copy(
        update={"transit_gateway_attachments": {**state.transit_gateway_attachments, key: attachment}}
    )


def attachment_subnets(cloud: AwsCloud, network: NetworkIds) -> list[str]:
    """One private subnet per zone (an attachment takes at most one per zone, and reaches only those zones)."""
    by_zone: dict[str, str] = {}
    for subnet in cloud.subnets(network.private_subnets or network.public_subnets):
        by_zone.setdefault(subnet.availability_zone, subnet.id)
    if not by_zone:
        raise ConfigError(f"vpcs.{network.key}.subnets: no subnet in {network.vpc} for the transit gateway attachment")
    return list(by_zone.values())


def link_routes(config: ExperimentConfig, plan: Topology, key: VpcKey) -> list[str]:
    """The blocks of the peer of `key` its route tables send to the peering (peering.route_cidrs)."""
    return routed_blocks(config, plan, "vpc2" if key == "vpc1" else "vpc1")


# --- cleanup ---------------------------------------------------------------------------------------------------


def remove_transit_gateway(cloud: AwsCloud, state: AwsState) -> list[str]:
    """Routes to the gateway, then each attachment (waited until deleted), then the gateway itself."""
    if state.transit_gateway is None and not state.transit_gateway_attachments:
        return []
    if state.transit_gateway is not None:
        remove_routes_to(cloud, state, state.transit_gateway)
    for attachment in state.transit_gateway_attachments.values():
        cloud.delete_transit_gateway_attachment(attachment)
    if state.transit_gateway is not None:
        cloud.delete_transit_gateway(state.transit_gateway)
    return [f"transit gateway {state.transit_gateway}"]


def remove_routes_to(cloud: AwsCloud, state: AwsState, target: str) -> None:
    for network in state.networks.values():
        for table_id in network.route_tables:
            with contextlib.suppress(NotFoundError):
                for route in cloud.route_table(table_id).routes:
                    if route.target_id == target:
                        cloud.delete_route(table_id, destination_cidr=route.destination_cidr)


def remove_pod_groups(cloud: AwsCloud, state: AwsState) -> list[str]:
    """The pods' groups, after the clusters (their branch ENIs go with the nodes)."""
    removed = []
    for ids in state.clusters.values():
        if ids.pod_security_group:
            cloud.delete_security_group(ids.pod_security_group)
            removed.append(f"security group {ids.pod_security_group}")
    return removed


def remove_pod_network(cloud: AwsCloud, network: NetworkIds) -> list[str]:
    """The pod subnets and their table; in an adopted VPC also the blocks peerprobe associated (a created VPC's
    blocks go with it)."""
    if network.pod_route_table:
        cloud.delete_route_table(network.pod_route_table)
    for subnet in network.pod_subnets.values():
        cloud.delete_subnet(subnet)
    if network.adopted:
        for association in network.cidr_associations.values():
            cloud.disassociate_vpc_cidr(association)
    return [f"{len(network.pod_subnets)} pod subnet(s) of {network.vpc}"] if network.pod_subnets else []
