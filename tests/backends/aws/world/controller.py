"""cloud-provider-aws for VPC1's Services of type LoadBalancer, in moto: the load balancer it makes, its interfaces,
its hostname in the Service's status, its name in DNS and its targets' health, each arriving in its own time."""

from __future__ import annotations

import ipaddress
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from peerprobe import resources
from peerprobe.backends.aws import _state
from tests.backends.aws._fakes import _API_PARAMS
from tests.backends.aws.world.countdown import Countdown

if TYPE_CHECKING:
    from tests.backends.aws.world.world import World

REGISTERING = "Instance registration is still in progress."


@dataclass
class Balancer:
    """One load balancer the controller made for a Service, and how far along it is."""

    service: str
    name: str
    kind: str  # "classic" or "network"
    dns_name: str
    internal: bool
    node_port: int
    hostname: Countdown
    dns: Countdown
    health: Countdown
    namespace: str = "default"
    arn: str = ""
    target_group: str = ""
    interfaces: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)  # what its name resolves to
    allocations: list[str] = field(default_factory=list)


class Controller:
    """Makes each LoadBalancer Service's load balancer when it is applied: a Classic ELB, or an NLB (with its
    target group) for the nlb annotation, internal or internet-facing in the matching subnets, tagged for the
    cluster, with interfaces at the plan's addresses (and public ones for internet-facing). Its hostname shows in
    the Service's status after `hostname_checks` reads, the name resolves after `dns_checks` lookups, and its
    targets (the nodes) pass their health checks after `health_checks` looks (NLB `initial`, Classic
    OutOfService with reason ELB, until then). Deleting the Service deletes them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.hostname_checks = 0
        self.dns_checks = 0
        self.nlb_checks = 0
        self.clb_checks = 0
        self._balancers: dict[str, Balancer] = {}
        self._lock = threading.Lock()

    # --- the fake API server's LoadBalancerController -----------------------------------------------------

    def provision(self, service: dict[str, Any]) -> None:
        name = service["metadata"]["name"]
        kind = resources.SERVICE_KINDS[name]
        facts = self.world.plan.vpc1.load_balancer_facts[kind]
        nlb = service["metadata"].get("annotations", {}).get(resources.LB_TYPE) == "nlb"
        balancer = Balancer(
            service=name,
            namespace=str(service["metadata"].get("namespace", "default")),
            name="a" + uuid.uuid4().hex[:31],  # cloud-provider-aws: "a" and the Service's uid, dashes removed
            kind="network" if nlb else "classic",
            dns_name="",
            internal=facts.scheme == "internal",
            node_port=int(service["spec"]["ports"][0]["nodePort"]),
            hostname=Countdown(self.hostname_checks),
            dns=Countdown(self.dns_checks),
            health=Countdown(self.nlb_checks if nlb else self.clb_checks),
        )
        subnets = self._subnets(balancer.internal)
        (self._network if nlb else self._classic)(balancer, subnets)
        self._interfaces(balancer, subnets, facts.private_ips, [] if balancer.internal else facts.public_ips)
        with self._lock:
            self._balancers[_key(service)] = balancer

    def hostname(self, service: dict[str, Any]) -> str:
        balancer = self._balancers.get(_key(service))
        return balancer.dns_name if balancer is not None and balancer.hostname.look() else ""

    def deprovision(self, service: dict[str, Any]) -> None:
        with self._lock:
            balancer = self._balancers.pop(_key(service), None)
        if balancer is None:
            return
        ec2 = self.world.plain("ec2")
        for allocation in balancer.allocations:
            association = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0].get("AssociationId")
            if association:
                ec2.disassociate_address(AssociationId=association)
            ec2.release_address(AllocationId=allocation)
        for interface in balancer.interfaces:
            ec2.delete_network_interface(NetworkInterfaceId=interface)
        if balancer.kind == "classic":
            self.world.plain("elb").delete_load_balancer(LoadBalancerName=balancer.name)
        else:
            elbv2 = self.world.plain("elbv2")
            elbv2.delete_load_balancer(LoadBalancerArn=balancer.arn)
            elbv2.delete_target_group(TargetGroupArn=balancer.target_group)

    # --- DNS, for the clusters' readiness wait and for the data plane -------------------------------------------

    def resolve(self, hostname: str) -> list[str]:
        """A lookup (the readiness wait's): [] until the name is published."""
        balancer = self._by_name(hostname)
        return list(balancer.addresses) if balancer is not None and balancer.dns.look() else []

    def reachable(self, hostname: str) -> str | None:
        """What stops a connection to the load balancer at `hostname` now, as wget says it; None when nothing
        does (its name resolves and a target is healthy). Looks without counting: this is the network."""
        balancer = self._by_name(hostname)
        if balancer is None or not balancer.dns.arrived():
            return f"wget: bad address '{hostname}'"
        if not balancer.health.arrived():
            return "wget: download timed out"
        return None

    def _by_name(self, hostname: str) -> Balancer | None:
        with self._lock:
            return next((b for b in self._balancers.values() if b.dns_name and b.dns_name == hostname), None)

    # --- target health, as the adapter reads it -----------------------------------------------------------------

    def register(self, events: Any) -> None:
        events.register("after-call.elastic-load-balancing.DescribeInstanceHealth", self._instance_health)
        events.register("after-call.elastic-load-balancing-v2.DescribeTargetHealth", self._target_health)

    def _instance_health(self, http_response: Any, parsed: dict[str, Any], context: Any, **_: Any) -> None:
        name = context.get(_API_PARAMS, {}).get("LoadBalancerName")
        balancer = next((b for b in list(self._balancers.values()) if b.name == name), None)
        if http_response.status_code >= 300 or balancer is None:
            return
        healthy = balancer.health.look()
        state = {"State": "InService"} if healthy else {"State": "OutOfService", "ReasonCode": "ELB"}
        description = "N/A" if healthy else REGISTERING
        parsed["InstanceStates"] = [
            {"InstanceId": node, "Description": description, **state} for node in self.world.node_instances()
        ]

    def _target_health(self, http_response: Any, parsed: dict[str, Any], context: Any, **_: Any) -> None:
        arn = context.get(_API_PARAMS, {}).get("TargetGroupArn")
        balancer = next((b for b in list(self._balancers.values()) if b.target_group == arn), None)
        if http_response.status_code >= 300 or balancer is None:
            return
        health = (
            {"State": "healthy"}
            if balancer.health.look()
            else {"State": "initial", "Reason": "Elb.RegistrationInProgress"}
        )
        parsed["TargetHealthDescriptions"] = [
            {"Target": {"Id": node, "Port": balancer.node_port}, "TargetHealth": health}
            for node in self.world.node_instances()
        ]

    # --- making them ------------------------------------------------------------------------------------------

    def _subnets(self, internal: bool) -> list[dict[str, Any]]:
        network = _state.load(self.world.environment).networks["vpc1"]
        ids = network.private_subnets if internal else network.public_subnets
        return list(self.world.plain("ec2").describe_subnets(SubnetIds=list(ids))["Subnets"])

    def _tags(self, balancer: Balancer) -> list[dict[str, str]]:
        return [
            {"Key": f"kubernetes.io/cluster/{self.world.config.clusters.vpc1.name}", "Value": "owned"},
            {"Key": "kubernetes.io/service-name", "Value": f"{balancer.namespace}/{balancer.service}"},
        ]

    def _classic(self, balancer: Balancer, subnets: list[dict[str, Any]]) -> None:
        listener = {
            "Protocol": "TCP",
            "LoadBalancerPort": 80,
            "InstanceProtocol": "TCP",
            "InstancePort": balancer.node_port,
        }
        made = self.world.plain("elb").create_load_balancer(
            LoadBalancerName=balancer.name,
            Listeners=[listener],
            Subnets=[s["SubnetId"] for s in subnets],
            Scheme="internal" if balancer.internal else "internet-facing",
            Tags=self._tags(balancer),
        )
        balancer.dns_name = made["DNSName"]

    def _network(self, balancer: Balancer, subnets: list[dict[str, Any]]) -> None:
        elbv2 = self.world.plain("elbv2")
        made = elbv2.create_load_balancer(
            Name=balancer.name,
            Subnets=[s["SubnetId"] for s in subnets],
            Scheme="internal" if balancer.internal else "internet-facing",
            Type="network",
            Tags=self._tags(balancer),
        )["LoadBalancers"][0]
        group = elbv2.create_target_group(
            Name=f"k8s-{balancer.name[:24]}",
            Protocol="TCP",
            Port=balancer.node_port,
            VpcId=subnets[0]["VpcId"],
            TargetType="instance",
        )["TargetGroups"][0]
        elbv2.create_listener(
            LoadBalancerArn=made["LoadBalancerArn"],
            Protocol="TCP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
        )
        balancer.dns_name, balancer.arn, balancer.target_group = (
            made["DNSName"],
            made["LoadBalancerArn"],
            group["TargetGroupArn"],
        )

    def _interfaces(
        self, balancer: Balancer, subnets: list[dict[str, Any]], private: list[str], public: list[str]
    ) -> None:
        """One interface per zone at the plan's address, described as ELB's are; public ones get an address."""
        ec2 = self.world.plain("ec2")
        suffix = balancer.arn.split(":loadbalancer/", 1)[-1] if balancer.arn else balancer.name
        for index, address in enumerate(private):
            subnet = next(s for s in subnets if ipaddress.ip_address(address) in ipaddress.ip_network(s["CidrBlock"]))
            interface = ec2.create_network_interface(
                SubnetId=subnet["SubnetId"], PrivateIpAddress=address, Description=f"ELB {suffix}"
            )["NetworkInterface"]["NetworkInterfaceId"]
            balancer.interfaces.append(interface)
            if index < len(public):
                allocation = ec2.allocate_address(Domain="vpc", Address=public[index])["AllocationId"]
                ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=interface)
                balancer.allocations.append(allocation)
        balancer.addresses = list(private if balancer.internal else public)


def _key(service: dict[str, Any]) -> str:
    """A Service's load balancer is its own: two namespaces may each have a Service of one name."""
    return f"{service['metadata'].get('namespace', 'default')}/{service['metadata']['name']}"
