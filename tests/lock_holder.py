"""A holder of an environment's lock in a process of its own (the library's lock, peerprobe/ownership.py), for
tests of whoever waits for it. It inherits the test's environment, and so its state directory."""

from __future__ import annotations

import subprocess
import sys

_HOLD = """
import sys, time
from peerprobe import logs, ownership
logs.configure(0)
ownership.acquire(sys.argv[1], sys.argv[2], flow_run_id=sys.argv[4] or None)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def start_holder(
    environment: str, seconds: float, *, command: str = "peerprobe lab up", flow_run_id: str = ""
) -> subprocess.Popen[str]:
    """A process that holds the environment's lock for `seconds` (or until killed); returned once it holds it."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, environment, command, str(seconds), flow_run_id],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "held":
        process.kill()
        raise AssertionError(f"the holder of {environment} did not take its lock (exit {process.wait()})")
    return process
