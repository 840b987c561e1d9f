"""The environment's lock as flows hold it (design.md "Ownership of an environment"): the library's lock on this
machine (peerprobe/ownership.py) and, for the aws backend, a Prefect global concurrency limit of one slot held
under a lease, so that a work pool's pods take turns too; a holder that dies lets go when its lease runs out."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from uuid import UUID

import structlog
from prefect import get_client, runtime
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency

from peerprobe import ownership
from peerprobe.backends import attach
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import EnvironmentBusyError, InfrastructureError, WaitTimeoutError

# The shortest lease Prefect grants (60 s): renewed while the holder lives, so a dead one frees the slot soonest.
LEASE_SECONDS = 60.0
LOCKED = 423  # what the server answers while the slot is held
log = structlog.get_logger()
_limits_held: dict[str, int] = {}  # the limits this process holds, and how deep (re-entrance, as the library's)
_limits_lock = threading.Lock()


@contextlib.contextmanager
def environment_lock(
    ref: EnvironmentRef, *, command: str, timeout_seconds: float | None = None
) -> Iterator[ownership.Lease]:
    """Own the environment for the length of the block; a second owner waits up to the timeout
    (PEERPROBE_LOCK_TIMEOUT), then EnvironmentBusyError naming the holder. Re-entrant within one process: a
    command that holds it and the flow it runs in its own process are one owner. Each cluster the config
    attaches to is locked the same way after it (design.md: two checks of one cluster never overlap), and on the
    lab the environment that runs it."""
    with _lock(ref.key, ref.backend, command, timeout_seconds) as lease, contextlib.ExitStack() as clusters:
        for cluster in [*attach.attached_ids(ref.config, ref.backend), *_lab_owners(ref)]:
            clusters.enter_context(_lock(cluster, ref.backend, command, timeout_seconds))
        yield lease


def _lab_owners(ref: EnvironmentRef) -> list[str]:
    """On the lab, an attached cluster is another environment's, whose data plane the visit rebuilds: the visit
    owns that environment too, so the owner's own commands and checks never overlap it."""
    if ref.backend != "lab" or not ref.config.attaching:
        return []
    from peerprobe.backends.lab import environment  # the lab's state, only for a lab visit

    return environment.owner_keys(ref.config)


@contextlib.contextmanager
def _lock(key: str, backend: str, command: str, timeout_seconds: float | None) -> Iterator[ownership.Lease]:
    wait = ownership.lock_timeout() if timeout_seconds is None else timeout_seconds
    started, flow_run_id = time.monotonic(), _flow_run_id()
    with ownership.hold(key, command, flow_run_id=flow_run_id, timeout_seconds=wait) as lease:
        if backend != "aws":  # the lab lives on this machine: its lock is the whole of it
            yield lease
            return
        with _global_limit(key, flow_run_id, max(0.0, wait - (time.monotonic() - started))):
            yield lease


def _flow_run_id() -> str | None:
    found = runtime.flow_run.id
    return str(found) if found else None


@contextlib.contextmanager
def _global_limit(environment: str, flow_run_id: str | None, wait: float) -> Iterator[None]:
    name = ownership.lock_name(environment)
    with _limits_lock:
        depth = _limits_held.get(environment, 0)
        _limits_held[environment] = depth + 1
    try:
        if depth:  # this process holds it already
            yield
            return
        with contextlib.ExitStack() as held:
            ensure_limit(name)
            _wait_for_slot(held, environment, flow_run_id, wait)
            _record_holder(name, environment)
            held.callback(_forget_holder, name)
            yield
    finally:
        with _limits_lock:
            _limits_held[environment] -= 1
            if not _limits_held[environment]:
                del _limits_held[environment]


def ensure_limit(name: str) -> None:
    """Create the environment's global concurrency limit (limit 1) if it is missing; idempotent, and safe
    when two owners create it at once (the loser's 409 means it exists)."""
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


def _wait_for_slot(held: contextlib.ExitStack, environment: str, flow_run_id: str | None, wait: float) -> None:
    name = ownership.lock_name(environment)
    lease_holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run_id)) if flow_run_id else None
    try:
        ownership.POLL.poll(
            lambda: _take_slot(held, name, lease_holder),
            kind="environment",
            resource_id=environment,
            goal=f"the global concurrency limit {name} has a free slot",
            max_seconds=wait,
        )
    except WaitTimeoutError:
        who = _recorded_holder(name)
        raise EnvironmentBusyError(
            f"environment {environment} is busy: {who} holds its global concurrency limit {name}; gave up "
            f"after {wait:g}s ({ownership.TIMEOUT_ENV}); nothing was created or changed",
            resource="concurrency limit",
            resource_id=name,
            state="held",
        ) from None


def _take_slot(held: contextlib.ExitStack, name: str, lease_holder: ConcurrencyLeaseHolder | None) -> bool | None:
    """One try at the slot: True when taken (held until the stack closes), None while another holds it."""
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError

    try:
        held.enter_context(
            concurrency(name, occupy=1, max_retries=0, lease_duration=LEASE_SECONDS, strict=True, holder=lease_holder)
        )
    except ConcurrencySlotAcquisitionError as error:
        if getattr(getattr(error.__cause__, "response", None), "status_code", None) == LOCKED:
            return None
        raise InfrastructureError(
            f"global concurrency limit {name}: {error}", resource="concurrency limit", resource_id=name
        ) from error
    return True


# --- who holds it, for a waiter on another machine: a Prefect variable named like the limit ---------------------


def _record_holder(name: str, environment: str) -> None:
    from prefect.client.schemas.actions import VariableCreate, VariableUpdate

    current = ownership.holder(environment)
    if current is None:
        return
    value = {key: item for key, item in asdict(current).items() if item is not None}
    with get_client(sync_client=True) as client:
        if client.read_variable_by_name(name) is None:
            client.create_variable(VariableCreate(name=name, value=value, tags=["peerprobe"]))
        else:
            client.update_variable(VariableUpdate(name=name, value=value))


def _forget_holder(name: str) -> None:
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_variable_by_name(name)


def _recorded_holder(name: str) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_variable_by_name(name)
    recorded = ownership.Holder.from_record(found.value if found is not None else None)
    return recorded.describe() if recorded is not None else "another owner (not recorded)"
