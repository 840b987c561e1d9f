"""The command line: predict prints and writes the report; bad input exits 2 before Prefect is imported; a
drift check of an aws environment that is not there exits 2 (or 3 when what is recorded is gone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerprobe.cli import app

runner = CliRunner()


def test_predict_prints_every_phase_side_by_side() -> None:
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("vantage"))
    assert header.split() == ["vantage", "target", "baseline", "external-snat", "exclude-snat"]
    assert "Workshop claims that do not hold" in result.output


def test_predict_full_prints_every_phases_matrix() -> None:
    result = runner.invoke(app, ["predict", "--full"])
    assert result.exit_code == 0, result.output
    assert all(f"phase {phase}" in result.output for phase in ("baseline", "external-snat", "exclude-snat"))


def test_predict_writes_the_json_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["predict", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["schema"] == "peerprobe.report/v1" and report["experiment"] == "workshop"
    cells = [cell for phase in report["phases"] for cell in phase["cells"]]
    assert all(cell["observed"] is None and cell["verdict"] == "predicted" for cell in cells)
    assert report["summary"] == {"cells": len(cells), "match": 0, "tolerated": 0, "drift": 0, "predicted": len(cells)}
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


def _moto_env(tmp_path: Path) -> dict[str, str]:
    """Fake credentials, no metadata service, no config files: boto3 reaches only moto, in-process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
    return env | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "PEERPROBE_STATE_DIR": str(tmp_path / "state"),
    }


def test_drift_on_aws_without_an_environment_exits_2_naming_it_before_prefect(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from moto import mock_aws\n"
        "from peerprobe.cli import main\n"
        "sys.argv = ['peerprobe', 'drift', '--backend', 'aws']\n"
        "with mock_aws():\n"
        "    try:\n        main()\n    except SystemExit:\n"
        "        print('prefect' in sys.modules, file=sys.stderr); raise\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_moto_env(tmp_path))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "no aws environment aws:workshop:cn-northwest-1 recorded in this state directory or tagged" in message
    assert result.stderr.strip().endswith("False"), "Prefect must not be imported before the environment is known"


def test_drift_on_aws_whose_recorded_vpc_is_gone_exits_3_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    from peerprobe.backends.aws import _state

    for name, value in _moto_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    gone = _state.NetworkIds(key="vpc1", vpc="vpc-0123456789abcdef0", cidr="172.16.0.0/16")
    _state.update("aws:workshop:cn-northwest-1", lambda s: s.model_copy(update={"networks": {"vpc1": gone}}))
    with mock_aws():
        result = runner.invoke(app, ["drift", "--backend", "aws"])
    assert result.exit_code == 3, result.output
    assert "vpc1 vpc-0123456789abcdef0 no longer exist" in " ".join(result.output.split())
