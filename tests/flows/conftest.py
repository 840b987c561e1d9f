"""Flow tests: one Prefect test server (SQLite) for the session, and the lab (root) with moto."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.lab.conftest import lab_state_dir, lab_unavailable

__all__ = ["lab_state_dir"]
# One auth string for the session: a module that imports this fixture (tests/test_cli_interrupt.py) has its own
# instance of it, and a second harness started inside the first inherits the first one's settings.
SESSION_AUTH = f"peerprobe:{secrets.token_urlsafe(16)}"


@pytest.fixture(scope="session")
def prefect_server(lab_state_dir: Path) -> Iterator[None]:
    if lab_unavailable():
        pytest.skip(str(lab_unavailable()))
    from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from peerprobe.server import server_settings

    # The test server takes the settings peerprobe gives its own servers (SQLite write batching, no telemetry:
    # nothing may leave this machine), and is closed as they are (an auth string, CSRF protection), so the
    # flows are tested against what they meet; its subprocess, and the tests' CLI and serve subprocesses,
    # inherit this environment. This process's clients take the auth string from the settings below.
    auth = SESSION_AUTH
    closed = server_settings() | {
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_API_AUTH_STRING": auth,
        "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true",
    }
    previous = {key: os.environ.get(key) for key in closed}
    os.environ.update(closed)
    try:
        with (
            temporary_settings(updates={PREFECT_API_AUTH_STRING: auth}),
            prefect_test_harness(server_startup_timeout=90),
        ):
            yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
