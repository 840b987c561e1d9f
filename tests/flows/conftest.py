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

    # The test server takes the settings peerprobe gives its own servers (SQLite write batching, no telemetry:
    # nothing may leave this machine); its subprocess inherits this environment.
    previous = {key: os.environ.get(key) for key in server_settings()}
    os.environ.update(server_settings())
    try:
        with prefect_test_harness(server_startup_timeout=90):
            yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
