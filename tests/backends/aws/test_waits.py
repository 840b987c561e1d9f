"""The adapter's one wait primitive: backoff with jitter, an attempt cap and a time cap, on a fake clock."""

from __future__ import annotations

import pytest

from peerprobe.backends.aws import Waits
from peerprobe.errors import ConflictError, InfrastructureError, NotFoundError, PeerprobeError, WaitTimeoutError


class FakeTime:
    """A clock that moves only when the wait sleeps (or a check takes `per_check` seconds)."""

    def __init__(self, per_check: float = 0.0) -> None:
        self.now = 0.0
        self.per_check = per_check
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def timed(delay: float = 10, max_attempts: int = 80, max_delay: float = 60) -> tuple[Waits, FakeTime]:
    fake = FakeTime()
    return Waits(delay=delay, max_attempts=max_attempts, max_delay=max_delay, sleep=fake.sleep, clock=fake.clock), fake


def test_pauses_grow_from_the_first_to_the_ceiling_with_jitter() -> None:
    waits, fake = timed(delay=10, max_delay=60)
    with pytest.raises(WaitTimeoutError):
        waits.poll(lambda: None, kind="x", resource_id="1", goal="done", max_seconds=10_000, max_attempts=7)
    ceilings = [10, 20, 40, 60, 60, 60]
    assert len(fake.pauses) == len(ceilings)
    assert all(c / 2 <= p <= c for p, c in zip(fake.pauses, ceilings, strict=True))
    assert len(set(fake.pauses)) > 1  # jittered, not a fixed pace


def test_the_time_cap_ends_the_wait_with_one_last_check_on_the_deadline() -> None:
    waits, fake = timed(delay=10)
    checks: list[float] = []
    with pytest.raises(WaitTimeoutError, match=r"eks cluster c1: not active after \d+ checks in 95s"):
        waits.poll(lambda: checks.append(fake.now), kind="eks cluster", resource_id="c1", goal="active", max_seconds=95)
    assert checks[-1] == pytest.approx(95) and sum(fake.pauses) == pytest.approx(95)
    assert len(checks) < 80  # the time cap, not the attempt cap, ended it


def test_the_attempt_cap_ends_the_wait_and_the_error_says_what_was_seen() -> None:
    waits, fake = timed(delay=1, max_attempts=4)
    seen = iter(["CREATING", "CREATING", "CREATING", "CREATING"])
    last = {"status": ""}

    def check() -> None:
        last["status"] = next(seen)

    with pytest.raises(WaitTimeoutError, match=r"addon c1/vpc-cni: still CREATING after 4 checks") as caught:
        waits.poll(
            check,
            kind="addon",
            resource_id="c1/vpc-cni",
            goal="ACTIVE",
            max_seconds=3600,
            state=lambda: f"still {last['status']}",
        )
    assert caught.value.resource_id == "c1/vpc-cni" and len(fake.pauses) == 3


def test_a_wait_may_ask_for_fewer_checks_but_never_more_than_the_policy_allows() -> None:
    waits, _ = timed(delay=0, max_attempts=3)
    calls: list[int] = []
    with pytest.raises(WaitTimeoutError):
        waits.poll(lambda: calls.append(1), kind="x", resource_id="1", goal="done", max_seconds=60, max_attempts=50)
    assert len(calls) == 3


def test_poll_returns_what_the_check_found_without_pausing_after_it() -> None:
    waits, fake = timed(delay=5)
    answers = iter([None, None, "pending-acceptance"])
    assert (
        waits.poll(lambda: next(answers), kind="vpc peering", resource_id="pcx-1", goal="known", max_seconds=60)
        == "pending-acceptance"
    )
    assert len(fake.pauses) == 2


def test_zero_delay_never_sleeps() -> None:
    waits, fake = timed(delay=0, max_attempts=5)
    with pytest.raises(WaitTimeoutError):
        waits.poll(lambda: None, kind="x", resource_id="1", goal="done", max_seconds=60)
    assert fake.pauses == [0, 0, 0, 0]


def _in_use(error: PeerprobeError) -> bool:
    return isinstance(error, ConflictError) and error.state == "DependencyViolation"


def test_retry_retries_only_what_it_is_told_and_returns_the_result() -> None:
    waits, fake = timed(delay=2)
    failures = [ConflictError("subnet s: DependencyViolation", state="DependencyViolation")] * 2

    def delete() -> str:
        if failures:
            raise failures.pop()
        return "deleted"

    assert waits.retry(delete, retry_if=_in_use, what="subnet s", max_seconds=60) == "deleted"
    assert len(fake.pauses) == 2


def test_retry_raises_other_errors_at_once() -> None:
    waits, fake = timed(delay=2)

    def delete() -> None:
        raise NotFoundError("subnet s: gone", state="InvalidSubnetID.NotFound")

    with pytest.raises(NotFoundError):
        waits.retry(delete, retry_if=_in_use, what="subnet s", max_seconds=60)
    assert fake.pauses == []


def test_retry_gives_up_at_the_cap_with_the_last_error_itself() -> None:
    waits, fake = timed(delay=1, max_attempts=3)
    errors = [InfrastructureError(f"try {n}", state="DependencyViolation") for n in (1, 2, 3)]

    def delete() -> None:
        raise ConflictError(str(errors.pop(0)), state="DependencyViolation")

    with pytest.raises(ConflictError, match="try 3"):
        waits.retry(delete, retry_if=_in_use, what="subnet s", max_seconds=60)
    assert len(fake.pauses) == 2
