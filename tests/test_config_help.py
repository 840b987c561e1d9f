"""Config help: did-you-mean for unknown keys, `peerprobe config show`, docs/config.md kept in step with the
schema, and a bad config on the command line: one message, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from peerprobe import cli, config, config_doc
from peerprobe.errors import ConfigError

runner = CliRunner()


def error_for(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data)
    return str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"services": {"externalTrafficPolicy": "Local"}},
            "services.externalTrafficPolicy: unknown key (did you mean services.external_traffic_policy?)",
        ),
        ({"clusters": {"vpc1": {"node": 3}}}, "clusters.vpc1.node: unknown key (did you mean clusters.vpc1.nodes?)"),
        ({"clusters": {"vpc1": {"cni-version": "1.7.10"}}}, "(did you mean clusters.vpc1.cni_version?)"),
        (
            {"phases": [{"name": "a", "snat": {"vpc1": {"externalSnat": True}}}]},
            "phases[0].snat.vpc1.externalSnat: unknown key (did you mean phases[0].snat.vpc1.external_snat?)",
        ),
        ({"external_traffic_policy": "Local"}, "(did you mean services.external_traffic_policy?)"),
        ({"probe": {"zzz": 1}}, "probe.zzz: unknown key (known keys here: timeout_seconds, attempts)"),
    ],
)
def test_unknown_keys_get_a_did_you_mean(data: dict[str, object], expected: str) -> None:
    assert expected in error_for(data)


def test_every_field_has_a_description() -> None:
    def undescribed(model: type[BaseModel], path: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{path}{name}")
            inner = config.model_of(field.annotation)
            if inner is not None:
                missing.extend(undescribed(inner, f"{path}{name}."))
        return missing

    assert undescribed(config.ExperimentConfig, "") == []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_show_prints_the_effective_config_with_descriptions(tmp_path: Path) -> None:
    path = write(tmp_path, "services: {external_traffic_policy: Local}\nclusters: {vpc1: {nodes: 5}}\n")
    result = runner.invoke(cli.app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "external_traffic_policy: Local" in result.stdout and "nodes: 5" in result.stdout
    description = config.Services.model_fields["external_traffic_policy"].description
    assert f"# {description}" in result.stdout


def test_config_show_loads_back_to_the_same_config(tmp_path: Path) -> None:
    text = (
        "name: other\n"
        "outside_cidrs: [203.0.113.7/32]\n"
        "phases:\n  - {name: one, snat: {vpc2: {exclude_snat_cidrs: [172.16.0.0/16]}}}\n  - {name: two}\n"
    )
    path = write(tmp_path, text)
    shown = runner.invoke(cli.app, ["config", "show", "-c", str(path)]).stdout
    assert config.from_mapping(yaml.safe_load(shown)) == config.load(path)


def test_config_show_without_a_file_shows_the_defaults() -> None:
    result = runner.invoke(cli.app, ["config", "show"])
    assert result.exit_code == 0 and config.from_mapping(yaml.safe_load(result.stdout)) == config.load()


def test_config_show_fits_a_100_column_terminal() -> None:
    lines = config_doc.render_yaml(config.load()).splitlines()
    assert lines and max(len(line) for line in lines) <= 100


def test_config_show_refuses_a_bad_config(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["config", "show", "-c", str(write(tmp_path, "clusters: {vpc1: {nodes: yes}}\n"))])
    assert result.exit_code == 2 and "clusters.vpc1.nodes: 'yes' is read by YAML as a boolean" in result.output


def test_docs_config_md_is_generated_from_the_schema() -> None:
    assert config_doc.DOC_PATH.read_text(encoding="utf-8") == config_doc.render_markdown(), (
        "docs/config.md is out of date: run `python -m peerprobe.config_doc`"
    )


def test_the_docs_name_every_key() -> None:
    text = config_doc.render_markdown()
    keys = [
        "name",
        "vpcs.vpc1.cidr",
        "clusters.vpc2.service_cidr",
        "services.internal_nlb.target_type",
        "phases[].snat.vpc1.exclude_snat_cidrs",
        "probe.timeout_seconds",
        "outside_cidrs",
    ]
    assert all(f"| `{key}` |" in text for key in keys)


def test_the_docs_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "config.md"
    stale.write_text(config_doc.render_markdown().replace("worker nodes", "workers"), encoding="utf-8")
    assert config_doc.main(["--check", str(stale)]) == 1
    assert config_doc.main([str(stale)]) == 0 and config_doc.main(["--check", str(stale)]) == 0


@pytest.mark.parametrize(
    ("text", "key_path"),
    [
        ("services: {externalTrafficPolicy: Local}\n", "services.externalTrafficPolicy: unknown key"),
        ("name: a\nname: b\n", "name: duplicate key 'name' at line 2"),
    ],
)
def test_predict_with_a_bad_config_says_why_and_exits_2(tmp_path: Path, text: str, key_path: str) -> None:
    path = write(tmp_path, text)
    env = {**os.environ, "COLUMNS": "300"}
    command = [sys.executable, "-m", "peerprobe.cli", "predict", "-c", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {key_path}") and "Traceback" not in result.stderr
