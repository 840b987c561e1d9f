"""Reading a flow run's task-run states from the Prefect server, which records them from events a moment
after they happen (its task-run recorder writes in batches), so reads wait, with a deadline, for what they expect."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_client

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

StatesByName = dict[str, set[str]]  # task run name -> every state its task runs reached (a retry adds runs)
RECORDING_SECONDS = 15.0  # the recorder flushes every second; this leaves room for a busy 2-core machine


def task_states(
    flow_run_id: str, *, until: Callable[[StatesByName], bool], timeout: float = RECORDING_SECONDS
) -> StatesByName:
    """The states read once `until` holds for them, or the last read when `timeout` passes (the caller's
    assertion then says what is missing)."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            states = _read(client, flow_run_id)
            if until(states) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)


def _read(client: SyncPrefectClient, flow_run_id: str) -> StatesByName:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    states: StatesByName = {}
    for run in client.read_task_runs(flow_run_filter=only_this_run):
        if run.state is not None:
            states.setdefault(run.name, set()).add(run.state.name)
    return states


def reached(names: set[str], state: str) -> Callable[[StatesByName], bool]:
    """A condition for task_states: every task run named in `names` has reached `state`."""
    return lambda states: all(state in states.get(name, set()) for name in names)
