"""`peerprobe serve`: the deployments of prefect.yaml, served from this process so that runs started from
the UI (or on the drift-check schedule) execute here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron

from peerprobe.errors import ConfigError

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def deployment_specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The `deployments` entries of prefect.yaml."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the deployments ({error})") from None
    specs = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(specs, list) or not specs:
        raise ConfigError(f"{path}: deployments: must be a non-empty list")
    return specs


def _deployment(spec: dict[str, Any], root: Path) -> Any:
    loaded: Flow[Any, Any] = load_flow_from_entrypoint(str(root / spec["entrypoint"]))
    schedules = [
        Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in spec.get("schedules", []) if s.get("active", True)
    ]
    return loaded.to_deployment(
        name=spec["name"],
        parameters=spec.get("parameters"),
        description=spec.get("description"),
        tags=spec.get("tags"),
        schedules=schedules or None,
        concurrency_limit=spec.get("concurrency_limit"),
        enforce_parameter_schema=spec.get("enforce_parameter_schema", True),
    )


def served_specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The entries `peerprobe serve` runs here: those with a `work_pool` run on that pool's workers instead
    (`prefect deploy`), so serve skips them."""
    return [spec for spec in deployment_specs(path) if not spec.get("work_pool")]


def serve_deployments(path: Path = PREFECT_YAML) -> None:
    """Blocks: serves every deployment (but the work-pool ones) until interrupted."""
    serve(*(_deployment(spec, path.parent) for spec in served_specs(path)), print_starting_message=True)
