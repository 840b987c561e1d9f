"""The fault campaign (issue 13): a lab run killed or interrupted at a step (moto killed, the Prefect server
killed, SIGINT, SIGKILL), then the next `peerprobe run` or `peerprobe cleanup` ends 0 and nothing of the
environment remains. By default each fault at two steps; PEERPROBE_FAULT_MATRIX=1 runs every fault at every
step (bench/faults.py prints that matrix as a table)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.fault_campaign import KINDS, STEPS, run_cell

pytestmark = pytest.mark.lab

# (fault, step, recovery): each fault at two steps, recovered once by a run and once by a cleanup.
REPRESENTATIVE = [
    ("kill-moto", "deploy-apps", "run"),
    ("kill-moto", "cleanup", "cleanup"),
    ("kill-prefect", "create-cluster", "run"),
    ("kill-prefect", "probe", "cleanup"),
    ("sigint", "peer-vpcs", "cleanup"),
    ("sigint", "set-snat", "run"),
    ("sigkill", "create-network", "cleanup"),
    ("sigkill", "expose-services", "run"),
]
FULL = [(kind, step, "run") for kind in KINDS for step in STEPS]
CELLS = FULL if os.environ.get("PEERPROBE_FAULT_MATRIX") == "1" else REPRESENTATIVE


@pytest.fixture
def shared_server(prefect_server: None) -> dict[str, str]:
    """The session's Prefect server, for cells that do not kill it (its start costs ~10 s per cell)."""
    from prefect.settings import PREFECT_API_URL

    names = ("PREFECT_API_AUTH_STRING", "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED")
    return {"PREFECT_API_URL": str(PREFECT_API_URL.value())} | {k: os.environ[k] for k in names if k in os.environ}


def params(*kinds: str) -> list[Any]:
    return [pytest.param(k, s, r, id=f"{k}@{s}-{r}") for k, s, r in CELLS if k in kinds]


def survives(kind: str, step: str, recovery: str, workdir: Path, prefect_env: dict[str, str] | None) -> None:
    outcome = run_cell(kind, step, recovery, workdir, prefect_env)
    assert outcome.survived, outcome.describe()


# One class per fault kind, so `pytest -n --dist loadscope` spreads the cells over the workers (a cell is a whole
# lab run and its recovery, 30-80 s): in one module-level function they all ran on one worker, one after another.


# First in the file: xdist hands out scopes with more tests first, and keeps the file's order among scopes of the
# same size, so these cells (a Prefect server each, the longest) start before the campaign's other classes.
class TestThePrefectServerKilled:
    """Cells that kill the Prefect server: each gets one of its own (in its state directory), never the session's."""

    @pytest.mark.timeout(900)
    @pytest.mark.parametrize(("kind", "step", "recovery"), params("kill-prefect"))
    def test_the_next_command_recovers_and_nothing_remains(
        self, kind: str, step: str, recovery: str, tmp_path: Path
    ) -> None:
        survives(kind, step, recovery, tmp_path, None)


class _OnTheSessionsServer:
    """Cells that leave the Prefect server alone run against the session's; `kinds` picks a class's cells."""

    kinds: tuple[str, ...] = ()

    def test_the_next_command_recovers_and_nothing_remains(
        self, kind: str, step: str, recovery: str, tmp_path: Path, shared_server: dict[str, str]
    ) -> None:
        survives(kind, step, recovery, tmp_path, shared_server)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    kinds = getattr(metafunc.cls, "kinds", ())
    if kinds:
        metafunc.parametrize(("kind", "step", "recovery"), params(*kinds))


class TestMotoKilled(_OnTheSessionsServer):
    kinds = ("kill-moto",)


class TestInterrupted(_OnTheSessionsServer):
    kinds = ("sigint",)


class TestKilled(_OnTheSessionsServer):
    kinds = ("sigkill",)
