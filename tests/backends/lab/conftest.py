"""Lab tests need root and the kernel's namespaces; moto runs once per session in a private state dir."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import moto_service, net


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, netfilter)"
    missing = [tool for tool in ("ip", "iptables-restore") if shutil.which(tool) is None]
    return f"the lab needs {', '.join(missing)} (Debian: iproute2, iptables)" if missing else None


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("peerprobe-state")
    previous = os.environ.get("PEERPROBE_STATE_DIR")
    os.environ["PEERPROBE_STATE_DIR"] = str(path)
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    try:
        moto_service.ensure_running()
        yield path
    finally:
        moto_service.stop()
        if previous is None:
            os.environ.pop("PEERPROBE_STATE_DIR", None)
        else:
            os.environ["PEERPROBE_STATE_DIR"] = previous


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
