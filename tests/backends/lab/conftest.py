"""Lab tests need root and the kernel's namespaces (tests/session.py: moto once per session in a private state
dir); a lab of each test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net


def own_config(name: str, overrides: dict[str, Any] | None = None) -> config.ExperimentConfig:
    """An experiment of its own: EKS cluster names are per account and region, so each environment needs
    its own as well as its own experiment name (tests run labs side by side)."""
    own = {"name": name, "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}}}
    return config.from_mapping(config.merge(own, overrides or {}))


@pytest.fixture
def knob_lab(lab_state_dir: Path) -> Iterator[Any]:
    """knob_lab(name, overrides) -> (config, state): a lab of its own, always taken down and checked gone."""
    made: list[config.ExperimentConfig] = []

    def make(name: str, overrides: dict[str, Any] | None = None) -> tuple[config.ExperimentConfig, lab.LabState]:
        cfg = own_config(name, overrides)
        made.append(cfg)
        return cfg, lab.up(cfg)

    yield make
    for cfg in made:
        lab.down(cfg)
        assert net.list_namespaces(lab.env_key(cfg)) == []
