"""The one wait primitive: until() returns once its predicate holds, and names what it waited for otherwise."""

from __future__ import annotations

import pytest

from peerprobe.errors import WaitTimeoutError
from peerprobe.wait import Waits, until

NO_WAIT = Waits(delay=0, max_attempts=5)


def test_until_returns_once_the_predicate_holds() -> None:
    answers = iter([False, False, True])
    until(lambda: next(answers), kind="thing", resource_id="t-1", goal="ready", timeout_seconds=5, timing=NO_WAIT)
    assert next(answers, "spent") == "spent"


def test_until_gives_up_at_the_attempt_cap_naming_the_resource_and_goal() -> None:
    checks: list[int] = []
    with pytest.raises(WaitTimeoutError, match=r"^thing t-1: not ready after 5 checks"):
        until(
            lambda: checks.append(1) or False,
            kind="thing",
            resource_id="t-1",
            goal="ready",
            timeout_seconds=5,
            timing=NO_WAIT,
        )
    assert len(checks) == 5


def test_until_pauses_with_backoff_between_checks() -> None:
    pauses: list[float] = []
    timing = Waits(delay=1, max_delay=4, max_attempts=4, sleep=pauses.append, clock=lambda: 0.0)
    with pytest.raises(WaitTimeoutError):
        until(lambda: False, kind="thing", resource_id="t-1", goal="ready", timeout_seconds=60, timing=timing)
    assert len(pauses) == 3 and 0.5 <= pauses[0] <= 1 and 2 <= pauses[2] <= 4
