"""Both backends build custom networking, a transit gateway, pod security groups, route_cidrs and attach mode, and
refuse only a node type that cannot carry branch ENIs (exit 2 naming the key, before anything starts); the lab
refuses an attached cluster no lab environment runs the same way; predict models them all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from peerprobe import config, resources
from peerprobe.backends.support import beyond_keys, refusal, unsupported_keys
from peerprobe.cli import app
from peerprobe.params import RunParameters

BEYOND = {
    "vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}},
    "clusters": {
        "vpc1": {"custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"}},
        "vpc2": {"pod_security_groups": {"pods": ["busybox"]}},
    },
    "peering": {"via": "transit-gateway", "route_cidrs": "primary"},
}
BEYOND_YAML = """\
vpcs: {vpc1: {secondary_cidrs: [100.64.0.0/16]}}
clusters: {vpc1: {custom_networking: {enabled: true, cidr: 100.64.0.0/16}}, vpc2: {pod_security_groups: {}}}
peering: {via: transit-gateway}
"""
ATTACH = {"clusters": {"vpc1": {"existing": True}, "vpc2": {"existing": True}}}
ATTACH_YAML = "clusters: {vpc1: {existing: true}, vpc2: {existing: true}}\n"


def test_the_workshop_asks_for_nothing_unsupported() -> None:
    assert unsupported_keys(config.load()) == [] and refusal(config.load(), "lab") is None


def test_each_new_feature_is_named_by_its_key() -> None:
    assert beyond_keys(config.from_mapping(BEYOND)) == [
        "vpcs.vpc1.secondary_cidrs",
        "clusters.vpc1.custom_networking",
        "clusters.vpc2.pod_security_groups",
        "peering.via",
        "peering.route_cidrs",
    ]


@pytest.mark.parametrize("backend", ["aws", "lab"])
def test_both_backends_build_every_new_feature(backend: str) -> None:
    assert unsupported_keys(config.from_mapping(BEYOND), backend) == []
    assert refusal(config.from_mapping(BEYOND), backend) is None


@pytest.mark.parametrize("backend", ["aws", "lab"])
def test_both_backends_build_attach_mode(backend: str) -> None:
    assert unsupported_keys(config.from_mapping(ATTACH), backend) == []
    assert refusal(config.from_mapping(ATTACH), backend) is None


def test_pod_security_groups_get_a_node_type_that_carries_a_trunk_eni() -> None:
    doc = resources.cluster_config(config.from_mapping(BEYOND))
    assert doc["managedNodeGroups"][0]["instanceType"] == resources.NODE_TYPE_FOR_BRANCH_ENIS


@pytest.mark.parametrize("backend", ["aws", "lab"])
def test_a_t_family_node_type_is_refused_for_pod_security_groups(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setattr(resources, "NODE_TYPE_FOR_BRANCH_ENIS", "t3.medium")
    error = refusal(config.from_mapping(BEYOND), backend)
    assert error is not None and error.exit_code == 2
    assert str(error).startswith("clusters.vpc2.pod_security_groups, resources/private-cluster.yaml instanceType")


def test_a_run_from_the_ui_is_refused_by_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "NODE_TYPE_FOR_BRANCH_ENIS", "t3.medium")
    with pytest.raises(ValidationError, match=r"clusters\.vpc2\.pod_security_groups"):
        RunParameters.model_validate({"backend": "lab", "config": config.from_mapping(BEYOND).model_dump(mode="json")})
    attached = config.from_mapping(ATTACH).model_dump(mode="json")
    assert RunParameters.model_validate({"backend": "lab", "config": attached}).backend == "lab"


@pytest.fixture
def beyond_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(state))
    # Were the refusal to fail, the aws backend's preflight would find no endpoint but loopback.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    path = tmp_path / "beyond.yaml"
    path.write_text(BEYOND_YAML, encoding="utf-8")
    (tmp_path / "attach.yaml").write_text(ATTACH_YAML, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--backend", "lab"],
        ["drift", "--backend", "lab"],
        ["lab", "up"],
        ["lab", "down"],
    ],
)
def test_backend_commands_exit_2_for_a_node_type_without_trunk_and_create_nothing(
    beyond_config: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr(resources, "NODE_TYPE_FOR_BRANCH_ENIS", "t3.medium")
    result = CliRunner().invoke(app, [*command, "--config", str(beyond_config)])
    assert result.exit_code == 2, result.output
    assert "clusters.vpc2.pod_security_groups, resources/private-cluster.yaml instanceType: t3.medium" in result.output
    assert not any((beyond_config.parent / "state").iterdir()), "nothing may be created"


@pytest.mark.parametrize("command", [["run", "--backend", "lab"], ["lab", "up"]])
def test_lab_commands_exit_2_when_no_lab_environment_runs_the_attached_cluster_and_create_nothing(
    beyond_config: Path, command: list[str]
) -> None:
    result = CliRunner().invoke(app, [*command, "--config", str(beyond_config.parent / "attach.yaml")])
    assert result.exit_code == 2, result.output
    assert "clusters.vpc1.name, clusters.vpc1.existing: no lab environment runs a cluster" in result.output
    assert not any((beyond_config.parent / "state").iterdir()), "nothing may be created"


def test_the_refusal_comes_before_prefect_is_imported(beyond_config: Path) -> None:
    attach = beyond_config.parent / "attach.yaml"
    code = (
        "import sys\n"
        "from peerprobe.cli import main\n"
        f"sys.argv = ['peerprobe', 'run', '--backend', 'lab', '--config', {str(attach)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n"
        "    print('prefect' in sys.modules, file=sys.stderr); raise\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2 and "clusters.vpc1.existing: no lab environment runs" in result.stderr
    assert result.stderr.strip().endswith("False")


def test_predict_models_the_same_config(beyond_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["predict", "--config", str(beyond_config), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
