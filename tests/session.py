"""The session's shared services, one instance each for every test that asks (the fixtures are registered by
the root conftest only: a module importing a session fixture gets an instance of its own, whose state directory
and Prefect server then stay in os.environ for the modules that run after it)."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe.backends.lab import moto_service


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, netfilter)"
    missing = [tool for tool in ("ip", "iptables-restore") if shutil.which(tool) is None]
    return f"the lab needs {', '.join(missing)} (Debian: iproute2, iptables)" if missing else None


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("peerprobe-state")
    previous = os.environ.get("PEERPROBE_STATE_DIR")
    os.environ["PEERPROBE_STATE_DIR"] = str(path)
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    try:
        moto_service.ensure_running()
        yield path
    finally:
        moto_service.stop()
        if previous is None:
            os.environ.pop("PEERPROBE_STATE_DIR", None)
        else:
            os.environ["PEERPROBE_STATE_DIR"] = previous


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
