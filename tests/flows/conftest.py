"""Flow tests: one Prefect test server (SQLite) for the session, and the lab (root) with moto."""

from __future__ import annotations

import os
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

    from peerprobe.server import server_settings

    # The test server takes the settings peerprobe gives its own servers (SQLite write batching): its
    # subprocess inherits this environment.
    added = {key: value for key, value in server_settings().items() if key not in os.environ}
    os.environ.update(added)
    try:
        with prefect_test_harness(server_startup_timeout=90):
            yield
    finally:
        for key in added:
            os.environ.pop(key, None)
