"""The Vantage port on AWS: a busybox pod (one exec), the EC2 host (one SSM command) and the outside client (a
local python3 process). Each runs one batch script and parses its output (aws/_scripts.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence

from peerprobe.backends.aws._scripts import busybox_script, new_nonce, parse_output, python_script
from peerprobe.backends.aws.kube import KubeCluster
from peerprobe.errors import WaitTimeoutError
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec

OutsideRunner = Callable[[str, float], str]
ShellRunner = Callable[[str, float], str]


def budget(specs: Sequence[ProbeSpec], timeout_seconds: float) -> float:
    """How long one batch may take: every probe timing out, plus the transport's own start-up."""
    return len(specs) * (timeout_seconds + 3) + 30


class PodVantage:
    """The busybox pod of one cluster: one exec of the busybox script."""

    def __init__(self, kube: Callable[[], KubeCluster]) -> None:
        self._kube = kube

    def probe(self, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        nonce = new_nonce()
        script = busybox_script(specs, timeout_seconds=timeout_seconds, nonce=nonce)
        output = self._kube().exec_in("busybox", script, timeout_seconds=budget(specs, timeout_seconds))
        return parse_output(output, specs, nonce=nonce)


class ScriptVantage:
    """A python3 batch run by `runner(script, budget)`: the EC2 host through SSM, or this machine (`outside`)."""

    def __init__(self, runner: ShellRunner) -> None:
        self._runner = runner

    def probe(self, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        nonce = new_nonce()
        script = python_script(specs, timeout_seconds=timeout_seconds, nonce=nonce)
        return parse_output(self._runner(script, budget(specs, timeout_seconds)), specs, nonce=nonce)


def run_locally(script: str, timeout_seconds: float) -> str:
    """`outside`: the python prober on this machine, with no proxy from the environment."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WaitTimeoutError("outside probes: still running", resource="probe", resource_id="outside") from error
    return done.stdout


def heredoc(script: str) -> str:
    """The batch as one shell command for AWS-RunShellScript."""
    return f"python3 - <<'PEERPROBE_BATCH'\n{script}\nPEERPROBE_BATCH"
