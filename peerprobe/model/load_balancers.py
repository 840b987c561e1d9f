"""The load balancers AWS's controllers build for the Services (behaviour.md section 3).

Sources: cloud-provider-aws aws.go / aws_loadbalancer.go (Classic ELB TCP listener on the NodePort, NLB
instance targets, cross-zone off), CLB proxy-protocol doc (a CLB is a proxy), NLB client IP preservation
doc and troubleshooting "loopback-timeout" (hairpin), aws-load-balancer-controller model_build_target_group.go
(ip targets, preserve_client_ip).
"""

from __future__ import annotations

from peerprobe.model import kube_proxy, places, pod_eni
from peerprobe.model._walk import Actor, Blocked, Packet, Step, block
from peerprobe.model.clients import Client
from peerprobe.model.cni import echo_reply
from peerprobe.model.facts import Facts
from peerprobe.model.security_groups import admit_at_node, admit_by_source_ranges
from peerprobe.probes.plan import ECHO_PORT
from peerprobe.topology import Node

CLB_PROXY = "Classic ELB proxy"
NLB_FORWARD = "NLB forwards to its target"
CONVERGING = (
    "cross-zone is off and only one zone has a healthy target: until health checks converge and DNS drops "
    "the other zones, a probe may time out"
)


def classic_elb(facts: Facts) -> list[Step]:
    lb = facts.topology.vpc1.load_balancer_facts["load-balancer"]
    port = facts.topology.vpc1.service_node_ports["load-balancer"]
    at = places.load_balancer("load-balancer")
    steps = [admit_by_source_ranges("the ELB's security group", facts, at=at), _proxy(lb.private_ips[0], facts)]
    if facts.config.services.external_traffic_policy == "Local":
        steps.append(_tolerate(CONVERGING))
    return [
        *steps,
        admit_at_node(port, facts),
        kube_proxy.external(facts, receiving=None, actor=Actor.VPC1_NODE),
        pod_eni.deliver(facts, None),
    ]


def _proxy(address: str, facts: Facts) -> Step:
    def step(packet: Packet) -> Packet:
        at = places.load_balancer("load-balancer")
        proxied = packet.becomes(
            Actor.LOAD_BALANCER,
            address,
            "the Classic ELB's TCP listener is a proxy: it opens a new connection from its own private address "
            "to a NodePort",
            at=at,
            by=CLB_PROXY,
        )
        node = "to a node's NodePort (the model's representative: the echo pod's node)"
        return proxied.to(facts.echo_node.ip, node, at=at, by=CLB_PROXY)

    return step


def _tolerate(reason: str) -> Step:
    def step(packet: Packet) -> Packet:
        return packet.tolerate(reason)

    return step


def internal_nlb(facts: Facts, client: Client) -> list[Step]:
    if facts.config.services.internal_nlb.target_type == "ip":
        return _ip_targets(facts, client)
    return _instance_targets(facts, client)


def _preserve_or_replace(facts: Facts, kind: str, target: str) -> Step:
    """The NLB keeps or replaces the source, and forwards to ``target`` (a node, or the pod for ip targets)."""
    lb = facts.topology.vpc1.load_balancer_facts[kind]
    at = places.load_balancer(kind)

    def step(packet: Packet) -> Packet:
        if facts.config.services.internal_nlb.preserve_client_ip:
            kept = packet.note(
                f"the NLB preserves the client address {packet.ip} (preserve_client_ip.enabled=true)",
                headline=True,
                at=at,
                by="NLB client IP preservation",
            )
        else:
            kept = packet.becomes(
                Actor.LOAD_BALANCER,
                lb.private_ips[0],
                "client IP preservation is off: the NLB sends from its own private address",
                at=at,
                by="NLB (client IP preservation off)",
            )
        return kept.to(target, f"the NLB forwards to its target {target}", at=at, by=NLB_FORWARD)

    return step


def _instance_targets(facts: Facts, client: Client) -> list[Step]:
    port = facts.topology.vpc1.service_node_ports["internal-nlb"]
    local = facts.config.services.external_traffic_policy == "Local"
    targets = [facts.echo_node] if local else list(facts.topology.vpc1.nodes)
    forward = _preserve_or_replace(facts, "internal-nlb", facts.echo_node.ip)
    steps = [forward, admit_at_node(port, facts), _hairpin(facts, client, targets)]
    if local:
        steps.append(_tolerate(CONVERGING))
    return [*steps, kube_proxy.external(facts, receiving=None, actor=Actor.VPC1_NODE), pod_eni.deliver(facts, None)]


def _ip_targets(facts: Facts, client: Client) -> list[Step]:
    echo = facts.topology.vpc1.echo_pod
    assert echo is not None
    return [
        _preserve_or_replace(facts, "internal-nlb", echo.ip),
        _note(
            "ip targets (AWS Load Balancer Controller): the NLB sends straight to the echo pod, "
            "kube-proxy is not involved"
        ),
        pod_eni.admit_at_echo(ECHO_PORT, facts, client),
        _hairpin(facts, client, [facts.echo_node]),
        _tolerate(CONVERGING),
        echo_reply(facts),
    ]


def _note(reason: str) -> Step:
    def step(packet: Packet) -> Packet:
        return packet.note(reason)

    return step


def _forward_to(at: str, node_ip: str) -> Step:
    def step(packet: Packet) -> Packet:
        return packet.to(node_ip, f"the NLB forwards to the NodePort on {node_ip}", at=at, by=NLB_FORWARD)

    return step


def _hairpin(facts: Facts, client: Client, targets: list[Node]) -> Step:
    """With the client address preserved, a client on a target answers itself and the NLB never sees it."""

    def step(packet: Packet) -> Packet | Blocked:
        preserved = facts.config.services.internal_nlb.preserve_client_ip
        if not preserved or client.vpc != "vpc1" or client.node is None:
            return packet
        names = {node.name for node in targets}
        if client.node.name not in names:
            return packet
        reason = (
            f"NLB hairpin: the client's node {client.node.name} is a target and the client address is preserved, "
            "so the reply is delivered locally and never returns through the NLB"
        )
        if names == {client.node.name}:
            return block(packet, "timeout", reason, at=places.node(client.node.name), by="NLB hairpin")
        return packet.tolerate(reason + " (only when the NLB picks that node)")

    return step


def nginx_nlb(facts: Facts) -> list[Step]:
    port = facts.topology.vpc1.service_node_ports["nginx-nlb"]
    return [
        _forward_to(places.load_balancer("nginx-nlb"), facts.echo_node.ip),
        admit_at_node(port, facts),
        kube_proxy.nginx(facts),
        _note("the nginx NLB forwards to the nginx NodePort; nginx answers (reachability only)"),
    ]
