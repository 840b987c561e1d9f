"""The model's working state: a connection's source as it travels, and the reasons collected on the way."""

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
class Packet:
    """The first packet of a connection: its current source, destination and the story so far."""

    actor: Actor
    ip: str  # the concrete source address, for CIDR checks (a representative one where the LB chooses)
    dst: str = ""
    why: tuple[str, ...] = ()
    may_timeout: bool = False
    headline: str = ""  # the last reason that set or kept the source: the one a reader needs first

    def becomes(self, actor: Actor, ip: str, because: str) -> Packet:
        return replace(self, actor=actor, ip=ip, why=(*self.why, because), headline=because)

    def to(self, dst: str) -> Packet:
        return replace(self, dst=dst)

    def note(self, because: str, *, headline: bool = False) -> Packet:
        return replace(self, why=(*self.why, because), headline=because if headline else self.headline)

    def explanation(self) -> list[str]:
        """The headline first, then the whole path in order."""
        rest = [reason for reason in self.why if reason != self.headline]
        return [self.headline, *rest] if self.headline else rest

    def tolerate(self, because: str) -> Packet:
        return replace(self, may_timeout=True, why=(*self.why, because))


@dataclass(frozen=True)
class Blocked:
    """The connection cannot complete; ``outcome`` is what the client sees."""

    outcome: Outcome
    why: tuple[str, ...]

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


def block(packet: Packet, outcome: Outcome, because: str) -> Blocked:
    return Blocked(outcome=outcome, why=(*packet.why, because))
