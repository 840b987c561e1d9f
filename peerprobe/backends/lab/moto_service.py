"""moto as a local, long-lived service: started or reused on 127.0.0.1, recorded in `<statedir>/moto.json`.

Like the Prefect server, it outlives the command that started it so later commands find the lab's AWS state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from peerprobe import daemon, statedir
from peerprobe.errors import WaitTimeoutError

STATE_FILE = "moto.json"
LOG_FILE = "moto.log"
LOCK_FILE = "moto.lock"
MOTO_MAIN = "peerprobe.backends.lab.moto_main"  # moto.server with one hot path cached
HOST = daemon.HOST
# GET /moto-api/config is a small JSON document served only by moto (moto/moto_api/_internal/urls.py),
# so a 200 there proves the port is moto's and that it is answering.
_HEALTH_PATH = "/moto-api/config"
_HEALTH_SECONDS = 1.0
# Loopback must never go through an HTTP proxy from the environment: an empty ProxyHandler disables them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

log = structlog.get_logger()


@dataclass(frozen=True)
class MotoService:
    """A running moto server: its pid and its loopback port."""

    pid: int
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def ensure_running(*, timeout: float = 30.0) -> MotoService:
    """Return the recorded moto service if it is alive and answering, else start a new one and wait for it."""
    with _locked():
        current = _recorded()
        if current is not None and _is_alive(current, patience=timeout):
            log.debug("moto.reused", pid=current.pid, port=current.port)
            return current
        service = _start()
        _wait_ready(service, timeout=timeout)
        statedir.write_json(STATE_FILE, {"pid": service.pid, "port": service.port})
        log.info("moto.started", pid=service.pid, port=service.port)
        return service


def endpoint_url(*, timeout: float = 30.0) -> str:
    """The loopback URL every lab client talks to (starting moto if needed)."""
    return ensure_running(timeout=timeout).endpoint_url


def status(*, timeout: float = 30.0) -> MotoService | None:
    """The recorded service if it is alive and answering, without starting anything."""
    current = _recorded()
    return current if current is not None and _is_alive(current, patience=timeout) else None


def stop(*, timeout: float = 10.0) -> bool:
    """Stop the recorded moto service; returns False when none was running. Its AWS state is lost."""
    with _locked():
        current = _recorded()
        statedir.remove(STATE_FILE)
        if current is None or not daemon.pid_alive(current.pid):
            return False
        daemon.terminate(current.pid, timeout=timeout)
        log.info("moto.stopped", pid=current.pid, port=current.port)
        return True


def reset(service: MotoService) -> None:
    """Wipe ALL of moto's state, every environment at once: for tests only, never for one environment."""
    request = urllib.request.Request(f"{service.endpoint_url}/moto-api/reset", method="POST")
    with _OPENER.open(request, timeout=5):
        pass


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    # Two commands starting at once must not both launch a server; an flock serialises them.
    with open(statedir.state_dir() / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recorded() -> MotoService | None:
    data = statedir.read_json(STATE_FILE)
    if data is None:
        return None
    try:
        return MotoService(pid=int(data["pid"]), port=int(data["port"]))
    except (KeyError, TypeError, ValueError):
        return None


def _is_alive(service: MotoService, *, patience: float) -> bool:
    """Whether the recorded moto is there: it answers, or it is busy (its port takes the request but the answer
    is slow, as under load) and answers within `patience`. Replacing a busy moto would lose every environment's
    AWS state, so one that never answers is an error; a dead pid or a refused port means it is gone."""
    if not daemon.pid_alive(service.pid):
        return False
    answer = _answers(service, seconds=_HEALTH_SECONDS)
    if answer is _BUSY:
        log.info("moto.busy", pid=service.pid, port=service.port, patience_seconds=patience)
        answer = _answers(service, seconds=patience)
    if answer is _BUSY:
        raise WaitTimeoutError(
            f"moto server pid {service.pid} on port {service.port} is running but has not answered for "
            f"{patience:g}s; see {_log_path()}",
            resource="moto",
            resource_id=str(service.pid),
            state="busy",
        )
    return bool(answer)


_BUSY = None  # _answers: the port took the request, no answer came within the health check's second


def _answers(service: MotoService, *, seconds: float = _HEALTH_SECONDS) -> bool | None:
    """True: moto answered; False: nothing (or not moto) answers on its port; _BUSY: no answer in `seconds`."""
    try:
        with _OPENER.open(service.endpoint_url + _HEALTH_PATH, timeout=seconds) as response:
            body = json.loads(response.read())
    except TimeoutError:
        return _BUSY
    except urllib.error.URLError as error:
        return _BUSY if isinstance(error.reason, TimeoutError) else False
    except (OSError, ValueError):
        return False
    return isinstance(body, dict)


def _start() -> MotoService:
    port = daemon.free_port()
    command = [sys.executable, "-m", MOTO_MAIN, "-H", HOST, "-p", str(port)]
    return MotoService(pid=daemon.spawn(command, log_name=LOG_FILE, env=_server_env()), port=port)


def _server_env() -> dict[str, str]:
    # The lab names its own image ids; moto's ~2,700 default AMIs per region would only slow the first call.
    # AWS's managed policies (AmazonEKSClusterPolicy, ...) exist in every account; the steps attach them.
    return {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}


def _wait_ready(service: MotoService, *, timeout: float) -> None:
    daemon.wait_started(
        service.pid,
        lambda: bool(_answers(service)),
        what=f"moto server on port {service.port}",
        timeout=timeout,
        log_name=LOG_FILE,
    )


def _log_path() -> Path:
    return statedir.state_dir() / LOG_FILE
