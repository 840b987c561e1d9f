"""What a config changes from the workshop's defaults, and so which of the workshop's claims speak for it.

The model (peerprobe.model.workshop) attaches a claim to every cell of a phase with default SNAT settings,
whatever the rest of the config; a claim is about the workshop's topology, so the reports list it only where
nothing the claim's cell depends on differs from the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from peerprobe.config import ExperimentConfig
from peerprobe.report.document import Report
from peerprobe.vocabulary import Cell

# Keys that name or place things without changing what a probe sees: a claim still speaks for such a config.
# Each is a dotted path; `*` stands for one key (vpc1 or vpc2).
NEUTRAL = (
    "name",
    "region",
    "vpcs.*.cidr",
    "vpcs.*.id",
    "vpcs.*.subnets",
    "clusters.*.name",
    "clusters.*.service_cidr",
    "clusters.*.nodes",
    "images",
    "aws",
    "probe",
    "phases",
    "outside_cidrs",
)
# Keys that change only some targets; any other key that differs (known today or added later) changes them all.
TARGETS_OF = {
    "services.external_traffic_policy": frozenset({"node-port", "load-balancer", "internal-nlb", "nginx-nlb"}),
    "services.load_balancer": frozenset({"load-balancer"}),
    "services.internal_nlb": frozenset({"internal-nlb"}),
    "peer_host": frozenset({"peer-host", "peer-host-public"}),
}


def non_default(config: ExperimentConfig) -> dict[str, Any]:
    """Every leaf that differs from the workshop's defaults, by dotted path (a list is one leaf)."""
    return _diff(ExperimentConfig().model_dump(mode="json"), config.model_dump(mode="json"), "")


def _diff(default: Any, value: Any, path: str) -> dict[str, Any]:
    if isinstance(default, Mapping) and isinstance(value, Mapping):
        found: dict[str, Any] = {}
        for key in dict.fromkeys([*default, *value]):
            found |= _diff(default.get(key), value.get(key), f"{path}.{key}" if path else str(key))
        return found
    return {} if default == value else {path: value}


def describe(config: ExperimentConfig) -> list[str]:
    """``services.external_traffic_policy: Local``, one per non-default key (the name apart); the phases by name."""
    changed = non_default(config)
    changed.pop("name", None)
    if "phases" in changed:
        changed["phases"] = ", ".join(phase.name for phase in config.phases)
    return [f"{path}: {_value(value)}" for path, value in changed.items()]


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def claim_applies(cell: Cell, changed: Mapping[str, Any]) -> bool:
    """Whether the workshop's claim on this cell speaks for a config with these non-default keys."""
    return not any(_touches(path, cell.target) for path in changed)


def _touches(path: str, target: str) -> bool:
    parts = path.split(".")
    if any(_matches(parts, pattern.split(".")) for pattern in NEUTRAL):
        return False
    scoped = next((targets for prefix, targets in TARGETS_OF.items() if _matches(parts, prefix.split("."))), None)
    return scoped is None or target in scoped


def _matches(parts: list[str], pattern: list[str]) -> bool:
    """Whether the path lies under the pattern (``vpcs.vpc1.subnets.private`` under ``vpcs.*.subnets``)."""
    return len(parts) >= len(pattern) and all(p in ("*", part) for part, p in zip(parts, pattern, strict=False))


def workshop_errors(report: Report, config: ExperimentConfig | None) -> list[tuple[str, Cell]]:
    """The claims that do not hold, each on a cell whose topology is the workshop's; without the config, every
    one the model attached (the report does not carry its config)."""
    if config is None:
        return report.workshop_errors()
    changed = non_default(config)
    return [(phase, cell) for phase, cell in report.workshop_errors() if claim_applies(cell, changed)]
