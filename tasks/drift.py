"""Drift-check steps: read the live configuration, hold the environment's lock, tell automations about drift."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from prefect import get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.events import emit_event

from peerprobe import drift
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import ConflictError
from peerprobe.report.document import Report
from peerprobe.snapshot import ConfigSnapshot
from tasks._common import open_experiment

LOCK_TIMEOUT_ENV = "PEERPROBE_DRIFT_LOCK_TIMEOUT"  # seconds a check waits for another check of its environment
LOCK_TIMEOUT_SECONDS = 120.0
EVENT = "peerprobe.drift.detected"


@task(name="read-config-snapshot", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def read_snapshot(ref: EnvironmentRef) -> ConfigSnapshot:
    """The configuration as it is now: it may have changed behind peerprobe's back. Reads only."""
    return open_experiment(ref, step="read-config-snapshot").snapshot()


def lock_name(ref: EnvironmentRef) -> str:
    """``peerprobe-env-lab-workshop-cn-northwest-1``: one global concurrency limit per environment."""
    return f"peerprobe-env-{drift.slug(ref.key)}"[:120]


def ensure_lock(name: str) -> None:
    """Create the environment's global concurrency limit (limit 1) if it is missing; idempotent, and safe
    when two checks create it at once (the loser's 409 means it exists)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "")
    try:
        return float(raw) if raw else LOCK_TIMEOUT_SECONDS
    except ValueError:
        return LOCK_TIMEOUT_SECONDS


@contextlib.contextmanager
def environment_lock(ref: EnvironmentRef, *, timeout_seconds: float | None = None) -> Iterator[str]:
    """Hold the environment's lock (strict: a missing limit is an error, never a silent no-op). A second check
    of the same environment waits up to the timeout, then is refused with a message naming the lock."""
    name = lock_name(ref)
    ensure_lock(name)
    wait = lock_timeout() if timeout_seconds is None else timeout_seconds
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(concurrency(name, occupy=1, timeout_seconds=wait, strict=True))
        except TimeoutError:
            raise ConflictError(
                f"environment {ref.key}: another drift check holds its lock {name}; gave up after {wait:.0f}s "
                f"(wait for it to finish, or raise {LOCK_TIMEOUT_ENV})", resource="concurrency limit",
                resource_id=name, state="held",
            ) from None  # fmt: skip
        yield name


def announce_drift(ref: EnvironmentRef, report: Report, *, flow_run_id: str | None) -> dict[str, Any]:
    """Emit `peerprobe.drift.detected` for the environment, carrying the diff and the changed cells."""
    payload = drift.event_payload(ref.key, report)
    related = [{"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}]
    emit_event(
        event=EVENT,
        resource={
            "prefect.resource.id": f"peerprobe.environment.{ref.key}",
            "prefect.resource.name": ref.key,
            "peerprobe.experiment": ref.config.name,
            "peerprobe.backend": ref.backend,
        },
        related=related if flow_run_id else None,
        payload=payload,
    )
    return payload
