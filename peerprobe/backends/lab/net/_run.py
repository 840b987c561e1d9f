"""Running ip and iptables-restore: one process per namespace and step, many at once, failures translated.

`ip -batch -` applies a namespace's whole configuration in one process (ip(8) -batch); `iptables-restore`
replaces whole tables atomically, the way aws-node and kube-proxy write their rules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from peerprobe.errors import InfrastructureError, LabUnavailableError

WORKERS = 32  # processes in flight; they mostly wait on the kernel, so more than the CPU count pays off
STDERR_LIMIT = 600


@dataclass(frozen=True)
class Job:
    what: str  # names the namespace and step in errors and logs
    argv: Sequence[str]
    input: str | None = None
    ns: str = ""


def check_available() -> None:
    """Raise LabUnavailableError unless this process can build namespaces (root, ip, iptables-restore)."""
    if os.geteuid() != 0:
        raise LabUnavailableError("the lab's network needs root (network namespaces, netfilter)", resource="lab")
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            raise LabUnavailableError(f"the lab's network needs {tool!r} (Debian: iproute2, iptables)", resource="lab")


def ip_batch(what: str, lines: Iterable[str], *, ns: str | None = None, force: bool = False) -> Job:
    """`ip [-n NS] -batch -`: every line one ip command, in one process."""
    argv = ["ip", *(["-n", ns] if ns else []), *(["-force"] if force else []), "-batch", "-"]
    return Job(what, argv, "\n".join(lines) + "\n", ns or "")


def in_netns(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def shell_job(what: str, ns: str, sysctls: Mapping[str, str], rules: str | None) -> Job:
    """Write sysctls (shell builtins, no extra processes), then `exec iptables-restore` with the rules."""
    writes = [f"echo {value} > /proc/sys/{path}" for path, value in sysctls.items()]
    tail = ["exec iptables-restore"] if rules else []
    script = " && ".join([*writes, *tail]) or "true"
    return Job(what, in_netns(ns, ["sh", "-ec", script]), rules, ns)


def run(job: Job, *, timeout: float = 60) -> str:
    try:
        done = subprocess.run(job.argv, input=job.input, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise LabUnavailableError(f"{job.what}: {exc.filename} is not installed", resource="lab") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfrastructureError(
            f"{job.what}: no answer after {timeout}s", resource="netns", resource_id=job.ns, state="timeout"
        ) from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[:STDERR_LIMIT]
        raise InfrastructureError(
            f"{job.what} failed (exit {done.returncode}): {detail}",
            resource="netns",
            resource_id=job.ns,
            state="partially configured",
        )
    return done.stdout


def run_all(jobs: Sequence[Job]) -> list[str]:
    """Run independent jobs concurrently; the first failure (in job order) is raised once all have ended."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(jobs))) as pool:
        futures = [pool.submit(run, job) for job in jobs]
    return [future.result() for future in futures]


def exec_in(
    ns: str, argv: Sequence[str], *, input: str | None = None, timeout: float | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a command with a namespace's network view, like `kubectl exec` into a pod; output as text."""
    return subprocess.run(in_netns(ns, argv), input=input, capture_output=True, text=True, timeout=timeout, check=check)


def spawn_in(ns: str, argv: Sequence[str], **popen: object) -> subprocess.Popen[str]:
    """Start a long-running process (a server, an agent) inside a namespace; teardown ends what is left."""
    return subprocess.Popen(in_netns(ns, argv), text=True, **popen)  # type: ignore[call-overload, no-any-return]


def succeeds(argv: Sequence[str]) -> bool:
    """Whether a query command exits 0 (e.g. `ip -n NS link show dev X`: does the link exist?)."""
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0
