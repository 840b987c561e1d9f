"""The one place that builds boto3 sessions and clients, from an explicit region, profile and endpoint_url.

Only this package (peerprobe/backends/aws/) may import boto3 or botocore.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from peerprobe.errors import ConfigError


class Hooks(Protocol):
    """Registers handlers on a new session's botocore event system (the lab's stand-ins, test harnesses)."""

    def __call__(self, events: Any, *, region: str) -> None: ...


# Fake credentials for a loopback endpoint (moto): the lab and the tests must never look for real ones.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class ClientFactory:
    """Builds and caches one boto3 client per service for one region/profile/endpoint.

    With a loopback `endpoint_url` (moto) the session gets explicit fake credentials, so botocore's
    credential chain never runs and never asks the EC2 instance metadata service (IMDS) for a role; the
    region is always explicit, so botocore never asks IMDS for one either. As a second lock, lab and test
    processes are expected to run with AWS_EC2_METADATA_DISABLED=true, which this factory sets (if unset)
    for loopback endpoints.
    HTTP proxies from the environment are ignored for loopback endpoints so lab traffic stays on the machine.
    """

    _shared: ClassVar[dict[tuple[str, str, Hooks | None], ClientFactory]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_loopback(cls, region: str, endpoint_url: str, *, hooks: Hooks | None = None) -> ClientFactory:
        """One factory per process for a loopback endpoint (moto): the lab builds an adapter per step, and
        loading botocore's service models for a new client costs about 0.3 s (the EC2 model is a large JSON).
        Only loopback factories are shared: their fake credentials never change, unlike a real credential chain."""
        with cls._shared_lock:
            key = (region, endpoint_url, hooks)
            if key not in cls._shared:
                cls._shared[key] = cls(region, endpoint_url=endpoint_url, hooks=hooks)
            return cls._shared[key]

    def __init__(
        self,
        region: str,
        *,
        profile: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        retry_mode: str = "standard",
        hooks: Hooks | None = None,
    ) -> None:
        self.region = region
        self.hooks = hooks
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.loopback = endpoint_url is not None and is_loopback(endpoint_url)
        self._config = _botocore_config(max_attempts=max_attempts, retry_mode=retry_mode, no_proxy=self.loopback)
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # boto3 clients are thread-safe once made; sessions making them are not

    def client(self, service: str) -> Any:
        """The cached client for `service` ("ec2", "eks", "elb", "elbv2", ...)."""
        with self._lock:
            if service not in self._clients:
                session = self._session_locked()
                self._clients[service] = session.client(service, endpoint_url=self.endpoint_url, config=self._config)
            return self._clients[service]

    def session(self) -> Any:
        """The cached boto3 session (fake credentials when the endpoint is loopback)."""
        with self._lock:
            return self._session_locked()

    def _session_locked(self) -> Any:
        if self._session is None:
            self._session = self._new_session()
            if self.hooks is not None:
                self.hooks(self._session.events, region=self.region)
        return self._session

    def _new_session(self) -> Any:
        if not self.loopback:
            return new_session(region_name=self.region, profile_name=self.profile)
        if self.profile:
            raise ConfigError(f"aws.profile: {self.profile!r} cannot be used with loopback {self.endpoint_url}")
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        return new_session(region_name=self.region, **FAKE_CREDENTIALS)


# botocore's service models and endpoint data are static files, but each new session has a loader of its own that
# parses them again: a first EC2 client costs ~0.3 s of CPU (its model is several MB of JSON), ~16 ms with the data
# already loaded. One loader for the process serves every session (a fleet's regions, each step's adapter).
_LOADER = botocore.loaders.create_loader()
_LOADER_LOCK = threading.Lock()


def new_session(**options: Any) -> Any:
    """A boto3 session on the process's one botocore data loader; `options` as boto3.session.Session takes."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    with _LOADER_LOCK:
        session = boto3.session.Session(botocore_session=core, **options)
        # boto3 appends its own data directory to the loader's search path for every session it makes.
        _LOADER.search_paths[:] = list(dict.fromkeys(_LOADER.search_paths))
    return session


def is_loopback(endpoint_url: str) -> bool:
    """True when the URL's host is localhost or a loopback address."""
    host = urlsplit(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _botocore_config(*, max_attempts: int, retry_mode: str, no_proxy: bool) -> Config:
    # botocore retry modes: "standard" retries throttling, 5xx and connection errors with exponential backoff
    # and jitter (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html).
    options: dict[str, Any] = {
        "retries": {"mode": retry_mode, "max_attempts": max_attempts},
        "connect_timeout": 10,
        "read_timeout": 60,
    }
    if no_proxy:
        # An empty (not None) mapping stops botocore from reading HTTP(S)_PROXY (botocore/endpoint.py).
        options["proxies"] = {}
    return Config(**options)
