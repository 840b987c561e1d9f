"""Shared plumbing for the AWS adapter: clients, the ownership stamp, tag filters, waiters, ensure-absent."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from botocore.exceptions import WaiterError

from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import TAG_ENVIRONMENT, Stamp
from peerprobe.errors import NotFoundError, PeerprobeError, WaitTimeoutError

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

    def checks(
        self, *, max_seconds: float, first: float | None = None, max_attempts: int | None = None
    ) -> Iterator[int]:
        """Check numbers 1, 2, ... with the pause before each after the first; ends at the attempt cap, or once
        the time cap has passed (the last pause is cut short so that one more check lands on the deadline)."""
        deadline = self.clock() + max_seconds
        cap = max(1, min(max_attempts or self.max_attempts, self.max_attempts))
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
        started, attempt = self.clock(), 0
        for attempt in self.checks(max_seconds=max_seconds, first=first, max_attempts=max_attempts):
            found = check()
            if found is not None:
                return found
            log.debug("aws.waiting", kind=kind, resource_id=resource_id, goal=goal, attempt=attempt)
        spent = f"after {attempt} checks in {self.clock() - started:.0f}s"
        message = f"{state()} {spent} (waiting until {goal})" if state is not None else f"not {goal} {spent}"
        raise WaitTimeoutError(f"{kind} {resource_id}: {message}", resource=kind, resource_id=resource_id,
                               state="waiting")  # fmt: skip

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
                log.info("aws.retrying", what=what, attempt=attempt, error=str(error)[:200])
        assert last is not None  # checks() yields at least once
        raise last


class AwsBase:
    """State every resource module shares; the public operations live in the mixins built on it."""

    def __init__(self, clients: ClientFactory, *, stamp: Stamp, waits: Waits | None = None) -> None:
        self.clients = clients
        self.stamp = stamp
        self.waits = waits or Waits()

    @property
    def ec2(self) -> Any:
        return self.clients.client("ec2")

    @property
    def eks(self) -> Any:
        return self.clients.client("eks")

    @property
    def elb(self) -> Any:
        return self.clients.client("elb")

    @property
    def elbv2(self) -> Any:
        return self.clients.client("elbv2")

    def tag_list(self, name: str, extra: dict[str, str] | None = None) -> list[dict[str, str]]:
        tags = self.stamp.tags(name) | (extra or {})
        return [{"Key": key, "Value": value} for key, value in tags.items()]

    def tag_specs(self, resource_type: str, name: str, extra: dict[str, str] | None = None) -> list[Any]:
        return [{"ResourceType": resource_type, "Tags": self.tag_list(name, extra)}]

    def owned(self, name: str, **filters: str | list[str]) -> list[dict[str, Any]]:
        """EC2 filters matching our resource `name` in this environment (the run is not part of identity)."""
        # Filters are ANDed, so their order means nothing to EC2; moto evaluates them in order, and a state
        # filter first spares it the tag lookups of every terminated instance it keeps (~8x faster after a
        # few dozen runs).
        result = [
            {"Name": key.replace("_", "-"), "Values": value if isinstance(value, list) else [value]}
            for key, value in filters.items()
        ]
        return [
            *result,
            {"Name": "tag:Name", "Values": [name]},
            {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": [self.stamp.environment]},
        ]

    def wait(
        self, client: Any, waiter: str, *, kind: str, resource_id: str, max_seconds: float, **params: Any
    ) -> None:
        """A botocore waiter's acceptors (the success and failure states its service documents), checked one
        attempt at a time at the Waits' pace, so backoff, jitter and both caps are ours; `max_seconds` is the
        time cap (cluster ~20 min, node group ~15, NAT gateway ~10)."""
        model = client.get_waiter(waiter)
        self.waits.poll(lambda: _waiter_once(model, kind, resource_id, params), kind=kind, resource_id=resource_id,
                        goal=waiter.replace("_", " "), max_seconds=max_seconds)  # fmt: skip


def _waiter_once(waiter: Any, kind: str, resource_id: str, params: dict[str, Any]) -> bool | None:
    """True when the waiter's success state matched; None while no terminal state did (botocore says "Max
    attempts exceeded" after its one attempt); its failure states and unexpected errors raise, translated."""
    with aws_errors(kind, resource_id):
        try:
            waiter.wait(WaiterConfig={"Delay": 0, "MaxAttempts": 1}, **params)
        except WaiterError as error:
            if str(error.kwargs.get("reason", "")).startswith("Max attempts exceeded"):
                return None
            raise
    return True


def first(items: list[dict[str, Any]], *, kind: str, name: str) -> dict[str, Any] | None:
    """The first match; more than one means a race created twins, which we log rather than hide."""
    if len(items) > 1:
        log.warning(f"{kind}.duplicates", name=name, count=len(items))
    return items[0] if items else None


def only(items: list[dict[str, Any]], *, kind: str, resource_id: str) -> dict[str, Any]:
    """The one item a describe-by-id returned; an empty answer means the resource is gone."""
    if not items:
        raise NotFoundError(f"{kind} {resource_id}: not found", resource=kind, resource_id=resource_id, state="absent")
    return items[0]


def tag_dict(raw: dict[str, Any]) -> dict[str, str]:
    return {str(tag["Key"]): str(tag["Value"]) for tag in raw.get("Tags", [])}


@contextlib.contextmanager
def absent_ok(kind: str, resource_id: str) -> Iterator[None]:
    """For deletions: an already-absent resource means the goal is met."""
    try:
        with aws_errors(kind, resource_id):
            yield
    except NotFoundError:
        log.info(f"{kind}.already_absent", resource_id=resource_id)
    else:
        log.info(f"{kind}.deleted", resource_id=resource_id)
