"""Lab tests need root and the kernel's namespaces; moto runs once per session in a private state dir."""

from __future__ import annotations

import os
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
