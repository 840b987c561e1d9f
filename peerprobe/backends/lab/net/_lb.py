"""Load balancer nodes as AWS's controllers build them: one namespace per load balancer and zone, attached to
the VPC1 router in that zone's subnet. Classic ELB nodes proxy; NLB nodes rewrite the destination in the kernel.

Sources: cloud-provider-aws aws.go / aws_loadbalancer.go (CLB TCP listener to the NodePort, NLB instance
targets, cross-zone off, health checks on the traffic port or the healthCheckNodePort under Local),
aws-load-balancer-controller model_build_target_group.go (ip targets, preserve_client_ip defaults), NLB docs
(client IP preservation; "loopback-timeout": a target that is also the client never sees the reply).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog

from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net import _run
from peerprobe.backends.lab.net._fabric import instance_lines
from peerprobe.backends.lab.net._layout import subnet_of
from peerprobe.backends.lab.net._script import NsScript, Script, Table
from peerprobe.backends.lab.net.model import Eni, KubeService, LabNet, LbNode
from peerprobe.config import ExperimentConfig
from peerprobe.topology import LoadBalancerFacts, Topology, zone

log = structlog.get_logger()
ELB_GROUP = "vpc1-elb"  # the Classic ELB's own security group (cloud-provider-aws: k8s-elb-<name>)
HEALTH_PATH = "/healthz"  # kube-proxy's health-check server path (pkg/proxy/healthcheck)
TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
TG_ATTRIBUTES = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
RETURN_PATH_PRIORITY = 50  # before the VPC's "local" rule (100): replies of NLB flows go back via the NLB node


def layout_load_balancers(
    pre: str,
    config: ExperimentConfig,
    topology: Topology,
    services: list[KubeService],
    *,
    guest: str = "",
    marks_from: int = 0,
) -> list[LbNode]:
    """Every load balancer node of the applied LoadBalancer Services, one per zone of the plan's facts; a
    visitor's (attach mode) carry its tag in their names and take the connmarks after `marks_from`."""
    by_kind = {service.kind: service for service in services if service.type == "LoadBalancer"}
    found: list[LbNode] = []
    for kind, facts in topology.vpc1.load_balancer_facts.items():
        service = by_kind.get(kind)
        if service is None:
            continue
        for index in range(len(facts.private_ips)):
            mark = marks_from + len(found) + 1
            found.append(_lb_node(pre, config, topology, service, facts, index, mark=mark, guest=guest))
    return found


def _lb_node(
    pre: str,
    config: ExperimentConfig,
    topology: Topology,
    service: KubeService,
    facts: LoadBalancerFacts,
    index: int,
    *,
    mark: int,
    guest: str = "",
) -> LbNode:
    ip, az = facts.private_ips[index], zone(config.region, index)
    proxy = service.kind == "load-balancer"  # the in-tree controller's plain LoadBalancer: a Classic ELB
    ip_targets = service.annotations.get(TARGET_TYPE) == "ip"
    preserve = _preserve(service, ip_targets=ip_targets)
    subnet, side = subnet_of(ip, config.vpcs.vpc1)
    eni = Eni(
        ns=names.lb_ns(pre, names.LB_LETTER[service.kind], index, guest),
        device="eth0",
        router_if=names.lb_router_if(service.kind, index, guest),
        ip=ip,
        prefixlen=subnet.prefixlen,
        gateway=str(subnet.network_address + 1),
        subnet=side,
        public_ip=facts.public_ips[index] if facts.public_ips else None,
        groups=[elb_group(guest)] if proxy else [],  # NLBs of the in-tree controller have no security group
        source_dest_check=proxy or not preserve,  # preserving, it sends with the client's address
        zone=index,
    )
    health_port = None if ip_targets or not service.local else service.health_check_node_port
    return LbNode(
        kind=service.kind,
        zone=az,
        eni=eni,
        mode="proxy" if proxy else "forward",
        preserve_client_ip=preserve,
        listener_port=service.port,
        targets=_targets(topology, service, az, ip_targets=ip_targets),
        health_port=health_port,
        health_path=HEALTH_PATH if health_port else None,
        mark=mark,
        guest=guest,
    )


def elb_group(guest: str = "") -> str:
    """The lab's name of a Classic ELB's own security group: the lab's, or a visitor's (attach mode)."""
    return f"{ELB_GROUP}-{guest}" if guest else ELB_GROUP


def _preserve(service: KubeService, *, ip_targets: bool) -> bool:
    """preserve_client_ip.enabled from the target-group attributes; LBC defaults: ip false, instance true."""
    attributes = dict(
        item.split("=", 1) for item in service.annotations.get(TG_ATTRIBUTES, "").split(",") if "=" in item
    )
    value = attributes.get("preserve_client_ip.enabled")
    return (not ip_targets) if value is None else value.strip().lower() == "true"


def _targets(topology: Topology, service: KubeService, az: str, *, ip_targets: bool) -> list[str]:
    """The registered targets in this node's zone: cross-zone load balancing is off (aws.go)."""
    in_zone = {node.name for node in topology.vpc1.nodes if node.az == az}
    if ip_targets:
        return [f"{ep.ip}:{ep.port}" for ep in service.endpoints if ep.node in in_zone]
    return [f"{node.ip}:{service.node_port}" for node in topology.vpc1.nodes if node.name in in_zone]


# --- the build script --------------------------------------------------------------------------------------


def add_load_balancers(script: Script, lab: LabNet) -> None:
    router = lab.vpcs["vpc1"].router_ns
    for lb in lab.load_balancers:
        ns = script.ns(lb.ns)
        ns.ip.extend(instance_lines(lb.eni))  # an LB node's ENI is addressed like any instance's
        ns.forwarding([lb.eni.device])
        # An NLB node forwards back out of the interface it received on: no ICMP redirects.
        ns.sysctls.update({"net/ipv4/conf/all/send_redirects": "0", "net/ipv4/conf/eth0/send_redirects": "0"})
        ns.tables.update(lb_tables(lb))
        script.veth(lb.eni.device, lb.ns, lb.eni.router_if, router)
        if lb.mode == "forward":
            _return_path(script.ns(router), lb)


def _return_path(router: NsScript, lb: LbNode) -> None:
    """What AWS's fabric does for an NLB that keeps the client's address: the target's replies to a flow the
    NLB node forwarded go back to that node (connmark on the flow, policy routing on its replies)."""
    mangle = router.table("mangle")
    restore = "PREROUTING -m conntrack --ctdir REPLY -j CONNMARK --restore-mark"
    if f"-A {restore}" not in mangle.rules:
        mangle.add(restore)
    mangle.rules.insert(
        0, f"-A PREROUTING -i {lb.eni.router_if} -m conntrack --ctstate NEW -j CONNMARK --set-mark {lb.mark}"
    )
    table = names.TABLE_LB_BASE + lb.mark
    router.ip.extend(
        [
            f"route add default via {lb.eni.ip} dev {lb.eni.router_if} onlink table {table}",
            f"rule add fwmark {lb.mark} lookup {table} priority {RETURN_PATH_PRIORITY}",
        ]
    )


def lb_tables(lb: LbNode) -> dict[str, Table]:
    """The node's nat and filter tables for its currently healthy targets (none: nothing is forwarded)."""
    nat, flt = Table("nat"), Table("filter")
    chain = nat.chain("LB-TARGETS")
    port = f"-p tcp -m tcp --dport {lb.listener_port}"
    if lb.mode == "proxy":
        # The proxy dials the backend pool; the kernel picks a healthy instance (none: a reset).
        nat.add(f"OUTPUT -d {names.LB_BACKEND_POOL}/32 {port} -j {chain}")
        flt.add(f"OUTPUT -d {names.LB_BACKEND_POOL}/32 -p tcp -j REJECT --reject-with tcp-reset")
    else:
        nat.add(f"PREROUTING -d {lb.eni.ip}/32 {port} -j {chain}")
        flt.add(f"INPUT -d {lb.eni.ip}/32 {port} -j DROP")  # not forwarded: no healthy target
        if not lb.preserve_client_ip:
            nat.add(f"POSTROUTING -m conntrack --ctstate DNAT -j SNAT --to-source {lb.eni.ip}")
    nat.rules.extend(_spread(chain, lb.healthy))
    return {"nat": nat, "filter": flt}


def _spread(chain: str, targets: list[str]) -> list[str]:
    """One new flow to one target, evenly: kube-proxy's statistic-random cascade (flow hashing stands in)."""
    lines = []
    for index, target in enumerate(targets):
        left = len(targets) - index
        chance = f"-m statistic --mode random --probability {1 / left:.5f} " if left > 1 else ""
        lines.append(f"-A {chain} -p tcp {chance}-j DNAT --to-destination {target}")
    return lines


# --- after the health checks ---------------------------------------------------------------------------------


def program_load_balancers(lab: LabNet, healthy: Mapping[str, list[str]]) -> LabNet:
    """Send each load balancer node's new flows only to its healthy targets (one atomic restore per node)."""
    started = time.perf_counter()
    lbs = [lb.model_copy(update={"healthy": list(healthy.get(lb.ns, []))}) for lb in lab.load_balancers]
    _run.run_all([_program_job(lb) for lb in lbs])
    log.info(
        "lab.load_balancers.programmed",
        nodes=len(lbs),
        healthy={lb.ns: lb.healthy for lb in lbs},
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return lab.model_copy(update={"load_balancers": lbs})


def _program_job(lb: LbNode) -> _run.Job:
    rules = "".join(table.render() for table in lb_tables(lb).values())
    return _run.Job(f"load balancer rules in {lb.ns}", _run.in_netns(lb.ns, ["iptables-restore"]), rules, lb.ns)
