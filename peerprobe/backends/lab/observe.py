"""The translations the kernel made for each probe: every namespace's conntrack table read once after a batch
(its /proc/net/nf_conntrack, from a thread moved into it), and each probe's entries followed from the flow its
client opened (probes/conntrack.py). Entries outlive the connection by TCP's TIME_WAIT (120 s): read at once."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace

import structlog

from peerprobe.backends.lab.agent import _netns
from peerprobe.backends.lab.net import LabNet
from peerprobe.errors import InfrastructureError
from peerprobe.model import places
from peerprobe.probes import conntrack
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec

# /proc/net is /proc/self/net: the main thread's namespace; thread-self is the namespace this thread entered.
TABLE = "/proc/thread-self/net/nf_conntrack"
POD_PLACES = {
    ("vpc1", "busybox"): "vpc1-pod",
    ("vpc2", "busybox"): "vpc2-pod",
    ("vpc1", "echo"): places.ECHO_POD,
    ("vpc1", "nginx"): places.NGINX_POD,
}

log = structlog.get_logger()


def attach(net: LabNet, results: Mapping[ProbeSpec, ProbeResult], *, guest: str = "") -> dict[ProbeSpec, ProbeResult]:
    """Each result with the translations found for its connection ([] when none); unchanged when this kernel
    shows no conntrack table (no nf_conntrack procfs), since nothing was then collected. `guest`: the
    visitor (attach mode) whose vantages probed."""
    started = time.perf_counter()
    tables = read_tables(net.namespaces())
    if tables is None:
        log.info("lab.conntrack.unavailable", table=TABLE)
        return dict(results)
    way = Way(net, guest=guest)
    index = conntrack.Tables.of(tables)
    attached = {spec: way.observed(result, index) for spec, result in results.items()}
    log.info(
        "lab.conntrack.read",
        namespaces=len(tables),
        entries=sum(len(entries) for entries in tables.values()),
        probes=len(attached),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return attached


def read_tables(namespaces: Iterable[str]) -> dict[str, list[conntrack.Entry]] | None:
    """The TCP entries of each namespace; None when the kernel has no table to read."""
    tables: dict[str, list[conntrack.Entry]] = {}
    for ns in namespaces:
        try:
            with _netns.entered(ns), open(TABLE, encoding="ascii", errors="replace") as table:
                text = table.read()
        except FileNotFoundError:
            return None
        except InfrastructureError as error:  # removed meanwhile: its probes' answers stand without it
            log.info("lab.conntrack.namespace_gone", netns=ns, error=str(error))
            continue
        tables[ns] = conntrack.parse(ns, text)
    return tables


class Way:
    """How the lab's namespaces lie (which links which) and which place of the model each one is."""

    def __init__(self, net: LabNet, *, guest: str = "") -> None:
        self.net = net
        self.guest = guest
        self.places = _places(net, guest)
        self.links = _links(net)
        self.relays = frozenset(lb.ns for lb in net.load_balancers if lb.mode == "proxy")
        self._measured: dict[str, dict[str, int]] = {}

    def observed(self, result: ProbeResult, tables: conntrack.Tables) -> ProbeResult:
        start = _start(result)
        if start is None:
            return replace(result, translations=())
        begin = self.net.vantage_ns(result.spec.vantage, self.guest)
        found = conntrack.follow(tables, start, begin=begin, distance=self.distance, relays=self.relays)
        return replace(result, translations=tuple(entry.translation(*self.named(entry.namespace)) for entry in found))

    def named(self, ns: str) -> tuple[str, str]:
        """The model's place and the shown name (without the environment's prefix) of a namespace."""
        return self.places.get(ns, ns), ns.removeprefix(self.net.prefix)

    def distance(self, start: str, ns: str) -> int:
        if start not in self._measured:
            self._measured[start] = self._distances(start)
        return self._measured[start].get(ns, len(self.links))

    def _distances(self, start: str) -> dict[str, int]:
        """Links crossed from ``start`` to every namespace (breadth first over the lab's veths)."""
        found, queue = {start: 0}, deque([start])
        while queue:
            here = queue.popleft()
            for there in self.links.get(here, ()):
                if there not in found:
                    found[there] = found[here] + 1
                    queue.append(there)
        return found


def _start(result: ProbeResult) -> conntrack.Key | None:
    """The flow the client opened: its socket's address to the address it dialled."""
    if result.source is None:
        return None
    ip, _, port = result.source.rpartition(":")
    return conntrack.Key(ip.strip("[]"), int(port), result.dialled, result.spec.port)


def _places(net: LabNet, guest: str = "") -> dict[str, str]:
    """The model's places as the prober (the lab, or a visitor `guest`) knows them: its own pods by their role,
    the others' by name."""
    found = {node.ns: places.node(node.name) for node in net.nodes}
    found |= {
        pod.ns: POD_PLACES.get((pod.cluster, pod.name), f"pod:{pod.name}") if pod.guest == guest else f"pod:{pod.ns}"
        for n in net.nodes
        for pod in n.pods
    }
    for key, vpc in net.vpcs.items():
        found |= {vpc.router_ns: places.router(key), vpc.igw_ns: places.internet_gateway(key)}
        found |= {vpc.nat.ns: places.nat_gateway(key)} if vpc.nat else {}
    found |= {lb.ns: places.load_balancer(lb.kind) for lb in net.load_balancers if lb.guest == guest}
    found |= {net.inet_ns: places.INTERNET, net.outside_ns: "outside", net.ec2.ns: places.PEER_HOST}
    return found


def _links(net: LabNet) -> dict[str, set[str]]:
    """Which namespaces a veth joins: pods to their node, every ENI to its VPC's router, routers to their
    internet gateway (and to each other over the peering), gateways to the internet, the outside client to it."""
    pairs = [(pod.ns, node.ns) for node in net.nodes for pod in node.pods]
    for key, vpc in net.vpcs.items():
        pairs += [(eni.ns, vpc.router_ns) for eni in net.enis_of(key)]
        pairs += [(vpc.router_ns, vpc.igw_ns), (vpc.igw_ns, net.inet_ns)]
    pairs += [(net.vpcs["vpc1"].router_ns, net.vpcs["vpc2"].router_ns)] if net.peering else []
    pairs.append((net.outside_ns, net.inet_ns))
    links: dict[str, set[str]] = {}
    for a, b in pairs:
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    return links
