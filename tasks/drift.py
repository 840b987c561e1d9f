"""Drift-check steps: read the live configuration, tell automations about drift, and keep and find the baseline
(in the state directory, and in the result storage when one is set)."""

from __future__ import annotations

import json
import os
from typing import Any

import structlog
from prefect import task
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from peerprobe import drift, statedir
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import InfrastructureError
from peerprobe.report.document import Report
from peerprobe.snapshot import ConfigSnapshot
from tasks._backend import open_experiment
from tasks._storage import RESULT_STORAGE_ENV, result_storage

EVENT = "peerprobe.drift.detected"
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}  # what S3 answers for a key that does not exist

log = structlog.get_logger()


@task(name="read-config-snapshot", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def read_snapshot(ref: EnvironmentRef) -> ConfigSnapshot:
    """The configuration as it is now: it may have changed behind peerprobe's back. Reads only."""
    return open_experiment(ref, step="read-config-snapshot").snapshot()


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


# --- the baseline, also in the result storage ----------------------------------------------------------------------


def keep_baseline(env_key: str, report: Report, snapshot: ConfigSnapshot | None) -> None:
    """Record the drift baseline in the state directory and, when PEERPROBE_RESULT_STORAGE is set, in that
    storage too: a drift check on any machine with the same setting (a work pool's pod) finds it there."""
    document = drift.record_baseline(env_key, report, snapshot)
    if os.environ.get(RESULT_STORAGE_ENV):
        store_baseline(env_key, document)


def find_baseline(env_key: str) -> drift.Baseline | None:
    """The baseline recorded in this machine's state directory or, when there is none, the one kept in the
    result storage (when PEERPROBE_RESULT_STORAGE is set)."""
    local = drift.read_baseline(env_key)
    if local is not None or not os.environ.get(RESULT_STORAGE_ENV):
        return local
    return fetch_baseline(env_key)


@task(name="store-baseline", cache_policy=NO_CACHE, persist_result=False)
def store_baseline(env_key: str, document: dict[str, Any]) -> str:
    """Write the baseline document to the result storage under its state-directory name; returns that path."""
    slug, path = result_storage(), drift.baseline_name(env_key)
    content = statedir.json_text(document).encode()  # the same bytes as the state directory's copy
    try:
        storage_block(slug).write_path(path, content, _sync=True)
    except Exception as exc:  # S3's or the Prefect server's own error: say what was being written where
        raise InfrastructureError(
            f"{RESULT_STORAGE_ENV}: could not write the drift baseline of {env_key} to {path} in {slug}: {exc}",
            resource="result storage",
            resource_id=f"{slug}:{path}",
        ) from exc
    log.info("baseline.stored", environment=env_key, storage=slug, path=path)
    return path


@task(name="fetch-baseline", cache_policy=NO_CACHE, persist_result=False)
def fetch_baseline(env_key: str) -> drift.Baseline | None:
    """The baseline kept in the result storage; None when none is kept there, and None with a warning when the
    storage cannot be read or holds no JSON: the check against the model still stands."""
    path = drift.baseline_name(env_key)
    try:
        document = json.loads(storage_block(result_storage()).read_path(path, _sync=True))
    except Exception as exc:  # whatever the storage raised, the check goes on without a baseline
        if not stored_nothing(exc):
            log.warning(
                "baseline.fetch_failed", environment=env_key, path=path, error=type(exc).__name__, detail=str(exc)[:300]
            )
        return None
    return drift.baseline_from_document(document)


def storage_block(slug: str) -> Any:
    """The saved storage block the slug names (for s3://..., the S3Bucket block result_storage saved)."""
    # _sync: a flow may run inside an event loop. async_dispatch takes it; load's signature does not say so.
    return Block.load(slug, _sync=True)  # type: ignore[call-arg]


def stored_nothing(exc: Exception) -> bool:
    """Whether `exc` only says nothing is stored at the path: S3 answers 404 (NoSuchKey to GetObject), an
    fsspec file system raises FileNotFoundError, and Prefect's LocalFileSystem a ValueError "... does not exist."."""
    response = getattr(exc, "response", None)  # botocore's ClientError, read without importing the SDK here
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code")) in MISSING_CODES
    if isinstance(exc, ValueError):
        return str(exc).endswith("does not exist.")
    return isinstance(exc, FileNotFoundError)
