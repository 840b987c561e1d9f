"""The EKS bearer token, as `aws eks get-token` makes it: a presigned STS GetCallerIdentity URL carrying the
x-k8s-aws-id header (the cluster name), base64url-encoded without padding behind `k8s-aws-v1.`.

The API server accepts a token for 15 minutes; TokenSource makes a new one after REFRESH_AFTER_SECONDS. Tokens
are bearer credentials: never logged, persisted or put in a report (design.md).
"""

from __future__ import annotations

import base64
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from peerprobe.backends.aws._errors import aws_errors

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
URL_EXPIRES_SECONDS = 60  # what awscli presigns with; the API server adds its own 15-minute window
TOKEN_LIFETIME_SECONDS = 15 * 60
REFRESH_AFTER_SECONDS = 14 * 60


def presigned_url(sts: Any, cluster_name: str) -> str:
    """sts:GetCallerIdentity presigned for GET, with the cluster name signed in as x-k8s-aws-id."""
    _register_header_handlers(sts)
    with aws_errors("eks token", cluster_name):
        url = sts.generate_presigned_url(
            "get_caller_identity",
            Params={CLUSTER_HEADER: cluster_name},
            ExpiresIn=URL_EXPIRES_SECONDS,
            HttpMethod="GET",
        )
    return str(url)


def token_from_url(url: str) -> str:
    encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + encoded


def eks_token(sts: Any, cluster_name: str) -> str:
    return token_from_url(presigned_url(sts, cluster_name))


class TokenSource:
    """A token per cluster, made again once it is REFRESH_AFTER_SECONDS old (thread-safe)."""

    def __init__(self, sts: Any, cluster_name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._sts = sts
        self._cluster = cluster_name
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._made_at = 0.0

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if not self._token or now - self._made_at >= REFRESH_AFTER_SECONDS:
                self._token = eks_token(self._sts, self._cluster)
                self._made_at = now
            return self._token

    def __repr__(self) -> str:  # never show the token
        return f"TokenSource(cluster={self._cluster!r})"


def _register_header_handlers(sts: Any) -> None:
    # awscli's customizations/eks/get_token.py: move the pseudo-parameter into the request context, then into
    # a header before signing, so the signature covers it. Registered once per client.
    events = sts.meta.events
    if events in _REGISTERED:
        return
    events.register("provide-client-params.sts.GetCallerIdentity", _retrieve_cluster_id)
    events.register("before-sign.sts.GetCallerIdentity", _inject_cluster_header)
    _REGISTERED.add(events)


_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()  # clients' event emitters that have the handlers


def _retrieve_cluster_id(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
    if CLUSTER_HEADER in params:
        context[CLUSTER_HEADER] = params.pop(CLUSTER_HEADER)


def _inject_cluster_header(request: Any, **kwargs: Any) -> None:
    if CLUSTER_HEADER in request.context:
        request.headers[CLUSTER_HEADER] = request.context[CLUSTER_HEADER]
