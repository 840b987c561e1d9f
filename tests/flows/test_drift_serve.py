"""The deployments as a user meets them: `peerprobe serve` (a subprocess pointed at the session's test server)
registers them, the drift-check deployment has its cron schedule, and a flow run created from the deployment
(what the UI's "Run" does) executes under serve and completes, with the matrix published as an artifact; one on
the aws backend fails at once, as serve was started without --allow-aws."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.settings import PREFECT_API_URL

from peerprobe import config, drift
from peerprobe.backends.lab import environment as lab
from peerprobe.report import artifacts

pytestmark = pytest.mark.lab
NAME = "drift6s"
SERVE_READY_SECONDS = 90.0
RUN_SECONDS = 120.0


def served_config() -> config.ExperimentConfig:
    return config.from_mapping(
        {
            "name": NAME,
            "clusters": {"vpc1": {"name": f"{NAME}-one"}, "vpc2": {"name": f"{NAME}-two"}},
            # 2 s: the run must complete clean, and a loaded 2-core CI machine can answer slower than 0.5 s.
            "probe": {"timeout_seconds": 2},
            "phases": [{"name": "baseline"}],
        }
    )


@pytest.fixture(scope="module")
def environment(prefect_server: None) -> Iterator[config.ExperimentConfig]:
    cfg = served_config()
    try:
        lab.up(cfg)
        yield cfg
    finally:
        lab.down(cfg)
        drift.remove_baseline(lab.env_key(cfg))


@pytest.fixture(scope="module")
def serve(prefect_server: None, lab_state_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`peerprobe serve` against the test server, stopped (its whole process group) afterwards."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PEERPROBE_STATE_DIR": str(lab_state_dir)}
    # Were a run on aws let through, it would reach nothing but a closed loopback port, with fake credentials.
    env |= {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"}
    env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    log = open(lab_state_dir / "serve-test.log", "ab")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "peerprobe.cli", "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def wait_for_deployment(name: str, process: subprocess.Popen[bytes]) -> Any:
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + SERVE_READY_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "peerprobe serve exited early"
        with get_client(sync_client=True) as client:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                pass
        time.sleep(0.5)
    raise AssertionError(f"deployment {name} was not registered within {SERVE_READY_SECONDS:.0f}s")


def wait_final(flow_run_id: Any) -> Any:
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(0.5)
    raise AssertionError(f"flow run {flow_run_id} did not finish within {RUN_SECONDS:.0f}s")


def test_the_drift_check_deployment_is_served_with_its_schedule(serve: subprocess.Popen[bytes]) -> None:
    deployment = wait_for_deployment("drift-check/drift-check", serve)
    crons = [getattr(s.schedule, "cron", None) for s in deployment.schedules]
    assert "*/30 * * * *" in crons and all(s.active for s in deployment.schedules)
    assert deployment.enforce_parameter_schema


def test_a_run_created_from_the_deployment_completes_under_serve(
    serve: subprocess.Popen[bytes], environment: config.ExperimentConfig
) -> None:
    deployment = wait_for_deployment("drift-check/drift-check", serve)
    parameters = {"parameters": {"config": environment.model_dump(mode="json"), "backend": "lab"}}
    with get_client(sync_client=True) as client:  # what the UI's "Run" button does
        created = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
    run = wait_final(created.id)
    assert run.state.is_completed(), f"{run.state.name}: {run.state.message}"
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        of_run = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        found = client.read_artifacts(artifact_filter=of_run)
    keys = {artifact.key for artifact in found}
    assert artifacts.artifact_key(NAME, "phase", "live") in keys
    assert artifacts.artifact_key(NAME, "drift") in keys


def test_the_experiment_deployment_accepts_the_form_and_rejects_bad_input(serve: subprocess.Popen[bytes]) -> None:
    from prefect.exceptions import PrefectHTTPStatusError

    deployment = wait_for_deployment("experiment/experiment", serve)
    with get_client(sync_client=True) as client, pytest.raises(PrefectHTTPStatusError):
        client.create_flow_run_from_deployment(deployment.id, parameters={"parameters": {"backend": "gcp"}})


def test_a_run_on_aws_started_from_the_ui_fails_at_once_without_allow_aws(serve: subprocess.Popen[bytes]) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deployment = wait_for_deployment("experiment/experiment", serve)
    parameters = {"parameters": {"config": served_config().model_dump(mode="json"), "backend": "aws"}}
    with get_client(sync_client=True) as client:
        created = client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
    run = wait_final(created.id)
    assert run.state.is_failed() and "peerprobe serve --allow-aws" in str(run.state.message)
    with get_client(sync_client=True) as client:  # not one step ran: nothing was read or created
        steps = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    assert steps == []
