"""Shared plumbing for the AWS adapter: clients, the ownership stamp, tag filters, waiters, ensure-absent."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog
from botocore.exceptions import WaiterError

from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import TAG_ENVIRONMENT, Stamp
from peerprobe.errors import NotFoundError
from peerprobe.wait import Waits as Waits  # the adapter's timing is the one timing object

log = structlog.get_logger()


T = TypeVar("T")
# EC2 is eventually consistent: an id a Create call has just returned can be unknown to the next call for a few
# seconds (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html, "Eventual consistency
# error examples": InvalidGroup.NotFound right after CreateSecurityGroup, and so on).
ID_PROPAGATION_SECONDS = 60


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

    def while_unknown(self, action: Callable[[], T], *, codes: frozenset[str], what: str) -> T:
        """`action` (its SDK calls translated), again while AWS answers one of `codes`, the not-found errors of
        an id it has just handed out; bounded at ID_PROPAGATION_SECONDS, then the last such error is raised."""
        return self.waits.retry(
            action,
            retry_if=lambda error: isinstance(error, NotFoundError) and error.state in codes,
            what=what,
            max_seconds=ID_PROPAGATION_SECONDS,
            first=2,
        )

    def wait(self, client: Any, waiter: str, *, kind: str, resource_id: str, max_seconds: float, **params: Any) -> None:
        """A botocore waiter's acceptors (the success and failure states its service documents), checked one
        attempt at a time at the Waits' pace, so backoff, jitter and both caps are ours; `max_seconds` is the
        time cap (cluster ~20 min, node group ~15, NAT gateway ~10)."""
        model = client.get_waiter(waiter)
        self.waits.poll(
            lambda: _waiter_once(model, kind, resource_id, params),
            kind=kind,
            resource_id=resource_id,
            goal=waiter.replace("_", " "),
            max_seconds=max_seconds,
        )


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
