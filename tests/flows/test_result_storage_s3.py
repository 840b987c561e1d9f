"""Step results in S3 through prefect-aws's S3Bucket, served by moto on loopback: a step's result lands in the
bucket, and a retry of the same flow run in a new process with no local result files finds the step Cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.blocks.core import Block
from prefect.context import TaskRunContext
from prefect.results import ResultRecord
from prefect.settings import get_current_settings
from prefect_aws.s3 import S3Bucket

from flows.runner import reschedule
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.lab import moto_service
from tasks._faults import FAULT_ENV, inject_fault
from tasks._policy import STEP_OPTIONS
from tasks._storage import RESULT_STORAGE_ENV, result_storage
from tests.flows.task_runs import reached, task_states

pytestmark = pytest.mark.lab  # the session's Prefect server and moto come with the lab's fixtures
ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"  # moto's S3 home region: a bucket there needs no location constraint
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens on the discard port
PodEnv = Callable[[Path], dict[str, str]]


def run_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """phase_key without an environment: bound to the flow run, so only a retry of that run reuses it."""
    return f"{context.task.name}:run={context.task_run.flow_run_id}"


STEP = {**STEP_OPTIONS, "cache_key_fn": run_key}  # result storage as tasks/_storage.py chose it at import


@task(name="s3-first", task_run_name="s3-first", **STEP)
def first(ledger: str) -> dict[str, str]:
    with open(ledger, "a") as handle:  # a file, so executions are counted across processes
        handle.write("ran\n")
    return {"first": "done"}


@task(name="s3-second", task_run_name="s3-second", **STEP)
def second(previous: dict[str, str]) -> str:
    inject_fault("s3-second")
    return f"after {previous['first']}"


@flow(name="s3-steps")
def steps(ledger: str) -> str:
    return second(first(ledger))


@pytest.fixture
def s3_endpoint(lab_state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = moto_service.endpoint_url()
    # botocore's own setting; prefect-aws builds its clients without an endpoint_url, so this one applies.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # A second lock: whatever is not on loopback goes to a closed local port and fails, never to AWS.
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, DEAD_PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return endpoint


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return ClientFactory(REGION, endpoint_url=s3_endpoint).client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"peerprobe-results-{uuid.uuid4().hex[:12]}"  # moto lives for the session: a bucket per test
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def pod_env(prefect_server: None, bucket: str) -> PodEnv:
    """The environment of a worker pod: the setting under test, and its own (empty) local result storage."""
    api_url = str(get_current_settings().api.url)

    def env(local_storage: Path) -> dict[str, str]:
        return {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "PREFECT_LOCAL_STORAGE_PATH": str(local_storage),
            RESULT_STORAGE_ENV: f"s3://{bucket}/steps",
            FAULT_ENV: "s3-second",
        }

    return env


def test_an_s3_url_saves_an_s3_bucket_block_for_its_bucket_and_folder(prefect_server: None) -> None:
    block = Block.load(result_storage("s3://results/peerprobe/steps/"))
    assert isinstance(block, S3Bucket)
    assert (block.bucket_name, block.bucket_folder) == ("results", "peerprobe/steps")


def test_the_block_talks_to_the_endpoint_in_aws_endpoint_url_s3(prefect_server: None, s3_endpoint: str) -> None:
    block = Block.load(result_storage("s3://results/steps"))
    assert block.credentials.get_s3_client().meta.endpoint_url == s3_endpoint


def test_a_step_writes_its_result_into_the_bucket(prefect_server: None, bucket: str, s3: Any, tmp_path: Path) -> None:
    step = first.with_options(result_storage=result_storage(f"s3://{bucket}/steps"))

    @flow
    def one_step() -> None:
        step(str(tmp_path / "ledger"))

    one_step()
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("steps/s3-first:run="), keys
    record: ResultRecord[Any] = ResultRecord.deserialize(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    assert record.result == {"first": "done"}


def test_a_retry_in_a_new_pod_finds_the_completed_step_cached(pod_env: PodEnv, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    failed = run_pod(pod_env(tmp_path / "pod-a"), "run", str(ledger))
    assert failed["state"] == "Failed", "the injected fault fails the first run"
    retried = run_pod(pod_env(tmp_path / "pod-b"), "retry", failed["flow_run_id"])
    assert retried["state"] == "Completed"
    states = task_states(failed["flow_run_id"], until=reached({"s3-first"}, "Cached"))
    assert "Cached" in states.get("s3-first", set())
    assert ledger.read_text().count("ran") == 1, "the completed step ran once, in the first pod"


def run_pod(env: dict[str, str], *args: str) -> dict[str, str]:
    """This module as a worker pod's process: tasks/_storage.py reads PEERPROBE_RESULT_STORAGE at import."""
    command = [sys.executable, "-m", "tests.flows.test_result_storage_s3", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return outcome


def pod_main(mode: str, argument: str) -> None:
    """`run LEDGER` starts a flow run; `retry FLOW_RUN_ID` retries that run as the UI's Retry does. Prints
    the flow run's id and final state as one JSON line."""
    state: Any = steps(argument, return_state=True) if mode == "run" else retry(argument)
    print(json.dumps({"flow_run_id": str(state.state_details.flow_run_id), "state": state.name}))


def retry(flow_run_id: str) -> Any:
    from prefect.flow_engine import run_flow

    flow_run = reschedule(flow_run_id)
    return run_flow(flow=steps, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")


if __name__ == "__main__":
    pod_main(*sys.argv[1:3])
