"""The settings peerprobe gives the Prefect servers it starts."""

from __future__ import annotations

import pytest

from peerprobe import server


def test_servers_batch_their_sqlite_writes() -> None:
    settings = server.server_settings()
    assert int(settings["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]) > 1
    assert int(settings["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE"]) > 1


def test_a_setting_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "7")
    assert server._server_env()["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"] == "7"


def test_the_server_sends_nothing_home() -> None:
    env = server._server_env("http://127.0.0.1:4321/api")
    assert (
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4321/api"
    )


def test_telemetry_stays_off_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    assert server._server_env()["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert server.server_settings()["DO_NOT_TRACK"] == "1"
