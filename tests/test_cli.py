"""The command line: predict prints and writes the report; bad input exits 2 before Prefect is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from peerprobe.cli import app

runner = CliRunner()


def test_predict_prints_every_phase() -> None:
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 0, result.output
    for phase in ("baseline", "external-snat", "exclude-snat"):
        assert f"phase {phase}" in result.output
    assert "Workshop claims that do not hold" in result.output


def test_predict_writes_the_json_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["predict", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["schema"] == "peerprobe.report/v1" and report["experiment"] == "workshop"
    cells = [cell for phase in report["phases"] for cell in phase["cells"]]
    assert all(cell["observed"] is None and cell["verdict"] == "predicted" for cell in cells)
    assert report["summary"] == {"cells": len(cells), "match": 0, "drift": 0, "predicted": len(cells)}
    assert set(report["topology"]) >= {"vpc1", "vpc2", "peer_host"}


def test_predict_with_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("services: {external_traffic_policy: Local}\nphases: [{name: only}]\n")
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["predict", "--config", str(path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert [phase["name"] for phase in json.loads(out.read_text())["phases"]] == ["only"]


def test_bad_config_exits_2_with_one_message_and_no_prefect(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("clusters: {vpc1: {nodes: 0}}\n")
    code = (
        "import sys\n"
        "from peerprobe.cli import main\n"
        f"sys.argv = ['peerprobe', 'predict', '--config', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n"
        "    print('prefect' in sys.modules, file=sys.stderr); raise\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert "clusters.vpc1.nodes:" in result.stderr
    assert result.stderr.strip().endswith("False"), "Prefect must not be imported before validation"


def test_unknown_backend_is_a_usage_error() -> None:
    result = runner.invoke(app, ["predict", "--backend", "gcp"])
    assert result.exit_code == 2
