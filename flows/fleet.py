"""`peerprobe fleet`: one drift-check deployment per environment on a work pool, read back and removed through
the Prefect API. Everything is checked (configs, cron, the pool's type) before anything is created."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterTags,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.utilities.callables import parameter_schema

from peerprobe import fleet
from peerprobe.environ import RESULT_STORAGE_ENV
from peerprobe.errors import ConfigError
from peerprobe.report import metrics
from peerprobe.report.document import Report

ROOT = Path(__file__).resolve().parent.parent  # where a process worker finds flows/drift.py
FLEET_TAG = "fleet"
FINISHED = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]


@dataclass
class Added:
    pool: str
    pool_type: str
    pool_created: bool
    deployments: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def schedule(cron: str | None) -> DeploymentScheduleCreate:
    """Every 30 minutes, or the cron expression (UTC); Prefect's own check of it, before anything is made."""
    try:
        made: CronSchedule | IntervalSchedule = (
            CronSchedule(cron=cron, timezone="UTC")
            if cron
            else IntervalSchedule(interval=timedelta(minutes=fleet.DEFAULT_INTERVAL_MINUTES))
        )
    except ValueError as error:
        raise ConfigError(f"--cron {cron!r}: {error}") from None
    return DeploymentScheduleCreate(schedule=made, active=True)


def add(pool: str, members: list[fleet.Member], *, cron: str | None = None, run_now: bool = False) -> Added:
    """Create or update `drift-check/<backend>-<name>-<region>` of each member on the pool (a process pool is
    made when missing); with `run_now`, one run of each at once as well."""
    when = schedule(cron)
    with get_client(sync_client=True) as client:
        pool_type, created = _pool(client, pool)
        flow_id = client.create_flow_from_name(fleet.FLOW_NAME)
        added = Added(pool=pool, pool_type=pool_type, pool_created=created)
        for member in members:
            deployment_id = client.create_deployment(  # an upsert by (flow, name): adding twice updates it
                flow_id=flow_id,
                name=member.name,
                work_pool_name=pool,
                entrypoint=fleet.ENTRYPOINT,
                path=str(ROOT) if pool_type == fleet.CREATED_POOL_TYPE else None,
                pull_steps=_pull_steps(pool_type),
                parameters={"parameters": _parameters(member)},
                job_variables=job_variables(pool_type, member),
                parameter_openapi_schema=_schema(),
                enforce_parameter_schema=True,
                schedules=[when],
                tags=[*fleet.TAGS, member.backend],
                description=f"Drift check of {member.env_key} (peerprobe fleet)",
            )
            added.deployments.append(f"{fleet.FLOW_NAME}/{member.name}")
            if run_now:
                run = client.create_flow_run_from_deployment(deployment_id, tags=["run-now"])
                added.runs.append(str(run.id))
    return added


def _pool(client: Any, pool: str) -> tuple[str, bool]:
    try:
        found = client.read_work_pool(pool)
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=pool, type=fleet.CREATED_POOL_TYPE))
        return fleet.CREATED_POOL_TYPE, True
    fleet.check_pool_type(pool, found.type)
    return str(found.type), False


def _pull_steps(pool_type: str) -> list[dict[str, Any]]:
    """A process worker runs the flow from this checkout; an image (Dockerfile.worker) has it in /opt/peerprobe."""
    directory = str(ROOT) if pool_type == fleet.CREATED_POOL_TYPE else "/opt/peerprobe"
    return [{"prefect.deployments.steps.set_working_directory": {"directory": directory}}]


def job_variables(pool_type: str, member: fleet.Member) -> dict[str, Any]:
    """What each run needs beyond the pool's own defaults (docs/fleet.md): the environment's region and, when
    set here, the result storage, so a retry in a new pod finds the completed steps. A process worker inherits
    its own environment, so nothing is set for it."""
    if pool_type == fleet.CREATED_POOL_TYPE:
        return {}
    env = {"AWS_REGION": member.config.region, "AWS_DEFAULT_REGION": member.config.region}
    storage = os.environ.get(RESULT_STORAGE_ENV)
    if storage:
        env[RESULT_STORAGE_ENV] = storage
    return {"env": env}


def _parameters(member: fleet.Member) -> dict[str, Any]:
    return {"backend": member.backend, "config": member.config.model_dump(mode="json", exclude_unset=True)}


def _schema() -> dict[str, Any]:
    from flows.drift import drift_check

    return parameter_schema(drift_check).model_dump_for_openapi()


def remove(members: list[fleet.Member]) -> list[tuple[str, bool]]:
    """Each member's deployment deleted (its schedule and scheduled runs go with it); absent is fine."""
    removed = []
    with get_client(sync_client=True) as client:
        for member in members:
            name = f"{fleet.FLOW_NAME}/{member.name}"
            try:
                deployment = client.read_deployment_by_name(name)
            except ObjectNotFound:
                removed.append((name, False))
                continue
            client.delete_deployment(deployment.id)
            removed.append((name, True))
    return removed


def entries() -> list[dict[str, Any]]:
    """Each deployment of the fleet: its pool, schedule, last finished check (run id, state, time, cells,
    drift) and next scheduled run."""
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[FLEET_TAG]))
        )
        return [_entry(client, deployment) for deployment in sorted(deployments, key=lambda d: d.name)]


def _entry(client: Any, deployment: Any) -> dict[str, Any]:
    last = _runs(client, deployment.id, FINISHED, FlowRunSort.END_TIME_DESC)
    upcoming = _runs(client, deployment.id, [StateType.SCHEDULED], FlowRunSort.EXPECTED_START_TIME_ASC)
    parameters = (deployment.parameters or {}).get("parameters") or {}
    config = parameters.get("config") or {}
    return {
        "deployment": f"{fleet.FLOW_NAME}/{deployment.name}",
        "environment": f"{parameters.get('backend', 'lab')}:{config.get('name', 'workshop')}:"
        f"{config.get('region', 'cn-northwest-1')}",
        "pool": deployment.work_pool_name,
        "schedule": [_describe(s.schedule) for s in deployment.schedules or []],
        "last_check": _last(last[0]) if last else None,
        "next_run": _time(upcoming[0].expected_start_time) if upcoming else None,
    }


def _runs(client: Any, deployment_id: UUID, types: list[StateType], sort: FlowRunSort) -> list[FlowRun]:
    runs: list[FlowRun] = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id={"any_": [deployment_id]}),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types))),
        sort=sort,
        limit=1,
    )
    return runs


def _last(run: FlowRun) -> dict[str, Any]:
    report = last_report(run)
    tally = report.tally() if report is not None else None
    return {
        "flow_run_id": str(run.id),
        "state": run.state_name,
        "time": _time(run.end_time),
        "cells": tally.cells if tally else None,
        "drift": tally.drift if tally else None,
    }


def last_report(run: FlowRun) -> Report | None:
    """The report a finished check persisted (the worker's result storage: PEERPROBE_RESULT_STORAGE on a pool
    of pods, the local storage of a process worker); None where it cannot be read from here."""
    if run.state is None:
        return None
    try:
        result = run.state.result(raise_on_failure=False)
    except Exception:  # storage this machine cannot reach leaves the counts unknown, not the list
        return None
    if isinstance(result, Report):
        return result
    if isinstance(result, dict) and "phases" in result:
        return Report.model_validate(result)
    return None


def _describe(made: Any) -> str:
    if isinstance(made, CronSchedule):
        return f"cron {made.cron}"
    if isinstance(made, IntervalSchedule):
        return f"every {int(made.interval.total_seconds() // 60)} min"
    return str(made)


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def metrics_text() -> str:
    """One scrape for the whole fleet: every environment's last check (its cells, counts and time), in the
    text format of `drift --metrics` (peerprobe/report/metrics.py); an environment not checked yet is absent."""
    checks: list[tuple[Report, str, float]] = []
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[FLEET_TAG]))
        )
        for deployment in sorted(deployments, key=lambda d: d.name):
            last = _runs(client, deployment.id, FINISHED, FlowRunSort.END_TIME_DESC)
            report = last_report(last[0]) if last else None
            if report is None or last[0].end_time is None:
                continue
            config = ((deployment.parameters or {}).get("parameters") or {}).get("config") or {}
            checks.append((report, config.get("region", "cn-northwest-1"), last[0].end_time.timestamp()))
    return metrics.render_many(checks)
