"""Security groups as stateful filter rules in the VPC router, on what it forwards *to* each member ENI.

Like AWS: return traffic of an admitted connection is allowed (conntrack), a removed rule does not cut an
existing connection, and a group may admit its own members ("self"). Egress is left open (the default SG).
"""

from __future__ import annotations

import time

import structlog

from peerprobe.backends.lab.net import _run
from peerprobe.backends.lab.net._layout import PEER_HOST_GROUP, node_group, pod_group
from peerprobe.backends.lab.net._script import Table
from peerprobe.backends.lab.net.model import LabNet, SecurityGroupRule, VpcKey
from peerprobe.config import ExperimentConfig
from peerprobe.probes.plan import ECHO_PORT, PEER_HOST_PORT
from peerprobe.topology import Topology

log = structlog.get_logger()


def workshop_rules(config: ExperimentConfig, topology: Topology) -> list[SecurityGroupRule]:
    """The rules the experiment runs with: each cluster SG admits itself (EKS sec-group-reqs.html), VPC1's
    nodes admit `open_from_peer` from each of VPC2's CIDR blocks (one rule per block, as the model's
    peer_rules), the EC2 host admits VPC1's blocks on :80 (design.md config)."""
    keys: tuple[VpcKey, ...] = ("vpc1", "vpc2")
    rules = [SecurityGroupRule(group=node_group(k), protocol="all", source_group=node_group(k)) for k in keys]
    for item in config.security_groups.open_from_peer:
        port = topology.vpc1.node_port if item == "nodeport" else item
        if port is not None:
            rules += [
                SecurityGroupRule(group=node_group("vpc1"), port=int(port), sources=[block])
                for block in _blocks(topology.vpc2.cidr, config.vpcs.vpc2.secondary_cidrs)
            ]
    rules += _pod_group_rules(config, topology)
    if config.peer_host.admit_vpc1:
        sources = _vpc1_sources(config, topology)
        rules.append(SecurityGroupRule(group=PEER_HOST_GROUP, port=PEER_HOST_PORT, sources=sources))
    return rules


def _pod_group_rules(config: ExperimentConfig, topology: Topology) -> list[SecurityGroupRule]:
    """peerprobe's group for security-group pods (docs/model.md): the cluster group on the echo port (kubelet's
    probes, as EKS requires) and, with `open_from_peer`, VPC1's pods admit the peer's blocks on the ports the
    nodes' group opens."""
    rules = []
    for key in ("vpc1", "vpc2"):
        cluster = config.clusters.vpc1 if key == "vpc1" else config.clusters.vpc2
        groups = cluster.pod_security_groups
        if groups is None:
            continue
        rules.append(SecurityGroupRule(group=pod_group(key), port=ECHO_PORT, source_group=node_group(key)))
        if key == "vpc1" and groups.open_from_peer:
            for item in config.security_groups.open_from_peer:
                port = topology.vpc1.node_port if item == "nodeport" else item
                rules += [
                    SecurityGroupRule(group=pod_group(key), port=int(port), sources=[block])
                    for block in _blocks(topology.vpc2.cidr, config.vpcs.vpc2.secondary_cidrs)
                    if port is not None
                ]
    return rules


def _blocks(primary: str, secondary: list[str]) -> list[str]:
    return [primary, *secondary]


def _vpc1_sources(config: ExperimentConfig, topology: Topology) -> list[str]:
    # VPC1's blocks (the peering path) and the public addresses VPC1 reaches the internet from (NAT, public nodes).
    public = [topology.vpc1.nat_gateway, *(n.public_ip for n in topology.vpc1.nodes)]
    return [*_blocks(topology.vpc1.cidr, config.vpcs.vpc1.secondary_cidrs), *(f"{ip}/32" for ip in public if ip)]


def echo_port_rule(topology: Topology) -> SecurityGroupRule:
    """The rule peerprobe opens for the pod-IP probes from the peer VPC (behaviour.md section 4)."""
    return SecurityGroupRule(group=node_group("vpc1"), port=ECHO_PORT, sources=[topology.vpc2.cidr])


def filter_table(lab: LabNet, key: VpcKey, rules: list[SecurityGroupRule]) -> Table:
    table = Table("filter")
    table.add("FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    groups: list[str] = []
    for eni in lab.enis_of(key):
        if not eni.groups:
            continue  # a NAT gateway has no security group
        chain = table.chain(f"TO-{eni.router_if}")
        table.add(f"FORWARD -o {eni.router_if} -j {chain}")
        table.rules.extend(f"-A {chain} -j SG-{group}" for group in eni.groups)
        table.add(f"{chain} -j DROP")
        groups += [g for g in eni.groups if g not in groups]
    for group in groups:
        table.chain(f"SG-{group}")
        table.rules.extend(line for rule in rules if rule.group == group for line in _rule_lines(lab, rule))
    return table


def _rule_lines(lab: LabNet, rule: SecurityGroupRule) -> list[str]:
    match = ""
    if rule.protocol == "tcp":
        ports = f"{rule.port}:{rule.port_to}" if rule.port_to else str(rule.port or "")
        match = " -p tcp" + (f" -m tcp --dport {ports}" if ports else "")
    return [f"-A SG-{rule.group} -s {source}{match} -j ACCEPT" for source in _sources(lab, rule)]


def _sources(lab: LabNet, rule: SecurityGroupRule) -> list[str]:
    members = []
    if rule.source_group is not None:
        enis = [e for k in lab.vpcs for e in lab.enis_of(k) if rule.source_group in e.groups]
        members = [f"{ip}/32" for eni in enis for ip in eni.addresses]
    return list(dict.fromkeys([*rule.sources, *members]))


def apply_security_groups(lab: LabNet, rules: list[SecurityGroupRule]) -> LabNet:
    """Replace every group's rules in both VPC routers at once; returns the LabNet to persist."""
    started = time.perf_counter()
    updated = lab.model_copy(update={"security_groups": list(rules)})
    _run.run_all([restore_job(updated, key) for key in updated.vpcs])
    log.info("lab.security_groups.applied", rules=len(rules), elapsed_ms=round((time.perf_counter() - started) * 1000))
    return updated


def restore_job(lab: LabNet, key: VpcKey) -> _run.Job:
    ns = lab.vpcs[key].router_ns
    rules = filter_table(lab, key, lab.security_groups).render()
    # Only the filter table is in the input, so the raw table (source/destination check) is left alone.
    return _run.Job(f"security groups in {ns}", _run.in_netns(ns, ["iptables-restore"]), rules, ns)
