"""The aws backend's whole flow through the session's Prefect test server, against AWS as it behaves
(tests/backends/aws/world/: moto, a fake Kubernetes API per cluster, the stand-ins and the data plane, every
behaviour of world/behaviours.py on): a run stopped by an injected fault and retried completes with every cell
matching and its finished steps reused; a drift check finds no drift; cleanup leaves nothing; nothing was
created twice and no step needed a retry. And a clean run's logs in the Prefect API carry no warning."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from prefect import get_client

from flows.cleanup import cleanup
from flows.drift import drift_check
from flows.experiment import experiment
from flows.runner import retry_experiment
from peerprobe import logs
from peerprobe.params import RunParameters
from peerprobe.report.document import Report
from tasks._faults import FAULT_ENV
from tests.backends.aws._eks_addons import FakeAddons
from tests.backends.aws.world.behaviours import BEHAVIOURS
from tests.backends.aws.world.world import World, world_config
from tests.flows.run_logs import all_logs
from tests.flows.task_runs import RECORDING_SECONDS, task_states

pytestmark = pytest.mark.lab  # the session's Prefect test server comes with the lab's fixtures
WARNING = 30


@pytest.fixture
def world_of(prefect_server: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """world_of(name): the world for an experiment of that name (its own Prefect cache keys), entered."""
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    FakeAddons().install(monkeypatch)  # moto serves no EKS add-on API
    entered: list[World] = []

    def make(name: str) -> World:
        world = World(world_config(name), BEHAVIOURS).install(monkeypatch)
        entered.append(world.__enter__())
        return world

    yield make
    for world in entered:
        world.__exit__(None, None, None)


def cells_of(report: Any) -> dict[str, Any]:
    assert isinstance(report, Report)
    return {phase.name: phase.cells for phase in report.phases}


def test_a_run_resumed_after_a_fault_a_drift_check_and_cleanup_against_aws_as_it_behaves(
    world_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_of("harness-flow")
    params = RunParameters(config=world.config, backend="aws", keep=True)
    monkeypatch.setenv(FAULT_ENV, "peer-vpcs")
    failed = experiment(parameters=params, return_state=True)
    assert failed.is_failed() and "injected fault" in str(failed.message)
    monkeypatch.delenv(FAULT_ENV)
    flow_run_id = str(failed.state_details.flow_run_id)
    retried: Any = retry_experiment(flow_run_id)
    assert retried.is_completed(), retried.message
    report = retried.result()
    states = task_states(flow_run_id, until=lambda found: "Cached" in found.get("create-network-vpc1", set()))
    assert "Cached" in states["create-network-vpc1"], "the retry reuses the steps that completed"
    assert not [name for name, seen in states.items() if seen & {"AwaitingRetry", "Retrying"}]

    checked = drift_check(parameters=RunParameters(config=world.config, backend="aws"), return_state=True)
    assert checked.is_completed(), checked.message
    live = checked.result()
    assert isinstance(live, Report) and [p.name for p in live.phases] == ["live"]
    assert live.phases[0].cells and all(cell.verdict == "match" for cell in live.phases[0].cells)

    cleaned = cleanup(parameters=RunParameters(config=world.config, backend="aws"), return_state=True)
    assert cleaned.is_completed(), cleaned.message
    assert world.judge(cells_of(report)) == []
    assert {"vpc1-pod", "vpc2-pod", "vpc2-ec2"} <= set(world.data_plane.answered)


# --- a clean run's logs -----------------------------------------------------------------------------------------


@pytest.fixture
def logs_to_the_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """peerprobe's events reach the run's logs in the Prefect API as under `peerprobe run` (runner.connect): through
    the standard `peerprobe` logger, with Prefect's API handler on it (PREFECT_LOGGING_EXTRA_LOGGERS, read only at
    Prefect's import, which this process did long ago)."""
    from prefect.logging.handlers import APILogHandler

    saved = structlog.get_config()
    logger = logging.getLogger(logs.LOGGER)
    level, handler = logger.level, APILogHandler()
    monkeypatch.setenv("PREFECT_LOGGING_EXTRA_LOGGERS", "")
    logs.configure(1, through_stdlib=True)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        structlog.configure(**saved)


def run_logs(flow_run_id: str, *, level: int) -> list[Any]:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        return all_logs(client, flow_run_id, level=level)


def test_a_clean_runs_logs_carry_no_warning(world_of: Any, logs_to_the_api: None) -> None:
    world = world_of("harness-quiet")
    state = experiment(parameters=RunParameters(config=world.config, backend="aws"), return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = str(state.state_details.flow_run_id)
    deadline = time.monotonic() + RECORDING_SECONDS
    while not any(log.name.startswith(logs.LOGGER) for log in run_logs(flow_run_id, level=20)):
        assert time.monotonic() < deadline, "peerprobe's events never reached the run's logs: nothing was checked"
        time.sleep(0.2)
    warnings = run_logs(flow_run_id, level=WARNING)
    assert warnings == [], "\n".join(f"{log.level} {log.name}: {log.message}" for log in warnings)
    assert world.judge(cells_of(state.result())) == []
