"""The one wait primitive and its one timing object (`Waits`): poll a pure check, or retry what AWS has not made
consistent yet, with exponential backoff, jitter, an attempt cap and a time cap; tests pass delay=0."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from peerprobe.errors import PeerprobeError, WaitTimeoutError

log = structlog.get_logger()
T = TypeVar("T")


@dataclass(frozen=True)
class Waits:
    """The adapter's one timing policy, for every wait and retry it makes (stamina's and terratest's idea: one
    primitive, a pure predicate per wait). Between checks it pauses with exponential backoff from a first pause
    (`delay`, or the wait's own) doubled up to `max_delay`, with jitter (half fixed, half random, so parallel
    runs spread out); it stops at `max_attempts` checks (or the wait's own cap) or at the wait's time cap,
    whichever comes first. Tests pass delay=0: no pause at all."""

    delay: float = 15
    max_attempts: int = 80
    max_delay: float = 60
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def pause(self, attempt: int, first: float | None = None) -> float:
        """Seconds to pause after check number `attempt` (1-based); zero in the tests' no-wait mode."""
        if self.delay <= 0:
            return 0.0
        ceiling = min(self.max_delay, (self.delay if first is None else first) * 2.0 ** (attempt - 1))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def cap(self, max_attempts: int | None = None) -> int:
        """The most checks a wait makes: its own cap, never above this timing's."""
        return max(1, min(max_attempts or self.max_attempts, self.max_attempts))

    def checks(
        self, *, max_seconds: float, first: float | None = None, max_attempts: int | None = None
    ) -> Iterator[int]:
        """Check numbers 1, 2, ... with the pause before each after the first; ends at the attempt cap, or once
        the time cap has passed (the last pause is cut short so that one more check lands on the deadline)."""
        deadline = self.clock() + max_seconds
        cap = self.cap(max_attempts)
        for attempt in range(1, cap + 1):
            yield attempt
            remaining = deadline - self.clock()
            if attempt == cap or remaining <= 0:
                return
            self.sleep(min(self.pause(attempt, first), remaining))

    def poll(
        self,
        check: Callable[[], T | None],
        *,
        kind: str,
        resource_id: str,
        goal: str,
        max_seconds: float,
        first: float | None = None,
        max_attempts: int | None = None,
        state: Callable[[], str] | None = None,
    ) -> T:
        """Call `check` until it returns something other than None (returned); it raises to give up at once.
        Past the caps: WaitTimeoutError naming the resource, the `goal` and, when given, `state()` (what it
        is now, or what is still in the way, e.g. "still CREATING")."""
        started, attempt, cap = self.clock(), 0, self.cap(max_attempts)
        for attempt in self.checks(max_seconds=max_seconds, first=first, max_attempts=max_attempts):
            found = check()
            if found is not None:
                return found
            log.debug("wait.pending", kind=kind, resource_id=resource_id, goal=goal, attempt=f"{attempt}/{cap}")
        spent = f"after {attempt} checks in {self.clock() - started:.0f}s"
        message = f"{state()} {spent} (waiting until {goal})" if state is not None else f"not {goal} {spent}"
        raise WaitTimeoutError(
            f"{kind} {resource_id}: {message}", resource=kind, resource_id=resource_id, state="waiting"
        )

    def retry(
        self,
        action: Callable[[], T],
        *,
        retry_if: Callable[[PeerprobeError], bool],
        what: str,
        max_seconds: float,
        first: float | None = None,
        max_attempts: int | None = None,
    ) -> T:
        """Run `action`, again after a pause while it raises an error `retry_if` accepts (AWS's eventual
        consistency: a role not yet visible to EKS, an interface not yet released); past the caps the last
        such error is raised as it was, so the caller can say more."""
        last: PeerprobeError | None = None
        for attempt in self.checks(max_seconds=max_seconds, first=first, max_attempts=max_attempts):
            try:
                return action()
            except PeerprobeError as error:
                if not retry_if(error):
                    raise
                last = error
                log.info(
                    "wait.retrying", what=what, attempt=f"{attempt}/{self.cap(max_attempts)}", error=str(error)[:200]
                )
        assert last is not None  # checks() yields at least once
        raise last


AWS = Waits()  # AWS converges in seconds to minutes
LAB = Waits(delay=0.05, max_delay=0.5, max_attempts=400)  # the lab's kernel and moto converge in milliseconds


def until(
    ready: Callable[[], bool], *, kind: str, resource_id: str, goal: str, timeout_seconds: float, timing: Waits = AWS
) -> None:
    """Return once `ready()` (a predicate: it reads, it changes nothing) is true; past the caps a
    WaitTimeoutError: "<kind> <resource_id>: not <goal> after n checks in s"."""
    timing.poll(
        lambda: True if ready() else None, kind=kind, resource_id=resource_id, goal=goal, max_seconds=timeout_seconds
    )
