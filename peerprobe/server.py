"""The local Prefect server that `peerprobe run` starts or reuses (SQLite) and leaves running for the UI, recorded
in the state directory like moto. Closed: on 127.0.0.1 only, an auth string of its own, CSRF protection, CORS for
its own UI. Plain HTTP and processes here: no Prefect import."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import sys
import threading
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from peerprobe import daemon, statedir
from peerprobe.errors import InfrastructureError, WaitTimeoutError

log = structlog.get_logger()
HOST = daemon.HOST
DEFAULT_PORT = 4200
STATE_FILE = "prefect-server.json"
LOG_FILE = "prefect-server.log"
AUTH_FILE = "prefect-auth"  # the auth string of the servers this state directory starts: the UI asks for it
AUTH_USER = "peerprobe"  # Prefect's auth string reads USER:PASSWORD
_AUTH = re.compile(r"[!-~]{16,256}")  # printable ASCII, no blank: what a header and the UI's prompt carry intact
START_TIMEOUT_SECONDS = 90.0  # a cold start migrates the SQLite database: about 10 s on this 2-core machine
STOP_TIMEOUT_SECONDS = 10.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes through a proxy


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    pid: int | None = None
    auth_string: str | None = field(default=None, repr=False)  # peerprobe's own server only; never shown

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def flow_run_url(self, flow_run_id: str) -> str:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}"

    def client_env(self) -> dict[str, str]:
        """The settings a Prefect client (this process, `serve`, its flow runs) needs to reach this server; a
        server that is not peerprobe's gets the environment's own PREFECT_API_AUTH_STRING, if any."""
        env = {"PREFECT_API_URL": self.api_url}
        if self.auth_string:
            env |= {"PREFECT_API_AUTH_STRING": self.auth_string, "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true"}
        return env


def ensure_running(*, timeout: float = START_TIMEOUT_SECONDS) -> PrefectServer:
    """The server PREFECT_API_URL names, used as it is; else (or when it names peerprobe's own) the server
    recorded in the state directory, if it is closed with this state directory's auth string; else a new one.
    A recorded server that is open (started by an older peerprobe) is stopped and replaced, never used."""
    explicit = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    with statedir.locked(STATE_FILE):  # two commands at once start one server, not two
        recorded = _recorded()
        if recorded is not None and recorded.pid is not None and not daemon.pid_alive(recorded.pid):
            # Its process is gone (killed, crashed): whatever answers on its port now is not it.
            log.info("prefect.server.gone", api_url=recorded.api_url, pid=recorded.pid)
            statedir.remove(STATE_FILE)
            recorded = None
        if explicit and (recorded is None or recorded.api_url != explicit):
            return _elsewhere(explicit)
        if recorded is not None and healthy(recorded.api_url):
            own = replace(recorded, auth_string=auth_string())
            problem = _not_closed(own)
            if problem is None:
                log.debug("prefect.server.reused", api_url=own.api_url)
                return own
            _retire(own, problem)
        return start(timeout=timeout)


def _recorded() -> PrefectServer | None:
    recorded = statedir.read_json(STATE_FILE)
    if not recorded or not isinstance(recorded.get("api_url"), str):
        return None
    pid = recorded.get("pid")
    return PrefectServer(api_url=recorded["api_url"], pid=pid if isinstance(pid, int) else None)


def _elsewhere(api_url: str) -> PrefectServer:
    """A server peerprobe did not start (PREFECT_API_URL): Prefect's own settings say how to reach it."""
    if healthy(api_url):
        return PrefectServer(api_url=api_url)
    raise InfrastructureError(
        f"Prefect server {api_url} (PREFECT_API_URL): not answering /health",
        resource="prefect server",
        resource_id=api_url,
        state="unreachable",
    )


def healthy(api_url: str) -> bool:
    try:
        with _OPENER.open(f"{api_url}/health", timeout=2) as response:
            return bool(json.loads(response.read()))
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _not_closed(server: PrefectServer) -> str | None:
    """Why the server must not be used: it answers without the auth string (an older peerprobe started it), or
    refuses this state directory's. Only what it answered counts: a slow answer is no reason."""
    if _status(server.api_url, None) == 200:
        return "it takes requests without an auth string"
    if _status(server.api_url, server.auth_string) == 401:
        return f"it refuses the auth string in {auth_path()}"
    return None


def _status(api_url: str, auth: str | None) -> int | None:
    """The status of GET /admin/version (an endpoint behind the auth string, unlike /health)."""
    request = urllib.request.Request(f"{api_url}/admin/version")
    if auth:
        request.add_header("Authorization", f"Basic {b64encode(auth.encode()).decode()}")
    try:
        with _OPENER.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def _retire(server: PrefectServer, problem: str) -> None:
    """Stop a recorded server that is not closed (`problem`), with the `peerprobe serve` that used it; refuse
    when its process is not a Prefect server peerprobe can stop."""
    if server.pid is None or not _is_prefect_server(server.pid):
        raise InfrastructureError(
            f"the Prefect server at {server.api_url} recorded in {statedir.state_dir() / STATE_FILE} is not "
            f"used: {problem}, and its process (pid {server.pid}) is not one peerprobe started and can stop; "
            "stop it, then run the command again",
            resource="prefect server",
            resource_id=server.api_url,
            state="open",
        )
    log.warning("prefect.server.replaced", api_url=server.api_url, pid=server.pid, reason=problem)
    _stop_serve(server.api_url)
    daemon.terminate(server.pid, timeout=STOP_TIMEOUT_SECONDS)
    statedir.remove(STATE_FILE)


def _is_prefect_server(pid: int) -> bool:
    command = _cmdline(pid)
    return any(arg.endswith(b"prefect") for arg in command) and b"server" in command and b"start" in command


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def start(*, port: int | None = None, timeout: float = START_TIMEOUT_SECONDS) -> PrefectServer:
    """A new closed server on 127.0.0.1 (`port`; by default 4200, or any free port when 4200 is taken),
    recorded in the state directory."""
    if port is not None:
        return _start_on(port, timeout)
    if daemon.port_free(DEFAULT_PORT):
        try:
            return _start_on(DEFAULT_PORT, timeout)
        except InfrastructureError as error:
            if error.state != "exited":
                raise
            # Another server (another state directory's) bound it between the check and the start.
            log.info("prefect.server.port_taken", port=DEFAULT_PORT)
    return _start_on(daemon.free_port(), timeout)


def _start_on(port: int, timeout: float) -> PrefectServer:
    command = [prefect_executable(), "server", "start", "--host", HOST, "--port", str(port)]
    api_url = f"http://{HOST}:{port}/api"
    auth = auth_string()
    pid = daemon.spawn(command, log_name=LOG_FILE, env=_server_env(api_url, auth))
    # Its own answer, not whatever answers on the port: another state directory's server may have bound it first
    # (then this one exits), and only a server holding this auth string lets it in.
    daemon.wait_started(
        pid, lambda: _status(api_url, auth) == 200, what="Prefect server", timeout=timeout, log_name=LOG_FILE
    )
    statedir.write_json(STATE_FILE, {"api_url": api_url, "pid": pid})
    return PrefectServer(api_url=api_url, pid=pid, auth_string=auth)


WATCH_SECONDS = 1.0  # how often a run checks that its server still runs


@contextmanager
def kept_up(server: PrefectServer) -> Iterator[None]:
    """While a command's flow runs: peerprobe's own server, if its process dies (killed, crashed), is started
    again on the same port with the same database, so the Prefect client's retries (2, 4, 8 s...) reach it and
    the run carries on instead of failing minutes later. A server peerprobe did not start is left alone."""
    if server.pid is None:
        yield
        return
    stopped = threading.Event()
    watcher = threading.Thread(target=_watch, args=(server, stopped), name="prefect-server-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stopped.set()
        watcher.join(timeout=START_TIMEOUT_SECONDS)


def _watch(server: PrefectServer, stopped: threading.Event) -> None:
    # A supervisor, not a wait: it runs as long as the flow does, and the event ends it at once.
    pid = server.pid
    while pid is not None and not stopped.wait(WATCH_SECONDS):
        if not daemon.pid_alive(pid):
            pid = _restarted(server, pid)


def _restarted(server: PrefectServer, gone: int) -> int | None:
    """The server again on its port (another command may have done it first); None when it cannot be."""
    port = int(server.api_url.rsplit(":", 1)[1].split("/", 1)[0])
    try:
        with statedir.locked(STATE_FILE):
            recorded = _recorded()
            if recorded is not None and recorded.pid not in (None, gone) and recorded.api_url == server.api_url:
                return recorded.pid
            started = start(port=port)
    except (InfrastructureError, WaitTimeoutError, OSError) as error:
        log.warning("prefect.server.restart_failed", api_url=server.api_url, pid=gone, error=str(error)[:200])
        return None
    log.warning("prefect.server.restarted", api_url=server.api_url, pid=gone, new_pid=started.pid)
    return started.pid


# --- the auth string -------------------------------------------------------------------------------------------


def auth_path() -> Path:
    return statedir.state_dir() / AUTH_FILE


def auth_string() -> str:
    """This state directory's auth string: made once (`secrets`), kept owner-only in AUTH_FILE, and never
    printed or logged; a file that is missing, empty, unusable or a planted symlink is (re)made, not followed."""
    with statedir.locked(AUTH_FILE):
        found = (statedir.read_bytes(AUTH_FILE) or b"").decode("utf-8", "replace").strip()
        if _AUTH.fullmatch(found) is None:
            found = f"{AUTH_USER}:{secrets.token_urlsafe(32)}"
            statedir.write_bytes(AUTH_FILE, f"{found}\n".encode())
    return found


def shell_env(api_url: str) -> str:
    """``PREFECT_API_URL=… [PREFECT_API_AUTH_STRING="$(cat …)"]``: what a command the user copies needs to reach
    `api_url`; peerprobe's own server's auth string by the file it is kept in, never by its value."""
    words = [f"PREFECT_API_URL={shlex.quote(api_url)}"]
    if is_own(api_url):
        words.append(f'PREFECT_API_AUTH_STRING="$(cat {shlex.quote(str(auth_path()))})"')
    return " ".join(words)


def sign_in_hint(api_url: str) -> list[str]:
    """What to tell a user who opens the UI of `api_url`: the auth string its sign-in asks for, by its file."""
    return [f"the UI asks for the auth string: it is in {auth_path()}"] if is_own(api_url) else []


def is_own(api_url: str) -> bool:
    """Whether `api_url` is the server recorded in this state directory (so it takes its auth string)."""
    return (statedir.read_json(STATE_FILE) or {}).get("api_url") == api_url


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


def closed_settings(api_url: str, auth: str) -> dict[str, str]:
    """What closes a server to all but its own UI and peerprobe's clients (not overridable): it listens on
    127.0.0.1 only, refuses a request without the auth string and a state-changing one without a CSRF token,
    and lets no page of another origin read its answers."""
    return {
        "PREFECT_SERVER_API_HOST": HOST,
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": api_url.removesuffix("/api"),
        # The UI must call this server's own API (its default is port 4200, wrong for a server on another port).
        "PREFECT_UI_API_URL": api_url,
    }


def _server_env(api_url: str | None = None, auth: str | None = None) -> dict[str, str]:
    env = {**os.environ, **server_settings()}
    return env | (closed_settings(api_url, auth) if api_url and auth else {})


# --- peerprobe serve, in the background ------------------------------------------------------------------------

SERVE_STATE = "serve.json"
SERVE_LOG = "serve.log"


def ensure_serving(api_url: str, *, allow_aws: bool = False) -> int:
    """A `peerprobe serve` process for the UI's runs: the recorded one if alive and serving the same way, else
    a new detached one (the recorded one stopped)."""
    recorded = statedir.read_json(SERVE_STATE) or {}
    pid = recorded.get("pid")
    if isinstance(pid, int) and _is_serve(pid):
        if recorded.get("api_url") == api_url and recorded.get("allow_aws", False) == allow_aws:
            return pid
        daemon.terminate(pid, timeout=STOP_TIMEOUT_SECONDS)
    command = [sys.executable, "-m", "peerprobe.cli", "serve", *(["--allow-aws"] if allow_aws else [])]
    # It finds the auth string itself: PREFECT_API_URL names the server this state directory records.
    started = daemon.spawn(
        command, log_name=SERVE_LOG, env={**os.environ, **NOTHING_LEAVES, "PREFECT_API_URL": api_url}
    )
    statedir.write_json(SERVE_STATE, {"pid": started, "api_url": api_url, "allow_aws": allow_aws})
    return started


def _stop_serve(api_url: str) -> None:
    """The recorded `peerprobe serve` of the server at `api_url`, stopped (it could not reach a new one)."""
    recorded = statedir.read_json(SERVE_STATE) or {}
    pid = recorded.get("pid")
    if recorded.get("api_url") != api_url:
        return
    if isinstance(pid, int) and _is_serve(pid):
        daemon.terminate(pid, timeout=STOP_TIMEOUT_SECONDS)
    statedir.remove(SERVE_STATE)


def _is_serve(pid: int) -> bool:
    command = _cmdline(pid)
    return b"peerprobe.cli" in command and b"serve" in command
