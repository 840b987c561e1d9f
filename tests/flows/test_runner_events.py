"""The run's last events are sent before the command ends: Prefect's drain warning is not shown on a clean run,
and events still undelivered after the bound are reported once, with fields."""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

import pytest
import structlog
from prefect.events.worker import EventsWorker

from flows import runner


def draining(pending: int) -> Any:
    def drain_all(cls: Any, timeout: float | None = None, at_exit: bool = True) -> Any:
        logging.getLogger("EventsWorker").warning("Still processing items: 1 items remaining...")
        left = {concurrent.futures.Future() for _ in range(pending)}  # type: ignore[var-annotated]
        return concurrent.futures.wait(set(), timeout=0) if not left else (set(), left)

    return classmethod(drain_all)


def test_a_clean_drain_shows_no_prefect_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(EventsWorker, "drain_all", draining(0))
    with structlog.testing.capture_logs() as events, caplog.at_level(logging.WARNING):
        runner._deliver_events()
    assert [r.getMessage() for r in caplog.records if r.name == "EventsWorker"] == []
    assert events == []


def test_events_left_after_the_bound_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EventsWorker, "drain_all", draining(1))
    with structlog.testing.capture_logs() as events:
        runner._deliver_events()
    assert [(e["event"], e["workers"]) for e in events] == [("prefect.events_undelivered", 1)]


def test_the_workers_log_level_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EventsWorker, "drain_all", draining(0))
    logging.getLogger("EventsWorker").setLevel(logging.INFO)
    runner._deliver_events()
    assert logging.getLogger("EventsWorker").level == logging.INFO
