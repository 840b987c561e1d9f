"""One cell's expectation: compose the mechanisms along the connection's path, then name the source's role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from peerprobe.model import cni, dns, kube_proxy, load_balancers, network, pod_eni
from peerprobe.model._walk import Actor, Blocked, Mark, Packet, Step, walk
from peerprobe.model.clients import Client, client_for
from peerprobe.model.facts import Facts
from peerprobe.model.security_groups import admit_at_node, admit_at_peer_host
from peerprobe.probes.plan import ECHO_PORT, ProbeSpec
from peerprobe.vocabulary import LB_TARGETS, Expected, Role

Path = tuple[str, list[Step]]  # the address dialled after resolution, and the mechanisms on the way


def expect(spec: ProbeSpec, facts: Facts) -> tuple[Expected, list[str]]:
    client = client_for(spec.vantage, facts)
    result = _walked(spec, client, facts)
    if isinstance(result, Blocked):
        return Expected(outcome=result.outcome), result.explanation()
    return _reached(spec, result, client), result.explanation()


def walked(spec: ProbeSpec, facts: Facts) -> Packet | Blocked:
    """The connection after every mechanism on its way, with its trail of marks (what `expect` decides from)."""
    return _walked(spec, client_for(spec.vantage, facts), facts)


def _walked(spec: ProbeSpec, client: Client, facts: Facts) -> Packet | Blocked:
    path = _path(spec, client, facts)
    if isinstance(path, Blocked):  # the name did not resolve: the connection never left the client
        start = client.start(spec.host)
        failed = Mark(client.vantage, client.ip, spec.host, path.why[-1] if path.why else "", "DNS")
        return replace(path, marks=(*start.marks, failed))
    dst, steps = path
    return walk(client.start(dst), *steps, network.reply(facts))


def _reached(spec: ProbeSpec, packet: Packet, client: Client) -> Expected:
    if spec.target == "nginx-nlb":  # nginx serves a static page: reachability only
        return Expected(outcome="ok", may_timeout=packet.may_timeout)
    return Expected(
        outcome="ok",
        client_address_role=role_for(spec, packet.actor, client),
        may_timeout=packet.may_timeout,
        host=host_header(spec.host, spec.port),
        request_uri=request_uri(spec),
    )


def host_header(host: str, port: int) -> str:
    # curl and wget leave the port out of the Host header when it is the scheme's default.
    return host if port == 80 else f"{host}:{port}"


def request_uri(spec: ProbeSpec) -> str:
    # echoserver 1.4: scheme://$host:$server_port$request_uri, where $host drops the port and
    # $server_port is the port the server listens on after every DNAT: 8080, or 80 on the EC2 host.
    server_port = 80 if spec.target in ("peer-host", "peer-host-public") else ECHO_PORT
    return f"http://{spec.host}:{server_port}/"


def role_for(spec: ProbeSpec, actor: Actor, client: Client) -> Role:
    """design.md's role rules: first by target, then client-pod, client-node, client-host, nat-gateway."""
    if spec.target == "node-port" and actor is Actor.RECEIVING_NODE:
        return "receiving-node"
    if spec.target in LB_TARGETS:
        if actor in (Actor.VPC1_NODE, Actor.RECEIVING_NODE) or (actor is Actor.CLIENT_NODE and client.vpc == "vpc1"):
            return "vpc1-node"
        if actor is Actor.LOAD_BALANCER:
            return "load-balancer"
    return _PLAIN_ROLES.get(actor, "other")


_PLAIN_ROLES: dict[Actor, Role] = {
    Actor.CLIENT_POD: "client-pod",
    Actor.CLIENT_NODE: "client-node",
    Actor.CLIENT_HOST: "client-host",
    Actor.NAT_GATEWAY: "nat-gateway",
}


def _path(spec: ProbeSpec, client: Client, facts: Facts) -> Path | Blocked:
    return _PATHS[spec.target](spec, client, facts)


def _out(client: Client, facts: Facts) -> list[Step]:
    """Leaving the client: the CNI's SNAT decision on its node, then the VPC's routing."""
    return [cni.egress(client, facts), network.route(client, facts)]


def _pod_ip(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    return spec.host, [*_out(client, facts), pod_eni.admit_at_echo(ECHO_PORT, facts, client), cni.echo_reply(facts)]


def _cluster_ip(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    if client.vantage == "vpc1-pod":
        # kube-proxy's DNAT happens before the CNI's SNAT decision, which sees the pod address.
        summary = (
            "kube-proxy DNATs the ClusterIP to the echo pod without masquerade, and the CNI keeps the pod IP "
            "for that in-VPC destination"
        )
        return spec.host, [
            kube_proxy.cluster_ip(facts),
            *_out(client, facts),
            pod_eni.admit_at_echo(ECHO_PORT, facts, client),
            _note(summary, headline=True),
        ]
    where = {"vpc2-pod": "the VPC2 node", "vpc2-ec2": "the EC2 host", "outside": "the internet"}[client.vantage]
    return spec.host, [kube_proxy.no_rule_here(where), *_out(client, facts)]


def _node_port(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    node = facts.topology.vpc1.node(spec.target_node or "")
    return spec.host, [
        *_out(client, facts),
        admit_at_node(spec.port, facts),
        kube_proxy.external(facts, receiving=node, actor=Actor.RECEIVING_NODE),
        pod_eni.deliver(facts, node),
    ]


def _load_balancer(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    lb = facts.topology.vpc1.load_balancer_facts["load-balancer"]
    address, why = dns.resolve_load_balancer(lb, facts)
    return address, [_note(why), *_out(client, facts), *load_balancers.classic_elb(facts)]


def _internal_nlb(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    lb = facts.topology.vpc1.load_balancer_facts["internal-nlb"]
    address, why = dns.resolve_load_balancer(lb, facts)
    return address, [_note(why), *_out(client, facts), *load_balancers.internal_nlb(facts, client)]


def _nginx_nlb(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    lb = facts.topology.vpc1.load_balancer_facts["nginx-nlb"]
    address, why = dns.resolve_load_balancer(lb, facts)
    return address, [_note(why), *_out(client, facts), *load_balancers.nginx_nlb(facts)]


def _headless(spec: ProbeSpec, client: Client, facts: Facts) -> Path | Blocked:
    resolved = dns.resolve_headless(client, facts)
    if isinstance(resolved, Blocked):
        return resolved
    address, why = resolved
    note = "headless: no ClusterIP and no port mapping, kube-proxy is not involved"
    return address, [
        _note(why),
        _note(note),
        *_out(client, facts),
        pod_eni.admit_at_echo(ECHO_PORT, facts, client),
        cni.echo_reply(facts),
    ]


def _peer_host(spec: ProbeSpec, client: Client, facts: Facts) -> Path:
    return spec.host, [*_out(client, facts), admit_at_peer_host(facts)]


def _note(reason: str, *, headline: bool = False) -> Step:
    def step(packet: Packet) -> Packet:
        return packet.note(reason, headline=headline)

    return step


_PATHS: dict[str, Callable[[ProbeSpec, Client, Facts], Path | Blocked]] = {
    "pod-ip": _pod_ip,
    "cluster-ip": _cluster_ip,
    "node-port": _node_port,
    "load-balancer": _load_balancer,
    "internal-nlb": _internal_nlb,
    "headless": _headless,
    "peer-host": _peer_host,
    "peer-host-public": _peer_host,
    "nginx-nlb": _nginx_nlb,
}
