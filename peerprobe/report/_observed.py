"""The model's hops beside the translations the kernel recorded (a lab run's conntrack entries): which entries
belong to which hop, and whether the packet left each hop with the addresses the model says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peerprobe.model.path import CellPath, Hop
from peerprobe.vocabulary import Translation


@dataclass(frozen=True)
class Row:
    """One row of the side-by-side table: a hop of the model's path with the entries found at its place, or
    (``hop`` None) an entry of a namespace the model's path does not name (a VPC router, a gateway it skips)."""

    hop: Hop | None
    seen: tuple[Translation, ...]
    # Hop rows: did the packet leave with the model's source and destination, at this place or in a namespace
    # passed before the next place of the path (the lab's NAT gateway rewrites to its private address, its
    # internet gateway to the public one)? None when the place recorded nothing: nothing to compare.
    agrees: bool | None = None
    left_with: tuple[str, str] | None = None  # what the packet left the hop's last entry with, when it disagrees


def side_by_side(path: CellPath, seen: Sequence[Translation]) -> list[Row]:
    """The model's hops in order, each followed by the entries the model's path has no place for."""
    owner = _owners(path.hops, seen)
    rows: list[Row] = []
    for index, hop in enumerate(path.hops):
        own = tuple(entry for entry, (at, mine) in zip(seen, owner, strict=True) if at == index and mine)
        extra = [entry for entry, (at, mine) in zip(seen, owner, strict=True) if at == index and not mine]
        rows.append(_hop_row(hop, own, [*own, *extra]))
        rows += [Row(None, (entry,)) for entry in extra]
    return rows


def disagreements(rows: Sequence[Row]) -> int:
    return sum(1 for row in rows if row.agrees is False)


def leaving(entry: Translation) -> tuple[str, str]:
    out = entry.leaving
    return out.src, out.dst


def translation_text(entry: Translation) -> str:
    """``vpc2-node0: src 192.168.96.19:40312 → 192.168.96.16:40312``: what one namespace rewrote."""
    before, after = entry.original, entry.leaving
    changes = [f"src {before.src}:{before.sport} → {after.src}:{after.sport}"] if entry.snat else []
    changes += [f"dst {before.dst}:{before.dport} → {after.dst}:{after.dport}"] if entry.dnat else []
    if entry.relayed:
        return f"{entry.namespace}: new connection {before.text()}" + "".join(f"; {c}" for c in changes)
    return f"{entry.namespace}: " + ("; ".join(changes) or f"{before.text()} unchanged")


def _owners(hops: Sequence[Hop], seen: Sequence[Translation]) -> list[tuple[int, bool]]:
    """For each entry in order, the hop it is shown under and whether it is at that hop's own place: an entry
    at a place of a later hop moves the path on; any other one stays with the hop reached so far."""
    places = [hop.at for hop in hops]
    owners, current = [], 0
    for entry in seen:
        later = next((i for i in range(current, len(places)) if places[i] == entry.at), None)
        if later is not None:
            current = later
        owners.append((current, later is not None))
    return owners


def _hop_row(hop: Hop, own: tuple[Translation, ...], segment: Sequence[Translation]) -> Row:
    """Judged only where the hop's own place recorded the flow: before the first such place, the lab may have
    rewritten what the model rewrites later (its internet gateway maps a load balancer's public address)."""
    if not own:
        return Row(hop, own)
    expected = (hop.src, hop.dst)
    agrees = any(leaving(entry) == expected for entry in segment)
    return Row(hop, own, agrees, None if agrees else leaving(own[-1]))
