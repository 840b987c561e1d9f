"""The local Prefect server that `peerprobe run` starts or reuses (SQLite, 127.0.0.1) and leaves running for
the UI, recorded in the state directory like moto. Plain HTTP and processes here: no Prefect import."""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import structlog

from peerprobe import daemon, statedir
from peerprobe.errors import InfrastructureError

log = structlog.get_logger()
HOST = daemon.HOST
DEFAULT_PORT = 4200
STATE_FILE = "prefect-server.json"
LOG_FILE = "prefect-server.log"
START_TIMEOUT_SECONDS = 90.0  # a cold start migrates the SQLite database: about 10 s on this 2-core machine
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    pid: int | None = None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def flow_run_url(self, flow_run_id: str) -> str:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}"


def ensure_running(*, timeout: float = START_TIMEOUT_SECONDS) -> PrefectServer:
    """The server named by PREFECT_API_URL, the one recorded earlier, or a new one on 127.0.0.1."""
    for candidate in _candidates():
        if healthy(candidate.api_url):
            log.debug("prefect.server.reused", api_url=candidate.api_url)
            return candidate
    if os.environ.get("PREFECT_API_URL"):
        raise InfrastructureError(
            f"Prefect server {os.environ['PREFECT_API_URL']} (PREFECT_API_URL): not answering /health",
            resource="prefect server",
            resource_id=os.environ["PREFECT_API_URL"],
            state="unreachable",
        )
    return _start(timeout=timeout)


def _candidates() -> list[PrefectServer]:
    found = []
    if os.environ.get("PREFECT_API_URL"):
        found.append(PrefectServer(api_url=os.environ["PREFECT_API_URL"].rstrip("/")))
    recorded = statedir.read_json(STATE_FILE)
    if recorded and isinstance(recorded.get("api_url"), str):
        found.append(PrefectServer(api_url=recorded["api_url"], pid=recorded.get("pid")))
    return found


def healthy(api_url: str) -> bool:
    try:
        with _OPENER.open(f"{api_url}/health", timeout=2) as response:
            return bool(json.loads(response.read()))
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _start(*, timeout: float) -> PrefectServer:
    port = DEFAULT_PORT if daemon.port_free(DEFAULT_PORT) else daemon.free_port()
    command = [prefect_executable(), "server", "start", "--host", HOST, "--port", str(port)]
    api_url = f"http://{HOST}:{port}/api"
    pid = daemon.spawn(command, log_name=LOG_FILE, env=_server_env(api_url))
    server = PrefectServer(api_url=api_url, pid=pid)
    daemon.wait_started(pid, lambda: healthy(api_url), what="Prefect server", timeout=timeout, log_name=LOG_FILE)
    statedir.write_json(STATE_FILE, {"api_url": server.api_url, "pid": pid})
    return server


def prefect_executable() -> str:
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if not found:
        raise InfrastructureError(
            "the `prefect` command is not installed (run `make run` to set up)", resource="prefect"
        )
    return found


# SQLite takes one writer at a time, and a request whose transaction must upgrade from reading to writing
# while the server's own services write fails at once ("database is locked"): the API answers 503 and the
# client backs off 2, 4, 8 s. The task-run recorder writes every task-run event in its own transaction by
# default (batch size 1); batching its writes, and the event persister's, leaves the API far fewer collisions.
# Task runs and events reach the UI at most a second or two later. A value set in the environment wins.
SQLITE_WRITE_BATCHING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "2",
}


# No telemetry or update checks from the server: nothing leaves this machine (not overridable).
NOTHING_LEAVES = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def server_settings() -> dict[str, str]:
    """The settings peerprobe gives the Prefect servers it starts (also the tests' server): the write batching,
    under the environment's values, and no telemetry."""
    batching = SQLITE_WRITE_BATCHING | {k: os.environ[k] for k in SQLITE_WRITE_BATCHING if k in os.environ}
    return batching | NOTHING_LEAVES


def _server_env(api_url: str | None = None) -> dict[str, str]:
    # The UI must call this server's own API (its default is port 4200, wrong for a server started on another port).
    env = {**os.environ, **server_settings()}
    return env | ({"PREFECT_UI_API_URL": api_url} if api_url else {})


# --- peerprobe serve, in the background ------------------------------------------------------------------------

SERVE_STATE = "serve.json"
SERVE_LOG = "serve.log"


def ensure_serving(api_url: str) -> int:
    """A `peerprobe serve` process for the UI's runs: the recorded one if alive, else a new detached one."""
    recorded = statedir.read_json(SERVE_STATE) or {}
    pid = recorded.get("pid")
    if isinstance(pid, int) and recorded.get("api_url") == api_url and _is_serve(pid):
        return pid
    command = [sys.executable, "-m", "peerprobe.cli", "serve"]
    started = daemon.spawn(command, log_name=SERVE_LOG, env={**_server_env(), "PREFECT_API_URL": api_url})
    statedir.write_json(SERVE_STATE, {"pid": started, "api_url": api_url})
    return started


def _is_serve(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"peerprobe.cli" in command and b"serve" in command
