"""Answers given in place of an AWS endpoint, for adapters that stand in for what an endpoint does not serve
(the lab's EKS add-on API and public parameters): a botocore response built from a JSON payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


def json_response(url: str, status: int, payload: dict[str, Any], *, code: str = "") -> Any:
    """A JSON response botocore parses as if the endpoint had sent it; `code` names an error's type."""
    headers = {"Content-Type": "application/json"} | ({"x-amzn-ErrorType": code} if code else {})
    return AWSResponse(url, status, headers, _Body(json.dumps(payload).encode()))


class _Body:
    """The raw body botocore's parser streams."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body
