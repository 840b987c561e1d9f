"""The one wait primitive: poll a pure predicate until it holds, with exponential backoff, jitter, an attempt cap
and a deadline, logging each attempt as "n/m". How fast it polls is a `Timing`, which tests set once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
import tenacity

from peerprobe.errors import WaitTimeoutError

log = structlog.get_logger()
T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """How a wait polls: the first pause, the longest pause (backoff doubles up to it) and the jitter added."""

    first: float = 2.0
    longest: float = 30.0
    jitter: float = 1.0

    def attempts(self, timeout_seconds: float) -> int:
        """The most attempts that fit in `timeout_seconds` (the cap logged as "n/m")."""
        if self.first <= 0:
            return max(1, math.ceil(timeout_seconds / 0.01))
        return max(1, math.ceil(timeout_seconds / self.first) + 1)


AWS = Timing()  # AWS converges in seconds to minutes
LAB = Timing(first=0.05, longest=0.5, jitter=0.02)  # the lab's kernel and moto converge in milliseconds


def until(
    ready: Callable[[], bool], *, what: str, timeout_seconds: float, timing: Timing = AWS, resource_id: str = ""
) -> None:
    """Return once `ready()` is true; a WaitTimeoutError naming `what` when the deadline or the attempt cap
    comes first. `ready` must be a predicate: it reads, it never changes anything."""
    cap = timing.attempts(timeout_seconds)
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout_seconds) | tenacity.stop_after_attempt(cap),
        wait=tenacity.wait_exponential(multiplier=timing.first, max=timing.longest)
        + tenacity.wait_random(0, timing.jitter),
        retry=tenacity.retry_if_result(lambda done: not done),
        before_sleep=lambda state: log.info("wait.attempt", what=what, attempt=f"{state.attempt_number}/{cap}"),
        retry_error_callback=lambda state: False,
        reraise=True,
    )
    if not retrying(ready):
        raise WaitTimeoutError(
            f"{what}: not ready within {timeout_seconds:g}s", resource=what.split(":", 1)[0],
            resource_id=resource_id or what, state="not ready",
        )  # fmt: skip
    log.debug("wait.done", what=what)


def retry_call(
    call: Callable[[], T], *, transient: Callable[[BaseException], bool], what: str, attempts: int, timing: Timing = AWS
) -> T:
    """`call()`, again after a backoff while it fails with an error `transient` accepts (AWS not consistent
    yet), at most `attempts` times; any other error, or the last one, is raised as it is."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=timing.first, max=timing.longest)
        + tenacity.wait_random(0, timing.jitter),
        retry=tenacity.retry_if_exception(transient),
        before_sleep=lambda state: log.info("wait.retry", what=what, attempt=f"{state.attempt_number}/{attempts}"),
        reraise=True,
    )
    return retrying(call)


def timing_of(poll_seconds: float) -> Timing:
    """The timing of a caller that names only its polling pause (0: no waiting at all, as tests want)."""
    return Timing(first=poll_seconds, longest=max(poll_seconds * 3, poll_seconds), jitter=poll_seconds / 10)
