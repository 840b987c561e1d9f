"""Attach mode's config: `clusters.<k>.existing`, its defaults (one phase `as-found`, no rules opened, no EC2
host), and the refusal of an SNAT phase on an attached cluster without `allow_snat_changes` (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerprobe import config
from peerprobe.cli import app
from peerprobe.errors import ConfigError
from peerprobe.params import RunParameters

ATTACH_VPC1 = {"clusters": {"vpc1": {"existing": True}}}
SNAT_PHASE = {"name": "external", "snat": {"vpc1": {"external_snat": True}}}


def test_attaching_defaults_to_one_phase_as_found() -> None:
    loaded = config.from_mapping(ATTACH_VPC1)
    assert [phase.name for phase in loaded.phases] == ["as-found"]


def test_attaching_opens_no_rule_from_the_peer_by_default() -> None:
    assert config.from_mapping(ATTACH_VPC1).security_groups.open_from_peer == []


def test_attaching_creates_no_peer_host_by_default() -> None:
    assert config.from_mapping(ATTACH_VPC1).peer_host.create is False


def test_a_created_environment_keeps_the_workshop_defaults() -> None:
    loaded = config.from_mapping({})
    assert [p.name for p in loaded.phases] == ["baseline", "external-snat", "exclude-snat"]
    assert loaded.security_groups.open_from_peer == [8080, "nodeport"]
    assert loaded.peer_host.create is True
    assert not loaded.attaching


def test_attach_defaults_yield_to_what_the_file_says() -> None:
    loaded = config.from_mapping(
        ATTACH_VPC1 | {"security_groups": {"open_from_peer": [8080]}, "peer_host": {"create": True}}
    )
    assert loaded.security_groups.open_from_peer == [8080]
    assert loaded.peer_host.create is True


def test_a_phase_without_snat_leaves_an_attached_clusters_aws_node_as_found() -> None:
    loaded = config.from_mapping(ATTACH_VPC1)
    assert loaded.phase_snat(loaded.phases[0], "vpc1") is None


def test_a_created_cluster_still_gets_each_phase_snat_absolutely() -> None:
    loaded = config.from_mapping(ATTACH_VPC1)
    assert loaded.phase_snat(loaded.phases[0], "vpc2") == config.Snat()


def test_an_snat_phase_on_an_attached_cluster_needs_allow_snat_changes() -> None:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(ATTACH_VPC1 | {"phases": [SNAT_PHASE]})
    assert str(caught.value).startswith("phases[0].snat.vpc1, clusters.vpc1.allow_snat_changes:")


def test_allow_snat_changes_lets_the_phase_change_aws_node() -> None:
    data = {"clusters": {"vpc1": {"existing": True, "allow_snat_changes": True}}, "phases": [SNAT_PHASE]}
    loaded = config.from_mapping(data)
    assert loaded.phase_snat(loaded.phases[0], "vpc1") == config.Snat(external_snat=True)


def test_allow_snat_changes_without_existing_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^clusters.vpc2.allow_snat_changes, clusters.vpc2.existing:"):
        config.from_mapping({"clusters": {"vpc2": {"allow_snat_changes": True}}})


def test_a_saved_config_loads_back_with_the_same_phases_given() -> None:
    # The state files keep the config as JSON: an as-found phase must not come back as "set to the defaults".
    loaded = config.from_mapping(
        {
            "clusters": {"vpc1": {"existing": True, "allow_snat_changes": True}},
            "phases": [{"name": "as-found"}, SNAT_PHASE],
        }
    )
    again = config.ExperimentConfig.model_validate(loaded.model_dump(mode="json"))
    assert [again.phase_snat(p, "vpc1") for p in again.phases] == [None, config.Snat(external_snat=True)]


def test_the_cli_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "attach.yaml"
    path.write_text(
        "clusters: {vpc1: {existing: true}}\nphases: [{name: x, snat: {vpc1: {external_snat: true}}}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["predict", "--config", str(path)])
    assert result.exit_code == 2
    assert "clusters.vpc1.allow_snat_changes" in result.output


def test_the_lab_refuses_attaching_to_clusters_no_lab_environment_runs_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "attach.yaml"
    path.write_text("clusters: {vpc1: {existing: true}, vpc2: {existing: true}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2
    assert "clusters.vpc1.name, clusters.vpc1.existing: no lab environment runs a cluster" in result.output


def test_attaching_one_cluster_and_creating_the_other_is_refused_on_aws_before_credentials(tmp_path: Path) -> None:
    path = tmp_path / "attach.yaml"
    path.write_text("clusters: {vpc2: {existing: true}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--backend", "aws", "--config", str(path)])
    assert result.exit_code == 2
    assert "clusters.vpc2.existing, clusters.vpc1.existing: attaching to one cluster" in result.output


def test_parameters_validated_directly_get_the_attach_defaults() -> None:
    # A deployment's parameters and the UI's form are validated without from_mapping: the defaults must hold.
    clusters = {"vpc1": {"name": "a", "existing": True}, "vpc2": {"name": "b", "existing": True}}
    parameters = RunParameters.model_validate({"backend": "aws", "config": {"clusters": clusters}})
    found = parameters.config
    assert [p.name for p in found.phases] == [config.AS_FOUND]
    assert found.security_groups.open_from_peer == [] and found.peer_host.create is False
    again = RunParameters.model_validate(parameters.model_dump(mode="json"))
    assert again.config == found
