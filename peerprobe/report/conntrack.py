"""Observed translations: the NAT the kernel really did for one probe, read from conntrack tables, to show beside
the model's hops in the HTML report. Pure parsing; the lab backend supplies the text of each namespace's table
(`conntrack -L -p tcp`, or /proc/net/nf_conntrack) along the probe's way.

conntrack prints the original tuple (as the first packet arrived) and then the reply tuple (as the answer is
expected); a difference between the original source and the reply's destination is a SNAT, between the original
destination and the reply's source a DNAT (conntrack(8); netfilter's nf_conntrack_standalone.c)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_FIELD = re.compile(r"\b(src|dst|sport|dport)=(\S+)")


@dataclass(frozen=True)
class Translation:
    """One connection in one namespace: the addresses it arrived with and those it left with."""

    namespace: str
    src: str
    dst: str
    dport: int
    to_src: str
    to_dst: str
    to_dport: int
    sport: int = 0
    to_sport: int = 0

    @property
    def snat(self) -> bool:
        return self.to_src != self.src

    @property
    def dnat(self) -> bool:
        return (self.to_dst, self.to_dport) != (self.dst, self.dport)

    def text(self) -> str:
        changes = [f"src {self.src} → {self.to_src}"] if self.snat else []
        changes += [f"dst {self.dst}:{self.dport} → {self.to_dst}:{self.to_dport}"] if self.dnat else []
        return f"{self.namespace}: " + ("; ".join(changes) or f"{self.src} → {self.dst}:{self.dport} unchanged")


def parse(namespace: str, text: str) -> list[Translation]:
    """Every TCP or UDP entry of a conntrack listing; lines that are not entries are skipped."""
    found = []
    for line in text.splitlines():
        entry = _entry(namespace, line)
        if entry is not None:
            found.append(entry)
    return found


def _entry(namespace: str, line: str) -> Translation | None:
    fields = _FIELD.findall(line)
    if len(fields) < 8 or [name for name, _ in fields[:8]] != ["src", "dst", "sport", "dport"] * 2:
        return None
    values = [value for _, value in fields[:8]]
    if not all(v.isdigit() for v in (values[2], values[3], values[6], values[7])):
        return None
    src, dst, sport, dport, reply_src, reply_dst, reply_sport, reply_dport = values
    # The packet leaves with the reply tuple reversed: the reply is sent to where the packet now comes from.
    return Translation(
        namespace,
        src,
        dst,
        int(dport),
        to_src=reply_dst,
        to_dst=reply_src,
        to_dport=int(reply_sport),
        sport=int(sport),
        to_sport=int(reply_dport),
    )


def follow(tables: Sequence[Sequence[Translation]], src: str, dst: str, dport: int) -> list[Translation]:
    """The probe's own entries along its way: ``tables`` in path order (one per namespace), starting from the
    addresses the client sent; each match hands its translated addresses to the next namespace."""
    way = []
    for table in tables:
        match = next((t for t in table if (t.src, t.dst, t.dport) == (src, dst, dport)), None)
        if match is None:
            continue
        way.append(match)
        src, dst, dport = match.to_src, match.to_dst, match.to_dport
    return way
