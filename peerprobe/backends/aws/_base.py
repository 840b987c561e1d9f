"""Shared plumbing for the AWS adapter: clients, the ownership stamp, tag filters, waiters, ensure-absent."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import TAG_ENVIRONMENT, Stamp
from peerprobe.errors import NotFoundError

log = structlog.get_logger()


@dataclass(frozen=True)
class Waits:
    """How botocore waiters poll: tests use a zero delay, real AWS the waiters' own pace."""

    delay: int = 15
    max_attempts: int = 80

    def attempts(self, max_seconds: float | None) -> int:
        """Attempts that fit in `max_seconds` at this delay (at least one); the default count without a bound."""
        if max_seconds is None or self.delay <= 0:
            return self.max_attempts
        return max(1, math.ceil(max_seconds / self.delay))


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
        self, client: Any, waiter: str, *, kind: str, resource_id: str, max_seconds: float | None = None, **params: Any
    ) -> None:
        """A botocore waiter at our pace; `max_seconds` bounds it in time (cluster ~20 min, node group ~15)."""
        config = {"Delay": self.waits.delay, "MaxAttempts": self.waits.attempts(max_seconds)}
        with aws_errors(kind, resource_id):
            client.get_waiter(waiter).wait(WaiterConfig=config, **params)


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
