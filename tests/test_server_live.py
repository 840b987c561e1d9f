"""peerprobe's own Prefect server, started for real in a private state directory (once for the module): an open
server an older peerprobe left (a stand-in answering without auth) is replaced, and the new one takes requests
only on 127.0.0.1, only with the auth string, state-changing ones only with a CSRF token, and answers no page of
another origin; peerprobe's own client works, and no log carries the auth string."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from peerprobe import daemon, server, statedir
from peerprobe.errors import InfrastructureError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
OTHER_ORIGIN = "http://evil.example"

# An open server as an older peerprobe started it: every GET answers 200, /health included, without any auth.
OPEN_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Open(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[-1])), Open).serve_forever()
"""


@dataclass(frozen=True)
class Closed:
    server: server.PrefectServer
    state: Path
    replaced: list[subprocess.Popen[bytes]]  # the open server and its `peerprobe serve`, stopped by ensure_running


def _detached(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)


def _left_by_an_older_peerprobe(state: Path) -> list[subprocess.Popen[bytes]]:
    """An open server (its program named `prefect`, as the real one) and a serve process, both recorded."""
    program = state / "bin" / "prefect"
    program.parent.mkdir()
    program.write_text(OPEN_SERVER)
    port = daemon.free_port()
    old = _detached([sys.executable, str(program), "server", "start", "--port", str(port)])
    serve = _detached([sys.executable, "-c", "import time; time.sleep(600)", "peerprobe.cli", "serve"])
    api_url = f"http://127.0.0.1:{port}/api"
    statedir.write_json(server.STATE_FILE, {"api_url": api_url, "pid": old.pid})
    statedir.write_json(server.SERVE_STATE, {"api_url": api_url, "pid": serve.pid})
    daemon.wait_started(old.pid, lambda: server.healthy(api_url), what="open server", timeout=30, log_name="x")
    return [old, serve]


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Closed]:
    state = tmp_path_factory.mktemp("closed-server")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(statedir.ENV_VAR, str(state))
        patch.setenv("PREFECT_HOME", str(state / "prefect-home"))  # a database of its own
        patch.delenv("PREFECT_API_URL", raising=False)
        patch.setattr(server, "DEFAULT_PORT", daemon.free_port())  # not 4200: this machine's own server may be there
        replaced = _left_by_an_older_peerprobe(state)
        started: server.PrefectServer | None = None
        try:
            started = server.ensure_running()
            yield Closed(server=started, state=state, replaced=replaced)
        finally:
            if started is not None and started.pid is not None:
                daemon.terminate(started.pid, timeout=20)
            for process in replaced:
                _stop(process)


def status(url: str, *, auth: str | None = None, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    return response(url, auth=auth, method=method, headers=headers)[0]


def response(
    url: str, *, auth: str | None = None, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    if method == "POST":
        request.data, request.headers["Content-Type"] = b"{}", "application/json"
    if auth is not None:
        request.add_header("Authorization", f"Basic {b64encode(auth.encode()).decode()}")
    try:
        with _OPENER.open(request, timeout=30) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def test_the_open_server_an_older_peerprobe_left_is_stopped_with_its_serve(closed: Closed) -> None:
    assert [process.wait(10) is not None for process in closed.replaced] == [True, True]
    assert statedir.read_json(server.SERVE_STATE) is None
    assert (statedir.read_json(server.STATE_FILE) or {})["pid"] == closed.server.pid


def test_a_request_without_the_auth_string_is_refused(closed: Closed) -> None:
    version = f"{closed.server.api_url}/admin/version"
    assert status(version) == 401
    assert status(version, auth="peerprobe:guessed") == 401
    assert status(version, auth=closed.server.auth_string) == 200


def test_a_state_changing_request_without_a_csrf_token_is_refused(closed: Closed) -> None:
    assert status(f"{closed.server.api_url}/flows/filter", auth=closed.server.auth_string, method="POST") == 403


def test_a_page_of_another_origin_may_not_read_the_answers(closed: Closed) -> None:
    url, auth = f"{closed.server.api_url}/admin/version", closed.server.auth_string
    preflight = {"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in response(url, method="OPTIONS", headers=preflight)[1]
    assert "access-control-allow-origin" not in response(url, auth=auth, headers={"Origin": OTHER_ORIGIN})[1]
    own = {"Origin": closed.server.ui_url}
    assert response(url, auth=auth, headers=own)[1]["access-control-allow-origin"] == closed.server.ui_url


def _listening(port: int) -> list[str]:
    """The local addresses of the sockets listening on `port` (hex, as /proc/net/tcp and tcp6 write them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def test_the_server_listens_on_the_loopback_address_only(closed: Closed) -> None:
    port = int(closed.server.api_url.rsplit(":", 1)[1].split("/")[0])
    assert _listening(port) == ["0100007F"]


def test_peerprobe_s_own_client_works_and_nothing_it_prints_or_logs_carries_the_auth_string(closed: Closed) -> None:
    code = (
        "from flows import runner\n"
        "runner.connect()\n"
        "from prefect import get_client\n"
        "with get_client(sync_client=True) as client:\n"  # POSTs: the auth string and a CSRF token
        "    client.create_flow_from_name('closed-server-check')\n"
        "    print(sorted(flow.name for flow in client.read_flows()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed-server-check" in done.stdout
    secret = str(closed.server.auth_string)
    logs = [path.read_text(errors="replace") for path in closed.state.glob("*.log")]
    assert logs and [text for text in [done.stdout, done.stderr, *logs] if secret in text] == []


class _Open(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


def test_an_open_server_peerprobe_cannot_stop_is_refused_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    open_server = ThreadingHTTPServer(("127.0.0.1", 0), _Open)
    threading.Thread(target=open_server.serve_forever, daemon=True).start()
    try:
        api_url = f"http://127.0.0.1:{open_server.server_address[1]}/api"
        statedir.write_json(server.STATE_FILE, {"api_url": api_url})  # no pid: an older record
        with pytest.raises(InfrastructureError, match=r"takes requests without an auth string.*stop it"):
            server.ensure_running(timeout=1)
    finally:
        open_server.shutdown()
    assert (statedir.read_json(server.STATE_FILE) or {}).get("api_url") == api_url
