"""The experiment's two networks on AWS: adopted by id or tag (`vpcs.vpcN.id`, `subnets`) or created as eksctl
lays a new VPC out; subnets tagged for load balancers; an internet-facing load balancer with no public subnet
refused before anything is created (cloud-provider-aws: "could not find any suitable subnets for creating the
ELB")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._state import NetworkIds, VpcKey
from peerprobe.backends.aws._vpc import PRIVATE_ROLE_TAG, PUBLIC_ROLE_TAG
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError
from peerprobe.topology import subnets as layout

if TYPE_CHECKING:
    from peerprobe.backends.aws.cloud import AwsCloud

log = structlog.get_logger()
AZ_COUNT = 3


def cluster_tag(cluster_name: str) -> str:
    """The tag cloud-provider-aws and the Load Balancer Controller look for on a cluster's subnets."""
    return f"kubernetes.io/cluster/{cluster_name}"


def ensure_network(cloud: AwsCloud, config: ExperimentConfig, key: VpcKey) -> NetworkIds:
    """Adopt (when `vpcs.<key>.id` or `subnets` are set) or create the network, refuse what cannot work,
    and tag its subnets for the load balancers of the cluster that will use it."""
    adopted = inspect_network(cloud, config, key)
    network = adopted if adopted is not None else create_network(cloud, config, key)
    require_public_subnets(config, network)
    return _tag_subnets(cloud, network, cluster_name=getattr(config.clusters, key).name)


def inspect_network(cloud: AwsCloud, config: ExperimentConfig, key: VpcKey) -> NetworkIds | None:
    """Read-only: the adopted network of `key`, checked against the config; None when it is to be created."""
    vpc_config = getattr(config.vpcs, key)
    names = [*vpc_config.subnets.public, *vpc_config.subnets.private]
    if vpc_config.id is None and not names:
        return None
    where = f"vpcs.{key}"
    vpc = _adopted_vpc(cloud, vpc_config.id, names, where=where)
    if vpc["CidrBlock"] != vpc_config.cidr:
        raise ConfigError(f"{where}.cidr: {vpc['VpcId']} has {vpc['CidrBlock']}, the config says {vpc_config.cidr}")
    public = _subnet_ids(cloud, vpc["VpcId"], vpc_config.subnets.public, where=f"{where}.subnets.public")
    private = _subnet_ids(cloud, vpc["VpcId"], vpc_config.subnets.private, where=f"{where}.subnets.private")
    if not names:
        public, private = _classified(cloud, vpc["VpcId"])
    nat_id, nat_ip = _nat(cloud, vpc["VpcId"])
    return NetworkIds(
        key=key,
        vpc=vpc["VpcId"],
        cidr=vpc["CidrBlock"],
        adopted=True,
        public_subnets=public,
        private_subnets=private,
        route_tables=_route_tables(cloud, vpc["VpcId"], [*public, *private]),
        nat_gateway=nat_id,
        nat_public_ip=nat_ip,
    )


def require_public_subnets(config: ExperimentConfig, network: NetworkIds) -> None:
    """VPC1 always has an internet-facing load balancer (the workshop's nginx NLB, and the Classic ELB unless
    services.load_balancer.scheme is internal); VPC2's EC2 host lives in a public subnet."""
    if network.public_subnets:
        return
    if network.key == "vpc1":
        raise ConfigError(
            "vpcs.vpc1.subnets.public: no public subnet in "
            f"{network.vpc}; the internet-facing load balancers (service-nginx"
            f"{', loadbalancer' if config.services.load_balancer.scheme == 'internet-facing' else ''}) would fail "
            'with "could not find any suitable subnets for creating the ELB"; nothing was created'
        )
    raise ConfigError(f"vpcs.vpc2.subnets.public: no public subnet in {network.vpc} for the EC2 web host")


def _adopted_vpc(cloud: AwsCloud, vpc_id: str | None, subnet_names: list[str], *, where: str) -> dict[str, Any]:
    with aws_errors("vpc", vpc_id or where):
        if vpc_id is not None:
            found = cloud.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
            if not found:
                raise ConfigError(f"{where}.id: {vpc_id} does not exist in {cloud.clients.region}")
            return dict(found[0])
        first = _describe_subnets(cloud, None, subnet_names[:1], where=where)[0]
        return dict(cloud.ec2.describe_vpcs(VpcIds=[first["VpcId"]])["Vpcs"][0])


def _subnet_ids(cloud: AwsCloud, vpc_id: str, names: list[str], *, where: str) -> list[str]:
    found = _describe_subnets(cloud, vpc_id, names, where=where) if names else []
    return [str(raw["SubnetId"]) for raw in found]


def _describe_subnets(cloud: AwsCloud, vpc_id: str | None, names: list[str], *, where: str) -> list[dict[str, Any]]:
    """Subnets by id (subnet-…) or by Name tag, in the order given; a missing one is a ConfigError."""
    result = []
    for name in names:
        key = "subnet-id" if name.startswith("subnet-") else "tag:Name"
        filters = [{"Name": key, "Values": [name]}] + ([{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else [])
        with aws_errors("subnet", name):
            found = cloud.ec2.describe_subnets(Filters=filters)["Subnets"]
        if len(found) != 1:
            what = "no subnet" if not found else f"{len(found)} subnets"
            raise ConfigError(f"{where}: {what} named {name!r}{f' in {vpc_id}' if vpc_id else ''}")
        result.append(dict(found[0]))
    return result


def _classified(cloud: AwsCloud, vpc_id: str) -> tuple[list[str], list[str]]:
    """Every subnet of the VPC, public when its route table sends 0.0.0.0/0 to an internet gateway."""
    with aws_errors("subnet", vpc_id):
        found = cloud.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        tables = cloud.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    public: list[str] = []
    private: list[str] = []
    for raw in sorted(found, key=lambda s: (s["AvailabilityZone"], s["CidrBlock"])):
        table = _table_of(tables, raw["SubnetId"])
        to_igw = any(
            r.get("DestinationCidrBlock") == "0.0.0.0/0" and str(r.get("GatewayId", "")).startswith("igw-")
            for r in (table or {}).get("Routes", [])
        )
        (public if to_igw else private).append(str(raw["SubnetId"]))
    return public, private


def _table_of(tables: list[dict[str, Any]], subnet_id: str) -> dict[str, Any] | None:
    explicit = [t for t in tables if any(a.get("SubnetId") == subnet_id for a in t.get("Associations", []))]
    main = [t for t in tables if any(a.get("Main") for a in t.get("Associations", []))]
    found = explicit or main
    return found[0] if found else None


def _route_tables(cloud: AwsCloud, vpc_id: str, subnet_ids: list[str]) -> list[str]:
    with aws_errors("route table", vpc_id):
        tables = cloud.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    used = [_table_of(tables, subnet) for subnet in subnet_ids]
    return list(dict.fromkeys(str(t["RouteTableId"]) for t in used if t is not None))


def _nat(cloud: AwsCloud, vpc_id: str) -> tuple[str | None, str | None]:
    with aws_errors("nat gateway", vpc_id):
        found = cloud.ec2.describe_nat_gateways(
            Filter=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}]
        )["NatGateways"]
    if not found:
        return None, None
    address = (found[0].get("NatGatewayAddresses") or [{}])[0]
    return str(found[0]["NatGatewayId"]), address.get("PublicIp")


def create_network(cloud: AwsCloud, config: ExperimentConfig, key: VpcKey) -> NetworkIds:
    """eksctl's layout for a new VPC: three public and three private subnets over the first three zones, an
    internet gateway, and a NAT gateway for the private subnets when `vpcs.<key>.nat_gateway`."""
    vpc_config = getattr(config.vpcs, key)
    vpc = cloud.ensure_vpc(key, cidr=vpc_config.cidr)
    zones = list(cloud.availability_zones()[:AZ_COUNT])
    parts = layout(vpc_config)
    public = [
        cloud.ensure_subnet(
            f"{key}-public-{i}", vpc_id=vpc.id, cidr=str(cidr), availability_zone=zones[i % len(zones)], public=True
        ).id
        for i, cidr in enumerate(parts["public"])
    ]
    private = [
        cloud.ensure_subnet(
            f"{key}-private-{i}", vpc_id=vpc.id, cidr=str(cidr), availability_zone=zones[i % len(zones)], public=False
        ).id
        for i, cidr in enumerate(parts["private"])
    ]
    igw = cloud.ensure_internet_gateway(f"{key}-igw", vpc_id=vpc.id)
    public_rt = cloud.ensure_route_table(f"{key}-public", vpc_id=vpc.id, subnet_ids=public)
    cloud.ensure_route(public_rt.id, destination_cidr="0.0.0.0/0", target_id=igw.id)
    private_rt = cloud.ensure_route_table(f"{key}-private", vpc_id=vpc.id, subnet_ids=private)
    nat = cloud.ensure_nat_gateway(f"{key}-nat", subnet_id=public[0]) if vpc_config.nat_gateway else None
    if nat is not None:
        cloud.ensure_route(private_rt.id, destination_cidr="0.0.0.0/0", target_id=nat.id)
    return NetworkIds(
        key=key,
        vpc=vpc.id,
        cidr=vpc.cidr,
        public_subnets=public,
        private_subnets=private,
        route_tables=[public_rt.id, private_rt.id],
        internet_gateway=igw.id,
        nat_gateway=nat.id if nat else None,
        nat_public_ip=nat.public_ip if nat else None,
    )


def _tag_subnets(cloud: AwsCloud, network: NetworkIds, *, cluster_name: str) -> NetworkIds:
    """kubernetes.io/role/elb on public, kubernetes.io/role/internal-elb on private subnets, and
    kubernetes.io/cluster/<name>: shared on all; only missing tags are written, and remembered."""
    wanted = {s: {PUBLIC_ROLE_TAG: "1"} for s in network.public_subnets}
    wanted |= {s: {PRIVATE_ROLE_TAG: "1"} for s in network.private_subnets}
    added = {subnet: list(keys) for subnet, keys in network.added_tags.items()}
    if not wanted:
        return network
    with aws_errors("subnet", network.vpc):
        found = cloud.ec2.describe_subnets(SubnetIds=list(wanted))["Subnets"]
    present = {raw["SubnetId"]: {t["Key"] for t in raw.get("Tags", [])} for raw in found}
    wanted = {subnet: tags | {cluster_tag(cluster_name): "shared"} for subnet, tags in wanted.items()}
    for missing, subnets in _missing_tags(wanted, present).items():
        with aws_errors("subnet", ",".join(subnets)):
            cloud.ec2.create_tags(Resources=subnets, Tags=[{"Key": k, "Value": v} for k, v in missing])
        for subnet in subnets:
            added[subnet] = sorted({*added.get(subnet, []), *(k for k, _ in missing)})
        log.info("subnet.tagged", subnet_ids=subnets, tags=[k for k, _ in missing])
    return network.model_copy(update={"added_tags": added})


def _missing_tags(
    wanted: dict[str, dict[str, str]], present: dict[str, set[str]]
) -> dict[tuple[tuple[str, str], ...], list[str]]:
    """Subnets grouped by the tags they lack: one CreateTags call per group rather than per subnet."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for subnet, tags in wanted.items():
        missing = tuple(sorted((k, v) for k, v in tags.items() if k not in present.get(subnet, set())))
        if missing:
            groups.setdefault(missing, []).append(subnet)
    return groups


def untag_subnets(cloud: AwsCloud, network: NetworkIds) -> None:
    """Remove the tags peerprobe added to adopted subnets (created subnets go with their VPC)."""
    for subnet, keys in network.added_tags.items():
        with aws_errors("subnet", subnet):
            cloud.ec2.delete_tags(Resources=[subnet], Tags=[{"Key": k} for k in keys])
