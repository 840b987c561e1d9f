"""Observed versus expected: classify what a probe saw and give each cell its verdict (design.md rules)."""

from __future__ import annotations

from peerprobe.probes.batch import ProbeResult, to_observed
from peerprobe.probes.roles import classify
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell, Expected, Observed, Verdict

TOLERATED = "timed out where the model allows it (may_timeout): tolerated"


def observed(result: ProbeResult, topology: Topology) -> Observed:
    """The probe's outcome and fields, with the role of the address the server reported."""
    seen = to_observed(result)
    if seen.outcome != "ok" or not seen.client_address:
        return seen
    spec = result.spec
    role = classify(
        seen.client_address, vantage=spec.vantage, target=spec.target, target_node=spec.target_node, topology=topology
    )
    return seen.model_copy(update={"client_address_role": role})


def verdict(expected: Expected, seen: Observed) -> tuple[Verdict, str | None]:
    """`match` when outcome and role agree (and Host/request_uri where the model states them); a timeout
    on a may_timeout cell is a tolerated match; anything else is `drift`, with what differed."""
    if expected.may_timeout and seen.outcome == "timeout":
        return "match", TOLERATED
    differences = _differences(expected, seen)
    return ("drift", "; ".join(differences)) if differences else ("match", None)


def _differences(expected: Expected, seen: Observed) -> list[str]:
    pairs: list[tuple[str, str | None, str | None]] = [("outcome", expected.outcome, seen.outcome)]
    if expected.outcome == "ok" and seen.outcome == "ok":
        pairs += [
            ("client_address_role", expected.client_address_role, seen.client_address_role),
            ("host", expected.host, seen.host),
            ("request_uri", expected.request_uri, seen.request_uri),
        ]
    return [f"{name}: expected {want}, observed {got}" for name, want, got in pairs if want is not None and want != got]


def judged(cell: Cell, seen: Observed) -> Cell:
    """The predicted cell with its observation, verdict and (for drift) what differed first in the story."""
    result, note = verdict(cell.expected, seen)
    explanation = [f"drift: {note}", *cell.explanation] if result == "drift" and note else list(cell.explanation)
    if result == "match" and note:
        explanation.append(note)
    return cell.model_copy(update={"observed": seen, "verdict": result, "explanation": explanation})
