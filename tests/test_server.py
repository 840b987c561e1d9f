"""The settings peerprobe gives the Prefect servers it starts, its auth string, and what it tells a user about it."""

from __future__ import annotations

import io
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from peerprobe import config, server, statedir
from peerprobe.params import RunParameters
from peerprobe.run import RunOutcome, explain_failure

AUTH = "peerprobe:not-the-real-one-0123456789"


def test_servers_batch_their_sqlite_writes() -> None:
    settings = server.server_settings()
    assert int(settings["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]) > 1
    assert int(settings["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE"]) > 1


def test_a_setting_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "7")
    assert server._server_env()["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"] == "7"


def test_the_server_sends_nothing_home() -> None:
    env = server._server_env("http://127.0.0.1:4321/api", AUTH)
    assert (
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4321/api"
    )


def test_telemetry_stays_off_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    assert server._server_env()["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert server.server_settings()["DO_NOT_TRACK"] == "1"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    return tmp_path


def test_the_auth_string_is_made_once_and_kept_owner_only(state: Path) -> None:
    first = server.auth_string()
    assert server.auth_string() == first and first.startswith("peerprobe:") and len(first) > 40
    assert stat.S_IMODE((state / server.AUTH_FILE).stat().st_mode) == 0o600
    assert (state / server.AUTH_FILE).read_text().strip() == first


def test_each_state_directory_has_its_own_auth_string(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = server.auth_string()
    monkeypatch.setenv(statedir.ENV_VAR, str(state / "other"))
    assert server.auth_string() != first


def test_an_auth_file_planted_as_a_symlink_is_neither_read_nor_written_through(state: Path) -> None:
    outside = state.parent / f"{state.name}-planted"
    outside.write_text("peerprobe:chosen-by-someone-else\n")
    (state / server.AUTH_FILE).symlink_to(outside)
    made = server.auth_string()
    assert made != "peerprobe:chosen-by-someone-else"
    assert outside.read_text() == "peerprobe:chosen-by-someone-else\n"
    assert not (state / server.AUTH_FILE).is_symlink()


def test_an_unusable_auth_file_is_made_again(state: Path) -> None:
    (state / server.AUTH_FILE).write_text("short\n")
    assert server.auth_string() != "short"


def test_the_server_is_closed_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_CORS_ALLOWED_ORIGINS", "*")
    monkeypatch.setenv("PREFECT_SERVER_CSRF_PROTECTION_ENABLED", "false")
    monkeypatch.setenv("PREFECT_SERVER_API_HOST", "0.0.0.0")
    env = server._server_env("http://127.0.0.1:4321/api", AUTH)
    assert env["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"] == "http://127.0.0.1:4321"
    assert env["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    assert env["PREFECT_SERVER_API_HOST"] == "127.0.0.1" and env["PREFECT_SERVER_API_AUTH_STRING"] == AUTH


def test_peerprobe_s_clients_send_the_auth_string_to_its_own_server_only() -> None:
    own = server.PrefectServer(api_url="http://127.0.0.1:4321/api", pid=1, auth_string=AUTH)
    assert own.client_env()["PREFECT_API_AUTH_STRING"] == AUTH
    assert own.client_env()["PREFECT_CLIENT_CSRF_SUPPORT_ENABLED"] == "true"
    assert "PREFECT_API_AUTH_STRING" not in server.PrefectServer(api_url="http://10.0.0.1:4200/api").client_env()
    assert AUTH not in repr(own)


def failed_run(api_url: str) -> RunOutcome:
    return RunOutcome(
        state="Failed",
        flow_run_id="f-1",
        run_url=f"{api_url.removesuffix('/api')}/runs/flow-run/f-1",
        api_url=api_url,
        parameters=RunParameters(config=config.load()),
        error="injected",
        retry_entrypoint="flows/experiment.py:experiment",
    )


def test_a_failed_run_names_the_auth_file_never_the_auth_string(state: Path) -> None:
    api_url = "http://127.0.0.1:4321/api"
    statedir.write_json(server.STATE_FILE, {"api_url": api_url, "pid": 1})
    secret = server.auth_string()
    out = io.StringIO()
    explain_failure(failed_run(api_url), Console(file=out, width=400, soft_wrap=True))
    printed = out.getvalue()
    assert f'PREFECT_API_AUTH_STRING="$(cat {state / server.AUTH_FILE})"' in printed
    assert f"the UI asks for the auth string: it is in {state / server.AUTH_FILE}" in printed
    assert secret not in printed


def test_a_server_peerprobe_did_not_start_gets_no_auth_hint(state: Path) -> None:
    out = io.StringIO()
    explain_failure(failed_run("http://10.0.0.1:4200/api"), Console(file=out, width=400, soft_wrap=True))
    assert "PREFECT_API_AUTH_STRING" not in out.getvalue() and "auth string" not in out.getvalue()


def test_a_recorded_server_whose_process_died_is_replaced_whatever_answers_on_its_port(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed, its port taken by another state directory's server (which refuses this auth string): a new server
    is started, not the other one used or refused (the fault campaign's kill-prefect cells)."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    statedir.write_json(server.STATE_FILE, {"api_url": "http://127.0.0.1:4321/api", "pid": dead.pid})
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(server, "healthy", lambda api_url: True)  # something answers there
    monkeypatch.setattr(server, "_status", lambda api_url, auth: 401)  # and refuses this auth string
    started = server.PrefectServer(api_url="http://127.0.0.1:4999/api", pid=4242)
    monkeypatch.setattr(server, "start", lambda timeout: started)
    assert server.ensure_running() == started


# --- kept up while a command's flow runs -------------------------------------------------------------------


@pytest.fixture
def fast_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "WATCH_SECONDS", 0.02)


def _sleeper() -> int:
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]).pid


def _started_on(calls: list[int], started: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """`start` recorded (port asked for) and replaced by a stand-in process: no real Prefect server."""

    def start(*, port: int | None = None, timeout: float = 0) -> server.PrefectServer:
        calls.append(port or 0)
        pid = _sleeper()
        started.append(pid)
        statedir.write_json(server.STATE_FILE, {"api_url": f"http://127.0.0.1:{port}/api", "pid": pid})
        return server.PrefectServer(api_url=f"http://127.0.0.1:{port}/api", pid=pid)

    monkeypatch.setattr(server, "start", start)


def _gone(pid: int) -> None:
    import os
    import signal

    from peerprobe import daemon

    os.kill(pid, signal.SIGKILL)
    assert until_true(lambda: not daemon.pid_alive(pid))


def until_true(check: Callable[[], object], seconds: float = 10.0) -> bool:
    """Whether `check` comes true within `seconds` (the watcher works in a thread of its own)."""
    from peerprobe.errors import WaitTimeoutError
    from peerprobe.wait import LAB, until

    try:
        until(lambda: bool(check()), kind="watch", resource_id="test", goal="seen", timeout_seconds=seconds, timing=LAB)
    except WaitTimeoutError:
        return False
    return True


def test_a_server_killed_during_a_run_is_started_again_on_its_port(
    state: Path, fast_watch: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    started: list[int] = []
    _started_on(calls, started, monkeypatch)
    own = server.PrefectServer(api_url="http://127.0.0.1:4321/api", pid=_sleeper())
    with server.kept_up(own):
        _gone(own.pid or 0)
        assert until_true(lambda: calls == [4321])
    assert calls == [4321]
    _gone(started[0])


def test_a_server_that_lives_is_left_alone(state: Path, fast_watch: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    _started_on(calls, [], monkeypatch)
    own = server.PrefectServer(api_url="http://127.0.0.1:4321/api", pid=_sleeper())
    with server.kept_up(own):
        assert not until_true(lambda: calls, seconds=0.3)
    _gone(own.pid or 0)


def test_a_server_another_command_started_again_is_adopted_not_doubled(
    state: Path, fast_watch: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    _started_on(calls, [], monkeypatch)
    own = server.PrefectServer(api_url="http://127.0.0.1:4321/api", pid=_sleeper())
    again = _sleeper()
    statedir.write_json(server.STATE_FILE, {"api_url": own.api_url, "pid": again})
    with server.kept_up(own):
        _gone(own.pid or 0)
        assert not until_true(lambda: calls, seconds=0.3)
    _gone(again)


def test_a_server_peerprobe_did_not_start_is_never_started(
    state: Path, fast_watch: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    _started_on(calls, [], monkeypatch)
    with server.kept_up(server.PrefectServer(api_url="http://10.0.0.1:4200/api")):
        assert not until_true(lambda: calls, seconds=0.3)


def test_a_default_port_taken_between_the_check_and_the_start_gives_another_port(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peerprobe import daemon
    from peerprobe.errors import InfrastructureError

    tried: list[int] = []

    def start_on(port: int, timeout: float) -> server.PrefectServer:
        tried.append(port)
        if port == server.DEFAULT_PORT:  # another state directory's server bound it first: ours exited
            raise InfrastructureError("exited while starting", resource="Prefect server", state="exited")
        return server.PrefectServer(api_url=f"http://127.0.0.1:{port}/api", pid=1)

    monkeypatch.setattr(daemon, "port_free", lambda port: True)
    monkeypatch.setattr(server, "_start_on", start_on)
    started = server.start()
    assert tried[0] == server.DEFAULT_PORT and len(tried) == 2 and started.api_url.endswith(f":{tried[1]}/api")
