"""The lab's Cloud adapter: the one boto3 adapter on moto, plus what AWS supplies physically and moto does not —
the EKS cluster security group, the managed node group's instances, the controllers' security-group rules and
the load balancers' addresses — and the reads the data plane is built from (rules, peering), so a rule revoked
or a peering deleted behind peerprobe's back through the AWS API shows in the lab.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import structlog

from peerprobe.backends.aws import AwsCloud, Waits
from peerprobe.backends.aws._state import AwsState
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.experiment import PEER_HOST
from peerprobe.backends.lab import moto_service, standins
from peerprobe.backends.lab.net import (
    PEER_HOST_GROUP,
    KubeService,
    SecurityGroupRule,
    elb_group,
    node_group,
    pod_group,
)
from peerprobe.backends.ports import EksCluster, IngressRule, Instance, NodeGroup, Stamp, TransitGatewayRouting
from peerprobe.backends.steps import VPC_KEYS, VpcKey
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, ConflictError, NotFoundError
from peerprobe.topology import LoadBalancerFacts, Topology, subnets

log = structlog.get_logger()
NODE_TYPE = "t3.medium"  # when the node group names none (the workshop's)
LAB_WAITS = Waits(delay=0, max_attempts=40)  # moto settles at once; botocore's waiters need not sleep


def connect(config: ExperimentConfig, topology: Topology, *, environment: str, run_id: str) -> LabCloud:
    """The adapter on this machine's moto (started or reused), with the lab's stand-ins on its session."""
    standins.offer_cni(config.clusters.vpc1.cni_version, config.clusters.vpc2.cni_version)
    clients = ClientFactory.for_loopback(config.region, moto_service.endpoint_url(), hooks=standins.install)
    stamp = Stamp(experiment=config.name, environment=environment, run_id=run_id)
    return LabCloud(clients, stamp=stamp, waits=LAB_WAITS, config=config, topology=topology)


# What the lab itself calls on moto, beyond the steps' own calls (named, so a run's record can set them apart).
SUPPLYING: ContextVar[str | None] = ContextVar("peerprobe_lab_supplying", default=None)


@contextlib.contextmanager
def supplying(what: str) -> Iterator[None]:
    """Calls made inside stand for what AWS does on its own side (`what`), not for a step of peerprobe's."""
    token = SUPPLYING.set(what)
    try:
        yield
    finally:
        SUPPLYING.reset(token)


LATENCY_ENV = "PEERPROBE_LAB_LATENCY"  # e.g. "cluster=7,nodegroup=2,load_balancer=2,ec2=0.3": AWS-like step times


def latency_profile() -> dict[str, float]:
    """Seconds each kind of step takes in the lab when it stands in for AWS (benchmarks of the flow's overlap)."""
    profile: dict[str, float] = {}
    for item in filter(None, os.environ.get(LATENCY_ENV, "").split(",")):
        name, _, seconds = item.partition("=")
        try:
            profile[name.strip()] = float(seconds)
        except ValueError:
            raise ConfigError(f"{LATENCY_ENV}: {item!r} is not name=seconds") from None
    return profile


def provisioning(kind: str) -> None:
    """A deliberate, bounded delay standing in for AWS's own provisioning time; none unless a profile is set."""
    delay = latency_profile().get(kind, 0.0)
    if delay > 0:
        time.sleep(delay)


def cluster_group_name(cluster: str) -> str:
    # EKS names it eks-cluster-sg-<cluster>-<id> (sec-group-reqs.html); one per cluster here.
    return f"eks-cluster-sg-{cluster}"


class LabCloud(AwsCloud):
    """AwsCloud on moto; the overrides add only what AWS itself would do on the side."""

    def __init__(
        self, clients: ClientFactory, *, stamp: Stamp, waits: Waits, config: ExperimentConfig, topology: Topology
    ) -> None:
        super().__init__(clients, stamp=stamp, waits=waits)
        self.config = config
        self.topology = topology
        # Attach mode: the load balancers the owner's controllers made for this experiment's Services.
        self.visiting: Callable[[], Iterable[LoadBalancerFacts]] = tuple
        if config.attaching:  # what attach mode reads of a cluster (backends/aws/_read.py)
            self.eks.meta.events.register("after-call.eks.DescribeCluster", self._supply_vpc)

    def _supply_vpc(self, parsed: dict[str, Any], **_: Any) -> None:
        """EKS describes a cluster with its VPC and cluster security group; moto's with its subnets only."""
        cluster = parsed.get("cluster") or {}
        vpc_config = cluster.get("resourcesVpcConfig") or {}
        subnet_ids = list(vpc_config.get("subnetIds") or [])
        if vpc_config.get("vpcId") or not subnet_ids:
            return
        with supplying("eks cluster vpc and security group"):
            vpc_id = self.subnets(subnet_ids[:1])[0].vpc_id
            by_name = [{"Name": "group-name", "Values": [cluster_group_name(str(cluster.get("name", "")))]}]
            groups = self.ec2.describe_security_groups(Filters=[*by_name, {"Name": "vpc-id", "Values": [vpc_id]}])
        vpc_config["vpcId"] = vpc_id
        found = groups["SecurityGroups"]
        vpc_config["clusterSecurityGroupId"] = str(found[0]["GroupId"]) if found else ""

    # --- EKS: the cluster security group ---------------------------------------------------------------------

    def ensure_cluster(self, name: str, **kwargs: Any) -> EksCluster:
        """EKS creates a cluster security group that admits itself (sec-group-reqs.html); moto's EKS none."""
        cluster = super().ensure_cluster(name, **kwargs)
        provisioning("cluster")
        with supplying("eks cluster security group"):
            vpc_id = self.subnets(cluster.subnet_ids[:1])[0].vpc_id
            group = self.ensure_security_group(
                cluster_group_name(name), vpc_id=vpc_id, description=f"EKS created security group applied to {name}"
            )
            self.authorize_ingress(group.id, rules=[IngressRule("-1", -1, -1, source_group=group.id)])
        return dataclasses.replace(cluster, cluster_security_group_id=group.id)

    def cluster(self, name: str) -> EksCluster | None:
        found = super().cluster(name)
        if found is None:
            return None
        with supplying("eks cluster security group"):
            group = self.find_security_group(cluster_group_name(name))
        return dataclasses.replace(found, cluster_security_group_id=group or "")

    def delete_cluster(self, name: str) -> None:
        """EKS deletes the cluster security group with the cluster."""
        super().delete_cluster(name)
        with supplying("eks cluster security group"):
            group = self.find_security_group(cluster_group_name(name))
            if group:
                self.delete_security_group(group)

    # --- EKS: the node group's instances ---------------------------------------------------------------------

    def ensure_nodegroup(self, cluster: str, **kwargs: Any) -> NodeGroup:
        """The node group's Auto Scaling group launches its instances (moto's launches none): one per planned
        node, at its planned address, in the node group's subnet that holds it, in the cluster security group."""
        group = super().ensure_nodegroup(cluster, **kwargs)
        provisioning("nodegroup")
        types = tuple(kwargs.get("instance_types") or (NODE_TYPE,))
        with supplying("node group instances"):
            self._launch_nodes(cluster, group, instance_type=str(types[0]))
        return group

    def _launch_nodes(self, cluster: str, group: NodeGroup, *, instance_type: str) -> None:
        found = self.cluster(cluster)
        security_group = found.cluster_security_group_id if found is not None else ""
        cidrs = {s.id: ipaddress.ip_network(s.cidr) for s in self.subnets(group.subnet_ids)}
        for index, node in enumerate(self._planned_nodes(cluster)):
            subnet = next((i for i, net in cidrs.items() if ipaddress.ip_address(node.ip) in net), None)
            if subnet is None:
                raise ConflictError(
                    f"eks nodegroup {cluster}/{group.name}: no subnet holds node {node.ip}",
                    resource="eks nodegroup",
                    resource_id=group.name,
                    state="no-subnet",
                )
            self.ensure_instance(
                f"{cluster}-node-{index}",
                subnet_id=subnet,
                image_id=standins.LAB_IMAGE,
                instance_type=instance_type,
                security_group_ids=[security_group] if security_group else [],
                private_ip=node.ip,
            )

    def delete_nodegroup(self, cluster: str, *, name: str) -> None:
        """The Auto Scaling group terminates its instances with the node group."""
        with supplying("node group instances"):
            for index in range(len(self._planned_nodes(cluster))):
                instance = self.find_instance(f"{cluster}-node-{index}")
                if instance:
                    self.terminate_instance(instance)
        super().delete_nodegroup(cluster, name=name)

    def _planned_nodes(self, cluster: str) -> list[Any]:
        key = next((k for k in VPC_KEYS if getattr(self.config.clusters, k).name == cluster), None)
        return list(getattr(self.topology, key).nodes) if key is not None else []

    # --- EC2: the host's address ------------------------------------------------------------------------------

    def ensure_instance(self, name: str, **kwargs: Any) -> Instance:
        """The EC2 host gets the planned address in its subnet (the one the lab's namespace for it has)."""
        if name != PEER_HOST:
            return super().ensure_instance(name, **kwargs)
        if kwargs.get("private_ip") is None:
            kwargs["private_ip"] = self.topology.peer_host.private_ip
        provisioning("ec2")
        return super().ensure_instance(name, **kwargs)

    def instance(self, instance_id: str) -> Instance:
        """AWS gives the host a public address from its own pool; the lab's is the plan's, where the host's
        namespace answers (moto would pick a random one that nothing in the lab serves)."""
        found = super().instance(instance_id)
        host = self.topology.peer_host
        if found.private_ip != host.private_ip or found.public_ip is None:
            return found
        return dataclasses.replace(found, public_ip=host.public_ip)

    # --- load balancers ---------------------------------------------------------------------------------------

    def load_balancer_addresses(self, dns_name: str) -> tuple[list[str], list[str]]:
        """The lab's load balancer nodes' addresses (its controllers make no load balancers in moto)."""
        for facts in [*self.topology.vpc1.load_balancer_facts.values(), *self.visiting()]:
            if facts.dns_name == dns_name:
                return list(facts.private_ips), list(facts.public_ips)
        return [], []


# --- what the load balancer controllers write ------------------------------------------------------------------

ELB_GROUP_NAME = "k8s-elb-loadbalancer"  # cloud-provider-aws names it k8s-elb-<load balancer name>
# The description of the nodes' rule admitting the ELB's group: a revoke names it too (rules compare with it).
ELB_RULE = "kubernetes.io/rule/elb"
TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"


def ensure_controller_rules(
    cloud: AwsCloud,
    config: ExperimentConfig,
    plan: Topology,
    ids: AwsState,
    services: Sequence[KubeService],
    *,
    guest: str = "",
) -> str | None:
    """The security-group rules AWS's controllers write for the LoadBalancer Services (behaviour.md 3, 4, 11):
    the ELB's own group from loadBalancerSourceRanges plus its group-to-group rule on the nodes; the in-tree
    NLB's client rule on its NodePort from the source ranges and its health rule from its subnets; the AWS
    Load Balancer Controller's rule on the pod port for ip targets. Returns the ELB's group, if any. A visitor's
    (attach mode, `guest`) ELB group has a name of its own: each ELB has its own group."""
    with supplying("load balancer controllers' security-group rules"):
        return _controller_rules(cloud, config, plan, ids, services, guest)


def _controller_rules(
    cloud: AwsCloud,
    config: ExperimentConfig,
    plan: Topology,
    ids: AwsState,
    services: Sequence[KubeService],
    guest: str,
) -> str | None:
    nodes_group, vpc_id = node_security_group(ids, "vpc1"), ids.networks["vpc1"].vpc
    node_rules: list[IngressRule] = []
    elb = None
    for service in services:
        if service.type != "LoadBalancer" or service.node_port is None:
            continue
        if service.kind == "load-balancer":
            elb = _ensure_elb_group(cloud, vpc_id, service, elb_group_name(guest))
            node_rules.append(IngressRule("-1", -1, -1, source_group=elb, description=ELB_RULE))
        else:
            node_rules += _nlb_rules(config, plan, service)
    cloud.authorize_ingress(nodes_group, rules=node_rules)
    log.info("lab.controllers.rules", node_rules=len(node_rules), elb_group=elb, guest=guest)
    return elb


def elb_group_name(guest: str = "") -> str:
    return f"{ELB_GROUP_NAME}-{guest}" if guest else ELB_GROUP_NAME


def remove_guest_rules(
    cloud: AwsCloud, config: ExperimentConfig, plan: Topology, ids: AwsState, services: Sequence[KubeService]
) -> None:
    """A visitor's LoadBalancer Services deleted (attach mode): the NLB controller revokes the rules it wrote on
    the owner's nodes for them (the ELB's group goes by remove_controller_rules)."""
    rules = [
        rule
        for service in services
        if service.type == "LoadBalancer" and service.node_port is not None and service.kind != "load-balancer"
        for rule in _nlb_rules(config, plan, service)
    ]
    if not rules:
        return
    with supplying("load balancer controllers' security-group rules"), contextlib.suppress(NotFoundError):
        cloud.revoke_ingress(node_security_group(ids, "vpc1"), rules=rules)
    log.info("lab.controllers.rules_revoked", node_rules=len(rules))


def remove_controller_rules(cloud: AwsCloud, ids: AwsState, elb_group: str | None) -> None:
    """The in-tree controller deletes the ELB's group with its Service; the nodes' rule naming it goes first,
    as AWS refuses to delete a group another group's rule references."""
    if not elb_group:
        return
    with supplying("load balancer controllers' security-group rules"):
        with contextlib.suppress(NotFoundError):
            reference = IngressRule("-1", -1, -1, source_group=elb_group, description=ELB_RULE)
            cloud.revoke_ingress(node_security_group(ids, "vpc1"), rules=[reference])
        cloud.delete_security_group(elb_group)


def remove_orphan_elb_group(cloud: AwsCloud, config: ExperimentConfig) -> str | None:
    """The ELB's group when no record of it is left (the lab's state is gone or unreadable): found by its name
    and the environment's tag; the nodes' rule naming it revoked first (on the cluster's group, asked of EKS)."""
    group = cloud.find_security_group(ELB_GROUP_NAME)
    if group is None:
        return None
    with supplying("load balancer controllers' security-group rules"):
        cluster = cloud.cluster(config.clusters.vpc1.name)
        if cluster is not None and cluster.cluster_security_group_id:
            with contextlib.suppress(NotFoundError):
                reference = IngressRule("-1", -1, -1, source_group=group, description=ELB_RULE)
                cloud.revoke_ingress(cluster.cluster_security_group_id, rules=[reference])
        cloud.delete_security_group(group)
    return group


def node_security_group(ids: AwsState, key: VpcKey) -> str:
    """The cluster security group the managed nodes use (recorded by the create-cluster step)."""
    cluster = ids.clusters.get(key)
    if cluster is None or not cluster.security_group:
        raise ConflictError(
            f"environment {ids.environment}: cluster {key} has no security group yet",
            resource="security group",
            resource_id=key,
            state="absent",
        )
    return cluster.security_group


def _ensure_elb_group(cloud: AwsCloud, vpc_id: str, service: KubeService, name: str) -> str:
    group = cloud.ensure_security_group(
        name,
        vpc_id=vpc_id,
        description=f"Security group for Kubernetes ELB loadbalancer ({service.namespace}/{service.name})",
    )
    port = service.port
    rules = [
        IngressRule("tcp", port, port, cidr=c, description="loadBalancerSourceRanges") for c in service.source_ranges
    ]
    cloud.authorize_ingress(group.id, rules=rules)
    return group.id


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
        return [
            IngressRule("tcp", port, port, cidr=c, description="elbv2.k8s.aws/targetGroupBinding")
            for c in dict.fromkeys(sources)
        ]
    assert service.node_port is not None
    client = [
        IngressRule("tcp", service.node_port, service.node_port, cidr=c, description="kubernetes.io/rule/nlb/client")
        for c in service.source_ranges
    ]
    health_ports = {
        service.node_port,
        *([service.health_check_node_port] if service.local and service.health_check_node_port else []),
    }
    health = [
        IngressRule("tcp", p, p, cidr=c, description="kubernetes.io/rule/nlb/health")
        for p in sorted(health_ports)
        for c in lb_subnets
    ]
    return client + health


# --- reading back ------------------------------------------------------------------------------------------


def security_group_rules(
    cloud: AwsCloud, ids: AwsState, elb: str | None, visitors: dict[str, str] | None = None
) -> list[SecurityGroupRule]:
    """The lab's filter rules, from the security groups as moto holds them now: the cluster groups, the pods'
    own groups (on the branch ENIs the SecurityGroupPolicy's pods get), the EC2 host's and the ELB's, and the
    visitors' ELB groups (attach mode; `visitors`: tag -> group id)."""
    names = {node_security_group(ids, key): node_group(key) for key in VPC_KEYS}
    names |= {c.pod_security_group: pod_group(key) for key, c in ids.clusters.items() if c.pod_security_group}
    if ids.peer_host_security_group:
        names[ids.peer_host_security_group] = PEER_HOST_GROUP
    if elb:
        names[elb] = elb_group()
    names |= {group_id: elb_group(tag) for tag, group_id in (visitors or {}).items()}
    with supplying("the data plane reads the security groups"):
        return [
            converted
            for group_id, name in names.items()
            for rule in _rules_or_none(cloud, group_id)
            if (converted := _lab_rule(name, rule, names)) is not None
        ]


def _rules_or_none(cloud: AwsCloud, group_id: str) -> tuple[IngressRule, ...]:
    try:
        return cloud.ingress_rules(group_id)
    except NotFoundError:  # deleted behind peerprobe's back: it admits nothing
        return ()


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


def peering_active(cloud: AwsCloud, ids: AwsState) -> bool:
    """Active, with its routes both ways: what decides whether the lab links the two VPC routers (a peering
    connection, or the transit gateway's attachments)."""
    if ids.transit_gateway is not None:
        with supplying("the data plane reads the transit gateway and its routes"):
            return _transit_gateway_routed(cloud, ids, ids.transit_gateway)
    if ids.peering is None:
        return False
    with supplying("the data plane reads the peering and its routes"):
        return _peering_routed(cloud, ids, ids.peering)


def _transit_gateway_routed(cloud: AwsCloud, ids: AwsState, gateway_id: str) -> bool:
    """The gateway available; each VPC's attachment available and associated with its route table; that table
    routing each VPC's primary block to the VPC's attachment; every VPC route table sending to the gateway."""
    try:
        routing = cloud.transit_gateway_routing(gateway_id)
        if routing.state != "available":
            return False
        table = transit_gateway_routes(cloud, routing)
        for key, network in ids.networks.items():
            attachment = ids.transit_gateway_attachments.get(key)
            if attachment not in routing.attachments or attachment not in routing.associated:
                return False
            if table.get(network.cidr) != attachment:
                return False
        return all(_routes_via(cloud, t, gateway_id) for n in ids.networks.values() for t in n.route_tables)
    except NotFoundError:
        return False


def transit_gateway_routes(cloud: AwsCloud, routing: TransitGatewayRouting) -> dict[str, str]:
    """The gateway's route table as AWS fills it: each propagating attachment's VPC CIDR blocks (Transit Gateway
    guide, "Route propagation": a VPC attachment propagates its VPC's CIDR blocks; moto 5 records the propagation
    but adds no route), then the static routes, which take precedence over propagated ones for the same prefix
    (Transit Gateway guide, "Route evaluation order")."""
    routes = {
        cidr: attachment
        for attachment in sorted(routing.propagating)
        if attachment in routing.attachments
        for cidr in cloud.vpc_cidrs(routing.attachments[attachment])
    }
    return routes | routing.static_routes


def _peering_routed(cloud: AwsCloud, ids: AwsState, peering_id: str) -> bool:
    try:
        peering = cloud.peering(peering_id)
        if peering.status != "active":
            return False
        return all(_routes_via(cloud, table, peering_id) for n in ids.networks.values() for table in n.route_tables)
    except NotFoundError:
        return False


def _routes_via(cloud: AwsCloud, table_id: str, peering_id: str) -> bool:
    return any(r.target_id == peering_id for r in cloud.route_table(table_id).routes)
