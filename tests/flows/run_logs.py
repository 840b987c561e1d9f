"""Every log line of a flow run from the Prefect server. read_logs answers one page (PREFECT_API_DEFAULT_LIMIT, 200
by default) in time order, so a run that logs more would hide its last lines (a failure's traceback) from a test
that read only the first page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

PAGE = 200


def all_logs(client: SyncPrefectClient, flow_run_id: UUID | str, *, level: int = 0) -> list[Any]:
    """The run's logs at `level` or above, every page of them, oldest first."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    only = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(str(flow_run_id))]), level=LogFilterLevel(ge_=level))
    logs: list[Any] = []
    while page := client.read_logs(log_filter=only, limit=PAGE, offset=len(logs)):
        logs += page
        if len(page) < PAGE:
            break
    return logs
