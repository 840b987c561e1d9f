"""Helpers for model tests: build a config from overrides and look cells up by vantage and target."""

from __future__ import annotations

from typing import Any

from peerprobe import config, model, topology
from peerprobe.config import PhaseSnat, Snat
from peerprobe.vocabulary import Cell

PEER_OF = {"vpc1": "192.168.0.0/16", "vpc2": "172.16.0.0/16"}


def make_config(**overrides: Any) -> config.ExperimentConfig:
    return config.from_mapping(overrides)


def snat(column: str, *clusters: str) -> PhaseSnat:
    """A phase's SNAT for behaviour.md's columns: D defaults, X EXTERNALSNAT, Ex exclude the peer CIDR."""
    settings: dict[str, Snat] = {}
    for key in clusters:
        if column == "X":
            settings[key] = Snat(external_snat=True)
        elif column == "Ex":
            settings[key] = Snat(exclude_snat_cidrs=[PEER_OF[key]])
    return PhaseSnat(**settings)


def phase_cells(cfg: config.ExperimentConfig, phase_snat: PhaseSnat | None = None) -> list[Cell]:
    planned = topology.plan(cfg)
    return model.predict_phase(cfg, planned, "test", phase_snat or PhaseSnat()).cells


def cell(cells: list[Cell], vantage: str, target: str, node_index: int | None = None) -> Cell:
    matches = [c for c in cells if c.vantage == vantage and c.target == target]
    if node_index is not None:
        matches = [c for c in matches if c.target_node == _node_names(cells)[node_index]]
    assert len(matches) == 1, f"{vantage} -> {target} [{node_index}]: {len(matches)} cells"
    return matches[0]


def _node_names(cells: list[Cell]) -> list[str]:
    seen: list[str] = []
    for c in cells:
        if c.target == "node-port" and c.target_node and c.target_node not in seen:
            seen.append(c.target_node)
    return seen


def outcome_role(c: Cell) -> tuple[str, str | None]:
    return c.expected.outcome, c.expected.client_address_role
