"""What every task shares: opening the backend from plain data, retrying only transient errors with
backoff and jitter, cache keys that carry the environment generation, and the test-only fault switch."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from peerprobe import environ, logs, statedir
from peerprobe.backends.steps import EnvironmentRef, Experiment
from peerprobe.errors import ConfigError, InfrastructureError, TransientError

FAULT_ENV = "PEERPROBE_FAIL_ONCE"  # a step name: that step fails once per flow run (tests of resume)


def open_experiment(ref: EnvironmentRef, *, step: str = "", phase: str = "") -> Experiment:
    """The backend for this environment, with the step's context bound to every event it logs."""
    logs.bind(experiment=ref.config.name, backend=ref.backend, step=step or None, phase=phase or None)
    if ref.backend == "lab":
        from peerprobe.backends.lab.backend import LabExperiment

        return LabExperiment(ref)
    if ref.backend == "aws":
        from peerprobe.backends.aws.experiment import AwsExperiment, preflight

        checked = (ref.config.region, ref.config.aws.profile, ref.fingerprint())
        if checked not in _AWS_CHECKED:  # once per process: credentials, region, adopted networks
            preflight(ref.config)
            _AWS_CHECKED.add(checked)
        return AwsExperiment(ref)
    raise ConfigError(f"backend: {ref.backend!r} is not one of lab or aws")


_AWS_CHECKED: set[tuple[str, str | None, str]] = set()


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry_condition_fn: only what is transient (throttling, converging, timeouts on the wire)."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # a permanent error: retrying would only repeat it
        return False
    return False


def step_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Setup steps: the same environment, generation, config and arguments hit the cache, so a retried
    run skips what completed; a cleanup advances the generation, so nothing dead is ever reused."""
    ref: EnvironmentRef = parameters["ref"]
    rest = ":".join(f"{k}={v}" for k, v in sorted(parameters.items()) if k != "ref")
    return f"{ref.key}:g{ref.generation}:{ref.fingerprint()}:{context.task.name}:{rest}"


def phase_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Phase steps (SNAT, probes): also bound to the flow run, so a new run probes afresh and a probe
    result is never reused across phases or runs; a retry of the same run reuses what it completed."""
    return f"{step_key(context, parameters)}:run={context.task_run.flow_run_id}"


StepListener = Callable[[str, str], None]  # (task run name, state name)
_listeners: list[StepListener] = []


def listen(listener: StepListener) -> Callable[[], None]:
    """Call `listener` whenever a step finishes in this process (the terminal's progress bar); returns an
    unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _finished(task: Any, task_run: Any, state: Any) -> None:
    for listener in list(_listeners):
        listener(str(task_run.name), str(state.name))


RESULT_STORAGE_ENV = environ.RESULT_STORAGE_ENV  # s3://bucket/prefix, or a block slug such as s3-bucket/peerprobe


def result_storage(value: str | None = None) -> Any:
    """Where persisted step results live when runs move between machines (a work pool): unset, Prefect's
    local default; `s3://bucket/prefix`, prefect-aws's S3Bucket (the `aws` extra), saved on the Prefect server
    and named by its slug; anything else, the slug of a saved storage block (`s3-bucket/peerprobe-results`).
    Prefect loads the block by slug when it persists or looks up a result. The S3 endpoint is botocore's to
    choose: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) points it elsewhere, e.g. at moto in the tests."""
    value = os.environ.get(RESULT_STORAGE_ENV, "") if value is None else value
    environ.check_result_storage(value)  # the rules the command line checks before anything starts
    if not value:
        return None
    return _saved_s3_bucket(value) if value.startswith("s3://") else value


@functools.cache  # saved once per process: importing the tasks saves it, the baseline steps reuse the slug
def _saved_s3_bucket(url: str) -> str:
    """Prefect 3 refuses an unsaved block as a task's result storage, so save one, named after the URL:
    every process that reads the same setting saves the same document and gets the same slug."""
    import hashlib

    block = _s3_bucket(url)
    name = f"peerprobe-results-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    try:
        block.save(name, overwrite=True, _sync=True)  # _sync: tasks may be imported inside an event loop
    except Exception as exc:  # the server's or the client's own error: name what we were doing
        raise InfrastructureError(
            f"{RESULT_STORAGE_ENV}={url}: could not save the S3Bucket block {name!r} on the Prefect server: {exc}",
            resource="prefect-block",
            resource_id=name,
        ) from exc
    return f"{block.get_block_type_slug()}/{name}"


def _s3_bucket(url: str) -> Any:
    try:
        from prefect_aws.s3 import S3Bucket
    except ImportError:
        hint = "install the aws extra (pip install 'peerprobe[aws]')"
        raise ConfigError(f"{RESULT_STORAGE_ENV}={url}: {hint}") from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")  # checked by environ.check_result_storage
    return S3Bucket(bucket_name=bucket, bucket_folder=prefix.strip("/"))


STEP_OPTIONS: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient,
    "persist_result": True,
    "result_serializer": "json",
    "cache_key_fn": step_key,
    "on_completion": [_finished],
    "on_failure": [_finished],
}
if (_storage := result_storage()) is not None:
    STEP_OPTIONS["result_storage"] = _storage


def inject_fault(step: str) -> None:
    """Fail `step` once per flow run when PEERPROBE_FAIL_ONCE names it (tests of failure and resume)."""
    if os.environ.get(FAULT_ENV) != step:
        return
    context = TaskRunContext.get()
    run = context.task_run.flow_run_id if context else "none"
    marker = statedir.state_dir() / "faults" / f"{run}-{step}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two concurrent tasks of the same step (both networks), exactly one takes the fault.
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    raise InfrastructureError(f"injected fault in step {step} ({FAULT_ENV})", resource="step", resource_id=step)
