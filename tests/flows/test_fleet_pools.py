"""The deployment specs for Kubernetes and ECS work pools, checked against the base job templates Prefect 3.9
ships for those types (its bundled collections view: prefect-kubernetes and prefect-aws, whose workers are not
installed here, so the templates are validated and rendered, not run): docs/fleet-pools.yaml's pool
defaults and the job variables `fleet add` gives each deployment fit the templates' variables, and a rendered
Kubernetes job carries the image, service account and result storage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import prefect.server.api
import pytest
import yaml
from prefect.utilities.templating import apply_values

from flows import fleet as fleet_flows
from peerprobe import config, fleet

POOLS = Path(__file__).resolve().parents[2] / "docs" / "fleet-pools.yaml"
BUNDLED = Path(prefect.server.api.__file__).parent / "collections_data" / "views" / "aggregate-worker-metadata.json"


def base_job_template(pool_type: str) -> dict[str, Any]:
    for collection in json.loads(BUNDLED.read_text(encoding="utf-8")).values():
        for worker in collection.values():
            if worker.get("type") == pool_type:
                template: dict[str, Any] = worker["default_base_job_configuration"]
                return template
    raise AssertionError(f"Prefect ships no base job template for {pool_type}")


def pool_defaults(pool_type: str) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(POOLS.read_text(encoding="utf-8"))[pool_type]
    return found


def deployment_variables(pool_type: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("PEERPROBE_RESULT_STORAGE", "s3://my-peerprobe-results/runs")
    member = fleet.Member(backend="aws", config=config.from_mapping({"name": "team-a", "region": "cn-north-1"}))
    return fleet_flows.job_variables(pool_type, member)


def merged(pool_type: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The pool's defaults under the deployment's variables, `env` merged key by key as the worker merges it."""
    defaults, mine = pool_defaults(pool_type), deployment_variables(pool_type, monkeypatch)
    return defaults | mine | {"env": defaults.get("env", {}) | mine.get("env", {})}


@pytest.mark.parametrize("pool_type", ["kubernetes", "ecs"])
def test_the_pool_defaults_fit_the_base_job_template(pool_type: str) -> None:
    variables = base_job_template(pool_type)["variables"]
    defaults = pool_defaults(pool_type)
    assert set(defaults) <= set(variables["properties"]), set(defaults) - set(variables["properties"])
    jsonschema.validate(defaults, variables)


@pytest.mark.parametrize("pool_type", ["kubernetes", "ecs"])
def test_a_deployments_job_variables_fit_the_base_job_template(pool_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    jsonschema.validate(merged(pool_type, monkeypatch), base_job_template(pool_type)["variables"])


def test_a_process_deployment_sets_no_job_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert deployment_variables("process", monkeypatch) == {}


def test_the_rendered_kubernetes_job_runs_the_image_as_the_service_account(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = merged("kubernetes", monkeypatch)
    template = base_job_template("kubernetes")["job_configuration"]
    job = apply_values(template, variables | {"command": "prefect flow-run execute", "name": "drift"})
    pod = job["job_manifest"]["spec"]["template"]["spec"]
    assert job["namespace"] == "peerprobe" and job["job_manifest"]["metadata"]["namespace"] == "peerprobe"
    assert pod["serviceAccountName"] == "peerprobe-drift"
    (container,) = pod["containers"]
    assert container["image"] == pool_defaults("kubernetes")["image"]
    assert variables["env"]["PEERPROBE_RESULT_STORAGE"] == "s3://my-peerprobe-results/runs"
    assert variables["env"]["AWS_REGION"] == "cn-north-1"


def test_the_ecs_task_takes_the_role_of_a_check(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = merged("ecs", monkeypatch)
    template = base_job_template("ecs")["job_configuration"]
    task = apply_values(template, variables | {"command": "prefect flow-run execute", "name": "drift"})
    assert task["task_run_request"]["overrides"]["taskRoleArn"] == pool_defaults("ecs")["task_role_arn"]
    assert task["task_definition"]["containerDefinitions"][0]["image"] == pool_defaults("ecs")["image"]


def test_a_pool_of_another_type_is_refused() -> None:
    from peerprobe.errors import ConfigError

    with pytest.raises(ConfigError, match="docker"):
        fleet.check_pool_type("p", "docker")
