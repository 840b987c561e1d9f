"""deployments/topologies/: each topology beyond the workshop is a valid config that `predict --json` models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerprobe import config
from peerprobe.cli import app

TOPOLOGIES = sorted((Path(__file__).parent.parent / "deployments" / "topologies").glob("*.yaml"))


def test_there_is_a_topology_for_each_feature() -> None:
    names = {path.stem for path in TOPOLOGIES}
    assert {
        "custom-networking",
        "transit-gateway",
        "pod-security-groups-strict",
        "pod-security-groups-standard",
    } <= names


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_predict_json_models_each_topology(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["predict", "--config", str(path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    cells = [cell for phase in report["phases"] for cell in phase["cells"]]
    assert cells and all(cell["verdict"] == "predicted" and cell["explanation"] for cell in cells)
    assert report["experiment"] == config.load(path).name


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_each_topology_renders_the_html_paths(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["predict", "--config", str(path), "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "cannot trace" not in out.read_text()
