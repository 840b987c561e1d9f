"""Observed translations: the NAT the kernel really did for one probe, read from the conntrack tables of the
namespaces along its way. Pure: the lab backend reads each namespace's table and says how namespaces lie.

A conntrack entry holds the original flow (as the first packet arrived) and the reply flow (as the answer is
expected); the reply reversed is the flow as the packet left, so a changed source is a SNAT and a changed
destination a DNAT (conntrack(8); netfilter's nf_conntrack_standalone.c prints /proc/net/nf_conntrack)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from peerprobe.vocabulary import Flow, Translation

_FIELD = re.compile(r"\b(src|dst|sport|dport)=(\S+)")
_TUPLE_FIELDS = ["src", "dst", "sport", "dport"] * 2
MAX_STEPS = 32  # a probe's way crosses a dozen namespaces at most; a longer chase is a loop


class Key(NamedTuple):
    """A flow as conntrack keys it (plain tuples: tables hold hundreds of entries, looked up by these)."""

    src: str
    sport: int
    dst: str
    dport: int

    def reversed(self) -> Key:
        return Key(self.dst, self.dport, self.src, self.sport)


@dataclass(frozen=True)
class Entry:
    """One TCP connection in one namespace's table."""

    namespace: str
    original: Key
    reply: Key
    relayed: bool = False  # taken up from a connection that ended in this namespace (a proxy's own connection)

    @property
    def leaving(self) -> Key:
        return self.reply.reversed()

    @property
    def translates(self) -> bool:
        return self.leaving != self.original

    def translation(self, at: str, namespace: str) -> Translation:
        """The report's form, under the model's place ``at`` and the namespace's shown name."""
        return Translation(
            at=at, namespace=namespace, original=_flow(self.original), reply=_flow(self.reply), relayed=self.relayed
        )


def parse(namespace: str, text: str) -> list[Entry]:
    """Every TCP entry of a listing (/proc/net/nf_conntrack or `conntrack -L`); other lines are skipped."""
    found = []
    for line in text.splitlines():
        entry = _entry(namespace, line)
        if entry is not None:
            found.append(entry)
    return found


def _entry(namespace: str, line: str) -> Entry | None:
    if " tcp " not in f" {line} ":
        return None
    fields = _FIELD.findall(line)
    if [name for name, _ in fields[:8]] != _TUPLE_FIELDS:
        return None
    src, dst, sport, dport, rsrc, rdst, rsport, rdport = (value for _, value in fields[:8])
    if not all(port.isdigit() for port in (sport, dport, rsport, rdport)):
        return None
    return Entry(namespace, Key(src, int(sport), dst, int(dport)), Key(rsrc, int(rsport), rdst, int(rdport)))


class Tables:
    """Every namespace's entries, indexed once per reading for all the probes of a batch."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.by_original: dict[Key, list[Entry]] = {}
        self.by_source: dict[tuple[str, str, int], Entry] = {}
        for entry in entries:
            self.by_original.setdefault(entry.original, []).append(entry)
            self.by_source.setdefault((entry.namespace, entry.original.src, entry.original.sport), entry)

    @classmethod
    def of(cls, tables: Mapping[str, Sequence[Entry]]) -> Tables:
        return cls(entry for entries in tables.values() for entry in entries)


def follow(
    tables: Tables,
    start: Key,
    *,
    begin: str = "",
    distance: Callable[[str, str], int] | None = None,
    relays: frozenset[str] = frozenset(),
) -> list[Entry]:
    """The probe's entries in the order its packet met them, from the flow its client opened (``start``, in
    namespace ``begin``). Each namespace that translates hands its leaving flow to the next; namespaces that
    saw the same flow unchanged are ordered by ``distance`` from where that flow began, and a namespace that
    rewrote it comes last among them (after it, the flow is another). In a namespace of ``relays`` (a proxy),
    a connection that ends there is taken up by the one it opened from the same source port."""
    way: list[Entry] = []
    current, here = start, begin
    far = distance or (lambda _a, _b: 0)
    for _ in range(MAX_STEPS):
        stage = [entry for entry in tables.by_original.get(current, ()) if not _met(entry, way)]
        if not stage:
            relay = _relay(tables, way, relays)
            if relay is None:
                break
            stage = [relay]
        stage.sort(key=lambda entry: (entry.translates, far(here, entry.namespace)))
        way += stage
        last = stage[-1]
        if last.translates or last.relayed:
            current, here = last.leaving, last.namespace
    return way


def _relay(tables: Tables, way: Sequence[Entry], relays: frozenset[str]) -> Entry | None:
    """The proxy's connection for the one that ended in it: from the address the client reached, from the
    client's port (the lab's proxy binds its upstream socket to it, so the two can be told apart from others)."""
    if not way or way[-1].namespace not in relays or way[-1].translates:
        return None
    ended = way[-1].original
    found = tables.by_source.get((way[-1].namespace, ended.dst, ended.sport))
    if found is None or _met(found, way):
        return None
    return replace(found, relayed=True)


def _met(entry: Entry, way: Sequence[Entry]) -> bool:
    return any((e.namespace, e.original) == (entry.namespace, entry.original) for e in way)


def _flow(key: Key) -> Flow:
    return Flow(src=key.src, sport=key.sport, dst=key.dst, dport=key.dport)
