"""The hop-by-hop path of one cell, built from the model's own walk (its marks): where the packet is, its source
and destination there, and each rewrite with the mechanism that made it. Pure, like the rest of the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from peerprobe.model import kube_proxy, places
from peerprobe.model._walk import Blocked, Mark, Packet
from peerprobe.model.expect import walked
from peerprobe.model.facts import Facts
from peerprobe.probes.plan import ProbeSpec
from peerprobe.vocabulary import Outcome

IGW_MAPPING = "internet gateway (public IPv4 mapping)"


@dataclass(frozen=True)
class Rewrite:
    """One address changed at a hop: ``field`` from ``before`` to ``after``, ``by`` a named mechanism."""

    field: Literal["source", "destination"]
    before: str
    after: str
    by: str


@dataclass(frozen=True)
class Hop:
    """One place on the way; ``src`` and ``dst`` are the addresses the packet leaves it with."""

    at: str
    src: str
    dst: str
    events: tuple[str, ...] = ()
    rewrites: tuple[Rewrite, ...] = ()
    kept_by: tuple[str, ...] = ()  # mechanisms that decided here without rewriting (AWS-SNAT-CHAIN-0 RETURN, ...)
    blocked_by: str = ""  # the mechanism that ends the connection here, when it does


@dataclass(frozen=True)
class CellPath:
    outcome: Outcome  # what the model expects the client to see
    hops: tuple[Hop, ...] = field(default_factory=tuple)

    def rewrites(self) -> list[Rewrite]:
        return [rewrite for hop in self.hops for rewrite in hop.rewrites]


def cell_path(spec: ProbeSpec, facts: Facts) -> CellPath:
    """The model's path for one probe: its hops in order, ending at the server or where it is blocked."""
    result = walked(spec, facts)
    hops = hops_of(result.marks)
    if isinstance(result, Blocked):
        last = hops[-1]
        by = result.marks[-1].by or "the model"
        return CellPath(outcome=result.outcome, hops=(*hops[:-1], _replace_blocked(last, by)))
    return CellPath(outcome="ok", hops=(*hops, *_arrival(spec, result, facts)))


def hops_of(marks: tuple[Mark, ...]) -> list[Hop]:
    """Consecutive marks at one place make one hop; an address that differs from the mark before is a rewrite."""
    hops: list[Hop] = []
    src, dst = (marks[0].src, marks[0].dst) if marks else ("", "")
    for mark in marks:
        rewrites = _rewrites(src, dst, mark)
        src, dst = mark.src, mark.dst
        kept = (mark.by,) if mark.by and not rewrites else ()
        event = (mark.why,) if mark.why else ()
        if hops and hops[-1].at == mark.at:
            previous = hops[-1]
            hops[-1] = Hop(
                previous.at, src, dst, previous.events + event, previous.rewrites + rewrites, previous.kept_by + kept
            )
        else:
            hops.append(Hop(mark.at, src, dst, event, rewrites, kept))
    return hops


def _rewrites(src: str, dst: str, mark: Mark) -> tuple[Rewrite, ...]:
    by = mark.by or "the model"
    changed = []
    if mark.src != src:
        changed.append(Rewrite("source", src, mark.src, by))
    if mark.dst != dst:
        changed.append(Rewrite("destination", dst, mark.dst, by))
    return tuple(changed)


def _replace_blocked(hop: Hop, by: str) -> Hop:
    return Hop(hop.at, hop.src, hop.dst, hop.events, hop.rewrites, tuple(k for k in hop.kept_by if k != by), by)


def _arrival(spec: ProbeSpec, packet: Packet, facts: Facts) -> list[Hop]:
    """The server's end: the address it listens on, reached through the public mapping or a last DNAT."""
    place, server = _server(spec, facts)
    hops = []
    dst = packet.dst
    if spec.target == "peer-host-public" and dst != server:
        # The internet gateway maps the host's public address back to its private one (VPC internet gateways docs).
        hops.append(
            Hop(
                places.internet_gateway("vpc2"),
                packet.ip,
                server,
                (f"VPC2's internet gateway maps {dst} to the EC2 host's private {server}",),
                (Rewrite("destination", dst, server, IGW_MAPPING),),
            )
        )
        dst = server
    rewrites = (Rewrite("destination", dst, server, kube_proxy.DNAT),) if dst != server else ()
    return [*hops, Hop(place, packet.ip, server, (f"the server sees the client address {packet.ip}",), rewrites)]


def _server(spec: ProbeSpec, facts: Facts) -> tuple[str, str]:
    side = facts.topology.vpc1
    if spec.target in ("peer-host", "peer-host-public"):
        return places.PEER_HOST, facts.topology.peer_host.private_ip
    if spec.target == "nginx-nlb" and side.nginx_pod is not None:
        return places.NGINX_POD, side.nginx_pod.ip
    echo = side.echo_pod
    assert echo is not None, "the model needs the echo pod"
    return places.ECHO_POD, echo.ip
