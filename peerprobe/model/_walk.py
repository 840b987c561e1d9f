"""The model's working state: a connection's source as it travels, and the reasons collected on the way.

Each change is also kept as a `Mark` (where it happened, what did it, the addresses after it): the structured
trail that `peerprobe.model.path` turns into the hop-by-hop path the HTML report draws."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from peerprobe.vocabulary import Outcome


class Actor(Enum):
    """Who owns the source address a packet carries at some point of its path."""

    CLIENT_POD = "client-pod"
    CLIENT_NODE = "client-node"
    CLIENT_HOST = "client-host"
    NAT_GATEWAY = "nat-gateway"
    OUTSIDE = "outside"
    LOAD_BALANCER = "load-balancer"
    VPC1_NODE = "vpc1-node"
    RECEIVING_NODE = "receiving-node"


@dataclass(frozen=True)
class Mark:
    """One event of the walk: at ``at`` (a place of `peerprobe.model.path`), ``by`` a named mechanism (empty
    when the event only passes or checks), leaving the packet from ``src`` to ``dst``."""

    at: str
    src: str
    dst: str
    why: str
    by: str = ""


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection: its current source, destination and the story so far."""

    actor: Actor
    ip: str  # the concrete source address, for CIDR checks (a representative one where the LB chooses)
    dst: str = ""
    why: tuple[str, ...] = ()
    may_timeout: bool = False
    headline: str = ""  # the last reason that set or kept the source: the one a reader needs first
    place: str = ""  # where the packet is now (a place of peerprobe.model.path)
    marks: tuple[Mark, ...] = ()

    def becomes(self, actor: Actor, ip: str, because: str, *, at: str = "", by: str = "") -> Packet:
        moved = replace(self, actor=actor, ip=ip, why=(*self.why, because), headline=because)
        return moved.marked(because, at=at, by=by)

    def to(self, dst: str, because: str = "", *, at: str = "", by: str = "") -> Packet:
        """A new destination (a DNAT, or the next address a proxy or load balancer connects to); ``because``
        goes to the trail only."""
        return replace(self, dst=dst).marked(because, at=at, by=by)

    def note(self, because: str, *, headline: bool = False, at: str = "", by: str = "") -> Packet:
        noted = replace(self, why=(*self.why, because), headline=because if headline else self.headline)
        return noted.marked(because, at=at, by=by)

    def marked(self, because: str, *, at: str = "", by: str = "") -> Packet:
        """Record an event on the trail only (the explanation is unchanged)."""
        place = at or self.place
        return replace(self, place=place, marks=(*self.marks, Mark(place, self.ip, self.dst, because, by)))

    def explanation(self) -> list[str]:
        """The headline first, then the whole path in order."""
        rest = [reason for reason in self.why if reason != self.headline]
        return [self.headline, *rest] if self.headline else rest

    def tolerate(self, because: str, *, at: str = "") -> Packet:
        return replace(self, may_timeout=True, why=(*self.why, because)).marked(because, at=at)


@dataclass(frozen=True)
class Blocked:
    """The connection cannot complete; ``outcome`` is what the client sees."""

    outcome: Outcome
    why: tuple[str, ...]
    marks: tuple[Mark, ...] = ()  # the trail up to and including the blocking event

    def explanation(self) -> list[str]:
        """The blocking reason first, then the path that led there."""
        return [self.why[-1], *self.why[:-1]] if self.why else []


Step = Callable[[Packet], "Packet | Blocked"]


def walk(packet: Packet, *steps: Step) -> Packet | Blocked:
    """Apply the mechanisms in path order; the first that blocks ends the walk."""
    current: Packet | Blocked = packet
    for step in steps:
        if isinstance(current, Blocked):
            return current
        current = step(current)
    return current


def block(packet: Packet, outcome: Outcome, because: str, *, at: str = "", by: str = "") -> Blocked:
    return Blocked(outcome=outcome, why=(*packet.why, because), marks=packet.marked(because, at=at, by=by).marks)
