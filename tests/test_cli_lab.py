"""The lab commands on a real lab: `lab status` in words and as the report's topology, and `lab set-env`
warning about what aws-node would not do with a setting while applying it all the same (as kubectl does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from peerprobe import aws_node
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.cli import app
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
runner = CliRunner()
NAME = "cli-lab"


@pytest.fixture(scope="module")
def config_file(lab_state_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One lab for the module, taken down (and checked gone) afterwards."""
    path = tmp_path_factory.mktemp("cli-lab") / "lab.yaml"
    overrides = {"name": NAME, "clusters": {"vpc1": {"name": f"{NAME}-one"}, "vpc2": {"name": f"{NAME}-two"}}}
    path.write_text(yaml.safe_dump(overrides))
    config = own_config(NAME)
    lab.up(config)
    yield path
    lab.down(config)
    assert net.list_namespaces(lab.env_key(config)) == []


def test_status_says_in_words_what_exists_and_that_it_is_healthy(config_file: Path) -> None:
    result = runner.invoke(app, ["lab", "status", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"lab lab:{NAME}:cn-northwest-1: up and healthy"
    assert "vpc1 172.16.0.0/16: 3 nodes, 2 pods; aws-node SNAT: the CNI defaults" in result.output
    assert "vpc2 192.168.0.0/16: 2 nodes, 1 pod;" in result.output
    assert any(line.strip().startswith("namespaces:") and "missing" not in line for line in lines)
    assert any(line.strip().startswith("agent: running (pid ") for line in lines)
    assert "{" not in result.output, "words, not a Python dict"


def test_status_json_is_the_reports_topology(config_file: Path) -> None:
    result = runner.invoke(app, ["lab", "status", "--json", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    topology = json.loads(result.output)
    assert set(topology) >= {"vpc1", "vpc2", "peer_host"} and len(topology["vpc1"]["nodes"]) == 3


def test_status_of_an_absent_lab_says_down(lab_state_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    path.write_text("name: cli-absent\n")
    result = runner.invoke(app, ["lab", "status", "--config", str(path)])
    assert result.exit_code == 1 and "lab:cli-absent:cn-northwest-1: down" in result.output


def test_set_env_warns_on_what_aws_node_would_not_do_and_applies_it(config_file: Path) -> None:
    assignments = [
        "AWS_VPC_K8S_CNI_EXTERNAL_SNAT=true",
        f"{aws_node.EXTERNAL_SNAT}=yes",
        f"{aws_node.EXCLUDE_SNAT_CIDRS}=172.16.0.0/33",
    ]
    result = runner.invoke(app, ["lab", "set-env", "vpc2", *assignments, "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, result.output
    assert "did you mean AWS_VPC_K8S_CNI_EXTERNALSNAT?" in warnings[0]
    assert "uses the default, false" in warnings[1] and "is not an IPv4 CIDR" in warnings[2]
    state = lab.load_state(lab.env_key(own_config(NAME)))
    assert state is not None and state.aws_node["vpc2"]["AWS_VPC_K8S_CNI_EXTERNAL_SNAT"] == "true", "applied"
    assert state.snat("vpc2") == state.snat("vpc1"), "and aws-node, like the real one, ignores all three"
    unset = [f"{name.split('=')[0]}-" for name in assignments]
    assert runner.invoke(app, ["lab", "set-env", "vpc2", *unset, "--config", str(config_file)]).exit_code == 0


def test_set_env_refuses_a_name_kubectl_would_refuse(config_file: Path) -> None:
    result = runner.invoke(app, ["lab", "set-env", "vpc2", "BAD NAME=1", "--config", str(config_file)])
    assert result.exit_code == 2 and "error: lab set-env vpc2: 'BAD NAME' is not a valid" in result.output
