"""The fleet as a platform team runs it: `fleet add` puts two lab environments' drift checks on a process work
pool, and real `prefect worker start` subprocesses pick them up. Every check completes with its verdict; two
checks of one environment on two workers never overlap (the flock); aws-node changed behind peerprobe's back
ends the check "Drifted" with the event; a worker killed mid-check leaves the lock free and the next check runs.
One module, one xdist group: the workers and the lab environments are shared by its tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL

from flows import fleet as fleet_flows
from flows.drift import DRIFTED
from flows.experiment import experiment
from peerprobe import config, drift, fleet, ownership, server
from peerprobe.backends.lab import environment as lab
from peerprobe.params import RunParameters
from tests.flows.test_drift import drift_events

# Under xdist (--dist loadgroup) the module's tests share one process: its workers, pool and environments.
pytestmark = [pytest.mark.lab, *([pytest.mark.xdist_group("fleet-worker")] if find_spec("xdist") else [])]
POOL = "fleet-test"
NAMES = ("fleet1", "fleet2")
RUN_SECONDS = 150.0


def fleet_config(name: str) -> config.ExperimentConfig:
    return config.from_mapping(
        {
            "name": name,
            "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}},
            "probe": {"timeout_seconds": 2},  # a loaded 2-core machine answers slower than 0.5 s
            "phases": [{"name": "baseline"}],
        }
    )


@pytest.fixture(scope="module")
def members(prefect_server: None) -> Iterator[list[fleet.Member]]:
    """fleet1 kept with its baseline (as `run --keep` leaves it), fleet2 built by `lab up` (no baseline), both
    added to the pool."""
    configs = [fleet_config(name) for name in NAMES]
    try:
        experiment(parameters=RunParameters(config=configs[0], keep=True, cleanup_on_failure=True))
        lab.up(configs[1])
        found = [fleet.Member(backend="lab", config=c) for c in configs]
        fleet_flows.add(POOL, found)
        yield found
    finally:
        for c in configs:
            lab.down(c)
            drift.remove_baseline(lab.env_key(c))


@contextlib.contextmanager
def worker(lab_state_dir: Path, label: str) -> Iterator[subprocess.Popen[bytes]]:
    """`prefect worker start --pool POOL --type process` against the test server; its process group (the flow
    runs it started with it) stopped afterwards."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PEERPROBE_STATE_DIR": str(lab_state_dir)}
    env |= {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "0"}
    log = open(lab_state_dir / f"worker-{label}.log", "ab")  # noqa: SIM115 - closed in the finally below
    command = [server.prefect_executable(), "worker", "start", "--pool", POOL, "--type", "process"]
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def start_check(member: fleet.Member) -> UUID:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{fleet.FLOW_NAME}/{member.name}")
        return client.create_flow_run_from_deployment(deployment.id).id


def finished(run_ids: list[UUID], timeout: float = RUN_SECONDS) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)))
        if len(runs) == len(run_ids) and all(run.state is not None and run.state.is_final() for run in runs):
            return runs
        assert time.monotonic() < deadline, [(run.name, run.state_name) for run in runs]
        time.sleep(1)


def test_fleet_add_twice_keeps_one_deployment_per_environment(members: list[fleet.Member]) -> None:
    fleet_flows.add(POOL, members, cron="*/5 * * * *")
    try:
        mine = [entry for entry in fleet_flows.entries() if entry["pool"] == POOL]
        assert sorted(entry["deployment"] for entry in mine) == [f"drift-check/{m.name}" for m in members]
        assert all(entry["schedule"] == ["cron */5 * * * *"] for entry in mine)
    finally:
        fleet_flows.add(POOL, members)


@pytest.fixture(scope="module")
def checked(members: list[fleet.Member], lab_state_dir: Path) -> list[Any]:
    """One check of each environment, run by one worker: the finished flow runs."""
    run_ids = [start_check(member) for member in members]
    with worker(lab_state_dir, "verdict"):
        return finished(run_ids)


def test_a_worker_runs_every_environments_check_with_its_verdict(
    members: list[fleet.Member], checked: list[Any]
) -> None:
    assert [run.state_name for run in checked] == ["Completed", "Completed"], [r.state.message for r in checked]
    listed = {entry["deployment"]: entry for entry in fleet_flows.entries()}
    for member in members:
        last = listed[f"drift-check/{member.name}"]["last_check"]
        assert last["state"] == "Completed" and last["cells"] > 0 and last["drift"] == 0, last
        assert listed[f"drift-check/{member.name}"]["schedule"] == ["every 30 min"]


def test_one_scrape_shows_every_environments_cells(members: list[fleet.Member], checked: list[Any]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    families = {family.name: family for family in text_string_to_metric_families(fleet_flows.metrics_text())}
    cells = families["peerprobe_cell_match"].samples
    for member in members:
        mine = [sample for sample in cells if sample.labels["experiment"] == member.config.name]
        assert mine and all(sample.value == 1 for sample in mine), member.name


def _checking_interval(run_id: UUID) -> tuple[datetime, datetime]:
    """From the first step's start to the last step's end: the time the check held the environment."""
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    starts = [task.start_time for task in tasks if task.start_time]
    ends = [task.end_time for task in tasks if task.end_time]
    assert starts and ends
    return min(starts), max(ends)


def test_two_checks_of_one_environment_on_two_workers_never_overlap(
    members: list[fleet.Member], lab_state_dir: Path
) -> None:
    run_ids = [start_check(members[1]), start_check(members[1])]
    with worker(lab_state_dir, "a"), worker(lab_state_dir, "b"):
        runs = finished(run_ids)
    assert [run.state_name for run in runs] == ["Completed", "Completed"]
    first, second = sorted(_checking_interval(run_id) for run_id in run_ids)
    assert first[1] <= second[0], f"the checks overlapped: {first} and {second}"


def test_aws_node_changed_behind_our_back_ends_the_check_drifted_with_the_event(
    members: list[fleet.Member], lab_state_dir: Path
) -> None:
    kept = members[0]
    started = time.time()
    lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT=true"])
    try:
        run_id = start_check(kept)
        with worker(lab_state_dir, "drift"):
            (run,) = finished([run_id])
    finally:
        lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT-"])
    assert run.state_name == DRIFTED and run.state.is_failed(), run.state.message
    assert "AWS_VPC_K8S_CNI_EXTERNALSNAT=true" in str(run.state.message)
    events = [e for e in drift_events(started) if e.resource.id == f"peerprobe.environment.{kept.env_key}"]
    assert events, "peerprobe.drift.detected reached the server"


def _wait_for_holder(env_key: str, run_id: UUID, timeout: float = RUN_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while (held := ownership.holder(env_key)) is None or held.flow_run_id != str(run_id):
        assert time.monotonic() < deadline, f"the check never took the lock of {env_key}"
        time.sleep(0.2)


def test_a_worker_killed_mid_check_leaves_the_environment_usable(
    members: list[fleet.Member], lab_state_dir: Path
) -> None:
    member = members[1]
    killed = start_check(member)
    with worker(lab_state_dir, "killed") as process:
        _wait_for_holder(member.env_key, killed)
        os.killpg(process.pid, signal.SIGKILL)  # the worker and the check it runs, mid-check
        process.wait(10)
    # The kernel let go of the dead holder's flock: the next owner takes it at once.
    ownership.acquire(member.env_key, "test", timeout_seconds=5).release()
    state, healthy = lab.status(member.config)
    assert state is not None and healthy
    run_id = start_check(member)
    with worker(lab_state_dir, "after-kill"):
        (run,) = finished([run_id])
    assert run.state_name == "Completed", run.state.message


def test_a_pool_of_another_type_is_refused_with_nothing_created(prefect_server: None) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    from peerprobe.errors import ConfigError

    member = fleet.Member(backend="lab", config=fleet_config("fleetx"))
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="fleet-docker", type="docker"), overwrite=True)
    with pytest.raises(ConfigError, match="'docker'"):
        fleet_flows.add("fleet-docker", [member])
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_deployment_by_name(f"{fleet.FLOW_NAME}/{member.name}")
