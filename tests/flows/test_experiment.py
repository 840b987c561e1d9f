"""The experiment flow on the lab: a failure at any step keeps what was made and names it; a retry of the
same flow run skips the completed steps (Cached), completes, and creates nothing twice; with
cleanup_on_failure nothing is left. One Prefect test server for the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flows.experiment import experiment
from flows.runner import retry_experiment
from peerprobe import statedir
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.params import RunParameters
from peerprobe.report.document import Report
from tasks._faults import FAULT_ENV
from tests.backends.lab.conftest import own_config
from tests.flows.task_runs import reached, task_states

pytestmark = pytest.mark.lab
STEPS = [
    "create-network",
    "create-cluster",
    "create-peer-host",
    "peer-vpcs",
    "deploy-apps",
    "expose-services",
    "set-snat",
    "probe",
]
DONE = {"Cached", "Completed"}


def parameters(name: str, **extra: Any) -> RunParameters:
    cfg = own_config(name, {"probe": {"timeout_seconds": 0.5}, "phases": [{"name": "baseline"}]})
    return RunParameters(config=cfg, **extra)


@pytest.fixture
def cleanup_after(prefect_server: None) -> Iterator[list[RunParameters]]:
    made: list[RunParameters] = []
    yield made
    for params in made:
        lab.down(params.config)


def vpcs_of(params: RunParameters) -> int:
    state = lab.load_state(lab.env_key(params.config))
    assert state is not None
    aws = lab._cloud(params.config, state.env_key, state.run_id)
    owned = [{"Name": "tag:peerprobe:environment", "Values": [state.env_key]}]
    return len(aws.ec2.describe_vpcs(Filters=owned)["Vpcs"])


@pytest.mark.parametrize("step", STEPS)
def test_a_failed_step_keeps_what_exists_and_a_retry_completes(
    step: str, cleanup_after: list[RunParameters], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = parameters(f"fail-{step.split('-')[0]}{STEPS.index(step)}", keep=True)
    cleanup_after.append(params)
    monkeypatch.setenv(FAULT_ENV, step)
    failed = experiment(parameters=params, return_state=True)
    assert failed.is_failed() and "injected fault" in str(failed.message)
    kept = aws_state.load(lab.env_key(params.config))
    assert kept.networks, "what was created is kept, and named"
    flow_run_id = str(failed.state_details.flow_run_id)
    retried = retry_experiment(flow_run_id)
    assert retried.is_completed()  # type: ignore[attr-defined]
    states = task_states(flow_run_id, until=lambda found: bool(found.get("create-network-vpc1", set()) & DONE))
    assert states["create-network-vpc1"] & DONE
    assert vpcs_of(params) == 2, "a retry creates nothing twice"
    report = retried.result()  # type: ignore[attr-defined]
    assert isinstance(report, Report) and report.summary.cells > 0


def test_a_retry_reuses_completed_steps(cleanup_after: list[RunParameters], monkeypatch: pytest.MonkeyPatch) -> None:
    params = parameters("resume", keep=True)
    cleanup_after.append(params)
    monkeypatch.setenv(FAULT_ENV, "probe")
    failed = experiment(parameters=params, return_state=True)
    flow_run_id = str(failed.state_details.flow_run_id)
    retry_experiment(flow_run_id)
    completed = {"create-network-vpc1", "create-cluster-vpc2", "deploy-apps", "set-snat-vpc1-baseline"}
    states = task_states(flow_run_id, until=reached(completed, "Cached"))
    assert completed <= {name for name, reached_states in states.items() if "Cached" in reached_states}


def test_cleanup_on_failure_leaves_nothing(cleanup_after: list[RunParameters], monkeypatch: pytest.MonkeyPatch) -> None:
    params = parameters("cof", cleanup_on_failure=True)
    cleanup_after.append(params)
    monkeypatch.setenv(FAULT_ENV, "probe")
    assert experiment(parameters=params, return_state=True).is_failed()
    key = lab.env_key(params.config)
    assert lab.load_state(key) is None and net.list_namespaces(key) == []
    assert statedir.generation(key).endswith("-2"), "opened anew (1), then cleaned up (2)"


def test_a_successful_run_cleans_up_and_returns_the_report(cleanup_after: list[RunParameters]) -> None:
    params = parameters("ok")
    cleanup_after.append(params)
    report = experiment(parameters=params)
    assert report.summary.cells == len(report.phases[0].cells) > 0
    assert lab.load_state(lab.env_key(params.config)) is None
