"""An environment's ids found again from AWS alone, by its `peerprobe:environment` tag and the names the steps
give, for a cleanup whose persisted state is gone (the state directory was wiped, or this is another
machine). Reads only; only live resources are returned, so nothing already deleted hides a live twin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from peerprobe.backends.aws import _network
from peerprobe.backends.aws._base import tag_dict
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._state import AwsState, ClusterIds, NetworkIds, OpenedRule, VpcKey
from peerprobe.backends.ports import TAG_ENVIRONMENT
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, NotFoundError
from peerprobe.snapshot import PEER_RULE_DESCRIPTION
from peerprobe.vocabulary import VPC_KEYS

if TYPE_CHECKING:
    from peerprobe.backends.aws.cloud import AwsCloud

log = structlog.get_logger()
_LIVE_NAT_STATES = ["pending", "available"]
_GONE_PEERING = frozenset({"deleted", "deleting", "rejected", "failed", "expired"})


@dataclass(frozen=True)
class Names:
    """What the steps call the environment's resources (experiment.py decides), to look them up by."""

    peer_host: str  # the instance's and its security group's Name
    peering: str
    clusters: Mapping[VpcKey, ClusterIds]  # each cluster and node group as the config names them
    roles: Sequence[str]
    instance_profile: str
    transit_gateway: str = ""  # peering.via: transit-gateway (its attachments go with it: delete_transit_gateway)
    pod_groups: Mapping[VpcKey, str] = field(default_factory=dict)  # security groups for pods, by cluster


def recover_state(cloud: AwsCloud, config: ExperimentConfig, names: Names) -> AwsState:
    """The state create would have persisted, as far as AWS still shows it. Roles are named whether or not
    they exist: deleting one checks that this environment made it."""
    networks = {key: found for key in VPC_KEYS if (found := network(cloud, config, key)) is not None}
    clusters = {
        key: ids.model_copy(update={"pod_security_group": _group(cloud, names.pod_groups[key])})
        if key in names.pod_groups
        else ids
        for key, ids in live_clusters(cloud, names.clusters).items()
    }
    vpc1_group = clusters["vpc1"].security_group if "vpc1" in clusters else ""  # peerprobe opens rules on VPC1 only
    state = AwsState(
        environment=cloud.stamp.environment,
        networks=networks,
        clusters=clusters,
        roles=sorted(names.roles),
        instance_profile=names.instance_profile if _owns_profile(cloud, names.instance_profile) else "",
        peer_host_instance=cloud.find_instance(names.peer_host) or "",
        peer_host_security_group=_group(cloud, names.peer_host),
        peering=_peering(cloud, names.peering),
        transit_gateway=_transit_gateway(cloud, names.transit_gateway),
        opened=opened_rules(cloud, vpc1_group, peer_cidr=config.vpcs.vpc2.cidr, also=config.vpcs.vpc2.secondary_cidrs),
    )
    log.info(
        "aws.state_recovered",
        environment=state.environment,
        vpcs={key: network.vpc for key, network in sorted(networks.items())},
        clusters=sorted(clusters),
        peer_host=state.peer_host_instance or None,
        peering=state.peering,
    )
    return state


# --- networks ---------------------------------------------------------------------------------------------------


def network(cloud: AwsCloud, config: ExperimentConfig, key: VpcKey) -> NetworkIds | None:
    """The VPC peerprobe created for `key` (tagged), else the one the config adopts. Which tags peerprobe
    added to adopted subnets is known only from the state, so none are named here (none are removed)."""
    created = _created_network(cloud, key)
    if created is not None:
        return created
    try:
        return _network.inspect_network(cloud, config, key)
    except ConfigError as error:  # the adopted VPC is gone or is not what the config says: nothing to do there
        log.warning("aws.adopted_network_unreadable", vpc=key, error=str(error)[:200])
        return None


def _created_network(cloud: AwsCloud, key: VpcKey) -> NetworkIds | None:
    vpcs = _described(cloud, "describe_vpcs", "Vpcs", Filters=cloud.owned(key))
    if not vpcs:
        return None
    vpc_id, mine = str(vpcs[0]["VpcId"]), _in_vpc(cloud, str(vpcs[0]["VpcId"]))
    subnets = _described(cloud, "describe_subnets", "Subnets", Filters=mine)
    tables = _described(cloud, "describe_route_tables", "RouteTables", Filters=mine)
    nat = _nat_gateway(cloud, vpc_id)
    return NetworkIds(
        key=key,
        vpc=vpc_id,
        cidr=str(vpcs[0]["CidrBlock"]),
        public_subnets=[str(s["SubnetId"]) for s in subnets if s.get("MapPublicIpOnLaunch")],
        private_subnets=[str(s["SubnetId"]) for s in subnets if not s.get("MapPublicIpOnLaunch")],
        route_tables=[str(t["RouteTableId"]) for t in tables],
        internet_gateway=_internet_gateway(cloud, vpc_id),
        nat_gateway=str(nat["NatGatewayId"]) if nat else None,
        nat_public_ip=_public_ip(nat),
    )


def _public_ip(nat: dict[str, Any] | None) -> str | None:
    # The topology names the NAT gateway's address: a drift check classifies the source addresses it sees by it.
    address = ((nat or {}).get("NatGatewayAddresses") or [{}])[0].get("PublicIp")
    return str(address) if address else None


def _in_vpc(cloud: AwsCloud, vpc_id: str) -> list[dict[str, Any]]:
    return [
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": [cloud.stamp.environment]},
    ]


def _internet_gateway(cloud: AwsCloud, vpc_id: str) -> str | None:
    filters = [
        {"Name": "attachment.vpc-id", "Values": [vpc_id]},
        {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": [cloud.stamp.environment]},
    ]
    found = _described(cloud, "describe_internet_gateways", "InternetGateways", Filters=filters)
    return str(found[0]["InternetGatewayId"]) if found else None


def _nat_gateway(cloud: AwsCloud, vpc_id: str) -> dict[str, Any] | None:
    # Deleted NAT gateways stay visible, tags and all, for about an hour: only a live one is the network's.
    filters = [*_in_vpc(cloud, vpc_id), {"Name": "state", "Values": _LIVE_NAT_STATES}]
    found = _described(cloud, "describe_nat_gateways", "NatGateways", Filter=filters)
    return found[0] if found else None


# --- clusters and the rules peerprobe opened on them ------------------------------------------------------------


def live_clusters(cloud: AwsCloud, configured: Mapping[VpcKey, ClusterIds]) -> dict[VpcKey, ClusterIds]:
    """The config's clusters that this environment tagged, each with its tagged node group and the cluster
    security group EKS gave it."""
    tagged = {r.id: r for r in cloud.tagged_clusters(cloud.stamp.environment)}
    found: dict[VpcKey, ClusterIds] = {}
    for key, ids in configured.items():
        if ids.name not in tagged:
            continue
        groups = [
            r.id.split("/", 1)[1]
            for r in tagged.values()
            if r.kind == "eks-nodegroup" and r.id.startswith(f"{ids.name}/")
        ]
        cluster = cloud.cluster(ids.name)
        found[key] = ids.model_copy(
            update={
                "nodegroup": groups[0] if groups else ids.nodegroup,
                "security_group": cluster.cluster_security_group_id if cluster is not None else "",
            }
        )
    return found


def opened_rules(cloud: AwsCloud, group_id: str, *, peer_cidr: str, also: Sequence[str] = ()) -> list[OpenedRule]:
    """The rules peerprobe opened on a node security group: from the peer CIDR (or `also`, its secondary
    blocks), with peerprobe's description."""
    if not group_id:
        return []
    try:
        rules = cloud.ingress_rules(group_id)
    except NotFoundError:
        return []
    return [
        OpenedRule(group=group_id, protocol=r.protocol, from_port=r.from_port, to_port=r.to_port, cidr=r.cidr)
        for r in rules
        if r.cidr in (peer_cidr, *also) and r.description == PEER_RULE_DESCRIPTION
    ]


# --- the EC2 host, the peering, the instance profile ------------------------------------------------------------


def _group(cloud: AwsCloud, name: str) -> str:
    found = _described(cloud, "describe_security_groups", "SecurityGroups", Filters=cloud.owned(name))
    return str(found[0]["GroupId"]) if found else ""


def _peering(cloud: AwsCloud, name: str) -> str | None:
    found = _described(cloud, "describe_vpc_peering_connections", "VpcPeeringConnections", Filters=cloud.owned(name))
    # Checked again here: moto ignores DescribeVpcPeeringConnections' filters; deleted ones stay visible a while.
    mine = {"Name": name, TAG_ENVIRONMENT: cloud.stamp.environment}
    live = [p for p in found if mine.items() <= tag_dict(p).items() and p["Status"]["Code"] not in _GONE_PEERING]
    return str(live[0]["VpcPeeringConnectionId"]) if live else None


def _transit_gateway(cloud: AwsCloud, name: str) -> str | None:
    if not name:
        return None
    filters = [*cloud.owned(name), {"Name": "state", "Values": ["pending", "available", "modifying"]}]
    found = _described(cloud, "describe_transit_gateways", "TransitGateways", Filters=filters)
    mine = {"Name": name, TAG_ENVIRONMENT: cloud.stamp.environment}
    live = [g for g in found if mine.items() <= tag_dict(g).items() and g["State"] not in ("deleted", "deleting")]
    return str(live[0]["TransitGatewayId"]) if live else None


def _owns_profile(cloud: AwsCloud, name: str) -> bool:
    try:
        with aws_errors("iam instance profile", name):
            raw = cloud.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except NotFoundError:
        return False
    return tag_dict(raw).get(TAG_ENVIRONMENT) == cloud.stamp.environment


def _described(cloud: AwsCloud, call: str, key: str, **params: Any) -> list[dict[str, Any]]:
    with aws_errors(call.removeprefix("describe_").replace("_", " ")):
        return list(getattr(cloud.ec2, call)(**params)[key])
