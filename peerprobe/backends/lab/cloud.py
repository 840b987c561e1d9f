"""The lab's AWS side, in moto: the experiment's VPCs, subnets, gateways, route tables, peering, security
groups, EKS clusters and the instances that stand for nodes and the EC2 host. The data plane is then built
from what moto reads back, so a rule revoked or a peering deleted behind peerprobe's back shows in the lab.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field

from peerprobe.backends.aws._network import create_network
from peerprobe.backends.aws.cloud import AwsCloud
from peerprobe.backends.lab.net import ELB_GROUP, PEER_HOST_GROUP, KubeService, SecurityGroupRule, node_group
from peerprobe.backends.opened import peer_host_rules, peer_rules
from peerprobe.backends.ports import TAG_ENVIRONMENT, IngressRule
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConflictError, NotFoundError
from peerprobe.topology import Topology, subnets

log = structlog.get_logger()
VpcKey = Literal["vpc1", "vpc2"]
VPC_KEYS: tuple[VpcKey, VpcKey] = ("vpc1", "vpc2")
LAB_IMAGE = "ami-0123456789abcdef0"  # moto accepts any id; nothing boots
NODE_TYPE = "t3.medium"
MOTO_ACCOUNT = "123456789012"  # moto's default account


class VpcIds(BaseModel):
    key: VpcKey
    vpc: str
    public_subnets: list[str]
    private_subnets: list[str]
    internet_gateway: str
    nat_gateway: str | None = None
    public_route_table: str
    private_route_table: str
    node_security_group: str
    cluster: str = ""  # empty until ensure_cluster
    nodegroup: str = ""
    node_instances: list[str] = Field(default_factory=list)


class CloudIds(BaseModel):
    """Every id the lab created in moto, persisted so `down` and a resumed run find them again."""

    vpcs: dict[VpcKey, VpcIds] = Field(default_factory=dict)  # filled step by step; a retry finds what exists
    peer_host_security_group: str = ""
    peer_host_instance: str = ""
    peering: str | None = None
    elb_security_group: str | None = None  # the Classic ELB's own group, made by the in-tree controller


def partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


def provision(cloud: AwsCloud, config: ExperimentConfig, plan: Topology) -> CloudIds:
    """Ensure everything exists (idempotent: a second call finds what the first created). The two VPCs are
    independent, so they are built side by side, as the flow does on AWS."""
    _ = (cloud.ec2, cloud.eks)  # build the clients once, before threads share them (boto3 sessions are not thread-safe)
    with ThreadPoolExecutor(max_workers=len(VPC_KEYS), thread_name_prefix="provision") as pool:
        futures = {key: pool.submit(_ensure_vpc, cloud, config, plan, key) for key in VPC_KEYS}
        vpcs = {key: future.result() for key, future in futures.items()}
    host_sg, host = ensure_peer_host(cloud, config, plan, vpcs["vpc2"])
    ids = CloudIds(vpcs=vpcs, peer_host_security_group=host_sg, peer_host_instance=host)
    if config.peering.enabled:
        ids = ids.model_copy(update={"peering": ensure_peering(cloud, ids.vpcs["vpc1"], ids.vpcs["vpc2"])})
        open_to_peer(cloud, config, plan, ids)
    return ids


def _ensure_vpc(cloud: AwsCloud, config: ExperimentConfig, plan: Topology, key: VpcKey) -> VpcIds:
    return ensure_cluster(cloud, config, plan, ensure_network(cloud, config, plan, key))


def ensure_network(cloud: AwsCloud, config: ExperimentConfig, plan: Topology, key: VpcKey) -> VpcIds:
    """The VPC laid out as the AWS backend lays a new one out (eksctl's three public and three private
    subnets, internet and NAT gateways, route tables), plus the cluster security group moto's EKS lacks."""
    made = create_network(cloud, config, key)
    public_rt, private_rt = made.route_tables
    return VpcIds(
        key=key, vpc=made.vpc, public_subnets=made.public_subnets, private_subnets=made.private_subnets,
        internet_gateway=made.internet_gateway, nat_gateway=made.nat_gateway, public_route_table=public_rt,
        private_route_table=private_rt, node_security_group=_ensure_node_group(cloud, key, made.vpc),
    )  # fmt: skip


def ensure_cluster(cloud: AwsCloud, config: ExperimentConfig, plan: Topology, network: VpcIds) -> VpcIds:
    """The EKS cluster, its node group and the node instances, in a network `ensure_network` made."""
    cluster, nodegroup, instances = _ensure_cluster(
        cloud, config, plan, network.key, network.public_subnets, network.private_subnets, network.node_security_group
    )
    return network.model_copy(update={"cluster": cluster, "nodegroup": nodegroup, "node_instances": instances})


def _ensure_node_group(cloud: AwsCloud, key: VpcKey, vpc_id: str) -> str:
    # EKS's cluster security group admits only itself (sec-group-reqs.html); moto's EKS creates none.
    group = cloud.ensure_security_group(node_group(key), vpc_id=vpc_id, description=f"{key} cluster security group")
    cloud.authorize_ingress(group.id, rules=[IngressRule("-1", -1, -1, source_group=group.id)])
    return group.id


def _ensure_cluster(
    cloud: AwsCloud,
    config: ExperimentConfig,
    plan: Topology,
    key: VpcKey,
    public: list[str],
    private: list[str],
    sg: str,
) -> tuple[str, str, list[str]]:
    cluster_config = getattr(config.clusters, key)
    node_subnets = public if cluster_config.node_subnets == "public" else private
    roles = f"arn:{partition(config.region)}:iam::{MOTO_ACCOUNT}:role"
    cluster = cloud.ensure_cluster(
        cluster_config.name, role_arn=f"{roles}/peerprobe-cluster", subnet_ids=private,
        service_cidr=cluster_config.service_cidr, security_group_ids=[sg],
    )  # fmt: skip
    nodegroup = cloud.ensure_nodegroup(
        cluster.name, name=f"{key}-nodes", node_role_arn=f"{roles}/peerprobe-node", subnet_ids=node_subnets,
        size=cluster_config.nodes, instance_types=(NODE_TYPE,),
    )  # fmt: skip
    # moto's node groups launch no instances: the lab stands one in for each planned node.
    nodes = getattr(plan, key).nodes
    instances = [
        cloud.ensure_instance(
            f"{key}-node-{index}", subnet_id=node_subnets[index % len(node_subnets)], image_id=LAB_IMAGE,
            instance_type=NODE_TYPE, security_group_ids=[sg], private_ip=node.ip,
        ).id
        for index, node in enumerate(nodes)
    ]  # fmt: skip
    return cluster.name, nodegroup.name, instances


def ensure_peer_host(cloud: AwsCloud, config: ExperimentConfig, plan: Topology, vpc2: VpcIds) -> tuple[str, str]:
    """The EC2 web host in VPC2's first public subnet and its security group: (group id, instance id)."""
    group = cloud.ensure_security_group(PEER_HOST_GROUP, vpc_id=vpc2.vpc, description="the EC2 web host")
    if config.peer_host.admit_vpc1:
        cloud.authorize_ingress(group.id, rules=peer_host_rules(plan))
    host = cloud.ensure_instance(
        "peer-host", subnet_id=vpc2.public_subnets[0], image_id=LAB_IMAGE, instance_type="t3.micro",
        security_group_ids=[group.id], private_ip=plan.peer_host.private_ip,
    )  # fmt: skip
    return group.id, host.id


def ensure_peering(cloud: AwsCloud, vpc1: VpcIds, vpc2: VpcIds) -> str:
    """The accepted peering VPC1 -> VPC2 with routes both ways in every route table; its id."""
    requester = cloud.ensure_vpc("vpc1", cidr=_cidr(cloud, vpc1.vpc))
    accepter = cloud.ensure_vpc("vpc2", cidr=_cidr(cloud, vpc2.vpc))
    peering = cloud.ensure_peering("vpc1-vpc2", requester=requester, accepter=accepter)
    cloud.ensure_peering_routes(
        peering,
        requester_route_tables=[vpc1.public_route_table, vpc1.private_route_table],
        accepter_route_tables=[vpc2.public_route_table, vpc2.private_route_table],
    )
    return peering.id


def _cidr(cloud: AwsCloud, vpc_id: str) -> str:
    raw = cloud.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    return str(raw["CidrBlock"])


def open_to_peer(cloud: AwsCloud, config: ExperimentConfig, plan: Topology, ids: CloudIds) -> None:
    cloud.authorize_ingress(ids.vpcs["vpc1"].node_security_group, rules=peer_rules(config, plan))


# --- what the load balancer controllers write ------------------------------------------------------------------

ELB_GROUP_NAME = "k8s-elb-loadbalancer"  # cloud-provider-aws names it k8s-elb-<load balancer name>
TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"


def ensure_controller_rules(
    cloud: AwsCloud, config: ExperimentConfig, plan: Topology, ids: CloudIds, services: Sequence[KubeService]
) -> CloudIds:
    """The security-group rules AWS's controllers write for the LoadBalancer Services (behaviour.md 3, 4, 11):
    the ELB's own group from loadBalancerSourceRanges plus its group-to-group rule on the nodes; the in-tree
    NLB's client rule on its NodePort from the source ranges and its health rule from its subnets; the AWS
    Load Balancer Controller's rule on the pod port for ip targets."""
    vpc1 = ids.vpcs["vpc1"]
    node_rules: list[IngressRule] = []
    for service in services:
        if service.type != "LoadBalancer" or service.node_port is None:
            continue
        if service.kind == "load-balancer":
            ids = _ensure_elb_group(cloud, ids, service)
            assert ids.elb_security_group is not None
            node_rules.append(IngressRule("-1", -1, -1, source_group=ids.elb_security_group,
                                          description="kubernetes.io/rule/elb"))  # fmt: skip
        else:
            node_rules += _nlb_rules(config, plan, service)
    cloud.authorize_ingress(vpc1.node_security_group, rules=node_rules)
    log.info("lab.controllers.rules", node_rules=len(node_rules), elb_group=ids.elb_security_group)
    return ids


def _ensure_elb_group(cloud: AwsCloud, ids: CloudIds, service: KubeService) -> CloudIds:
    vpc1 = ids.vpcs["vpc1"]
    group = cloud.ensure_security_group(ELB_GROUP_NAME, vpc_id=vpc1.vpc, description="Security group for "
                                        "Kubernetes ELB loadbalancer (default/loadbalancer)")  # fmt: skip
    port = service.port
    rules = [IngressRule("tcp", port, port, cidr=c, description="loadBalancerSourceRanges")
             for c in service.source_ranges]  # fmt: skip
    cloud.authorize_ingress(group.id, rules=rules)
    return ids.model_copy(update={"elb_security_group": group.id})


def _nlb_rules(config: ExperimentConfig, plan: Topology, service: KubeService) -> list[IngressRule]:
    facts = plan.vpc1.load_balancer_facts.get(service.kind)
    side = "public" if facts is not None and facts.scheme == "internet-facing" else "private"
    lb_subnets = [str(cidr) for cidr in subnets(config.vpcs.vpc1)[side]]
    if service.annotations.get(TARGET_TYPE) == "ip":
        # LBC: traffic on the pod port from the source ranges when the client address is kept, else from
        # the load balancer's subnets; health checks from the subnets.
        preserve = "preserve_client_ip.enabled=true" in service.annotations.get(
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes", ""
        )
        sources = [*service.source_ranges, *lb_subnets] if preserve else lb_subnets
        port = service.target_port
        return [IngressRule("tcp", port, port, cidr=c, description="elbv2.k8s.aws/targetGroupBinding") for c in
                dict.fromkeys(sources)]  # fmt: skip
    assert service.node_port is not None
    client = [IngressRule("tcp", service.node_port, service.node_port, cidr=c,
                          description="kubernetes.io/rule/nlb/client") for c in service.source_ranges]  # fmt: skip
    health_ports = {service.node_port, *([service.health_check_node_port] if service.local and
                                         service.health_check_node_port else [])}  # fmt: skip
    health = [IngressRule("tcp", p, p, cidr=c, description="kubernetes.io/rule/nlb/health")
              for p in sorted(health_ports) for c in lb_subnets]  # fmt: skip
    return client + health


# --- reading back ------------------------------------------------------------------------------------------


def security_group_rules(cloud: AwsCloud, ids: CloudIds) -> list[SecurityGroupRule]:
    """The lab's filter rules, from the security groups as moto holds them now."""
    names = {ids.vpcs[key].node_security_group: node_group(key) for key in VPC_KEYS}
    names[ids.peer_host_security_group] = PEER_HOST_GROUP
    if ids.elb_security_group:
        names[ids.elb_security_group] = ELB_GROUP
    return [
        converted
        for group_id, name in names.items()
        for rule in cloud.ingress_rules(group_id)
        if (converted := _lab_rule(name, rule, names)) is not None
    ]


def _lab_rule(group: str, rule: IngressRule, names: dict[str, str]) -> SecurityGroupRule | None:
    if rule.protocol not in ("tcp", "-1") or (rule.source_group and rule.source_group not in names):
        return None  # UDP/ICMP and groups the lab has no ENIs for admit nothing the probes use
    source: dict[str, Any] = (
        {"source_group": names[rule.source_group]} if rule.source_group else {"sources": [rule.cidr]}
    )
    if rule.protocol == "-1" or (rule.from_port, rule.to_port) == (0, 65535):
        return SecurityGroupRule(group=group, protocol="all", **source)
    port_to = rule.to_port if rule.to_port != rule.from_port else None
    return SecurityGroupRule(group=group, port=rule.from_port, port_to=port_to, **source)


def peering_active(cloud: AwsCloud, ids: CloudIds) -> bool:
    """Active, with its routes both ways: what decides whether the lab links the two VPC routers."""
    if ids.peering is None:
        return False
    try:
        peering = cloud.peering(ids.peering)
    except NotFoundError:
        return False
    if peering.status != "active":
        return False
    return all(_routes_via(cloud, ids, key, ids.peering) for key in VPC_KEYS)


def _routes_via(cloud: AwsCloud, ids: CloudIds, key: VpcKey, peering_id: str) -> bool:
    tables = [ids.vpcs[key].public_route_table, ids.vpcs[key].private_route_table]
    return all(any(r.target_id == peering_id for r in cloud.route_table(t).routes) for t in tables)


# --- removal -------------------------------------------------------------------------------------------------


def remove(cloud: AwsCloud, ids: CloudIds, config: ExperimentConfig, plan: Topology) -> None:
    """Ensure absent, in dependency order; each step succeeds when its resource is already gone."""
    if "vpc1" in ids.vpcs:
        _revoke_peer_rules(cloud, ids.vpcs["vpc1"], config, plan)
    if ids.peering and len(ids.vpcs) == len(VPC_KEYS):
        _remove_peering_routes(cloud, ids)
    if ids.peering:
        cloud.delete_peering(ids.peering)
    if ids.peer_host_instance:
        cloud.terminate_instance(ids.peer_host_instance)
    _each_vpc(_remove_cluster, cloud, ids)
    if ids.peer_host_security_group:
        _delete_group(cloud, ids.peer_host_security_group)
    if ids.elb_security_group and "vpc1" in ids.vpcs:
        _remove_elb_group(cloud, ids)
    _each_vpc(_remove_vpc, cloud, ids)


def _each_vpc(remove_one: Callable[[AwsCloud, VpcIds], None], cloud: AwsCloud, ids: CloudIds) -> None:
    # The two VPCs' resources do not depend on each other: remove them side by side.
    with ThreadPoolExecutor(max_workers=len(VPC_KEYS), thread_name_prefix="remove") as pool:
        for future in [pool.submit(remove_one, cloud, vpc) for vpc in ids.vpcs.values()]:
            future.result()


def _remove_peering_routes(cloud: AwsCloud, ids: CloudIds) -> None:
    pairs: tuple[tuple[VpcKey, VpcKey], ...] = (("vpc1", "vpc2"), ("vpc2", "vpc1"))
    for key, other in pairs:
        peer_cidr = _cidr_or_none(cloud, ids.vpcs[other].vpc)
        for table in (ids.vpcs[key].public_route_table, ids.vpcs[key].private_route_table):
            if peer_cidr:
                cloud.delete_route(table, destination_cidr=peer_cidr)


def _cidr_or_none(cloud: AwsCloud, vpc_id: str) -> str | None:
    found = cloud.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    return str(found[0]["CidrBlock"]) if found else None


def _remove_cluster(cloud: AwsCloud, vpc: VpcIds) -> None:
    for instance in vpc.node_instances:
        cloud.terminate_instance(instance)
    if vpc.cluster:
        cloud.delete_nodegroup(vpc.cluster, name=vpc.nodegroup)
        cloud.delete_cluster(vpc.cluster)


def _remove_vpc(cloud: AwsCloud, vpc: VpcIds) -> None:
    if vpc.nat_gateway:
        cloud.delete_nat_gateway(vpc.nat_gateway)
    for table in (vpc.public_route_table, vpc.private_route_table):
        cloud.delete_route_table(table)
    for subnet in (*vpc.public_subnets, *vpc.private_subnets):
        cloud.delete_subnet(subnet)
    cloud.delete_internet_gateway(vpc.internet_gateway)
    _delete_group(cloud, vpc.node_security_group)
    cloud.delete_vpc(vpc.vpc)


def _remove_elb_group(cloud: AwsCloud, ids: CloudIds) -> None:
    """The node group's rule that references the ELB's group goes first, as AWS refuses otherwise."""
    assert ids.elb_security_group is not None
    with contextlib.suppress(NotFoundError):
        reference = IngressRule("-1", -1, -1, source_group=ids.elb_security_group)
        cloud.revoke_ingress(ids.vpcs["vpc1"].node_security_group, rules=[reference])
    _delete_group(cloud, ids.elb_security_group)


def _delete_group(cloud: AwsCloud, group_id: str) -> None:
    # A group that still admits itself can be deleted; rules are dropped with the group.
    cloud.delete_security_group(group_id)


def _revoke_peer_rules(cloud: AwsCloud, vpc1: VpcIds, config: ExperimentConfig, plan: Topology) -> None:
    """Revoke what peerprobe opened, then check it is gone (design.md: cleanup verifies its rules)."""
    opened = peer_rules(config, plan)
    try:
        cloud.revoke_ingress(vpc1.node_security_group, rules=opened)
        left = set(cloud.ingress_rules(vpc1.node_security_group)) & set(opened)
    except NotFoundError:
        return  # the group is gone, and its rules with it
    if left:
        raise ConflictError(
            f"security group {vpc1.node_security_group} (vpc1-nodes): {len(left)} peer rule(s) still present "
            "after revoke", resource="security group", resource_id=vpc1.node_security_group, state="rules-left",
        )  # fmt: skip


# --- from tags alone -------------------------------------------------------------------------------------------


def recover_ids(cloud: AwsCloud, config: ExperimentConfig) -> CloudIds:
    """The environment's ids found again by its tags (Name + peerprobe:environment), for a cleanup that has
    no persisted state: every lookup is the same one the ensure operations make before creating."""
    vpcs = {key: found for key in VPC_KEYS if (found := _recover_vpc(cloud, config, key)) is not None}
    host = _first(cloud.ec2.describe_instances(Filters=cloud.owned("peer-host"))["Reservations"], "Instances")
    return CloudIds(
        vpcs=vpcs,
        peer_host_security_group=_group_id(cloud, PEER_HOST_GROUP),
        peer_host_instance=host["InstanceId"] if host else "",
        peering=_peering_id(cloud),
        elb_security_group=_group_id(cloud, ELB_GROUP_NAME) or None,
    )


def _recover_vpc(cloud: AwsCloud, config: ExperimentConfig, key: VpcKey) -> VpcIds | None:
    found = cloud.ec2.describe_vpcs(Filters=cloud.owned(key))["Vpcs"]
    if not found:
        return None
    vpc_id = found[0]["VpcId"]
    subnets = cloud.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    tables = {t.get("Tags", [{}])[0].get("Value", ""): t["RouteTableId"] for t in _tables(cloud, vpc_id)}
    nat = cloud.ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
    igw = cloud.ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    cluster = getattr(config.clusters, key).name
    return VpcIds(
        key=key, vpc=vpc_id,
        public_subnets=[s["SubnetId"] for s in subnets if s.get("MapPublicIpOnLaunch")],
        private_subnets=[s["SubnetId"] for s in subnets if not s.get("MapPublicIpOnLaunch")],
        internet_gateway=igw["InternetGateways"][0]["InternetGatewayId"] if igw["InternetGateways"] else "",
        nat_gateway=next((n["NatGatewayId"] for n in nat if n["State"] != "deleted"), None),
        public_route_table=tables.get(f"{key}-public", ""), private_route_table=tables.get(f"{key}-private", ""),
        node_security_group=_group_id(cloud, node_group(key)), cluster=cluster, nodegroup=f"{key}-nodes",
        node_instances=_instances(cloud, f"{key}-node-"),
    )  # fmt: skip


def _tables(cloud: AwsCloud, vpc_id: str) -> list[dict[str, Any]]:
    tables = cloud.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    return [t for t in tables if any(tag["Key"] == "Name" for tag in t.get("Tags", []))]


def _group_id(cloud: AwsCloud, name: str) -> str:
    found = cloud.ec2.describe_security_groups(Filters=cloud.owned(name))["SecurityGroups"]
    return str(found[0]["GroupId"]) if found else ""


def _peering_id(cloud: AwsCloud) -> str | None:
    # moto ignores DescribeVpcPeeringConnections filters: match the tags here.
    for raw in cloud.ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]:
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        ours = tags.get("Name") == "vpc1-vpc2" and tags.get(TAG_ENVIRONMENT) == cloud.stamp.environment
        if ours and raw["Status"]["Code"] not in ("deleted", "rejected", "failed"):
            return str(raw["VpcPeeringConnectionId"])
    return None


def _instances(cloud: AwsCloud, prefix: str) -> list[str]:
    owned = [{"Name": f"tag:{TAG_ENVIRONMENT}", "Values": [cloud.stamp.environment]}]
    found = [i for r in cloud.ec2.describe_instances(Filters=owned)["Reservations"] for i in r["Instances"]]
    named = [i for i in found if any(t["Key"] == "Name" and t["Value"].startswith(prefix) for t in i.get("Tags", []))]
    return [i["InstanceId"] for i in named if i["State"]["Name"] != "terminated"]


def _first(reservations: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    items = [item for r in reservations for item in r[key] if item["State"]["Name"] != "terminated"]
    return items[0] if items else None
