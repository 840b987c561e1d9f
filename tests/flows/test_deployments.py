"""prefect.yaml and deployments/: every parameter set is valid for the flows' one parameter model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.serving import PREFECT_YAML, deployment_specs, served_specs
from peerprobe.params import RunParameters

ROOT = PREFECT_YAML.parent


def test_prefect_yaml_has_the_three_deployments() -> None:
    assert [spec["name"] for spec in served_specs()] == ["experiment", "drift-check", "cleanup"]


def test_work_pool_entries_are_not_served_here_and_carry_valid_parameters() -> None:
    pooled = [spec for spec in deployment_specs() if spec.get("work_pool")]
    assert [spec["name"] for spec in pooled] == ["drift-check-fleet"]
    for schedule in pooled[0]["schedules"]:
        RunParameters.model_validate(schedule["parameters"]["parameters"])


@pytest.mark.parametrize("spec", deployment_specs(), ids=lambda s: s["name"])
def test_each_deployment_parameters_match_the_model(spec: dict[str, object]) -> None:
    parameters = spec.get("parameters") or {}
    assert isinstance(parameters, dict) and set(parameters) <= {"parameters"}
    RunParameters.model_validate(parameters.get("parameters", {}))
    assert spec.get("enforce_parameter_schema") is True
    assert (ROOT / str(spec["entrypoint"]).split(":")[0]).exists()


def test_drift_check_runs_on_a_schedule() -> None:
    drift = next(spec for spec in deployment_specs() if spec["name"] == "drift-check")
    assert drift["schedules"][0]["cron"] and drift["concurrency_limit"] == 1


@pytest.mark.parametrize("path", sorted((ROOT / "deployments").glob("*.yaml")), ids=lambda p: p.name)
def test_parameter_sets_in_deployments_are_valid(path: Path) -> None:
    RunParameters.model_validate(yaml.safe_load(path.read_text()))


def test_the_parameter_model_gives_the_ui_a_form() -> None:
    from flows.experiment import experiment

    schema = experiment.parameters.model_dump()
    assert "parameters" in schema["properties"]
