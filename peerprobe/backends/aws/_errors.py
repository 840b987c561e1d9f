"""Translate botocore exceptions into peerprobe's error tree, naming the resource kind, id and AWS code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    WaiterError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from peerprobe.errors import (
    ConflictError,
    CredentialsError,
    InfrastructureError,
    NotFoundError,
    PeerprobeError,
    TransientError,
    WaitTimeoutError,
)

# AWS payloads can echo request data back; keep only the start of them out of logs and reports.
MAX_DETAIL = 200

# Throttling codes across the query (EC2, ELB) and JSON (EKS) protocols; botocore's standard retry mode
# retries the same set (botocore/retries/standard.py) before we ever see them.
_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
_SERVER_SIDE = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "ServerException"})
# What STS and the other services answer when the credentials themselves are bad or expired.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "InvalidAccessKeyId",
    }
)
_CONFLICTS = frozenset({"DependencyViolation", "ResourceInUseException"})


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError (e.g. "InvalidVpcID.NotFound"), else ""."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def translate(error: Exception, *, kind: str, resource_id: str = "", name: str = "") -> PeerprobeError:
    """Map a botocore exception to the most specific peerprobe error; callers `raise ... from error`."""
    subject = _subject(kind, resource_id, name)
    if isinstance(error, ClientError) and error_code(error) in CREDENTIAL_CODES:
        return CredentialsError(f"{subject}: {error_code(error)}: the credentials were refused")
    if isinstance(error, ClientError):
        return _from_client_error(error, subject=subject, kind=kind, resource_id=resource_id)
    if isinstance(error, WaiterError):
        return _from_waiter_error(error, subject=subject, kind=kind, resource_id=resource_id)
    if isinstance(error, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return CredentialsError(f"{subject}: {type(error).__name__}: {_cut(str(error))}")
    if isinstance(error, BotoConnectionError):
        return TransientError(
            f"{subject}: {_cut(str(error))}", resource=kind, resource_id=resource_id, state="unreachable"
        )
    return InfrastructureError(
        f"{subject}: {type(error).__name__}: {_cut(str(error))}", resource=kind, resource_id=resource_id
    )


@contextlib.contextmanager
def aws_errors(kind: str, resource_id: str = "", name: str = "") -> Iterator[None]:
    """Run a block of SDK calls and translate whatever botocore raises, naming the resource."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise translate(error, kind=kind, resource_id=resource_id, name=name) from error


def classify(code: str, status: int) -> type[InfrastructureError]:
    """The peerprobe error class for an AWS error code and HTTP status, most specific first."""
    if code in _THROTTLING or code in _SERVER_SIDE or status >= 500:
        return TransientError
    if "NotFound" in code or code == "NoSuchEntity":  # IAM says NoSuchEntity
        return NotFoundError
    if code in _CONFLICTS or "InUse" in code or "IncorrectState" in code or "IncorrectInstanceState" in code:
        return ConflictError
    if code.endswith(".Duplicate") or "AlreadyExists" in code or code.startswith("Duplicate"):
        return ConflictError
    return InfrastructureError


def _from_client_error(error: ClientError, *, subject: str, kind: str, resource_id: str) -> InfrastructureError:
    response: dict[str, Any] = error.response
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    detail = str(response.get("Error", {}).get("Message", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    cls = classify(code, status)
    return cls(f"{subject}: {code}: {_cut(detail)}", resource=kind, resource_id=resource_id, state=code)


def _from_waiter_error(error: WaiterError, *, subject: str, kind: str, resource_id: str) -> InfrastructureError:
    last: dict[str, Any] = error.last_response or {}
    code = str(last.get("Error", {}).get("Code", ""))
    if code:
        status = int(last.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        cls = classify(code, status)
        detail = str(last.get("Error", {}).get("Message", ""))
        return cls(f"{subject}: {code}: {_cut(detail)}", resource=kind, resource_id=resource_id, state=code)
    # botocore's waiter reason is "Max attempts exceeded" when it ran out, else a failure state was reached.
    reason = str(getattr(error, "kwargs", {}).get("reason", "")) or str(error)
    cls = WaitTimeoutError if "Max attempts exceeded" in reason else InfrastructureError
    return cls(f"{subject}: {_cut(reason)}", resource=kind, resource_id=resource_id, state="waiting")


def _subject(kind: str, resource_id: str, name: str) -> str:
    subject = f"{kind} {resource_id}".strip()
    return f"{subject} ({name})" if name else subject


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
