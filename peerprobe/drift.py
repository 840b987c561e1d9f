"""Drift: the baseline an `experiment --keep` run records, and what a drift check's `live` phase is judged
against besides the model. Pure apart from reading and writing the baseline file in the state directory
(tasks/drift.py keeps the same document in the result storage too, for machines without that directory).

A cell of a drift report is `drift` when it disagrees with the model for the live configuration, or when its
observation changed since the baseline (outcome or whose address the server saw). The report's `config_diff`
lists every configuration fact that changed since the baseline (peerprobe.snapshot.diff).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from peerprobe import statedir
from peerprobe.report.document import BaselineRef, Report, target_label
from peerprobe.snapshot import ConfigSnapshot, diff
from peerprobe.vocabulary import Cell

LIVE = "live"
SINCE_BASELINE = "drift: since the baseline"


@dataclass(frozen=True)
class Baseline:
    report: Report
    snapshot: ConfigSnapshot | None
    recorded_at: str | None = None

    def belongs_to(self, live: ConfigSnapshot) -> bool:
        """Whether the live environment is the one this baseline was recorded on (the same VPCs); a baseline
        from before the environment was removed and built again is not (design.md: one generation)."""
        recorded = self.snapshot.environment_id if self.snapshot is not None else ""
        return not (recorded and live.environment_id) or recorded == live.environment_id


def baseline_name(env_key: str) -> str:
    """``baselines/lab_workshop_cn-northwest-1.json``: the baseline's path in the state directory, and in the
    result storage."""
    return f"baselines/{''.join(c if c.isalnum() or c in '-_.' else '_' for c in env_key)}.json"


def baseline_document(report: Report, snapshot: ConfigSnapshot | None) -> dict[str, Any]:
    """The baseline as one JSON document: the report with its first phase only, and under `config_snapshot`
    the configuration that phase ran with. The state directory and the result storage both keep this."""
    recorded = report.model_copy(update={"phases": report.phases[:1]}).summarised()
    document = recorded.model_dump(mode="json", by_alias=True)
    document["config_snapshot"] = snapshot.model_dump(mode="json") if snapshot is not None else None
    document["recorded_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return document


def baseline_from_document(document: object) -> Baseline | None:
    """The Baseline a document holds; None for anything else, e.g. a baseline of an older schema (a drift
    check then compares with the model only)."""
    if not isinstance(document, dict):
        return None
    fields = dict(document)
    snapshot = fields.pop("config_snapshot", None)
    recorded_at = fields.pop("recorded_at", None)
    try:
        return Baseline(
            report=Report.model_validate(fields),
            snapshot=ConfigSnapshot.model_validate(snapshot) if snapshot is not None else None,
            recorded_at=recorded_at if isinstance(recorded_at, str) else None,
        )
    except ValidationError:
        return None


def record_baseline(env_key: str, report: Report, snapshot: ConfigSnapshot | None) -> dict[str, Any]:
    """The baseline phase and the configuration it ran with; a drift check compares with both. Returns the
    document written."""
    document = baseline_document(report, snapshot)
    statedir.write_json(baseline_name(env_key), document)
    return document


def read_baseline(env_key: str) -> Baseline | None:
    return baseline_from_document(statedir.read_json(baseline_name(env_key)))


def remove_baseline(env_key: str) -> None:
    statedir.remove(baseline_name(env_key))


# --- judging the live phase against the baseline ----------------------------------------------------------------


def against_baseline(report: Report, baseline: Baseline | None, snapshot: ConfigSnapshot) -> Report:
    """The drift report: each live cell also compared with the baseline's cell, and the configuration diff; a
    baseline of another generation of the environment is not compared with (the report names none)."""
    if baseline is None or not baseline.report.phases or not baseline.belongs_to(snapshot):
        return report.summarised()
    before = {_key(cell): cell for cell in baseline.report.phases[0].cells}
    config_diff = diff(baseline.snapshot, snapshot) if baseline.snapshot is not None else []
    phases = [
        phase.model_copy(update={"cells": [_compared(c, before.get(_key(c)), config_diff) for c in phase.cells]})
        for phase in report.phases
    ]
    used = BaselineRef(run_id=baseline.report.run_id, recorded_at=baseline.recorded_at)
    return report.model_copy(update={"phases": phases, "config_diff": config_diff, "baseline": used}).summarised()


def _key(cell: Cell) -> tuple[str, str, str | None]:
    return (cell.vantage, cell.target, cell.target_node)


def _compared(cell: Cell, before: Cell | None, config_diff: list[dict[str, Any]]) -> Cell:
    change = cell_change(before, cell)
    if change is None:
        return cell
    because = "; ".join(entry["text"] for entry in config_diff) or "no configuration fact changed"
    line = f"{SINCE_BASELINE}: {change} (configuration: {because})"
    return cell.model_copy(update={"verdict": "drift", "explanation": [line, *cell.explanation]})


def cell_change(before: Cell | None, now: Cell) -> str | None:
    """``now shows the client pod instead of its node``, or None when the observation is the same. A timeout
    the model allows (may_timeout) on either side is not a change."""
    if before is None or before.observed is None or now.observed is None:
        return None
    old, new = before.observed, now.observed
    if old.outcome != new.outcome:
        if now.expected.may_timeout and "timeout" in (old.outcome, new.outcome):
            return None
        return f"now {new.outcome} instead of {old.outcome}"
    if old.client_address_role != new.client_address_role:
        return f"now shows {_role(new.client_address_role)} instead of {_role(old.client_address_role)}"
    return None


_ROLES = {
    "client-pod": "the client pod",
    "client-node": "its node",
    "client-host": "the EC2 host",
    "nat-gateway": "the NAT gateway",
    "receiving-node": "the receiving node",
    "vpc1-node": "a VPC1 node",
    "load-balancer": "the load balancer",
    "other": "another address",
}


def _role(role: str | None) -> str:
    return _ROLES.get(role or "", role or "no address")


# --- what a drifted check says -------------------------------------------------------------------------------------


def drifted(report: Report) -> bool:
    return bool(report.summary.drift or report.config_diff)


def changed_cells(report: Report) -> list[str]:
    """``vpc2-pod -> pod-ip now shows the client pod instead of its node`` for each drifted cell."""
    lines = []
    for _, cell in report.drifted():
        since = next((e for e in cell.explanation if e.startswith(SINCE_BASELINE)), None)
        what = since.removeprefix(f"{SINCE_BASELINE}: ").split(" (configuration:")[0] if since else _first(cell)
        lines.append(f"{cell.vantage} -> {target_label(cell)} {what}")
    return lines


def _first(cell: Cell) -> str:
    return cell.explanation[0].removeprefix("drift: ") if cell.explanation else "drifted from the model"


def message(env_key: str, report: Report) -> str:
    """The Drifted state's message: the changed settings, then the changed cells."""
    settings = [entry["text"] for entry in report.config_diff or []]
    cells = changed_cells(report)
    more = [f"and {len(cells) - 8} more cells"] if len(cells) > 8 else []
    return f"drift in {env_key}: " + "; ".join([*settings, *cells[:8], *more])


def event_payload(env_key: str, report: Report) -> dict[str, Any]:
    """What `peerprobe.drift.detected` carries: the configuration diff and the changed cells (no secrets: the
    snapshot keeps only the aws-node values the model reads, and nothing else holds one)."""
    return {
        "environment": env_key,
        "experiment": report.experiment,
        "backend": report.backend,
        "run_id": report.run_id,
        "summary": report.summary.model_dump(),
        "config_diff": report.config_diff or [],
        "changed_cells": changed_cells(report),
        "message": message(env_key, report),
    }
