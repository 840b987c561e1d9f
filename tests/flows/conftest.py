"""Flow tests: one Prefect test server (SQLite) for the session, and the lab (root) with moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.lab.conftest import lab_state_dir, lab_unavailable

__all__ = ["lab_state_dir"]


@pytest.fixture(scope="session")
def prefect_server(lab_state_dir: Path) -> Iterator[None]:
    if lab_unavailable():
        pytest.skip(str(lab_unavailable()))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
